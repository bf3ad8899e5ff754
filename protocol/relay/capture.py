"""The relay's capture file: every byte it received and sent (spec/relay.md §5).

Format: the 8-byte magic ``E2EECAP1``, then records

    kind (u8) ‖ connection id (u32be) ‖ time in µs since the epoch (u64be)
    ‖ length (u32be) ‖ data (length bytes)

with kind 1 = connection opened (data: peer address as ASCII), 2 = bytes
received from the client, 3 = bytes sent to the client, 4 = connection
closed (data: the reason as ASCII). Received and sent data are exactly the
bytes read from and written to the socket, in order, so each connection's
two byte streams can be rebuilt by concatenation.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO, Final

from protocol.errors import MalformedMessage

MAGIC: Final = b"E2EECAP1"
_HEADER: Final = struct.Struct(">BIQI")
MAX_RECORD_LEN: Final = 16 * 1024 * 1024


class Kind(IntEnum):
    OPEN = 1
    RECEIVED = 2
    SENT = 3
    CLOSE = 4


@dataclass(frozen=True, slots=True)
class Record:
    kind: Kind
    connection: int
    time_us: int
    data: bytes


class CaptureWriter:
    """Appends records to a capture file; flushed after every record."""

    def __init__(self, path: Path | str) -> None:
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._file.write(MAGIC)
        self._file.flush()

    def record(self, kind: Kind, connection: int, data: bytes) -> None:
        time_us = time.time_ns() // 1000
        self._file.write(_HEADER.pack(kind, connection, time_us, len(data)) + data)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_capture(path: Path | str) -> Iterator[Record]:
    """Parse a capture strictly; a truncated or unknown record is MALFORMED_MESSAGE."""
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise MalformedMessage("not a relay capture file")
        while header := handle.read(_HEADER.size):
            if len(header) != _HEADER.size:
                raise MalformedMessage("truncated capture record header")
            kind, connection, time_us, length = _HEADER.unpack(header)
            if kind not in Kind._value2member_map_ or length > MAX_RECORD_LEN:
                raise MalformedMessage("unknown capture record")
            data = handle.read(length)
            if len(data) != length:
                raise MalformedMessage("truncated capture record")
            yield Record(Kind(kind), connection, time_us, data)
