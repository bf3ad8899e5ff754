"""The results of one ``e2ee bench`` run: the data, the table on screen, the JSON.

Three tables: our rows against their primitive floor, our ``signal-v3``
rows against the peers, and the memory figures. Each target is printed with
"met" or "NOT MET" next to the ratio it judges; nothing is asserted.
"""

from __future__ import annotations

import os
import platform
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, Final

import cryptography
from cryptography.hazmat.backends.openssl.backend import backend as openssl_backend

from protocol.bench.libsignal import LibsignalRow
from protocol.bench.peers import NOT_INSTALLED
from protocol.bench.rows import (
    AHEAD,
    PEER_PROFILE,
    SYNDACE_TARGETS,
    VODOZEMAC_TARGETS,
)
from protocol.bench.timing import Measurement, paired_ratio

Result = Measurement | str  # a status such as "not installed" where nothing was measured

WIDTH: Final = 100  # columns every table fits in
PEER_NAMES: Final = {"syndace": "Syndace", "vodozemac": "vodozemac"}  # in column order


@dataclass(frozen=True, slots=True)
class RowResult:
    kind: str
    variant: str
    title: str
    ours: Result
    floor: Result | None
    target: float | None

    @property
    def ratio(self) -> float | None:
        if isinstance(self.ours, str) or not isinstance(self.floor, Measurement):
            return None
        return paired_ratio(self.ours, self.floor)


@dataclass(frozen=True, slots=True)
class PeerResult:
    """One row kind: ours (signal-v3) and each peer, with the speed-up targets."""

    kind: str
    title: str
    ours: Result
    peers: dict[str, Result]


@dataclass(frozen=True, slots=True)
class MemoryFigure:
    name: str
    value: int | str  # bytes, or a status
    note: str
    target: int | None = None  # largest acceptable value


@dataclass(frozen=True, slots=True)
class Report:
    config: dict[str, Any]
    rows: list[RowResult]
    peers: list[PeerResult]
    memory: list[MemoryFigure]
    libsignal: list[LibsignalRow] = field(default_factory=list)


def machine() -> dict[str, str]:
    """The CPU model, core count, Python, pyca and OpenSSL versions: no paths, no host name."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "cryptography": cryptography.__version__,
        "openssl": openssl_backend.openssl_version_text(),
    }


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


class _Notes:
    """Statuses with a reason ("n/a: no pre-key pool") as "n/a [1]", the reason under the table."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def cell(self, result: Result | None) -> str:
        if result is None:
            return "—"
        if isinstance(result, Measurement):
            return f"{result.micros:,.1f}"
        status, colon, _ = result.partition(": ")
        if not colon:
            return result
        if result not in self.reasons:
            self.reasons.append(result)
        return f"{status} [{self.reasons.index(result) + 1}]"

    def lines(self) -> list[str]:
        return [
            line
            for number, reason in enumerate(self.reasons, start=1)
            for line in textwrap.wrap(f"[{number}] {reason}", WIDTH, subsequent_indent="    ")
        ]


def floor_verdict(row: RowResult) -> str:
    ratio = row.ratio
    if row.target is None or ratio is None:
        return ""
    return f"≤{row.target:.2f} {_verdict(ratio <= row.target)}"


def peer_verdicts(row: PeerResult) -> dict[str, str]:
    """Per peer: the speed-up (peer / ours) and its target, or ours / vodozemac."""
    verdicts: dict[str, str] = {}
    if isinstance(row.ours, str):
        return verdicts
    syndace = row.peers.get("syndace")
    if isinstance(syndace, Measurement):
        speedup = paired_ratio(syndace, row.ours)
        target = SYNDACE_TARGETS.get(row.kind, AHEAD)
        verdicts["syndace"] = (
            f"Syndace/ours {speedup:.2f} ≥{target:.1f} {_verdict(speedup >= target)}"
        )
    vodozemac = row.peers.get("vodozemac")
    if isinstance(vodozemac, Measurement):
        ratio = paired_ratio(row.ours, vodozemac)
        limit = VODOZEMAC_TARGETS.get(row.kind)
        judged = "" if limit is None else f" ≤{limit:.1f} {_verdict(ratio <= limit)}"
        verdicts["vodozemac"] = f"ours/vodozemac {ratio:.2f}{judged}"
    return verdicts


def memory_verdict(figure: MemoryFigure) -> str:
    if figure.target is None or isinstance(figure.value, str):
        return ""
    return f"<{figure.target} {_verdict(figure.value < figure.target)}"


def _table(header: list[str], lines: list[list[str]], notes: _Notes) -> str:
    """Columns fitted to ``WIDTH``: the first left-aligned, the last wrapped, notes below.

    The last column's text wraps to the width left, each of its lines apart.
    """
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]
    indent = sum(widths[:-1]) + 2 * (len(widths) - 1)
    last = max(WIDTH - indent, 16)

    def render(cells: list[str]) -> list[str]:
        first, *middle, final = cells
        aligned = [first.ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(middle, widths[1:-1], strict=True)
        ]
        wrapped = [piece for part in final.split("\n") for piece in textwrap.wrap(part, last)]
        wrapped = wrapped or [""]
        head = "  ".join([*aligned, wrapped[0]]).rstrip()
        return [head, *(" " * indent + more for more in wrapped[1:])]

    rule = "  ".join("-" * width for width in [*widths[:-1], min(widths[-1], last)])
    rendered = [*render(header), rule]
    for line in lines:
        rendered.extend(render(line))
    return "\n".join(rendered + notes.lines())


def _absent_peers(report: Report) -> dict[str, str]:
    """Peers with one status on every row ("not installed", "not run (--no-peers)")."""
    statuses: dict[str, set[Result]] = {}
    for row in report.peers:
        for name, result in row.peers.items():
            statuses.setdefault(name, set()).add(result)
    return {
        name: status
        for name, found in statuses.items()
        if len(found) == 1 and isinstance(status := next(iter(found)), str)
    }


def _absent_line(absent: dict[str, str]) -> str:
    """One line for every peer that was not measured, with how to install it."""
    line = "peers: " + ", ".join(f"{name} {status}" for name, status in absent.items())
    if NOT_INSTALLED in absent.values():
        line += " (python -m pip install -e '.[bench]')"
    return line


def _peer_table(report: Report, shown: list[str]) -> str:
    notes = _Notes()
    lines = []
    for row in report.peers:
        verdicts = peer_verdicts(row)
        lines.append(
            [
                row.title.replace(f", {PEER_PROFILE}", ""),
                notes.cell(row.ours),
                *(notes.cell(row.peers[name]) for name in shown),
                "\n".join(verdicts[name] for name in shown if name in verdicts),
            ]
        )
    header = [f"row (ours: {PEER_PROFILE})", "ours µs"]
    header += [f"{PEER_NAMES.get(name, name)} µs" for name in shown]
    return _table([*header, "comparison"], lines, notes)


def _floor_table(report: Report) -> str:
    notes = _Notes()
    lines = [
        [
            row.title,
            notes.cell(row.floor),
            notes.cell(row.ours),
            "—" if row.ratio is None else f"{row.ratio:.2f}",
            floor_verdict(row),
        ]
        for row in report.rows
    ]
    return _table(["row", "floor µs", "ours µs", "×floor", "target"], lines, notes)


def _memory_table(report: Report) -> str:
    notes = _Notes()
    lines = [
        [
            figure.name,
            f"{figure.value:,}" if isinstance(figure.value, int) else notes.cell(figure.value),
            memory_verdict(figure),
            figure.note,
        ]
        for figure in report.memory
        if figure.value != NOT_INSTALLED  # said once, in the peers line
    ]
    return _table(["memory", "bytes", "target", "note"], lines, notes)


def _libsignal_table(report: Report) -> str:
    """Ours beside libsignal in the same run; a status says once why a column is empty."""
    notes = _Notes()

    def cell(value: float | str, unit: str) -> str:
        if isinstance(value, str):
            return notes.cell(value)
        return f"{value:,.0f} B" if unit == "bytes" else f"{value:,.1f}"

    lines = [
        [
            row.title,
            cell(row.ours, row.unit),
            cell(row.libsignal, row.unit),
            "" if row.ratio is None else f"{row.ratio:.2f}x",
        ]
        for row in report.libsignal
    ]
    return _table(["beside libsignal (µs per op)", "ours", "libsignal", "ours/lib"], lines, notes)


def render_text(report: Report) -> str:
    """The three tables as plain text, each at most ``WIDTH`` columns wide."""
    config = report.config
    heading = (
        f"e2ee bench: medians of {config['repeats']} rounds, µs per operation "
        f"(message {config['message_bytes']} B; burst {config['burst_length']} messages)"
    )
    absent = _absent_peers(report)
    shown = [name for name in PEER_NAMES if name not in absent]
    parts = [heading, _floor_table(report)]
    if shown:
        parts.append(_peer_table(report, shown))
    if absent:
        parts.append(_absent_line(absent))
    parts.append(_memory_table(report))
    if report.libsignal:
        parts.append(_libsignal_table(report))
    parts.append("machine: " + ", ".join(f"{k} {v}" for k, v in config["machine"].items()))
    return "\n\n".join(parts)


def _result_json(result: Result | None) -> Any:
    if result is None or isinstance(result, str):
        return result
    return {
        "median_us": round(result.micros, 3),
        "min_us": round(result.low * 1e6, 3),
        "max_us": round(result.high * 1e6, 3),
        "units_per_batch": result.units_per_batch,
        "batches": len(result.samples),
    }


def to_json(report: Report) -> dict[str, Any]:
    """Everything in the tables, for machines."""
    return {
        "config": report.config,
        "rows": [
            {
                "kind": row.kind,
                "variant": row.variant,
                "title": row.title,
                "floor": _result_json(row.floor),
                "ours": _result_json(row.ours),
                "ratio": None if row.ratio is None else round(row.ratio, 4),
                "target": row.target,
                "verdict": floor_verdict(row) or None,
            }
            for row in report.rows
        ],
        "peers": [
            {
                "kind": row.kind,
                "title": row.title,
                "ours": _result_json(row.ours),
                "peers": {name: _result_json(result) for name, result in row.peers.items()},
                "verdicts": peer_verdicts(row),
            }
            for row in report.peers
        ],
        "memory": [
            {
                "name": figure.name,
                "value": figure.value,
                "note": figure.note,
                "target": figure.target,
                "verdict": memory_verdict(figure) or None,
            }
            for figure in report.memory
        ],
        "libsignal": [
            {
                "title": row.title,
                "unit": row.unit,
                "ours": row.ours,
                "libsignal": row.libsignal,
                "ratio": None if row.ratio is None else round(row.ratio, 4),
            }
            for row in report.libsignal
        ],
    }
