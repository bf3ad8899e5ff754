"""``e2ee bench`` runs every row and reports it in a fixed structure; no timing is asserted."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from pathlib import Path

import pytest

import protocol.bench
from protocol.bench import BenchConfig, peers, plot_key_distribution, run
from protocol.bench.floor import primitive_steps
from protocol.bench.report import (
    PeerResult,
    Report,
    RowResult,
    floor_verdict,
    peer_verdicts,
    render_text,
    to_json,
)
from protocol.bench.sequences import (
    burst_sequence,
    handshake_sequence,
    pingpong_sequence,
)
from protocol.bench.timing import Measurement, Run, Workload, measure, paired_ratio
from protocol.cli import main
from protocol.errors import MalformedMessage
from protocol.profiles import PROFILES

TINY = BenchConfig(
    repeats=1,
    target_s=0.0,
    burst_length=3,
    fanout_devices=2,
    memory_messages=30,
    skipped_keys=3,
    plot_sizes=(2, 3),
)
PEER_STATUSES = {peers.NOT_INSTALLED}


@pytest.fixture(scope="module")
def report() -> Report:
    return run(TINY)


def _expected_rows() -> set[tuple[str, str]]:
    rows = {("sframe-1200", "1200 B"), ("sframe-50k", "50 KB"), ("fanout", "2")}
    rows.add(("session-pingpong", "pq-default"))
    for profile in PROFILES.values():
        pingpong = "pingpong-he" if profile.headers.encrypted else "pingpong"
        kinds = ("setup", pingpong, "burst", "reverse", "serialize", "forged")
        rows |= {(kind, profile.name) for kind in kinds}
    v4_kinds = ("setup", "pingpong-spqr", "burst", "reverse", "forged")
    rows |= {(kind, "signal-v4") for kind in v4_kinds}
    return rows


def test_every_row_is_measured_against_its_floor(report: Report) -> None:
    assert {(row.kind, row.variant) for row in report.rows} == _expected_rows()
    for row in report.rows:
        assert isinstance(row.ours, Measurement), row.title
        assert row.ours.median > 0
        if row.kind in ("serialize", "forged"):
            assert row.floor is None and row.ratio is None
        else:
            assert isinstance(row.floor, Measurement), row.title
            assert row.ratio is not None and row.ratio > 0


def test_every_peer_row_is_a_measurement_or_says_why_not(report: Report) -> None:
    assert [row.kind for row in report.peers] == list(peers.ROW_KINDS)
    for row in report.peers:
        assert set(row.peers) == {"syndace", "vodozemac"}
        for result in row.peers.values():
            if isinstance(result, str):
                assert result in PEER_STATUSES or result.startswith("n/a: "), result


def test_memory_figures_include_session_sizes_and_growth(report: Report) -> None:
    names = [figure.name for figure in report.memory]
    for profile in PROFILES:
        assert f"session state, {profile}" in names
        assert f"session state + 3 skipped keys, {profile}" in names
    assert "retained after 30 messages, pq-default" in names
    sizes = {figure.name: figure.value for figure in report.memory}
    for profile in PROFILES:
        plain, skipped = (
            sizes[f"session state, {profile}"],
            sizes[f"session state + 3 skipped keys, {profile}"],
        )
        assert isinstance(plain, int) and isinstance(skipped, int) and skipped > plain


def test_text_and_json_carry_every_row(report: Report) -> None:
    text = render_text(report)
    document = json.loads(json.dumps(to_json(report)))
    assert len(document["rows"]) == len(report.rows)
    for row in report.rows:
        assert row.title in text
    assert document["config"]["machine"]["cryptography"]
    assert {"median_us", "min_us", "max_us"} <= set(document["rows"][0]["ours"])


def test_targets_are_reported_met_or_not_met() -> None:
    def row(ratio: float) -> RowResult:
        floor = Measurement((1.0, 2.0, 1.0), 1)
        ours = Measurement((ratio, 2.0 * ratio, ratio), 1)
        return RowResult("pingpong", "classic", "t", ours, floor, 1.25)

    assert floor_verdict(row(1.2)) == "≤1.25 met"
    assert floor_verdict(row(1.3)) == "≤1.25 NOT MET"


def test_missing_peers_say_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("x3dh", "doubleratchet", "vodozemac"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    assert set(peers.syndace_rows(3).values()) == {peers.NOT_INSTALLED}
    assert set(peers.vodozemac_rows(3).values()) == {peers.NOT_INSTALLED}
    assert peers.syndace_serialized_size(0) == peers.NOT_INSTALLED


def test_floor_sequences_use_only_known_primitive_steps() -> None:
    for profile in PROFILES.values():
        steps = primitive_steps(profile)
        for sequence in (handshake_sequence, pingpong_sequence, burst_sequence):
            unknown = set(sequence(profile)) - set(steps)
            assert not unknown, (profile.name, sequence.__name__, unknown)


def test_plot_is_a_well_formed_svg_with_both_series(tmp_path: Path) -> None:
    out = tmp_path / "fanout.svg"
    plot_key_distribution(TINY, out)
    root = ElementTree.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2


def test_cli_prints_json_and_writes_the_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(protocol.bench, "QUICK", replace(TINY, with_peers=True))
    out = tmp_path / "plot.svg"
    assert main(["bench", "--quick", "--json", "--no-peers", "--plot", str(out)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["config"]["with_peers"] is False
    assert all(
        p == "not run (--no-peers)" for row in document["peers"] for p in row["peers"].values()
    )
    assert out.read_text().startswith("<svg")


def test_a_failing_row_is_reported_and_the_others_still_run() -> None:
    def broken(units: int) -> Run:
        raise MalformedMessage("broken on purpose")

    def empty(units: int) -> Run:
        return lambda: None

    results = measure(
        [[Workload("broken", broken), Workload("fine", empty)]], repeats=2, target_s=0.0
    )
    assert results["broken"] == "error: MalformedMessage: broken on purpose"
    assert isinstance(results["fine"], Measurement) and len(results["fine"].samples) == 2


def test_ratios_are_taken_per_round_so_shared_load_cancels() -> None:
    # Round 2 ran under load for both sides; round 3 under load for the floor only.
    ours = Measurement((2.0, 20.0, 3.0), 1)
    floor = Measurement((1.0, 10.0, 30.0), 1)
    assert paired_ratio(ours, floor) == 2.0
    assert ours.median / floor.median == 0.3  # what a ratio of medians would have said


def test_peer_targets_compare_like_with_like_and_say_met_or_not() -> None:
    ours = Measurement((100.0,), 1)
    row = PeerResult(
        "pingpong",
        "ping-pong",
        ours,
        {"syndace": Measurement((200.0,), 1), "vodozemac": Measurement((50.0,), 1)},
    )
    assert peer_verdicts(row) == {
        "syndace": "Syndace/ours 2.00 ≥1.8 met",
        "vodozemac": "ours/vodozemac 2.00 ≤1.5 NOT MET",
    }


def test_text_fits_100_columns_with_every_peer_measured_or_explained(report: Report) -> None:
    statuses = {
        "reverse": "n/a: Olm keeps 40 skipped keys per chain",
        "fanout": "error: ValueError: " + "a long reason " * 10,
    }
    measured = Measurement((1e-3, 2e-3, 3e-3), 1)
    rows = [
        replace(row, peers=dict.fromkeys(row.peers, statuses.get(row.kind, measured)))
        for row in report.peers
    ]
    text = render_text(replace(report, peers=rows))
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "[1] n/a: Olm keeps 40 skipped keys per chain" in text
    assert "Syndace/ours" in text and "ours/vodozemac" in text


def test_signal_v4_rows_beside_libsignal_are_measured_or_say_why(report: Report) -> None:
    """Ours always measured; libsignal measured in its driver, or one status for the column."""
    titles = [row.title for row in report.libsignal]
    for kind in ("setup", "pingpong", "burst"):
        for name, version in (("signal-v3", "0.28.0"), ("signal-v4", "0.103.0")):
            assert f"{kind}, {name} / libsignal {version}" in titles
    assert any(title.startswith("SPQR alone per epoch of") for title in titles)
    assert any(title.startswith("incremental ML-KEM-768") for title in titles)
    for row in report.libsignal:
        assert isinstance(row.ours, float | int) and row.ours > 0, row.title
        if isinstance(row.libsignal, str):
            assert row.libsignal.startswith(("not run", "n/a")), row.libsignal
        else:
            assert row.libsignal > 0 and row.ratio is not None
    text = render_text(report)
    assert "beside libsignal" in text
    assert json.loads(json.dumps(to_json(report)))["libsignal"][0]["title"] == titles[0]


def test_without_node_the_libsignal_column_says_so_once(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    from protocol.bench import libsignal

    monkeypatch.setattr(libsignal.shutil, "which", lambda _: None)
    rows = libsignal.rows(3, 1, 0.0, 0, with_libsignal=True)
    statuses = {row.libsignal for row in rows if isinstance(row.libsignal, str)}
    assert "not run: node is not on the PATH" in statuses
    assert all(isinstance(row.ours, float | int) for row in rows)
    text = render_text(replace(report, libsignal=rows))
    assert text.count("node is not on the PATH") == 1
