"""Each floor makes exactly the pyca calls our operation makes (protocol/bench/sequences.py).

A floor is only meaningful if it is the same primitive work as ours. These
tests record every call into pyca's compiled bindings while one operation
of ours runs and while its floor runs, and compare the two multisets, so a
change to the primitive calls of the ratchet, the handshake or the media
keys that the floor does not follow fails here.
"""

from __future__ import annotations

import sys
import types
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.bindings import _rust

from protocol.bench.fanout import fanout_workloads
from protocol.bench.floor import MESSAGE, primitive_steps, sequence_workload
from protocol.bench.sequences import (
    burst_sequence,
    burst_unit_sequence,
    epoch_pingpong_sequence,
    handshake_sequence,
    pingpong_sequence,
)
from protocol.bench.session_pair import Parties, RatchetPair, handshake, make_pair, spqr_epochs
from protocol.bench.workloads import burst, ping_pong
from protocol.profiles import PROFILES, SIGNAL_V4, Profile

# Every profile with a row in the main table: signal-v4 has its set-up, ping-pong and bursts there.
BENCH_PROFILES = {**PROFILES, SIGNAL_V4.name: SIGNAL_V4}


def _binding_modules(module: types.ModuleType, found: set[str]) -> set[str]:
    for value in vars(module).values():
        if isinstance(value, types.ModuleType) and value.__name__ not in found:
            found.add(value.__name__)
            _binding_modules(value, found)
    return found


BINDINGS = _binding_modules(_rust, set())


def _owner(function: Any) -> str:
    owner = getattr(function, "__self__", None)
    if owner is None or isinstance(owner, types.ModuleType):
        return str(getattr(function, "__module__", ""))
    return str(type(owner).__module__)


def pyca_calls(action: Callable[[], object]) -> Counter[str]:
    """Every call into pyca's compiled bindings that ``action`` makes, by name."""
    calls: Counter[str] = Counter()

    def profile(frame: object, event: str, function: Any) -> None:
        if event != "c_call":
            return
        owner = _owner(function)
        if owner in BINDINGS or owner.startswith("cryptography"):
            calls[f"{owner}:{getattr(function, '__qualname__', '?')}"] += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return calls


def _floor_calls(profile: Profile, sequence: list[str]) -> Counter[str]:
    steps = primitive_steps(profile)
    return pyca_calls(lambda: [steps[name]() for name in sequence])


def _opened_pair(profile: Profile) -> RatchetPair:
    pair = make_pair(profile)
    pair.decrypt(1, pair.encrypt(0, MESSAGE))
    return pair


@pytest.mark.parametrize("name", list(BENCH_PROFILES))
def test_setup_floor_makes_the_handshakes_pyca_calls(name: str) -> None:
    profile = BENCH_PROFILES[name]
    parties = Parties(profile)
    responder = parties.responder()
    ours = pyca_calls(lambda: handshake(parties, responder))
    assert ours == _floor_calls(profile, handshake_sequence(profile))


@pytest.mark.parametrize("name", list(PROFILES))
def test_ping_pong_floor_makes_a_dh_turns_pyca_calls(name: str) -> None:
    profile = PROFILES[name]
    pair = _opened_pair(profile)
    ours = pyca_calls(lambda: pair.decrypt(0, pair.encrypt(1, MESSAGE)))
    assert ours == _floor_calls(profile, pingpong_sequence(profile))


@pytest.mark.parametrize("name", list(PROFILES))
def test_burst_floor_makes_a_chain_messages_pyca_calls(name: str) -> None:
    profile = PROFILES[name]
    pair = _opened_pair(profile)
    ours = pyca_calls(lambda: pair.decrypt(1, pair.encrypt(0, MESSAGE)))
    assert ours == _floor_calls(profile, burst_sequence(profile))


def test_signal_v4_ping_pong_floor_makes_two_whole_spqr_epochs_pyca_calls() -> None:
    """The timed units (epochs after the first) make the floor's calls, epoch after epoch."""
    warmup, period = spqr_epochs(SIGNAL_V4)
    assert period > 1
    ours = ping_pong("ours", lambda: make_pair(SIGNAL_V4), warmup=warmup, period=period)
    sequence = epoch_pingpong_sequence(SIGNAL_V4, period)
    floor = sequence_workload("floor", SIGNAL_V4, sequence, period, per_unit=True)
    assert pyca_calls(ours.prepare(2)) == pyca_calls(floor.prepare(2))


@pytest.mark.parametrize("name", list(BENCH_PROFILES))
@pytest.mark.parametrize("reverse", [False, True])
def test_burst_floor_makes_a_whole_bursts_pyca_calls(name: str, reverse: bool) -> None:
    """A timed burst unit (the bench's workload, 7 messages) against its floor unit."""
    profile = BENCH_PROFILES[name]
    ours = burst("ours", lambda: make_pair(profile), 7, reverse=reverse)
    floor = sequence_workload("floor", profile, burst_unit_sequence(profile, 7), 7, per_unit=True)
    assert pyca_calls(ours.prepare(1)) == pyca_calls(floor.prepare(1))


def test_fanout_floor_makes_a_key_distributions_pyca_calls() -> None:
    ours_workload, floor_workload = fanout_workloads(3)
    ours_run, floor_run = ours_workload.prepare(1), floor_workload.prepare(1)
    assert pyca_calls(ours_run) == pyca_calls(floor_run)
