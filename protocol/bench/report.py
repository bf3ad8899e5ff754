"""The results of one ``e2ee bench`` run: the data, the table on screen, the JSON.

Three tables: our rows against their primitive floor, our ``signal-v3``
rows against the peers, and the memory figures. Each target is printed with
"met" or "NOT MET" next to the ratio it judges; nothing is asserted.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from typing import Any

import cryptography
from cryptography.hazmat.backends.openssl.backend import backend as openssl_backend

from protocol.bench.rows import (
    AHEAD,
    PEER_PROFILE,
    SYNDACE_TARGETS,
    VODOZEMAC_TARGETS,
)
from protocol.bench.timing import Measurement, paired_ratio

Result = Measurement | str  # a status such as "not installed" where nothing was measured


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


def _micros(result: Result | None) -> str:
    if result is None:
        return "—"
    if isinstance(result, str):
        return result
    return f"{result.micros:,.1f}"


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
            f"Syndace / ours = {speedup:.2f} (≥{target:.1f} {_verdict(speedup >= target)})"
        )
    vodozemac = row.peers.get("vodozemac")
    if isinstance(vodozemac, Measurement):
        ratio = paired_ratio(row.ours, vodozemac)
        limit = VODOZEMAC_TARGETS.get(row.kind)
        judged = "" if limit is None else f" (≤{limit:.1f} {_verdict(ratio <= limit)})"
        verdicts["vodozemac"] = f"ours / vodozemac = {ratio:.2f}{judged}"
    return verdicts


def memory_verdict(figure: MemoryFigure) -> str:
    if figure.target is None or isinstance(figure.value, str):
        return ""
    return f"<{figure.target} {_verdict(figure.value < figure.target)}"


def _table(header: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]

    def render(cells: list[str]) -> str:
        first, *rest = cells
        aligned = [first.ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True)
        ]
        return "  ".join(aligned).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(header), rule, *(render(line) for line in lines)])


def render_text(report: Report) -> str:
    """The three tables as plain text (Markdown-compatible spacing is not attempted)."""
    config = report.config
    floor_lines = [
        [
            row.title,
            _micros(row.floor),
            _micros(row.ours),
            "—" if row.ratio is None else f"{row.ratio:.2f}",
            floor_verdict(row),
        ]
        for row in report.rows
    ]
    peer_lines = []
    for peer_row in report.peers:
        verdicts = peer_verdicts(peer_row)
        for name, result in peer_row.peers.items():
            peer_lines.append(
                [
                    f"{peer_row.title} / {name}",
                    _micros(peer_row.ours),
                    _micros(result),
                    verdicts.get(name, ""),
                ]
            )
    memory_lines = [
        [
            figure.name,
            f"{figure.value:,}" if isinstance(figure.value, int) else figure.value,
            memory_verdict(figure),
            figure.note,
        ]
        for figure in report.memory
    ]
    heading = (
        f"e2ee bench: medians of {config['repeats']} rounds, µs per operation "
        f"(message {config['message_bytes']} B; burst {config['burst_length']} messages)"
    )
    return "\n\n".join(
        [
            heading,
            _table(["row", "floor µs", "ours µs", "×floor", "target"], floor_lines),
            _table(["peer row", f"ours ({PEER_PROFILE}) µs", "peer µs", "comparison"], peer_lines),
            _table(["memory", "bytes", "target", "note"], memory_lines),
            "machine: " + ", ".join(f"{k} {v}" for k, v in config["machine"].items()),
        ]
    )


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
    }
