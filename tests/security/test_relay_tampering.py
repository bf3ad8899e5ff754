"""The relay cannot forge, replay, reorder, truncate or misroute unnoticed: spec/security.md §3.3.

The relay carries every message, so it can hand a receiver any bytes in any
order under any sender address. Over generated conversations of every
profile: a changed, truncated or extended message raises a ProtocolError
and the receiver's stored records stay byte for byte what they were, after
which the genuine message still decrypts; a replay is DUPLICATE_MESSAGE;
reordered or partly dropped messages each decrypt exactly once; a message
presented under another sender's address is refused. One test does the same
through a real relay whose queue is rewritten.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_parties import Party, create_party, peer_address, run_bounded
from security_harness import INITIATOR, RESPONDER, Pair, converse, peer_of, snapshot

from protocol import wire
from protocol.client.device import TEXT
from protocol.errors import (
    AuthFailed,
    DuplicateMessage,
    NoSession,
    ProtocolError,
    UntrustedIdentity,
)
from protocol.profiles import ALL_PROFILES, SIGNAL_V4, Profile
from protocol.protobuf import read_fields, write_fields
from protocol.randomness import DrbgRandom
from protocol.relay.harness import running_relay
from protocol.relay.schema import Address as RelayAddress
from protocol.relay.schema import Envelope
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore

FORGERY_CODES: Final = frozenset(
    {
        "AUTH_FAILED",
        "MALFORMED_MESSAGE",
        "INVALID_PUBLIC_KEY",
        "UNSUPPORTED_VERSION",
        "DUPLICATE_MESSAGE",
        "TOO_MANY_SKIPPED",
        "UNKNOWN_PREKEY",
        "UNTRUSTED_IDENTITY",
        "NO_SESSION",
    }
)
"""What a changed byte may be reported as: the field it lands in decides (spec/security.md §3.3)."""
# NO_SESSION: an initial message cut below its framing reads as a normal message, and
# the receiver has no session with the sender yet.
TRUNCATION_CODES: Final = frozenset({"MALFORMED_MESSAGE", "AUTH_FAILED", "NO_SESSION"})

SETTINGS: Final = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
profiles = st.sampled_from(sorted(ALL_PROFILES))
seeds = st.binary(min_size=4, max_size=4)
answered_bursts = st.lists(st.integers(1, 3), max_size=4)
# None: the initiator has not been answered, so what the relay holds are initial messages.
bursts = st.none() | answered_bursts


class InFlight:
    """A conversation (a round trip, then ``prefix``; none at all if ``prefix`` is None),
    then ``count`` messages the relay holds back."""

    def __init__(self, profile: str, seed: bytes, prefix: list[int] | None, count: int) -> None:
        self.pair = Pair.create(ALL_PROFILES[profile], seed)
        self.rng = DrbgRandom(seed + b" plaintexts")
        converse(self.pair, [] if prefix is None else [1, 1, *prefix], self.rng)
        self.sender = INITIATOR if prefix is None or len(prefix) % 2 == 0 else RESPONDER
        self.receiver = peer_of(self.sender)
        self.messages: list[tuple[bytes, bytes]] = []
        for _ in range(count):
            plaintext = self.rng.draw("plaintext", 24)
            self.messages.append((self.pair.send(self.sender, plaintext), plaintext))

    @property
    def profile(self) -> Profile:
        return self.pair.profile

    def refused(self, data: bytes) -> ProtocolError:
        """Deliver ``data``; it must raise and leave the receiver's store as it was."""
        before = self.pair.records(self.receiver)
        with pytest.raises(ProtocolError) as refusal:
            self.pair.receive(self.receiver, data)
        assert self.pair.records(self.receiver) == before
        return refusal.value

    def deliver_all(self, order: list[int]) -> None:
        for index in order:
            data, plaintext = self.messages[index]
            assert self.pair.receive(self.receiver, data) == plaintext


def ratchet_part(profile: Profile, data: bytes) -> tuple[int, int]:
    """Where the ratchet message sits in ``data`` (all of it, unless a prekey message)."""
    try:
        inner = wire.decode_prekey_message(profile, data).message
    except ProtocolError:
        return 0, len(data)
    start = data.index(inner)
    return start, start + len(inner)


LIBSIGNAL_FRAMINGS: Final = frozenset({"signal-v3", "signal-v4"})


def tag_length(profile: Profile) -> int:
    return wire.SIGNAL_MAC_LEN if profile.framing.name in LIBSIGNAL_FRAMINGS else 16


def change_any_byte(
    profile: str, seed: bytes, prefix: list[int] | None, count: int, data: st.DataObject
) -> None:
    run = InFlight(profile, seed, prefix, count)
    index = data.draw(st.integers(0, count - 1), label="message")
    message = run.messages[index][0]
    # libsignal authenticates neither the registration id nor the framing of a
    # prekey message (its version byte's low nibble included): signal-v3 and
    # signal-v4 forgeries are confined to the ratchet message it carries.
    start, end = (
        ratchet_part(run.profile, message)
        if run.profile.framing.name in LIBSIGNAL_FRAMINGS
        else (0, len(message))
    )
    position = data.draw(st.integers(start, end - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    forged = bytearray(message)
    forged[position] ^= mask
    assert run.refused(bytes(forged)).code in FORGERY_CODES
    run.deliver_all([index])


@SETTINGS
@given(profiles, seeds, bursts, st.integers(1, 3), st.data())
def test_relay_changing_any_byte_is_refused_and_leaves_the_receiver_unchanged(
    profile: str, seed: bytes, prefix: list[int] | None, count: int, data: st.DataObject
) -> None:
    change_any_byte(profile, seed, prefix, count, data)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profiles, seeds, bursts, st.integers(1, 3), st.data())
def test_relay_changing_any_byte_is_refused_over_many_generated_messages(
    profile: str, seed: bytes, prefix: list[int] | None, count: int, data: st.DataObject
) -> None:
    change_any_byte(profile, seed, prefix, count, data)


SPQR_FIELD: Final = 5
"""libsignal v4's SignalMessage field 5, ``pq_ratchet``: the SPQR message (spec/wire.md §3.6)."""
FIELD_5_CODES: Final = frozenset({"AUTH_FAILED", "MALFORMED_MESSAGE", "UNSUPPORTED_VERSION"})
"""A changed field 5: its version byte (spec/spqr.md §12), its decoder, or the MAC over it."""


def with_field_5(message: bytes, pq_ratchet: bytes | None) -> bytes:
    """A signal-v4 message with field 5 replaced (removed if None), its MAC kept."""
    try:
        prekey: wire.PrekeyMessage | None = wire.decode_prekey_message(SIGNAL_V4, message)
    except ProtocolError:
        prekey = None
    inner = message if prekey is None else prekey.message
    mac = len(inner) - wire.SIGNAL_MAC_LEN
    fields = read_fields(inner[1:mac], wire.SIGNAL_V4_MESSAGE)
    assert inner[1:mac] == write_fields(fields)  # the re-encoding changes field 5 only
    del fields[SPQR_FIELD]
    if pq_ratchet is not None:
        fields[SPQR_FIELD] = pq_ratchet
    changed = inner[:1] + write_fields(fields) + inner[mac:]
    if prekey is None:
        return changed
    return wire.encode_prekey_message(SIGNAL_V4, dataclasses.replace(prekey, message=changed))


def spqr_field(message: bytes) -> bytes:
    inner = ratchet_part(SIGNAL_V4, message)
    body = message[inner[0] + 1 : inner[1] - wire.SIGNAL_MAC_LEN]
    value = read_fields(body, wire.SIGNAL_V4_MESSAGE)[SPQR_FIELD]
    assert isinstance(value, bytes)
    return value


@SETTINGS
@given(seeds, bursts, st.integers(1, 3), st.data())
def test_relay_changing_or_stripping_spqr_field_5_is_refused_and_the_genuine_message_decrypts(
    seed: bytes, prefix: list[int] | None, count: int, data: st.DataObject
) -> None:
    """signal-v4 only: field 5 (pq_ratchet) with one byte changed, or removed, is
    refused with the receiver unchanged; the genuine messages then decrypt, each once."""
    run = InFlight(SIGNAL_V4.name, seed, prefix, count)
    index = data.draw(st.integers(0, count - 1), label="message")
    message = run.messages[index][0]
    pq = spqr_field(message)
    position = data.draw(st.integers(0, len(pq) - 1), label="position in field 5")
    changed = bytearray(pq)
    changed[position] ^= data.draw(st.integers(1, 255), label="mask")
    assert run.refused(with_field_5(message, bytes(changed))).code in FIELD_5_CODES
    assert run.refused(with_field_5(message, None)).code == "MALFORMED_MESSAGE"
    run.deliver_all(list(range(count)))
    converse(run.pair, [1, 1], run.rng)


@SETTINGS
@given(profiles, seeds, bursts, st.data())
def test_relay_changing_the_authentication_tag_is_auth_failed(
    profile: str, seed: bytes, prefix: list[int] | None, data: st.DataObject
) -> None:
    run = InFlight(profile, seed, prefix, 1)
    message = run.messages[0][0]
    _, end = ratchet_part(run.profile, message)
    position = data.draw(st.integers(end - tag_length(run.profile), end - 1), label="position")
    forged = bytearray(message)
    forged[position] ^= data.draw(st.integers(1, 255), label="mask")
    assert isinstance(run.refused(bytes(forged)), AuthFailed)
    run.deliver_all([0])


@SETTINGS
@given(profiles, seeds, bursts, st.data())
def test_relay_truncating_or_extending_a_message_is_refused_and_leaves_the_receiver_unchanged(
    profile: str, seed: bytes, prefix: list[int] | None, data: st.DataObject
) -> None:
    run = InFlight(profile, seed, prefix, 1)
    message = run.messages[0][0]
    cut = data.draw(st.integers(0, len(message) - 1), label="kept bytes")
    extra = data.draw(st.binary(min_size=1, max_size=32), label="appended")
    assert run.refused(message[:cut]).code in TRUNCATION_CODES
    assert run.refused(message + extra).code in TRUNCATION_CODES
    run.deliver_all([0])


@SETTINGS
@given(profiles, seeds, bursts, st.integers(1, 4), st.data())
def test_relay_replaying_a_delivered_message_is_duplicate_and_leaves_the_receiver_unchanged(
    profile: str, seed: bytes, prefix: list[int] | None, count: int, data: st.DataObject
) -> None:
    run = InFlight(profile, seed, prefix, count)
    run.deliver_all(list(range(count)))
    replayed = data.draw(st.integers(0, count - 1), label="replayed")
    assert isinstance(run.refused(run.messages[replayed][0]), DuplicateMessage)


@SETTINGS
@given(profiles, seeds, bursts, st.integers(2, 5), st.randoms(use_true_random=False))
def test_relay_reordering_messages_changes_nothing_each_decrypts_once(
    profile: str, seed: bytes, prefix: list[int] | None, count: int, shuffler: random.Random
) -> None:
    run = InFlight(profile, seed, prefix, count)
    order = list(range(count))
    shuffler.shuffle(order)
    run.deliver_all(order)
    for data, _ in run.messages:
        assert isinstance(run.refused(data), DuplicateMessage)


@SETTINGS
@given(profiles, seeds, bursts, st.integers(2, 5), st.data())
def test_relay_dropping_messages_leaves_the_rest_and_the_conversation_intact(
    profile: str, seed: bytes, prefix: list[int] | None, count: int, data: st.DataObject
) -> None:
    run = InFlight(profile, seed, prefix, count)
    dropped = data.draw(st.sets(st.integers(0, count - 1), min_size=1, max_size=count - 1))
    run.deliver_all([i for i in range(count) if i not in dropped])
    converse(run.pair, [1, 1] if run.receiver == INITIATOR else [0, 1, 1], run.rng)
    run.deliver_all(sorted(dropped))  # late, but once
    for index in dropped:
        assert isinstance(run.refused(run.messages[index][0]), DuplicateMessage)


def third_device(pair: Pair, seed: bytes) -> tuple[Address, SessionManager]:
    """carol.1, with a session to the responder that the responder has answered."""
    carol = Address("carol", 1)
    manager = SessionManager.create(MemoryStore(), carol, pair.profile, now=0, rng=DrbgRandom(seed))
    responder = pair.managers[RESPONDER]
    responder.generate_one_time_prekeys(1)
    if pair.profile.kem is not None:
        responder.generate_kem_prekeys(1)
    manager.initiate(RESPONDER, responder.prekey_bundles()[-2])  # the new one-time prekeys
    responder.decrypt(carol, manager.encrypt(RESPONDER, b"hello from carol"))
    return carol, manager


@SETTINGS
@given(profiles, seeds, answered_bursts)
def test_relay_presenting_a_message_under_another_senders_address_is_refused(
    profile: str, seed: bytes, prefix: list[int]
) -> None:
    pair = Pair.create(ALL_PROFILES[profile], seed)
    initial = pair.send(INITIATOR, b"first message, a prekey message")
    carol, _ = third_device(pair, seed + b" carol")
    responder = pair.managers[RESPONDER]
    before = pair.records(RESPONDER)
    with pytest.raises(UntrustedIdentity):  # carol's identity key is trusted, alice's is not it
        responder.decrypt(carol, initial)
    assert pair.records(RESPONDER) == before
    pair.receive(RESPONDER, initial)
    converse(pair, [0, *prefix, 1], DrbgRandom(seed))
    later = pair.send(INITIATOR, b"a normal message")
    before = pair.records(RESPONDER)
    with pytest.raises(AuthFailed):  # carol's session keys do not open it
        responder.decrypt(carol, later)
    with pytest.raises(NoSession):  # nor can it start a session with a device never met
        responder.decrypt(Address("dave", 1), later)
    assert pair.records(RESPONDER) == before
    assert pair.receive(RESPONDER, later) == b"a normal message"


def test_relay_misattributing_a_first_contact_is_visible_only_in_the_safety_number() -> None:
    """Not protected (spec/security.md §4): on first contact the address is the relay's word.

    The initial message is genuine, so it decrypts under whatever address the
    relay names; the identity key it carries is alice's, and the safety number
    bob sees for "carol" is not the one carol sees for bob.
    """
    pair = Pair.create(ALL_PROFILES["pq-default"], b"tofu")
    initial = pair.send(INITIATOR, b"hello bob")
    carol = Address("carol", 1)
    responder = pair.managers[RESPONDER]
    assert responder.decrypt(carol, initial) == b"hello bob"
    real_carol = SessionManager.create(
        MemoryStore(), carol, pair.profile, now=0, rng=DrbgRandom(b"c")
    )
    shown_to_bob = responder.safety_number(carol)
    shown_to_carol = real_carol.safety_number(RESPONDER, responder.identity_key)
    assert shown_to_bob != shown_to_carol
    assert responder.trusted_identity(carol) == pair.managers[INITIATOR].identity_key


def test_a_relay_rewriting_its_queue_has_each_forgery_and_replay_refused(tmp_path: Path) -> None:
    """Through a real relay: the queue is rewritten with a forged copy, a replay and a
    re-delivery; the receiver refuses each with its code, unchanged, then takes the genuine one."""
    outcomes: list[bytes | str] = []

    async def scenario() -> None:
        async with running_relay(tmp_path / "relay.db") as relay:
            alice, bob = [
                await create_party(relay.port, a, ALL_PROFILES["pq-default"], b"queue")
                for a in (RelayAddress("alice", 1), RelayAddress("bob", 1))
            ]
            try:
                await alice.device.send(bob.address, TEXT, b"first")
                (first,) = relay.store.fetch(bob.address, 10)
                assert [r.body for r in await bob.device.receive()] == [b"first"]
                await alice.device.send(bob.address, TEXT, b"second")
                (second,) = relay.store.fetch(bob.address, 10)
                relay.store.ack(bob.address, [second.id])
                forged = second.body[:-1] + bytes([second.body[-1] ^ 1])
                for mid, body in ((b"f", forged), (b"r", first.body), (second.mid, second.body)):
                    relay.store.enqueue(bob.address, alice.address, mid.ljust(16, b"-"), body, 0)
                for envelope in await bob.device.client.fetch():
                    outcomes.append(open_unchanged(bob, envelope))
                    await bob.device.client.ack([envelope.id])
                relay.store.enqueue(bob.address, alice.address, second.mid, second.body, 0)
                before = snapshot(bob.store)
                assert await bob.device.receive() == []
                assert bob.device.failures == 1 and snapshot(bob.store) == before
            finally:
                await alice.device.close()
                await bob.device.close()

    run_bounded(scenario())
    assert outcomes == ["AUTH_FAILED", "DUPLICATE_MESSAGE", bytes([TEXT]) + b"second"]


def open_unchanged(party: Party, envelope: Envelope) -> bytes | str:
    """The plaintext, or the refusal's code after checking the store did not change."""
    before = snapshot(party.store)
    try:
        return party.device.manager.decrypt(peer_address(envelope.sender), envelope.body)
    except ProtocolError as refusal:
        assert snapshot(party.store) == before
        return refusal.code


@pytest.mark.parametrize("profile", sorted(LIBSIGNAL_FRAMINGS))
def test_libsignal_framings_leave_the_registration_id_of_an_initial_message_unauthenticated(
    profile: str,
) -> None:
    """Not protected (spec/security.md §4), as in libsignal: the relay may change the
    registration id of a signal-v3 (and signal-v4) initial message; the message still
    decrypts, and the genuine copy is then refused because it differs from the
    session's handshake."""
    pair = Pair.create(ALL_PROFILES[profile], b"registration")
    data = pair.send(INITIATOR, b"first")
    message = wire.decode_prekey_message(pair.profile, data)
    assert message.registration_id is not None
    changed = dataclasses.replace(message, registration_id=message.registration_id % 16000 + 1)
    assert pair.receive(RESPONDER, wire.encode_prekey_message(pair.profile, changed)) == b"first"
    before = pair.records(RESPONDER)
    with pytest.raises(AuthFailed):
        pair.receive(RESPONDER, data)
    assert pair.records(RESPONDER) == before
