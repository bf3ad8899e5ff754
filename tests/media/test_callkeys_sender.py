"""The sender never reuses a (key, counter), rekeys on join and leave, and fails closed."""

from __future__ import annotations

import pytest
from callkeys_harness import CALL_ID, Call, Clock

from protocol.errors import InvalidArgument, LimitExceeded, UnknownKeyId
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.media.limits import MediaLimits
from protocol.media.messages import decode_media_key
from protocol.media.sender import SenderState, checkpoint, sender_encrypt
from protocol.media.sframe import MAX_CTR, decode_header
from protocol.randomness import DrbgRandom, ScriptedRandom


def _kid_ctr(frame: bytes) -> tuple[int, int]:
    kid, ctr, _ = decode_header(frame)
    return kid, ctr


def test_each_base_key_is_one_labelled_draw_of_nh_bytes() -> None:
    rng = ScriptedRandom([("media_base_key", b"\x07" * 32)])
    _, deliveries = CallSender.start(CALL_ID, "a", ["b", "c"], clock=Clock(), rng=rng)
    rng.assert_exhausted()
    keys = [decode_media_key(message) for _, message in deliveries]
    assert [device for device, _ in deliveries] == ["b", "c"]
    assert all(k.base_key == b"\x07" * 32 and (k.generation, k.step) == (0, 0) for k in keys)


def test_counters_increase_and_every_used_counter_was_reserved_and_persisted_first() -> None:
    persisted: list[SenderState] = []
    limits = MediaLimits(reservation_block=4)
    sender, _ = CallSender.start(
        CALL_ID,
        "a",
        ["b"],
        clock=Clock(),
        rng=DrbgRandom(b"s"),
        limits=limits,
        persist=persisted.append,
    )
    seen = []
    for _ in range(10):
        kid, ctr = _kid_ctr(sender.encrypt(b"frame"))
        # The newest checkpoint resumes beyond every counter used so far.
        assert persisted and persisted[-1].current.next_ctr > ctr
        seen.append((kid, ctr))
    assert seen == [(0, ctr) for ctr in range(10)]
    assert [p.current.next_ctr for p in persisted] == [4, 8, 12]


def test_a_sender_restored_from_a_checkpoint_never_repeats_a_counter() -> None:
    persisted: list[SenderState] = []
    clock = Clock()
    sender, _ = CallSender.start(
        CALL_ID,
        "a",
        ["b"],
        clock=clock,
        rng=DrbgRandom(b"s"),
        limits=MediaLimits(reservation_block=4),
        persist=persisted.append,
    )
    used = {_kid_ctr(sender.encrypt(b"f")) for _ in range(6)}
    restored = CallSender(persisted[-1], clock=clock, persist=persisted.append)
    again = {_kid_ctr(restored.encrypt(b"f")) for _ in range(6)}
    assert not used & again


def test_a_failing_persist_hook_fails_closed_and_changes_nothing() -> None:
    def broken(_: SenderState) -> None:
        raise OSError("disk full")

    sender, _ = CallSender.start(CALL_ID, "a", ["b"], clock=Clock(), rng=DrbgRandom(b"s"))
    before = sender.state
    with pytest.raises(LimitExceeded):
        sender_encrypt(before, b"frame", b"", 0.0, broken)
    assert sender.state is before
    assert sender.state.current.next_ctr == 0


def test_checkpoint_resumes_at_the_reservation_limit() -> None:
    sender, _ = CallSender.start(CALL_ID, "a", ["b"], clock=Clock(), rng=DrbgRandom(b"s"))
    sender.encrypt(b"f")
    assert checkpoint(sender.state).current.next_ctr == sender.state.current.reserved_ctr


def _at_counter(sender: CallSender, ctr: int, step: int = 0) -> CallSender:
    current = sender.state.current._replace(next_ctr=ctr, reserved_ctr=ctr, step=step)
    return CallSender(sender.state._replace(current=current), clock=Clock())


def test_last_counter_is_used_then_the_sender_ratchets_instead_of_wrapping() -> None:
    call = Call(["a", "b"])
    sender = _at_counter(call.senders["a"], MAX_CTR)
    last, after = sender.encrypt(b"last"), sender.encrypt(b"after")
    assert _kid_ctr(last) == (0, MAX_CTR)
    assert _kid_ctr(after) == (1, 0)  # step 1, counters start again under a new key
    assert call.receivers["b"].decrypt("a", last) == b"last"
    assert call.receivers["b"].decrypt("a", after) == b"after"


def test_exhausted_counters_at_the_last_step_refuse_to_encrypt() -> None:
    sender = _at_counter(Call(["a", "b"]).senders["a"], MAX_CTR + 1, step=255)
    before = sender.state
    with pytest.raises(LimitExceeded):
        sender.encrypt(b"frame")
    assert sender.state is before


def test_join_ratchets_one_step_and_the_joiner_gets_only_the_new_step() -> None:
    call = Call(["a", "b"])
    old = call.senders["a"].encrypt(b"before the join")
    call.join("c")
    joiner_keys = call.receivers["c"].state.senders["a"]
    assert [(g.generation, g.latest_step) for g in joiner_keys] == [(0, 1)]
    new = call.senders["a"].encrypt(b"after the join")
    assert _kid_ctr(new) == (1, 0)
    assert call.receivers["b"].decrypt("a", new) == b"after the join"
    assert call.receivers["c"].decrypt("a", new) == b"after the join"
    with pytest.raises(UnknownKeyId):
        call.receivers["c"].decrypt("a", old)


def test_leave_switches_to_the_new_generation_only_after_the_delay() -> None:
    call = Call(["a", "b", "c"])
    call.leave("c")
    call.clock.now = 4.999
    assert _kid_ctr(call.senders["a"].encrypt(b"x"))[0] >> 8 == 0
    call.clock.now = 5.0
    frame = call.senders["a"].encrypt(b"y")
    assert _kid_ctr(frame)[0] >> 8 == 1
    assert call.receivers["b"].decrypt("a", frame) == b"y"


def test_a_second_leave_replaces_the_pending_generation_before_any_frame_used_it() -> None:
    call = Call(["a", "b", "c", "d"])
    call.leave("d")
    first = call.senders["a"].state.pending
    call.clock.now = 2.0
    call.leave("c")  # c holds the pending generation 1: it must never be used
    pending = call.senders["a"].state.pending
    assert first is not None and pending is not None
    assert pending.generation == first.generation + 1 and pending.switch_at == 7.0
    call.clock.now = 7.0
    frame = call.senders["a"].encrypt(b"z")
    assert _kid_ctr(frame)[0] >> 8 == 2
    assert call.receivers["b"].decrypt("a", frame) == b"z"
    with pytest.raises(UnknownKeyId):
        call.receivers["c"].decrypt("a", frame)


def test_a_join_during_a_pending_rotation_delivers_both_keys_to_the_joiner() -> None:
    call = Call(["a", "b", "c"])
    call.leave("c")
    call.join("d")
    generations = [g.generation for g in call.receivers["d"].state.senders["a"]]
    assert generations == [0, 1]
    call.clock.now = 5.0
    assert call.receivers["d"].decrypt("a", call.senders["a"].encrypt(b"w")) == b"w"


def test_a_join_at_the_last_step_starts_a_new_generation_for_everyone() -> None:
    call = Call(["a", "b"])
    sender = call.senders["a"]
    current = sender.state.current._replace(step=255)
    call.senders["a"] = CallSender(sender.state._replace(current=current), clock=call.clock)
    call.join("c")
    assert call.senders["a"].state.pending is not None
    assert [g.generation for g in call.receivers["c"].state.senders["a"]] == [1]
    assert [g.generation for g in call.receivers["b"].state.senders["a"]] == [0, 1]


@pytest.mark.parametrize(
    "devices", [[], ["a"], ["b"]], ids=["nobody", "the sender itself", "a member"]
)
def test_join_refuses_nonsense_device_lists(devices: list[str]) -> None:
    call = Call(["a", "b"])
    before = call.senders["a"].state
    with pytest.raises(InvalidArgument):
        call.senders["a"].join(devices)
    assert call.senders["a"].state is before


def test_leave_refuses_a_device_that_is_not_a_member() -> None:
    call = Call(["a", "b"])
    with pytest.raises(InvalidArgument):
        call.senders["a"].leave(["z"])


def test_sender_state_repr_shows_no_key_material() -> None:
    sender, deliveries = CallSender.start(CALL_ID, "a", ["b"], clock=Clock(), rng=DrbgRandom(b"s"))
    sender.leave(["b"])
    base_key = decode_media_key(deliveries[0].message).base_key
    assert base_key.hex() not in repr(sender.state)
    assert str(base_key) not in repr(sender.state)
    assert "redacted" in repr(sender.state)


def test_receiver_refuses_a_call_id_of_the_wrong_length_or_an_r_out_of_range() -> None:
    with pytest.raises(InvalidArgument):
        CallReceiver(b"short", "a", ["b"], clock=Clock())
    for r in (0, 17):
        with pytest.raises(InvalidArgument):
            CallReceiver(CALL_ID, "a", ["b"], clock=Clock(), r=r)
