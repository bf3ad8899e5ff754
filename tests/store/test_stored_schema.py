"""The stored format is the one spec/storage.md §3 writes down, and it outlives the code.

Every record the library stores, every field, its stored name, type and
order, is listed in spec/storage.md §3; the first test reads that table and
compares it with what the code writes, so a change of a Python class that
would change the stored bytes fails here (and the format-1 fixtures of
tests/session/test_cross_version.py fail with it). The others prove the rules that
let the code change without changing the format: an added field, a renamed
field or class, a key type in place of ``bytes``.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, NamedTuple

import pytest

from protocol.errors import StateCorrupt
from protocol.prekeys import KemPrekey, OneTimePrekey, SignedPrekey
from protocol.profiles import Profile
from protocol.session.records import DeviceRecord, KemPrekeyUse, SessionRecord, TrustedIdentity
from protocol.store.format import (
    ADDED,
    dump_state,
    load_state,
    stored_fields,
    stored_kind,
    stored_name,
    stores_as_bytes,
)
from protocol.store.schema import is_record

SPEC = Path(__file__).parents[2] / "spec" / "storage.md"
TOP_LEVEL = (
    DeviceRecord,
    TrustedIdentity,
    SessionRecord,
    SignedPrekey,
    OneTimePrekey,
    KemPrekey,
    KemPrekeyUse,
)


def _type_name(hint: Any, nested: list[type]) -> str:
    """How spec/storage.md §3 writes a stored type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_type_name(a, nested) for a in args if a is not type(None)]
        return " or ".join(options) + (" or nil" if type(None) in args else "")
    if origin is typing.Literal:
        return "str: " + " / ".join(str(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"array of {_type_name(args[0], nested)}"
        return "[" + ", ".join(_type_name(a, nested) for a in args) + "]"
    if origin is dict:
        key, value = (_type_name(a, nested) for a in args)
        return f"array of [{key}, {value}]"
    if hint is Profile:
        return "profile name"
    if isinstance(hint, type) and stores_as_bytes(hint):
        return "bin"
    if is_record(hint):
        nested.append(hint)
        return stored_kind(hint)
    return {bytes: "bin", int: "int", bool: "bool", str: "str", None: "nil"}[hint]


def _code_schema() -> list[tuple[str, int, str, str]]:
    """(kind, position, stored name, type) for every record reachable from the stored tables."""
    rows: list[tuple[str, int, str, str]] = []
    todo: list[type] = list(TOP_LEVEL)
    done: set[type] = set()
    while todo:
        cls = todo.pop(0)
        if cls in done:
            continue
        done.add(cls)
        for position, f in enumerate(stored_fields(cls), 1):
            type_name = _type_name(f.hint, todo)
            if f.added:
                type_name += f", added (default {f.default!r})"
            rows.append((stored_kind(cls), position, f.name, type_name))
    return rows


def _spec_schema() -> list[tuple[str, int, str, str]]:
    text = SPEC.read_text()
    section = text[text.index("### 3.1 Records") : text.index("## 4.")]
    rows = []
    for line in section.splitlines():
        match = re.fullmatch(r"\| `(\w+)` \| (\d+) \| `(\w+)` \| (.+?) \|", line)
        if match:
            kind, position, name, type_name = match.groups()
            rows.append((kind, int(position), name, type_name.replace("`", "")))
    return rows


def test_every_stored_record_field_and_type_is_the_one_spec_storage_md_lists() -> None:
    spec = _spec_schema()
    assert spec, "spec/storage.md §3.1 lists no record"
    assert sorted(_code_schema()) == sorted(spec)


@dataclass(frozen=True)
class _Before:
    __stored_kind__: ClassVar[str] = "Example"
    chain: bytes
    n: int


@dataclass(frozen=True)
class _After:
    __stored_kind__: ClassVar[str] = "Example"
    chain_key: bytes = field(metadata=stored_name("chain"))
    n: int = 0
    pq_salt: bytes | None = field(default=None, metadata=ADDED)


def test_a_field_added_for_one_profile_leaves_every_record_without_it_byte_for_byte() -> None:
    old = dump_state(_Before(b"k" * 32, 7))
    assert load_state(_After, old) == _After(b"k" * 32, 7)
    assert dump_state(_After(b"k" * 32, 7)) == old
    new = dump_state(_After(b"k" * 32, 7, b"s" * 32))
    assert load_state(_After, new).pq_salt == b"s" * 32
    with pytest.raises(StateCorrupt):
        load_state(_Before, new)  # an older release refuses state it cannot keep


def test_an_added_field_written_at_its_default_is_not_canonical() -> None:
    import msgpack

    from protocol.primitives import sha256

    body = msgpack.packb({"chain": b"k" * 32, "n": 7, "pq_salt": None}, use_bin_type=True)
    data = msgpack.packb(["e2ee-state", 1, "Example", body, sha256(body)], use_bin_type=True)
    with pytest.raises(StateCorrupt):
        load_state(_After, data)


@dataclass(frozen=True)
class _Key:
    """A key type as the ratchet's typed keys are: one bin, length checked on load."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ValueError("a key is 32 bytes")

    def stored_bytes(self) -> bytes:
        return self.key

    @classmethod
    def from_stored_bytes(cls, data: bytes) -> _Key:
        return cls(data)


@dataclass(frozen=True)
class _Typed:
    __stored_kind__: ClassVar[str] = "Example"
    chain: _Key
    n: int


def test_a_key_type_in_place_of_bytes_changes_no_stored_byte_and_checks_its_length() -> None:
    old = dump_state(_Before(b"k" * 32, 7))
    assert dump_state(_Typed(_Key(b"k" * 32), 7)) == old
    assert load_state(_Typed, old) == _Typed(_Key(b"k" * 32), 7)
    with pytest.raises(StateCorrupt):
        load_state(_Typed, dump_state(_Before(b"k" * 31, 7)))


class _Tuple(NamedTuple):
    """The record of ``_After`` as a named tuple, marked in its annotations."""

    __stored_kind__ = "Example"
    chain_key: Annotated[bytes, stored_name("chain")]
    n: int = 0
    pq_salt: Annotated[bytes | None, ADDED] = None


def test_a_named_tuple_record_is_stored_as_the_dataclass_with_the_same_fields() -> None:
    """Why the ratchet's state may be a named tuple (protocol/ratchet.py): the same bytes."""
    for tuple_value, dataclass_value in [
        (_Tuple(b"k" * 32, 7), _After(b"k" * 32, 7)),
        (_Tuple(b"k" * 32, 7, b"s" * 32), _After(b"k" * 32, 7, b"s" * 32)),
    ]:
        data = dump_state(dataclass_value)
        assert dump_state(tuple_value) == data
        loaded = load_state(_Tuple, data)
        assert type(loaded) is _Tuple and loaded == tuple_value
    assert load_state(_After, dump_state(_Tuple(b"k" * 32, 7))) == _After(b"k" * 32, 7)


def test_a_named_tuple_record_refuses_an_added_field_written_at_its_default() -> None:
    import msgpack

    from protocol.primitives import sha256

    body = msgpack.packb({"chain": b"k" * 32, "n": 7, "pq_salt": None}, use_bin_type=True)
    data = msgpack.packb(["e2ee-state", 1, "Example", body, sha256(body)], use_bin_type=True)
    with pytest.raises(StateCorrupt):
        load_state(_Tuple, data)
