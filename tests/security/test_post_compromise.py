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
"""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from security_harness import (
    INITIATOR,
    Pair,
    converse,
    message_keys_in,
    opened_by_any,
    peer_of,
    restore,
    session_state,
)

from protocol.errors import ProtocolError
from protocol.profiles import PROFILES
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager

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
    pair = Pair.create(PROFILES[profile], seed)
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
    profile=st.sampled_from(sorted(PROFILES)),
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
