"""Stateful property test of the Double Ratchet (spec/ratchet.md §7, §8).

Hypothesis interleaves sends in both directions, deliveries in any order,
drops, replays and tampering. Properties:

* every untampered message delivered once decrypts to what was sent;
* a replayed message raises DUPLICATE_MESSAGE, a message whose tag lost a
  bit raises AUTH_FAILED, any other bit flip raises some ProtocolError and
  never decrypts;
* after every failure the receiver's state equals (==) the state before.

The limits are raised so that no message legitimately expires: what happens
at the limits is pinned by tests/test_ratchet.py and the vectors.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from protocol.errors import AuthFailed, DuplicateMessage, ProtocolError
from protocol.profiles import PROFILES, Profile, with_limits
from protocol.ratchet import RatchetState, ratchet_decrypt, ratchet_encrypt
from tests.ratchet_pair import Pair, make_pair

SIDES = ("initiator", "responder")


def _roomy(profile: Profile) -> Profile:
    return with_limits(profile, max_stored_skipped=10_000, max_receiving_chains=1_000)


class RatchetMachine(RuleBasedStateMachine):
    """Two parties and the network between them."""

    def __init__(self) -> None:
        super().__init__()
        self.pair: Pair
        self.in_flight: dict[str, list[tuple[bytes, bytes]]] = {side: [] for side in SIDES}
        self.delivered: dict[str, list[bytes]] = {side: [] for side in SIDES}

    @initialize(
        profile=st.sampled_from(list(PROFILES.values())), seed=st.binary(min_size=1, max_size=8)
    )
    def start(self, profile: Profile, seed: bytes) -> None:
        self.pair = make_pair(_roomy(profile), seed)

    def _state(self, side: str) -> RatchetState:
        state: RatchetState = getattr(self.pair, side)
        return state

    def _receiver(self, sender: str) -> str:
        return SIDES[1 - SIDES.index(sender)]

    def _fails(self, side: str, message: bytes) -> ProtocolError:
        before = self._state(side)
        snapshot = before._replace()
        with pytest.raises(ProtocolError) as failure:
            ratchet_decrypt(before, message, self.pair.ad, self.pair.rng)
        assert before == snapshot
        return failure.value

    @rule(sender=st.sampled_from(SIDES), plaintext=st.binary(max_size=40))
    def send(self, sender: str, plaintext: bytes) -> None:
        state = self._state(sender)
        if state.cks is None:  # the spec's responder sends after it first receives
            return
        state, message = ratchet_encrypt(state, plaintext, self.pair.ad, self.pair.rng)
        setattr(self.pair, sender, state)
        self.in_flight[self._receiver(sender)].append((message, plaintext))

    @rule(receiver=st.sampled_from(SIDES), pick=st.integers(min_value=0))
    def deliver(self, receiver: str, pick: int) -> None:
        pending = self.in_flight[receiver]
        if not pending:
            return
        message, plaintext = pending.pop(pick % len(pending))
        state, received = ratchet_decrypt(
            self._state(receiver), message, self.pair.ad, self.pair.rng
        )
        assert received == plaintext
        setattr(self.pair, receiver, state)
        self.delivered[receiver].append(message)

    @rule(receiver=st.sampled_from(SIDES), pick=st.integers(min_value=0))
    def drop(self, receiver: str, pick: int) -> None:
        pending = self.in_flight[receiver]
        if pending:
            pending.pop(pick % len(pending))

    @rule(receiver=st.sampled_from(SIDES), pick=st.integers(min_value=0))
    def replay(self, receiver: str, pick: int) -> None:
        done = self.delivered[receiver]
        if done:
            assert isinstance(self._fails(receiver, done[pick % len(done)]), DuplicateMessage)

    @precondition(lambda self: any(self.in_flight.values()))
    @rule(receiver=st.sampled_from(SIDES), pick=st.integers(min_value=0), bit=st.integers(0, 7))
    def tamper_tag(self, receiver: str, pick: int, bit: int) -> None:
        pending = self.in_flight[receiver]
        if pending:
            message = pending[pick % len(pending)][0]
            tampered = message[:-1] + bytes([message[-1] ^ (1 << bit)])
            assert isinstance(self._fails(receiver, tampered), AuthFailed)

    @precondition(lambda self: any(self.in_flight.values()))
    @rule(
        receiver=st.sampled_from(SIDES),
        pick=st.integers(min_value=0),
        position=st.integers(min_value=0),
        bit=st.integers(0, 7),
    )
    def tamper_anywhere(self, receiver: str, pick: int, position: int, bit: int) -> None:
        pending = self.in_flight[receiver]
        if pending:
            message = pending[pick % len(pending)][0]
            offset = position % len(message)
            tampered = (
                message[:offset] + bytes([message[offset] ^ (1 << bit)]) + message[offset + 1 :]
            )
            self._fails(receiver, tampered)

    @invariant()
    def counters_fit_the_wire(self) -> None:
        if hasattr(self, "pair"):
            for side in SIDES:
                assert 0 <= self._state(side).ns < 2**32


RatchetMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_ratchet_state_machine = RatchetMachine.TestCase
