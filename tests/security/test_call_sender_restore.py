"""A call sender restored after a crash keeps every membership change: spec/security.md §3.14.

The sender persists a checkpoint through its ``persist`` hook, and a
restarted device resumes from the newest one (spec/media.md §5.4). Before,
only counter reservations were persisted, never a join or a leave: a sender
restored after a leave went on with the removed member's generation, and
repeating the leave drew another key for the generation the others already
held. Now a membership change is persisted before its keys are handed out,
and the checkpoint stores through the store's versioned format
(``SenderRecord``), as a receiver's state does (``ReceiverRecord``).
"""

from __future__ import annotations

from typing import Final

import pytest

from protocol.errors import FrameReplay, LimitExceeded
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.media.messages import decode_media_key
from protocol.media.receiver import ReceiverRecord, receiver_record, restore_receiver
from protocol.media.sender import SenderRecord, SenderState, restore_sender, sender_record
from protocol.media.sframe import decode_header, sender_key_kid
from protocol.randomness import DrbgRandom
from protocol.store import dump_state, load_state

CALL: Final = b"call-restore-001"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Disk:
    """What survives a SIGKILL: the bytes of the newest checkpoint."""

    def __init__(self) -> None:
        self.saved: bytes | None = None
        self.failing = False

    def persist(self, state: SenderState) -> None:
        if self.failing:
            raise OSError("disk full")
        self.saved = dump_state(sender_record(state))

    def restore(self) -> SenderState:
        assert self.saved is not None
        return restore_sender(load_state(SenderRecord, self.saved))


def _sender(disk: Disk, clock: Clock) -> CallSender:
    sender, _ = CallSender.start(
        CALL,
        "alice",
        ["bob", "carol", "dave"],
        clock=clock,
        rng=DrbgRandom(b"gen0"),
        persist=disk.persist,
    )
    sender.encrypt(b"frame before the leave")  # the first reservation is persisted
    return sender


def test_a_sender_restored_after_a_leave_never_reopens_the_removed_members_access() -> None:
    disk, clock = Disk(), Clock()
    sender = _sender(disk, clock)
    deliveries = sender.leave(["carol"], DrbgRandom(b"gen1"))
    assert {d.device for d in deliveries} == {"bob", "dave"}
    delivered = decode_media_key(deliveries[0].message)
    # SIGKILL now: the device restarts from what is on disk.
    restored = CallSender(disk.restore(), clock=clock, persist=disk.persist)
    assert restored.state.members == frozenset({"bob", "dave"})
    assert restored.state.pending is not None
    assert restored.state.pending.generation == delivered.generation == 1
    assert restored.state.pending.base_key == delivered.base_key
    clock.now += restored.state.limits.rotation_delay
    kid, _ = decode_header(restored.encrypt(b"after the switch"))[:2]
    assert kid == sender_key_kid(1, 0, restored.state.r)  # the generation carol never received


def test_a_restored_sender_repeating_the_leave_never_reuses_a_generation_with_another_key() -> None:
    disk, clock = Disk(), Clock()
    sender = _sender(disk, clock)
    first = decode_media_key(sender.leave(["carol"], DrbgRandom(b"gen1"))[0].message)
    restored = CallSender(disk.restore(), clock=clock, persist=disk.persist)
    # Another member leaves after the restart: a new generation, never generation 1 again.
    again = decode_media_key(restored.leave(["dave"], DrbgRandom(b"other draw"))[0].message)
    assert (again.generation, first.generation) == (2, 1)


def test_a_join_is_persisted_before_its_keys_are_handed_out() -> None:
    disk, clock = Disk(), Clock()
    sender = _sender(disk, clock)
    step = decode_media_key(sender.join(["erin"], DrbgRandom(b"join"))[0].message)
    restored = disk.restore()
    assert sender_record(restored) == sender_record(sender.state)
    assert (restored.current.generation, restored.current.step) == (0, step.step)


def test_a_membership_change_that_cannot_be_persisted_changes_nothing() -> None:
    disk, clock = Disk(), Clock()
    sender = _sender(disk, clock)
    before = sender_record(sender.state)
    disk.failing = True
    with pytest.raises(LimitExceeded):
        sender.leave(["carol"], DrbgRandom(b"gen1"))
    with pytest.raises(LimitExceeded):
        sender.join(["erin"], DrbgRandom(b"join"))
    assert sender_record(sender.state) == before


def test_a_receiver_restored_from_its_stored_record_keeps_keys_and_replay_window() -> None:
    clock = Clock()
    sender, started = CallSender.start(
        CALL, "alice", ["bob", "carol"], clock=clock, rng=DrbgRandom(b"gen0")
    )
    receiver = CallReceiver(CALL, "bob", ["alice", "carol"], clock=clock)
    for delivery in started + sender.leave(["carol"], DrbgRandom(b"gen1")):
        if delivery.device == "bob":
            receiver.install("alice", delivery.message)
    seen = sender.encrypt(b"seen before the restart")
    assert receiver.decrypt("alice", seen) == b"seen before the restart"
    stored = dump_state(receiver_record(receiver.state))
    restored = CallReceiver.restore(
        restore_receiver(load_state(ReceiverRecord, stored)), clock=clock
    )
    assert receiver_record(restored.state) == receiver_record(receiver.state)
    with pytest.raises(FrameReplay):
        restored.decrypt("alice", seen)
    clock.now += sender.state.limits.rotation_delay
    assert restored.decrypt("alice", sender.encrypt(b"next generation")) == b"next generation"
