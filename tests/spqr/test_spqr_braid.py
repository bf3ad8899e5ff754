"""SPQR state machine and send/receive (protocol/spqr/states.py, pq_ratchet.py).

Two parties exchange messages through at least five completed epochs with
loss and reordering; every delivered message's SPQR key must equal the
sender's. The per-epoch message mix under strict alternation is compared
with what a live libsignal 0.103.0 peer was seen to send (spec/spqr.md §10).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from protocol.errors import AuthFailed, DuplicateMessage, MalformedMessage, UnsupportedVersion
from protocol.randomness import DrbgRandom
from protocol.spqr import pq_ratchet as pr
from protocol.spqr import states
from protocol.spqr.chain import ChainParams, Direction
from protocol.spqr.messages import Chunk, decode_message, encode_message

AUTH_KEY = bytes(range(32))


def _pair() -> tuple[pr.PqRatchet, pr.PqRatchet]:
    params = ChainParams()
    return (
        pr.initial_state(AUTH_KEY, Direction.A2B, params),
        pr.initial_state(AUTH_KEY, Direction.B2A, params),
    )


def _alternate(rounds: int) -> tuple[pr.PqRatchet, pr.PqRatchet, list[tuple[str, bytes]]]:
    a, b = _pair()
    ra, rb = DrbgRandom(b"a"), DrbgRandom(b"b")
    wire = []
    for _ in range(rounds):
        a, field5, key_a = pr.send(a, ra)
        b, key_b = pr.recv(b, field5)
        assert key_a == key_b
        wire.append(("a", field5))
        b, field5, key_b = pr.send(b, rb)
        a, key_a = pr.recv(a, field5)
        assert key_a == key_b
        wire.append(("b", field5))
    return a, b, wire


def test_steady_epochs_send_what_libsignal_sends() -> None:
    _, _, wire = _alternate(140)
    mix: dict[tuple[int, str], Counter[str]] = {}
    for side, field5 in wire:
        message = decode_message(field5)
        mix.setdefault((message.epoch, side), Counter())[message.type.name] += 1
    sends_key = {"HDR": 3, "EK": 29, "EK_CT1_ACK": 7, "CT1_ACK": 4}
    sends_ct = {"NONE": 9, "CT1": 30, "CT2": 5}
    # roles swap every epoch: the initiator sends the key in odd epochs
    assert mix[(3, "a")] == sends_key and mix[(3, "b")] == sends_ct
    assert mix[(2, "b")] == sends_key and mix[(2, "a")] == sends_ct


def test_lossy_reordered_conversation_completes_five_epochs() -> None:
    a, b = _pair()
    parties = {"a": a, "b": b}
    rngs = {"a": DrbgRandom(b"a"), "b": DrbgRandom(b"b")}
    shuffle = random.Random(5)
    in_flight: dict[str, list[tuple[bytes, bytes]]] = {"a": [], "b": []}  # to the named side
    delivered = 0
    for step in range(1400):
        sender = "a" if shuffle.random() < 0.5 else "b"
        receiver = "b" if sender == "a" else "a"
        parties[sender], field5, key = pr.send(parties[sender], rngs[sender])
        if shuffle.random() < 0.1:
            continue  # lost
        queue = in_flight[receiver]
        queue.insert(max(0, len(queue) - shuffle.randrange(3)), (field5, key))
        if len(queue) > 2 or step % 7 == 0:
            for field5, key in queue:
                parties[receiver], got = pr.recv(parties[receiver], field5)
                assert got == key
                delivered += 1
            queue.clear()
    assert delivered > 1000
    assert parties["a"].chain.current_epoch >= 5 and parties["b"].chain.current_epoch >= 5


def test_field5_failures_change_nothing_and_the_genuine_message_follows() -> None:
    a, b, _ = _alternate(20)
    a, field5, key = pr.send(a, DrbgRandom(b"x"))
    for bad, error in (
        (field5 + b"\x00", MalformedMessage),
        (b"", UnsupportedVersion),
        (field5[:1] + bytes([field5[1] + 5]) + field5[2:], MalformedMessage),  # epoch ahead
    ):
        with pytest.raises(error):
            pr.recv(b, bad)
    assert pr.recv(b, bytes([2]) + field5[1:]) == (b, None)  # a newer version is ignored
    b_after, got = pr.recv(b, field5)
    assert got == key
    with pytest.raises(DuplicateMessage):
        pr.recv(b_after, field5)


def test_a_forged_header_fails_its_mac_when_complete() -> None:
    a, b = _pair()
    rng = DrbgRandom(b"a")
    for position in range(3):
        a, field5, _ = pr.send(a, rng)
        message = decode_message(field5)
        assert message.chunk is not None and message.type.name == "HDR"
        if position == 0:
            forged = bytes([message.chunk.data[0] ^ 1]) + message.chunk.data[1:]
            field5 = encode_message(replace(message, chunk=Chunk(0, forged)))
        if position < 2:
            b, _ = pr.recv(b, field5)
        else:
            with pytest.raises(AuthFailed):
                pr.recv(b, field5)
    assert b.braid.name == states.StateName.NO_HEADER_RECEIVED


def test_reprs_hold_no_secret() -> None:
    a, _, _ = _alternate(3)
    assert "redacted" in repr(a) and a.braid.seed.hex() not in repr(a)
