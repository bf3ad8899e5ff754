"""Fuzzing SPQR's receive path: any field 5 works or raises a ProtocolError.

States are immutable, so a refused message cannot change one; each test then
shows the genuine message still gives the sender's key.
"""

from __future__ import annotations

import contextlib
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import ProtocolError
from protocol.randomness import DrbgRandom
from protocol.spqr import pq_ratchet as pr
from protocol.spqr.chain import ChainParams, Direction


@cache
def _mid_conversation() -> tuple[pr.PqRatchet, list[tuple[bytes, bytes]]]:
    """The responder after 60 alternating messages, and the initiator's next 50 (field 5, key)."""
    auth_key = bytes(32)
    a = pr.initial_state(auth_key, Direction.A2B, ChainParams())
    b = pr.initial_state(auth_key, Direction.B2A, ChainParams())
    ra, rb = DrbgRandom(b"fa"), DrbgRandom(b"fb")
    for _ in range(30):
        a, field5, _ = pr.send(a, ra)
        b, _ = pr.recv(b, field5)
        b, field5, _ = pr.send(b, rb)
        a, _ = pr.recv(a, field5)
    pending = []
    for _ in range(50):
        a, field5, key = pr.send(a, ra)
        pending.append((field5, key))
    return b, pending


def _try(state: pr.PqRatchet, field5: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        pr.recv(state, field5)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_crash(field5: bytes) -> None:
    state, pending = _mid_conversation()
    _try(state, field5)
    _try(state, b"\x01" + field5)
    assert pr.recv(state, pending[0][0])[1] == pending[0][1]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 49), st.integers(0, 36), st.integers(1, 255), st.booleans())
def test_mutated_genuine_messages_never_crash(
    which: int, offset: int, mask: int, cut: bool
) -> None:
    state, pending = _mid_conversation()
    field5, key = pending[which]
    position = offset % len(field5)
    mutated = (
        field5[:position]
        if cut
        else (field5[:position] + bytes([field5[position] ^ mask]) + field5[position + 1 :])
    )
    _try(state, mutated)
    assert pr.recv(state, field5)[1] == key
