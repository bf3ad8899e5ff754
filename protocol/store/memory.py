"""The in-memory store (spec/storage.md §5): a dict, with writes staged until commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from protocol.errors import InvalidArgument
from protocol.store.interface import Transaction, check_name


class _MemoryTransaction:
    def __init__(self, committed: dict[tuple[str, str], bytes]) -> None:
        self._committed = committed
        self.staged: dict[tuple[str, str], bytes | None] = {}

    def get(self, table: str, key: str) -> bytes | None:
        check_name(table, key)
        if (table, key) in self.staged:
            return self.staged[(table, key)]
        return self._committed.get((table, key))

    def put(self, table: str, key: str, value: bytes) -> None:
        check_name(table, key)
        if not isinstance(value, bytes):
            raise InvalidArgument("a record value must be bytes")
        self.staged[(table, key)] = value

    def delete(self, table: str, key: str) -> None:
        check_name(table, key)
        self.staged[(table, key)] = None

    def keys(self, table: str) -> list[str]:
        check_name(table, "")
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
        check_name(table, key)
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
