"""Key encodings and integer helpers shared by the wire formats (spec/profiles.md §2).

``Encode(PK)`` (X3DH §2.1) and ``EncodeKEM(PK)`` (PQXDH §2.1) put a one-byte
type in front of the raw key. The type bytes are pairwise distinct and the
key lengths differ, so the ranges of the two encodings are disjoint, which
PQXDH §2.1 requires (since its revision 2) against key-confusion attacks (F3).
"""

from __future__ import annotations

from typing import Final

import msgpack

from protocol.errors import InvalidPublicKey, MalformedMessage, ProtocolError
from protocol.primitives import KEM_PUBLIC_LEN, X25519_LEN, KemName, check_x25519_public

# 0x05: Curve25519 public key, the value libsignal uses (rust/core/src/curve.rs).
CURVE25519_TYPE: Final = 0x05
# KEM type bytes. 0x0A is libsignal's FIPS 203 ML-KEM-1024 id; libsignal has
# no ML-KEM-768 id (0x07 is round-3 Kyber768), so we use 0x0B, which no
# libsignal type byte uses.
# libsignal kem::KeyType: Kyber1024 0x08 (the only one libsignal 0.103 accepts),
# ML-KEM-1024 0x0A; ML-KEM-768 0x0B is this project's own.
KEM_TYPE: Final[dict[str, int]] = {"ML-KEM-768": 0x0B, "ML-KEM-1024": 0x0A, "Kyber1024": 0x08}


def encode_ec(public: bytes) -> bytes:
    """Encode(PK) = 0x05 ‖ u (33 bytes)."""
    check_x25519_public(public)
    return bytes([CURVE25519_TYPE]) + public


def decode_ec(encoded: bytes) -> bytes:
    """Inverse of ``encode_ec``; refuses a wrong type byte or a bad key."""
    if not isinstance(encoded, bytes) or len(encoded) != 1 + X25519_LEN:
        raise InvalidPublicKey("encoded X25519 key must be 33 bytes")
    if encoded[0] != CURVE25519_TYPE:
        raise InvalidPublicKey("encoded X25519 key has the wrong type byte")
    return check_x25519_public(encoded[1:])


def encode_kem(kem: KemName, public: bytes) -> bytes:
    """EncodeKEM(PK) = type byte ‖ encapsulation key."""
    if not isinstance(public, bytes) or len(public) != KEM_PUBLIC_LEN[kem]:
        raise InvalidPublicKey(f"{kem} public key must be {KEM_PUBLIC_LEN[kem]} bytes")
    return bytes([KEM_TYPE[kem]]) + public


def decode_kem(kem: KemName, encoded: bytes) -> bytes:
    """Inverse of ``encode_kem`` for the expected KEM."""
    if not isinstance(encoded, bytes) or len(encoded) != 1 + KEM_PUBLIC_LEN[kem]:
        raise InvalidPublicKey(f"encoded {kem} key has the wrong length")
    if encoded[0] != KEM_TYPE[kem]:
        raise InvalidPublicKey(f"encoded {kem} key has the wrong type byte")
    return encoded[1:]


def u32be(value: int) -> bytes:
    """A u32 in big-endian; refuses values outside 0..2^32-1."""
    if not 0 <= value < 2**32:
        raise MalformedMessage("value does not fit in u32")
    return value.to_bytes(4, "big")


# Note that a value below 0x80 is its own one-byte varint; these are most
# varints written (field keys, counters, short lengths), so they are looked up
# instead of built, saving a bytearray per field of every libsignal message.
_ONE_BYTE_VARINTS: Final = tuple(bytes((value,)) for value in range(0x80))


def encode_varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer below 2^64."""
    if 0 <= value < 0x80:
        return _ONE_BYTE_VARINTS[value]
    if not 0 <= value < 2**64:
        raise MalformedMessage("varint out of range")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, offset: int) -> tuple[int, int]:
    """Decode a minimal protobuf varint at ``offset``; returns (value, next offset)."""
    if offset < len(data) and data[offset] < 0x80:  # one byte: minimal whatever its value
        return data[offset], offset + 1
    value = 0
    for index in range(10):
        if offset + index >= len(data):
            raise MalformedMessage("truncated varint")
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if index and byte == 0:
                raise MalformedMessage("non-minimal varint")
            if value >= 2**64:
                raise MalformedMessage("varint out of range")
            return value, offset + index + 1
    raise MalformedMessage("varint longer than 10 bytes")


def _refuse_ext(code: int, data: bytes) -> object:
    raise MalformedMessage("msgpack extension types are not allowed")


def unpack_msgpack(
    data: bytes,
    what: str,
    *,
    error: type[ProtocolError] = MalformedMessage,
) -> object:
    """Decode exactly one msgpack value, strictly, for every msgpack format here.

    Strings must be UTF-8, map keys strings or bytes, extension types are
    refused, and trailing bytes are an error. msgpack raises several unrelated
    exception types for bad input; every one becomes ``error`` (MALFORMED_MESSAGE
    for messages, STATE_CORRUPT for stored state), naming ``what``.
    """
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_refuse_ext)
    except Exception:
        raise error(f"{what} is not one well-formed msgpack value") from None
