"""Message formats on the wire (spec/wire.md).

The codecs of the two framings; which one a profile uses is its framing
part (``framing.py``), which calls the codecs here for both directions:

* ``msgpack`` (pq-default, classic; spec/wire.md §2): ``version ‖ kind ‖
  msgpack map``. The map is canonical: after parsing, the message is encoded
  again and must give back the same bytes, so every value has exactly one
  encoding and nothing (field order, integer width, an extra field) can be
  changed without the change being refused.
* ``signal-v3`` (spec/wire.md §3): libsignal's v3 framing, a version byte
  (0x33 written; any byte whose high nibble is 3 read, as libsignal reads
  it) and a protobuf ``SignalMessage`` or ``PreKeySignalMessage``
  (rust/protocol/src/proto/wire.proto), read and written by
  ``protocol.protobuf``: fields in any order on input, in field-number order
  on output.

Which of the two messages a byte string is travels beside it in Signal's
envelope; ``message_kind`` tells them apart when the transport does not say
(spec/wire.md §3.5).

Decoders raise only ``ProtocolError``: ``UnsupportedVersion`` for another
version byte, ``InvalidPublicKey`` for a key that parses but is refused, and
``MalformedMessage`` for everything else.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

import msgpack

from protocol.encoding import (
    CURVE25519_TYPE,
    KEM_TYPE,
    decode_ec,
    encode_ec,
    unpack_msgpack,
)
from protocol.errors import MalformedMessage, ProtocolError, UnsupportedVersion
from protocol.initial_data import InitialData
from protocol.primitives import KEM_CIPHERTEXT_LEN, X25519_LEN, check_x25519_public
from protocol.protobuf import (
    Fields,
    Schema,
    bytes_field,
    first_wire_type,
    read_fields,
    require_fields,
    uint32_field,
    write_field,
    write_fields,
)

if TYPE_CHECKING:
    from protocol.profiles import Profile

# --- Ratchet header (spec/wire.md §1) ------------------------------------------------

HEADER_LEN: Final = X25519_LEN + 4 + 4
"""dh (32) ‖ pn (u32be) ‖ n (u32be)."""

U32_LIMIT: Final = 2**32


class Header(NamedTuple):
    """HEADER(dh_pair, pn, n) (DR §3.1): the sender's ratchet key and counters.

    ``pq_ratchet`` is libsignal v4's SignalMessage field 5, the SPQR message
    that travels beside the header and under its MAC (spec/wire.md §4); it is
    empty in every other profile, and only the v4 framing writes it.
    """

    dh: bytes
    pn: int
    n: int
    pq_ratchet: bytes = b""


_COUNTERS: Final = struct.Struct(">II")
"""pn ‖ n, two u32 big-endian (spec/wire.md §1)."""


def encode_header(header: Header) -> bytes:
    """The fixed 40-byte header encoding dh ‖ pn ‖ n (spec/wire.md §1)."""
    if not (0 <= header.pn < U32_LIMIT and 0 <= header.n < U32_LIMIT):
        raise MalformedMessage("header counters must fit in u32")
    return header.dh + _COUNTERS.pack(header.pn, header.n)


def decode_header(data: bytes) -> Header:
    """Parse a 40-byte header; a refused ratchet key is INVALID_PUBLIC_KEY."""
    if len(data) != HEADER_LEN:
        raise MalformedMessage("header must be 40 bytes")
    pn, n = _COUNTERS.unpack_from(data, X25519_LEN)
    return Header(check_x25519_public(data[:X25519_LEN]), pn, n)


# --- Decoded messages ------------------------------------------------------------------


class RatchetMessage(NamedTuple):
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


# The ratchet message has a fixed shape, so it is framed by hand: the bytes
# are exactly what msgpack.packb({"h": header, "c": ciphertext}) writes (a
# two-entry map, one-character keys, bin8/bin16/bin32 by length), and the
# reader accepts nothing else. This keeps the per-message path cheap.
_MESSAGE_HEAD: Final = bytes([MSGPACK_VERSION, KIND_MESSAGE]) + b"\x82\xa1h"
"""version ‖ kind ‖ a two-entry map ‖ the key "h"."""
_KEY_C: Final = b"\xa1c"
_BIN8, _BIN16, _BIN32 = 0xC4, 0xC5, 0xC6  # msgpack bin8, bin16, bin32: 1-, 2-, 4-byte length
_BIN_WIDTH: Final = {_BIN8: 1, _BIN16: 2, _BIN32: 4}


def _bin(data: bytes) -> bytes:
    """``data`` as the shortest msgpack bin, as msgpack.packb writes it."""
    length = len(data)
    if length < 1 << 8:
        return bytes((_BIN8, length)) + data
    if length < 1 << 16:
        return bytes((_BIN16,)) + length.to_bytes(2, "big") + data
    if length < 1 << 32:
        return bytes((_BIN32,)) + length.to_bytes(4, "big") + data
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
    return _MESSAGE_HEAD + _bin(header_bytes) + _KEY_C + _bin(ciphertext)


# The header block has one length per header protection, both under 256 bytes, so
# its bin is always a bin8 and a message's bytes up to the block are a fixed head.
_MESSAGE_HEADS: Final = {
    length: _MESSAGE_HEAD + bytes((_BIN8, length)) for length in (HEADER_LEN, ENCRYPTED_HEADER_LEN)
}
"""version ‖ kind ‖ a two-entry map ‖ the key "h" ‖ the bin8 head of a header block, by length."""


def decode_msgpack_message(profile: Profile, data: bytes) -> RatchetMessage:
    """Strictly decode {h: header block, c: ciphertext} (spec/wire.md §2.2).

    Note that the bytes are read in place, at offsets, with no copy of the
    body: the checks are those of ``_framed_body`` and ``_read_bin``, and the
    canonical encoding is enforced field by field (the map head, each bin's
    shortest length, nothing after the ciphertext), so no re-encoding is needed.
    The header block has the profile's fixed length, so everything before it
    is one fixed head (``_MESSAGE_HEADS``) compared at once, its bin8 length
    included: a block of another length, or one framed as a longer bin, does
    not match it.
    """
    block_len = profile.headers.block_len
    head = _MESSAGE_HEADS[block_len]
    if not isinstance(data, bytes) or not data.startswith(head):
        _framed_body(data, KIND_MESSAGE, profile.max_message_size)  # the precise error
        raise MalformedMessage("a message is the map {h, c} with a header block of its profile")
    if len(data) > profile.max_message_size:
        raise MalformedMessage("message exceeds the size limit")
    offset = len(head) + block_len
    if data[offset : offset + 2] != _KEY_C:
        raise MalformedMessage("a message is the map {h, c}")
    ciphertext, end = _read_bin(data, offset + 2)
    if end != len(data):
        raise MalformedMessage("trailing bytes after the message")
    header_bytes = data[len(head) : offset]
    return RatchetMessage(profile.headers.read(header_bytes), header_bytes, ciphertext, b"")


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
    if (message.registration_id is not None) != profile.framing.carries_registration_id:
        raise MalformedMessage("registration id is required exactly for signal-v3")


def encode_msgpack_prekey(message: PrekeyMessage) -> bytes:
    """The prekey message as a canonical msgpack map (spec/wire.md §2.3)."""
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


def decode_msgpack_prekey(profile: Profile, data: bytes) -> PrekeyMessage:
    """Strictly decode a msgpack prekey message and its inner message (spec/wire.md §2.3)."""
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
    _canonical(data, lambda: encode_msgpack_prekey(message))
    decode_msgpack_message(profile, message.message)
    return message


def _key(encoded: bytes) -> bytes:
    if len(encoded) != 1 + X25519_LEN:
        raise MalformedMessage("an encoded public key is 33 bytes")
    return decode_ec(encoded)


# --- libsignal v3 protobuf framing (spec/wire.md §3) ---------------------------------------

SIGNAL_VERSION: Final = 0x33
"""The version byte we write: (session version 3 << 4) | current version 3.

libsignal 0.2x writes 0x34 (its current version 4) in a v3 session, and
libsignal-protocol-javascript refuses a low nibble above 3, so 0x33 is the
byte every v3 reader accepts (spec/wire.md §3.1)."""
SIGNAL_SESSION_VERSION: Final = 3
SIGNAL_MAC_LEN: Final = 8

# SignalMessage {1 ratchet_key, 2 counter, 3 previous_counter, 4 ciphertext}
SIGNAL_MESSAGE: Final[Schema] = {1: "bytes", 2: "varint", 3: "varint", 4: "bytes"}
# PreKeySignalMessage {1 pre_key_id?, 2 base_key, 3 identity_key, 4 message,
# 5 registration_id, 6 signed_pre_key_id}
PREKEY_SIGNAL_MESSAGE: Final[Schema] = {
    1: "varint",
    2: "bytes",
    3: "bytes",
    4: "bytes",
    5: "varint",
    6: "varint",
}


def _signal_framed(data: object, limit: int, version: int = SIGNAL_SESSION_VERSION) -> bytes:
    """Check the version byte as libsignal does: its high nibble is the session version.

    Note that the low nibble (the writer's own current version: 3, or 4 from
    libsignal 0.2x) is not checked, as libsignal does not check it
    (protocol.rs ``SignalMessage::try_from``); the byte is MACed as received.
    The same check serves v3 (high nibble 3) and v4 (high nibble 4).
    """
    if not isinstance(data, bytes) or not data:
        raise MalformedMessage("message is empty")
    if data[0] >> 4 != version:
        raise UnsupportedVersion(f"message version byte {data[0]:#04x} is not a v{version} byte")
    if len(data) > limit:
        raise MalformedMessage("message exceeds the size limit")
    return data


def encode_signal_message(header: Header, ciphertext: bytes) -> bytes:
    """version ‖ SignalMessage protobuf, without the MAC (the ratchet appends it).

    The ratchet key is written as 0x05 ‖ dh without checking it: the ratchet
    only sends its own keys, and the vectors need to write a low-order one.
    """
    return b"".join(
        [
            bytes([SIGNAL_VERSION]),
            *_signal_header_fields(header),
            write_field(4, ciphertext),
        ]
    )


def _signal_header_fields(header: Header) -> tuple[bytes, bytes, bytes]:
    """SignalMessage fields 1-3: ratchet_key (0x05 ‖ dh), counter (n), previous_counter (pn).

    Note that each message writes its fields one by one in field-number order,
    the order ``write_fields`` sorts a dict into (the canonical order): the
    bytes are the same, without a dict and a sort per message.
    """
    return (
        write_field(1, bytes([CURVE25519_TYPE]) + header.dh),
        write_field(2, header.n),
        write_field(3, header.pn),
    )


def decode_signal_message(profile: Profile, data: bytes) -> RatchetMessage:
    """Strictly decode version ‖ SignalMessage ‖ MAC (spec/wire.md §3.2)."""
    data = _signal_framed(data, profile.max_message_size)
    if len(data) < 1 + SIGNAL_MAC_LEN:
        raise MalformedMessage("message shorter than its MAC")
    body, mac = data[:-SIGNAL_MAC_LEN], data[-SIGNAL_MAC_LEN:]
    fields = read_fields(body[1:], SIGNAL_MESSAGE)
    require_fields(fields, (1, 2, 3, 4))
    header = Header(_key(bytes_field(fields, 1)), uint32_field(fields, 3), uint32_field(fields, 2))
    return RatchetMessage(header, body, bytes_field(fields, 4), mac)


def encode_signal_prekey(message: PrekeyMessage) -> bytes:
    """version ‖ PreKeySignalMessage in field-number order (spec/wire.md §3.3)."""
    assert message.registration_id is not None
    initial = message.initial
    fields: Fields = {
        2: encode_ec(initial.ephemeral_key),
        3: encode_ec(initial.identity_key),
        4: message.message,
        5: message.registration_id,
        6: initial.signed_prekey_id,
    }
    if initial.one_time_prekey_id is not None:
        fields[1] = initial.one_time_prekey_id
    return bytes([SIGNAL_VERSION]) + write_fields(fields)


def decode_signal_prekey(profile: Profile, data: bytes) -> PrekeyMessage:
    """Strictly decode a PreKeySignalMessage and its inner message (spec/wire.md §3.3)."""
    data = _signal_framed(data, profile.max_message_size + PREKEY_OVERHEAD)
    fields = read_fields(data[1:], PREKEY_SIGNAL_MESSAGE)
    require_fields(fields, (2, 3, 4, 5, 6))
    initial = InitialData(
        identity_key=_key(bytes_field(fields, 3)),
        ephemeral_key=_key(bytes_field(fields, 2)),
        signed_prekey_id=uint32_field(fields, 6),
        one_time_prekey_id=uint32_field(fields, 1) if 1 in fields else None,
    )
    message = PrekeyMessage(initial, uint32_field(fields, 5), bytes_field(fields, 4))
    decode_signal_message(profile, message.message)
    return message


# --- libsignal v4 protobuf framing (spec/wire.md §3.6) -------------------------------------

SIGNAL_V4_VERSION: Final = 0x44
"""(session version 4 << 4) | current version 4, libsignal protocol.rs; the only v4 byte."""
SIGNAL_V4_SESSION_VERSION: Final = 4
ADDRESSES_LEN: Final = 36
"""SignalMessage field 6: sender then recipient, each a 17-byte service id and a device byte."""

# SignalMessage {1 ratchet_key, 2 counter, 3 previous_counter, 4 ciphertext,
# 5 pq_ratchet, 6 addresses} (libsignal wire.proto)
SIGNAL_V4_MESSAGE: Final[Schema] = {**SIGNAL_MESSAGE, 5: "bytes", 6: "bytes"}
# PreKeySignalMessage adds {7 kyber_pre_key_id, 8 kyber_ciphertext}
PREKEY_SIGNAL_V4_MESSAGE: Final[Schema] = {**PREKEY_SIGNAL_MESSAGE, 7: "varint", 8: "bytes"}


def encode_signal_v4_message(header: Header, ciphertext: bytes) -> bytes:
    """0x44 ‖ SignalMessage{1-5} without the MAC; field 5 (pq_ratchet) always written.

    Note that field 6 (addresses) is never written: libsignal writes it only
    when both names are service ids, and our addresses are not (spec/wire.md §3.6.2).
    """
    if not header.pq_ratchet:
        raise MalformedMessage("a v4 message carries its SPQR message in field 5")
    return b"".join(
        [
            bytes([SIGNAL_V4_VERSION]),
            *_signal_header_fields(header),
            write_field(4, ciphertext),
            write_field(5, header.pq_ratchet),
        ]
    )


def decode_signal_v4_message(profile: Profile, data: bytes) -> RatchetMessage:
    """Strictly decode 0x4_ ‖ SignalMessage ‖ MAC, fields in any order (spec/wire.md §3.6.2).

    Field 5 is required (SPQR is mandatory, libsignal ``min_version: V1``);
    field 6, when present, must be 36 bytes and is covered by the MAC.
    """
    data = _signal_framed(data, profile.max_message_size, SIGNAL_V4_SESSION_VERSION)
    if len(data) < 1 + SIGNAL_MAC_LEN:
        raise MalformedMessage("message shorter than its MAC")
    body, mac = data[:-SIGNAL_MAC_LEN], data[-SIGNAL_MAC_LEN:]
    fields = read_fields(body[1:], SIGNAL_V4_MESSAGE)
    require_fields(fields, (1, 2, 3, 4, 5))
    if 6 in fields and len(bytes_field(fields, 6)) != ADDRESSES_LEN:
        raise MalformedMessage("the addresses field is 36 bytes")
    header = Header(
        _key(bytes_field(fields, 1)),
        uint32_field(fields, 3),
        uint32_field(fields, 2),
        bytes_field(fields, 5),
    )
    return RatchetMessage(header, body, bytes_field(fields, 4), mac)


def encode_signal_v4_prekey(message: PrekeyMessage) -> bytes:
    """0x44 ‖ PreKeySignalMessage{1?, 2-8} in field-number order (spec/wire.md §3.6.3)."""
    assert message.registration_id is not None
    initial = message.initial
    assert initial.kem_prekey_id is not None and initial.kem_ciphertext is not None
    fields: Fields = {
        2: encode_ec(initial.ephemeral_key),
        3: encode_ec(initial.identity_key),
        4: message.message,
        5: message.registration_id,
        6: initial.signed_prekey_id,
        7: initial.kem_prekey_id,
        8: bytes([KEM_TYPE["Kyber1024"]]) + initial.kem_ciphertext,
    }
    if initial.one_time_prekey_id is not None:
        fields[1] = initial.one_time_prekey_id
    return bytes([SIGNAL_V4_VERSION]) + write_fields(fields)


def decode_signal_v4_prekey(profile: Profile, data: bytes) -> PrekeyMessage:
    """Strictly decode a v4 PreKeySignalMessage and its inner message (spec/wire.md §3.6.3).

    Fields 7 and 8 (the Kyber prekey id and 0x08 ‖ ciphertext) are required.
    """
    data = _signal_framed(
        data, profile.max_message_size + PREKEY_OVERHEAD, SIGNAL_V4_SESSION_VERSION
    )
    fields = read_fields(data[1:], PREKEY_SIGNAL_V4_MESSAGE)
    require_fields(fields, (2, 3, 4, 5, 6, 7, 8))
    kyber = bytes_field(fields, 8)
    if len(kyber) != 1 + KEM_CIPHERTEXT_LEN["Kyber1024"] or kyber[0] != KEM_TYPE["Kyber1024"]:
        raise MalformedMessage("the Kyber ciphertext is 0x08 ‖ 1568 bytes")
    initial = InitialData(
        identity_key=_key(bytes_field(fields, 3)),
        ephemeral_key=_key(bytes_field(fields, 2)),
        signed_prekey_id=uint32_field(fields, 6),
        one_time_prekey_id=uint32_field(fields, 1) if 1 in fields else None,
        kem_prekey_id=uint32_field(fields, 7),
        kem_ciphertext=kyber[1:],
    )
    message = PrekeyMessage(initial, uint32_field(fields, 5), bytes_field(fields, 4))
    decode_signal_v4_message(profile, message.message)
    return message


def is_signal_prekey(data: bytes) -> bool:
    """Whether ``data`` is framed as a PreKeySignalMessage, whatever its field order.

    Field 2 is the base key (bytes) in a PreKeySignalMessage and the counter
    (a varint) in a SignalMessage, so its wire type tells them apart. Only
    the fields up to it are read: a damaged message is still classified and
    its decoder reports the damage exactly (the version byte too).
    """
    return first_wire_type(data[1:], 2) == "bytes"


# --- Public entry points ------------------------------------------------------------------


MessageKind = Literal["prekey", "message"]
"""A prekey (initial) message or a normal ratchet message (spec/wire.md §3.5)."""


def message_kind(profile: Profile, data: bytes) -> MessageKind:
    """Which kind of message ``data`` is framed as, when the transport does not say.

    The profile's framing part knows (``framing.py``): msgpack names the kind
    in its second byte; a libsignal message is a prekey message exactly when
    it reads as a PreKeySignalMessage, in any field order (spec/wire.md §3.5).
    """
    if not isinstance(data, bytes) or len(data) < 2:
        return "message"
    return "prekey" if profile.framing.is_prekey_message(data) else "message"


def decode_message(profile: Profile, data: bytes) -> RatchetMessage:
    """Strictly decode a ratchet message in the profile's framing (spec/wire.md §2.2, §3.2)."""
    try:
        return profile.framing.decode_message(profile, data)
    except ProtocolError:
        raise
    except (ValueError, TypeError, IndexError):  # defence in depth: never another type
        raise MalformedMessage("message does not parse") from None


def encode_prekey_message(profile: Profile, message: PrekeyMessage) -> bytes:
    """Encode the initiator's prekey message (spec/wire.md §2.3, §3.3)."""
    _check_prekey_shape(profile, message)
    return profile.framing.encode_prekey(profile, message)


def decode_prekey_message(profile: Profile, data: bytes) -> PrekeyMessage:
    """Strictly decode a prekey message; the inner ratchet message is checked too."""
    try:
        return profile.framing.decode_prekey(profile, data)
    except ProtocolError:
        raise
    except (ValueError, TypeError, IndexError):
        raise MalformedMessage("prekey message does not parse") from None
