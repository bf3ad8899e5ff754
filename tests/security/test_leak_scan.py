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
from relay_parties import Party, create_party, relay_files, run_bounded
from security_harness import Secrets, find_leaks, record_derived, snapshot

from protocol.profiles import PROFILES, Profile
from protocol.randomness import DrbgRandom
from protocol.relay.call import FPS, SHORT_CALL_LIMITS, Call, SimClock, media_id
from protocol.relay.device import TEXT
from protocol.relay.harness import running_relay
from protocol.relay.schema import Address
from protocol.relay.secrets import SecretLog

ADDRESSES: Final = (Address("alice", 1), Address("bob", 1), Address("bob", 2), Address("carol", 1))
CALL_MEMBERS: Final = ("alice.1", "bob.1", "carol.1")
LEAVER: Final = "carol.1"
# Past the rotation delay at 30 fps, so frames go out under two generations.
CALL_TICKS: Final = int(SHORT_CALL_LIMITS.rotation_delay * FPS) + 3

# (sender, recipient, plaintext length, everyone fetches afterwards)
Step = tuple[int, int, int, bool]
steps = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(16, 300), st.booleans()).filter(
        lambda s: ADDRESSES[s[0]].user != ADDRESSES[s[1]].user
    ),
    min_size=1,
    max_size=8,
)
# A run takes a second or two: report the failing example as generated, unshrunk.
NO_SHRINK: Final = (Phase.explicit, Phase.reuse, Phase.generate)
SLOW_OK: Final = (HealthCheck.too_slow,)
profiles = st.sampled_from(sorted(PROFILES))
seeds = st.binary(min_size=8, max_size=8)


class Run:
    """One generated run; collects secrets as it goes."""

    def __init__(self, profile: Profile, seed: bytes) -> None:
        self.profile = profile
        self.seed = seed
        self.secrets = Secrets()
        self.log = SecretLog()
        self.rng = DrbgRandom(seed + b" plaintexts")

    def steal(self, parties: list[Party]) -> None:
        for party in parties:
            self.secrets.add_records(snapshot(party.store))

    async def converse(self, parties: list[Party], script: list[Step]) -> None:
        for sender, recipient, length, fetch in script:
            body = self.rng.draw("plaintext", length)
            await parties[sender].device.send(parties[recipient].address, TEXT, body)
            self.secrets.add("plaintext", bytes([TEXT]) + body)
            if fetch:
                for party in parties:
                    await party.device.receive()
            self.steal(parties)
        for party in parties:
            await party.device.receive()
        self.steal(parties)

    async def call(self, parties: list[Party]) -> Call:
        devices = [p.device for p in parties if media_id(p.address) in CALL_MEMBERS]
        call_id, room = self.rng.draw("call_id", 16), self.rng.draw("relay_room_id", 16)
        call = Call(devices, call_id, room, SimClock(), SHORT_CALL_LIMITS)
        await call.start(CALL_MEMBERS)
        for tick in range(CALL_TICKS):
            call.clock.now = tick / FPS
            if tick == 1:
                await call.leave(LEAVER, tick)
            await call.tick(tick)
            for member in call.members.values():
                self.secrets.add_state(None if member.sender is None else member.sender.state)
                self.secrets.add_state(None if member.receiver is None else member.receiver.state)
            self.steal(parties)
        for frame in call.frames:
            self.secrets.add("frame_plaintext", frame.plaintext)
        return call

    async def run(self, folder: Path, script: list[Step]) -> Call:
        capture = folder / "relay.capture"
        async with running_relay(folder / "relay.db", capture_path=capture) as relay:
            parties = [
                await create_party(relay.port, a, self.profile, self.seed, self.log)
                for a in ADDRESSES
            ]
            try:
                await self.converse(parties, script)
                call = await self.call(parties)
            finally:
                for party in parties:
                    party.device.collect(None)
                    await party.device.close()
        for label, value in self.log.items():
            self.secrets.add(label, value)
        return call


def run_and_scan(profile: Profile, seed: bytes, script: list[Step]) -> None:
    run = Run(profile, seed)
    with tempfile.TemporaryDirectory() as folder, record_derived(run.secrets):
        call = run_bounded(run.run(Path(folder), script))
        files = dict(relay_files(Path(folder)))
    secrets = run.secrets.items()
    labels = run.secrets.labels()
    expected = {"private", "rk", "cks", "ckr", "kdf_ck_output", "sk", "dh_output", "plaintext"}
    expected |= {"media_base_key", "sframe_key_salt", "frame_plaintext", "key", "salt"}
    if profile.header_encryption:
        expected |= {"hks", "hkr", "header_subkey"}
    if profile.kem is not None:
        expected |= {"seed", "kem_shared_secret"}
    assert expected <= labels, f"secrets not collected: {sorted(expected - labels)}"
    capture = files["relay.capture"]
    assert all(frame.frame in capture for frame in call.frames), "the capture misses frames"
    assert len({frame.generation for frame in call.frames}) >= 2, "no leave took effect"
    for name, data in files.items():
        assert not find_leaks(secrets, data), f"{name} holds secrets"


@pytest.mark.parametrize("profile", sorted(PROFILES))
@settings(max_examples=2, deadline=None, phases=NO_SHRINK, suppress_health_check=SLOW_OK)
@given(seed=seeds, script=steps)
def test_relay_database_and_capture_hold_no_secret_of_any_conversation_or_call(
    profile: str, seed: bytes, script: list[Step]
) -> None:
    run_and_scan(PROFILES[profile], seed, script)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, phases=NO_SHRINK, suppress_health_check=SLOW_OK)
@given(profile=profiles, seed=seeds, script=steps)
def test_relay_holds_no_secret_over_many_generated_runs(
    profile: str, seed: bytes, script: list[Step]
) -> None:
    run_and_scan(PROFILES[profile], seed, script)


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
