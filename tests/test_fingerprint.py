"""Safety numbers against libsignal's published values (spec/session.md §6)."""

from __future__ import annotations

import json
from pathlib import Path

from protocol.fingerprint import safety_number

KAT = Path(__file__).parent / "kat"


def test_safety_number_matches_libsignal_displayable_fingerprint() -> None:
    kat = json.loads((KAT / "libsignal_fingerprint.json").read_text())
    alice_key, bob_key = bytes.fromhex(kat["alice_identity"]), bytes.fromhex(kat["bob_identity"])
    assert alice_key[0] == bob_key[0] == 0x05
    number = safety_number(kat["alice_stable_id"], alice_key[1:], kat["bob_stable_id"], bob_key[1:])
    mirrored = safety_number(
        kat["bob_stable_id"], bob_key[1:], kat["alice_stable_id"], alice_key[1:]
    )
    assert number == mirrored == kat["displayable_fingerprint"]
