"""``e2ee bench``: our implementation against the primitive floor and peer libraries.

README.md "Performance" shows a run and explains the method. In one process
and one run this measures, as medians over shuffled rounds (``timing.py``):

* our rows (``ours.py``): set-up, ping-pong, bursts, reverse delivery per
  profile, SFrame frames, MediaKey fan-out, session serialization;
* each row's primitive floor (``floor.py``): the same pyca calls in the same
  order, with no protocol logic, and the ratio ours / floor;
* the peers (``peers.py``): Syndace's x3dh + doubleratchet and vodozemac,
  where installed (the ``bench`` extra);
* memory (``memory.py``): serialized session sizes and retained memory
  over many messages;
* ``signal-v4`` and ``signal-v3`` beside libsignal 0.103.0 and 0.28.0
  (``libsignal.py``), libsignal timed inside the live tests' Node driver;

and reports each against its target (``rows.py``) without asserting it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from protocol.bench import libsignal, memory, ours, peers
from protocol.bench.fanout import fanout_workloads
from protocol.bench.floor import MESSAGE
from protocol.bench.plot import Series, write_svg
from protocol.bench.report import PeerResult, Report, RowResult, machine
from protocol.bench.rows import PEER_PROFILE, RowSpec
from protocol.bench.timing import Measurement, Workload, measure, steps
from protocol.profiles import DEFAULT_PROFILE
from protocol.progress import Progress, silent

__all__ = ["FULL", "QUICK", "BenchConfig", "Report", "plot_key_distribution", "run"]


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """How long and how much: the defaults are the full run."""

    repeats: int = 11
    target_s: float = 0.05  # seconds per calibrated batch
    burst_length: int = 1000
    fanout_devices: int = 100
    memory_messages: int = 100_000
    skipped_keys: int = 1000
    plot_sizes: tuple[int, ...] = field(default=(2, 4, 8, 16, 32, 64, 128, 256))
    with_peers: bool = True
    seed: int = 0


FULL: Final = BenchConfig()
# --quick: fewer, shorter rounds and 10,000 messages for the memory growth.
QUICK: Final = BenchConfig(repeats=5, target_s=0.01, memory_messages=10_000)


def _peer_rows(config: BenchConfig) -> dict[str, peers.PeerRows]:
    if not config.with_peers:
        skipped: peers.PeerRows = dict.fromkeys(peers.ROW_KINDS, "not run (--no-peers)")
        return {"syndace": skipped, "vodozemac": skipped}
    return {
        "syndace": peers.syndace_rows(config.burst_length),
        "vodozemac": peers.vodozemac_rows(config.burst_length),
    }


def _compared(kind: str, variant: str) -> bool:
    """Whether our row is the one the peers are compared with (their rows of its kind)."""
    return variant == PEER_PROFILE or kind in ("sframe-1200", "sframe-50k", "fanout")


def _peer_kind(kind: str) -> str:
    """The row of ours a peer row kind is compared with (both set-up rows: ours)."""
    return "setup" if kind == "setup-pool-1" else kind


def _groups(specs: list[RowSpec], peer_rows: dict[str, peers.PeerRows]) -> list[list[Workload]]:
    """One group per row of ours: ours, its floor, and the peers' workloads compared with it."""
    groups: list[list[Workload]] = []
    by_kind: dict[str, list[Workload]] = {}
    for spec in specs:
        group = [w for w in (spec.ours, spec.floor) if isinstance(w, Workload)]
        groups.append(group)
        if _compared(spec.kind, spec.variant):
            by_kind[spec.kind] = group
    for rows in peer_rows.values():
        for kind, item in rows.items():
            if isinstance(item, Workload):
                if _peer_kind(kind) not in by_kind:
                    groups.append(by_kind.setdefault(_peer_kind(kind), []))
                by_kind[_peer_kind(kind)].append(item)
    return groups


def _result(item: Workload | str, results: dict[str, Measurement | str]) -> Measurement | str:
    return item if isinstance(item, str) else results[item.key]


def _peer_results(
    rows: list[RowResult],
    peer_rows: dict[str, peers.PeerRows],
    results: dict[str, Measurement | str],
) -> list[PeerResult]:
    ours_by_kind = {row.kind: row for row in rows if _compared(row.kind, row.variant)}
    out = []
    for kind in peers.ROW_KINDS:
        ours_row = ours_by_kind.get(_peer_kind(kind))
        title = f"{_peer_kind(kind)} ({PEER_PROFILE})" if ours_row is None else ours_row.title
        if kind == "setup-pool-1":
            title += ", Syndace pool of 1"
        out.append(
            PeerResult(
                kind,
                title,
                ours_row.ours if ours_row is not None else "n/a",
                {name: _result(rows_[kind], results) for name, rows_ in peer_rows.items()},
            )
        )
    return out


def plot_key_distribution(config: BenchConfig, path: Path, progress: Progress = silent) -> None:
    """Measure one key distribution at each group size and draw ours and the floor."""
    points: dict[str, list[tuple[int, float]]] = {"ours": [], "primitive floor": []}
    for done, devices in enumerate(config.plot_sizes):
        progress(done, len(config.plot_sizes))
        ours_workload, floor_workload = fanout_workloads(devices)
        results = measure(
            [[ours_workload, floor_workload]],
            repeats=max(1, config.repeats // 2),
            target_s=config.target_s,
            seed=config.seed,
        )
        for label, workload in (("ours", ours_workload), ("primitive floor", floor_workload)):
            result = results[workload.key]
            if isinstance(result, str):
                raise RuntimeError(f"{devices} devices, {label}: {result}")
            points[label].append((devices, result.median * 1e3))
    progress(len(config.plot_sizes), len(config.plot_sizes))
    title = f"MediaKey distribution ({DEFAULT_PROFILE.name} sessions): cost against group size"
    write_svg(path, title, [Series(label, line) for label, line in points.items()])


def run(config: BenchConfig = FULL, progress: Progress = silent) -> Report:
    """Measure everything in one process and return the report.

    ``progress`` counts each row group calibrated or timed in a round, and
    the memory figures as one last step.
    """
    specs = ours.our_rows(config.burst_length, config.fanout_devices)
    peer_rows = _peer_rows(config)
    groups = _groups(specs, peer_rows)
    total = steps(groups, config.repeats) + 1
    results = measure(
        groups,
        repeats=config.repeats,
        target_s=config.target_s,
        seed=config.seed,
        progress=lambda done, _: progress(done, total),
    )
    rows = [
        RowResult(
            spec.kind,
            spec.variant,
            spec.title,
            _result(spec.ours, results),
            None if spec.floor is None else results[spec.floor.key],
            spec.target,
        )
        for spec in specs
    ]
    settings = asdict(config) | {"message_bytes": len(MESSAGE), "machine": machine()}
    figures = memory.figures(config.memory_messages, config.skipped_keys, config.with_peers)
    beside = libsignal.rows(
        config.burst_length, config.repeats, config.target_s, config.seed, config.with_peers
    )
    progress(total, total)
    return Report(settings, rows, _peer_results(rows, peer_rows, results), figures, beside)
