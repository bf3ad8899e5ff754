"""Typed record access inside a transaction, and the decode cache (spec/storage.md §7).

``load_record``, ``require_record`` and ``put_record`` read and write one
record through the stored format (protocol/store/format.py). ``DecodedCache``
does the same for the records a ``SessionManager`` reads on every operation
(its device record and its session records) and skips decoding bytes it has
just read or written.
"""

from __future__ import annotations

from typing import TypeVar

from protocol.errors import ProtocolError
from protocol.store.format import dump_state, load_state
from protocol.store.interface import Transaction

T = TypeVar("T")


def load_record(txn: Transaction, table: str, key: str, cls: type[T]) -> T | None:
    """The record ``(table, key)`` loaded strictly as a ``cls``, or None if absent."""
    data = txn.get(table, key)
    return None if data is None else load_state(cls, data)


def require_record(txn: Transaction, table: str, key: str, cls: type[T], error: ProtocolError) -> T:
    """Like ``load_record``, but an absent record raises ``error``."""
    value = load_record(txn, table, key, cls)
    if value is None:
        raise error
    return value


def put_record(txn: Transaction, table: str, key: str, value: object) -> None:
    """Write ``value`` in the stored format (visible when ``txn`` commits)."""
    txn.put(table, key, dump_state(value))


class DecodedCache:
    """The last bytes read or written for each record, with their decoded value.

    Note that this skips only decoding, never a read: records are frozen, so
    bytes equal to the cached bytes decode to the cached value, and every
    lookup first reads what the store holds now. A write that is rolled back
    leaves bytes the store does not hold, so the next read misses and decodes;
    a change by another process is seen the same way.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[bytes, object]] = {}

    def load(self, txn: Transaction, table: str, key: str, cls: type[T]) -> T | None:
        data = txn.get(table, key)
        if data is None:
            return None
        entry = self._entries.get((table, key))
        if entry is not None and entry[0] == data and isinstance(entry[1], cls):
            return entry[1]
        value = load_state(cls, data)
        self._entries[(table, key)] = (data, value)
        return value

    def require(
        self,
        txn: Transaction,
        table: str,
        key: str,
        cls: type[T],
        error: type[ProtocolError],
        message: str = "",
    ) -> T:
        """Like ``load``, but an absent record raises ``error(message)``."""
        value = self.load(txn, table, key, cls)
        if value is None:
            raise error(message)
        return value

    def latest(self, table: str, key: str, cls: type[T]) -> T:
        """The value last read or written for ``(table, key)``, without reading the store."""
        value = self._entries[(table, key)][1]
        assert isinstance(value, cls)
        return value

    def put(self, txn: Transaction, table: str, key: str, value: object) -> None:
        data = dump_state(value)
        txn.put(table, key, data)
        self._entries[(table, key)] = (data, value)

    def __repr__(self) -> str:
        return f"DecodedCache(<{len(self._entries)} records>)"
