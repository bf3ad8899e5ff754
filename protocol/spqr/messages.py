"""SPQR messages (SignalMessage field 5, ``pq_ratchet``) and version negotiation (spec/spqr.md §8).

As spqr ``src/v1/chunked/states/serialize.rs`` (``Message::serialize``,
``Message::deserialize``) and ``src/lib.rs`` (``recv``'s negotiation,
``msg_version``):

    0x01 ‖ varint epoch ‖ varint index ‖ type ‖ [varint chunk index ‖ chunk (32)]

with protobuf base-128 varints, ``type`` one of ``MessageType`` (0 None,
1 Hdr, 2 Ek, 3 EkCt1Ack, 4 Ct1Ack, 5 Ct1, 6 Ct2); types 1, 2, 3, 5 and 6
carry a chunk, 0 and 4 do not. ``epoch`` is the sender's SPQR epoch (at
least 1); ``index`` is the sender's counter in its chain for epoch − 1 (the
message key belongs to epoch − 1). A type-None message of epoch 1 and index 1
is ``01 01 01 00``; one with a chunk is 37 bytes while the numbers are below
128.

Version negotiation (``lib.rs`` ``recv``): an empty field 5 is version 0
(no SPQR); a first byte 0 or 1 is that version; any other first byte is a
version newer than ours. libsignal sets ``min_version`` = V1 ("Require that
all clients speak SPQR", ``ratchet.rs``), so ``negotiate`` never goes below
V1: version 0 is UNSUPPORTED_VERSION, a newer version is ignored (spqr
answers it with no key and the state unchanged), V1 is processed.

Note that our decoder is stricter than spqr's in two ways an honest spqr
sender never notices: spqr accepts non-minimal varints and trailing bytes
after the message ("to potentially upgrade sessions in future versions");
we refuse both as MALFORMED_MESSAGE, so each message has one encoding.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from protocol.encoding import decode_varint, encode_varint
from protocol.errors import MalformedMessage, UnsupportedVersion

VERSION_V0: Final = 0
VERSION_V1: Final = 1
CHUNK_LEN: Final = 32
MAX_CHUNK_INDEX: Final = 0xFFFF
MAX_INDEX: Final = 2**32 - 1


class MessageType(enum.IntEnum):
    """spqr ``MessageType``."""

    NONE = 0
    HDR = 1
    EK = 2
    EK_CT1_ACK = 3
    CT1_ACK = 4
    CT1 = 5
    CT2 = 6


_WITH_CHUNK: Final = frozenset(
    {MessageType.HDR, MessageType.EK, MessageType.EK_CT1_ACK, MessageType.CT1, MessageType.CT2}
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """spqr ``Chunk``: an erasure-code chunk index and its 32 bytes."""

    index: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Message:
    """One SPQR message: the state machine's (epoch, payload) and the chain index."""

    epoch: int
    index: int
    type: MessageType
    chunk: Chunk | None = None

    def __post_init__(self) -> None:
        if (self.chunk is not None) != (self.type in _WITH_CHUNK):
            raise MalformedMessage(f"SPQR message type {self.type.name} and chunk disagree")


def encode_message(message: Message) -> bytes:
    """Implements ``Message::serialize``."""
    if not 1 <= message.epoch < 2**64 or not 0 <= message.index <= MAX_INDEX:
        raise MalformedMessage("SPQR epoch or index out of range")
    out = bytes([VERSION_V1]) + encode_varint(message.epoch) + encode_varint(message.index)
    out += bytes([message.type])
    if message.chunk is not None:
        chunk = message.chunk
        if not 0 <= chunk.index <= MAX_CHUNK_INDEX or len(chunk.data) != CHUNK_LEN:
            raise MalformedMessage("SPQR chunk index or length out of range")
        out += encode_varint(chunk.index) + chunk.data
    return out


def decode_message(data: bytes) -> Message:
    """Implements ``Message::deserialize``, strictly (see the module note)."""
    if not isinstance(data, bytes) or not data or data[0] != VERSION_V1:
        raise MalformedMessage("SPQR message is not version 1")
    epoch, at = decode_varint(data, 1)
    if epoch == 0:
        raise MalformedMessage("SPQR epoch 0")
    index, at = decode_varint(data, at)
    if index > MAX_INDEX:
        raise MalformedMessage("SPQR index does not fit in u32")
    if at >= len(data):
        raise MalformedMessage("SPQR message has no type")
    try:
        kind = MessageType(data[at])
    except ValueError:
        raise MalformedMessage("SPQR message type unknown") from None
    at += 1
    chunk = None
    if kind in _WITH_CHUNK:
        chunk_index, at = decode_varint(data, at)
        if chunk_index > MAX_CHUNK_INDEX or at + CHUNK_LEN > len(data):
            raise MalformedMessage("SPQR chunk index out of range or chunk truncated")
        chunk = Chunk(chunk_index, data[at : at + CHUNK_LEN])
        at += CHUNK_LEN
    if at != len(data):
        raise MalformedMessage("trailing bytes after the SPQR message")
    return Message(epoch, index, kind, chunk)


def negotiate(data: bytes) -> bool:
    """Version negotiation with min_version V1 (``lib.rs`` ``recv``, ``msg_version``).

    True: a V1 message, to be decoded and processed. False: a version newer
    than ours, ignored (no key, state unchanged), as spqr does. Raises
    UNSUPPORTED_VERSION for version 0 (an empty field 5 or first byte 0).
    """
    if not isinstance(data, bytes):
        raise MalformedMessage("SPQR message must be bytes")
    if not data or data[0] == VERSION_V0:
        raise UnsupportedVersion("SPQR version 0 refused: the minimum version is V1")
    return data[0] == VERSION_V1
