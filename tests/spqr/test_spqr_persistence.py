"""SPQR state through the versioned store format (protocol/store/format.py, spec/storage.md).

A ``PqRatchet`` is frozen dataclasses of bytes, ints and strings, so the
generic strict format stores it; a state reloaded at any point of an epoch
continues the conversation with the same keys, and damaged bytes are
STATE_CORRUPT.
"""

from __future__ import annotations

import pytest

from protocol.errors import StateCorrupt
from protocol.randomness import DrbgRandom
from protocol.spqr import pq_ratchet as pr
from protocol.spqr.chain import ChainParams, Direction
from protocol.store.format import dump_state, load_state


def test_reloading_at_every_state_continues_the_conversation() -> None:
    a = pr.initial_state(bytes(32), Direction.A2B, ChainParams())
    b = pr.initial_state(bytes(32), Direction.B2A, ChainParams())
    ra, rb = DrbgRandom(b"pa"), DrbgRandom(b"pb")
    seen = set()
    for turn in range(200):  # bursts of three make the Braid pass through all 11 states
        a = load_state(pr.PqRatchet, dump_state(a))
        for _ in range(1 + 2 * (turn % 2)):
            a, field5, key = pr.send(a, ra)
            b = load_state(pr.PqRatchet, dump_state(b))
            seen.add(b.braid.name)
            b, got = pr.recv(b, field5)
            assert got == key
            seen.add(b.braid.name)
        b, field5, key = pr.send(b, rb)
        seen.add(a.braid.name)
        a, got = pr.recv(a, field5)
        assert got == key
    assert len(seen) == 11
    assert a.chain.current_epoch >= 2


def test_damaged_state_is_refused() -> None:
    a = pr.initial_state(bytes(32), Direction.A2B, ChainParams())
    a, _, _ = pr.send(a, DrbgRandom(b"x"))
    data = dump_state(a)
    position = data.index(b"KeysSampled")
    renamed = data[:position] + b"KeysSampleX" + data[position + 11 :]
    for bad in (data[:-1], renamed):
        with pytest.raises(StateCorrupt):
            load_state(pr.PqRatchet, bad)
