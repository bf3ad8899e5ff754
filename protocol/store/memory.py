"""The in-memory store (spec/storage.md §5): a dict, with writes staged until commit."""

from __future__ import annotations

from types import TracebackType

from protocol.errors import InvalidArgument
from protocol.store.interface import check_name


class _MemoryTransaction:
    """One transaction: its writes are staged and applied to the store on a normal exit.

    Note that it is its own context manager rather than a generator under
    ``contextlib.contextmanager``: a ``SessionManager`` runs one transaction
    per message, and the generator's machinery cost more than the
    transaction's own work.
    """

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._committed = store._records
        self.staged: dict[tuple[str, str], bytes | None] = {}

    def __enter__(self) -> _MemoryTransaction:
        if self._store._open:
            raise InvalidArgument("transactions do not nest")
        self._store._open = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._store._open = False
        if exc_type is not None:
            return
        for address, value in self.staged.items():
            if value is None:
                self._committed.pop(address, None)
            else:
                self._committed[address] = value

    def get(self, table: str, key: str) -> bytes | None:
        check_name(table, key)
        address = (table, key)
        if address in self.staged:
            return self.staged[address]
        return self._committed.get(address)

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
        return _MemoryTransaction(self).keys(table)

    def transaction(self) -> _MemoryTransaction:
        """A transaction, begun when its ``with`` block is entered (transactions do not nest)."""
        return _MemoryTransaction(self)

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._records)} records>)"
