"""A valid but malicious peer cannot grow its session record without bound (spec/session.md §7).

Each archived session used to keep everything its profile lets a session
keep (2,000 skipped message keys and 2,000 evicted ids), so a peer that
filled a session's skipped keys and then started a new one, four times,
left a record of five full sessions: about 1.1 MB, loaded and stored on
every one of its messages. Now the archived sessions together hold at most
``max_archived_keys`` entries (the profile's session policy), and the oldest
are dropped first.
"""

from __future__ import annotations

import dataclasses

from protocol.profiles import CLASSIC, SIGNAL_V4
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.session.records import SessionRecord, SessionState
from protocol.store import MemoryStore, dump_state

PEER, US = Address("mallory", 1), Address("bob", 1)
MAX_ARCHIVED_SESSIONS = CLASSIC.policy.max_archived_sessions
MAX_ARCHIVED_KEYS = CLASSIC.policy.max_archived_keys


def _full_session(tag: int) -> SessionState:
    """A real responder session whose ratchet holds as many skipped keys as its profile allows.

    The skipped keys stand in for those a peer makes the receiver store by
    skipping message numbers; their values do not matter for the size.
    """
    peer = SessionManager.create(MemoryStore(), PEER, CLASSIC, now=0, rng=DrbgRandom(b"m%d" % tag))
    us = SessionManager.create(MemoryStore(), US, CLASSIC, now=0, rng=DrbgRandom(b"b%d" % tag))
    peer.initiate(US, us.prekey_bundles()[-1])
    us.decrypt(PEER, peer.encrypt(US, b"hi"))
    record = us.session_record(PEER)
    assert record is not None
    state = record.current
    skipped = {(bytes([tag]) * 32, n): bytes(32) for n in range(CLASSIC.chains.max_stored_skipped)}
    return dataclasses.replace(state, ratchet=state.ratchet._replace(mkskipped=skipped))


def test_a_peer_starting_session_after_session_leaves_a_record_of_bounded_size() -> None:
    full = [_full_session(tag) for tag in range(MAX_ARCHIVED_SESSIONS + 2)]
    record = SessionRecord(full[0])
    for state in full[1:]:
        record = record.replaced_by(state)
    archived_keys = sum(len(s.ratchet.mkskipped) + len(s.ratchet.evicted) for s in record.archived)
    assert archived_keys <= MAX_ARCHIVED_KEYS
    assert len(dump_state(record)) <= 2 * len(dump_state(SessionRecord(full[-1])))
    # What stays is the newest: the session just replaced.
    assert record.current is full[-1] and record.archived == (full[-2],)


def test_small_archived_sessions_are_all_kept() -> None:
    small = [_full_session(tag) for tag in range(MAX_ARCHIVED_SESSIONS + 1)]
    small = [dataclasses.replace(s, ratchet=s.ratchet._replace(mkskipped={})) for s in small]
    record = SessionRecord(small[0])
    for state in small[1:]:
        record = record.replaced_by(state)
    assert record.archived == tuple(reversed(small[:-1]))


def _spqr_full_session(tag: int) -> SessionState:
    """A real signal-v4 session whose SPQR chain holds 2,000 skipped keys (max_ooo_keys)."""
    rng = DrbgRandom(b"v4 %d" % tag)
    peer = SessionManager.create(MemoryStore(), PEER, SIGNAL_V4, now=0, rng=rng)
    us = SessionManager.create(MemoryStore(), US, SIGNAL_V4, now=0, rng=rng)
    peer.initiate(US, us.prekey_bundles()[-1])
    us.decrypt(PEER, peer.encrypt(US, b"hi"))
    record = us.session_record(PEER)
    assert record is not None and record.current.pq is not None
    state, pq = record.current, record.current.pq
    link = pq.chain.links[-1]
    skipped = tuple((n, bytes(32)) for n in range(pq.chain.params.max_ooo_keys))
    links = (
        *pq.chain.links[:-1],
        dataclasses.replace(link, recv=dataclasses.replace(link.recv, skipped=skipped)),
    )
    chain = dataclasses.replace(pq.chain, links=links)
    return dataclasses.replace(state, pq=dataclasses.replace(pq, chain=chain))


def test_spqr_skipped_keys_count_towards_the_archived_bound_in_signal_v4() -> None:
    """signal-v4 keeps 40 archived sessions; SPQR's skipped keys are bounded with the rest."""
    full = [_spqr_full_session(tag) for tag in range(3)]
    record = SessionRecord(full[0])
    for state in full[1:]:
        record = record.replaced_by(state)
    assert SIGNAL_V4.policy.max_archived_keys == MAX_ARCHIVED_KEYS
    # Each holds the whole bound: only the newest archived one fits.
    assert record.current is full[-1] and len(record.archived) == 1
    assert record.archived[0].pq == full[-2].pq
