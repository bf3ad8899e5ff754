"""The stored format: versioned, strict serialization of records (spec/storage.md §2-§4).

Every piece of state is a frozen dataclass or a named tuple
(protocol/store/schema.py); ``dump_state`` turns it into one msgpack
*envelope*

    [MAGIC, FORMAT_VERSION, kind, body, sha256(body)]

where ``kind`` is the record's stored kind and ``body`` the msgpack map of
its stored fields, laid out as spec/storage.md §3.1 lists them (a
``Profile`` is its name, a dict a list of ``[key, value]`` pairs, a key type
its bin); the digest catches accidental corruption (it is not a MAC: the
store is trusted local storage). The layout is read from the classes by
protocol/store/schema.py, and each record's encoder and decoder are built
from it once by protocol/store/codec.py. ``load_state(cls, data)`` is
strict: it checks the version before anything else (UNSUPPORTED_VERSION),
then the digest, the kind, every field name and every value's type, and that
the bytes are the canonical encoding of what was loaded. Any difference is
STATE_CORRUPT, and nothing is returned: a state is loaded whole or not at all.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from typing import Final, TypeVar

import msgpack

from protocol.encoding import unpack_msgpack
from protocol.errors import InvalidArgument, StateCorrupt, UnsupportedVersion
from protocol.store.codec import Encode, corrupt, decoder, encoder
from protocol.store.schema import (
    ADDED,
    is_record,
    stored_fields,
    stored_kind,
    stored_name,
    stores_as_bytes,
)

__all__ = [
    "ADDED",
    "FORMAT_VERSION",
    "MAGIC",
    "dump_state",
    "load_state",
    "stored_fields",
    "stored_kind",
    "stored_name",
    "stores_as_bytes",
]

MAGIC: Final = "e2ee-state"
# The only version this library writes and reads (spec/storage.md §4).
FORMAT_VERSION: Final = 1

T = TypeVar("T")


class _Packers(threading.local):
    """One msgpack ``Packer`` per thread.

    Note that this is ``msgpack.packb`` without building a packer on every
    call (``packb`` makes one per call, a third of the cost of packing a
    session record); a ``Packer`` keeps a buffer and is not safe to share
    between threads, hence one per thread. It packs exactly as ``packb``
    does: same options, ``autoreset`` on.
    """

    def __init__(self) -> None:
        self.packer = msgpack.Packer(use_bin_type=True)


_PACKERS: Final = _Packers()


def _pack(value: object) -> bytes:
    """msgpack's packing, which is the canonical one: every item in its shortest form."""
    try:
        packed: bytes = _PACKERS.packer.pack(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgument(f"cannot serialize the state ({type(exc).__name__})") from None
    return packed


def _checksum(body: bytes) -> bytes:
    """SHA-256 of the body (spec/storage.md §2).

    Note that this is ``hashlib``'s SHA-256 (OpenSSL's, as pyca's), not
    protocol/primitives.py's: the digest is a checksum of trusted local
    storage against a flipped bit or a torn copy, no protocol key or secret
    depends on it, and the one-shot call costs a third of pyca's ``Hash``
    object on every record written and read.
    """
    return hashlib.sha256(body).digest()


def _unpack(data: bytes) -> object:
    return unpack_msgpack(data, "state", error=StateCorrupt)


@functools.cache
def _writer(cls: type) -> tuple[str, Encode]:
    """The stored kind and the encoder of a record class, once per class."""
    if not is_record(cls):
        raise InvalidArgument("only state dataclasses are serialized")
    return stored_kind(cls), encoder(cls)


def dump_state(value: object) -> bytes:
    """Serialize a state dataclass into its versioned envelope (spec/storage.md §2)."""
    cls: type = type(value)
    kind, encode = _writer(cls)
    body = _pack(encode(value))
    return _pack([MAGIC, FORMAT_VERSION, kind, body, _checksum(body)])


def _envelope(data: object) -> tuple[str, bytes]:
    """Check the envelope; the version is checked before anything after it."""
    if not isinstance(data, bytes):
        raise InvalidArgument("serialized state must be bytes")
    outer = _unpack(data)
    if not isinstance(outer, list) or len(outer) < 2 or outer[0] != MAGIC:
        raise corrupt("not a state envelope")
    if type(outer[1]) is not int or outer[1] != FORMAT_VERSION:
        raise UnsupportedVersion(f"state format version {outer[1]!r} is not supported")
    if len(outer) != 5:
        raise corrupt("envelope has the wrong length")
    _, _, kind, body, digest = outer
    if not isinstance(kind, str) or not isinstance(body, bytes) or not isinstance(digest, bytes):
        raise corrupt("envelope field types")
    if _checksum(body) != digest:
        raise corrupt("digest mismatch")
    if _pack(outer) != data:
        raise corrupt("the envelope is not in its canonical encoding")
    return kind, body


def load_state(cls: type[T], data: bytes) -> T:
    """Strictly load a ``cls`` from ``dump_state`` bytes (spec/storage.md §4).

    Raises UnsupportedVersion for another format version and StateCorrupt
    for anything else that is not exactly a canonical serialization of a
    ``cls``.

    Note that canonicity is not checked by serializing the loaded value
    again: the decoder accepts only the msgpack values that the encoder
    writes (protocol/store/codec.py), so the value serializes to exactly the
    decoded msgpack value ``raw``, and what remains is that ``body`` is
    msgpack's own packing of ``raw`` (shortest forms, no repeated map key),
    checked by packing ``raw`` in msgpack's compiled packer. The two
    together accept exactly the bytes that ``dump_state`` of the loaded value
    gives (``tests/store/test_store.py`` re-packs records every
    non-canonical way and finds each refused).
    """
    kind, body = _envelope(data)
    if kind != stored_kind(cls):
        raise corrupt(f"holds a {kind[:40]!r}, expected a {stored_kind(cls)}")
    raw = _unpack(body)
    if _pack(raw) != body:
        raise corrupt("the body is not in its canonical encoding")
    record: type = cls
    value: T = decoder(record)(raw)
    return value
