"""RFC 9605 SFrame frame protection (spec/sframe.md §1-§9).

Implements RFC 9605 byte for byte: the SFrame header (RFC 9605 §4.3;
spec/sframe.md §2), the key schedule (RFC 9605 §4.4.2; spec/sframe.md §3),
the cipher suites (RFC 9605 §4.5; spec/sframe.md §4) with the AES-CTR + HMAC
AEAD (RFC 9605 §4.5.1; spec/sframe.md §5), frame encryption and decryption
(RFC 9605 §4.4.3, §4.4.4; spec/sframe.md §6), and the Sender Keys ratchet
and KID packing of RFC 9605 §5.1 (spec/sframe.md §9). Which base_key a KID
maps to, when keys rotate and the replay window are call key management
(``protocol.media.callkeys``).

Hot path: a ``FrameKey`` is derived once per KID and caches everything a frame
needs (the pyca AEAD object, the salt as an integer, and the header's first
bytes, config byte and KID, for each of the 16 CTR fields), so a frame costs
one CTR encoding or decoding, one integer XOR and one AEAD call.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as pyca_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from protocol.errors import (
    AuthFailed,
    InvalidArgument,
    LimitExceeded,
    MalformedMessage,
    UnknownKeyId,
)
from protocol.primitives import aes_ctr, constant_time_equal, require_bytes
from protocol.secrecy import SECRET

# --- Cipher suites (RFC 9605 §4.5, IANA "SFrame Cipher Suites"; spec/sframe.md §4) -


class CipherSuite(enum.IntEnum):
    """SFrame cipher suite identifiers (IANA registry values)."""

    AES_128_CTR_HMAC_SHA256_80 = 0x0001
    AES_128_CTR_HMAC_SHA256_64 = 0x0002
    AES_128_CTR_HMAC_SHA256_32 = 0x0003
    AES_128_GCM_SHA256_128 = 0x0004
    AES_256_GCM_SHA512_128 = 0x0005
    # Registered after RFC 9605 by draft-barnes-sframe-iana-256: the RFC 9605 §4.5.1
    # construction with AES-256 and HMAC-SHA-512 (spec/sframe.md §4).
    AES_256_CTR_HMAC_SHA512_80 = 0x0006
    AES_256_CTR_HMAC_SHA512_64 = 0x0007
    AES_256_CTR_HMAC_SHA512_32 = 0x0008


DEFAULT_SUITE: Final = CipherSuite.AES_128_GCM_SHA256_128


@dataclass(frozen=True, slots=True)
class SuiteParams:
    """The constants of one suite, named as in RFC 9605 §4.5 (all lengths in bytes).

    ``nka`` is the AES key length inside the AEAD key of a CTR + HMAC suite and
    ``None`` for the GCM suites ("n/a" in the RFC's table).
    """

    suite: CipherSuite
    hash_name: Literal["SHA-256", "SHA-512"]
    nh: int
    nka: int | None
    nk: int
    nn: int
    nt: int

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """The suite's hash, as a pyca algorithm object (HKDF and HMAC use it)."""
        return hashes.SHA256() if self.hash_name == "SHA-256" else hashes.SHA512()


def _ctr_hmac(suite: CipherSuite, nt: int) -> SuiteParams:
    if suite <= CipherSuite.AES_128_CTR_HMAC_SHA256_32:
        return SuiteParams(suite, "SHA-256", nh=32, nka=16, nk=48, nn=12, nt=nt)
    return SuiteParams(suite, "SHA-512", nh=64, nka=32, nk=96, nn=12, nt=nt)


_SUITES: Final[dict[int, SuiteParams]] = {
    params.suite: params
    for params in (
        _ctr_hmac(CipherSuite.AES_128_CTR_HMAC_SHA256_80, 10),
        _ctr_hmac(CipherSuite.AES_128_CTR_HMAC_SHA256_64, 8),
        _ctr_hmac(CipherSuite.AES_128_CTR_HMAC_SHA256_32, 4),
        SuiteParams(CipherSuite.AES_128_GCM_SHA256_128, "SHA-256", 32, None, 16, 12, 16),
        SuiteParams(CipherSuite.AES_256_GCM_SHA512_128, "SHA-512", 64, None, 32, 12, 16),
        _ctr_hmac(CipherSuite.AES_256_CTR_HMAC_SHA512_80, 10),
        _ctr_hmac(CipherSuite.AES_256_CTR_HMAC_SHA512_64, 8),
        _ctr_hmac(CipherSuite.AES_256_CTR_HMAC_SHA512_32, 4),
    )
}


def suite_params(suite: int) -> SuiteParams:
    """The RFC 9605 §4.5 constants of ``suite``; an unknown value is InvalidArgument."""
    params = _SUITES.get(suite) if type(suite) in (int, CipherSuite) else None
    if params is None:
        raise InvalidArgument("unknown SFrame cipher suite")
    return params


# --- Header (RFC 9605 §4.3; spec/sframe.md §2) -------------------------------------------

# KID and CTR are unsigned 64-bit integers.
MAX_KID: Final = 2**64 - 1
MAX_CTR: Final = 2**64 - 1
# Config byte + an 8-byte KID + an 8-byte CTR.
MAX_HEADER_LEN: Final = 17


_from_bytes: Final = int.from_bytes  # one attribute lookup fewer on the hot path
# The config byte as a one-byte string, for every value.
_BYTE: Final = tuple(bytes((value,)) for value in range(256))


def _check_u64(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_KID:
        raise InvalidArgument(f"{what} must be an integer in [0, 2^64 - 1]")
    return value


def _field(value: int) -> tuple[int, bytes]:
    """One header value as its 4 config bits (X|K or Y|C) and the bytes after the config byte.

    A value 0-7 sits in the 3-bit field with the extension flag clear and
    takes no bytes. A larger value is written big-endian in the fewest bytes
    (1-8), and the field holds the length minus one: 0b1000 | (length - 1).
    """
    if value < 8:
        return value, b""
    length = (value.bit_length() + 7) >> 3
    return 7 + length, value.to_bytes(length, "big")


def _header_prefixes(kid: int) -> tuple[bytes, ...]:
    """config byte ‖ KID bytes for each of the 16 values of the CTR's 4 config bits (Y|C)."""
    kid_bits, kid_bytes = _field(kid)
    return tuple(_BYTE[(kid_bits << 4) | ctr_bits] + kid_bytes for ctr_bits in range(16))


def _encode_header(prefixes: tuple[bytes, ...], ctr: int) -> bytes:
    """config byte ‖ KID bytes ‖ CTR bytes, from the KID's ``_header_prefixes``."""
    if ctr < 8:
        return prefixes[ctr]
    length = (ctr.bit_length() + 7) >> 3
    return prefixes[7 + length] + ctr.to_bytes(length, "big")


def encode_header(kid: int, ctr: int) -> bytes:
    """Encode the SFrame header (RFC 9605 §4.3), always in its minimal form."""
    return _encode_header(_header_prefixes(_check_u64(kid, "KID")), _check_u64(ctr, "CTR"))


def _layout(config: int) -> tuple[int, int]:
    """Where the KID ends and the header ends, for one config byte.

    With X (Y) set, K + 1 (C + 1) bytes follow; the 4 bits X|K read 8 + K.
    """
    kid_end = 1 + ((config >> 4) - 7 if config & 0x80 else 0)
    return kid_end, kid_end + ((config & 0xF) - 7 if config & 0x08 else 0)


# Note that the layout depends on the config byte alone, so it is looked up
# in a table of all 256 rather than computed per frame.
_LAYOUT: Final = tuple(_layout(config) for config in range(256))


def decode_header(frame: bytes) -> tuple[int, int, int]:
    """Parse the SFrame header at the start of ``frame`` (RFC 9605 §4.3).

    Returns ``(kid, ctr, header_length)``. A truncated or non-minimal header is
    MalformedMessage: the RFC's encoder is minimal, so a non-minimal header
    never comes from a conforming sender (spec/sframe.md §2.2).
    """
    if type(frame) is not bytes:
        raise InvalidArgument("an SFrame ciphertext must be bytes")
    if not frame:
        raise MalformedMessage("SFrame header is empty")
    config = frame[0]
    kid_end, end = _LAYOUT[config]
    if len(frame) < end:
        raise MalformedMessage("SFrame header is truncated")
    kid = _from_bytes(frame[1:kid_end], "big") if kid_end > 1 else config >> 4
    ctr = _from_bytes(frame[kid_end:end], "big") if end > kid_end else config & 0x7
    # A value 0-7 belongs in the config byte; a leading zero byte is not minimal.
    if (kid_end > 1 and (kid < 8 or frame[1] == 0)) or (
        end > kid_end and (ctr < 8 or frame[kid_end] == 0)
    ):
        raise MalformedMessage("SFrame header is not minimally encoded")
    return kid, ctr, end


# --- Key schedule (RFC 9605 §4.4.2, §5.1; spec/sframe.md §3, §9) ----------------------

SECRET_KEY_LABEL: Final = b"SFrame 1.0 Secret key "
SECRET_SALT_LABEL: Final = b"SFrame 1.0 Secret salt "
RATCHET_LABEL: Final = b"SFrame 1.0 Ratchet"
# Local policy, not RFC 9605: a base_key shorter than 128 bits is refused
# (the RFC's own vectors use 16 bytes; sender keys draw Nh bytes).
MIN_BASE_KEY_LEN: Final = 16


def sframe_key_label(suite: int, kid: int) -> bytes:
    """sframe_key_label = "SFrame 1.0 Secret key " ‖ uint64(KID) ‖ uint16(suite).

    RFC 9605 §4.4.2.
    """
    return SECRET_KEY_LABEL + struct.pack(">QH", _check_u64(kid, "KID"), suite_params(suite).suite)


def sframe_salt_label(suite: int, kid: int) -> bytes:
    """sframe_salt_label = "SFrame 1.0 Secret salt " ‖ uint64(KID) ‖ uint16(suite).

    RFC 9605 §4.4.2.
    """
    return SECRET_SALT_LABEL + struct.pack(">QH", _check_u64(kid, "KID"), suite_params(suite).suite)


def sframe_secret(suite: int, base_key: bytes) -> bytes:
    """sframe_secret = HKDF-Extract("", base_key) with the suite's hash (RFC 9605 §4.4.2)."""
    params = suite_params(suite)
    if not isinstance(base_key, bytes) or len(base_key) < MIN_BASE_KEY_LEN:
        raise InvalidArgument(f"an SFrame base_key must be at least {MIN_BASE_KEY_LEN} bytes")
    # An empty salt is HashLen zero bytes (RFC 5869 §2.2); pyca takes None for it.
    return HKDF.extract(params.hash_algorithm(), None, base_key)


def _expand(params: SuiteParams, secret: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(params.hash_algorithm(), length, info).derive(secret)


def derive_key_salt(suite: int, base_key: bytes, kid: int) -> tuple[bytes, bytes]:
    """Implements the SFrame key schedule, RFC 9605 §4.4.2: ``(sframe_key, sframe_salt)``."""
    params = suite_params(suite)
    secret = sframe_secret(suite, base_key)
    key = _expand(params, secret, sframe_key_label(suite, kid), params.nk)
    salt = _expand(params, secret, sframe_salt_label(suite, kid), params.nn)
    return key, salt


def ratchet_base_key(suite: int, base_key: bytes) -> bytes:
    """Implements the Sender Keys ratchet step, RFC 9605 §5.1.

    base_key[i+1] = HKDF-Expand(HKDF-Extract("", base_key[i]), "SFrame 1.0 Ratchet", Nh).
    Note that the label has no trailing space and no suite id, so the chain
    depends only on the suite's hash.
    """
    params = suite_params(suite)
    return _expand(params, sframe_secret(suite, base_key), RATCHET_LABEL, params.nh)


def sender_key_kid(key_generation: int, ratchet_step: int, r: int) -> int:
    """KID = (key_generation << R) + (ratchet_step mod 2^R) (RFC 9605 §5.1)."""
    if type(r) is not int or not 0 <= r <= 64:
        raise InvalidArgument("R must be an integer in [0, 64]")
    if type(ratchet_step) is not int or ratchet_step < 0:
        raise InvalidArgument("ratchet_step must be a non-negative integer")
    if type(key_generation) is not int or not 0 <= key_generation < 1 << (64 - r):
        raise InvalidArgument("key_generation must fit in the top 64 - R bits of the KID")
    return (key_generation << r) | (ratchet_step & ((1 << r) - 1))


# --- The AEADs (RFC 9605 §4.5, §4.5.1; spec/sframe.md §4, §5) -------------------------


class _Aead(Protocol):
    """pyca's AEAD interface, which AESGCM has and ``AesCtrHmac`` copies."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes | memoryview, associated_data: bytes) -> bytes: ...


# AES-CTR's initial counter block is nonce ‖ 0x00000000 (RFC 9605 §4.5.1).
_INITIAL_BLOCK_COUNTER: Final = bytes(4)


class AesCtrHmac:
    """Implements the AES-CTR + HMAC AEAD, RFC 9605 §4.5.1 (encrypt-then-MAC).

    enc_key = key[:Nka], auth_key = key[Nka:]; ct = AES-CTR(enc_key, nonce ‖
    0^32, pt); tag = HMAC(auth_key, uint64(len(aad)) ‖ uint64(len(ct)) ‖
    uint64(Nt) ‖ nonce ‖ aad ‖ ct) truncated to its first Nt bytes. Like pyca's
    AEADs, ``decrypt`` raises ``InvalidTag``; callers turn it into AuthFailed.
    """

    __slots__ = ("_auth_key", "_enc_key", "_hash", "_nt")

    def __init__(self, suite: int, key: bytes) -> None:
        params = suite_params(suite)
        self._enc_key, self._auth_key = ctr_hmac_subkeys(suite, key)
        self._hash = params.hash_algorithm()
        self._nt = params.nt

    def __repr__(self) -> str:
        return "AesCtrHmac(<key redacted>)"

    def _tag(self, nonce: bytes, aad: bytes, ct: bytes) -> bytes:
        mac = pyca_hmac.HMAC(self._auth_key, self._hash)
        mac.update(struct.pack(">QQQ", len(aad), len(ct), self._nt) + nonce + aad)
        mac.update(ct)
        return mac.finalize()[: self._nt]

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        ct = aes_ctr(self._enc_key, nonce + _INITIAL_BLOCK_COUNTER, data)
        return ct + self._tag(nonce, associated_data, ct)

    def decrypt(self, nonce: bytes, data: bytes | memoryview, associated_data: bytes) -> bytes:
        if len(data) < self._nt:
            raise InvalidTag
        ct, tag = bytes(data[: -self._nt]), bytes(data[-self._nt :])
        # The tag is checked, in constant time, before any decryption (RFC 9605 §4.5.1).
        if not constant_time_equal(self._tag(nonce, associated_data, ct), tag):
            raise InvalidTag
        return aes_ctr(self._enc_key, nonce + _INITIAL_BLOCK_COUNTER, ct)


def ctr_hmac_subkeys(suite: int, key: bytes) -> tuple[bytes, bytes]:
    """``(enc_key, auth_key)`` = ``(key[:Nka], key[Nka:])`` of a CTR + HMAC suite.

    RFC 9605 §4.5.1.
    """
    params = suite_params(suite)
    if params.nka is None:
        raise InvalidArgument("an AES-GCM suite has no CTR + HMAC subkeys")
    require_bytes(key, params.nk, "SFrame AEAD key")
    return key[: params.nka], key[params.nka :]


def _make_aead(params: SuiteParams, key: bytes) -> _Aead:
    require_bytes(key, params.nk, "SFrame AEAD key")
    return AESGCM(key) if params.nka is None else AesCtrHmac(params.suite, key)


# Largest plaintext, and largest metadata, one frame may carry: 16 MiB. The
# largest compressed video frame (a 4K key frame) is a few MiB; the cap bounds
# the memory one frame can make a receiver allocate, and keeps the AES-CTR
# block counter far below 2^32, where pyca's 128-bit counter increment and
# the RFC's 32-bit block counter would diverge (spec/sframe.md §7).
MAX_FRAME_SIZE: Final = 1 << 24


def _check_sizes(metadata: object, plaintext: object) -> None:
    if type(metadata) is not bytes or type(plaintext) is not bytes:
        raise InvalidArgument("SFrame metadata and payload must be bytes")
    if len(metadata) > MAX_FRAME_SIZE or len(plaintext) > MAX_FRAME_SIZE:
        raise LimitExceeded(f"SFrame metadata or payload exceeds {MAX_FRAME_SIZE} bytes")


def aead_encrypt(suite: int, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """AEAD.Encrypt(key, nonce, aad, pt) of ``suite`` (RFC 9605 §4.5, §4.5.1): ct ‖ tag."""
    params = suite_params(suite)
    aead = _make_aead(params, key)
    _check_sizes(aad, plaintext)
    return aead.encrypt(require_bytes(nonce, params.nn, "SFrame nonce"), plaintext, aad)


def aead_decrypt(suite: int, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    """AEAD.Decrypt(key, nonce, aad, ct) of ``suite`` (RFC 9605 §4.5, §4.5.1)."""
    params = suite_params(suite)
    aead = _make_aead(params, key)
    _check_sizes(aad, ciphertext)
    require_bytes(nonce, params.nn, "SFrame nonce")
    if len(ciphertext) < params.nt:
        raise MalformedMessage("SFrame AEAD ciphertext is shorter than the tag")
    return _open(aead, nonce, ciphertext, aad)


def _open(aead: _Aead, nonce: bytes, data: bytes | memoryview, aad: bytes) -> bytes:
    try:
        return aead.decrypt(nonce, data, aad)
    except InvalidTag:
        raise AuthFailed("SFrame authentication tag check failed") from None


# --- Frame protection (RFC 9605 §4.4.3, §4.4.4; spec/sframe.md §6, §7, §8) -------------


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class FrameKey:
    """The (sframe_key, sframe_salt) of one KID, ready for frames (RFC 9605 §4.4.1).

    Built once per KID with ``derive_frame_key``; caches the AEAD object, the
    salt as an integer and the header's config byte and KID bytes for each
    CTR field (``_header_prefixes``). Secrets never appear in ``repr``;
    equality is identity, so key bytes are never compared.
    """

    suite: CipherSuite
    kid: int
    key: Annotated[bytes, SECRET]
    salt: Annotated[bytes, SECRET]
    _aead: _Aead = field(init=False)
    _salt_int: int = field(init=False)
    _nn: int = field(init=False)
    _prefixes: tuple[bytes, ...] = field(init=False)
    _nt: int = field(init=False)

    def __post_init__(self) -> None:
        params = suite_params(self.suite)
        _check_u64(self.kid, "KID")
        require_bytes(self.salt, params.nn, "SFrame salt")
        object.__setattr__(self, "suite", params.suite)
        object.__setattr__(self, "_aead", _make_aead(params, self.key))
        object.__setattr__(self, "_salt_int", int.from_bytes(self.salt, "big"))
        object.__setattr__(self, "_nn", params.nn)
        object.__setattr__(self, "_prefixes", _header_prefixes(self.kid))
        object.__setattr__(self, "_nt", params.nt)

    def nonce(self, ctr: int) -> bytes:
        """nonce = sframe_salt XOR encode_big_endian(CTR, Nn) (RFC 9605 §4.4.3)."""
        return (self._salt_int ^ _check_u64(ctr, "CTR")).to_bytes(self._nn, "big")

    def __repr__(self) -> str:
        return f"FrameKey(suite={self.suite.name}, kid={self.kid}, key=<redacted>, salt=<redacted>)"


def derive_frame_key(suite: int, base_key: bytes, kid: int) -> FrameKey:
    """The FrameKey of ``kid`` under ``base_key`` (RFC 9605 §4.4.2)."""
    key, salt = derive_key_salt(suite, base_key, kid)
    return FrameKey(suite_params(suite).suite, kid, key, salt)


def encrypt_frame(key: FrameKey, ctr: int, metadata: bytes, plaintext: bytes) -> bytes:
    """Implements SFrame encryption, RFC 9605 §4.4.3: header ‖ AEAD.Encrypt(...).

    The caller owns the counter and MUST never use one (key, ctr) pair twice
    (spec/sframe.md §6.2). ``metadata`` is authenticated, not sent.
    """
    _check_u64(ctr, "CTR")
    _check_sizes(metadata, plaintext)
    header = _encode_header(key._prefixes, ctr)
    nonce = (key._salt_int ^ ctr).to_bytes(key._nn, "big")
    return header + key._aead.encrypt(nonce, plaintext, header + metadata)


# pyca takes a memoryview through a slower path than bytes; below this size,
# slicing the body off the header (a copy) is the cheaper of the two.
_COPY_BELOW: Final = 32 * 1024


def _check_parsed(header: object, frame: bytes) -> tuple[int, int, int]:
    """Sanity-check a caller's ``decode_header`` result before trusting it."""
    if not (isinstance(header, tuple) and len(header) == 3 and type(frame) is bytes):
        raise InvalidArgument("header must be the (kid, ctr, header_length) of decode_header")
    kid, ctr, header_len = header
    if type(header_len) is not int or not 1 <= header_len <= min(MAX_HEADER_LEN, len(frame)):
        raise InvalidArgument("header_length does not fit the frame")
    return kid, _check_u64(ctr, "CTR"), header_len


def open_frame(
    key: FrameKey,
    frame: bytes,
    metadata: bytes,
    header: tuple[int, int, int] | None = None,
) -> bytes:
    """Implements SFrame decryption, RFC 9605 §4.4.4; returns the plaintext.

    ``header`` may pass in the ``decode_header(frame)`` result the caller
    already computed to look up ``key``. A frame for another KID is
    UnknownKeyId, a body shorter than the tag MalformedMessage, and any
    authentication failure AuthFailed (spec/sframe.md §6.3).
    """
    kid, ctr, header_len = decode_header(frame) if header is None else _check_parsed(header, frame)
    if kid != key.kid:
        raise UnknownKeyId("the frame's KID is not the key's KID")
    if type(metadata) is not bytes or len(metadata) > MAX_FRAME_SIZE:
        _check_sizes(metadata, b"")
    body_len = len(frame) - header_len - key._nt
    if body_len < 0:
        raise MalformedMessage("SFrame ciphertext is shorter than the tag")
    if body_len > MAX_FRAME_SIZE:
        raise LimitExceeded(f"SFrame payload would exceed {MAX_FRAME_SIZE} bytes")
    # The CTR is in range: decode_header or _check_parsed checked it.
    nonce = (key._salt_int ^ ctr).to_bytes(key._nn, "big")
    body = frame[header_len:] if len(frame) < _COPY_BELOW else memoryview(frame)[header_len:]
    return _open(key._aead, nonce, body, frame[:header_len] + metadata)
