"""A prekey message finds its session up to torsion with one X25519 call: spec/x3dh.md §5.3.

``sessions.find_handshake`` compares the incoming base key with every known
responder session's (40 archived ones in signal-v4, spec/session.md §7.1).
It computes the incoming key's torsion-free part once and compares it with
each known key as bytes, which is exact because every known responder base
key is torsion-free: x3dh.respond accepts no other, and the format-1
fixtures, written before that check existed, hold only such keys.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from protocol import curve25519, wire
from protocol.curve25519 import is_torsion_free
from protocol.errors import DuplicateMessage
from protocol.profiles import PROFILES, SIGNAL_V4
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.session.records import SESSIONS, SessionRecord
from protocol.store import MemoryStore, load_state
from tests.curve25519_reference import torsion_twins

INITIATOR: Final = Address("initiator", 1)
RESPONDER: Final = Address("responder", 1)
FIXTURES: Final = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def x25519_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every X25519 call of protocol/curve25519.py, by the key it was given."""
    calls: list[bytes] = []
    multiply = curve25519._multiply

    def counted(key: object, u: bytes) -> bytes | None:
        calls.append(u)
        return multiply(key, u)  # type: ignore[arg-type]

    monkeypatch.setattr(curve25519, "_multiply", counted)
    yield calls


def _with_base_key(data: bytes, ephemeral_key: bytes) -> bytes:
    message = wire.decode_prekey_message(SIGNAL_V4, data)
    initial = dataclasses.replace(message.initial, ephemeral_key=ephemeral_key)
    return wire.encode_prekey_message(SIGNAL_V4, dataclasses.replace(message, initial=initial))


def test_a_prekey_message_against_40_archived_sessions_costs_one_x25519_call(
    x25519_calls: list[bytes],
) -> None:
    rng = DrbgRandom(b"find handshake")
    initiator = SessionManager.create(MemoryStore(), INITIATOR, SIGNAL_V4, rng=rng, now=0)
    responder_store = MemoryStore()
    responder = SessionManager.create(responder_store, RESPONDER, SIGNAL_V4, rng=rng, now=0)
    first = b""
    for n in range(41):  # the first session ends as the oldest of 40 archived ones
        initiator.initiate(RESPONDER, responder.prekey_bundles()[0])
        sent = initiator.encrypt(RESPONDER, b"%d" % n)
        first = first or sent
        assert responder.decrypt(INITIATOR, sent) == b"%d" % n
    record = responder.session_record(INITIATOR)
    assert record is not None and len(record.archived) == 40
    oldest = wire.decode_prekey_message(SIGNAL_V4, first).initial.ephemeral_key
    assert record.archived[-1].ephemeral_key == oldest

    # A torsion twin of the oldest base key: a replay, found with one call
    # (two per session compared before, 80 here).
    for twin in torsion_twins(oldest)[1:]:
        x25519_calls.clear()
        with pytest.raises(DuplicateMessage):
            responder.decrypt(INITIATOR, _with_base_key(first, twin))
        assert x25519_calls == [twin]
    # The genuine replay: found by its exact key, one call on the way past
    # the 40 newer sessions, and refused by its session as a duplicate.
    x25519_calls.clear()
    with pytest.raises(DuplicateMessage):
        responder.decrypt(INITIATOR, first)
    assert x25519_calls == [oldest]
    # A new handshake: one call to compare, one for x3dh.respond's own check.
    initiator.initiate(RESPONDER, responder.prekey_bundles()[0])
    sent = initiator.encrypt(RESPONDER, b"new")
    base_key = wire.decode_prekey_message(SIGNAL_V4, sent).initial.ephemeral_key
    x25519_calls.clear()
    assert responder.decrypt(INITIATOR, sent) == b"new"
    assert x25519_calls == [base_key, base_key]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_responder_base_key_in_the_format_1_fixtures_is_torsion_free(profile: str) -> None:
    """The fact ``find_handshake`` relies on, for stores written before x3dh.respond checked it."""
    data = json.loads((FIXTURES / f"format1-{profile}.json").read_text())
    responders = 0
    for device in data["devices"].values():
        for value in device["records"].get(SESSIONS, {}).values():
            record = load_state(SessionRecord, bytes.fromhex(value))
            for state in record.states():
                if state.role == "responder":
                    responders += 1
                    assert is_torsion_free(state.ephemeral_key)
    assert responders > 0
