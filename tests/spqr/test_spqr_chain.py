"""SPQR chain (protocol/spqr/chain.py): the behaviours spqr's chain.rs tests, and its limits."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import (
    DuplicateMessage,
    InvalidArgument,
    MalformedMessage,
    MessageKeyEvicted,
    TooManySkipped,
)
from protocol.spqr.chain import (
    Chain,
    ChainParams,
    Direction,
    chain_add_epoch,
    chain_params,
    chain_recv_key,
    chain_send_key,
    chain_start,
)

DEFAULT = ChainParams()


def _pair(params: ChainParams = DEFAULT) -> tuple[Chain, Chain]:
    return chain_start(b"1", Direction.A2B, params), chain_start(b"1", Direction.B2A, params)


def test_directions_match_across_epochs() -> None:
    # spqr chain.rs test directions_match
    a2b, b2a = _pair()
    a2b, index, key = chain_send_key(a2b, 0)
    assert index == 1
    b2a, got = chain_recv_key(b2a, 0, 1)
    assert got == key
    a2b, b2a = chain_add_epoch(a2b, 1, b"\x02"), chain_add_epoch(b2a, 1, b"\x02")
    a2b, index, key = chain_send_key(a2b, 1)
    assert index == 1 and chain_recv_key(b2a, 1, 1)[1] == key
    for _ in range(8):
        a2b, _, _ = chain_send_key(a2b, 1)
    a2b, index, key = chain_send_key(a2b, 1)
    assert index == 10 and chain_recv_key(b2a, 1, 10)[1] == key
    # and the other direction uses the other chain
    b2a, index, key = chain_send_key(b2a, 1)
    assert index == 1 and chain_recv_key(a2b, 1, 1)[1] == key


def test_a_key_is_given_once() -> None:
    # spqr chain.rs test previously_returned_key
    _, b2a = _pair()
    b2a, _ = chain_recv_key(b2a, 0, 2)
    with pytest.raises(DuplicateMessage):
        chain_recv_key(b2a, 0, 2)
    b2a, _ = chain_recv_key(b2a, 0, 1)  # skipped, still kept
    with pytest.raises(DuplicateMessage):
        chain_recv_key(b2a, 0, 1)


def test_keys_more_than_max_ooo_behind_are_trimmed() -> None:
    # spqr chain.rs test very_old_keys_are_trimmed
    a2b = chain_start(b"1", Direction.A2B, ChainParams(max_jump=10, max_ooo_keys=10))
    a2b, _ = chain_recv_key(a2b, 0, 10)
    a2b, _ = chain_recv_key(a2b, 0, 12)
    with pytest.raises(MessageKeyEvicted):
        chain_recv_key(a2b, 0, 1)
    chain_recv_key(a2b, 0, 2)  # exactly max_ooo_keys behind: kept


def test_self_session_keeps_the_double_ratchets_jump_limit() -> None:
    # libsignal: u32::MAX with oneself; ours: 25,000 (spec/spqr.md §6, spec/security.md §3.13)
    assert chain_params(self_session=True) == ChainParams(25_000, 2_000)
    assert chain_params(self_session=False) == ChainParams(25_000, 2_000)


def test_keys_walked_past_and_dropped_are_the_same_chain() -> None:
    # the next-key-only steps give the chain every full step gives
    params = ChainParams(max_jump=50, max_ooo_keys=3)
    a2b, b2a = chain_start(b"1", Direction.A2B, params), chain_start(b"1", Direction.B2A, params)
    sent = []
    for _ in range(41):
        b2a, index, key = chain_send_key(b2a, 0)
        sent.append(key)
    a2b, key = chain_recv_key(a2b, 0, 40)
    assert key == sent[39]
    for index in (37, 38, 39):
        a2b, key = chain_recv_key(a2b, 0, index)
        assert key == sent[index - 1]
    with pytest.raises(MessageKeyEvicted):
        chain_recv_key(a2b, 0, 36)
    a2b, key = chain_recv_key(a2b, 0, 41)
    assert key == sent[40]


def test_jump_limit_is_max_jump() -> None:
    params = ChainParams(max_jump=10, max_ooo_keys=10)
    a2b = chain_start(b"1", Direction.A2B, params)
    chain_recv_key(a2b, 0, 10)
    with pytest.raises(TooManySkipped):
        chain_recv_key(a2b, 0, 11)


def test_two_thousand_keys_in_any_order() -> None:
    # spqr chain.rs test out_of_order_keys, with the default limits
    a2b, b2a = _pair()
    keys = []
    for _ in range(DEFAULT.max_ooo_keys):
        a2b, index, key = chain_send_key(a2b, 0)
        keys.append((index, key))
    random.Random(7).shuffle(keys)
    for index, key in keys:
        b2a, got = chain_recv_key(b2a, 0, index)
        assert got == key


def test_sending_never_goes_back_an_epoch() -> None:
    # spqr chain.rs test clear_old_send_keys
    a2b, _ = _pair()
    a2b, _, _ = chain_send_key(a2b, 0)
    a2b = chain_add_epoch(a2b, 1, b"\x02")
    a2b, _, _ = chain_send_key(a2b, 1)
    with pytest.raises(InvalidArgument):
        chain_send_key(a2b, 0)


def test_one_epoch_is_kept_before_the_sending_epoch() -> None:
    a2b, b2a = _pair()
    b2a, _, _ = chain_send_key(b2a, 0)  # an epoch-0 key a2b will no longer be able to open
    for epoch in (1, 2):
        a2b = chain_add_epoch(a2b, epoch, bytes([epoch]))
        b2a = chain_add_epoch(b2a, epoch, bytes([epoch]))
    b2a, _, middle = chain_send_key(b2a, 1)
    a2b, _, _ = chain_send_key(a2b, 2)  # a2b now sends in epoch 2: keeps 1 and 2
    assert len(a2b.links) == 2 and a2b.links[0].send.next == b""
    with pytest.raises(MessageKeyEvicted):
        chain_recv_key(a2b, 0, 1)
    assert chain_recv_key(a2b, 1, 1)[1] == middle
    with pytest.raises(MalformedMessage):
        chain_recv_key(a2b, 3, 1)


def test_epochs_are_added_in_order() -> None:
    a2b, _ = _pair()
    with pytest.raises(InvalidArgument):
        chain_add_epoch(a2b, 2, b"x")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=40), st.randoms())
def test_delivery_in_any_order_with_loss(steps: list[tuple[int, bool]], rnd: random.Random) -> None:
    """Sends in epochs 0..2 (epochs added as they come), delivered shuffled, some lost."""
    params = ChainParams(max_jump=50, max_ooo_keys=50)
    a2b, b2a = _pair(params)
    sent = []
    for bump, delivered in steps:
        target = min(a2b.current_epoch + (bump == 2), 2)
        while a2b.current_epoch < target:
            epoch = a2b.current_epoch + 1
            a2b = chain_add_epoch(a2b, epoch, bytes([epoch]))
            b2a = chain_add_epoch(b2a, epoch, bytes([epoch]))
        a2b, index, key = chain_send_key(a2b, a2b.current_epoch)
        if delivered:
            sent.append((a2b.current_epoch, index, key))
    rnd.shuffle(sent)
    for epoch, index, key in sent:
        b2a, got = chain_recv_key(b2a, epoch, index)
        assert got == key


def test_reprs_hold_no_key() -> None:
    a2b, _ = _pair()
    text = repr(a2b)
    assert a2b.next_root.hex() not in text and a2b.links[0].send.next.hex() not in text
    assert "redacted" in repr(a2b.links[0])
