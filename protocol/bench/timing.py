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
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
    """Seconds per operation: the median batch, and the fastest and slowest batch."""

    median: float
    low: float
    high: float
    units_per_batch: int
    batches: int

    @property
    def micros(self) -> float:
        return self.median * 1e6


def _time_batch(workload: Workload, units: int) -> float:
    """Seconds per operation of one batch of ``units`` units."""
    run = workload.prepare(units)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
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


def failure(error: Exception) -> str:
    """The status of a row whose workload raised: the run goes on without it."""
    return f"error: {type(error).__name__}: {str(error)[:60]}"


def measure(
    workloads: Sequence[Workload], *, repeats: int, target_s: float, seed: int = 0
) -> dict[str, Measurement | str]:
    """Calibrate every workload, then time ``repeats`` shuffled rounds of all of them.

    A workload that raises is reported as an "error: ..." status, not timed further.
    """
    units: dict[str, int] = {}
    failed: dict[str, str] = {}
    for workload in workloads:
        try:
            units[workload.key] = calibrate(workload, target_s)
        except Exception as error:  # report it in the table; the other rows still run
            failed[workload.key] = failure(error)
    samples: dict[str, list[float]] = {key: [] for key in units}
    order = [w for w in workloads if w.key in units]
    shuffler = random.Random(seed)  # the order of rounds only; no key material
    for _ in range(repeats):
        shuffler.shuffle(order)
        for workload in order:
            if workload.key in failed:
                continue
            try:
                samples[workload.key].append(_time_batch(workload, units[workload.key]))
            except Exception as error:
                failed[workload.key] = failure(error)
    results: dict[str, Measurement | str] = dict(failed)
    for key, values in samples.items():
        if key not in failed:
            results[key] = Measurement(
                median=statistics.median(values),
                low=min(values),
                high=max(values),
                units_per_batch=units[key],
                batches=len(values),
            )
    return results
