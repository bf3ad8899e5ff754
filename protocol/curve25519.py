"""Curve25519 checks pyca lacks: torsion-freeness and torsion twins (spec/x3dh.md §5.3).

X25519 clamps every scalar to a multiple of the cofactor 8, so the eight
u-coordinates of P + T, for T in the 8-torsion subgroup E[8], give the same
X25519 output under every private key: they are *torsion twins*. (Adding the
point of order 2, (0, 0), maps u to 1/u.) A public key that no signature or
MAC covers, such as the initiator's base key EK_A, can therefore be replaced
by any of its twins without changing the shared secret. libsignal's v4
responder refuses a base key that is not canonical and torsion-free
(``PublicKey::is_canonical`` in rust/core/src/curve.rs); we do so in every
profile (x3dh.respond), and compare base keys up to torsion
(``same_up_to_torsion``) so that a twin of a known handshake is recognized.

pyca exposes no scalar multiplication by an unclamped scalar, so this module
holds the Montgomery ladder of RFC 7748 §5 for unclamped scalars (q, the
order of the base point, and the cofactor 8). Both work on public values
only and need not run in constant time.
"""

from __future__ import annotations

from typing import Final

from protocol.primitives import P25519, check_x25519_public
from protocol.xeddsa import Q  # the order of the base point

_A24: Final = 121665  # (A − 2) / 4 for A = 486662 (RFC 7748 §5)

# A projective u-coordinate (X : Z); u = X/Z, and Z = 0 is the point at infinity.
_Projective = tuple[int, int]


def _ladder(k: int, u: int) -> _Projective:
    """[k]P as (X : Z) by the Montgomery ladder of RFC 7748 §5, without clamping k.

    Note that RFC 7748 normalizes X/Z at the end; the caller here needs only to
    know whether Z is 0, so the projective pair is returned as it is.
    """
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
        x2, z2 = aa * bb % P25519, e * (aa + _A24 * e) % P25519
    return (x3, z3) if swap else (x2, z2)


def is_torsion_free(u: bytes) -> bool:
    """True if ``u`` is a valid X25519 public key of a point of order q: [q]P is the identity.

    A key on the quadratic twist is refused too: its order does not divide q.
    Honest keys always pass, since every X25519 public key is a multiple of
    the base point, whose order is q.
    """
    check_x25519_public(u)
    _, z = _ladder(Q, int.from_bytes(u, "little"))
    return z == 0


def same_up_to_torsion(u1: bytes, u2: bytes) -> bool:
    """True if the two keys are torsion twins: u([8]P1) = u([8]P2).

    [8](P + T) = [8]P for every T in E[8], and u([8]P1) = u([8]P2) only if
    P1 = ±P2 + T for some such T, so this is exactly the twin relation.
    Compared projectively (X1·Z2 = X2·Z1), without an inversion.
    """
    x1, z1 = _ladder(8, int.from_bytes(check_x25519_public(u1), "little"))
    x2, z2 = _ladder(8, int.from_bytes(check_x25519_public(u2), "little"))
    if z1 == 0 or z2 == 0:  # a key of small order: refused as a public key, twin of nothing
        return False
    return x1 * z2 % P25519 == x2 * z1 % P25519
