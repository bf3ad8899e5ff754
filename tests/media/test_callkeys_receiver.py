"""The receiver accepts each genuine frame once, within its window, and nothing else."""

from __future__ import annotations

import pytest
from callkeys_harness import CALL_ID, Call

from protocol.errors import (
    AuthFailed,
    DuplicateMessage,
    FrameReplay,
    LimitExceeded,
    MalformedMessage,
    NotInCall,
    UnknownKeyId,
)
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.media.limits import MediaLimits
from protocol.media.messages import MediaKey, decode_media_key, encode_media_key
from protocol.media.receiver import decrypt_frame
from protocol.media.replay import ReplayWindow
from protocol.media.sframe import CipherSuite
from protocol.randomness import DrbgRandom


def _frames(call: Call, sender: str, count: int) -> list[bytes]:
    return [call.senders[sender].encrypt(b"frame %d" % i) for i in range(count)]


def test_frames_reordered_within_the_window_all_decrypt_once() -> None:
    call = Call(["a", "b"])
    frames = _frames(call, "a", 10)
    order = [9, 0, 5, 1, 8, 2, 7, 3, 6, 4]
    assert [call.receivers["b"].decrypt("a", frames[i]) for i in order] == [
        b"frame %d" % i for i in order
    ]
    for frame in frames:
        with pytest.raises(FrameReplay):
            call.receivers["b"].decrypt("a", frame)


def test_window_accepts_the_oldest_counter_inside_and_refuses_the_first_below() -> None:
    window = ReplayWindow(128).record(200)
    window.check(200 - 127)  # the last counter inside the window
    with pytest.raises(FrameReplay):
        window.check(200 - 128)
    with pytest.raises(FrameReplay):
        window.check(200)


def test_window_slides_and_forgets_nothing_it_still_covers() -> None:
    window = ReplayWindow(8)
    for ctr in (0, 2, 3, 9):
        window = window.record(ctr)
    for ctr in (2, 3, 9):
        with pytest.raises(FrameReplay):
            window.check(ctr)
    for ctr in (4, 5, 8, 10):
        window.check(ctr)
    window.record(2**64 - 1).check(2**64 - 2)  # the top of the counter space still works


def test_a_frame_below_the_window_is_a_replay_even_if_never_seen() -> None:
    call = Call(["a", "b"], limits=MediaLimits(replay_window=4))
    frames = _frames(call, "a", 6)
    receiver = call.receivers["b"]
    receiver.decrypt("a", frames[5])
    receiver.decrypt("a", frames[2])  # 5 - 3: inside a window of 4
    with pytest.raises(FrameReplay):
        receiver.decrypt("a", frames[1])


@pytest.mark.parametrize("where", ["header", "ciphertext", "tag"])
def test_a_tampered_frame_fails_and_leaves_the_receiver_state_unchanged(where: str) -> None:
    call = Call(["a", "b"])
    frame = call.senders["a"].encrypt(b"payload", b"meta")
    index = {"header": 0, "ciphertext": 1, "tag": len(frame) - 1}[where]
    tampered = bytearray(frame)
    tampered[index] ^= 0x01 if where != "header" else 0x08  # header: kid 0 -> ctr ext flag
    receiver = call.receivers["b"]
    before = receiver.state
    with pytest.raises((AuthFailed, MalformedMessage, UnknownKeyId)):
        receiver.decrypt("a", bytes(tampered), b"meta")
    assert receiver.state is before
    assert receiver.decrypt("a", frame, b"meta") == b"payload"


def test_wrong_metadata_fails_authentication_and_changes_nothing() -> None:
    call = Call(["a", "b"])
    frame = call.senders["a"].encrypt(b"payload", b"meta")
    before = call.receivers["b"].state
    with pytest.raises(AuthFailed):
        call.receivers["b"].decrypt("a", frame, b"other")
    assert call.receivers["b"].state is before


def _stepped_sender(call: Call, name: str, steps: int) -> None:
    """Make ``name`` take ``steps`` ratchet steps without any frame in between."""
    for i in range(steps):
        call.senders[name].join([f"x{i}"])


def test_catch_up_reaches_exactly_max_catch_up_steps() -> None:
    call = Call(["a", "b"], limits=MediaLimits(max_catch_up=16))
    _stepped_sender(call, "a", 16)
    assert call.receivers["b"].decrypt("a", call.senders["a"].encrypt(b"s16")) == b"s16"


def test_catch_up_beyond_the_limit_is_refused_without_moving_the_key() -> None:
    call = Call(["a", "b"], limits=MediaLimits(max_catch_up=16))
    _stepped_sender(call, "a", 17)
    receiver = call.receivers["b"]
    before = receiver.state
    with pytest.raises(LimitExceeded):
        receiver.decrypt("a", call.senders["a"].encrypt(b"s17"))
    assert receiver.state is before


def test_a_forged_kid_ahead_never_advances_the_ratchet() -> None:
    call = Call(["a", "b"])
    genuine = call.senders["a"].encrypt(b"f")
    forged = bytes([0x18, 0x05]) + genuine[1:]  # KID 5 (step 5), CTR field unchanged
    receiver = call.receivers["b"]
    before = receiver.state
    with pytest.raises((AuthFailed, MalformedMessage)):
        receiver.decrypt("a", forged)
    assert receiver.state is before
    assert receiver.state.senders["a"][0].latest_step == 0


def test_frames_reordered_across_a_join_still_decrypt() -> None:
    call = Call(["a", "b"])
    before_join = call.senders["a"].encrypt(b"old step")
    call.join("c")
    after_join = call.senders["a"].encrypt(b"new step")
    receiver = call.receivers["b"]
    assert receiver.decrypt("a", after_join) == b"new step"
    assert receiver.decrypt("a", before_join) == b"old step"


def test_a_step_no_longer_retained_is_an_unknown_key() -> None:
    call = Call(["a", "b"], limits=MediaLimits(max_retained_steps=2))
    old = call.senders["a"].encrypt(b"step 0")
    _stepped_sender(call, "a", 2)
    call.receivers["b"].decrypt("a", call.senders["a"].encrypt(b"step 2"))
    with pytest.raises(UnknownKeyId):
        call.receivers["b"].decrypt("a", old)


def test_a_frame_is_only_accepted_under_the_sender_the_transport_names() -> None:
    call = Call(["a", "b", "c"])
    from_a = call.senders["a"].encrypt(b"from a")
    receiver = call.receivers["b"]
    with pytest.raises(AuthFailed):
        receiver.decrypt("c", from_a)  # c has a key for the same KID, but another key
    assert receiver.decrypt("a", from_a) == b"from a"


def test_frames_from_a_device_outside_the_call_are_refused() -> None:
    call = Call(["a", "b"])
    with pytest.raises(NotInCall):
        call.receivers["b"].decrypt("z", call.senders["a"].encrypt(b"f"))


def _media_key(call_id: bytes = CALL_ID, sender: str = "a", generation: int = 1) -> MediaKey:
    return MediaKey(call_id, sender, CipherSuite(4), 8, generation, 0, b"\x05" * 32)


@pytest.mark.parametrize(
    ("from_device", "key"),
    [
        ("a", _media_key(call_id=bytes(16))),
        ("z", _media_key(sender="z")),
        ("c", _media_key(sender="a")),
    ],
    ids=["another call", "a device outside the call", "a sender other than the session's"],
)
def test_media_keys_not_from_this_call_install_nothing(from_device: str, key: MediaKey) -> None:
    call = Call(["a", "b", "c"])
    before = call.receivers["b"].state
    with pytest.raises(NotInCall):
        call.receivers["b"].install(from_device, encode_media_key(key))
    assert call.receivers["b"].state is before


def test_a_generation_is_installed_once_and_never_replaced() -> None:
    call = Call(["a", "b"])
    before = call.receivers["b"].state
    with pytest.raises(DuplicateMessage):
        call.receivers["b"].install("a", encode_media_key(_media_key(generation=0)))
    assert call.receivers["b"].state is before


def test_a_media_key_with_another_r_is_refused() -> None:
    call = Call(["a", "b"])
    key = MediaKey(CALL_ID, "a", CipherSuite(4), 7, 1, 0, b"\x05" * 32)
    with pytest.raises(MalformedMessage):
        call.receivers["b"].install("a", key)


def test_old_generation_is_kept_for_the_grace_period_after_the_new_one_is_used() -> None:
    call = Call(["a", "b", "c"])
    late = call.senders["a"].encrypt(b"late old frame")
    later = call.senders["a"].encrypt(b"later old frame")
    call.leave("c")
    call.clock.now = 5.0
    call.receivers["b"].decrypt("a", call.senders["a"].encrypt(b"new"))
    call.clock.now = 14.9
    assert call.receivers["b"].decrypt("a", late) == b"late old frame"
    call.clock.now = 15.0
    with pytest.raises(UnknownKeyId):
        call.receivers["b"].decrypt("a", later)


def test_generations_beyond_the_limit_evict_the_oldest() -> None:
    call = Call(["a", "b"], limits=MediaLimits(max_generations=2))
    receiver = call.receivers["b"]
    receiver.install("a", _media_key(generation=1))
    receiver.install("a", _media_key(generation=2))
    assert [g.generation for g in receiver.state.senders["a"]] == [1, 2]
    with pytest.raises(LimitExceeded):
        receiver.install("a", _media_key(generation=0))


def test_a_frame_whose_key_arrives_later_is_buffered_then_released() -> None:
    call = Call(["a", "b", "c"])
    receiver = call.receivers["b"]
    deliveries = call.senders["a"].leave(["c"])
    call.clock.now = 5.0
    frame = call.senders["a"].encrypt(b"early", b"m")
    assert receiver.receive("a", frame, b"m") is None
    assert receiver.buffered == 1
    released = receiver.install("a", next(m for d, m in deliveries if d == "b"))
    assert [(r.sender, r.metadata, r.plaintext) for r in released] == [("a", b"m", b"early")]
    assert receiver.buffered == 0


def test_the_buffer_is_bounded_and_drops_the_oldest() -> None:
    call = Call(["a", "b", "c"], limits=MediaLimits(max_buffered_frames=2))
    deliveries = call.senders["a"].leave(["c"])
    call.clock.now = 5.0
    frames = _frames(call, "a", 3)
    for frame in frames:
        call.receivers["b"].receive("a", frame)
    released = call.receivers["b"].install("a", next(m for d, m in deliveries if d == "b"))
    assert [r.plaintext for r in released] == [b"frame 1", b"frame 2"]


def test_removing_a_member_forgets_its_keys() -> None:
    call = Call(["a", "b"])
    frame = call.senders["a"].encrypt(b"f")
    call.receivers["b"].remove_members(["a"])
    assert "a" not in call.receivers["b"].state.senders
    with pytest.raises(NotInCall):
        call.receivers["b"].decrypt("a", frame)


def test_pure_transitions_return_new_states_and_keep_the_old_ones_usable() -> None:
    call = Call(["a", "b"])
    frame = call.senders["a"].encrypt(b"f")
    state = call.receivers["b"].state
    after, plaintext = decrypt_frame(state, "a", frame, b"", 0.0)
    assert plaintext == b"f"
    assert decrypt_frame(state, "a", frame, b"", 0.0)[1] == b"f"  # the old state still accepts it
    with pytest.raises(FrameReplay):
        decrypt_frame(after, "a", frame, b"", 0.0)


def test_receiver_state_repr_shows_no_key_material() -> None:
    receiver = CallReceiver(CALL_ID, "b", ["a"], clock=lambda: 0.0)
    _, deliveries = CallSender.start(CALL_ID, "a", ["b"], clock=lambda: 0.0, rng=DrbgRandom(b"r"))
    receiver.install("a", deliveries[0].message)
    base_key = decode_media_key(deliveries[0].message).base_key
    text = repr(receiver.state)
    assert base_key.hex() not in text and str(base_key) not in text and "redacted" in text


def test_leaves_within_one_rotation_delay_never_evict_the_generation_in_use() -> None:
    # Each leave replaces the sender's pending generation before it is used; the
    # receiver installs every one of them, yet must keep the generation in use.
    call = Call(["a", "b", "c", "d", "e", "f"])
    receiver, sender = call.receivers["b"], call.senders["a"]
    assert receiver.decrypt("a", sender.encrypt(b"before", b"m"), b"m") == b"before"
    for leaver in ["c", "d", "e", "f"]:
        for device, message in sender.leave([leaver]):
            if device == "b":
                receiver.install("a", message)
    assert receiver.decrypt("a", sender.encrypt(b"during", b"m"), b"m") == b"during"
    call.clock.now = 5.0
    assert receiver.decrypt("a", sender.encrypt(b"after", b"m"), b"m") == b"after"
