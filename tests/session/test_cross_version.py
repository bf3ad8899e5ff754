"""Format-1 records written by an earlier release load and continue (spec/storage.md §4).

The fixtures in tests/fixtures/ were written once by the release whose
stored format was version 1 (tests/fixtures/README.md says how) and are never
regenerated: each is the whole store of three devices in the middle of a
conversation. libsignal's cross-version tests are the model: whatever the
code becomes, it must open these stores, decrypt the messages that were in
flight, and carry on in both directions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocol.profiles import PROFILES
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _fixture(profile: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"format1-{profile}.json").read_text())
    assert data["format_version"] == 1 and data["profile"] == profile
    return data


def _open(data: dict[str, Any], name: str) -> SessionManager:
    store = MemoryStore()
    with store.transaction() as txn:
        for table, records in data["devices"][name]["records"].items():
            for key, value in records.items():
                txn.put(table, key, bytes.fromhex(value))
    return SessionManager(store, DrbgRandom(f"continue {name}".encode()))


@pytest.fixture(params=sorted(PROFILES))
def devices(request: pytest.FixtureRequest) -> tuple[dict[str, Any], dict[str, SessionManager]]:
    data = _fixture(request.param)
    return data, {name: _open(data, name) for name in data["devices"]}


def test_format_1_devices_decrypt_the_messages_in_flight_when_they_were_stored(
    devices: tuple[dict[str, Any], dict[str, SessionManager]],
) -> None:
    data, managers = devices
    assert len(data["held"]) == 4
    for held in data["held"]:
        receiver, sender = managers[held["to"]], managers[held["from"]]
        plaintext = receiver.decrypt(sender.address, bytes.fromhex(held["wire"]))
        assert plaintext == held["plaintext"].encode()


def test_format_1_sessions_continue_in_both_directions(
    devices: tuple[dict[str, Any], dict[str, SessionManager]],
) -> None:
    _, m = devices
    alice, bob, carol = m["alice"], m["bob"], m["carol"]
    for round_ in range(3):
        text = f"round {round_}".encode()
        assert bob.decrypt(alice.address, alice.encrypt(bob.address, text)) == text
        assert alice.decrypt(bob.address, bob.encrypt(alice.address, text)) == text
    # The unanswered session still sends its initial message, and carol answers it.
    assert carol.decrypt(alice.address, alice.encrypt(carol.address, b"c2")) == b"c2"
    assert alice.decrypt(carol.address, carol.encrypt(alice.address, b"hi")) == b"hi"
    assert bob.decrypt(alice.address, alice.encrypt(bob.address, b"done")) == b"done"


def test_format_1_device_records_keep_serving_prekeys_and_rotating(
    devices: tuple[dict[str, Any], dict[str, SessionManager]],
) -> None:
    data, m = devices
    bob = m["bob"]
    profile = PROFILES[data["profile"]]
    dave = SessionManager.create(
        MemoryStore(), Address("dave", 1), profile, now=0, rng=DrbgRandom(b"dave")
    )
    dave.initiate(bob.address, bob.prekey_bundles()[0])
    assert bob.decrypt(dave.address, dave.encrypt(bob.address, b"new")) == b"new"
    bob.rotate_signed_prekey(now=1_800_000_000)
    erin = SessionManager.create(
        MemoryStore(), Address("erin", 1), profile, now=0, rng=DrbgRandom(b"erin")
    )
    erin.initiate(bob.address, bob.prekey_bundles()[-1])
    assert bob.decrypt(erin.address, erin.encrypt(bob.address, b"after")) == b"after"
