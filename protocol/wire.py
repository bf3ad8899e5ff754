"""Message formats on the wire (spec/wire.md).

Two framings, chosen by ``Profile.wire``:

* ``msgpack`` (pq-default, classic; spec/wire.md §2): ``version ‖ kind ‖
  msgpack map``. The map is canonical: after parsing, the message is encoded
  again and must give back the same bytes, so every value has exactly one
  encoding and nothing (field order, integer width, an extra field) can be
  changed without the change being refused.
* ``signal-v3`` (spec/wire.md §3): libsignal's v3 framing byte for byte, a
  version byte 0x33 and a protobuf ``SignalMessage`` or
  ``PreKeySignalMessage`` (rust/protocol/src/proto/wire.proto). Fields are
  written in field-number order, as protoc, prost and libsignal-protocol-
  javascript all write them. The reader is stricter than libsignal's: known
  fields with their wire type only, each once, all required ones present, and
  the canonical encoding (again: re-encode and compare).

Decoders raise only ``ProtocolError``: ``UnsupportedVersion`` for another
version byte, ``InvalidPublicKey`` for a key that parses but is refused, and
``MalformedMessage`` for everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgpack

from protocol.encoding import (
    CURVE25519_TYPE,
    decode_ec,
    decode_varint,
    encode_ec,
    encode_varint,
    unpack_msgpack,
)
from protocol.errors import MalformedMessage, ProtocolError, UnsupportedVersion
from protocol.primitives import KEM_CIPHERTEXT_LEN, X25519_LEN, check_x25519_public
from protocol.profiles import Profile
from protocol.x3dh import InitialData

# --- Ratchet header (spec/wire.md §1) ------------------------------------------------

HEADER_LEN: Final = X25519_LEN + 4 + 4
"""dh (32) ‖ pn (u32be) ‖ n (u32be)."""

U32_LIMIT: Final = 2**32


@dataclass(frozen=True, slots=True)
class Header:
    """HEADER(dh_pair, pn, n) (Double Ratchet §3.1): the sender's ratchet key and counters."""

    dh: bytes
    pn: int
    n: int


def encode_header(header: Header) -> bytes:
    """The fixed 40-byte header encoding dh ‖ pn ‖ n (spec/wire.md §1)."""
    if not (0 <= header.pn < U32_LIMIT and 0 <= header.n < U32_LIMIT):
        raise MalformedMessage("header counters must fit in u32")
    return header.dh + header.pn.to_bytes(4, "big") + header.n.to_bytes(4, "big")


def decode_header(data: bytes) -> Header:
    """Parse a 40-byte header; a refused ratchet key is INVALID_PUBLIC_KEY."""
    if len(data) != HEADER_LEN:
        raise MalformedMessage("header must be 40 bytes")
    dh = check_x25519_public(data[:X25519_LEN])
    return Header(dh, int.from_bytes(data[32:36], "big"), int.from_bytes(data[36:40], "big"))


# --- Decoded messages ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatchetMessage:
    """A decoded ratchet (normal) message.

    ``header`` is None when the header is encrypted (pq-default). ``authenticated``
    is what the AEAD or MAC binds after the session AD: the plain header, the
    encrypted header, or (signal-v3) the version byte and the protobuf.
    ``mac`` is the 8-byte truncated MAC of signal-v3 and empty otherwise.
    """

    header: Header | None
    authenticated: bytes
    ciphertext: bytes
    mac: bytes


@dataclass(frozen=True, slots=True)
class PrekeyMessage:
    """The initiator's first message: the X3DH/PQXDH initial data and the first ratchet message.

    ``initial`` is exactly what spec/x3dh.md §5 says an initial message
    carries (keys as raw u-coordinates; ``0x05 ‖ u`` on the wire); its KEM
    fields are present exactly for PQXDH. ``registration_id`` is present
    exactly for signal-v3 (libsignal's PreKeySignalMessage field 5).
    """

    initial: InitialData
    registration_id: int | None
    message: bytes


# --- msgpack framing (spec/wire.md §2) ---------------------------------------------------

MSGPACK_VERSION: Final = 0x01
KIND_MESSAGE: Final = 0x01
KIND_PREKEY: Final = 0x02
ENCRYPTED_HEADER_LEN: Final = 16 + HEADER_LEN + 16
"""r (16) ‖ AES-256-GCM(header) (40) ‖ tag (16): spec/header-encryption.md §2."""
# A prekey message carries the ratchet message plus fields of fixed maximal size
# (two 33-byte keys, three u32 ids, a KEM ciphertext of at most 1,568 bytes and
# the msgpack framing), which this allowance covers with room to spare.
PREKEY_OVERHEAD: Final = 2048


def _framed_body(data: object, kind: int, limit: int) -> bytes:
    if not isinstance(data, bytes) or len(data) < 2:
        raise MalformedMessage("message too short")
    if data[0] != MSGPACK_VERSION:
        raise UnsupportedVersion(f"message version {data[0]} is not supported")
    if data[1] != kind:
        raise MalformedMessage("wrong message kind")
    if len(data) > limit:
        raise MalformedMessage("message exceeds the size limit")
    return data[2:]


def _field(fields: Mapping[str, Any], name: str, kind: type) -> Any:
    value = fields[name]
    if type(value) is not kind:
        raise MalformedMessage(f"field {name!r} has the wrong type")
    return value


def _u32(value: object) -> int:
    if type(value) is not int or not 0 <= value < U32_LIMIT:
        raise MalformedMessage("identifier must be a u32")
    return value


def _canonical(data: bytes, encode: Callable[[], bytes]) -> None:
    if encode() != data:
        raise MalformedMessage("message is not canonically encoded")


def _pack(kind: int, fields: Mapping[str, object]) -> bytes:
    body: bytes = msgpack.packb(dict(fields), use_bin_type=True)
    return bytes([MSGPACK_VERSION, kind]) + body


def _header_len(profile: Profile) -> int:
    return ENCRYPTED_HEADER_LEN if profile.header_encryption else HEADER_LEN


# The ratchet message has a fixed shape, so it is framed by hand: the bytes
# are exactly what msgpack.packb({"h": header, "c": ciphertext}) writes (a
# two-entry map, one-character keys, bin8/bin16/bin32 by length), and the
# reader accepts nothing else. This keeps the per-message path cheap.
_MAP2: Final = b"\x82"
_KEY_H: Final = b"\xa1h"
_KEY_C: Final = b"\xa1c"
_BIN: Final = ((0xC4, 1), (0xC5, 2), (0xC6, 4))  # msgpack bin8, bin16, bin32
_BIN_WIDTH: Final = dict(_BIN)


def _bin(data: bytes) -> bytes:
    for marker, width in _BIN:
        if len(data) < 1 << (8 * width):
            return bytes([marker]) + len(data).to_bytes(width, "big") + data
    raise MalformedMessage("byte string too long")


def _read_bin(data: bytes, offset: int) -> tuple[bytes, int]:
    """One canonical msgpack bin at ``offset``: (value, next offset)."""
    width = _BIN_WIDTH.get(data[offset]) if offset < len(data) else None
    if width is None:
        raise MalformedMessage("expected a msgpack bin")
    start = offset + 1 + width
    length = int.from_bytes(data[offset + 1 : start], "big")
    if start > len(data) or start + length > len(data):
        raise MalformedMessage("bin runs past the end")
    if width > 1 and length < 1 << (8 * (width // 2)):
        raise MalformedMessage("bin length is not minimally encoded")
    return data[start : start + length], start + length


def encode_message(header_bytes: bytes, ciphertext: bytes) -> bytes:
    """Frame a ratchet message: {"h": header or encrypted header, "c": ciphertext}."""
    head = bytes([MSGPACK_VERSION, KIND_MESSAGE]) + _MAP2 + _KEY_H
    return head + _bin(header_bytes) + _KEY_C + _bin(ciphertext)


def _decode_msgpack_message(profile: Profile, data: bytes) -> RatchetMessage:
    body = _framed_body(data, KIND_MESSAGE, profile.max_message_size)
    if body[:3] != _MAP2 + _KEY_H:
        raise MalformedMessage("a message is the map {h, c}")
    header_bytes, offset = _read_bin(body, 3)
    if body[offset : offset + 2] != _KEY_C:
        raise MalformedMessage("a message is the map {h, c}")
    ciphertext, end = _read_bin(body, offset + 2)
    if end != len(body):
        raise MalformedMessage("trailing bytes after the message")
    if len(header_bytes) != _header_len(profile):
        raise MalformedMessage("header has the wrong length")
    header = None if profile.header_encryption else decode_header(header_bytes)
    return RatchetMessage(header, header_bytes, ciphertext, b"")


_PREKEY_FIELDS: Final = ("ik", "ek", "spk", "opk", "kem", "kct", "m")


def _check_prekey_shape(profile: Profile, message: PrekeyMessage) -> None:
    initial = message.initial
    ids = (initial.signed_prekey_id, initial.one_time_prekey_id, initial.kem_prekey_id)
    for value in (*ids, message.registration_id):
        if value is not None:
            _u32(value)
    if (initial.kem_prekey_id is not None) != (profile.kem is not None):
        raise MalformedMessage("KEM prekey id and ciphertext are required exactly for PQXDH")
    if (
        profile.kem is not None
        and len(initial.kem_ciphertext or b"") != KEM_CIPHERTEXT_LEN[profile.kem]
    ):
        raise MalformedMessage("KEM ciphertext has the wrong length")
    if (message.registration_id is not None) != (profile.wire == "signal-v3"):
        raise MalformedMessage("registration id is required exactly for signal-v3")


def _encode_msgpack_prekey(message: PrekeyMessage) -> bytes:
    initial = message.initial
    values: dict[str, object] = {
        "ik": encode_ec(initial.identity_key),
        "ek": encode_ec(initial.ephemeral_key),
        "spk": initial.signed_prekey_id,
        "opk": initial.one_time_prekey_id,
        "kem": initial.kem_prekey_id,
        "kct": initial.kem_ciphertext,
        "m": message.message,
    }
    return _pack(KIND_PREKEY, {k: v for k, v in values.items() if v is not None})


def _decode_msgpack_prekey(profile: Profile, data: bytes) -> PrekeyMessage:
    limit = profile.max_message_size + PREKEY_OVERHEAD
    fields = unpack_msgpack(_framed_body(data, KIND_PREKEY, limit), "prekey message")
    if not isinstance(fields, dict) or not set(fields) <= set(_PREKEY_FIELDS):
        raise MalformedMessage("a prekey message has only the fields ik, ek, spk, opk, kem, kct, m")
    if not {"ik", "ek", "spk", "m"} <= set(fields):
        raise MalformedMessage("a prekey message needs ik, ek, spk and m")
    optional = {name: fields.get(name) for name in ("opk", "kem", "kct")}
    if (optional["kem"] is None) != (optional["kct"] is None):
        raise MalformedMessage("a KEM ciphertext needs its KEM prekey id, and vice versa")
    initial = InitialData(
        identity_key=_key(_field(fields, "ik", bytes)),
        ephemeral_key=_key(_field(fields, "ek", bytes)),
        signed_prekey_id=_u32(fields["spk"]),
        one_time_prekey_id=None if optional["opk"] is None else _u32(optional["opk"]),
        kem_prekey_id=None if optional["kem"] is None else _u32(optional["kem"]),
        kem_ciphertext=None if optional["kct"] is None else _field(fields, "kct", bytes),
    )
    message = PrekeyMessage(initial, None, _field(fields, "m", bytes))
    _check_prekey_shape(profile, message)
    _canonical(data, lambda: _encode_msgpack_prekey(message))
    _decode_msgpack_message(profile, message.message)
    return message


def _key(encoded: bytes) -> bytes:
    if len(encoded) != 1 + X25519_LEN:
        raise MalformedMessage("an encoded public key is 33 bytes")
    return decode_ec(encoded)


# --- libsignal v3 protobuf framing (spec/wire.md §3) ---------------------------------------

SIGNAL_VERSION: Final = 0x33
"""(session version 3 << 4) | current version 3, as libsignal v3 software writes it."""
SIGNAL_MAC_LEN: Final = 8

WireType = Literal["varint", "bytes"]
_WIRE_TYPE: Final[dict[str, int]] = {"varint": 0, "bytes": 2}

# SignalMessage {1 ratchet_key, 2 counter, 3 previous_counter, 4 ciphertext}
_SIGNAL_MESSAGE: Final[dict[int, WireType]] = {1: "bytes", 2: "varint", 3: "varint", 4: "bytes"}
# PreKeySignalMessage {1 pre_key_id?, 2 base_key, 3 identity_key, 4 message,
# 5 registration_id, 6 signed_pre_key_id}
_PREKEY_SIGNAL_MESSAGE: Final[dict[int, WireType]] = {
    1: "varint",
    2: "bytes",
    3: "bytes",
    4: "bytes",
    5: "varint",
    6: "varint",
}


def write_protobuf(fields: list[tuple[int, int | bytes]]) -> bytes:
    """Protobuf encoding of (field number, value) pairs in the order given."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, bytes):
            out += encode_varint(number << 3 | 2) + encode_varint(len(value)) + value
        else:
            out += encode_varint(number << 3) + encode_varint(value)
    return bytes(out)


def read_protobuf(data: bytes, schema: Mapping[int, WireType]) -> dict[int, int | bytes]:
    """Strict protobuf reader: known fields with their wire type only, each at most once.

    Varints must be minimal and below 2^32 (every integer field is a uint32).
    """
    fields: dict[int, int | bytes] = {}
    offset = 0
    while offset < len(data):
        key, offset = decode_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        kind = schema.get(number)
        if kind is None or _WIRE_TYPE[kind] != wire_type or number in fields:
            raise MalformedMessage(f"unexpected protobuf field {number}/{wire_type}")
        value, offset = decode_varint(data, offset)
        if kind == "bytes":
            if value > len(data) - offset:
                raise MalformedMessage("protobuf field runs past the end")
            fields[number] = data[offset : offset + value]
            offset += value
        elif value >= U32_LIMIT:
            raise MalformedMessage("uint32 field out of range")
        else:
            fields[number] = value
    return fields


def _required(fields: Mapping[int, int | bytes], numbers: tuple[int, ...]) -> None:
    missing = [n for n in numbers if n not in fields]
    if missing:
        raise MalformedMessage(f"protobuf fields {missing} are missing")


def _signal_framed(data: object, limit: int) -> bytes:
    if not isinstance(data, bytes) or not data:
        raise MalformedMessage("message is empty")
    if data[0] != SIGNAL_VERSION:
        raise UnsupportedVersion(f"message version byte {data[0]:#04x} is not supported")
    if len(data) > limit:
        raise MalformedMessage("message exceeds the size limit")
    return data


def encode_signal_message(header: Header, ciphertext: bytes) -> bytes:
    """version ‖ SignalMessage protobuf, without the MAC (the ratchet appends it).

    The ratchet key is written as 0x05 ‖ dh without checking it: the ratchet
    only sends its own keys, and the vectors need to write a low-order one.
    """
    fields: list[tuple[int, int | bytes]] = [
        (1, bytes([CURVE25519_TYPE]) + header.dh),
        (2, header.n),
        (3, header.pn),
        (4, ciphertext),
    ]
    return bytes([SIGNAL_VERSION]) + write_protobuf(fields)


def _decode_signal_message(profile: Profile, data: bytes) -> RatchetMessage:
    data = _signal_framed(data, profile.max_message_size)
    if len(data) < 1 + SIGNAL_MAC_LEN:
        raise MalformedMessage("message shorter than its MAC")
    body, mac = data[:-SIGNAL_MAC_LEN], data[-SIGNAL_MAC_LEN:]
    fields = read_protobuf(body[1:], _SIGNAL_MESSAGE)
    _required(fields, (1, 2, 3, 4))
    ratchet_key, counter, previous, ciphertext = (fields[n] for n in (1, 2, 3, 4))
    assert isinstance(ratchet_key, bytes) and isinstance(ciphertext, bytes)
    assert isinstance(counter, int) and isinstance(previous, int)
    header = Header(_key(ratchet_key), previous, counter)
    _canonical(body, lambda: encode_signal_message(header, ciphertext))
    return RatchetMessage(header, body, ciphertext, mac)


def _encode_signal_prekey(message: PrekeyMessage) -> bytes:
    assert message.registration_id is not None
    initial = message.initial
    fields: list[tuple[int, int | bytes]] = []
    if initial.one_time_prekey_id is not None:
        fields.append((1, initial.one_time_prekey_id))
    fields += [
        (2, encode_ec(initial.ephemeral_key)),
        (3, encode_ec(initial.identity_key)),
        (4, message.message),
        (5, message.registration_id),
        (6, initial.signed_prekey_id),
    ]
    return bytes([SIGNAL_VERSION]) + write_protobuf(fields)


def _decode_signal_prekey(profile: Profile, data: bytes) -> PrekeyMessage:
    data = _signal_framed(data, profile.max_message_size + PREKEY_OVERHEAD)
    fields = read_protobuf(data[1:], _PREKEY_SIGNAL_MESSAGE)
    _required(fields, (2, 3, 4, 5, 6))
    base_key, identity_key, inner = (fields[n] for n in (2, 3, 4))
    registration_id, signed_prekey_id = fields[5], fields[6]
    one_time = fields.get(1)
    assert isinstance(base_key, bytes) and isinstance(identity_key, bytes)
    assert isinstance(inner, bytes) and isinstance(registration_id, int)
    assert isinstance(signed_prekey_id, int) and not isinstance(one_time, bytes)
    initial = InitialData(_key(identity_key), _key(base_key), signed_prekey_id, one_time)
    message = PrekeyMessage(initial, registration_id, inner)
    _canonical(data, lambda: _encode_signal_prekey(message))
    _decode_signal_message(profile, inner)
    return message


# --- Public entry points ------------------------------------------------------------------


def decode_message(profile: Profile, data: bytes) -> RatchetMessage:
    """Strictly decode a ratchet message in the profile's framing (spec/wire.md §2.2, §3.2)."""
    try:
        if profile.wire == "signal-v3":
            return _decode_signal_message(profile, data)
        return _decode_msgpack_message(profile, data)
    except ProtocolError:
        raise
    except (ValueError, TypeError, IndexError):  # defence in depth: never another type
        raise MalformedMessage("message does not parse") from None


def encode_prekey_message(profile: Profile, message: PrekeyMessage) -> bytes:
    """Encode the initiator's prekey message (spec/wire.md §2.3, §3.3)."""
    _check_prekey_shape(profile, message)
    if profile.wire == "signal-v3":
        return _encode_signal_prekey(message)
    return _encode_msgpack_prekey(message)


def decode_prekey_message(profile: Profile, data: bytes) -> PrekeyMessage:
    """Strictly decode a prekey message; the inner ratchet message is checked too."""
    try:
        if profile.wire == "signal-v3":
            return _decode_signal_prekey(profile, data)
        return _decode_msgpack_prekey(profile, data)
    except ProtocolError:
        raise
    except (ValueError, TypeError, IndexError):
        raise MalformedMessage("prekey message does not parse") from None
