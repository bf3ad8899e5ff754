"""State serialization is strict and versioned; stores commit all or nothing (spec/storage.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import InvalidArgument, StateCorrupt, UnsupportedVersion
from protocol.primitives import sha256
from protocol.profiles import CLASSIC, SIGNAL_V3, Profile
from protocol.store import MemoryStore, SqliteStore, Store
from protocol.store.format import FORMAT_VERSION, MAGIC, dump_state, load_state


@dataclass(frozen=True)
class Inner:
    public: bytes
    index: int


@dataclass(frozen=True)
class Sample:
    profile: Profile
    role: Literal["initiator", "responder"]
    counter: int
    flag: bool
    name: str
    maybe: bytes | None
    chain: tuple[Inner, ...]
    pair: tuple[bytes, int]
    skipped: dict[tuple[bytes, int], bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Other:
    counter: int


SAMPLE = Sample(
    profile=SIGNAL_V3,
    role="responder",
    counter=7,
    flag=True,
    name="device",
    maybe=None,
    chain=(Inner(b"\x01" * 32, 0), Inner(b"\x02" * 32, 5)),
    pair=(b"ab", 3),
    skipped={(b"\x03" * 32, 4): b"\x04" * 32, (b"\x03" * 32, 9): b"\x05" * 32},
)

samples = st.builds(
    Sample,
    profile=st.sampled_from([CLASSIC, SIGNAL_V3]),
    role=st.sampled_from(["initiator", "responder"]),
    counter=st.integers(0, 2**63),
    flag=st.booleans(),
    name=st.text(max_size=8),
    maybe=st.none() | st.binary(max_size=8),
    chain=st.lists(st.builds(Inner, st.binary(max_size=4), st.integers(0, 9)), max_size=3).map(
        tuple
    ),
    pair=st.tuples(st.binary(max_size=4), st.integers(0, 9)),
    skipped=st.dictionaries(
        st.tuples(st.binary(max_size=4), st.integers(0, 99)), st.binary(max_size=4), max_size=3
    ),
)


def _envelope(version: object, kind: str, body_value: object) -> bytes:
    body = msgpack.packb(body_value, use_bin_type=True)
    return msgpack.packb([MAGIC, version, kind, body, sha256(body)], use_bin_type=True)


@given(samples)
def test_loading_a_dumped_state_gives_an_equal_state(value: Sample) -> None:
    assert load_state(Sample, dump_state(value)) == value


@given(st.data())
def test_any_single_byte_change_is_refused_as_corrupt_or_unsupported(data: st.DataObject) -> None:
    encoded = bytearray(dump_state(SAMPLE))
    offset = data.draw(st.integers(0, len(encoded) - 1))
    encoded[offset] ^= data.draw(st.integers(1, 255))
    with pytest.raises((StateCorrupt, UnsupportedVersion)):
        load_state(Sample, bytes(encoded))


@given(st.binary(max_size=300))
def test_garbage_is_refused_with_a_state_error_only(garbage: bytes) -> None:
    with pytest.raises((StateCorrupt, UnsupportedVersion)):
        load_state(Sample, garbage)


@pytest.mark.parametrize("cut", [0, 1, 5, 20, -1])
def test_truncated_state_is_corrupt(cut: int) -> None:
    encoded = dump_state(SAMPLE)
    with pytest.raises(StateCorrupt):
        load_state(Sample, encoded[:cut])


@pytest.mark.parametrize("version", [0, 2, FORMAT_VERSION + 100, "1", True])
def test_unknown_format_version_is_unsupported_even_with_an_unreadable_body(
    version: object,
) -> None:
    with pytest.raises(UnsupportedVersion):
        load_state(Sample, _envelope(version, "Sample", {"anything": "else"}))


def test_a_state_of_another_kind_is_corrupt() -> None:
    with pytest.raises(StateCorrupt):
        load_state(Other, dump_state(SAMPLE))


def test_a_wrong_digest_is_corrupt() -> None:
    body = msgpack.packb({"counter": 1})
    encoded = msgpack.packb([MAGIC, FORMAT_VERSION, "Other", body, bytes(32)])
    with pytest.raises(StateCorrupt):
        load_state(Other, encoded)


@pytest.mark.parametrize(
    "body",
    [
        {"counter": 1, "extra": 2},
        {},
        {"counter": True},
        {"counter": "1"},
        {"counter": -1.5},
        [1],
    ],
)
def test_missing_extra_or_mistyped_fields_are_corrupt(body: object) -> None:
    with pytest.raises(StateCorrupt):
        load_state(Other, _envelope(FORMAT_VERSION, "Other", body))


def test_a_non_canonical_encoding_is_corrupt() -> None:
    # 1 as a 64-bit msgpack integer instead of the one-byte fixint.
    body = b"\x81\xa7counter\xcf" + (1).to_bytes(8, "big")
    assert msgpack.unpackb(body) == {"counter": 1}
    encoded = msgpack.packb([MAGIC, FORMAT_VERSION, "Other", body, sha256(body)])
    with pytest.raises(StateCorrupt):
        load_state(Other, encoded)


def test_an_unknown_profile_name_is_corrupt() -> None:
    good = msgpack.unpackb(msgpack.unpackb(dump_state(SAMPLE))[3], strict_map_key=False)
    good["profile"] = "no-such-profile"
    with pytest.raises(StateCorrupt):
        load_state(Sample, _envelope(FORMAT_VERSION, "Sample", good))


def test_a_value_outside_a_literal_is_corrupt() -> None:
    good = msgpack.unpackb(msgpack.unpackb(dump_state(SAMPLE))[3], strict_map_key=False)
    good["role"] = "observer"
    with pytest.raises(StateCorrupt):
        load_state(Sample, _envelope(FORMAT_VERSION, "Sample", good))


def test_only_dataclasses_are_serialized() -> None:
    with pytest.raises(InvalidArgument):
        dump_state({"a": 1})


# --- Stores --------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        sqlite_store = SqliteStore(tmp_path / "state.db")
        yield sqlite_store
        sqlite_store.close()


def test_committed_writes_are_visible_together(store: Store) -> None:
    with store.transaction() as txn:
        txn.put("t", "a", b"1")
        txn.put("t", "b", b"2")
        assert txn.get("t", "a") == b"1"
    assert (store.get("t", "a"), store.get("t", "b")) == (b"1", b"2")
    assert store.keys("t") == ["a", "b"]


def test_a_failing_transaction_writes_nothing(store: Store) -> None:
    with store.transaction() as txn:
        txn.put("t", "a", b"1")
    with pytest.raises(RuntimeError), store.transaction() as txn:
        txn.put("t", "a", b"changed")
        txn.put("t", "b", b"new")
        txn.delete("t", "a")
        raise RuntimeError("crash inside the transaction")
    assert store.get("t", "a") == b"1"
    assert store.get("t", "b") is None
    assert store.keys("t") == ["a"]


def test_deletes_and_keys_follow_the_transaction_view(store: Store) -> None:
    with store.transaction() as txn:
        txn.put("t", "a", b"1")
        txn.put("u", "z", b"9")
    with store.transaction() as txn:
        txn.delete("t", "a")
        txn.put("t", "c", b"3")
        assert txn.keys("t") == ["c"]
    assert store.keys("t") == ["c"]
    assert store.keys("u") == ["z"]


def test_transactions_do_not_nest(store: Store) -> None:
    with store.transaction(), pytest.raises(InvalidArgument), store.transaction():
        pass


def test_records_are_addressed_by_names_and_hold_bytes(store: Store) -> None:
    with store.transaction() as txn:
        with pytest.raises(InvalidArgument):
            txn.put("", "a", b"1")
        with pytest.raises(InvalidArgument):
            txn.put("t", "a", "text")  # type: ignore[arg-type]


def test_sqlite_store_keeps_commits_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteStore(path)
    with first.transaction() as txn:
        txn.put("session", "peer", dump_state(SAMPLE))
    first.close()
    second = SqliteStore(path)
    loaded = second.get("session", "peer")
    second.close()
    assert loaded is not None and load_state(Sample, loaded) == SAMPLE


def test_sqlite_store_of_an_unknown_schema_version_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(UnsupportedVersion):
        SqliteStore(path)


def test_a_file_that_is_not_a_database_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(StateCorrupt):
        SqliteStore(path)


def test_store_reprs_show_no_contents(tmp_path: Path) -> None:
    memory = MemoryStore()
    with memory.transaction() as txn:
        txn.put("identity", "self", b"\x42" * 32)
    sqlite_store = SqliteStore(tmp_path / "state.db")
    assert "42" not in repr(memory) and "state.db" not in repr(sqlite_store)
    sqlite_store.close()
