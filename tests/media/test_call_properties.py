"""Call-key properties over random schedules of joins, leaves, loss, reordering and duplication.

Up to 8 devices send frames; frames are delivered to any device (members and
devices that already left) in any order, any number of times, or never, and
sometimes with a flipped bit. A model records which device holds which key:
a device received sender S's generation g at step s0 exactly when the
sender's membership operation delivered it. Then, for every delivery:

* a member that held the key when the frame was sent decrypts it (once);
* a device that was removed before a generation began never decrypts a
  frame of it, and a joiner never decrypts a frame from before its join;
* no frame is accepted twice by one device;
* a frame that fails changes no receiver state.

The limits are raised so that only these rules decide; each limit is tested
at its boundary in test_callkeys_receiver.py. Below that: the replay window
against a set-based model, and arbitrary input to the decoders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from callkeys_harness import Call
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import FrameReplay, MalformedMessage, ProtocolError, UnsupportedVersion
from protocol.media.limits import MediaLimits
from protocol.media.messages import decode_call_answer, decode_call_offer, decode_media_key
from protocol.media.replay import ReplayWindow
from protocol.media.sender import KeyDelivery
from protocol.media.sframe import decode_header

NAMES = [f"d{i}" for i in range(8)]
R = 8
WIDE_LIMITS = MediaLimits(
    replay_window=1024,
    max_catch_up=255,
    max_retained_steps=256,
    max_generations=64,
    grace_period=1e9,
    rotation_delay=2.0,
)


@dataclass
class Frame:
    sender: str
    data: bytes
    plaintext: bytes


class TrackedCall(Call):
    """A Call that checks every key delivery and records who holds which key.

    Keys may only go to current members, and a joiner's key must be for a
    step no frame has used yet; ``holders[(sender, generation)][device]`` is
    the first step of that generation the device received.
    """

    def __init__(self, devices: list[str]) -> None:
        self.holders: dict[tuple[str, int], dict[str, int]] = {}
        self.members = set(devices)
        self.joining: str | None = None
        self.highest_step_used: dict[tuple[str, int], int] = {}
        super().__init__(devices, limits=WIDE_LIMITS)

    def deliver(self, sender: str, deliveries: list[KeyDelivery]) -> None:
        for device, message in deliveries:
            key = decode_media_key(message)
            assert device in self.members and device != sender
            if device == self.joining:
                used = self.highest_step_used.get((sender, key.generation), -1)
                assert key.step > used, "a joiner received a key that already encrypted frames"
            self.holders.setdefault((sender, key.generation), {})[device] = key.step
        super().deliver(sender, deliveries)

    def join(self, device: str) -> None:
        self.members.add(device)
        self.joining = device
        super().join(device)
        self.joining = None

    def leave(self, device: str) -> None:
        self.members.discard(device)
        super().leave(device)

    def send(self, sender: str, plaintext: bytes) -> bytes:
        data = self.senders[sender].encrypt(plaintext, b"meta")
        generation, step = _generation_step(data)
        used = self.highest_step_used.get((sender, generation), -1)
        self.highest_step_used[(sender, generation)] = max(used, step)
        return data

    def may_decrypt(self, device: str, frame: Frame) -> bool:
        generation, step = _generation_step(frame.data)
        first_step = self.holders.get((frame.sender, generation), {}).get(device)
        in_view = frame.sender in self.receivers[device].state.members
        return in_view and first_step is not None and first_step <= step


def _generation_step(data: bytes) -> tuple[int, int]:
    kid = decode_header(data)[0]
    return kid >> R, kid & ((1 << R) - 1)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 7)),
        st.tuples(st.just("deliver"), st.integers(0, 999), st.integers(0, 7)),
        st.tuples(st.just("tamper"), st.integers(0, 999), st.integers(0, 7), st.integers(0, 255)),
        st.tuples(st.just("join")),
        st.tuples(st.just("leave"), st.integers(0, 7)),
        st.tuples(st.just("tick")),
    ),
    max_size=60,
)


class Run:
    """Executes one schedule against a TrackedCall and checks every outcome."""

    def __init__(self, initial: int) -> None:
        self.call = TrackedCall(NAMES[:initial])
        self.unused = NAMES[initial:]
        self.frames: list[Frame] = []
        self.accepted: set[tuple[str, int]] = set()

    def send(self, index: int) -> None:
        members = sorted(self.call.senders)
        sender = members[index % len(members)]
        plaintext = b"%s frame %d" % (sender.encode(), len(self.frames))
        data = self.call.send(sender, plaintext)
        self.frames.append(Frame(sender, data, plaintext))

    def _target(self, frame_index: int, device_index: int) -> tuple[int, str] | None:
        if not self.frames:
            return None
        index = frame_index % len(self.frames)
        devices = sorted(d for d in self.call.receivers if d != self.frames[index].sender)
        return index, devices[device_index % len(devices)]

    def deliver(self, frame_index: int, device_index: int) -> None:
        target = self._target(frame_index, device_index)
        if target is None:
            return
        index, device = target
        frame, receiver = self.frames[index], self.call.receivers[target[1]]
        expected = self.call.may_decrypt(device, frame) and (device, index) not in self.accepted
        before = receiver.state
        try:
            plaintext = receiver.decrypt(frame.sender, frame.data, b"meta")
        except ProtocolError:
            assert not expected, f"{device} could not decrypt frame {index} of {frame.sender}"
            assert receiver.state is before
            return
        assert expected, f"{device} decrypted frame {index} of {frame.sender} it must not"
        assert plaintext == frame.plaintext
        self.accepted.add((device, index))

    def tamper(self, frame_index: int, device_index: int, bit: int) -> None:
        target = self._target(frame_index, device_index)
        if target is None:
            return
        data = bytearray(self.frames[target[0]].data)
        data[(bit >> 3) % len(data)] ^= 1 << (bit & 7)
        receiver = self.call.receivers[target[1]]
        before = receiver.state
        with pytest.raises(ProtocolError):
            receiver.decrypt(self.frames[target[0]].sender, bytes(data), b"meta")
        assert receiver.state is before

    def join(self) -> None:
        if self.unused:
            self.call.join(self.unused.pop(0))

    def leave(self, index: int) -> None:
        members = sorted(self.call.senders)
        if len(members) > 2:
            self.call.leave(members[index % len(members)])

    def tick(self) -> None:
        self.call.clock.now += 1.0


def _run_schedule(initial: int, ops: list[tuple[object, ...]]) -> None:
    run = Run(initial)
    for op in ops:
        name, *args = op
        getattr(run, str(name))(*args)
    # Finally every device tries every frame: the model decides each outcome.
    for index in range(len(run.frames)):
        for device in range(8):
            run.deliver(index, device)


@settings(max_examples=60, deadline=None)
@given(initial=st.integers(2, 4), ops=OPS)
def test_members_decrypt_exactly_the_frames_of_keys_they_held_and_each_only_once(
    initial: int, ops: list[tuple[object, ...]]
) -> None:
    _run_schedule(initial, ops)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None)
@given(initial=st.integers(2, 4), ops=OPS)
def test_many_schedules_keep_the_membership_rules(
    initial: int, ops: list[tuple[object, ...]]
) -> None:
    _run_schedule(initial, ops)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 70), counters=st.lists(st.integers(0, 300), max_size=80))
def test_replay_window_accepts_exactly_what_a_set_of_seen_counters_allows(
    size: int, counters: list[int]
) -> None:
    window, seen = ReplayWindow(size), set[int]()
    for ctr in counters:
        fresh = not seen or ctr > max(seen) or (max(seen) - ctr < size and ctr not in seen)
        try:
            window.check(ctr)
        except FrameReplay:
            assert not fresh
            continue
        assert fresh
        window = window.record(ctr)
        seen.add(ctr)


@pytest.mark.parametrize("decode", [decode_media_key, decode_call_offer, decode_call_answer])
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_as_a_call_key_message_raise_only_parse_errors(
    decode: Callable[[bytes], object], data: bytes
) -> None:
    with pytest.raises((MalformedMessage, UnsupportedVersion)):
        decode(data)


RECEIVING_CALL = Call(["a", "b"])
GENUINE_FRAME = RECEIVING_CALL.senders["a"].encrypt(b"genuine")


def _flip(position: int, mask: int) -> bytes:
    """The genuine frame with the byte at ``position`` (mod its length) XORed with ``mask``."""
    frame = bytearray(GENUINE_FRAME)
    frame[position % len(frame)] ^= mask
    return bytes(frame)


FRAMES = st.binary(max_size=64) | st.builds(_flip, st.integers(0, 1000), st.integers(1, 255))


@settings(max_examples=300, deadline=None)
@given(data=FRAMES)
def test_arbitrary_or_mutated_frames_raise_protocol_errors_and_change_nothing(data: bytes) -> None:
    receiver = RECEIVING_CALL.receivers["b"]
    before = receiver.state
    with pytest.raises(ProtocolError):
        receiver.decrypt("a", data)
    assert receiver.state is before
