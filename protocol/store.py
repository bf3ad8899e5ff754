"""State persistence: versioned serialization and two stores (spec/storage.md).

Serialization (spec/storage.md §2-§4). Every piece of state is a frozen
dataclass; ``dump_state`` turns it into one msgpack *envelope*

    [MAGIC, FORMAT_VERSION, kind, body, sha256(body)]

where ``kind`` is the class name, ``body`` the msgpack bytes of the value
(a dataclass is a map of its fields in declaration order, a ``Profile`` is its
name, a dict is a list of ``[key, value]`` pairs), and the digest catches
accidental corruption (it is not a MAC: the store is trusted local storage).
``load_state(cls, data)`` is strict: it checks the version before anything
else (UNSUPPORTED_VERSION), then the digest, the kind, every field name and
every value's type against the class annotations, and finally that the bytes
are the canonical encoding of what was loaded. Any difference is
STATE_CORRUPT, and nothing is returned: a state is loaded whole or not at all.

Stores (spec/storage.md §5-§6). ``MemoryStore`` and ``SqliteStore`` keep
``(table, key) -> bytes`` records behind one interface. All writes happen in a
``transaction()``; they become visible together when the block exits normally
and not at all if it raises or the process dies. That is what makes decrypt
crash-safe: the consumed message key, the new ratchet state, a consumed
one-time prekey and the application's own record of the plaintext commit in
one transaction (spec/storage.md §7).
"""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import msgpack

from protocol.encoding import unpack_msgpack
from protocol.errors import InvalidArgument, ProtocolError, StateCorrupt, UnsupportedVersion
from protocol.primitives import constant_time_equal, sha256
from protocol.profiles import Profile, get_profile

MAGIC: Final = "e2ee-state"
# The only version this library writes and reads (spec/storage.md §4).
FORMAT_VERSION: Final = 1
# PRAGMA user_version of a SQLite store file (spec/storage.md §6).
SQLITE_SCHEMA_VERSION: Final = 1

T = TypeVar("T")


# --- Encoding (spec/storage.md §3) -----------------------------------------------------


def _encode(value: object) -> object:
    if isinstance(value, Profile):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
    if isinstance(value, bytes | str | int | None):  # bool is an int
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
    return _pack([MAGIC, FORMAT_VERSION, type(value).__name__, body, sha256(body)])


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


@functools.cache
def _layout(cls: type) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The field names and resolved type hints of a state dataclass, once per class.

    ``typing.get_type_hints`` evaluates every annotation string again on each
    call; per decoded object it was most of the cost of loading a session.
    """
    names = tuple(f.name for f in dataclasses.fields(cls) if f.init)  # the rest is derived
    return names, typing.get_type_hints(cls)


def _decode_dataclass(raw: object, cls: type[T]) -> T:
    if not isinstance(raw, dict):
        raise _corrupt(f"{cls.__name__} must be a map")
    names, hints = _layout(typing.cast(type, cls))
    if tuple(raw) != names:
        raise _corrupt(f"{cls.__name__} fields differ")
    values = {name: _decode(raw[name], hints[name]) for name in names}
    try:
        return cls(**values)
    except (ValueError, TypeError, ProtocolError) as exc:  # the type's own checks
        raise _corrupt(f"{cls.__name__} refused its fields ({type(exc).__name__})") from None


_SCALARS: Final[tuple[type, ...]] = (bytes, str, type(None))


def _decode_scalar(raw: object, hint: type) -> object:
    if hint is int:
        ok = isinstance(raw, int) and not isinstance(raw, bool)
    elif hint is bool:
        ok = isinstance(raw, bool)
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
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
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
    if kind != cls.__name__:
        raise _corrupt(f"holds a {kind[:40]!r}, expected a {cls.__name__}")
    value = _decode_dataclass(_unpack(body), cls)
    if dump_state(value) != data:
        raise _corrupt("not the canonical encoding")
    return value


# --- Stores (spec/storage.md §5-§6) ------------------------------------------------------


def _check_name(table: str, key: str) -> None:
    if not isinstance(table, str) or not table or not isinstance(key, str):
        raise InvalidArgument("a record is addressed by a non-empty table name and a str key")


class Transaction(Protocol):
    """The reads and writes of one atomic unit of work (spec/storage.md §7)."""

    def get(self, table: str, key: str) -> bytes | None:
        """The record as this transaction sees it (its own writes included)."""
        ...

    def put(self, table: str, key: str, value: bytes) -> None:
        """Write a record; visible to others only once the transaction commits."""
        ...

    def delete(self, table: str, key: str) -> None:
        """Remove a record (no error if it is absent)."""
        ...

    def keys(self, table: str) -> list[str]:
        """The keys of a table, sorted, as this transaction sees it."""
        ...


class Store(Protocol):
    """A durable map ``(table, key) -> bytes`` with atomic transactions."""

    def get(self, table: str, key: str) -> bytes | None:
        """The committed record, or None."""
        ...

    def keys(self, table: str) -> list[str]:
        """The committed keys of a table, sorted."""
        ...

    def transaction(self) -> typing.ContextManager[Transaction]:
        """All writes in the block commit together on normal exit, or not at all."""
        ...


class _MemoryTransaction:
    def __init__(self, committed: dict[tuple[str, str], bytes]) -> None:
        self._committed = committed
        self.staged: dict[tuple[str, str], bytes | None] = {}

    def get(self, table: str, key: str) -> bytes | None:
        _check_name(table, key)
        if (table, key) in self.staged:
            return self.staged[(table, key)]
        return self._committed.get((table, key))

    def put(self, table: str, key: str, value: bytes) -> None:
        _check_name(table, key)
        if not isinstance(value, bytes):
            raise InvalidArgument("a record value must be bytes")
        self.staged[(table, key)] = value

    def delete(self, table: str, key: str) -> None:
        _check_name(table, key)
        self.staged[(table, key)] = None

    def keys(self, table: str) -> list[str]:
        _check_name(table, "")
        names = {k for (t, k) in self._committed if t == table}
        for (t, k), value in self.staged.items():
            if t == table:
                (names.add if value is not None else names.discard)(k)
        return sorted(names)


class MemoryStore:
    """An in-memory ``Store``: a dict, with writes staged until commit."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], bytes] = {}
        self._open = False

    def get(self, table: str, key: str) -> bytes | None:
        _check_name(table, key)
        return self._records.get((table, key))

    def keys(self, table: str) -> list[str]:
        return _MemoryTransaction(self._records).keys(table)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        if self._open:
            raise InvalidArgument("transactions do not nest")
        self._open = True
        try:
            txn = _MemoryTransaction(self._records)
            yield txn
            for address, value in txn.staged.items():
                if value is None:
                    self._records.pop(address, None)
                else:
                    self._records[address] = value
        finally:
            self._open = False

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._records)} records>)"


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def get(self, table: str, key: str) -> bytes | None:
        _check_name(table, key)
        row = self._db.execute(
            "SELECT value FROM records WHERE tbl = ? AND key = ?", (table, key)
        ).fetchone()
        if row is None:
            return None
        if not isinstance(row[0], bytes):
            raise StateCorrupt("store record is not a blob")
        return row[0]

    def put(self, table: str, key: str, value: bytes) -> None:
        _check_name(table, key)
        if not isinstance(value, bytes):
            raise InvalidArgument("a record value must be bytes")
        self._db.execute(
            "INSERT OR REPLACE INTO records (tbl, key, value) VALUES (?, ?, ?)", (table, key, value)
        )

    def delete(self, table: str, key: str) -> None:
        _check_name(table, key)
        self._db.execute("DELETE FROM records WHERE tbl = ? AND key = ?", (table, key))

    def keys(self, table: str) -> list[str]:
        _check_name(table, "")
        rows = self._db.execute("SELECT key FROM records WHERE tbl = ? ORDER BY key", (table,))
        return [str(row[0]) for row in rows]


class SqliteStore:
    """A ``Store`` in one SQLite file (stdlib ``sqlite3``), durable across crashes.

    The file is in WAL mode with ``synchronous=FULL``: a transaction that
    returned from commit survives a process kill or power loss, and one that
    did not is rolled back on the next open (spec/storage.md §6).
    """

    def __init__(self, path: str | Path) -> None:
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
            self._setup()
        except sqlite3.DatabaseError:
            raise StateCorrupt("the store file is not a readable SQLite database") from None

    def _setup(self) -> None:
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._db.execute(
                    "CREATE TABLE records (tbl TEXT NOT NULL, key TEXT NOT NULL,"
                    " value BLOB NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID"
                )
                self._db.execute(f"PRAGMA user_version = {SQLITE_SCHEMA_VERSION}")
            elif version != SQLITE_SCHEMA_VERSION:
                raise UnsupportedVersion(f"store schema version {version} is not supported")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._db.close()
            raise

    def get(self, table: str, key: str) -> bytes | None:
        return self._read(lambda txn: txn.get(table, key))

    def keys(self, table: str) -> list[str]:
        return self._read(lambda txn: txn.keys(table))

    def _read(self, query: typing.Callable[[_SqliteTransaction], T]) -> T:
        try:
            return query(_SqliteTransaction(self._db))
        except sqlite3.DatabaseError:
            raise StateCorrupt("the store file cannot be read") from None

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        if self._db.in_transaction:
            raise InvalidArgument("transactions do not nest")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError:
            raise StateCorrupt("the store file cannot be written") from None
        try:
            yield _SqliteTransaction(self._db)
        except sqlite3.DatabaseError:
            self._db.execute("ROLLBACK")
            raise StateCorrupt("the store file cannot be read") from None
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError:
            self._db.execute("ROLLBACK")
            raise StateCorrupt("the store file cannot be written") from None

    def close(self) -> None:
        """Close the file; committed transactions are already durable."""
        self._db.close()

    def __repr__(self) -> str:
        return "SqliteStore(<file>)"
