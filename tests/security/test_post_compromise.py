"""Post-compromise security: the ratchet heals after one round trip, spec/security.md §3.6.

A thief copies a device's whole store at time t and then watches every
message the relay carries, evolving its copy passively: it decrypts what it
can with the stolen store (a working ``SessionManager``, with randomness of
its own) and keeps the result. Messages to the victim stay readable exactly
until the victim has sent under a ratchet key drawn after t and the peer has
answered: a message is readable if and only if the peer sent it while the
ratchet key it knew for the victim was one the thief stole. The victim's own
messages are readable only on the sending chain it had at t (tried with
every message key that chain yields).

In signal-v4 the stolen store holds SPQR's state too, so against that
thief the Double Ratchet heals as in the other profiles. SPQR's own claim
is against a quantum thief (A4), who also computes every X25519 secret
after t and so follows the Double Ratchet throughout: what it lacks is only
the ML-KEM-768 randomness the devices draw after t. Each SPQR epoch's
secret comes from a key pair sampled for that epoch and an encapsulation to
it (ML-KEM Braid, Revision 1), and the chain folds each epoch secret into
all later ones (add-epoch). So the thief, evolving its copy of the victim's
SPQR state passively with randomness of its own, has a message's SPQR key
(and, with the Double Ratchet's, the message) if and only if the key's
epoch is at most the last one whose ML-KEM shared secret the stolen state
fixed: the epoch in progress at t if the victim had sampled its key pair
or encapsulated by then, else the one before. After the next SPQR epoch
that completes, nothing is readable.
"""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from security_harness import (
    INITIATOR,
    Pair,
    SpqrRecorder,
    converse,
    message_keys_in,
    opened_by_any,
    peer_of,
    restore,
    session_state,
)

from protocol import wire
from protocol.errors import ProtocolError
from protocol.profiles import ALL_PROFILES, SIGNAL_V4
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.spqr import states
from protocol.spqr.chain import chain_add_epoch, chain_next
from protocol.spqr.messages import Message, decode_message
from protocol.spqr.pq_ratchet import PqRatchet
from protocol.spqr.states import BraidState, StateName

SETTINGS: Final = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class Thief:
    """A copy of the victim's store, evolved by every message it manages to decrypt."""

    def __init__(self, pair: Pair, victim: Address) -> None:
        self.victim = victim
        self.manager = SessionManager(restore(pair.records(victim)), DrbgRandom(b"thief's own"))

    def reads(self, data: bytes, plaintext: bytes) -> bool:
        try:
            return self.manager.decrypt(peer_of(self.victim), data) == plaintext
        except ProtocolError:
            return False


def ratchet_keys(pair: Pair, victim: Address) -> tuple[bytes, bytes | None]:
    """The victim's own ratchet public key, and the one its peer knows for it."""
    mine = session_state(pair.stores[victim], peer_of(victim)).current.ratchet.dhs.public
    theirs = session_state(pair.stores[peer_of(victim)], victim).current.ratchet.dhr
    return mine, theirs


def heal_after_theft(
    profile: str,
    seed: bytes,
    before: list[int],
    after: list[int],
    victim_is_initiator: bool,
    victim_first: bool,
) -> None:
    pair = Pair.create(ALL_PROFILES[profile], seed)
    rng = DrbgRandom(seed)
    converse(pair, [1, 1, *before], rng)
    victim = INITIATOR if victim_is_initiator else peer_of(INITIATOR)
    thief = Thief(pair, victim)
    stolen_keys = set(ratchet_keys(pair, victim))
    stolen_chain = set(message_keys_in(pair.records(victim)))
    sender = victim if victim_first else peer_of(victim)
    seen: set[bool] = set()
    for count in after:
        for _ in range(count):
            plaintext = rng.draw("plaintext", 24)
            mine, theirs = ratchet_keys(pair, victim)
            data = pair.send(sender, plaintext)
            if sender == victim:
                if pair.profile.cipher.name == "AES-256-GCM":
                    assert opened_by_any(stolen_chain, pair, data) == (mine in stolen_keys)
            else:
                readable = theirs in stolen_keys
                assert thief.reads(data, plaintext) == readable
                seen.add(readable)
            assert pair.receive(peer_of(sender), data) == plaintext
        sender = peer_of(sender)
    event(f"thief reads: {sorted(seen)}")


conversations = given(
    profile=st.sampled_from(sorted(ALL_PROFILES)),
    seed=st.binary(min_size=4, max_size=4),
    before=st.lists(st.integers(1, 3), max_size=4),
    after=st.lists(st.integers(1, 3), min_size=1, max_size=6),
    victim_is_initiator=st.booleans(),
    victim_first=st.booleans(),
)


@SETTINGS
@example("pq-default", b"pcs!", [1, 1], [2, 2, 2, 2], True, True)
@example("classic", b"pcs?", [], [1, 3, 1, 2], False, False)
@conversations
def test_a_passive_thief_reads_nothing_after_one_round_trip_following_the_theft(
    profile: str,
    seed: bytes,
    before: list[int],
    after: list[int],
    victim_is_initiator: bool,
    victim_first: bool,
) -> None:
    heal_after_theft(profile, seed, before, after, victim_is_initiator, victim_first)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@conversations
def test_a_passive_thief_reads_nothing_after_healing_over_many_conversations(
    profile: str,
    seed: bytes,
    before: list[int],
    after: list[int],
    victim_is_initiator: bool,
    victim_first: bool,
) -> None:
    heal_after_theft(profile, seed, before, after, victim_is_initiator, victim_first)


# --- signal-v4: a quantum thief against SPQR ------------------------------------------------

SECRET_FIXED: Final = frozenset(
    {
        StateName.KEYS_SAMPLED,
        StateName.HEADER_SENT,
        StateName.CT1_RECEIVED,
        StateName.EK_SENT_CT1_RECEIVED,
        StateName.CT1_SAMPLED,
        StateName.EK_RECEIVED_CT1_SAMPLED,
        StateName.CT1_ACKNOWLEDGED,
        StateName.CT2_SAMPLED,
    }
)
"""Braid states (spec/spqr.md §10) in which the epoch in progress has its ML-KEM-768 shared
secret fixed by the state: its decapsulation key sampled (sending the key) or its
encapsulation done (sending the ciphertext)."""
QUANTUM_SETTINGS: Final = settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def last_stolen_epoch(braid: BraidState) -> int:
    """The last SPQR epoch whose secret a thief of ``braid`` computes (see the module docstring)."""
    return braid.epoch if braid.name in SECRET_FIXED else braid.epoch - 1


class QuantumThief:
    """The victim's SPQR state at t, in a thief's hands: its Braid copy takes each field 5
    of the peer the relay carries and sends in the victim's place with the thief's own
    randomness, adding each epoch secret it arrives at to its chain; a message's key is
    then looked up by the (epoch, index) its field 5 names, in the chain of that epoch
    and direction the thief holds (it keeps every epoch, as a device would not)."""

    def __init__(self, stolen: PqRatchet) -> None:
        self.braid, self.chain = stolen.braid, stolen.chain
        self.rng = DrbgRandom(b"the quantum thief's own")

    def follow(self, victims: bool, message: Message) -> None:
        try:
            if victims:
                braid, payload, secret = states.send(self.braid, self.rng)
                epoch = payload.epoch
            else:
                epoch = self.braid.epoch  # the epoch a secret received completes
                payload = states.Payload(message.epoch, message.type, message.chunk)
                braid, secret = states.recv(self.braid, payload)
        except ProtocolError:
            return  # its copy no longer follows: refused, as a device would refuse it
        self.braid = braid
        if secret is not None:
            self.chain = chain_add_epoch(self.chain, epoch, secret)

    def spqr_key(self, victims: bool, message: Message) -> bytes | None:
        """The thief's SPQR key for a message of the victim (``victims``) or of the peer."""
        self.follow(victims, message)
        back = self.chain.current_epoch - (message.epoch - 1)
        if not 0 <= back < len(self.chain.links):
            return None
        link = self.chain.links[len(self.chain.links) - 1 - back]
        direction = link.send if victims else link.recv
        skipped = dict(direction.skipped)
        if message.index in skipped:
            return skipped[message.index]
        if message.index <= direction.ctr or not direction.next:
            return None
        next_key, key = direction.next, b""
        for ctr in range(direction.ctr + 1, message.index + 1):
            next_key, key = chain_next(next_key, ctr)
        return key


def field_5(data: bytes) -> bytes:
    """A signal-v4 message's field 5 (pq_ratchet), which the relay sees in the clear."""
    if wire.is_signal_prekey(data):
        data = wire.decode_prekey_message(SIGNAL_V4, data).message
    return wire.decode_message(SIGNAL_V4, data).header.pq_ratchet


def quantum_thief_locked_out(
    seed: bytes, before: int, after: list[int], victim_is_initiator: bool
) -> None:
    pair, recorder, rng = Pair.create(SIGNAL_V4, seed), SpqrRecorder(), DrbgRandom(seed)
    victim = INITIATOR if victim_is_initiator else peer_of(INITIATOR)
    with recorder.recording():
        converse(pair, [1] * (2 + before), rng)
        stolen = session_state(pair.stores[victim], peer_of(victim)).current.pq
        assert stolen is not None
        thief, last = QuantumThief(stolen), last_stolen_epoch(stolen.braid)
        sender = INITIATOR if before % 2 == 0 else peer_of(INITIATOR)
        epochs: set[int] = set()
        for number in range(MAX_BURSTS):
            for _ in range(after[number % len(after)]):
                plaintext = rng.draw("plaintext", 24)
                data = pair.send(sender, plaintext)
                message = decode_message(field_5(data))
                epoch = message.epoch - 1  # the epoch of its SPQR keys
                guess = thief.spqr_key(sender == victim, message)
                assert (guess == recorder.keys[-1]) == (epoch <= last), (epoch, last)
                epochs.add(epoch)
                assert pair.receive(peer_of(sender), data) == plaintext
            sender = peer_of(sender)
            if max(epochs) > last + 1:
                break
        assert max(epochs) > last + 1, "no SPQR epoch completed after the theft"
    event(f"SPQR epochs the thief read after t: {sorted(e for e in epochs if e <= last)}")


MAX_BURSTS: Final = 2000
quantum_conversations = given(
    seed=st.binary(min_size=4, max_size=4),
    before=st.integers(0, 200),
    after=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    victim_is_initiator=st.booleans(),
)


@QUANTUM_SETTINGS
@example(b"pq!!", 0, [1], True)
@example(b"pq??", 60, [2, 1], False)
@quantum_conversations
def test_a_quantum_thief_without_spqrs_later_randomness_is_locked_out_after_the_next_epoch(
    seed: bytes, before: int, after: list[int], victim_is_initiator: bool
) -> None:
    quantum_thief_locked_out(seed, before, after, victim_is_initiator)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@quantum_conversations
def test_a_quantum_thief_is_locked_out_after_the_next_spqr_epoch_over_many_conversations(
    seed: bytes, before: int, after: list[int], victim_is_initiator: bool
) -> None:
    quantum_thief_locked_out(seed, before, after, victim_is_initiator)
