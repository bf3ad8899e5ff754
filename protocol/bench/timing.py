"""The timing harness of ``e2ee bench`` (README.md "Performance", "Method").

A ``Workload`` is prepared untimed and then timed: ``prepare(n)`` builds
everything ``n`` units of work need (sessions, bundles, one-time prekeys,
ciphertexts) and returns a ``run`` callable that performs exactly those
units. Each unit is ``ops`` operations (a burst unit is 1000 messages), and
the reported figure is time per operation.

The method follows the peer study the targets come from: every workload is
calibrated to batches of about ``target_s`` seconds; each of ``repeats``
rounds times one batch of every workload, in a freshly shuffled order, so
slow drifts of the machine spread over all rows alike; the garbage collector
is off during a batch (as in ``timeit``); the median batch is reported,
with the minimum and maximum so a reader sees the spread.

Time is the CPU time of this process (``time.process_time``), not wall
time: on a shared machine, time the scheduler gives to other processes is
not counted. The code measured is single-threaded and does no I/O, so on an
idle machine the two agree.

Workloads come in groups (a row: ours and its floor). A group's workloads
run back to back within a round, in random order, so a ratio can be taken
per round between batches timed moments apart (``paired_ratio``): on a
shared machine, load from other processes then changes both sides of a
ratio alike instead of one of them.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocol.progress import Progress, silent

Run = Callable[[], object]
Prepare = Callable[[int], Run]

# A calibrated batch never holds more units than this: the prepared inputs of
# a batch (one-time prekeys, sessions, ciphertexts) are kept in memory.
MAX_UNITS_PER_BATCH = 1 << 16


@dataclass(frozen=True, slots=True)
class Workload:
    """Something to time: ``prepare(n)`` (untimed) returns ``run`` doing ``n`` units."""

    key: str
    prepare: Prepare
    ops: int = 1  # operations per unit; figures are per operation


@dataclass(frozen=True, slots=True)
class Measurement:
    """Seconds per operation of each round's batch, in round order."""

    samples: tuple[float, ...]
    units_per_batch: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    @property
    def micros(self) -> float:
        return self.median * 1e6


def paired_ratio(numerator: Measurement, denominator: Measurement) -> float:
    """The median over rounds of the per-round ratio (both timed in the same rounds)."""
    if len(numerator.samples) != len(denominator.samples):
        return numerator.median / denominator.median
    return statistics.median(
        a / b for a, b in zip(numerator.samples, denominator.samples, strict=True)
    )


def failure(error: Exception) -> str:
    """The status of a row whose workload raised: the run goes on without it."""
    return f"error: {type(error).__name__}: {str(error)[:60]}"


def _time_batch(workload: Workload, units: int) -> float:
    """Seconds per operation of one batch of ``units`` units."""
    run = workload.prepare(units)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.process_time()
        run()
        elapsed = time.process_time() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return elapsed / (units * workload.ops)


def calibrate(workload: Workload, target_s: float) -> int:
    """The smallest power-of-two unit count whose batch takes at least ``target_s``."""
    units = 1
    while units < MAX_UNITS_PER_BATCH:
        per_op = _time_batch(workload, units)
        if per_op * units * workload.ops >= target_s:
            break
        units *= 2
    return units


class _Timer:
    """Samples per workload; a workload that raises becomes an "error: ..." status."""

    def __init__(self) -> None:
        self.units: dict[str, int] = {}
        self.samples: dict[str, list[float]] = {}
        self.failed: dict[str, str] = {}

    def calibrate(self, workload: Workload, target_s: float) -> None:
        try:
            self.units[workload.key] = calibrate(workload, target_s)
            self.samples[workload.key] = []
        except Exception as error:  # reported in the table; the other rows still run
            self.failed[workload.key] = failure(error)

    def sample(self, workload: Workload) -> None:
        if workload.key in self.failed:
            return
        try:
            self.samples[workload.key].append(_time_batch(workload, self.units[workload.key]))
        except Exception as error:
            self.failed[workload.key] = failure(error)

    def results(self) -> dict[str, Measurement | str]:
        results: dict[str, Measurement | str] = dict(self.failed)
        for key, values in self.samples.items():
            if key not in self.failed:
                results[key] = Measurement(tuple(values), self.units[key])
        return results


def steps(groups: Sequence[Sequence[Workload]], repeats: int) -> int:
    """The progress steps of ``measure``: each group calibrated, then timed once a round."""
    return len(groups) * (repeats + 1)


def measure(
    groups: Sequence[Sequence[Workload]],
    *,
    repeats: int,
    target_s: float,
    seed: int = 0,
    progress: Progress = silent,
) -> dict[str, Measurement | str]:
    """Calibrate every workload, then time ``repeats`` shuffled rounds of all of them.

    Groups run in a shuffled order each round, and the workloads of a group
    back to back in a shuffled order. A workload that raises is reported as
    an "error: ..." status and not timed further. ``progress`` is told after
    each group is calibrated or timed (``steps`` in all).
    """
    timer = _Timer()
    total, done = steps(groups, repeats), 0
    for group in groups:
        for workload in group:
            timer.calibrate(workload, target_s)
        done += 1
        progress(done, total)
    order = [list(group) for group in groups]
    shuffler = random.Random(seed)  # the order of rounds only; no key material
    for _ in range(repeats):
        shuffler.shuffle(order)
        for group in order:
            shuffler.shuffle(group)
            for workload in group:
                timer.sample(workload)
            done += 1
            progress(done, total)
    return timer.results()
