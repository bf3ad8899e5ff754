"""The stored format: versioned, strict serialization of records (spec/storage.md §2-§4).

Every piece of state is a frozen dataclass; ``dump_state`` turns it into one
msgpack *envelope*

    [MAGIC, FORMAT_VERSION, kind, body, sha256(body)]

where ``kind`` is the record's stored kind and ``body`` the msgpack map of
its stored fields, laid out as spec/storage.md §3.1 lists them (a
``Profile`` is its name, a dict a list of ``[key, value]`` pairs, a key type
its bin); the digest catches accidental corruption (it is not a MAC: the
store is trusted local storage). Stored names are the format's: a renamed
field or class keeps them (``stored_name``, ``__stored_kind__``), and state
added later (``ADDED``) is written only when it differs from its default, so
it changes no existing record (§3.2). ``load_state(cls, data)`` is strict:
it checks the version before anything else (UNSUPPORTED_VERSION), then the
digest, the kind, every field name and every value's type, and finally that
the bytes are the canonical encoding of what was loaded. Any difference is
STATE_CORRUPT, and nothing is returned: a state is loaded whole or not at all.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import msgpack

from protocol.encoding import unpack_msgpack
from protocol.errors import InvalidArgument, ProtocolError, StateCorrupt, UnsupportedVersion
from protocol.primitives import constant_time_equal, sha256
from protocol.profiles import Profile, get_profile

MAGIC: Final = "e2ee-state"
# The only version this library writes and reads (spec/storage.md §4).
FORMAT_VERSION: Final = 1

T = TypeVar("T")


# --- The schema of a record (spec/storage.md §3) ------------------------------------------

STORED_NAME: Final = "stored_name"
"""Field metadata key: the field's name in the format when the Python name differs."""
ADDED_FIELD: Final = "stored_added"
"""Field metadata key: a field added after format 1, omitted while it holds its default."""


def stored_name(name: str) -> dict[str, object]:
    """``dataclasses.field(metadata=stored_name("old"))``: a renamed field keeps its stored name."""
    return {STORED_NAME: name}


ADDED: Final[Mapping[str, object]] = types.MappingProxyType({ADDED_FIELD: True})
"""``dataclasses.field(default=..., metadata=ADDED)``: state added to a record later.

It is written only when it differs from its default, so records that do not
use it (another profile's, or any written before it existed) keep their
exact bytes and keep loading (spec/storage.md §4, the migration rule).
"""


@dataclasses.dataclass(frozen=True, slots=True)
class StoredField:
    """One field of a record as the format sees it: stored name, attribute, type."""

    name: str
    attribute: str
    hint: Any
    added: bool
    default: object


def stored_kind(cls: type) -> str:
    """The record's kind in the envelope: ``__stored_kind__`` if the class sets it, else its name.

    Note that format 1 wrote class names; a class renamed later sets
    ``__stored_kind__`` to its old name, so the kind is fixed by
    spec/storage.md §3, not by Python.
    """
    kind = getattr(cls, "__stored_kind__", cls.__name__)
    assert isinstance(kind, str)
    return kind


def _default(f: dataclasses.Field[Any]) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@functools.cache
def stored_fields(cls: type) -> tuple[StoredField, ...]:
    """The stored fields of a record class, in format order, once per class.

    Fields declared with ``init=False`` are derived, not state, and are not
    stored. ``typing.get_type_hints`` evaluates every annotation string again
    on each call; per decoded object it was most of the cost of loading a
    session, hence the cache.
    """
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        added = bool(f.metadata.get(ADDED_FIELD, False))
        default = _default(f)
        if added and default is dataclasses.MISSING:
            raise InvalidArgument(f"an added field needs a default ({cls.__name__}.{f.name})")
        name = f.metadata.get(STORED_NAME, f.name)
        out.append(StoredField(name, f.name, hints[f.name], added, default))
    return tuple(out)


def stores_as_bytes(cls: type) -> bool:
    """Whether records of ``cls`` are stored as one bin (a key type).

    A key type provides ``stored_bytes()`` and the classmethod
    ``from_stored_bytes(data)``, which runs its length checks; it is stored as
    the bin of its key, exactly as the plain ``bytes`` field it replaces, so
    introducing it changes no stored byte.
    """
    return hasattr(cls, "from_stored_bytes")


# --- Encoding (spec/storage.md §3) -----------------------------------------------------


def _encode(value: object) -> object:
    if isinstance(value, Profile):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if stores_as_bytes(type(value)):
            stored: bytes = value.stored_bytes()  # type: ignore[attr-defined]
            return stored
        return {
            f.name: _encode(getattr(value, f.attribute))
            for f in stored_fields(type(value))
            if not (f.added and getattr(value, f.attribute) == f.default)
        }
    if isinstance(value, bytes | str | int | float | None):  # bool is an int
        return value
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return [[_encode(k), _encode(v)] for k, v in value.items()]
    raise InvalidArgument(f"cannot serialize a {type(value).__name__}")


def _pack(value: object) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def dump_state(value: object) -> bytes:
    """Serialize a state dataclass into its versioned envelope (spec/storage.md §2)."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise InvalidArgument("only state dataclasses are serialized")
    body = _pack(_encode(value))
    return _pack([MAGIC, FORMAT_VERSION, stored_kind(type(value)), body, sha256(body)])


# --- Strict decoding (spec/storage.md §4) -------------------------------------------------


def _corrupt(what: str) -> StateCorrupt:
    return StateCorrupt(f"serialized state: {what}")


def _decode_union(raw: object, args: tuple[Any, ...]) -> object:
    if raw is None and type(None) in args:
        return None
    for option in (a for a in args if a is not type(None)):
        try:
            return _decode(raw, option)
        except StateCorrupt:
            continue
    raise _corrupt("value matches no alternative")


def _decode_tuple(raw: object, args: tuple[Any, ...]) -> tuple[object, ...]:
    if not isinstance(raw, list):
        raise _corrupt("expected a list")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(item, args[0]) for item in raw)
    if len(raw) != len(args):
        raise _corrupt("tuple has the wrong length")
    return tuple(_decode(item, arg) for item, arg in zip(raw, args, strict=True))


def _decode_dict(raw: object, args: tuple[Any, ...]) -> dict[object, object]:
    if not isinstance(raw, list):
        raise _corrupt("expected a list of pairs")
    out: dict[object, object] = {}
    for pair in raw:
        if not isinstance(pair, list) or len(pair) != 2:
            raise _corrupt("expected a [key, value] pair")
        key = _decode(pair[0], args[0])
        if key in out:
            raise _corrupt("duplicate key")
        out[key] = _decode(pair[1], args[1])
    return out


def _decode_dataclass(raw: object, cls: type[T]) -> T:
    """Rebuild a record from its map: stored names in order; an added field may be absent."""
    if stores_as_bytes(cls):
        if not isinstance(raw, bytes):
            raise _corrupt(f"{cls.__name__} must be bytes")
        return _construct(cls, lambda: cls.from_stored_bytes(raw))  # type: ignore[attr-defined]
    if not isinstance(raw, dict):
        raise _corrupt(f"{cls.__name__} must be a map")
    values: dict[str, object] = {}
    names = iter(raw)
    name = next(names, None)
    for f in stored_fields(typing.cast(type, cls)):
        if name == f.name:
            values[f.attribute] = _decode(raw[name], f.hint)
            name = next(names, None)
        elif f.added:
            values[f.attribute] = f.default
        else:
            raise _corrupt(f"{cls.__name__} fields differ")
    if name is not None:
        raise _corrupt(f"{cls.__name__} fields differ")
    return _construct(cls, lambda: cls(**values))


def _construct(cls: type[T], build: typing.Callable[[], T]) -> T:
    """Run the type's own checks (key lengths, matching halves); a refusal is STATE_CORRUPT."""
    try:
        return build()
    except (ValueError, TypeError, ProtocolError) as exc:
        raise _corrupt(f"{cls.__name__} refused its fields ({type(exc).__name__})") from None


_SCALARS: Final[tuple[type, ...]] = (bytes, str, float, type(None))


def _decode_scalar(raw: object, hint: type) -> object:
    if hint is int:
        ok = isinstance(raw, int) and not isinstance(raw, bool)
    elif hint is bool:
        ok = isinstance(raw, bool)
    elif hint is float:  # as in typing, an int is a valid float (a delay of 5 seconds)
        ok = isinstance(raw, int | float) and not isinstance(raw, bool)
    else:
        ok = isinstance(raw, hint)
    if not ok:
        raise _corrupt(f"expected {hint.__name__}")
    return raw


def _decode(raw: object, hint: Any) -> object:
    """Rebuild a value of type ``hint`` from its msgpack form, refusing anything else."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(raw, args)
    if origin is typing.Literal:
        if raw not in args or type(raw) not in {type(a) for a in args}:
            raise _corrupt("value is not one of the allowed constants")
        return raw
    if origin is tuple:
        return _decode_tuple(raw, args)
    if origin in (dict, Mapping):
        return _decode_dict(raw, args)
    if hint is Profile:
        if not isinstance(raw, str):
            raise _corrupt("profile must be a name")
        try:
            return get_profile(raw)
        except InvalidArgument:
            raise _corrupt("unknown profile") from None
    if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or stores_as_bytes(hint)):
        return _decode_dataclass(raw, hint)
    if hint in (int, bool, *_SCALARS):
        return _decode_scalar(raw, hint)
    raise InvalidArgument(f"no decoder for {hint!r}")


def _unpack(data: bytes) -> object:
    return unpack_msgpack(data, "state", error=StateCorrupt)


def _envelope(data: object) -> tuple[str, bytes]:
    """Check the envelope; the version is checked before anything after it."""
    if not isinstance(data, bytes):
        raise InvalidArgument("serialized state must be bytes")
    outer = _unpack(data)
    if not isinstance(outer, list) or len(outer) < 2 or outer[0] != MAGIC:
        raise _corrupt("not a state envelope")
    if type(outer[1]) is not int or outer[1] != FORMAT_VERSION:
        raise UnsupportedVersion(f"state format version {outer[1]!r} is not supported")
    if len(outer) != 5:
        raise _corrupt("envelope has the wrong length")
    _, _, kind, body, digest = outer
    if not isinstance(kind, str) or not isinstance(body, bytes) or not isinstance(digest, bytes):
        raise _corrupt("envelope field types")
    if not constant_time_equal(sha256(body), digest):
        raise _corrupt("digest mismatch")
    return kind, body


def load_state(cls: type[T], data: bytes) -> T:
    """Strictly load a ``cls`` from ``dump_state`` bytes (spec/storage.md §4).

    Raises UnsupportedVersion for another format version and StateCorrupt
    for anything else that is not exactly a canonical serialization of a
    ``cls``.
    """
    kind, body = _envelope(data)
    if kind != stored_kind(cls):
        raise _corrupt(f"holds a {kind[:40]!r}, expected a {stored_kind(cls)}")
    value = _decode_dataclass(_unpack(body), cls)
    if dump_state(value) != data:
        raise _corrupt("not the canonical encoding")
    return value
