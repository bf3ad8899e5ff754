"""The SQLite store (spec/storage.md §6): one file, durable across crashes."""

from __future__ import annotations

import sqlite3
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar

from protocol.errors import InvalidArgument, StateCorrupt, UnsupportedVersion
from protocol.store.interface import Transaction, check_name

# PRAGMA user_version of a SQLite store file (spec/storage.md §6).
SQLITE_SCHEMA_VERSION: Final = 1

T = TypeVar("T")


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def get(self, table: str, key: str) -> bytes | None:
        check_name(table, key)
        row = self._db.execute(
            "SELECT value FROM records WHERE tbl = ? AND key = ?", (table, key)
        ).fetchone()
        if row is None:
            return None
        if not isinstance(row[0], bytes):
            raise StateCorrupt("store record is not a blob")
        return row[0]

    def put(self, table: str, key: str, value: bytes) -> None:
        check_name(table, key)
        if not isinstance(value, bytes):
            raise InvalidArgument("a record value must be bytes")
        self._db.execute(
            "INSERT OR REPLACE INTO records (tbl, key, value) VALUES (?, ?, ?)", (table, key, value)
        )

    def delete(self, table: str, key: str) -> None:
        check_name(table, key)
        self._db.execute("DELETE FROM records WHERE tbl = ? AND key = ?", (table, key))

    def keys(self, table: str) -> list[str]:
        check_name(table, "")
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
