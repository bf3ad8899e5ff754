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
from protocol.bench.floor import MESSAGE, primitive_steps
from protocol.bench.sequences import burst_sequence, handshake_sequence, pingpong_sequence
from protocol.bench.session_pair import Parties, RatchetPair, handshake, make_pair
from protocol.profiles import PROFILES, Profile


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


@pytest.mark.parametrize("name", list(PROFILES))
def test_setup_floor_makes_the_handshakes_pyca_calls(name: str) -> None:
    profile = PROFILES[name]
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


def test_fanout_floor_makes_a_key_distributions_pyca_calls() -> None:
    ours_workload, floor_workload = fanout_workloads(3)
    ours_run, floor_run = ours_workload.prepare(1), floor_workload.prepare(1)
    assert pyca_calls(ours_run) == pyca_calls(floor_run)
