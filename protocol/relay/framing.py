"""Relay frames and typed maps (spec/relay.md §1-§2).

A frame is ``u32be(L) ‖ body`` where ``body`` is exactly one msgpack map of
``L`` bytes, 1 <= L <= ``MAX_FRAME_LEN``. Every map is decoded strictly
against a ``Shape``: the exact set of keys, each with one type and bounds.
Nothing that fails here reaches the store: the caller gets a
``MalformedMessage`` (or ``LimitExceeded`` for an oversized length) and the
server cuts the connection (spec/relay.md §2.4).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from protocol.encoding import unpack_msgpack
from protocol.errors import InvalidArgument, LimitExceeded, MalformedMessage

LENGTH_PREFIX: Final = 4
# Largest frame body: a 256 KiB ratchet message or a 64 KiB media frame plus
# the map around it fits with room; a prekey upload of 100 ML-KEM keys too.
MAX_FRAME_LEN: Final = 512 * 1024
MAX_INT: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Int:
    """An integer in [low, high]."""

    low: int = 0
    high: int = MAX_INT


@dataclass(frozen=True, slots=True)
class Bin:
    """A msgpack bin of length in [low, high]."""

    low: int
    high: int


@dataclass(frozen=True, slots=True)
class Str:
    """A UTF-8 string of 1..high characters from a fixed alphabet."""

    high: int
    alphabet: frozenset[str]


@dataclass(frozen=True, slots=True)
class Bool:
    """True or False."""


@dataclass(frozen=True, slots=True)
class Nil:
    """Nothing (msgpack nil) or the inner shape."""

    inner: FieldShape


@dataclass(frozen=True, slots=True)
class Seq:
    """A list of at most ``high`` items of one shape."""

    item: FieldShape
    high: int


@dataclass(frozen=True, slots=True)
class Shape:
    """A map with exactly these keys."""

    fields: Mapping[str, FieldShape]


FieldShape = Int | Bin | Str | Bool | Nil | Seq | Shape

NAME_ALPHABET: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def encode_frame(body: Mapping[str, Any]) -> bytes:
    """Serialize one map as a length-prefixed frame."""
    try:
        data = msgpack.packb(body, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgument("a frame holds only msgpack types") from None
    if len(data) > MAX_FRAME_LEN:
        raise LimitExceeded(f"frame of {len(data)} bytes exceeds {MAX_FRAME_LEN}")
    return struct.pack(">I", len(data)) + data


def frame_length(prefix: bytes) -> int:
    """Parse the 4-byte length prefix; refuse 0 and anything above MAX_FRAME_LEN."""
    if len(prefix) != LENGTH_PREFIX:
        raise MalformedMessage("truncated length prefix")
    (length,) = struct.unpack(">I", prefix)
    if length == 0:
        raise MalformedMessage("empty frame")
    if length > MAX_FRAME_LEN:
        raise LimitExceeded(f"frame of {length} bytes exceeds {MAX_FRAME_LEN}")
    return int(length)


def decode_body(data: bytes) -> dict[str, Any]:
    """Decode one frame body: exactly one msgpack map with string keys, no ext types."""
    value = unpack_msgpack(data, "frame body")
    if not isinstance(value, dict):
        raise MalformedMessage("frame body is not a map")
    return value


def check_shape(value: object, shape: FieldShape, where: str) -> None:
    """Raise MalformedMessage unless ``value`` has exactly ``shape``."""
    if isinstance(shape, Nil):
        if value is not None:
            check_shape(value, shape.inner, where)
    elif isinstance(shape, Shape):
        _check_map(value, shape, where)
    elif isinstance(shape, Seq):
        if not isinstance(value, list) or len(value) > shape.high:
            raise MalformedMessage(f"{where}: expected a list of at most {shape.high} items")
        for index, item in enumerate(value):
            check_shape(item, shape.item, f"{where}[{index}]")
    elif not _scalar_fits(value, shape):
        raise MalformedMessage(f"{where}: wrong type or out of range")


def _check_map(value: object, shape: Shape, where: str) -> None:
    if not isinstance(value, dict):
        raise MalformedMessage(f"{where}: expected a map")
    if set(value) != set(shape.fields):
        raise MalformedMessage(f"{where}: keys differ from {sorted(shape.fields)}")
    for key, field in shape.fields.items():
        check_shape(value[key], field, f"{where}.{key}")


def _scalar_fits(value: object, shape: FieldShape) -> bool:
    if isinstance(shape, Bool):
        return isinstance(value, bool)
    if isinstance(shape, Int):
        return type(value) is int and shape.low <= value <= shape.high
    if isinstance(shape, Bin):
        return isinstance(value, bytes) and shape.low <= len(value) <= shape.high
    if isinstance(shape, Str):
        return (
            isinstance(value, str)
            and 1 <= len(value) <= shape.high
            and set(value) <= shape.alphabet
        )
    return False
