"""Session-level state machine: any interleaving keeps every promise of spec/session.md §5.

Three devices (two of one user, one of another), messages sent both ways
and then delivered in any order, dropped, duplicated or tampered with,
sessions re-initiated while older messages are in flight, and stores
serialized and reloaded at any step. Every untampered message
delivered once decrypts to what was sent; a duplicate is DUPLICATE_MESSAGE;
a tampered one raises a ProtocolError; after any failure every stored record
is byte-for-byte what it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocol import wire
from protocol.errors import DuplicateMessage, ProtocolError
from protocol.profiles import CLASSIC, PQ_DEFAULT, SIGNAL_V3, Profile
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.session.records import SESSIONS, SessionRecord
from protocol.store import MemoryStore, dump_state, load_state

PHONE, LAPTOP, BOB = Address("alice", 1), Address("alice", 2), Address("bob", 1)
LINKS = [(PHONE, BOB), (BOB, PHONE), (LAPTOP, BOB), (BOB, LAPTOP)]
TABLES = ("device", "signed_prekey", "one_time_prekey", "kem_prekey", SESSIONS, "identity")


@dataclass(frozen=True)
class InFlight:
    sender: Address
    receiver: Address
    data: bytes
    plaintext: bytes


def copy_store(store: MemoryStore) -> MemoryStore:
    """Every record through its bytes, as a restart from disk would see it."""
    fresh = MemoryStore()
    with fresh.transaction() as txn:
        for table in TABLES:
            for key in store.keys(table):
                value = store.get(table, key)
                assert value is not None
                txn.put(table, key, value)
    return fresh


def tamper_range(profile: Profile, data: bytes) -> tuple[int, int]:
    """The bytes a tamperer may flip: all of them, except the fields libsignal leaves
    unauthenticated in a signal-v3 prekey message (spec/interop-libsignal.md §3)."""
    if profile.framing.name == "signal-v3":
        try:
            inner = wire.decode_prekey_message(profile, data).message
        except ProtocolError:
            return 0, len(data)
        start = data.index(inner)
        return start, start + len(inner)
    return 0, len(data)


class SessionMachine(RuleBasedStateMachine):
    profile: Profile = CLASSIC

    def __init__(self) -> None:
        super().__init__()
        self.stores: dict[Address, MemoryStore] = {}
        self.managers: dict[Address, SessionManager] = {}
        for address in (PHONE, LAPTOP, BOB):
            store = MemoryStore()
            rng = DrbgRandom(f"machine {address.key} {self.profile.name}".encode())
            SessionManager.create(store, address, self.profile, now=0, rng=rng)
            self.stores[address] = store
            self.managers[address] = SessionManager(store, rng)
        self.managers[BOB].generate_one_time_prekeys(2)
        if self.profile.kem is not None:
            self.managers[BOB].generate_kem_prekeys(1)
        bundles = self.managers[BOB].prekey_bundles()
        self.managers[PHONE].initiate(BOB, bundles[0])
        self.managers[LAPTOP].initiate(BOB, bundles[1])
        # The bundle served once the one-time keys are gone (last-resort KEM key only).
        self.spare_bundle = bundles[-1]
        assert self.spare_bundle.one_time_prekey is None
        self.initiations = {PHONE: 1, LAPTOP: 1}
        self.in_flight: list[InFlight] = []
        self.delivered: list[InFlight] = []
        self.counter = 0
        self.reloads = 0

    def snapshot(self, address: Address) -> dict[str, dict[str, bytes | None]]:
        store = self.stores[address]
        return {t: {k: store.get(t, k) for k in store.keys(t)} for t in TABLES}

    @rule(link=st.sampled_from(LINKS))
    def send(self, link: tuple[Address, Address]) -> None:
        sender, receiver = link
        if not self.managers[sender].has_session(receiver):
            return  # the responder sends only after its first receive
        self.counter += 1
        plaintext = f"{sender.key}->{receiver.key} #{self.counter}".encode()
        data = self.managers[sender].encrypt(receiver, plaintext)
        self.in_flight.append(InFlight(sender, receiver, data, plaintext))

    @rule(initiator=st.sampled_from([PHONE, LAPTOP]))
    def reinitiate(self, initiator: Address) -> None:
        """A new session replaces the current one; in-flight messages of old ones still arrive.

        At most the policy's max_archived_sessions + 1 sessions per pair, so none is dropped.
        """
        if self.initiations[initiator] > self.profile.policy.max_archived_sessions:
            return
        self.initiations[initiator] += 1
        self.managers[initiator].initiate(BOB, self.spare_bundle)

    @precondition(lambda self: self.in_flight)
    @rule(pick=st.integers(0, 10_000))
    def deliver(self, pick: int) -> None:
        message = self.in_flight.pop(pick % len(self.in_flight))
        received = self.managers[message.receiver].decrypt(message.sender, message.data)
        assert received == message.plaintext
        self.delivered.append(message)

    @precondition(lambda self: self.in_flight)
    @rule(pick=st.integers(0, 10_000))
    def drop(self, pick: int) -> None:
        self.in_flight.pop(pick % len(self.in_flight))

    @precondition(lambda self: self.delivered)
    @rule(pick=st.integers(0, 10_000))
    def duplicate(self, pick: int) -> None:
        message = self.delivered[pick % len(self.delivered)]
        before = self.snapshot(message.receiver)
        try:
            self.managers[message.receiver].decrypt(message.sender, message.data)
        except DuplicateMessage:
            pass
        else:
            raise AssertionError("a duplicate decrypted")
        assert self.snapshot(message.receiver) == before

    @precondition(lambda self: self.in_flight)
    @rule(pick=st.integers(0, 10_000), offset=st.integers(0, 10_000), mask=st.integers(1, 255))
    def tamper(self, pick: int, offset: int, mask: int) -> None:
        message = self.in_flight[pick % len(self.in_flight)]
        start, end = tamper_range(self.profile, message.data)
        position = start + offset % (end - start)
        data = bytearray(message.data)
        data[position] ^= mask
        before = self.snapshot(message.receiver)
        try:
            self.managers[message.receiver].decrypt(message.sender, bytes(data))
        except ProtocolError:
            pass
        else:
            raise AssertionError("a tampered message decrypted")
        assert self.snapshot(message.receiver) == before

    @rule(address=st.sampled_from([PHONE, LAPTOP, BOB]))
    def reload(self, address: Address) -> None:
        store = copy_store(self.stores[address])
        for key in store.keys(SESSIONS):
            data = store.get(SESSIONS, key)
            assert data is not None and dump_state(load_state(SessionRecord, data)) == data
        self.reloads += 1  # a fresh stream each time: a real device never repeats its draws
        rng = DrbgRandom(f"reloaded {address.key} {self.reloads}".encode())
        self.stores[address] = store
        self.managers[address] = SessionManager(store, rng)

    @invariant()
    def every_device_knows_its_peers(self) -> None:
        assert self.managers[PHONE].peers() == [BOB]
        assert self.managers[LAPTOP].peers() == [BOB]


def machine_for(profile: Profile, examples: int) -> type[SessionMachine]:
    machine = type(f"SessionMachine_{profile.name}", (SessionMachine,), {"profile": profile})
    machine.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    return machine


TestClassicSessions = machine_for(CLASSIC, 40).TestCase
TestSignalV3Sessions = machine_for(SIGNAL_V3, 40).TestCase
TestPqDefaultSessions = machine_for(PQ_DEFAULT, 20).TestCase
