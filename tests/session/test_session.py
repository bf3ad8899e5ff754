"""Sessions between devices: set-up, prekeys, identities, archives, bad input (spec/session.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import wire
from protocol.errors import (
    AuthFailed,
    DuplicateMessage,
    InvalidArgument,
    MalformedMessage,
    NoSession,
    ProtocolError,
    UnknownPrekey,
    UnsupportedVersion,
    UntrustedIdentity,
)
from protocol.fingerprint import fingerprint, safety_number
from protocol.primitives import KEM_CIPHERTEXT_LEN
from protocol.profiles import (
    ALL_PROFILES,
    CLASSIC,
    PQ_DEFAULT,
    PROFILES,
    SIGNAL_V3,
    SIGNAL_V4,
    Profile,
)
from protocol.protobuf import write_fields
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.session.prekey_lifecycle import SIGNED_PREKEY_GRACE_SECONDS
from protocol.session.records import (
    IDENTITIES,
    KEM_PREKEYS,
    ONE_TIME_PREKEYS,
    SESSIONS,
    SIGNED_PREKEYS,
)
from protocol.store import MemoryStore, SqliteStore, Store

ALICE = Address("alice", 1)
ALICE_2 = Address("alice", 2)
BOB = Address("bob", 1)
TABLES = ("device", SIGNED_PREKEYS, ONE_TIME_PREKEYS, KEM_PREKEYS, SESSIONS, IDENTITIES)
PROFILE_NAMES = sorted(ALL_PROFILES)


def device(
    address: Address, profile: Profile, store: Store | None = None, opks: int = 2
) -> SessionManager:
    rng = DrbgRandom(f"test {address.user} {address.device} {profile.name}".encode())
    manager = SessionManager.create(store or MemoryStore(), address, profile, now=0, rng=rng)
    manager.generate_one_time_prekeys(opks)
    if profile.kem is not None:
        manager.generate_kem_prekeys(1)
    return manager


def snapshot(manager: SessionManager) -> dict[str, dict[str, bytes | None]]:
    store = manager._store
    return {t: {k: store.get(t, k) for k in store.keys(t)} for t in TABLES}


def pair(profile: Profile) -> tuple[SessionManager, SessionManager]:
    alice, bob = device(ALICE, profile), device(BOB, profile)
    alice.initiate(BOB, bob.prekey_bundles()[0])
    return alice, bob


@pytest.fixture(params=PROFILE_NAMES)
def profile(request: pytest.FixtureRequest) -> Profile:
    return ALL_PROFILES[request.param]


def is_prekey(profile: Profile, data: bytes) -> bool:
    try:
        wire.decode_prekey_message(profile, data)
    except ProtocolError:
        return False
    return True


def test_initial_message_rides_on_every_message_until_the_peer_answers(profile: Profile) -> None:
    alice, bob = pair(profile)
    first, second = alice.encrypt(BOB, b"one"), alice.encrypt(BOB, b"two")
    assert is_prekey(profile, first) and is_prekey(profile, second)
    assert bob.decrypt(ALICE, second) == b"two"
    assert bob.decrypt(ALICE, first) == b"one"
    assert not is_prekey(profile, bob.encrypt(ALICE, b"noted"))
    assert alice.decrypt(BOB, bob.encrypt(ALICE, b"answer")) == b"answer"
    after = alice.encrypt(BOB, b"three")
    assert not is_prekey(profile, after)
    assert bob.decrypt(ALICE, after) == b"three"


def test_one_time_prekeys_are_consumed_only_when_the_initial_message_authenticates(
    profile: Profile,
) -> None:
    alice, bob = pair(profile)
    bundle = bob.prekey_bundles()[0]
    initial = bytearray(alice.encrypt(BOB, b"hello"))
    inner = wire.decode_prekey_message(profile, bytes(initial)).message
    ciphertext_byte = bytes(initial).index(inner) + len(inner) - 12
    initial[ciphertext_byte] ^= 0x01
    before = snapshot(bob)
    with pytest.raises(AuthFailed):
        bob.decrypt(ALICE, bytes(initial))
    assert snapshot(bob) == before
    initial[ciphertext_byte] ^= 0x01
    assert bob.decrypt(ALICE, bytes(initial)) == b"hello"
    assert bob.prekey_bundles()[0] != bundle
    assert bundle.one_time_prekey is not None
    assert str(bundle.one_time_prekey.prekey_id) not in bob._store.keys(ONE_TIME_PREKEYS)
    carol = device(Address("carol", 1), profile)
    carol.initiate(BOB, bundle)  # a server that hands the same one-time prekey out twice
    with pytest.raises(UnknownPrekey):
        bob.decrypt(Address("carol", 1), carol.encrypt(BOB, b"late"))


def test_pq_default_uses_one_time_kem_prekeys_then_the_last_resort_one() -> None:
    bob = device(BOB, PQ_DEFAULT, opks=2)
    bundles = bob.prekey_bundles()
    kinds = [
        bob._store.get(KEM_PREKEYS, str(b.kem_prekey.prekey_id)) for b in bundles if b.kem_prekey
    ]
    assert len(bundles) == 3 and all(kinds)
    assert [b.one_time_prekey is None for b in bundles] == [False, False, True]
    last_resort_id = bundles[-1].kem_prekey.prekey_id if bundles[-1].kem_prekey else None
    for index, bundle in enumerate(bundles):
        sender = Address("sender", index)
        initiator = device(sender, PQ_DEFAULT)
        initiator.initiate(BOB, bundle)
        assert bob.decrypt(sender, initiator.encrypt(BOB, b"hi")) == b"hi"
    remaining = bob._store.keys(KEM_PREKEYS)
    assert remaining == [str(last_resort_id)]


def test_a_changed_identity_key_must_be_acknowledged_and_changes_nothing_before(
    profile: Profile,
) -> None:
    alice, bob = pair(profile)
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"hi")) == b"hi"
    reinstalled = device(ALICE, profile, opks=1)
    reinstalled_rng_seed = device(Address("alice", 9), profile)  # a different identity key
    assert reinstalled.identity_key != reinstalled_rng_seed.identity_key
    impostor = reinstalled_rng_seed
    impostor.initiate(BOB, bob.prekey_bundles()[0])
    message = impostor.encrypt(BOB, b"it is me")
    before = snapshot(bob)
    with pytest.raises(UntrustedIdentity) as raised:
        bob.decrypt(ALICE, message)
    assert snapshot(bob) == before
    expected = safety_number("bob", bob.identity_key, "alice", impostor.identity_key)
    assert raised.value.safety_number == expected
    assert raised.value.safety_number == impostor.safety_number(BOB, bob.identity_key)
    bob.trust_identity(ALICE, impostor.identity_key)
    assert bob.decrypt(ALICE, message) == b"it is me"


def test_scannable_fingerprints_of_a_pair_verify_each_other_and_not_an_impostor() -> None:
    alice, bob = pair(PQ_DEFAULT)
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"hi")) == b"hi"  # both now trust a key
    shown = alice.scannable_fingerprint(BOB).serialize()  # the QR code alice shows
    assert len(shown) == 74
    assert alice.scannable_fingerprint(BOB) == (
        fingerprint(1, "alice", alice.identity_key, "bob", bob.identity_key).scannable
    )
    assert bob.scannable_fingerprint(ALICE).compare(shown)
    impostor = device(Address("alice", 9), PQ_DEFAULT)
    assert not bob.scannable_fingerprint(ALICE, impostor.identity_key).compare(shown)
    with pytest.raises(UnsupportedVersion):  # another version: update, not an attack
        bob.scannable_fingerprint(ALICE, version=2).compare(shown)
    with pytest.raises(NoSession):
        alice.scannable_fingerprint(Address("carol", 1))


def _with_kem_part(profile: Profile, data: bytes) -> bytes:
    """``data``, an X3DH first message, with a PQXDH KEM part added in the profile's framing:
    libsignal v4's Kyber fields 7-8 in a v3 PreKeySignalMessage, ``kem`` and ``kct`` in msgpack."""
    kem_ciphertext = bytes(KEM_CIPHERTEXT_LEN["Kyber1024"])
    if profile.framing.name == "signal-v3":
        return data + write_fields({7: 2, 8: kem_ciphertext})
    message = wire.decode_prekey_message(profile, data)
    initial = dataclasses.replace(message.initial, kem_prekey_id=2, kem_ciphertext=kem_ciphertext)
    return wire.encode_msgpack_prekey(dataclasses.replace(message, initial=initial))


@pytest.mark.parametrize("profile", [CLASSIC, SIGNAL_V3], ids=lambda p: p.name)
def test_x3dh_profiles_refuse_a_first_message_carrying_a_kem_part_and_change_nothing(
    profile: Profile,
) -> None:
    # The other direction of X3dhInitialMessage and MissingKemPart (spec/pqxdh.md §7.4-§7.5):
    # no PQXDH part is silently dropped by a profile without a KEM.
    alice, bob = pair(profile)
    first = alice.encrypt(BOB, b"hi")
    before = snapshot(bob)
    with pytest.raises(MalformedMessage):
        bob.decrypt(ALICE, _with_kem_part(profile, first))
    assert snapshot(bob) == before
    assert bob.decrypt(ALICE, first) == b"hi"


def test_an_x3dh_profile_refuses_a_pqxdh_bundle_and_changes_nothing() -> None:
    alice, bob = device(ALICE, CLASSIC), device(BOB, PQ_DEFAULT)
    before = snapshot(alice)
    with pytest.raises(MalformedMessage):
        alice.initiate(BOB, bob.prekey_bundles()[0])
    assert snapshot(alice) == before


def test_initiating_towards_a_changed_identity_raises_before_any_draw(profile: Profile) -> None:
    alice, _ = pair(profile)
    other_bob = device(Address("bob", 7), profile)
    before = snapshot(alice)
    with pytest.raises(UntrustedIdentity):
        alice.initiate(BOB, other_bob.prekey_bundles()[0])
    assert snapshot(alice) == before


def test_a_new_initial_message_replaces_the_session_and_the_old_one_still_receives(
    profile: Profile,
) -> None:
    alice, bob = pair(profile)
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"first")) == b"first"
    assert alice.decrypt(BOB, bob.encrypt(ALICE, b"ack")) == b"ack"
    late = alice.encrypt(BOB, b"late on the old session")
    alice.initiate(BOB, bob.prekey_bundles()[0])
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"new session")) == b"new session"
    assert bob.decrypt(ALICE, late) == b"late on the old session"
    assert alice.decrypt(BOB, bob.encrypt(ALICE, b"reply")) == b"reply"


def test_simultaneous_initiation_converges(profile: Profile) -> None:
    alice, bob = device(ALICE, profile), device(BOB, profile)
    alice.initiate(BOB, bob.prekey_bundles()[0])
    bob.initiate(ALICE, alice.prekey_bundles()[0])
    from_alice, from_bob = alice.encrypt(BOB, b"a"), bob.encrypt(ALICE, b"b")
    assert bob.decrypt(ALICE, from_alice) == b"a"
    assert alice.decrypt(BOB, from_bob) == b"b"
    for _ in range(2):
        assert bob.decrypt(ALICE, alice.encrypt(BOB, b"ping")) == b"ping"
        assert alice.decrypt(BOB, bob.encrypt(ALICE, b"pong")) == b"pong"


def test_several_devices_of_one_user_have_separate_sessions(profile: Profile) -> None:
    bob = device(BOB, profile, opks=2)
    phone, laptop = device(ALICE, profile), device(ALICE_2, profile)
    bundles = bob.prekey_bundles()
    phone.initiate(BOB, bundles[0])
    laptop.initiate(BOB, bundles[1])
    assert bob.decrypt(ALICE, phone.encrypt(BOB, b"from phone")) == b"from phone"
    assert bob.decrypt(ALICE_2, laptop.encrypt(BOB, b"from laptop")) == b"from laptop"
    assert bob.peers("alice") == [ALICE, ALICE_2]
    to_laptop = bob.encrypt(ALICE_2, b"to laptop")
    with pytest.raises(ProtocolError):
        phone.decrypt(BOB, to_laptop)
    assert laptop.decrypt(BOB, to_laptop) == b"to laptop"


def test_a_normal_message_without_a_session_is_no_session(profile: Profile) -> None:
    alice, bob = pair(profile)
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"x")) == b"x"
    reply = bob.encrypt(ALICE, b"y")
    stranger = device(Address("carol", 1), profile)
    with pytest.raises(NoSession):
        stranger.decrypt(BOB, reply)
    with pytest.raises(NoSession):
        stranger.encrypt(BOB, b"z")


def test_a_replayed_message_is_a_duplicate_and_changes_nothing(profile: Profile) -> None:
    alice, bob = pair(profile)
    message = alice.encrypt(BOB, b"once")
    assert bob.decrypt(ALICE, message) == b"once"
    before = snapshot(bob)
    with pytest.raises(DuplicateMessage):
        bob.decrypt(ALICE, message)
    assert snapshot(bob) == before


def test_signed_prekey_rotation_keeps_the_previous_one_for_the_grace_period(
    profile: Profile,
) -> None:
    bob = device(BOB, profile, opks=3)
    old_bundles = bob.prekey_bundles()
    bob.rotate_signed_prekey(now=100)
    assert bob.prekey_bundles()[0].signed_prekey_id != old_bundles[0].signed_prekey_id
    alice = device(ALICE, profile)
    alice.initiate(BOB, old_bundles[0])
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"in grace")) == b"in grace"
    bob.expire_signed_prekeys(now=100 + SIGNED_PREKEY_GRACE_SECONDS - 1)
    assert str(old_bundles[0].signed_prekey_id) in bob._store.keys(SIGNED_PREKEYS)
    bob.expire_signed_prekeys(now=100 + SIGNED_PREKEY_GRACE_SECONDS)
    carol = device(Address("carol", 1), profile)
    carol.initiate(BOB, old_bundles[1])
    with pytest.raises(UnknownPrekey):
        bob.decrypt(Address("carol", 1), carol.encrypt(BOB, b"too late"))


def test_a_second_rotation_deletes_the_signed_prekey_before_the_previous(profile: Profile) -> None:
    bob = device(BOB, profile)
    first = bob.prekey_bundles()[0].signed_prekey_id
    second = bob.rotate_signed_prekey(now=1)
    third = bob.rotate_signed_prekey(now=2)
    assert bob._store.keys(SIGNED_PREKEYS) == sorted([str(second), str(third)])
    assert str(first) not in bob._store.keys(SIGNED_PREKEYS)


def test_a_failing_deliver_callback_rolls_the_decrypt_back(profile: Profile) -> None:
    alice, bob = pair(profile)
    message = alice.encrypt(BOB, b"keep me")
    before = snapshot(bob)

    def crash(txn: object, plaintext: bytes) -> None:
        raise RuntimeError("application failed to store the message")

    with pytest.raises(RuntimeError):
        bob.decrypt(ALICE, message, deliver=crash)
    assert snapshot(bob) == before
    stored: list[bytes] = []
    bob.decrypt(ALICE, message, deliver=lambda txn, plaintext: stored.append(plaintext))
    assert stored == [b"keep me"]


def test_sessions_continue_after_reopening_a_sqlite_store(profile: Profile, tmp_path: Path) -> None:
    path = tmp_path / "bob.db"
    store = SqliteStore(path)
    bob = device(BOB, profile, store=store)
    alice = device(ALICE, profile)
    alice.initiate(BOB, bob.prekey_bundles()[0])
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"before")) == b"before"
    store.close()
    reopened_store = SqliteStore(path)
    reopened = SessionManager(reopened_store, DrbgRandom(b"reopened"))
    assert reopened.decrypt(ALICE, alice.encrypt(BOB, b"after")) == b"after"
    assert alice.decrypt(BOB, reopened.encrypt(ALICE, b"reply")) == b"reply"
    reopened_store.close()


def test_reprs_never_show_private_keys(profile: Profile) -> None:
    alice, bob = pair(profile)
    bob.decrypt(ALICE, alice.encrypt(BOB, b"x"))
    from protocol.session.records import DeviceRecord, SessionRecord
    from protocol.store import load_state

    device_record = load_state(DeviceRecord, bob._store.get("device", "self") or b"")
    session = load_state(SessionRecord, bob._store.get(SESSIONS, ALICE.key) or b"")
    secrets = [
        device_record.identity.private,
        session.current.ratchet.rk,
        session.current.ratchet.dhs.private,
    ]
    text = repr(bob) + repr(device_record) + repr(session) + repr(bob.session(ALICE))
    assert all(secret.hex() not in text for secret in secrets)


# --- Bad input ------------------------------------------------------------------------------


def bad_inputs(profile: Profile, good: bytes) -> list[tuple[bytes, type[ProtocolError]]]:
    return [
        (b"", MalformedMessage),
        (good[:1], MalformedMessage),
        (good[:-1], MalformedMessage),
        (good[: len(good) // 2], MalformedMessage),
        (bytes([good[0] ^ 0x7F]) + good[1:], UnsupportedVersion),
        (good + b"\x00", MalformedMessage),
        (good + bytes(profile.max_message_size), MalformedMessage),
        (bytes(64), UnsupportedVersion),
    ]


def test_garbage_truncated_oversized_and_wrong_version_messages_get_their_codes(
    profile: Profile,
) -> None:
    alice, bob = pair(profile)
    bob.decrypt(ALICE, alice.encrypt(BOB, b"set up"))
    alice.decrypt(BOB, bob.encrypt(ALICE, b"answered"))
    good = alice.encrypt(BOB, b"normal message")
    before = snapshot(bob)
    for data, error in bad_inputs(profile, good):
        with pytest.raises(error):
            bob.decrypt(ALICE, data)
        assert snapshot(bob) == before
    assert bob.decrypt(ALICE, good) == b"normal message"


def test_a_message_under_the_wrong_keys_fails_authentication(profile: Profile) -> None:
    alice, bob = pair(profile)
    bob.decrypt(ALICE, alice.encrypt(BOB, b"set up"))
    alice.decrypt(BOB, bob.encrypt(ALICE, b"answered"))
    carol = device(Address("carol", 1), profile)
    carol.initiate(BOB, bob.prekey_bundles()[0])
    bob.decrypt(Address("carol", 1), carol.encrypt(BOB, b"hi"))
    carol.decrypt(BOB, bob.encrypt(Address("carol", 1), b"hello carol"))
    from_carol = carol.encrypt(BOB, b"sent to bob by carol")
    before = snapshot(bob)
    with pytest.raises(AuthFailed):
        bob.decrypt(ALICE, from_carol)  # carol's message presented as alice's
    assert snapshot(bob) == before


_SESSIONS_FOR_FUZZ = {name: pair(PROFILES[name]) for name in (CLASSIC.name, SIGNAL_V3.name)}


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(sorted(_SESSIONS_FOR_FUZZ)), data=st.binary(max_size=400))
def test_decrypt_of_arbitrary_bytes_raises_only_protocol_errors_and_changes_nothing(
    name: str, data: bytes
) -> None:
    bob = _SESSIONS_FOR_FUZZ[name][1]
    before = snapshot(bob)
    with pytest.raises(ProtocolError):
        bob.decrypt(ALICE, data)
    assert snapshot(bob) == before


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(0, 10_000), mask=st.integers(1, 255))
def test_any_flipped_byte_of_an_initial_message_is_refused_without_consuming_prekeys(
    offset: int, mask: int
) -> None:
    alice, bob = _SESSIONS_FOR_FUZZ[CLASSIC.name]
    message = bytearray(alice.encrypt(BOB, b"flip me"))
    message[offset % len(message)] ^= mask
    before = snapshot(bob)
    with pytest.raises(ProtocolError):
        bob.decrypt(ALICE, bytes(message))
    assert snapshot(bob) == before


def test_prekey_batches_and_addresses_refuse_bad_arguments() -> None:
    bob = device(BOB, CLASSIC)
    for count in (0, -1, 1001, True):
        with pytest.raises(InvalidArgument):
            bob.generate_one_time_prekeys(count)
    with pytest.raises(InvalidArgument):
        bob.generate_kem_prekeys(1)
    for user, device_id in (("", 1), ("bob", -1), ("bob", 2**31)):
        with pytest.raises(InvalidArgument):
            Address(user, device_id)


def test_imported_prekeys_serve_initial_messages_and_new_ids_continue_above_them() -> None:
    from protocol.prekeys import generate_one_time_prekey, generate_signed_prekey

    bob = device(BOB, CLASSIC, opks=1)
    rng = DrbgRandom(b"imported elsewhere")
    identity = bob._device.identity
    spk = generate_signed_prekey(identity, 500, rng)
    opk = generate_one_time_prekey(700, rng)
    bob.import_prekeys(spk, (opk,), now=5)
    with pytest.raises(InvalidArgument):
        bob.import_prekeys(spk, now=6)  # the id is the current one already
    bundle = next(
        b for b in bob.prekey_bundles() if b.one_time_prekey and b.one_time_prekey.prekey_id == 700
    )
    assert bundle.signed_prekey_id == 500
    alice = device(ALICE, CLASSIC)
    alice.initiate(BOB, bundle)
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"to imported keys")) == b"to imported keys"
    assert bob.generate_one_time_prekeys(1) == [701]
    assert bob.rotate_signed_prekey(now=7) == 501


def test_a_stored_session_corrupted_behind_the_managers_back_is_refused(profile: Profile) -> None:
    from protocol.errors import StateCorrupt

    alice, bob = pair(profile)
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"first")) == b"first"
    message = alice.encrypt(BOB, b"second")
    intact = bob._store.get(SESSIONS, ALICE.key)
    assert intact is not None
    corrupted = bytearray(intact)
    corrupted[len(corrupted) // 2] ^= 0x01
    with bob._store.transaction() as txn:
        txn.put(SESSIONS, ALICE.key, bytes(corrupted))
    with pytest.raises(StateCorrupt):
        bob.decrypt(ALICE, message)
    assert bob._store.get(SESSIONS, ALICE.key) == bytes(corrupted)
    with bob._store.transaction() as txn:
        txn.put(SESSIONS, ALICE.key, intact)
    assert bob.decrypt(ALICE, message) == b"second"


def _stored_after_out_of_order_delivery() -> Store:
    alice, bob = pair(SIGNAL_V3)
    sent = [alice.encrypt(BOB, b"one"), alice.encrypt(BOB, b"two")]
    bob.decrypt(ALICE, sent[1])  # leaves one skipped message key in the session
    return bob._store


_STORED = _stored_after_out_of_order_delivery()


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_any_changed_byte_of_a_stored_record_is_refused_as_corrupt_or_unsupported(
    data: st.DataObject,
) -> None:
    from protocol.errors import StateCorrupt
    from protocol.session.records import DeviceRecord, SessionRecord
    from protocol.store import load_state

    table, key, cls = data.draw(
        st.sampled_from([(SESSIONS, ALICE.key, SessionRecord), ("device", "self", DeviceRecord)])
    )
    stored = _STORED.get(table, key)
    assert stored is not None
    changed = bytearray(stored)
    changed[data.draw(st.integers(0, len(changed) - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises((StateCorrupt, UnsupportedVersion)):
        load_state(cls, bytes(changed))


def test_a_replay_of_an_archived_sessions_message_is_a_duplicate(profile: Profile) -> None:
    alice, bob = pair(profile)
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"hi")) == b"hi"
    reply = bob.encrypt(ALICE, b"old session")
    assert alice.decrypt(BOB, reply) == b"old session"
    alice.initiate(BOB, bob.prekey_bundles()[-1])  # the old session is archived
    before = snapshot(alice)
    with pytest.raises(DuplicateMessage):
        alice.decrypt(BOB, reply)
    assert snapshot(alice) == before


def test_an_old_initial_message_without_one_time_prekey_replays_once_its_session_is_gone() -> None:
    """The documented X3DH §4.2 limit (spec/session.md §4.2): kept sessions catch replays,
    a session that left the archive does not; a one-time prekey would."""
    alice, bob = device(ALICE, CLASSIC, opks=1), device(BOB, CLASSIC, opks=1)
    no_one_time = bob.prekey_bundles()[-1]
    alice.initiate(BOB, no_one_time)
    first = alice.encrypt(BOB, b"first")
    assert bob.decrypt(ALICE, first) == b"first"
    for _ in range(CLASSIC.policy.max_archived_sessions):
        alice.initiate(BOB, no_one_time)
        assert bob.decrypt(ALICE, alice.encrypt(BOB, b"again")) == b"again"
        with pytest.raises(DuplicateMessage):
            bob.decrypt(ALICE, first)
    alice.initiate(BOB, no_one_time)
    bob.decrypt(ALICE, alice.encrypt(BOB, b"pushes the first session out"))
    assert bob.decrypt(ALICE, first) == b"first"


def test_advancing_a_session_keeps_every_other_field() -> None:
    """``SessionState.advanced`` takes the new ratchet and SPQR states and carries every other
    field: each is replaced by a distinct sentinel, so a field added to ``SessionState`` and
    not carried by ``advanced`` comes back as its default and fails here."""
    import dataclasses

    from protocol.session.records import SessionState
    from protocol.triple_ratchet import TripleRatchetState

    alice, _ = pair(SIGNAL_V4)
    record = alice.session_record(BOB)
    assert record is not None
    carried = [f.name for f in dataclasses.fields(SessionState) if f.name not in ("ratchet", "pq")]
    sentinels = {name: object() for name in carried}
    state = dataclasses.replace(record.current, **sentinels)  # type: ignore[arg-type]
    triple = TripleRatchetState(record.current.ratchet, record.current.pq)
    advanced = state.advanced(triple)
    assert all(getattr(advanced, name) is sentinels[name] for name in carried)
    assert advanced.ratchet is triple.ratchet and advanced.pq is triple.pq
