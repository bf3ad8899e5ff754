"""Reference arithmetic for the torsion tests (no tests here): the definitions, computed directly.

``protocol.curve25519`` decides torsion-freeness and twinhood with pyca
X25519 calls whose scalars make them equal to the definitions (its module
docstring). The tests compare it with the definitions themselves:

* ``ladder``: RFC 7748 §5's Montgomery ladder with an *unclamped* scalar,
  so ``ladder(Q, u)`` is [q]P and ``ladder(8, u)`` is [8]P, on the curve or
  its twist;
* ``torsion_twins``: the eight u-coordinates of P + T, T in E[8], by
  Edwards addition (``xeddsa``'s point arithmetic) of a point of order 8.
"""

from __future__ import annotations

from typing import Final

from protocol import xeddsa
from protocol.primitives import P25519
from protocol.xeddsa import Q

A24: Final = 121665  # (A − 2) / 4 for A = 486662 (RFC 7748 §5)
A: Final = 486662

# The u-coordinate of a point of order 8 (RFC 7748 §6.1's small-order list; LOW_ORDER_U).
ORDER_8_U: Final = 325606250916557431795983626356110631294008115727848805560023387167927233504

# A projective u-coordinate (X : Z); u = X/Z, and Z = 0 is the point at infinity.
Projective = tuple[int, int]


def ladder(k: int, u: int) -> Projective:
    """[k]P as (X : Z) by the Montgomery ladder of RFC 7748 §5, without clamping k."""
    x2, z2, x3, z3 = 1, 0, u, 1
    swap = 0
    for t in range(k.bit_length() - 1, -1, -1):
        k_t = (k >> t) & 1
        if swap ^ k_t:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = k_t
        a, b = x2 + z2, x2 - z2
        aa, bb = a * a % P25519, b * b % P25519
        e = aa - bb
        c, d = x3 + z3, x3 - z3
        da, cb = d * a % P25519, c * b % P25519
        x3 = (da + cb) * (da + cb) % P25519
        z3 = u * ((da - cb) * (da - cb) % P25519) % P25519
        x2, z2 = aa * bb % P25519, e * (aa + A24 * e) % P25519
    return (x3, z3) if swap else (x2, z2)


def is_torsion_free(u: int) -> bool:
    """The definition: [q]P is the point at infinity."""
    return ladder(Q, u)[1] == 0


def same_up_to_torsion(u1: int, u2: int) -> bool:
    """The definition: u([8]P1) = u([8]P2), neither being the point at infinity."""
    (x1, z1), (x2, z2) = ladder(8, u1), ladder(8, u2)
    if z1 == 0 or z2 == 0:
        return False
    return x1 * z2 % P25519 == x2 * z1 % P25519


def on_curve(u: int) -> bool:
    """u^3 + A·u^2 + u is a square mod p: u is a point of the curve, otherwise of its twist."""
    value = (u * u * u + A * u * u + u) % P25519
    return value == 0 or pow(value, (P25519 - 1) // 2, P25519) == 1


def _edwards(u: int) -> xeddsa.Point:
    y = xeddsa.u_to_y(u)
    x = xeddsa._recover_x(y, 0)
    assert x is not None
    return (x, y, 1, x * y % xeddsa.P)


def torsion_twins(u: bytes) -> list[bytes]:
    """The u-coordinates of P + [i]T8 for i = 0..7, computed on the Edwards curve."""
    point, t8 = _edwards(int.from_bytes(u, "little")), _edwards(ORDER_8_U)
    twins, torsion = [], xeddsa._IDENTITY
    for _ in range(8):
        _x, y, z, _t = xeddsa._add(point, torsion)
        y_affine = y * pow(z, -1, P25519) % P25519
        twin = (1 + y_affine) * pow(1 - y_affine, -1, P25519) % P25519
        twins.append(twin.to_bytes(32, "little"))
        torsion = xeddsa._add(torsion, t8)
    return twins
