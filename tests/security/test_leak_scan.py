"""The relay never holds a secret: spec/security.md §3.1.

Conversations that hypothesis generates, then a group call with a leave, run
through a real relay on 127.0.0.1 that persists to SQLite and captures every
byte it receives and sends. Every secret of every device is collected while
the run goes on: each record of each store after every step (loaded with
the library's state types, every bytes field not public by name), every
non-public random draw, every key-schedule output, and every plaintext. No
12-byte window of any of them may appear in any file the relay wrote.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Final

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from relay_parties import create_party, relay_files, run_bounded
from relay_run import ADDRESSES, Run, Step, steps
from security_harness import Secrets, find_leaks, record_derived, snapshot

from protocol.profiles import ALL_PROFILES, PROFILES, Profile
from protocol.relay.harness import running_relay

# A run takes a second or two: report the failing example as generated, unshrunk.
NO_SHRINK: Final = (Phase.explicit, Phase.reuse, Phase.generate)
SLOW_OK: Final = (HealthCheck.too_slow,)
profiles = st.sampled_from(sorted(ALL_PROFILES))
seeds = st.binary(min_size=8, max_size=8)


def run_and_scan(profile: Profile, seed: bytes, script: list[Step]) -> None:
    run = Run(profile, seed)
    with tempfile.TemporaryDirectory() as folder, record_derived(run.secrets):
        call = run_bounded(run.run(Path(folder), script))
        files = dict(relay_files(Path(folder)))
    secrets = run.secrets.items()
    labels = run.secrets.labels()
    expected = {"private", "rk", "cks", "ckr", "kdf_ck_output", "sk", "dh_output", "plaintext"}
    expected |= {"media_base_key", "sframe_key_salt", "frame_plaintext", "key", "salt"}
    if profile.headers.encrypted:
        expected |= {"hks", "hkr", "header_subkey"}
    if profile.kem is not None:
        expected |= {"seed", "kem_shared_secret"}
    if profile.spqr:
        expected |= {"next", "next_root", "root_key", "mac_key", "spqr_chain", "spqr_authenticator"}
    assert expected <= labels, f"secrets not collected: {sorted(expected - labels)}"
    capture = files["relay.capture"]
    assert all(frame.frame in capture for frame in call.frames), "the capture misses frames"
    assert len({frame.generation for frame in call.frames}) >= 2, "no leave took effect"
    for name, data in files.items():
        assert not find_leaks(secrets, data), f"{name} holds secrets"


@pytest.mark.parametrize("profile", sorted(ALL_PROFILES))
@settings(max_examples=2, deadline=None, phases=NO_SHRINK, suppress_health_check=SLOW_OK)
@given(seed=seeds, script=steps)
def test_relay_database_and_capture_hold_no_secret_of_any_conversation_or_call(
    profile: str, seed: bytes, script: list[Step]
) -> None:
    run_and_scan(ALL_PROFILES[profile], seed, script)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, phases=NO_SHRINK, suppress_health_check=SLOW_OK)
@given(profile=profiles, seed=seeds, script=steps)
def test_relay_holds_no_secret_over_many_generated_runs(
    profile: str, seed: bytes, script: list[Step]
) -> None:
    run_and_scan(ALL_PROFILES[profile], seed, script)


def test_leak_scan_finds_a_secret_that_a_client_handed_the_relay_in_the_clear(
    tmp_path: Path,
) -> None:
    """The scan can fail: a secret key sent as a plain message body is found in both files."""
    secrets = Secrets()

    async def leak() -> None:
        db, capture = tmp_path / "relay.db", tmp_path / "relay.capture"
        async with running_relay(db, capture_path=capture) as relay:
            alice, bob = [
                await create_party(relay.port, a, PROFILES["classic"], b"leak")
                for a in ADDRESSES[:2]
            ]
            secrets.add_records(snapshot(alice.store))
            private = min(secrets.by_label["private"] - secrets.public)
            body = b"prefix " + private[5:] + b" suffix"  # a misaligned 27-byte part of it
            await alice.device.client.send(bob.address, body, bytes(16))
            await alice.device.close()
            await bob.device.close()

    run_bounded(leak())
    files = dict(relay_files(tmp_path))
    assert find_leaks(secrets.items(), files["relay.capture"]) == {"private"}
    assert find_leaks(secrets.items(), files["relay.db"] + files.get("relay.db-wal", b""))
