"""``e2ee relay``, ``e2ee demo`` and ``e2ee audit`` explain wrong usage in one line, exit 2,
and leave nothing behind (spec/relay.md §8-§9)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from protocol.cli import main


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``e2ee argv``; it must exit 2 with its reason on stderr, and no traceback."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("--port", "99999"), "port 99999 is not in 0-65535"),
        (("--port", "http"), "'http' is not a port number"),
        (("--host", "0.0.0.0"), "0.0.0.0 is not a loopback address"),
    ],
)
def test_relay_refuses_a_bad_port_or_address_before_making_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], reason: str
) -> None:
    db = tmp_path / "relay.db"
    assert reason in usage_error(capsys, "relay", "--db", str(db), *argv)
    assert not db.exists()


def test_relay_refuses_a_database_in_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "missing" / "relay.db"
    assert "does not exist" in usage_error(capsys, "relay", "--db", str(db))
    assert not db.parent.exists()


def test_relay_refuses_a_file_that_is_not_a_database_and_leaves_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")
    assert "is not an SQLite database" in usage_error(capsys, "relay", "--db", str(notes))
    assert notes.read_text() == "not a database\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_relay_on_a_port_in_use_says_so_in_one_line_and_makes_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "relay.db"
        assert main(["relay", "--db", str(db), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot listen on 127.0.0.1:{port}" in err[0]
    assert not db.exists()


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "ten"])
def test_demo_refuses_a_call_of_no_time_or_of_no_end(
    capsys: pytest.CaptureFixture[str], seconds: str
) -> None:
    assert "--seconds" in usage_error(capsys, "demo", "--seconds", seconds)


@pytest.mark.parametrize("option", ["--capture", "--secrets-out"])
def test_demo_refuses_an_output_file_in_a_missing_folder_before_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    target = tmp_path / "missing" / "file"
    assert "does not exist" in usage_error(capsys, "demo", option, str(target))


def test_demo_removes_its_capture_unless_asked_and_writes_secrets_for_the_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    secrets = tmp_path / "out" / "secrets.json"
    secrets.parent.mkdir()
    assert main(["demo", "--seconds", "0.3", "--seed", "05", "--secrets-out", str(secrets)]) == 0
    out = capsys.readouterr().out
    assert "capture: removed (keep one with --capture FILE" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    lines = [line for line in out.splitlines() if line.startswith("messages")]
    assert len(lines) == 1 and "text messages" in lines[0] and "MediaKey" in lines[0]
    assert "bob.2, the fifth device" in out
    assert "media time: 0.3 s" in out and "wall time:" in out


def test_demo_with_a_capture_says_how_to_audit_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "relay.capture"
    assert main(["demo", "--seconds", "0.3", "--capture", str(capture)]) == 0
    out = capsys.readouterr().out
    assert f"capture: {capture}; audit it with: e2ee audit {capture}" in out
    assert capture.stat().st_size > 0


def test_audit_of_a_capture_with_nothing_to_check_does_not_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from protocol.relay.harness import running_relay

    capture = tmp_path / "relay.capture"

    async def empty_run() -> None:
        async with running_relay(tmp_path / "relay.db", capture_path=capture):
            pass

    asyncio.run(empty_run())
    assert main(["audit", str(capture)]) == 1
    out = capsys.readouterr().out
    assert "RESULT: FAILED" in out and "nothing to check" in out


def test_audit_of_a_missing_capture_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(tmp_path / "none.capture")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("e2ee audit: cannot read")
