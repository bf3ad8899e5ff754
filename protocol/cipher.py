"""Message keys and cipher, a profile part: ENCRYPT and DECRYPT of one message.

Implements ENCRYPT / DECRYPT (DR §3.1, §5.2; spec/ratchet.md §2.1): the
expansion of a message key into cipher keys, and the cipher that binds
CONCAT(AD, header). Two ciphers exist:

* ``AesGcmCipher``: HKDF-SHA256(salt, mk, info) -> key 32 ‖ nonce 12, then
  AES-256-GCM over the plaintext with AD ‖ header block as associated data.
* ``AesCbcHmacCipher``: libsignal's ``MessageKeys``: HKDF-SHA256(salt, mk,
  "WhisperMessageKeys") -> cipher key 32 ‖ MAC key 32 ‖ IV 16, AES-256-CBC
  with PKCS#7, and the first 8 bytes of HMAC-SHA256(MAC key,
  Encode(IK_sender) ‖ Encode(IK_receiver) ‖ framed message) appended.

A cipher part provides (spec/profiles.md §1.2): ``message_keys(mk, salt)``,
``check_ad(ad)``, ``seal(...)``, ``open(...)`` and ``mac_len``, the length
of the MAC the framing must carry after the message (0 for an AEAD).

``salt`` is the optional per-message input of the message-key derivation
(spec/ratchet.md §2.2): libsignal v4 passes its SPQR message key there
(``MessageKeyGenerator::generate_keys(pqr_key)``); without it the salt is
HKDF's default, HashLen zero bytes, which is what every profile uses today.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Final, NamedTuple, Protocol

from protocol.errors import AuthFailed, InvalidArgument
from protocol.primitives import (
    aes_cbc_pkcs7_decrypt,
    aes_cbc_pkcs7_encrypt,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    constant_time_equal,
    hkdf_sha256,
    hmac_sha256,
)
from protocol.secrecy import SECRET

if TYPE_CHECKING:
    from protocol.wire import Header, RatchetMessage

ENCODED_KEY_LEN: Final = 33
"""Encode(IK) = 0x05 ‖ u (X3DH §2.1)."""
PER_MESSAGE_INPUT_LEN: Final = 32
"""A per-message input is a 32-byte HKDF salt (libsignal v4: the SPQR message key)."""


class MessageKeys(NamedTuple):
    """ENCRYPT's expanded keys: AES key, MAC key (CBC only, else empty), nonce or IV.

    libsignal's ``MessageKeys`` (cipher key, MAC key, IV); each field is
    marked secret (protocol/secrecy.py).
    """

    enc_key: Annotated[bytes, SECRET]
    auth_key: Annotated[bytes, SECRET]
    nonce: Annotated[bytes, SECRET]

    def __repr__(self) -> str:
        return "MessageKeys(<redacted>)"


class Frame(Protocol):
    """What a cipher needs of a framing part: the message bytes around a ciphertext."""

    def frame(self, header: Header, block: bytes, ciphertext: bytes) -> bytes: ...


def _check_info(info: bytes) -> None:
    if not isinstance(info, bytes) or not info:
        raise InvalidArgument("message keys need an info string")


def _check_salt(salt: bytes) -> None:
    if not isinstance(salt, bytes) or len(salt) != PER_MESSAGE_INPUT_LEN:
        raise InvalidArgument(f"a per-message input is {PER_MESSAGE_INPUT_LEN} bytes")


@dataclass(frozen=True, slots=True)
class AesGcmCipher:
    """AES-256-GCM with key and nonce expanded from mk (DR §5.2 with a modern AEAD)."""

    # ENCRYPT(mk, ...): HKDF-SHA256(salt, ikm = mk, info) expands the AEAD keys.
    message_keys_info: bytes
    name: ClassVar[str] = "AES-256-GCM"
    mac_len: ClassVar[int] = 0

    def __post_init__(self) -> None:
        _check_info(self.message_keys_info)

    def message_keys(self, mk: bytes, salt: bytes | None = None) -> MessageKeys:
        """44 bytes = key ‖ nonce. Each mk encrypts exactly one message, so a
        nonce derived from it is never reused under its key (DR §5.2)."""
        if salt is not None:
            _check_salt(salt)
        out = hkdf_sha256(mk, salt, self.message_keys_info, 44)
        return MessageKeys(out[:32], b"", out[32:])

    def check_ad(self, ad: bytes) -> None:
        if not isinstance(ad, bytes):
            raise InvalidArgument("AD must be bytes")

    def seal(
        self,
        keys: MessageKeys,
        plaintext: bytes,
        ad: bytes,
        sender_is_initiator: bool,
        header: Header,
        block: bytes,
        framing: Frame,
    ) -> bytes:
        """ENCRYPT(mk, plaintext, CONCAT(AD, header block)), framed."""
        ciphertext = aes_gcm_encrypt(keys.enc_key, keys.nonce, plaintext, ad + block)
        return framing.frame(header, block, ciphertext)

    def open(
        self, keys: MessageKeys, message: RatchetMessage, ad: bytes, sender_is_initiator: bool
    ) -> bytes:
        """DECRYPT: AES-256-GCM open with AD ‖ header block; AUTH_FAILED on any failure."""
        return aes_gcm_decrypt(
            keys.enc_key, keys.nonce, message.ciphertext, ad + message.authenticated
        )


@dataclass(frozen=True, slots=True)
class AesCbcHmacCipher:
    """libsignal's AES-256-CBC + HMAC-SHA256 truncated to 8 bytes (spec/ratchet.md §5.3)."""

    message_keys_info: bytes
    name: ClassVar[str] = "AES-256-CBC-HMAC-SHA256-64"
    mac_len: ClassVar[int] = 8

    def __post_init__(self) -> None:
        _check_info(self.message_keys_info)

    def message_keys(self, mk: bytes, salt: bytes | None = None) -> MessageKeys:
        """80 bytes = cipher key ‖ MAC key ‖ IV (libsignal ``MessageKeys::derive_keys``)."""
        if salt is not None:
            _check_salt(salt)
        out = hkdf_sha256(mk, salt, self.message_keys_info, 80)
        return MessageKeys(out[:32], out[32:64], out[64:])

    def check_ad(self, ad: bytes) -> None:
        if not isinstance(ad, bytes) or len(ad) != 2 * ENCODED_KEY_LEN:
            raise InvalidArgument("libsignal's AD must be Encode(IK_A) ‖ Encode(IK_B)")

    @staticmethod
    def mac_prefix(ad: bytes, sender_is_initiator: bool) -> bytes:
        """Encode(IK_sender) ‖ Encode(IK_receiver), from AD = Encode(IK_A) ‖ Encode(IK_B)."""
        if sender_is_initiator:
            return ad
        return ad[ENCODED_KEY_LEN:] + ad[:ENCODED_KEY_LEN]

    def seal(
        self,
        keys: MessageKeys,
        plaintext: bytes,
        ad: bytes,
        sender_is_initiator: bool,
        header: Header,
        block: bytes,
        framing: Frame,
    ) -> bytes:
        """Encrypt, frame, then MAC the identities and the framed message (encrypt-then-MAC)."""
        body = framing.frame(
            header, block, aes_cbc_pkcs7_encrypt(keys.enc_key, keys.nonce, plaintext)
        )
        mac = hmac_sha256(keys.auth_key, self.mac_prefix(ad, sender_is_initiator) + body)
        return body + mac[: self.mac_len]

    def open(
        self, keys: MessageKeys, message: RatchetMessage, ad: bytes, sender_is_initiator: bool
    ) -> bytes:
        """Check the MAC in constant time, then decrypt (AUTH_FAILED on either failure)."""
        prefix = self.mac_prefix(ad, sender_is_initiator)
        mac = hmac_sha256(keys.auth_key, prefix + message.authenticated)
        if not constant_time_equal(mac[: self.mac_len], message.mac):
            raise AuthFailed("message MAC does not verify")
        return aes_cbc_pkcs7_decrypt(keys.enc_key, keys.nonce, message.ciphertext)


MessageCipher = AesGcmCipher | AesCbcHmacCipher
