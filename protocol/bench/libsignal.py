"""``signal-v4`` beside libsignal 0.103.0, measured in the same run (README.md "Performance").

libsignal is run by the Node driver of the live tests (tests/interop/driver.js,
op ``bench``): libsignal talking to itself with in-memory stores that hold
serialized records, timed inside the Node process in CPU time around
libsignal's calls only (``process.cpuUsage``, as timing.py times ours with
``process_time``), so neither JSON nor the pipe is counted. The workloads
are counted as ours are (workloads.py): set-up is the initiator processing a
bundle with a one-time EC prekey and a one-time Kyber prekey, encrypting the
first message, and the responder decrypting it; ping-pong is one encrypt and
its decrypt in strict alternation; a burst is ``burst_length`` messages on one
chain. Ours runs through ``SessionManager`` on in-memory stores (it too loads
and writes a record per message). The same rows for ``signal-v3`` beside
libsignal 0.28.0 come last.

Ours alone, because libsignal's API cannot separate them: SPQR by itself
(``pq_ratchet.send`` and ``recv`` in alternation) per message and per
epoch, and the hand-written incremental ML-KEM-768 steps of one epoch
(``encaps1`` and ``encaps2``, spec/spqr.md; pyca does key generation and
decapsulation).

The driver and its packages exist only in a checkout of the repository
after the live tests ran once (they install them); without node or them,
the libsignal column is one status line.
"""

from __future__ import annotations

import itertools
import json
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from protocol.bench.floor import MESSAGE
from protocol.bench.session_pair import SessionPair
from protocol.bench.timing import Measurement, Run, Workload, measure
from protocol.bench.workloads import burst, ping_pong
from protocol.profiles import PROFILES, SIGNAL_V4, Profile
from protocol.randomness import SYSTEM_RANDOM
from protocol.session import Address, SessionManager
from protocol.spqr import incremental_mlkem768, pq_ratchet
from protocol.spqr.chain import Direction, chain_params
from protocol.spqr.messages import decode_message
from protocol.store import MemoryStore

_ROOT: Final = Path(__file__).resolve().parents[2]
DRIVER: Final = _ROOT / "tests" / "interop" / "driver.js"
NODE_MODULES: Final = _ROOT / ".cache" / "libsignal-driver" / "node_modules"
LIBS: Final = {"signal-v4": ("current", "0.103.0"), "signal-v3": ("v3", "0.28.0")}
_PROFILES: Final[dict[str, Profile]] = {"signal-v4": SIGNAL_V4, "signal-v3": PROFILES["signal-v3"]}


@dataclass(frozen=True, slots=True)
class LibsignalRow:
    """One row: ours and libsignal in µs per operation (or bytes), or a status."""

    title: str
    ours: float | str
    libsignal: float | str
    unit: str = "µs"

    @property
    def ratio(self) -> float | None:
        if isinstance(self.ours, str) or isinstance(self.libsignal, str):
            return None
        return self.ours / self.libsignal


class _Node:
    """One ``node driver.js`` process answering ``bench`` requests."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            ["node", str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={"NODE_PATH": str(NODE_MODULES), "PATH": _path()},
        )

    def per_op(self, lib: str, workload: str, units: int, length: int, repeats: int) -> Any:
        """Median over ``repeats`` batches of CPU seconds per operation, and the record size."""
        samples, record = [], 0
        for _ in range(repeats):
            answer = self._call(lib=lib, workload=workload, units=units, length=length)
            samples.append(answer["cpu_ns"] / 1e9 / answer["ops"])
            record = answer["record_bytes"]
        return statistics.median(samples), record

    def _call(self, **request: Any) -> dict[str, Any]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps({"op": "bench", **request}) + "\n")
        stdin.flush()
        answer: dict[str, Any] = json.loads(stdout.readline() or '{"ok": false}')
        if not answer.get("ok"):
            raise RuntimeError(f"libsignal driver: {answer.get('message', 'exited')}")
        return answer

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def _path() -> str:
    node = shutil.which("node")
    return "" if node is None else str(Path(node).parent)


def unavailable() -> str | None:
    """Why the libsignal column cannot be measured here, or None."""
    if shutil.which("node") is None:
        return "not run: node is not on the PATH"
    if not DRIVER.exists() or not NODE_MODULES.exists():
        return "not run: needs a checkout where the live tests ran (python -m pytest tests/interop)"
    return None


# --- Ours -----------------------------------------------------------------------------------


def _setup(profile: Profile) -> Workload:
    """SessionManager set-up: initiate from a bundle, encrypt, the responder decrypts."""
    initiator = SessionManager.create(MemoryStore(), Address("initiator", 1), profile, now=0)
    names = itertools.count()

    def prepare(units: int) -> Run:
        responders = []
        for _ in range(units):
            address = Address(f"responder-{next(names)}", 1)
            responder = SessionManager.create(MemoryStore(), address, profile, now=0)
            responder.generate_one_time_prekeys(1)
            if profile.kem is not None:
                responder.generate_kem_prekeys(1)
            responders.append((responder, responder.prekey_bundles()[0]))

        def run() -> None:
            for responder, bundle in responders:
                initiator.initiate(responder.address, bundle)
                data = initiator.encrypt(responder.address, MESSAGE)
                responder.decrypt(initiator.address, data)

        return run

    return Workload(f"libsignal-rows/setup/{profile.name}", prepare)


def _spqr_alone() -> tuple[Workload, int]:
    """pq_ratchet send + recv in alternation, per message; and messages per epoch."""
    auth_key = bytes(32)

    def fresh() -> list[pq_ratchet.PqRatchet]:
        return [
            pq_ratchet.initial_state(auth_key, Direction.A2B, chain_params(False)),
            pq_ratchet.initial_state(auth_key, Direction.B2A, chain_params(False)),
        ]

    def prepare(units: int) -> Run:
        states = fresh()

        def run() -> None:
            for n in range(units):
                side = n & 1
                states[side], field5, _ = pq_ratchet.send(states[side], SYSTEM_RANDOM)
                states[1 - side], _ = pq_ratchet.recv(states[1 - side], field5)

        return run

    states, epochs, n = fresh(), list[int](), 0
    while len(set(epochs)) < 4:  # steady state: the messages of the second and third epochs
        side = n & 1
        states[side], field5, _ = pq_ratchet.send(states[side], SYSTEM_RANDOM)
        states[1 - side], _ = pq_ratchet.recv(states[1 - side], field5)
        epochs.append(decode_message(field5).epoch)
        n += 1
    per_epoch = (epochs.count(epochs[-1] - 1) + epochs.count(epochs[-1] - 2)) // 2
    return Workload("libsignal-rows/spqr-alone", prepare), per_epoch


def _mlkem_internals() -> Workload:
    """One epoch's hand-written incremental ML-KEM-768: encaps1 from the header, encaps2."""
    keys = incremental_mlkem768.generate(SYSTEM_RANDOM)

    def prepare(units: int) -> Run:
        def run() -> None:
            for _ in range(units):
                _, state, _ = incremental_mlkem768.encaps1(keys.hdr, SYSTEM_RANDOM)
                incremental_mlkem768.encaps2(keys.ek, state)

        return run

    return Workload("libsignal-rows/mlkem-internals", prepare)


def _ours(profile: Profile, burst_length: int) -> dict[str, Workload]:
    def make() -> SessionPair:
        return SessionPair(profile)

    return {
        "setup": _setup(profile),
        "pingpong": ping_pong(f"libsignal-rows/pingpong/{profile.name}", make),
        "burst": burst(f"libsignal-rows/burst/{profile.name}", make, burst_length),
    }


def _record_after(profile: Profile, messages: int) -> int:
    """Bytes of side 0's stored record after ``messages`` alternating messages, as the driver's."""
    pair = SessionPair(profile)
    for n in range(messages):
        pair.decrypt(1 - (n & 1), pair.encrypt(n & 1, MESSAGE))
    return len(pair.serialized(0))


# --- The rows -------------------------------------------------------------------------------

_UNITS: Final = {"setup": 20, "pingpong": 200, "burst": 1}
_NOT_SEPARABLE: Final = "n/a: libsignal's API runs SPQR only inside a session's messages"


def rows(
    burst_length: int, repeats: int, target_s: float, seed: int, with_libsignal: bool
) -> list[LibsignalRow]:
    """Every row of the table, ours measured with timing.measure, libsignal in the driver."""
    ours = {name: _ours(profile, burst_length) for name, profile in _PROFILES.items()}
    spqr, per_epoch = _spqr_alone()
    mlkem = _mlkem_internals()
    groups = [[w] for by_kind in ours.values() for w in by_kind.values()] + [[spqr], [mlkem]]
    results = measure(groups, repeats=repeats, target_s=target_s, seed=seed)
    status = unavailable() if with_libsignal else "not run (--no-peers)"
    node = None if status is not None else _Node()
    out: list[LibsignalRow] = []
    try:
        for name in ours:
            lib, version = LIBS[name]
            for kind, workload in ours[name].items():
                theirs: float | str = status or ""
                record: int | str = status or ""
                if node is not None:
                    units, length = _UNITS[kind], burst_length if kind == "burst" else 1
                    theirs, record = node.per_op(lib, kind, units, length, repeats)
                title = f"{kind}, {name} / libsignal {version}"
                out.append(LibsignalRow(title, _micros(results[workload.key]), _scaled(theirs)))
                if kind == "pingpong":
                    size = _record_after(_PROFILES[name], _UNITS["pingpong"])
                    title = f"stored record after {_UNITS['pingpong']} ping-pong messages, {name}"
                    out.append(LibsignalRow(title, size, record, "bytes"))
    finally:
        if node is not None:
            node.close()
    spqr_us = _micros(results[spqr.key])
    out.append(LibsignalRow("SPQR alone per message (ours)", spqr_us, _NOT_SEPARABLE))
    epoch = spqr_us if isinstance(spqr_us, str) else spqr_us * per_epoch
    title = f"SPQR alone per epoch of {per_epoch} alternating messages (ours)"
    out.append(LibsignalRow(title, epoch, _NOT_SEPARABLE))
    title = "incremental ML-KEM-768 encaps1+encaps2 per epoch (ours)"
    out.append(LibsignalRow(title, _micros(results[mlkem.key]), _NOT_SEPARABLE))
    return out


def _micros(result: Measurement | str) -> float | str:
    return result if isinstance(result, str) else result.micros


def _scaled(seconds: float | str) -> float | str:
    return seconds if isinstance(seconds, str) else seconds * 1e6
