"""State persistence: the stored format and two stores (spec/storage.md).

* ``protocol.store.format``: ``dump_state`` / ``load_state``, the versioned,
  strict serialization of state records (spec/storage.md §2-§4);
* ``protocol.store.interface``: the ``Store`` and ``Transaction`` interface
  (spec/storage.md §5);
* ``protocol.store.memory``: ``MemoryStore``;
* ``protocol.store.sqlite``: ``SqliteStore``, one SQLite file (spec/storage.md §6).
"""

from protocol.store.format import FORMAT_VERSION, dump_state, load_state
from protocol.store.interface import Store, Transaction
from protocol.store.memory import MemoryStore
from protocol.store.sqlite import SqliteStore

__all__ = [
    "FORMAT_VERSION",
    "MemoryStore",
    "SqliteStore",
    "Store",
    "Transaction",
    "dump_state",
    "load_state",
]
