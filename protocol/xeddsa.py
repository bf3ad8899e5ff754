"""XEdDSA over Curve25519 (spec/xeddsa.md; XEdDSA and VXEdDSA, revision 1, 2016-10-20).

spec/xeddsa.md §1 fixes the parameters, spec/xeddsa.md §2
``calculate_key_pair``, spec/xeddsa.md §3 signing, spec/xeddsa.md §4
verification and spec/xeddsa.md §5 the libsignal sign-bit variant that a
verifier may accept; spec/xeddsa.md §6 says what the code does not promise.

pyca offers no Edwards point operations and cannot sign with a given
scalar, so this module holds the project's hand-written Edwards arithmetic:
edwards25519 in extended coordinates (RFC 8032 §5.1.4), point decoding
(RFC 8032 §5.1.3) and fixed-window scalar multiplication. (The torsion check
of base keys, in ``curve25519.py``, is made of pyca X25519 calls.)
SHA-512 is pyca's.

Python integers are not constant-time (spec/xeddsa.md §6). The code keeps a
fixed sequence of field and group operations for every secret scalar, but it
is a reference for reading beside the specification, not a signer hardened
against side channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidSignature as PycaInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.errors import InvalidArgument, InvalidSignature
from protocol.primitives import (
    LOW_ORDER_U,
    X25519_LEN,
    clamp_scalar,
    constant_time_equal,
    require_bytes,
    sha512,
)
from protocol.primitives import P25519 as P
from protocol.randomness import SYSTEM_RANDOM, Random

if TYPE_CHECKING:
    from protocol.profiles import Profile

# --- spec/xeddsa.md §1 Parameters -------------------------------------------------

Q: Final = 2**252 + 27742317777372353535851937790883648493  # order of the base point B
D: Final = -121665 * pow(121666, P - 2, P) % P  # edwards25519: -x^2 + y^2 = 1 + d x^2 y^2
SQRT_M1: Final = pow(2, (P - 1) // 4, P)  # a square root of -1 mod p
Z_LEN: Final = 64  # XEdDSA's Z: 64 bytes of secure random data
SIGNATURE_LEN: Final = 64  # R ‖ s

_Y_MASK: Final = 2**255 - 1  # a point encoding is y (255 bits) ‖ sign of x (1 bit)
_S_BOUND: Final = 2**253  # 2^|q|: verification rejects s at or above it (spec/xeddsa.md §4)
_WINDOW: Final = 4  # bits per window of the fixed-window multiplication
_SCALAR_BITS: Final = 256  # every scalar multiplied here is below 2^256

# A point (X, Y, Z, T) in extended coordinates: x = X/Z, y = Y/Z, xy = T/Z.
Point = tuple[int, int, int, int]
Table = tuple[Point, ...]
_IDENTITY: Final[Point] = (0, 1, 1, 0)


def hash_i(i: int, data: bytes) -> bytes:
    """hash_i(X) = SHA-512(2^b − 1 − i ‖ X), the prefix b = 256 bits little-endian.

    spec/xeddsa.md §1.
    """
    if not 0 <= i < 2**256:
        raise InvalidArgument("hash_i needs 0 <= i < 2^256")
    return sha512((2**256 - 1 - i).to_bytes(32, "little") + data)


def reduce_q(digest: bytes) -> int:
    """A hash output read as a little-endian integer, reduced mod q."""
    return int.from_bytes(digest, "little") % Q


# --- Edwards25519 group operations (RFC 8032 §5.1) ------------------------------------


def _add(p1: Point, p2: Point) -> Point:
    """Point addition, RFC 8032 §5.1.4 (complete on edwards25519, so it also doubles)."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % P, g * h % P, f * g % P, e * h % P


def _double(p1: Point) -> Point:
    """Point doubling, RFC 8032 §5.1.4."""
    x1, y1, z1, _ = p1
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1)
    g = a - b
    f = c + g
    return e * f % P, g * h % P, f * g % P, e * h % P


def _negate(p1: Point) -> Point:
    x1, y1, z1, t1 = p1
    return -x1 % P, y1, z1, -t1 % P


def _window_table(p1: Point) -> Table:
    """[0]P, [1]P, ..., [15]P: the multiples one 4-bit window can select."""
    table = [_IDENTITY, p1]
    for _ in range(2**_WINDOW - 2):
        table.append(_add(table[-1], p1))
    return tuple(table)


def _multi_scalar_mult(terms: Sequence[tuple[int, Table]]) -> Point:
    """Σ n_i·P_i by a joint fixed 4-bit window (Straus), each n_i below 2^256.

    Every call does exactly 256 doublings and 64 additions per term, whatever
    the scalars. Only verification uses it, on public scalars.
    """
    acc = _IDENTITY
    for shift in range(_SCALAR_BITS - _WINDOW, -1, -_WINDOW):
        for _ in range(_WINDOW):
            acc = _double(acc)
        for n, table in terms:
            acc = _add(acc, table[(n >> shift) & (2**_WINDOW - 1)])
    return acc


def _has_small_order(p1: Point) -> bool:
    """True if [8]P is the identity, i.e. P lies in the 8-torsion subgroup."""
    for _ in range(3):
        p1 = _double(p1)
    return p1[0] == 0  # [8]P lies in the order-q subgroup, whose only x = 0 point is (0, 1)


def _encode(p1: Point) -> bytes:
    """Point encoding, RFC 8032 §5.1.2: y little-endian with the low bit of x on top."""
    x, y, z, _ = p1
    z_inv = pow(z, -1, P)  # Z is never 0 for a point computed by the complete formulas
    x, y = x * z_inv % P, y * z_inv % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _recover_x(y: int, sign: int) -> int | None:
    """The x with low bit ``sign`` on the curve at y, RFC 8032 §5.1.3; None if there is none."""
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, -1, P) % P  # d·y^2 + 1 != 0: d is not a square
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    return P - x if x & 1 != sign else x


def _decode(encoded: bytes) -> Point | None:
    """Point decoding, RFC 8032 §5.1.3; None if y >= p or the point is not on the curve."""
    value = int.from_bytes(encoded, "little")
    y, sign = value & _Y_MASK, value >> 255
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


def u_to_y(u: int) -> int:
    """u_to_y(u) = (u − 1)·inv(u + 1) mod p, with inv(x) = x^(p−2)
    as in the spec (spec/xeddsa.md §1).

    Note that ``pow(x, -1, p)`` is the same inverse for x != 0 (p is prime) and
    about five times faster; inv(0) = 0^(p−2) = 0 keeps the spec's value at u = p − 1.
    """
    v = (u + 1) % P
    return (u - 1) * (pow(v, -1, P) if v else 0) % P


# B = convert_mont(9): y = u_to_y(9) = 4/5 and x even (RFC 8032 §5.1 lists the same point).
_BASE_X: Final = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BASE_Y: Final = 46316835694926478169428394003475163141307993866256225615783033603165251855960
_BASE: Final[Point] = (_BASE_X, _BASE_Y, 1, _BASE_X * _BASE_Y % P)


def _base_tables() -> tuple[Table, ...]:
    """For each window i, the multiples [j·16^i]B, j = 0..15 (64 tables, built once)."""
    tables, p1 = [], _BASE
    for _ in range(_SCALAR_BITS // _WINDOW):
        tables.append(_window_table(p1))
        for _ in range(_WINDOW):
            p1 = _double(p1)
    return tuple(tables)


_BASE_TABLES: Final = _base_tables()


def scalar_mult_base(n: int) -> bytes:
    """The encoding of nB for 0 <= n < 2^256: fixed-base fixed window, always 64 additions."""
    if not 0 <= n < 2**_SCALAR_BITS:
        raise InvalidArgument("a scalar must lie in [0, 2^256)")
    acc = _IDENTITY
    for i, table in enumerate(_BASE_TABLES):
        acc = _add(acc, table[(n >> (_WINDOW * i)) & (2**_WINDOW - 1)])
    return _encode(acc)


# --- spec/xeddsa.md §2-§3: calculate_key_pair, xeddsa_sign ----------------------------


def calculate_key_pair(k: bytes) -> tuple[bytes, int]:
    """Implements calculate_key_pair(k), spec/xeddsa.md §2; ``k`` is already clamped.

    E = kB; A = E with its sign bit forced to 0; a = −k mod q if E.s = 1,
    else k mod q, so that A = aB always. Returns (A as 32 bytes, a).
    """
    k_int = int.from_bytes(require_bytes(k, X25519_LEN, "XEdDSA scalar k"), "little")
    e = int.from_bytes(scalar_mult_base(k_int), "little")
    e_sign = e >> 255
    a = -k_int % Q if e_sign else k_int % Q
    return (e & _Y_MASK).to_bytes(32, "little"), a


@dataclass(frozen=True, slots=True, repr=False)
class SigningTrace:
    """Every value xeddsa_sign computes (spec/xeddsa.md §3), named as in the spec.

    ``a`` and ``r`` are secret: either one reveals the signing key. They never
    appear in ``repr``; do not log a trace.
    """

    a: int
    A: bytes
    r: int
    R: bytes
    h: int
    s: int

    @property
    def signature(self) -> bytes:
        return self.R + self.s.to_bytes(32, "little")

    def __repr__(self) -> str:
        return f"SigningTrace(A={self.A.hex()}, R={self.R.hex()}, a=<redacted>, r=<redacted>)"


def _require_message(message: object) -> bytes:
    if not isinstance(message, bytes):
        raise InvalidArgument("the message must be bytes")
    return message


def xeddsa_sign_trace(private_key: bytes, message: bytes, z: bytes) -> SigningTrace:
    """Implements xeddsa_sign(k, M, Z), spec/xeddsa.md §3, returning every intermediate.

    Note that ``private_key`` is clamped first (RFC 7748 §5), so the scalar that
    signs is the one X25519 uses, and that ``a`` enters hash_1 reduced mod q,
    as the spec writes it (spec/xeddsa.md §3 explains the libsignal difference).
    """
    require_bytes(private_key, X25519_LEN, "X25519 private key")
    require_bytes(z, Z_LEN, "XEdDSA Z")
    _require_message(message)
    a_point, a = calculate_key_pair(clamp_scalar(private_key))
    r = reduce_q(hash_i(1, a.to_bytes(32, "little") + message + z))
    r_point = scalar_mult_base(r)
    h = reduce_q(sha512(r_point + a_point + message))
    s = (r + h * a) % Q
    return SigningTrace(a=a, A=a_point, r=r, R=r_point, h=h, s=s)


def xeddsa_sign(private_key: bytes, message: bytes, z: bytes) -> bytes:
    """Implements xeddsa_sign(k, M, Z), spec/xeddsa.md §3: the 64-byte signature R ‖ s."""
    return xeddsa_sign_trace(private_key, message, z).signature


def sign(private_key: bytes, message: bytes, rng: Random = SYSTEM_RANDOM) -> bytes:
    """XEdDSA-sign ``message`` with Z drawn as ``rng.draw("xeddsa_z", 64)`` (spec/xeddsa.md §3)."""
    require_bytes(private_key, X25519_LEN, "X25519 private key")
    _require_message(message)
    return xeddsa_sign(private_key, message, rng.draw("xeddsa_z", Z_LEN))


# --- spec/xeddsa.md §4-§5: xeddsa_verify, the libsignal sign bit ----------------------


def verify_edwards(a_point: bytes, message: bytes, r_point: bytes, s: int) -> None:
    """Steps 4-7 of xeddsa_verify, spec/xeddsa.md §4, for a 32-byte encoded Edwards key A.

    Accepts iff s < 2^253, A decodes to a point that is not of small order and
    R == encode(sB − hA) bytewise, with h = hash(R ‖ A ‖ M) mod q and no
    cofactor. The same equation verifies RFC 8032 Ed25519 signatures.
    Raises InvalidSignature, naming the failed check.
    """
    if len(a_point) != 32 or len(r_point) != 32:
        raise InvalidSignature("A and R must be 32-byte encodings")
    if not 0 <= s < _S_BOUND:  # step 4
        raise InvalidSignature("s does not fit in 253 bits")
    a = _decode(a_point)
    if a is None:  # step 5: no curve point has this y (u on the twist)
        raise InvalidSignature("the public key is not a point on the curve")
    if _has_small_order(a):  # step 6, our addition to the spec
        raise InvalidSignature("the public key has small order")
    if s < Q:  # step 7 in C: see _pyca_equation
        _pyca_equation(a_point, message, r_point, s)
        return
    h = reduce_q(sha512(r_point + a_point + message))  # step 7
    r_check = _multi_scalar_mult([(s, _BASE_TABLES[0]), (h, _window_table(_negate(a)))])
    if not constant_time_equal(_encode(r_check), r_point):
        raise InvalidSignature("R does not equal sB - hA")


def _pyca_equation(a_point: bytes, message: bytes, r_point: bytes, s: int) -> None:
    """Step 7 by pyca's Ed25519 verification, for s < q only.

    Note that for a canonical A that decodes and s < q, RFC 8032 §5.1.7's
    cofactorless check as OpenSSL runs it is exactly step 7: the same
    h = SHA-512(R ‖ A ‖ M) mod q and the same bytewise comparison of R with
    encode(sB − hA). It is about fifteen times faster than the Python
    arithmetic, and bundle verification is on every session set-up. OpenSSL
    refuses s >= q, which step 4 allows, so those s take the Python path.
    """
    try:
        Ed25519PublicKey.from_public_bytes(a_point).verify(
            r_point + s.to_bytes(32, "little"), message
        )
    except (PycaInvalidSignature, ValueError):
        raise InvalidSignature("R does not equal sB - hA") from None


def xeddsa_verify(
    public_key: bytes,
    message: bytes,
    signature: bytes,
    *,
    accept_libsignal_sign_bit: bool = False,
) -> None:
    """Implements xeddsa_verify(u, M, R ‖ s), spec/xeddsa.md §4; raises InvalidSignature.

    With ``accept_libsignal_sign_bit`` it also accepts libsignal's
    curve25519_sign signatures (spec/xeddsa.md §5): bit 7 of byte 63 is then
    the Edwards sign bit of A rather than a bit of s. A spec signature has
    that bit clear, so it verifies in both modes.
    """
    xeddsa_verify_each(
        public_key, ((message, signature),), accept_libsignal_sign_bit=accept_libsignal_sign_bit
    )


def xeddsa_verify_each(
    public_key: bytes,
    signed: Sequence[tuple[bytes, bytes]],
    *,
    accept_libsignal_sign_bit: bool = False,
) -> None:
    """xeddsa_verify(u, M, R ‖ s) for each (M, R ‖ s) in ``signed``, in order, under one u.

    The same steps and errors as ``xeddsa_verify`` called on each in turn.
    Note that the y-coordinate of A = convert_mont(u), whose inversion is
    the one costly step before pyca's, depends on u alone, so it is computed
    once for all of them (a PQXDH bundle has two signatures by IK).
    """
    y: int | None = None
    for message, signature in signed:
        y = _verify_one(public_key, message, signature, accept_libsignal_sign_bit, y)


def _verify_one(
    public_key: bytes, message: bytes, signature: bytes, libsignal_sign_bit: bool, y: int | None
) -> int:
    """Steps 1-7 of xeddsa_verify for one signature; returns u_to_y(u) for the next one."""
    for value, what in ((public_key, "public key"), (signature, "signature")):
        if not isinstance(value, bytes):
            raise InvalidArgument(f"the XEdDSA {what} must be bytes")
    _require_message(message)
    if len(public_key) != X25519_LEN or len(signature) != SIGNATURE_LEN:  # step 1
        raise InvalidSignature("the public key or the signature has the wrong length")
    r_point, s_bytes = signature[:32], bytearray(signature[32:])
    sign = 0  # spec/xeddsa.md §4: A = convert_mont(u) has sign bit 0
    if libsignal_sign_bit:  # spec/xeddsa.md §5: the sign of A travels in bit 7 of byte 63
        sign, s_bytes[31] = s_bytes[31] >> 7, s_bytes[31] & 0x7F
    u, s = int.from_bytes(public_key, "little"), int.from_bytes(s_bytes, "little")
    if u >= P:  # step 2
        raise InvalidSignature("the public key is not canonical (u >= p)")
    if int.from_bytes(r_point, "little") & _Y_MASK >= P:  # step 3
        raise InvalidSignature("R is not canonical (R.y >= p)")
    if u in LOW_ORDER_U:  # step 6 on u: these are exactly the small-order points
        raise InvalidSignature("the public key has small order")
    y = u_to_y(u) if y is None else y
    a_point = (y | sign << 255).to_bytes(32, "little")
    if s < Q:
        # Fast path: pyca decodes A itself (refusing a u on the twist, step 5) and
        # checks step 7, so the Python decoding in verify_edwards is not needed.
        _pyca_equation(a_point, message, r_point, s)
    else:
        verify_edwards(a_point, message, r_point, s)
    return y


def verify(public_key: bytes, signed: Sequence[tuple[bytes, bytes]], profile: Profile) -> None:
    """xeddsa_verify_each with the profile's choice on libsignal's sign bit (spec/xeddsa.md §5)."""
    xeddsa_verify_each(
        public_key,
        signed,
        accept_libsignal_sign_bit=profile.agreement.xeddsa_accept_libsignal_sign_bit,
    )
