"""The command line explains itself: wrong usage is one line and status 2, long runs show progress.

Covers ``e2ee vectors`` and ``e2ee bench`` (README.md "Test vectors",
"Performance"); the timed parts of ``bench`` run at their smallest size.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

import protocol.bench
import protocol.vectors
import protocol.video
from protocol.bench import BenchConfig
from protocol.cli import main
from protocol.demo.run import DemoOptions, run_demo
from protocol.progress import StderrProgress

TINY = BenchConfig(
    repeats=1,
    target_s=0.0,
    burst_length=3,
    fanout_devices=2,
    memory_messages=30,
    skipped_keys=3,
    plot_sizes=(2, 3),
    with_peers=False,
)


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``e2ee argv``; it must exit with status 2 and one line on stderr, nothing else."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    return captured.err


@pytest.fixture
def one_family(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the XEdDSA family, so that generating and verifying take a moment."""
    monkeypatch.setattr(protocol.vectors, "FAMILIES", ("xeddsa",))


def test_vectors_generate_into_a_file_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "a-file"
    target.write_bytes(b"kept")
    error = _usage_error(["vectors", "generate", "--out", str(target)], capsys)
    assert "is not a folder" in error
    assert target.read_bytes() == b"kept"
    error = _usage_error(["vectors", "generate", "--out", str(target / "below")], capsys)
    assert "is a file" in error


def test_vectors_verify_of_a_missing_folder_says_missing_not_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = _usage_error(["vectors", "verify", str(tmp_path / "nowhere")], capsys)
    assert "does not exist" in error and "FAIL" not in error


def test_vectors_generate_and_verify_show_progress_and_a_mismatch_is_status_1(
    one_family: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "vectors"
    assert main(["vectors", "generate", "--out", str(out)]) == 0
    assert "vectors generate: 1/1 families" in capsys.readouterr().err
    assert main(["vectors", "verify", str(out)]) == 0
    assert "vectors verify: 1/1 files" in capsys.readouterr().err
    vector = out / "xeddsa_test.json"
    vector.write_bytes(vector.read_bytes().replace(b'"tcId": 1,', b'"tcId": 1 ,', 1))
    assert main(["vectors", "verify", str(out)]) == 1
    assert "FAIL xeddsa_test.json#-: sha256 differs" in capsys.readouterr().out


@pytest.mark.parametrize("repeats", ["0", "-3", "many"])
def test_bench_refuses_repeats_below_one_in_one_line(
    repeats: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "--repeats" in _usage_error(["bench", "--repeats", repeats], capsys)


def test_bench_plot_into_a_missing_folder_is_refused_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = _usage_error(["bench", "--plot", str(tmp_path / "missing" / "f.svg")], capsys)
    assert "does not exist" in error


def test_bench_reports_progress_on_stderr_and_none_with_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(protocol.bench, "QUICK", TINY)
    plot = tmp_path / "plot.svg"
    assert main(["bench", "--quick", "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    bench_lines = [line for line in lines if line.startswith("bench: ")]
    done, total = bench_lines[-1].split()[1].split("/")
    assert done == total and int(total) > 1
    assert any(line.startswith("plot (2 to 3 devices): 2/2") for line in lines)
    assert main(["bench", "--quick", "--json", "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out)["config"]["repeats"] == 1


def test_bench_tables_fit_100_columns_and_absent_peers_take_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(protocol.bench, "QUICK", replace(TINY, with_peers=True))
    monkeypatch.setattr(protocol.bench.peers, "_load", lambda *names: None)  # not installed
    assert main(["bench", "--quick"]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 100
    peer_lines = [line for line in text.splitlines() if "not installed" in line]
    assert peer_lines == [
        "peers: syndace not installed, vodozemac not installed "
        "(python -m pip install -e '.[bench]')"
    ]


def test_progress_rewrites_one_line_on_a_terminal_and_logs_tenths_otherwise() -> None:
    log = io.StringIO()
    progress = StderrProgress("job", "steps", log)
    for done in range(1, 101):
        progress(done, 100)
    assert log.getvalue().splitlines() == [f"job: {n}/100 steps" for n in (1, *range(10, 101, 10))]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    progress = StderrProgress("job", "steps", screen)
    for done in range(1, 4):
        progress(done, 3)
    assert screen.getvalue().count("\n") == 1 and screen.getvalue().endswith(
        "job: 3/3 steps\x1b[K\n"
    )
    assert screen.getvalue().count("\r") == 3


def test_demo_without_the_video_extra_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(protocol.video, "available", lambda: False)
    assert main(["demo", "--video", str(tmp_path / "view")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"e2ee demo: --video needs the extra: {protocol.video.INSTALL_HINT}\n"
    assert not (tmp_path / "view").exists()
    assert main(["demo", "--seconds", "0.3"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("video view: e2ee demo --video DIR")
    assert last.endswith(f"after {protocol.video.INSTALL_HINT})")


def test_audit_shows_its_progress_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "relay.capture"
    assert asyncio.run(run_demo(DemoOptions(seconds=0.3, seed=b"\x09", capture=capture))).ok
    assert main(["audit", str(capture)]) == 0
    captured = capsys.readouterr()
    steps = [line for line in captured.err.splitlines() if line.startswith("audit: ")]
    assert steps[0].startswith("audit: 1/6 ") and steps[-1].startswith("audit: 6/6 ")
    assert "RESULT: nothing the relay saw decrypts or leaks" in captured.out
