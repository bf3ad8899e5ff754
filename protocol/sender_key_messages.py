"""Sender-key wire formats: distribution message and SenderKeyMessage (spec/sender-keys.md §3).

libsignal ``rust/protocol/src/protocol.rs`` and ``proto/wire.proto``. Both
messages are one version byte, ``(3 << 4) | 3 = 0x33`` as libsignal 0.103.0
writes it, then a protobuf; a SenderKeyMessage ends with a 64-byte XEdDSA
signature over the version byte and the protobuf:

    SenderKeyDistributionMessage = 0x33 ‖ { 1 distribution_uuid (16), 2 chain_id,
                                            3 iteration, 4 chain_key (32),
                                            5 signing_key (0x05 ‖ 32) }
    SenderKeyMessage             = 0x33 ‖ { 1 distribution_uuid (16), 2 chain_id,
                                            3 iteration, 4 ciphertext } ‖ signature (64)

Readers follow libsignal's version rule: only the high nibble is the
version; below 3 and above 3 are UNSUPPORTED_VERSION. The protobuf is read
strictly (``protobuf.read_fields``): every field present once, with its wire
type, and nothing else (MALFORMED_MESSAGE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from protocol.encoding import decode_ec, encode_ec
from protocol.errors import InvalidArgument, MalformedMessage, UnsupportedVersion
from protocol.primitives import X25519_LEN
from protocol.protobuf import (
    UINT32_LIMIT,
    Schema,
    bytes_field,
    read_fields,
    require_fields,
    uint32_field,
    write_fields,
)
from protocol.secrecy import SECRET

SENDER_KEY_VERSION: Final = 3
"""libsignal ``SENDERKEY_MESSAGE_CURRENT_VERSION``."""
SENDER_KEY_VERSION_BYTE: Final = SENDER_KEY_VERSION << 4 | SENDER_KEY_VERSION
"""0x33: what libsignal (0.28.0 and 0.103.0 alike) writes for both messages."""
DISTRIBUTION_ID_LEN: Final = 16
"""A distribution id is a UUID, sent as its 16 bytes."""
CHAIN_KEY_LEN: Final = 32
SIGNATURE_LEN: Final = 64

# SenderKeyDistributionMessage {1 distribution_uuid, 2 chain_id, 3 iteration,
# 4 chain_key, 5 signing_key}
_DISTRIBUTION: Final[Schema] = {
    1: "bytes",
    2: "varint",
    3: "varint",
    4: "bytes",
    5: "bytes",
}
# SenderKeyMessage {1 distribution_uuid, 2 chain_id, 3 iteration, 4 ciphertext}
_MESSAGE: Final[Schema] = {1: "bytes", 2: "varint", 3: "varint", 4: "bytes"}


def _check_u32(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < UINT32_LIMIT:
        raise InvalidArgument(f"{what} is a u32")
    return value


def _check_bytes(value: object, length: int | None, what: str) -> bytes:
    if not isinstance(value, bytes) or (length is not None and len(value) != length):
        raise InvalidArgument(f"{what} must be {length} bytes" if length else f"{what} is bytes")
    return value


@dataclass(frozen=True, slots=True)
class SenderKeyDistributionMessage:
    """What a sender gives each member (over 1:1 sessions) so it can read the sender's chain."""

    distribution_id: bytes
    chain_id: int
    iteration: int
    chain_key: bytes = field(metadata=SECRET)
    signing_key: bytes
    """The signature key's raw X25519 u (sent as 0x05 ‖ u)."""

    def __post_init__(self) -> None:
        _check_bytes(self.distribution_id, DISTRIBUTION_ID_LEN, "distribution id")
        _check_u32(self.chain_id, "chain id")
        _check_u32(self.iteration, "iteration")
        _check_bytes(self.chain_key, CHAIN_KEY_LEN, "chain key")
        _check_bytes(self.signing_key, X25519_LEN, "signing key")

    def __repr__(self) -> str:
        return (
            f"SenderKeyDistributionMessage(distribution_id={self.distribution_id.hex()}, "
            f"chain_id={self.chain_id}, iteration={self.iteration}, chain_key=<redacted>, "
            f"signing_key={self.signing_key.hex()})"
        )


def _version(data: object, minimum: int, what: str) -> bytes:
    """libsignal's version check on the first byte: its high nibble must be 3."""
    if not isinstance(data, bytes):
        raise InvalidArgument(f"a {what} is bytes")
    if len(data) < minimum:
        raise MalformedMessage(f"{what} is too short")
    if data[0] >> 4 != SENDER_KEY_VERSION:
        raise UnsupportedVersion(f"{what} version byte {data[0]:#04x} is not supported")
    return data


def _read(data: bytes, schema: Schema) -> dict[int, int | bytes]:
    """The protobuf, strictly, with every field of ``schema`` present (libsignal requires all)."""
    fields = read_fields(data, schema)
    require_fields(fields, tuple(schema))
    return fields


def encode_distribution_message(message: SenderKeyDistributionMessage) -> bytes:
    """0x33 ‖ protobuf, fields in tag order (libsignal ``SenderKeyDistributionMessage::new``)."""
    return bytes([SENDER_KEY_VERSION_BYTE]) + write_fields(
        {
            1: message.distribution_id,
            2: message.chain_id,
            3: message.iteration,
            4: message.chain_key,
            5: encode_ec(message.signing_key),
        }
    )


def decode_distribution_message(data: bytes) -> SenderKeyDistributionMessage:
    """Strict reader (libsignal ``SenderKeyDistributionMessage::try_from``).

    Note that libsignal checks the length (at least 65 bytes) before the
    version, as here; its signing key is any 33 bytes its
    ``PublicKey::deserialize`` takes, ours must also be a valid X25519 key
    (INVALID_PUBLIC_KEY), which an honest libsignal key always is.
    """
    what = "distribution message"
    fields = _read(_version(data, 1 + 2 * CHAIN_KEY_LEN, what)[1:], _DISTRIBUTION)
    uuid, chain_key, signing_key = (bytes_field(fields, n) for n in (1, 4, 5))
    if len(uuid) != DISTRIBUTION_ID_LEN:
        raise MalformedMessage("distribution id is not 16 bytes")
    if len(chain_key) != CHAIN_KEY_LEN:
        raise MalformedMessage("chain key is not 32 bytes")
    if len(signing_key) != 1 + X25519_LEN:
        raise MalformedMessage("signing key is not 33 bytes")
    chain_id, iteration = uint32_field(fields, 2), uint32_field(fields, 3)
    return SenderKeyDistributionMessage(
        uuid, chain_id, iteration, chain_key, decode_ec(signing_key)
    )


@dataclass(frozen=True, slots=True)
class SenderKeyMessage:
    """A decoded SenderKeyMessage; ``signed`` is the version byte and protobuf as received."""

    distribution_id: bytes
    chain_id: int
    iteration: int
    ciphertext: bytes
    signed: bytes
    signature: bytes

    def __repr__(self) -> str:
        return (
            f"SenderKeyMessage(distribution_id={self.distribution_id.hex()}, "
            f"chain_id={self.chain_id}, iteration={self.iteration}, "
            f"ciphertext=<{len(self.ciphertext)} bytes>)"
        )


def encode_message_body(
    distribution_id: bytes, chain_id: int, iteration: int, ciphertext: bytes
) -> bytes:
    """0x33 ‖ protobuf: the bytes the sender signs (libsignal ``SenderKeyMessage::new``)."""
    _check_bytes(distribution_id, DISTRIBUTION_ID_LEN, "distribution id")
    _check_bytes(ciphertext, None, "ciphertext")
    fields: dict[int, int | bytes] = {
        1: distribution_id,
        2: _check_u32(chain_id, "chain id"),
        3: _check_u32(iteration, "iteration"),
        4: ciphertext,
    }
    return bytes([SENDER_KEY_VERSION_BYTE]) + write_fields(fields)


def decode_message(data: bytes) -> SenderKeyMessage:
    """Strict reader (libsignal ``SenderKeyMessage::try_from``): version, protobuf, signature.

    Checks only the form; the signature is verified against the sender's
    state (``sender_keys.decrypt``).
    """
    what = "sender key message"
    _version(data, 1 + SIGNATURE_LEN, what)
    signed, signature = data[:-SIGNATURE_LEN], data[-SIGNATURE_LEN:]
    fields = _read(signed[1:], _MESSAGE)
    uuid, ciphertext = bytes_field(fields, 1), bytes_field(fields, 4)
    if len(uuid) != DISTRIBUTION_ID_LEN:
        raise MalformedMessage("distribution id is not 16 bytes")
    chain_id, iteration = uint32_field(fields, 2), uint32_field(fields, 3)
    return SenderKeyMessage(uuid, chain_id, iteration, ciphertext, signed, signature)
