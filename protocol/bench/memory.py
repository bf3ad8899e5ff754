"""Memory figures of ``e2ee bench`` (README.md "Performance", "Memory").

* The serialized session state (``store.dump_state``) per profile, fresh
  and holding ``skipped`` stored message keys, next to the peers' own
  serializations of the same situation.
* Retained memory over a long conversation: ``tracemalloc`` counts the
  Python allocations still alive after ``messages`` messages (in turns of
  ten messages each way, so the DH ratchet turns too), less those alive
  before. A leak grows with the count; a healthy session does not.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

from protocol.bench import peers
from protocol.bench.floor import MESSAGE
from protocol.bench.report import MemoryFigure
from protocol.bench.rows import SESSION_SIZE_TARGET
from protocol.bench.session_pair import SessionPair, make_pair
from protocol.bench.timing import failure
from protocol.profiles import DEFAULT_PROFILE, PROFILES

_TURN = 10  # messages one side sends before the other answers


def _session_sizes(skipped: int) -> list[MemoryFigure]:
    figures = []
    for profile in PROFILES.values():
        pair = SessionPair(profile)
        figures.append(
            MemoryFigure(
                f"session state, {profile.name}",
                len(pair.serialized(1)),
                "stored SessionRecord, acknowledged session",
                SESSION_SIZE_TARGET,
            )
        )
        sent = [pair.encrypt(0, MESSAGE) for _ in range(skipped + 1)]
        pair.decrypt(1, sent[-1])
        figures.append(
            MemoryFigure(
                f"session state + {skipped} skipped keys, {profile.name}",
                len(pair.serialized(1)),
                "after the last of a burst arrived first",
            )
        )
    return figures


def _peer_sizes(skipped: int) -> list[MemoryFigure]:
    return [
        MemoryFigure(
            "Syndace session JSON", peers.syndace_serialized_size(0), "doubleratchet .json"
        ),
        MemoryFigure(
            f"Syndace session JSON + {skipped} skipped keys",
            peers.syndace_serialized_size(skipped),
            "doubleratchet .json",
        ),
        MemoryFigure("vodozemac session pickle", peers.olm_serialized_size(0), "encrypted pickle"),
        MemoryFigure(
            f"vodozemac session pickle + {skipped} skipped keys",
            peers.olm_serialized_size(skipped),
            "Olm keeps at most 40 of them",
        ),
    ]


def retained_growth(messages: int) -> tuple[int, int]:
    """(bytes still allocated after ``messages`` messages less before, peak during them)."""
    pair = make_pair(DEFAULT_PROFILE)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for i in range(messages):
            sender = (i // _TURN) & 1
            pair.decrypt(1 - sender, pair.encrypt(sender, MESSAGE))
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before, peak - before


def _growth(messages: int) -> list[MemoryFigure]:
    growth, peak = retained_growth(messages)
    return [
        MemoryFigure(
            f"retained after {messages:,} messages, {DEFAULT_PROFILE.name}",
            growth,
            f"tracemalloc; peak while running +{peak:,} B",
        )
    ]


def _guarded(name: str, compute: Callable[[], list[MemoryFigure]]) -> list[MemoryFigure]:
    """The figures, or one "error: ..." figure if computing them raised (the run goes on)."""
    try:
        return compute()
    except Exception as error:
        return [MemoryFigure(name, failure(error), "")]


def figures(messages: int, skipped: int, with_peers: bool) -> list[MemoryFigure]:
    found = _guarded("session state", lambda: _session_sizes(skipped))
    if with_peers:
        found += _guarded("peer session state", lambda: _peer_sizes(skipped))
    return found + _guarded("retained memory", lambda: _growth(messages))
