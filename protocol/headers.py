"""Header protection, a profile part: plaintext headers, or DR §4 header encryption.

Implements CONCAT(AD, header) with a plaintext header (DR §3.1, §3.4) and
HENCRYPT / HDECRYPT with trial decryption (DR §4; spec/header-encryption.md
§2-§3). A header-protection part provides (spec/profiles.md §1.2):

* ``encrypted``: whether the ratchet keeps header keys (HKs, HKr, NHKs,
  NHKr) and KDF_RK derives a next header key;
* ``block_len``: the bytes the protected header takes in a message;
* ``protect(header, hks, rng)``: the header block a message carries;
* ``read(block)``: the header of a received block if it is in the clear;
* ``chain_id(dh, hk)``: what names a receiving chain in MKSKIPPED;
* ``locate(message, current, next, old)``: the header and chain of a
  received message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, Literal

from protocol.errors import AuthFailed, InvalidArgument
from protocol.primitives import aes_gcm_decrypt, aes_gcm_encrypt, hkdf_expand_sha256
from protocol.randomness import Random
from protocol.ratchet_keys import HeaderKey
from protocol.wire import HEADER_LEN, Header, RatchetMessage, decode_header, encode_header

KEY_LEN: Final = 32
HEADER_SALT_LEN: Final = 16
_ZERO_NONCE: Final = bytes(12)
ENCRYPTED_HEADER_LEN: Final = HEADER_SALT_LEN + HEADER_LEN + 16
"""r (16) ‖ AES-256-GCM(header) (40) ‖ tag (16): spec/header-encryption.md §2."""

Source = int | Literal["current", "next"]
"""Which chain a message belongs to: the current one, a new one (DH step), or old_chains[i]."""


@dataclass(frozen=True, slots=True)
class PlainHeaders:
    """Headers in the clear, authenticated as part of CONCAT(AD, header) (DR §3.4)."""

    encrypted: ClassVar[bool] = False
    block_len: ClassVar[int] = HEADER_LEN
    header_keys_info: ClassVar[bytes] = b""  # no header keys

    def protect(self, header: Header, hks: HeaderKey | None, rng: Random) -> bytes:
        """The 40-byte header encoding dh ‖ pn ‖ n (spec/wire.md §1)."""
        return encode_header(header)

    def read(self, block: bytes) -> Header | None:
        return decode_header(block)

    def chain_id(self, dh: bytes | None, hk: HeaderKey | None) -> bytes | None:
        """A chain is named by the sender's ratchet public key."""
        return dh

    def locate(
        self,
        message: RatchetMessage,
        current: bytes | None,
        next_hk: HeaderKey | None,
        old: Sequence[bytes],
    ) -> tuple[Header, bytes, Source]:
        """The chain the header's ratchet key names: current, an old one, or a new one."""
        header = message.header
        assert header is not None  # a plain-header framing always parses it
        if header.dh == current:
            return header, header.dh, "current"
        for index, chain_id in enumerate(old):
            if chain_id == header.dh:
                return header, header.dh, index
        return header, header.dh, "next"


@dataclass(frozen=True, slots=True)
class EncryptedHeaders:
    """DR §4 header encryption, a fresh AES-256-GCM key per header (spec/header-encryption.md)."""

    # Per-header AEAD key: HKDF-Expand(HK, header_keys_info ‖ r) (spec/header-encryption.md §2).
    header_keys_info: bytes
    encrypted: ClassVar[bool] = True
    block_len: ClassVar[int] = ENCRYPTED_HEADER_LEN

    def __post_init__(self) -> None:
        if not isinstance(self.header_keys_info, bytes) or not self.header_keys_info:
            raise InvalidArgument("header encryption needs a header-keys info string")

    def subkey(self, hk: bytes, salt: bytes) -> bytes:
        """The one-header AES key HKDF-Expand(hk, header_keys_info ‖ r, 32).

        Implements the header key schedule of spec/header-encryption.md §2.
        """
        return hkdf_expand_sha256(hk, self.header_keys_info + salt, KEY_LEN)

    def hencrypt(self, hk: bytes, header_bytes: bytes, rng: Random) -> bytes:
        """HENCRYPT(hk, header) = r ‖ AES-256-GCM(subkey(hk, r), zero nonce, header).

        hk encrypts every header of a sending chain, so the nonce must never
        repeat under it. r is 128 random bits (DR §4 asks for at least 128)
        and selects a fresh key per header, which is why the nonce may be fixed.
        """
        salt = rng.draw("header_nonce", HEADER_SALT_LEN)
        return salt + aes_gcm_encrypt(self.subkey(hk, salt), _ZERO_NONCE, header_bytes, b"")

    def hdecrypt(self, hk: bytes, enc_header: bytes) -> bytes | None:
        """HDECRYPT: the header bytes, or None when hk does not open them."""
        salt, sealed = enc_header[:HEADER_SALT_LEN], enc_header[HEADER_SALT_LEN:]
        try:
            return aes_gcm_decrypt(self.subkey(hk, salt), _ZERO_NONCE, sealed, b"")
        except AuthFailed:
            return None

    def protect(self, header: Header, hks: HeaderKey | None, rng: Random) -> bytes:
        """HENCRYPT(HKs, header) (DR §4 RatchetEncryptHE)."""
        assert hks is not None  # set whenever CKs is
        return self.hencrypt(hks, encode_header(header), rng)

    def read(self, block: bytes) -> Header | None:
        """Nothing: the header is opened by trial decryption (``locate``)."""
        return None

    def chain_id(self, dh: bytes | None, hk: HeaderKey | None) -> bytes | None:
        """A chain is named by its header key (DR §4 stores skipped keys under HKr)."""
        return hk

    def locate(
        self,
        message: RatchetMessage,
        current: bytes | None,
        next_hk: HeaderKey | None,
        old: Sequence[bytes],
    ) -> tuple[Header, bytes, Source]:
        """DecryptHeader with trial decryption (spec/header-encryption.md §3).

        Note that HKr and NHKr are tried before the old chains' header keys,
        newest first; at most one key opens a header, so the order changes
        only the cost.
        """
        candidates: list[tuple[bytes | None, Source]] = [(current, "current"), (next_hk, "next")]
        candidates += [(hk, index) for index, hk in reversed(list(enumerate(old)))]
        for hk, source in candidates:
            if hk is not None and (plain := self.hdecrypt(hk, message.authenticated)) is not None:
                return decode_header(plain), hk, source
        raise AuthFailed("no header key opens the header")


HeaderProtection = PlainHeaders | EncryptedHeaders
