"""The schema of a stored record: kinds, stored names, added fields, key types (spec/storage.md §3).

A record is a frozen dataclass or a named tuple (an immutable record built
on every message, as the Double Ratchet's state, where a tuple is cheaper to
build: protocol/ratchet.py says why). Its layout in the format is read from
the class once (``stored_fields``), under the format's names: a renamed field
or class keeps them (``stored_name``, ``__stored_kind__``), state added
later (``ADDED``) is written only when it differs from its default, and a
key type in place of ``bytes`` is stored as the same bin (spec/storage.md
§3.2). A dataclass carries these marks in its fields' metadata; a named
tuple, which has no field metadata, in its annotations (``Annotated[T,
ADDED]``), as protocol/secrecy.py marks its secret fields. Either way the
stored bytes are the same: the format sees names, types and order, not the
kind of Python class. ``protocol/store/codec.py`` compiles its encoders and
decoders from this.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Final

from protocol.errors import InvalidArgument

STORED_NAME: Final = "stored_name"
"""Field metadata key: the field's name in the format when the Python name differs."""
ADDED_FIELD: Final = "stored_added"
"""Field metadata key: a field added after format 1, omitted while it holds its default."""


def stored_name(name: str) -> dict[str, object]:
    """``dataclasses.field(metadata=stored_name("old"))``: a renamed field keeps its stored name."""
    return {STORED_NAME: name}


ADDED: Final[Mapping[str, object]] = types.MappingProxyType({ADDED_FIELD: True})
"""``dataclasses.field(default=..., metadata=ADDED)``: state added to a record later.

In a named tuple: ``name: Annotated[T, ADDED] = default``.

It is written only when it differs from its default, so records that do not
use it (another profile's, or any written before it existed) keep their
exact bytes and keep loading (spec/storage.md §4, the migration rule).
"""


SHARED_ITEMS_FIELD: Final = "stored_shared_items"
"""Field metadata key: an array of records that successive records share (``SHARED_ITEMS``)."""
SHARED_ITEMS: Final[Mapping[str, object]] = types.MappingProxyType({SHARED_ITEMS_FIELD: True})
"""``dataclasses.field(metadata=SHARED_ITEMS)``: the items are frozen records carried, as the
same objects, from one record to the next (a session record's archived sessions), so each
is encoded once (protocol/store/codec.py). It changes no stored byte."""


@dataclasses.dataclass(frozen=True, slots=True)
class StoredField:
    """One field of a record as the format sees it: stored name, attribute, type."""

    name: str
    attribute: str
    hint: Any
    added: bool
    default: object
    keyword_only: bool = False
    shared_items: bool = False


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


def _declared_fields(cls: type) -> list[tuple[str, Any, Mapping[str, Any], object, bool]]:
    """(attribute, type, metadata, default, keyword-only) of each stored field of ``cls``.

    Fields of a dataclass declared with ``init=False`` are derived, not
    state, and are not stored. A named tuple's marks are the mappings its
    ``Annotated`` annotations carry, and its type the annotated one.
    """
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return [
            (f.name, hints[f.name], f.metadata, _default(f), f.kw_only is True)
            for f in dataclasses.fields(cls)
            if f.init
        ]
    hints = typing.get_type_hints(cls, include_extras=True)
    defaults: Mapping[str, object] = getattr(cls, "_field_defaults", {})
    out: list[tuple[str, Any, Mapping[str, Any], object, bool]] = []
    for name in getattr(cls, "_fields", ()):
        hint = hints[name]
        metadata: dict[str, Any] = {}
        if typing.get_origin(hint) is typing.Annotated:
            for extra in hint.__metadata__:
                if isinstance(extra, Mapping):
                    metadata.update(extra)
            hint = typing.get_args(hint)[0]
        out.append((name, hint, metadata, defaults.get(name, dataclasses.MISSING), False))
    return out


@functools.cache
def stored_fields(cls: type) -> tuple[StoredField, ...]:
    """The stored fields of a record class, in format order, once per class.

    ``typing.get_type_hints`` evaluates every annotation string again on each
    call, hence the cache.
    """
    out = []
    for attribute, hint, metadata, default, keyword_only in _declared_fields(cls):
        added = bool(metadata.get(ADDED_FIELD, False))
        if added and default is dataclasses.MISSING:
            raise InvalidArgument(f"an added field needs a default ({cls.__name__}.{attribute})")
        name = metadata.get(STORED_NAME, attribute)
        shared = bool(metadata.get(SHARED_ITEMS_FIELD, False))
        out.append(StoredField(name, attribute, hint, added, default, keyword_only, shared))
    return tuple(out)


def stores_as_bytes(cls: type) -> bool:
    """Whether records of ``cls`` are stored as one bin (a key type).

    A key type (a frozen class, or a ``bytes`` subclass as the ratchet's keys
    in protocol/ratchet_keys.py) provides ``stored_bytes()`` and the classmethod
    ``from_stored_bytes(data)``, which runs its length checks; it is stored as
    the bin of its key, exactly as the plain ``bytes`` field it replaces, so
    introducing it changes no stored byte. A key type that is a ``bytes``
    subclass is stored as itself, and its ``from_stored_bytes`` must give back
    a key equal to the bytes it was given (the decoder checks it).
    """
    return hasattr(cls, "from_stored_bytes")


def is_named_tuple(hint: object) -> bool:
    """Whether ``hint`` is a named tuple class (``typing.NamedTuple``)."""
    return isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields")


def is_record(hint: object) -> bool:
    """Whether ``hint`` is a record class (a dataclass or a named tuple), stored as a map."""
    return isinstance(hint, type) and (dataclasses.is_dataclass(hint) or is_named_tuple(hint))
