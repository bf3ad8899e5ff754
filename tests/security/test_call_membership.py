"""Call membership is enforced by keys, and the relay cannot relabel frames: spec/security.md §3.7.

A group call of generated joins, leaves, frames and waits (RFC 9605 §5.1
sender keys, spec/media.md §5-§6). A removed member keeps everything it ever
held, every MediaKey it received and its receiver state, and is handed
every later frame by a colluding relay: no frame under a generation created
after its removal opens, however far it ratchets its keys. A joiner cannot
open frames sent before its join. A frame that the relay forwards under
another sender's name, changes, truncates or replays is refused with its
code and changes nothing; the genuine frame then decrypts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protocol.errors import ProtocolError
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.media.limits import MediaLimits
from protocol.media.messages import MediaKey, decode_media_key
from protocol.media.sender import KeyDelivery
from protocol.media.sframe import (
    decode_header,
    derive_frame_key,
    open_frame,
    ratchet_base_key,
)
from protocol.randomness import DrbgRandom

CALL_ID: Final = b"call security 01"
LIMITS: Final = MediaLimits(rotation_delay=1.0, grace_period=2.0, max_retained_steps=3)
# Ratchet steps opens_with tries past each key: more than the joins a generated run
# can make (events has at most 16), since members derive each join's step themselves.
LOOKAHEAD_STEPS: Final = 20
SETTINGS: Final = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@dataclass(frozen=True)
class Frame:
    sender: str
    data: bytes


@dataclass
class Member:
    receiver: CallReceiver
    sender: CallSender | None = None
    keys: list[MediaKey] = field(default_factory=list)  # every MediaKey it ever received


class Group:
    """Devices with a sender and a receiver each; MediaKeys handed over as sessions would."""

    def __init__(self, size: int, seed: bytes) -> None:
        self.now = 0.0
        self.rng = DrbgRandom(seed)
        self.members: dict[str, Member] = {}
        self.former: dict[str, tuple[Member, int]] = {}  # removed: (all it held, frames before)
        self.joined: dict[str, int] = {}  # joiner: frames sent before it joined
        self.frames: list[Frame] = []
        names = [f"device.{n}" for n in range(size)]
        for name in names:
            self.members[name] = self.new_member(name, names)
        for name in names:
            self.start_sending(name, names)

    def clock(self) -> float:
        return self.now

    def new_member(self, name: str, names: list[str]) -> Member:
        return Member(CallReceiver(CALL_ID, name, names, clock=self.clock, limits=LIMITS))

    def start_sending(self, name: str, names: list[str]) -> None:
        sender, deliveries = CallSender.start(
            CALL_ID, name, names, clock=self.clock, rng=self.rng, limits=LIMITS
        )
        self.members[name].sender = sender
        self.deliver(name, deliveries)

    def sender(self, name: str) -> CallSender:
        sender = self.members[name].sender
        assert sender is not None
        return sender

    def deliver(self, sender: str, deliveries: list[KeyDelivery]) -> None:
        for device, message in deliveries:
            member = self.members.get(device)
            if member is not None:
                member.receiver.install(sender, message)
                member.keys.append(decode_media_key(message))

    def join(self) -> None:
        name = f"device.{len(self.members) + len(self.former)}"
        others = list(self.members)
        for other in others:
            self.members[other].receiver.add_members([name])
        self.members[name] = self.new_member(name, others)
        for other in others:
            self.deliver(other, self.sender(other).join([name], self.rng))
        self.start_sending(name, others)
        self.joined[name] = len(self.frames)

    def leave(self, index: int) -> None:
        names = sorted(self.members)
        pending = any(self.sender(name).state.pending is not None for name in names)
        if len(names) <= 2 or pending:
            return  # one leave per rotation delay (see test_forward_secrecy), two stay
        name = names[index % len(names)]
        self.former[name] = (self.members.pop(name), len(self.frames))
        for other, member in self.members.items():
            member.receiver.remove_members([name])
            self.deliver(other, self.sender(other).leave([name], self.rng))

    def speak(self) -> None:
        for name in self.members:
            data = self.sender(name).encrypt(self.rng.draw("frame", 32))
            self.frames.append(Frame(name, data))
            for other, listener in self.members.items():
                if other != name:
                    assert listener.receiver.receive(name, data) is not None


def opens_with(keys: list[MediaKey], frame: Frame) -> bool:
    """Whether a key, ratcheted up to LOOKAHEAD_STEPS steps, opens the frame (no replay window)."""
    kid = decode_header(frame.data)[0]
    for key in keys:
        base_key = key.base_key
        for _ in range(LOOKAHEAD_STEPS):
            try:
                open_frame(derive_frame_key(key.cipher_suite, base_key, kid), frame.data, b"")
            except ProtocolError:
                base_key = ratchet_base_key(key.cipher_suite, base_key)
                continue
            return True
    return False


def generation_of(frame: Frame, r: int = 8) -> int:
    return decode_header(frame.data)[0] >> r


def play(group: Group, events: list[tuple[str, int]]) -> None:
    for event, index in events:
        if event == "join":
            group.join()
        elif event == "leave":
            group.leave(index)
        elif event == "wait":
            group.now += 0.75
        group.speak()


events = st.lists(
    st.tuples(st.sampled_from(["join", "leave", "wait", "speak"]), st.integers(0, 7)),
    max_size=16,
)


@SETTINGS
@example(size=3, seed=b"x", events=[("leave", 0), ("wait", 0), ("wait", 0), ("speak", 0)])
@example(size=3, seed=b"\x00", events=[("join", 0)] * 8 + [("leave", 0)])
@given(size=st.integers(3, 5), seed=st.binary(min_size=1, max_size=4), events=events)
def test_a_removed_member_opens_no_frame_of_a_generation_made_after_its_removal(
    size: int, seed: bytes, events: list[tuple[str, int]]
) -> None:
    group = Group(size, seed)
    play(group, [*events, ("wait", 0), ("wait", 0)])
    for name, (member, removed_after) in group.former.items():
        known = {(key.sender_device, key.generation) for key in member.keys}
        for index, frame in enumerate(group.frames):
            if frame.sender == name:
                continue
            if index >= removed_after and (frame.sender, generation_of(frame)) not in known:
                assert not opens_with(member.keys, frame)
            member_then = group.joined.get(name, 0) <= index < removed_after
            if member_then and frame.sender in member.receiver.state.members:
                assert opens_with(member.keys, frame)  # its keys are real


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(2, 4), seed=st.binary(min_size=1, max_size=4), events=events)
def test_a_joiner_opens_no_frame_sent_before_it_joined(
    size: int, seed: bytes, events: list[tuple[str, int]]
) -> None:
    group = Group(size, seed)
    play(group, [*events, ("join", 0)])
    for name, joined_after in group.joined.items():
        member = group.members[name] if name in group.members else group.former[name][0]
        for frame in group.frames[:joined_after]:
            assert not opens_with(member.keys, frame)
        later = [f for f in group.frames[joined_after:] if f.sender != name]
        assert all(opens_with(member.keys, f) for f in later[: len(group.members)])


# Under the claimed sender's keys the frame fails authentication, or its KID is
# unknown or too far ahead there, or that sender's replay window refuses it first.
RELABEL_CODES: Final = frozenset(
    {"AUTH_FAILED", "UNKNOWN_KEY_ID", "LIMIT_EXCEEDED", "FRAME_REPLAY"}
)
CHANGE_CODES: Final = frozenset(
    {"AUTH_FAILED", "UNKNOWN_KEY_ID", "MALFORMED_MESSAGE", "FRAME_REPLAY", "LIMIT_EXCEEDED"}
)


def refused(receiver: CallReceiver, sender: str, data: bytes) -> str:
    """Hand the receiver a frame; it must raise and keep its state; returns the code."""
    before = receiver.state
    with pytest.raises(ProtocolError) as refusal:
        receiver.decrypt(sender, data)
    assert receiver.state == before
    code: str = refusal.value.code
    return code


@SETTINGS
@given(
    size=st.integers(3, 5),
    seed=st.binary(min_size=1, max_size=4),
    events=events,
    picks=st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)),
)
def test_relay_relabelling_a_frame_with_another_sender_is_refused_and_changes_nothing(
    size: int, seed: bytes, events: list[tuple[str, int]], picks: tuple[int, int, int]
) -> None:
    group = Group(size, seed)
    play(group, [*events, ("join", 0)])
    names = sorted(group.members)  # at least three: leaves keep two, and one more joined
    listener = names.pop(picks[0] % len(names))
    sender = names.pop(picks[1] % len(names))
    claimed = names[picks[2] % len(names)]
    data = group.sender(sender).encrypt(b"relabelled by the relay")
    receiver = group.members[listener].receiver
    assert refused(receiver, claimed, data) in RELABEL_CODES
    assert refused(receiver, "mallory.1", data) == "NOT_IN_CALL"
    assert receiver.decrypt(sender, data) == b"relabelled by the relay"


@SETTINGS
@given(
    seed=st.binary(min_size=1, max_size=4),
    events=events,
    position=st.integers(0, 200),
    mask=st.integers(1, 255),
    cut=st.integers(0, 200),
)
def test_relay_changing_truncating_or_replaying_a_frame_is_refused_and_changes_nothing(
    seed: bytes, events: list[tuple[str, int]], position: int, mask: int, cut: int
) -> None:
    group = Group(3, seed)
    play(group, events)
    sender, listener = sorted(group.members)[:2]
    data = group.sender(sender).encrypt(b"a frame the relay holds")
    receiver = group.members[listener].receiver
    changed = bytearray(data)
    changed[position % len(data)] ^= mask
    assert refused(receiver, sender, bytes(changed)) in CHANGE_CODES
    assert refused(receiver, sender, data[: cut % len(data)]) in CHANGE_CODES
    assert receiver.decrypt(sender, data) == b"a frame the relay holds"
    assert refused(receiver, sender, data) == "FRAME_REPLAY"
