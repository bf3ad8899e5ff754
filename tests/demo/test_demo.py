"""The demo end to end: every entitled frame decrypts, every other fails, and the
audit of its capture finds nothing; a sender that skips a rekey is caught."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.demo.run import LEAVER, DemoOptions, DemoReport, run_demo
from protocol.media.callkeys import CallSender
from protocol.media.messages import MediaKey, encode_media_key
from protocol.media.sender import KeyDelivery
from protocol.randomness import SYSTEM_RANDOM, Random


def run(command: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "protocol", command, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_then_audit_of_its_capture_both_pass(tmp_path: Path) -> None:
    capture, secrets = tmp_path / "relay.capture", tmp_path / "secrets.json"
    demo = run("demo", "--seconds", "1.2", "--capture", str(capture), "--secrets-out", str(secrets))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "RESULT: OK" in demo.stdout
    assert f"capture: {capture}; audit it with: e2ee audit {capture} --secrets {secrets}" in (
        demo.stdout
    )
    audit = run("audit", str(capture), "--secrets", str(secrets))
    assert audit.returncode == 0, audit.stdout
    for claim in (" 0 found", " 0 opened", "equal to a real secret: 0", " 0 derivable"):
        assert claim in audit.stdout, claim


def short_demo(seed: bytes, folder: Path) -> DemoReport:
    options = DemoOptions(seconds=1.5, seed=seed, capture=folder / "relay.capture")
    return asyncio.run(run_demo(options))


def test_every_forwarded_frame_decrypts_and_the_joiner_and_leaver_are_refused(
    tmp_path: Path,
) -> None:
    report = short_demo(b"\x01", tmp_path)
    counts = report.messages
    assert report.ok and counts.text_ok == counts.text_sent > 0
    assert counts.keys_ok == counts.keys_sent > 0
    for member in report.members.values():
        assert member.failures == 0
        assert member.frames_decrypted == member.frames_received > 0
    assert report.members["carol.1"].refused_as_expected > 0  # frames after the leave
    assert report.members["dave.1"].refused_as_expected > 0  # frames before the join
    assert report.stats.media_dropped == 0


@pytest.mark.parametrize("profile", ["signal-v4", "signal-v3", "classic"])
def test_the_demo_runs_over_every_profile(profile: str) -> None:
    """Messages, MediaKeys and the call over each profile's sessions, through the relay."""
    result = run("demo", "--seconds", "1.2", "--profile", profile, "--seed", "07")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: OK" in result.stdout
    assert f"messages over {profile} sessions: 36 of 36 text messages" in result.stdout


def test_a_sender_that_does_not_rotate_on_leave_is_caught(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def leave_without_rotation(
        self: CallSender, devices: list[str], rng: Random = SYSTEM_RANDOM
    ) -> list[KeyDelivery]:
        return []  # keeps sending under the key the leaver holds

    monkeypatch.setattr(CallSender, "leave", leave_without_rotation)
    report = short_demo(b"\x02", tmp_path)
    assert not report.ok
    assert any(
        v.startswith(f"{LEAVER} decrypted") and "after it left" in v
        for v in report.entitlement.violations
    )


def test_a_sender_that_gives_a_joiner_its_current_key_is_caught(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def join_without_ratchet(
        self: CallSender, devices: list[str], rng: Random = SYSTEM_RANDOM
    ) -> list[KeyDelivery]:
        state, current = self.state, self.state.current
        key = MediaKey(
            state.call_id, state.device, state.suite, state.r,
            current.generation, current.step, current.base_key,
        )  # fmt: skip
        return [KeyDelivery(device, encode_media_key(key)) for device in devices]

    monkeypatch.setattr(CallSender, "join", join_without_ratchet)
    report = short_demo(b"\x03", tmp_path)
    assert not report.ok
    assert any("before it joined" in v for v in report.entitlement.violations)


def test_plaintexts_of_messages_and_frames_stay_out_of_repr() -> None:
    from protocol.client.device import TEXT, Received
    from protocol.demo.call import SentFrame
    from protocol.relay.schema import Address

    secret = b"attack at dawn, 0123456789"
    for value in (
        Received(Address("alice", 1), TEXT, secret),
        SentFrame("alice.1", 0, secret, secret, 0),
    ):
        assert "attack" not in repr(value) and secret.hex() not in repr(value)
