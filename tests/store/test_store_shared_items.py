"""What the store writes does not depend on its caches (spec/storage.md §3, §3.2).

A session record's archived sessions are encoded once each and reused by
identity (``SHARED_ITEMS``, protocol/store/codec.py), and records are packed
by one reused msgpack packer per thread (protocol/store/format.py). Neither
may change a stored byte: a record written from the caches is the one
written from a freshly loaded copy, which shares no object with them.
"""

from __future__ import annotations

import dataclasses
import gc
from typing import Final

import pytest

from protocol.errors import InvalidArgument
from protocol.profiles import CLASSIC
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.session.records import SessionRecord, SessionState
from protocol.store import MemoryStore
from protocol.store.codec import SharedItemsEncoder, _shared_items_encoder
from protocol.store.format import dump_state, load_state

ALICE: Final = Address("alice", 1)
BOB: Final = Address("bob", 1)


def _record_with_archived_sessions(count: int) -> SessionRecord:
    rng = DrbgRandom(b"shared items")
    alice = SessionManager.create(MemoryStore(), ALICE, CLASSIC, rng=rng, now=0)
    bob = SessionManager.create(MemoryStore(), BOB, CLASSIC, rng=rng, now=0)
    for n in range(count + 1):
        alice.initiate(BOB, bob.prekey_bundles()[0])
        assert bob.decrypt(ALICE, alice.encrypt(BOB, b"%d" % n)) == b"%d" % n
    record = bob.session_record(ALICE)
    assert record is not None and len(record.archived) == count
    return record


def test_a_record_written_from_cached_archived_sessions_has_the_bytes_of_a_fresh_copy() -> None:
    record = _record_with_archived_sessions(3)
    data = dump_state(record)
    assert dump_state(record) == data  # every archived session now from the cache
    fresh = load_state(SessionRecord, data)
    assert all(a is not b for a, b in zip(fresh.archived, record.archived, strict=True))
    assert dump_state(fresh) == data
    # The next record shares the archived sessions and changes the current one.
    current = dataclasses.replace(record.current, ad=bytes(len(record.current.ad)))
    later = SessionRecord(current, record.archived)
    assert dump_state(later) == dump_state(SessionRecord(current, fresh.archived))
    assert load_state(SessionRecord, dump_state(later)) == later


def test_the_cache_keeps_no_archived_session_alive() -> None:
    """A freed state's entry goes with it, so its keys stay in memory no longer than it does."""
    record = _record_with_archived_sessions(2)
    encode = _shared_items_encoder(tuple[SessionState, ...])  # a cache of its own
    assert isinstance(encode, SharedItemsEncoder)
    fresh = load_state(SessionRecord, dump_state(record)).archived
    first = encode(fresh)
    assert len(encode.cache) == 2 and encode(fresh) == first
    assert all(a is b for a, b in zip(encode(fresh), first, strict=True))  # reused, not re-encoded
    del fresh
    gc.collect()
    assert encode.cache == {}
    again = load_state(SessionRecord, dump_state(record)).archived
    assert encode(again) == first  # new objects, perhaps at freed ids, are encoded afresh


def test_shared_items_are_an_array_of_records() -> None:
    for hint in (
        tuple[bytes, ...],
        tuple[SessionRecord, SessionRecord],
        list[SessionRecord],
        tuple[SessionRecord, ...],  # a record without a weak-reference slot
    ):
        with pytest.raises(InvalidArgument):
            _shared_items_encoder(hint)


def test_a_refused_value_leaves_the_reused_packer_clean() -> None:
    """A state msgpack cannot pack is refused, and the next record's bytes are unchanged."""
    record = _record_with_archived_sessions(1)
    data = dump_state(record)
    too_big = record.current.ratchet._replace(ns=2**64)
    current = dataclasses.replace(record.current, ratchet=too_big)
    with pytest.raises(InvalidArgument):
        dump_state(SessionRecord(current, record.archived))
    assert dump_state(record) == data
