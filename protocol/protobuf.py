"""The protobuf subset of libsignal's framing (spec/wire.md §3.4).

libsignal's messages (rust/protocol/src/proto/wire.proto) are proto2/proto3
messages of ``uint32`` varint fields and ``bytes`` fields. This module reads
and writes exactly that subset, for every libsignal framing.

Reading (``read_fields``) follows the protobuf encoding rules as libsignal's
decoder (prost) applies them, except where noted:

* fields may come in any order: protoc and prost write them in field-number
  order, libsignal-protocol-javascript in ``.proto`` declaration order
  (5, 1, 6, 2, 3, 4 for a PreKeyWhisperMessage), and every protobuf reader
  accepts both;
* a known field with another wire type, a truncated key, varint or length,
  are refused, as prost refuses them (``DecodeError``).

Note that the reader is stricter than prost in four ways, none of which an
honest writer (protoc, prost, protobuf.js, libsignal-protocol-javascript)
ever triggers (spec/interop-libsignal.md §4):

* a field that appears twice is refused; prost keeps the last value;
* a field the schema does not know is refused; prost skips it;
* a varint must be minimally encoded (encoding.decode_varint); prost accepts
  up to ten bytes of padding;
* a ``uint32`` value must be below 2^32; prost truncates it to 32 bits.

Writing (``write_fields``) emits fields in ascending field-number order, the
canonical order protoc and prost write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from protocol.encoding import decode_varint, encode_varint
from protocol.errors import MalformedMessage

WireType = Literal["varint", "bytes"]
_WIRE_TYPE: Final[dict[WireType, int]] = {"varint": 0, "bytes": 2}
UINT32_LIMIT: Final = 2**32

Schema = Mapping[int, WireType]
"""Field number -> wire type of every field a message may carry."""
Fields = dict[int, int | bytes]


def write_field(number: int, value: int | bytes) -> bytes:
    """One field: a uint32 as a varint (wire type 0), bytes length-delimited (wire type 2)."""
    if isinstance(value, bytes):
        return encode_varint(number << 3 | 2) + encode_varint(len(value)) + value
    return encode_varint(number << 3) + encode_varint(value)


def write_fields(fields: Mapping[int, int | bytes]) -> bytes:
    """Protobuf encoding of ``fields`` in ascending field-number order (the canonical order)."""
    return b"".join([write_field(number, fields[number]) for number in sorted(fields)])


def read_fields(data: bytes, schema: Schema) -> Fields:
    """Read a protobuf message of ``schema``'s fields, in any order (spec/wire.md §3.4).

    Refuses (MALFORMED_MESSAGE) an unknown field, a wrong wire type, a
    repeated field, truncation, a non-minimal varint and a uint32 out of range.

    Note that a key or value below 0x80 is read in place rather than through
    ``decode_varint``: a one-byte varint is minimal whatever its value, and
    every key and counter of a libsignal message is one byte, so this saves
    two Python calls per field and checks exactly the same.
    """
    fields: Fields = {}
    offset, end = 0, len(data)
    while offset < end:
        key = data[offset]
        if key < 0x80:
            offset += 1
        else:
            key, offset = decode_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        kind = schema.get(number)
        if kind is None or _WIRE_TYPE[kind] != wire_type:
            raise MalformedMessage(f"unexpected protobuf field {number} of wire type {wire_type}")
        if number in fields:
            raise MalformedMessage(f"protobuf field {number} appears twice")
        if offset < end and data[offset] < 0x80:
            value = data[offset]
            offset += 1
        else:
            value, offset = decode_varint(data, offset)
        if kind == "bytes":
            if value > end - offset:
                raise MalformedMessage("protobuf field runs past the end")
            fields[number] = data[offset : offset + value]
            offset += value
        elif value >= UINT32_LIMIT:
            raise MalformedMessage("uint32 field out of range")
        else:
            fields[number] = value
    return fields


def first_wire_type(data: bytes, number: int) -> WireType | None:
    """The wire type of field ``number``'s first occurrence, reading only up to it.

    Fields before it are skipped whatever their number; None when the field
    is absent or the bytes before it do not parse. Only the prefix is read,
    so trailing bytes (a MAC) or a truncated tail do not matter.
    """
    offset = 0
    try:
        while offset < len(data):
            key, offset = decode_varint(data, offset)
            found = {0: "varint", 2: "bytes"}.get(key & 7)
            if found is None:
                return None
            if key >> 3 == number:
                return "varint" if found == "varint" else "bytes"
            value, offset = decode_varint(data, offset)
            offset += value if found == "bytes" else 0
    except MalformedMessage:
        return None
    return None


def require_fields(fields: Fields, numbers: tuple[int, ...]) -> None:
    """Refuse a message that lacks one of the required fields ``numbers``."""
    for number in numbers:
        if number not in fields:
            missing = [n for n in numbers if n not in fields]
            raise MalformedMessage(f"protobuf fields {missing} are missing")


def bytes_field(fields: Fields, number: int) -> bytes:
    """The value of bytes field ``number`` (the schema guarantees its type)."""
    value = fields[number]
    assert isinstance(value, bytes)
    return value


def uint32_field(fields: Fields, number: int) -> int:
    """The value of uint32 field ``number`` (the schema guarantees its type)."""
    value = fields[number]
    assert isinstance(value, int)
    return value
