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

Both checks are pyca X25519 calls with scalars chosen so that clamping
(RFC 7748 §5: clear bits 0-2 and 255, set bit 254) leaves them unchanged,
so that X25519(k, u) is exactly u([k]P) for the point P, on the curve or on
its quadratic twist, whose u-coordinate is u. Write q for the prime order
of the base point (``xeddsa.Q``): the curve's group is cyclic of order 8q,
and the twist's of order 4q' with q' = 2^253 − 55484635554744707071703875581767296995
prime (SafeCurves, "twist"). Every point of the curve is P = P0 + T with
[q]P0 = O and T in E[8]; every point of the twist is P0' + T' with
[q']P0' = O and [4]T' = O.

* ``is_torsion_free(u)``, [q]P = O: take k' = 5q − 1, which is a multiple
  of 8 with bit 254 set and bit 255 clear, so clamping keeps it. On the
  curve [k']P = [k']P0 = [−1]P0, and u([k']P) = u(P) iff P = ±P0 iff T = O
  (T = −2·P0 would put −2·P0 in both E[8] and the order-q subgroup, so
  P0 = O and P = T is of low order, refused before any call). On the twist,
  [k']P = [k' mod q']P0' (4 | k'), and k' ≢ ±1 mod q', so u([k']P) = u(P)
  only if P0' = O: the twist's points all fail, as [q]P ≠ O for them.
* ``same_up_to_torsion(u1, u2)``, u([8]P1) = u([8]P2): take k = 2^254 =
  8·2^251, clamped as it is, with 2^251 invertible modulo q and q' (both
  prime and larger). [8]P lies in the order-q subgroup on the curve (order-q'
  on the twist), where multiplying by 2^251 is a bijection that commutes
  with negation, so u([k]P1) = u([k]P2) iff [8]P1 = ±[8]P2 iff u([8]P1) =
  u([8]P2). A curve point and a twist point never compare equal (their
  multiples keep their u on the curve or twist, and neither is O).

Each number above is checked in tests/test_curve25519.py, and both
functions are compared there with RFC 7748's Montgomery ladder run on
unclamped scalars (the definition: [q]P and [8]P), on the eight twins of
random keys, on random curve and twist points, and on the low-order points.
Everything here is public, so nothing needs to run in constant time.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocol.primitives import check_x25519_public
from protocol.xeddsa import Q  # the order of the base point

TORSION_FREE_SCALAR: Final = 5 * Q - 1
"""k' = 5q − 1: a multiple of 8 that clamping leaves unchanged, ≡ −1 mod q."""
COFACTOR_SCALAR: Final = 2**254
"""k = 8·2^251: clamped as it is, 2^251 invertible modulo q and q'."""

# Note that pyca builds a private-key object with one scalar multiplication
# (it derives the public key); the scalars are constants, so each object is
# built once, here, as X25519KeyPair caches its own.
_TORSION_FREE_KEY: Final = X25519PrivateKey.from_private_bytes(
    TORSION_FREE_SCALAR.to_bytes(32, "little")
)
_COFACTOR_KEY: Final = X25519PrivateKey.from_private_bytes(COFACTOR_SCALAR.to_bytes(32, "little"))


def _multiply(key: X25519PrivateKey, u: bytes) -> bytes | None:
    """u([k]P) by pyca's X25519 for a scalar k that clamping keeps; None for the identity.

    pyca refuses an all-zero output (the identity, or the point (0, 0)), which
    here only a point of low order gives; ``check_x25519_public`` has refused
    those already, so None is a second line, not a path honest keys take.
    """
    try:
        return key.exchange(X25519PublicKey.from_public_bytes(u))
    except ValueError:
        return None


def torsion_free_part(u: bytes) -> bytes | None:
    """u(P0) for the point P = P0 + T of the curve: the u-coordinate of its torsion-free twin.

    Computed as X25519(5q − 1, u): [5q − 1]P = [−1]P0, since 5q − 1 is a
    multiple of 8 and ≡ −1 mod q, and u(−P0) = u(P0) (module docstring). So
    ``torsion_free_part(u) == u`` exactly when P is torsion-free, and two
    curve keys are torsion twins exactly when their torsion-free parts are
    equal; a torsion-free key is its own. For a key on the quadratic twist
    the result is a twist point's u, equal to no curve key's. None only for
    the identity, which ``check_x25519_public`` refuses before. Raises
    INVALID_PUBLIC_KEY for a key that it refuses (wrong length,
    non-canonical, low order).
    """
    return _multiply(_TORSION_FREE_KEY, check_x25519_public(u))


def is_torsion_free(u: bytes) -> bool:
    """True if ``u`` is a valid X25519 public key of a point of order q: [q]P is the identity.

    Computed as X25519(5q − 1, u) = u (``torsion_free_part``). A key on the
    quadratic twist is refused too: its order does not divide q. Honest keys
    always pass, since every X25519 public key is a multiple of the base
    point, whose order is q. Raises INVALID_PUBLIC_KEY for a key that
    ``check_x25519_public`` refuses (wrong length, non-canonical, low order).
    """
    return torsion_free_part(u) == u


def same_up_to_torsion(u1: bytes, u2: bytes) -> bool:
    """True if the two keys are torsion twins: u([8]P1) = u([8]P2).

    [8](P + T) = [8]P for every T in E[8], and u([8]P1) = u([8]P2) only if
    P1 = ±P2 + T for some such T, so this is exactly the twin relation.
    Computed as X25519(2^254, u1) = X25519(2^254, u2) (module docstring).
    """
    image1 = _multiply(_COFACTOR_KEY, check_x25519_public(u1))
    image2 = _multiply(_COFACTOR_KEY, check_x25519_public(u2))
    if image1 is None or image2 is None:  # a key of small order: twin of nothing
        return False
    return image1 == image2
