"""signal-v4's session policy is libsignal's; the other profiles keep theirs (spec/session.md §7.1).

libsignal b056faa: ``consts.rs`` (``ARCHIVED_STATES_MAX_LENGTH`` = 40,
``MAX_UNACKNOWLEDGED_SESSION_AGE`` = 30 days), ``state/session.rs``
(``promote_matching_session``, ``archive_current_state_inner``),
``session.rs`` (``process_prekey_impl``), ``session_management.rs``
(``message_encrypt``'s stale-session refusal, ``try_decrypt_from_record``'s
promotion of a previous session) and ``identity_key.rs``
(``is_same_account``). Time is an injected clock; nothing sleeps.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

import msgpack
import pytest

from protocol import wire
from protocol.errors import AuthFailed, DuplicateMessage, InvalidArgument, NoSession
from protocol.profiles import ALL_PROFILES, SIGNAL_V4, Profile
from protocol.protobuf import read_fields
from protocol.randomness import DrbgRandom, ScriptedRandom
from protocol.session import Address, SessionManager
from protocol.session.records import DEVICE, SELF, SESSIONS, SessionRecord
from protocol.session.service_ids import is_same_account, parse_service_id
from protocol.spqr.chain import DEFAULT_MAX_JUMP
from protocol.store import MemoryStore, SqliteStore, Store
from protocol.store.access import put_record

ALICE: Final = Address("alice", 1)
BOB: Final = Address("bob", 1)
T0: Final = 1_750_000_000
DAY: Final = 24 * 60 * 60
ACI: Final = "9d0652a3-dcc3-4d11-975f-74d61598733f"


class Clock:
    """A clock the test sets: what ``SessionManager`` reads as now."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def device(
    address: Address,
    profile: Profile = SIGNAL_V4,
    clock: Clock | None = None,
    store: Store | None = None,
) -> SessionManager:
    rng = DrbgRandom(f"policy {address.user} {address.device} {profile.name}".encode())
    return SessionManager.create(
        store or MemoryStore(), address, profile, now=0, rng=rng, clock=clock or Clock(T0)
    )


def stored(manager: SessionManager) -> dict[tuple[str, str], bytes | None]:
    store = manager._store
    tables = ("device", "signed_prekey", "one_time_prekey", "kem_prekey", "kem_prekey_use")
    return {(t, k): store.get(t, k) for t in (*tables, SESSIONS, "identity") for k in store.keys(t)}


def record(manager: SessionManager, peer: Address) -> SessionRecord:
    found = manager.session_record(peer)
    assert found is not None
    return found


def base_key(data: bytes) -> bytes:
    return wire.decode_prekey_message(SIGNAL_V4, data).initial.ephemeral_key


# --- 40 archived sessions, promoted on a (version, base key) match ---------------------------


def test_the_policies_are_libsignals_for_signal_v4_and_unchanged_for_the_others() -> None:
    policy = SIGNAL_V4.policy
    assert policy.max_archived_sessions == 40  # ARCHIVED_STATES_MAX_LENGTH
    assert policy.max_unacknowledged_age == 60 * 60 * 24 * 30  # MAX_UNACKNOWLEDGED_SESSION_AGE
    assert policy.archive_drops_pending and policy.max_archived_keys == 2000
    for name in ("pq-default", "classic", "signal-v3"):
        other = ALL_PROFILES[name].policy
        assert other.max_archived_sessions == 4 and other.max_unacknowledged_age is None
        assert not other.archive_drops_pending


def _sessions(alice: SessionManager, bob: SessionManager, count: int) -> list[bytes]:
    """``count`` new sessions whose first messages bob decrypts; returns those first messages."""
    firsts = []
    for n in range(count):
        alice.initiate(BOB, bob.prekey_bundles()[-1])  # the last-resort Kyber prekey
        firsts.append(alice.encrypt(BOB, b"first %d" % n))
        assert bob.decrypt(ALICE, firsts[-1]) == b"first %d" % n
    return firsts


def test_a_signal_v4_record_keeps_forty_archived_sessions_and_drops_the_oldest() -> None:
    alice, bob = device(ALICE), device(BOB)
    firsts = _sessions(alice, bob, 42)
    states = record(bob, ALICE).states()
    assert len(states) == 41
    assert [s.ephemeral_key for s in states] == [base_key(f) for f in reversed(firsts[1:])]
    assert len(record(alice, BOB).archived) == 40
    # libsignal's archive forgets the initial message each archived session repeated.
    assert all(s.pending is None and s.pending_since is None for s in record(alice, BOB).archived)


def test_a_late_prekey_message_of_an_archived_session_promotes_it_to_current() -> None:
    """``promote_matching_session``: the oldest archived session (the 40th) is promoted."""
    alice, bob = device(ALICE), device(BOB)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    first = alice.encrypt(BOB, b"first")
    late = alice.encrypt(
        BOB, b"late"
    )  # unanswered session: a prekey message with the same base key
    assert wire.message_kind(SIGNAL_V4, late) == "prekey" and base_key(late) == base_key(first)
    assert bob.decrypt(ALICE, first) == b"first"
    _sessions(alice, bob, 40)
    assert record(bob, ALICE).archived[-1].ephemeral_key == base_key(first)
    newest = record(bob, ALICE).current.ephemeral_key
    kem_uses = list(bob._store.keys("kem_prekey_use"))
    assert bob.decrypt(ALICE, late) == b"late"
    after = record(bob, ALICE)
    assert after.current.ephemeral_key == base_key(first)
    assert after.archived[0].ephemeral_key == newest and len(after.archived) == 40
    assert list(bob._store.keys("kem_prekey_use")) == kem_uses  # no new handshake was made
    # Bob now sends on the promoted session; alice finds it among hers and promotes it too.
    reply = bob.encrypt(ALICE, b"on the old session")
    assert alice.decrypt(BOB, reply) == b"on the old session"
    assert record(alice, BOB).current.ephemeral_key == base_key(first)
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"and back")) == b"and back"


def test_past_forty_the_oldest_sessions_prekey_message_is_a_replay_of_a_used_handshake() -> None:
    alice, bob = device(ALICE), device(BOB)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    first, late = alice.encrypt(BOB, b"first"), alice.encrypt(BOB, b"late")
    assert bob.decrypt(ALICE, first) == b"first"
    _sessions(alice, bob, 41)
    assert base_key(first) not in [s.ephemeral_key for s in record(bob, ALICE).states()]
    before = stored(bob)
    with pytest.raises(DuplicateMessage):  # the last-resort Kyber prekey's use is remembered
        bob.decrypt(ALICE, late)
    assert stored(bob) == before


def _with_outer(data: bytes, **changes: object) -> bytes:
    message = wire.decode_prekey_message(SIGNAL_V4, data)
    initial = dataclasses.replace(
        message.initial, **{k: v for k, v in changes.items() if k != "registration_id"}
    )
    registration_id = changes.get("registration_id", message.registration_id)
    assert registration_id is None or isinstance(registration_id, int)
    changed = dataclasses.replace(message, initial=initial, registration_id=registration_id)
    return wire.encode_prekey_message(SIGNAL_V4, changed)


def _flip_inner(data: bytes) -> bytes:
    message = wire.decode_prekey_message(SIGNAL_V4, data)
    inner = bytearray(message.message)
    inner[-1] ^= 1  # the MAC
    return wire.encode_prekey_message(SIGNAL_V4, dataclasses.replace(message, message=bytes(inner)))


def test_a_forged_prekey_message_with_an_archived_base_key_changes_nothing() -> None:
    """A late prekey message with one field changed: refused, nothing promoted or used."""
    alice, bob = device(ALICE), device(BOB)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    first, late = alice.encrypt(BOB, b"first"), alice.encrypt(BOB, b"late")
    assert bob.decrypt(ALICE, first) == b"first"
    _sessions(alice, bob, 3)
    initial = wire.decode_prekey_message(SIGNAL_V4, late).initial
    forged = [
        (AuthFailed, _with_outer(late, signed_prekey_id=initial.signed_prekey_id + 1)),
        (AuthFailed, _with_outer(late, registration_id=1)),
        (AuthFailed, _with_outer(late, kem_ciphertext=bytes(len(initial.kem_ciphertext or b"")))),
        (AuthFailed, _flip_inner(late)),
    ]
    before = stored(bob)
    for error, data in forged:
        with pytest.raises(error):
            bob.decrypt(ALICE, data)
        assert stored(bob) == before
    assert bob.decrypt(ALICE, late) == b"late"  # the genuine one still promotes its session
    assert record(bob, ALICE).current.ephemeral_key == base_key(first)


def test_a_replayed_prekey_message_of_an_archived_session_is_a_duplicate_and_changes_nothing() -> (
    None
):
    alice, bob = device(ALICE), device(BOB)
    firsts = _sessions(alice, bob, 5)
    before = stored(bob)
    for first in firsts:
        with pytest.raises(DuplicateMessage):
            bob.decrypt(ALICE, first)
    assert stored(bob) == before


# --- Unacknowledged sessions expire after 30 days --------------------------------------------


def test_an_unanswered_session_sends_for_thirty_days_then_is_no_session() -> None:
    """``message_encrypt``: refused once ``timestamp + MAX_UNACKNOWLEDGED_SESSION_AGE < now``."""
    clock = Clock(T0)
    alice, bob = device(ALICE, clock=clock), device(BOB)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    assert record(alice, BOB).current.pending_since == T0
    clock.now = T0 + 30 * DAY  # at the limit itself: still sent (libsignal's comparison is strict)
    last = alice.encrypt(BOB, b"day 30")
    assert wire.message_kind(SIGNAL_V4, last) == "prekey"
    clock.now += 1
    before = stored(alice)
    with pytest.raises(NoSession) as refused:
        alice.encrypt(BOB, b"day 30 and a second")
    assert refused.value.code == "NO_SESSION"  # libsignal: SessionNotFound
    assert stored(alice) == before
    # An answer acknowledges the session: it sends again, normal messages, and keeps no time.
    assert bob.decrypt(ALICE, last) == b"day 30"
    assert alice.decrypt(BOB, bob.encrypt(ALICE, b"answer")) == b"answer"
    assert record(alice, BOB).current.pending_since is None
    clock.now = T0 + 400 * DAY
    later = alice.encrypt(BOB, b"a year on")
    assert wire.message_kind(SIGNAL_V4, later) == "message"
    assert bob.decrypt(ALICE, later) == b"a year on"


def test_a_stale_session_is_not_usable_and_a_new_one_from_a_fresh_bundle_replaces_it() -> None:
    """``has_usable_sender_chain(now, NotStale)`` tells the caller to fetch a bundle."""
    clock = Clock(T0)
    alice, bob = device(ALICE, clock=clock), device(BOB)
    assert not alice.has_usable_session(BOB)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    assert alice.has_usable_session(BOB)
    clock.now = T0 + 31 * DAY
    assert alice.has_session(BOB) and not alice.has_usable_session(BOB)
    with pytest.raises(NoSession):
        alice.encrypt(BOB, b"stale")
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    assert alice.has_usable_session(BOB)
    assert record(alice, BOB).current.pending_since == T0 + 31 * DAY
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"fresh")) == b"fresh"


def test_a_clock_that_does_not_give_whole_seconds_is_refused_before_anything_changes() -> None:
    alice, bob = device(ALICE), device(BOB)
    before = stored(alice)
    alice._clock = lambda: 1.5  # type: ignore[assignment, return-value]
    alice._rng = ScriptedRandom([])  # any draw would fail with another message
    with pytest.raises(InvalidArgument, match="clock"):
        alice.initiate(BOB, bob.prekey_bundles()[-1])
    assert stored(alice) == before


def test_a_responders_session_never_expires() -> None:
    clock = Clock(T0)
    alice, bob = device(ALICE), device(BOB, clock=clock)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"hi")) == b"hi"
    assert record(bob, ALICE).current.pending_since is None
    clock.now = T0 + 400 * DAY
    assert alice.decrypt(BOB, bob.encrypt(ALICE, b"much later")) == b"much later"


def test_the_session_time_survives_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "alice.sqlite3"
    store = SqliteStore(path)
    alice, bob = device(ALICE, store=store), device(BOB)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    store.close()
    store = SqliteStore(path)
    reopened = SessionManager(store, clock=Clock(T0 + 30 * DAY + 1))
    with pytest.raises(NoSession):
        reopened.encrypt(BOB, b"stale after a reload")
    store.close()


@pytest.mark.parametrize("name", ["pq-default", "classic", "signal-v3"])
def test_other_profiles_store_no_session_time(name: str) -> None:
    """The field is added for signal-v4 alone: no other profile's record bytes change."""
    profile = ALL_PROFILES[name]
    clock = Clock(T0)
    alice, bob = device(ALICE, profile, clock), device(BOB, profile)
    if profile.kem is not None:
        bob.generate_kem_prekeys(1)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    state = record(alice, BOB).current
    assert state.pending is not None and state.pending_since is None
    raw = alice._store.get(SESSIONS, BOB.key)
    assert raw is not None and b"pending_since" not in raw
    clock.now = T0 + 10 * 365 * DAY
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"ten years on")) == b"ten years on"


def test_a_signal_v4_unanswered_record_stores_its_time() -> None:
    alice, bob = device(ALICE), device(BOB)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    raw = alice._store.get(SESSIONS, BOB.key)
    assert raw is not None
    body = msgpack.unpackb(msgpack.unpackb(raw)[3])
    assert body["current"]["pending_since"] == T0


# --- The self-session rule --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        (ACI, ("ACI", bytes.fromhex(ACI.replace("-", "")))),
        (ACI.upper(), ("ACI", bytes.fromhex(ACI.replace("-", "")))),
        ("PNI:" + ACI, ("PNI", bytes.fromhex(ACI.replace("-", "")))),
        ("pni:" + ACI, None),
        (ACI.replace("-", ""), None),
        ("{" + ACI + "}", None),
        ("urn:uuid:" + ACI, None),
        (ACI[:-1] + "g", None),
        ("alice", None),
        ("PNI:", None),
    ],
)
def test_service_ids_parse_as_libsignal_parses_them(name: str, parsed: object) -> None:
    """``ServiceId::parse_from_service_id_string``: hyphenated UUIDs only, ``PNI:`` for a PNI."""
    assert parse_service_id(name) == parsed


def test_a_self_session_is_one_identity_key_and_one_service_id_whatever_the_devices() -> None:
    key, other_key = bytes(range(32)), bytes(32)
    same_account = [
        (Address(ACI, 1), key, Address(ACI, 2), key, True),
        (Address(ACI, 1), key, Address(ACI.upper(), 1), key, True),
        (Address(ACI, 1), key, Address(ACI, 2), other_key, False),
        (Address(ACI, 1), key, Address("PNI:" + ACI, 1), key, False),
        (Address("alice", 1), key, Address("alice", 1), key, False),  # not a service id
    ]
    for local, local_key, remote, remote_key, expected in same_account:
        assert is_same_account(local, local_key, remote, remote_key) is expected


def _linked_devices() -> tuple[SessionManager, SessionManager]:
    """Two devices of one account: one service id, one identity key, two device ids."""
    first = device(Address(ACI, 1))
    second_store = MemoryStore()
    with first._store.transaction() as source, second_store.transaction() as txn:
        for table in ("signed_prekey", "kem_prekey"):
            for key in source.keys(table):
                value = source.get(table, key)
                assert value is not None
                txn.put(table, key, value)
        put_record(txn, DEVICE, SELF, dataclasses.replace(first._device, address=Address(ACI, 2)))
    return first, SessionManager(second_store, DrbgRandom(b"second device"), clock=Clock(T0))


def test_a_session_between_linked_devices_keeps_the_double_ratchets_jump_limit_in_spqr() -> None:
    first, second = _linked_devices()
    first.initiate(second.address, second.prekey_bundles()[-1])
    assert second.decrypt(first.address, first.encrypt(second.address, b"to me")) == b"to me"
    for ours, peer in ((first, second.address), (second, first.address)):
        pq = record(ours, peer).current.pq
        assert pq is not None and pq.chain.params.max_jump == DEFAULT_MAX_JUMP


def test_a_session_with_another_account_or_a_plain_name_keeps_the_jump_limit() -> None:
    alice, bob = device(Address(ACI, 1)), device(Address(ACI.replace("9d", "8d", 1), 1))
    alice.initiate(bob.address, bob.prekey_bundles()[-1])
    pq = record(alice, bob.address).current.pq
    assert pq is not None and pq.chain.params.max_jump == 25_000
    me = device(ALICE)  # "alice" to "alice": the same key, but no service id (libsignal: not self)
    me.initiate(ALICE, me.prekey_bundles()[-1])
    pq = record(me, ALICE).current.pq
    assert pq is not None and pq.chain.params.max_jump == 25_000


# --- Registration id in PreKeySignalMessage field 5 -------------------------------------------


def test_the_prekey_message_carries_the_registration_id_in_field_5_and_the_responder_reads_it() -> (
    None
):
    alice, bob = device(ALICE), device(BOB)
    alice.initiate(BOB, bob.prekey_bundles()[-1])
    first = alice.encrypt(BOB, b"hi")
    assert read_fields(first[1:], wire.PREKEY_SIGNAL_V4_MESSAGE)[5] == alice.registration_id
    assert wire.decode_prekey_message(SIGNAL_V4, first).registration_id == alice.registration_id
    assert bob.decrypt(ALICE, first) == b"hi"
