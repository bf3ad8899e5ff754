"""Forward secrecy against a thief of a device's whole state: spec/security.md §3.5.

The relay captures everything; at time t it obtains a device's complete
state (every record of its store, or its call key states). Messages the
device had received before t then stay undecryptable with that state, both
through the session API and by trying every message key the state yields;
messages still in flight at t are readable (they must be, for the device to
read them), which shows the stolen state is complete. Frames: exactly the
frames under a (generation, ratchet step) whose key the state still holds
open with it; all earlier frames stay closed (FS granularity of RFC 9605
§5.1 sender keys is the ratchet step and the generation, spec/media.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from relay_parties import peer_address, run_bounded
from relay_run import Run
from security_harness import (
    INITIATOR,
    Pair,
    Secrets,
    Snapshot,
    message_keys_in,
    opened_by_any,
    peer_of,
    restore,
    snapshot,
)

from protocol.audit.observe import observe
from protocol.errors import ProtocolError
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.media.limits import DEFAULT_R, MediaLimits
from protocol.media.sender import KeyDelivery
from protocol.media.sframe import (
    DEFAULT_SUITE,
    MIN_BASE_KEY_LEN,
    FrameKey,
    decode_header,
    derive_frame_key,
    open_frame,
    ratchet_base_key,
)
from protocol.profiles import ALL_PROFILES
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager

SETTINGS: Final = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CHAIN_LOOKAHEAD: Final = 16


@dataclass(frozen=True)
class Captured:
    """One message as the relay carried it, and whether it was delivered before the theft."""

    sender: Address
    data: bytes
    plaintext: bytes
    delivered: bool


def run_conversation(pair: Pair, bursts: list[int], held: int, rng: DrbgRandom) -> list[Captured]:
    """Bursts alternating from the initiator; the last ``held`` messages stay in flight."""
    captured, sender = [], INITIATOR
    for number, count in enumerate(bursts):
        for index in range(count):
            plaintext = rng.draw("plaintext", 24)
            data = pair.send(sender, plaintext)
            in_flight = number == len(bursts) - 1 and index >= count - held
            if not in_flight:
                assert pair.receive(peer_of(sender), data) == plaintext
            captured.append(Captured(sender, data, plaintext, not in_flight))
        sender = peer_of(sender)
    return captured


def thief_decrypts(stolen: Snapshot, message: Captured, victim: Address) -> bool:
    """Whether the stolen store, used as the victim's device, opens the message."""
    manager = SessionManager(restore(stolen), DrbgRandom(b"thief"))
    try:
        return manager.decrypt(peer_of(victim), message.data) == message.plaintext
    except ProtocolError:
        return False


def steal_after_conversation(
    profile: str, seed: bytes, bursts: list[int], held: int, victim_is_initiator: bool
) -> None:
    pair = Pair.create(ALL_PROFILES[profile], seed)
    captured = run_conversation(pair, bursts, min(held, bursts[-1]), DrbgRandom(seed))
    victim = INITIATOR if victim_is_initiator else peer_of(INITIATOR)
    stolen = pair.records(victim)
    for message in captured:
        if message.sender != victim:
            assert thief_decrypts(stolen, message, victim) == (not message.delivered)
    if pair.profile.cipher.name != "AES-256-GCM":
        return
    keys = set(message_keys_in(stolen))
    for message in captured:
        if message.delivered or message.sender == victim:
            assert not opened_by_any(keys, pair, message.data)


conversations = given(
    profile=st.sampled_from(sorted(ALL_PROFILES)),
    seed=st.binary(min_size=4, max_size=4),
    bursts=st.lists(st.integers(1, 3), min_size=1, max_size=6),
    held=st.integers(0, 3),
    victim_is_initiator=st.booleans(),
)


@SETTINGS
@conversations
def test_state_stolen_at_t_opens_no_message_received_before_t(
    profile: str, seed: bytes, bursts: list[int], held: int, victim_is_initiator: bool
) -> None:
    steal_after_conversation(profile, seed, bursts, held, victim_is_initiator)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@conversations
def test_state_stolen_at_t_opens_no_earlier_message_over_many_conversations(
    profile: str, seed: bytes, bursts: list[int], held: int, victim_is_initiator: bool
) -> None:
    steal_after_conversation(profile, seed, bursts, held, victim_is_initiator)


# --- Frames -------------------------------------------------------------------------------

CALL_ID: Final = bytes(16)
SENDER, VICTIM = "sender.1", "victim.1"
FRAME_LIMITS: Final = MediaLimits(rotation_delay=1.0, grace_period=2.0, max_retained_steps=3)
LOOKAHEAD_STEPS: Final = 8
Event = str  # "frame", "join", "leave" or "wait"


class CallRun:
    """One sender and the victim in a call that others join and leave; frames are captured."""

    def __init__(self, seed: bytes) -> None:
        self.now = 0.0
        self.rng = DrbgRandom(seed)
        self.others = ["other.0"]
        clock = lambda: self.now  # noqa: E731
        self.receiver = CallReceiver(
            CALL_ID, VICTIM, [SENDER, *self.others], clock=clock, limits=FRAME_LIMITS
        )
        self.sender, deliveries = CallSender.start(
            CALL_ID, SENDER, [VICTIM, *self.others], clock=clock, rng=self.rng, limits=FRAME_LIMITS
        )
        self.install(deliveries)
        self.frames: list[bytes] = []
        self.sent_at: list[float] = []
        self.joined = 1

    def install(self, deliveries: list[KeyDelivery]) -> None:
        for device, message in deliveries:
            if device == VICTIM:
                self.receiver.install(SENDER, message)

    def step(self, event: Event) -> None:
        if event == "frame":
            frame = self.sender.encrypt(self.rng.draw("frame", 40))
            assert self.receiver.receive(SENDER, frame) is not None
            self.frames.append(frame)
            self.sent_at.append(self.now)
        elif event == "join":
            newcomer = f"other.{self.joined}"
            self.joined += 1
            self.others.append(newcomer)
            self.receiver.add_members([newcomer])
            self.install(self.sender.join([newcomer], self.rng))
        elif event == "leave" and self.others and self.sender.state.pending is None:
            # One leave per rotation delay: a burst of leaves installs more
            # generations than MediaLimits.max_generations before any is used.
            leaver = self.others.pop(0)
            self.receiver.remove_members([leaver])
            self.install(self.sender.leave([leaver], self.rng))
        elif event == "wait":
            self.now += 1.5


def thief_frame_keys(run: CallRun, kids: set[int]) -> list[FrameKey]:
    """Every frame key for ``kids`` a thief of both call states can try.

    It does not need to know which bytes are what: each secret value of the
    states (deny by default, as in the leak scan) is tried as a base key, and
    every ratchet step ahead of it (RFC 9605 §5.1), and each (key, salt) pair
    the states hold is tried under every KID.
    """
    secrets = Secrets()
    secrets.add_state(run.receiver.state)
    secrets.add_state(run.sender.state)
    values = [v for v in secrets.items() if len(v) >= MIN_BASE_KEY_LEN]
    keys = [
        FrameKey(DEFAULT_SUITE, kid, k.key, k.salt) for k in held_frame_keys(run) for kid in kids
    ]
    for base_key in values:
        for _ in range(LOOKAHEAD_STEPS):
            keys += [derive_frame_key(DEFAULT_SUITE, base_key, kid) for kid in kids]
            base_key = ratchet_base_key(DEFAULT_SUITE, base_key)
    return keys


def held_frame_keys(run: CallRun) -> list[FrameKey]:
    keys = [run.sender.state.current.frame_key]
    for generation in run.receiver.state.senders.get(SENDER, ()):
        keys += [step.frame_key for step in generation.steps]
    return keys


def opens_frame(keys: list[FrameKey], frame: bytes) -> bool:
    kid = decode_header(frame)[0]
    for key in (k for k in keys if k.kid == kid):
        try:
            open_frame(key, frame, b"")
        except ProtocolError:
            continue
        return True
    return False


def closed_by_the_rules(run: CallRun, frame: bytes) -> bool:
    """What spec/media.md §6 says no one holds at t any more: a generation whose grace
    period after a newer one ended, or a step at least max_retained_steps behind the
    newest seen, and for the sender anything before its current (generation, step)."""
    g, s = split(decode_header(frame)[0])
    seen = [(split(decode_header(f)[0]), at) for f, at in zip(run.frames, run.sent_at, strict=True)]
    retired = any(g2 > g and at + FRAME_LIMITS.grace_period <= run.now for (g2, _), at in seen)
    newest = max(s2 for (g2, s2), _ in seen if g2 == g)
    stale = newest - s >= FRAME_LIMITS.max_retained_steps
    current = run.sender.state.current
    return (retired or stale) and (g, s) < (current.generation, current.step)


def split(kid: int) -> tuple[int, int]:
    return kid >> DEFAULT_R, kid & ((1 << DEFAULT_R) - 1)


@SETTINGS
@example(seed=b"\x00", events=["frame", "join", "frame", "join", "frame", "join", "join", "frame"])
@example(seed=b"\x01", events=["frame", "leave", "wait", "frame", "wait", "wait", "frame"])
@given(
    seed=st.binary(min_size=1, max_size=4),
    events=st.lists(st.sampled_from(["frame", "join", "leave", "wait"]), max_size=24),
)
def test_call_state_stolen_at_t_opens_no_frame_under_a_retired_generation_or_step(
    seed: bytes, events: list[Event]
) -> None:
    run = CallRun(seed)
    for event in [*events, "frame"]:
        run.step(event)
    keys = thief_frame_keys(run, {decode_header(frame)[0] for frame in run.frames})
    for frame in run.frames:
        if closed_by_the_rules(run, frame):
            assert not opens_frame(keys, frame)
    assert opens_frame(keys, run.frames[-1])  # the thief's keys are real: the current one opens


# --- Through a real relay -------------------------------------------------------------------

RELAY_SCRIPT: Final = [
    (0, 1, 40, True),
    (1, 0, 40, True),
    (2, 3, 40, False),
    (0, 2, 40, True),
    (3, 2, 40, True),
    (3, 0, 40, True),
]


@pytest.mark.parametrize("profile", sorted(ALL_PROFILES))
def test_stores_stolen_after_a_relay_run_open_no_message_of_the_relays_capture(
    profile: str, tmp_path: Path
) -> None:
    """The relay's own record of the run (its capture, replayed by ``observe``) is what
    it would keep for later; with every device's store stolen once all was delivered,
    not one captured message opens, MediaKey messages included."""
    run = Run(ALL_PROFILES[profile], b"stolen at the end " + profile.encode())
    run_bounded(run.run(tmp_path, RELAY_SCRIPT))
    captured = observe(tmp_path / "relay.capture").messages
    assert len(captured) > len(RELAY_SCRIPT)  # the script's texts and the call's MediaKeys
    for party in run.parties:
        assert party.device.failures == 0
        stolen = snapshot(party.store)
        for message in (m for m in captured if m.recipient == party.address):
            thief = SessionManager(restore(stolen), DrbgRandom(b"thief"))
            with pytest.raises(ProtocolError):
                thief.decrypt(peer_address(message.sender), message.body)
