"""The store interface: a durable map with atomic transactions (spec/storage.md §5).

``MemoryStore`` (protocol/store/memory.py) and ``SqliteStore``
(protocol/store/sqlite.py) keep ``(table, key) -> bytes`` records behind this
one interface. All writes happen in a ``transaction()``; they become visible
together when the block exits normally and not at all if it raises or the
process dies. That is what makes decrypt crash-safe: the consumed message
key, the new ratchet state, a consumed one-time prekey and the application's
own record of the plaintext commit in one transaction (spec/storage.md §7).
"""

from __future__ import annotations

import typing
from typing import Protocol

from protocol.errors import InvalidArgument


def check_name(table: str, key: str) -> None:
    """Refuse a record address that is not a non-empty table name and a str key."""
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
