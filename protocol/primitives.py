"""Thin wrappers around pyca ``cryptography`` (spec/profiles.md §3).

Every primitive here is pyca's; this module only fixes lengths, turns pyca's
exceptions into ``ProtocolError`` codes, and adds the public-key checks the
protocols require. Hand-written curve arithmetic is in ``xeddsa.py`` (pyca has
no Edwards point operations); ``curve25519.py`` checks base keys for torsion
with X25519 calls whose scalars clamping leaves unchanged.
"""

from __future__ import annotations

import hmac as _hmac
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives import hmac as _pyca_hmac
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from protocol.errors import AuthFailed, InvalidArgument, InvalidPublicKey, MalformedMessage
from protocol.secrecy import SECRET

X25519_LEN: Final = 32
P25519: Final = 2**255 - 19

# The canonical u-coordinates of the points of order 1, 2, 4 and 8 on
# Curve25519 (RFC 7748 §6.1 says to check for the all-zero output instead;
# we do both: these are refused as public keys, and a zero output is refused).
LOW_ORDER_U: Final = frozenset(
    {
        0,
        1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
        P25519 - 1,
    }
)


def require_bytes(value: object, length: int, what: str) -> bytes:
    """Return ``value`` if it is ``bytes`` of exactly ``length``; else InvalidArgument."""
    if not isinstance(value, bytes) or len(value) != length:
        raise InvalidArgument(f"{what} must be {length} bytes")
    return value


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time independent of where they differ."""
    return _hmac.compare_digest(a, b)


# --- X25519 (RFC 7748) -------------------------------------------------------


def clamp_scalar(k: bytes) -> bytes:
    """RFC 7748 §5 decodeScalar25519 clamping, as bytes."""
    require_bytes(k, X25519_LEN, "X25519 private key")
    out = bytearray(k)
    out[0] &= 248
    out[31] &= 127
    out[31] |= 64
    return bytes(out)


def check_x25519_public(u: bytes) -> bytes:
    """Refuse a public key that is the wrong length, non-canonical or of low order.

    Non-canonical means the high bit set or u >= p; RFC 7748 would silently
    reduce both, which lets one key have several encodings.
    """
    if not isinstance(u, bytes) or len(u) != X25519_LEN:
        raise InvalidPublicKey("X25519 public key must be 32 bytes")
    value = int.from_bytes(u, "little")
    if value >= P25519:
        raise InvalidPublicKey("X25519 public key is not canonical")
    if value in LOW_ORDER_U:
        raise InvalidPublicKey("X25519 public key has low order")
    return u


def x25519_public_key(private: bytes) -> bytes:
    """The X25519 public key (u-coordinate) of a 32-byte private key."""
    require_bytes(private, X25519_LEN, "X25519 private key")
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def x25519(private: bytes, public: bytes) -> bytes:
    """DH(private, public) per RFC 7748, refusing bad keys and an all-zero result."""
    require_bytes(private, X25519_LEN, "X25519 private key")
    return _exchange(X25519PrivateKey.from_private_bytes(private), public)


def _exchange(private: X25519PrivateKey, public: bytes) -> bytes:
    check_x25519_public(public)
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # OpenSSL refuses the all-zero output itself
        raise InvalidPublicKey("X25519 output is all zero") from None
    if constant_time_equal(shared, bytes(X25519_LEN)):
        raise InvalidPublicKey("X25519 output is all zero")
    return shared


@dataclass(frozen=True, slots=True)
class X25519KeyPair:
    """An X25519 key pair; the private half never appears in ``repr``.

    ``_key`` caches pyca's private-key object. Building one from bytes costs a
    scalar multiplication (OpenSSL derives the public key), as much as the
    exchange itself, and a key pair takes part in up to four exchanges. The
    cache is derived from ``private``: it is not compared, shown or stored
    (the store serializes init fields only, spec/storage.md §3).
    """

    private: Annotated[bytes, SECRET]
    public: bytes
    _key: X25519PrivateKey | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_private(cls, private: bytes) -> X25519KeyPair:
        require_bytes(private, X25519_LEN, "X25519 private key")
        key = X25519PrivateKey.from_private_bytes(private)
        pair = cls(private, key.public_key().public_bytes_raw())
        object.__setattr__(pair, "_key", key)
        return pair

    def private_key(self) -> X25519PrivateKey:
        """pyca's key object for ``private``, built once."""
        key = self._key
        if key is None:
            key = X25519PrivateKey.from_private_bytes(self.private)
            object.__setattr__(self, "_key", key)
        return key

    def exchange(self, public: bytes) -> bytes:
        """DH(self, public): ``x25519`` with the cached key object."""
        return _exchange(self.private_key(), public)

    def __repr__(self) -> str:
        return f"X25519KeyPair(public={self.public.hex()}, private=<redacted>)"


# --- Hashes, MAC, KDF (RFC 5869) ----------------------------------------------


def sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def sha512(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA512())
    digest.update(data)
    return digest.finalize()


# Note that pyca's hash algorithm objects are immutable descriptions (no state),
# so one instance serves every call; building one per call cost about a
# microsecond of Python per HMAC, and a chain step is two HMACs.
_SHA256: Final = hashes.SHA256()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = _pyca_hmac.HMAC(key, _SHA256)
    mac.update(data)
    return mac.finalize()


def hkdf_sha256(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869); ``salt=None`` means HashLen zero bytes."""
    return HKDF(_SHA256, length, salt, info).derive(ikm)


def hkdf_extract_sha256(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2): HMAC-SHA256(salt, ikm); empty salt is HashLen zeros."""
    return hmac_sha256(salt or bytes(32), ikm)


def hkdf_expand_sha256(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3)."""
    return HKDFExpand(_SHA256, length, info).derive(prk)


# --- AEADs and ciphers ------------------------------------------------------------


GCM_TAG_LEN: Final = 16
"""The length of an AES-GCM tag, which ends every AES-GCM ciphertext (SP 800-38D)."""


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM; returns ciphertext ‖ 16-byte tag."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """AES-GCM open; any failure is AUTH_FAILED."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise AuthFailed("AES-GCM tag check failed") from None


def aes_cbc_pkcs7_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def aes_cbc_pkcs7_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """AES-CBC with PKCS#7; called only after the MAC has verified."""
    if not ciphertext or len(ciphertext) % 16:
        raise AuthFailed("CBC ciphertext length is not a positive multiple of 16")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise AuthFailed("CBC padding is invalid") from None


def aes_ctr(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    """AES-CTR keystream XOR with a 16-byte initial counter block."""
    encryptor = Cipher(algorithms.AES(key), modes.CTR(counter_block)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


# --- ML-KEM (FIPS 203) ------------------------------------------------------------

KemName = Literal["ML-KEM-768", "ML-KEM-1024", "Kyber1024"]
"""The KEMs of the profiles. Note that "Kyber1024" (libsignal v4's round-3 Kyber)
has ML-KEM-1024's keys and ciphertexts, generated here from the same seed, but
another shared secret: its encapsulation and decapsulation go through
``protocol.kyber1024``, never through ``kem_encapsulate``/``kem_decapsulate``."""

KEM_SEED_LEN: Final = 64  # d ‖ z (FIPS 203 ML-KEM.KeyGen_internal)
KEM_SS_LEN: Final = 32
KEM_PUBLIC_LEN: Final[dict[str, int]] = {"ML-KEM-768": 1184, "ML-KEM-1024": 1568, "Kyber1024": 1568}
KEM_CIPHERTEXT_LEN: Final[dict[str, int]] = {
    "ML-KEM-768": 1088,
    "ML-KEM-1024": 1568,
    "Kyber1024": 1568,
}


def _kem_private(kem: KemName, seed: bytes) -> mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey:
    require_bytes(seed, KEM_SEED_LEN, "ML-KEM seed")
    if kem == "ML-KEM-768":
        return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    if kem in ("ML-KEM-1024", "Kyber1024"):  # Kyber1024 keys are ML-KEM-1024 keys (kyber1024.py)
        return mlkem.MLKEM1024PrivateKey.from_seed_bytes(seed)
    raise InvalidArgument(f"unknown KEM {kem!r}")


def kem_public_key(kem: KemName, seed: bytes) -> bytes:
    """ML-KEM.KeyGen from the 64-byte seed d ‖ z; returns the encapsulation key."""
    return _kem_private(kem, seed).public_key().public_bytes_raw()


def kem_encapsulate(kem: KemName, public: bytes) -> tuple[bytes, bytes]:
    """ML-KEM.Encaps; returns ``(ciphertext, shared_secret)``.

    pyca draws the encapsulation randomness m itself and offers no way to
    inject it, so vectors record the resulting (ct, ss) pair instead.
    """
    if kem == "Kyber1024":
        raise InvalidArgument("Kyber1024 encapsulates through protocol.kyber1024")
    shared, ciphertext = check_kem_public(kem, public).encapsulate()
    return ciphertext, shared


def check_kem_public(
    kem: KemName, public: bytes
) -> mlkem.MLKEM768PublicKey | mlkem.MLKEM1024PublicKey:
    """pyca's key object for an encapsulation key that passes FIPS 203 §7.2's checks.

    The length check and the modulus check (every coefficient below q, i.e.
    ByteEncode12(ByteDecode12(ek)) = ek) are pyca's, run when it loads the key;
    either failing is INVALID_PUBLIC_KEY. A Kyber1024 key has ML-KEM-1024's
    format (kyber1024.py), so it is checked as one.
    """
    if kem not in KEM_PUBLIC_LEN:
        raise InvalidArgument(f"unknown KEM {kem!r}")
    if not isinstance(public, bytes) or len(public) != KEM_PUBLIC_LEN[kem]:
        raise InvalidPublicKey(f"{kem} public key must be {KEM_PUBLIC_LEN[kem]} bytes")
    try:
        if kem == "ML-KEM-768":
            return mlkem.MLKEM768PublicKey.from_public_bytes(public)
        return mlkem.MLKEM1024PublicKey.from_public_bytes(public)
    except ValueError:  # FIPS 203 §7.2 modulus check failed
        raise InvalidPublicKey(f"{kem} public key is not canonical") from None


def kem_decapsulate(kem: KemName, seed: bytes, ciphertext: bytes) -> bytes:
    """ML-KEM.Decaps; a wrong ciphertext yields an unrelated secret (implicit rejection)."""
    if kem == "Kyber1024":
        raise InvalidArgument("Kyber1024 decapsulates through protocol.kyber1024")
    private = _kem_private(kem, seed)
    if not isinstance(ciphertext, bytes) or len(ciphertext) != KEM_CIPHERTEXT_LEN[kem]:
        raise MalformedMessage(f"{kem} ciphertext must be {KEM_CIPHERTEXT_LEN[kem]} bytes")
    return private.decapsulate(ciphertext)
