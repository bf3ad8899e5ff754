"""Message workloads shared by our implementation and the peers (README.md "Performance").

Every implementation under test, ours or a peer's, is driven through the same
small ``Endpoints`` interface, so the ping-pong, burst and reverse-delivery
loops below are literally the same code for all of them and differ only in
the library calls behind ``encrypt`` and ``decrypt``. Messages are handed
over in each library's natural form: bytes for ours, objects where a peer's
API passes objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from protocol.bench.floor import MESSAGE
from protocol.bench.timing import Run, Workload


class Endpoints(Protocol):
    """Two parties with an established, acknowledged session: side 0 and side 1."""

    def encrypt(self, side: int, plaintext: bytes) -> object:
        """Encrypt as ``side`` for the other side; returns the message as sent."""
        ...

    def decrypt(self, side: int, message: object) -> bytes:
        """Decrypt as ``side`` a message the other side sent."""
        ...


MakeEndpoints = Callable[[], Endpoints]


def ping_pong(key: str, make: MakeEndpoints, *, warmup: int = 0, period: int = 1) -> Workload:
    """Strict alternation: every message is answered, so each one causes a DH ratchet step.

    One operation is one encrypt plus the matching decrypt. A unit is
    ``period`` messages after ``warmup`` untimed ones: for ``signal-v4``,
    whose SPQR does its ML-KEM work once per epoch, a unit is one whole
    epoch in the steady state, so every operation is an epoch's average.
    """

    def prepare(units: int) -> Run:
        pair = make()
        for i in range(warmup):
            pair.decrypt(1 - (i & 1), pair.encrypt(i & 1, MESSAGE))

        def run() -> None:
            for i in range(warmup, warmup + units * period):
                sender = i & 1
                pair.decrypt(1 - sender, pair.encrypt(sender, MESSAGE))

        return run

    return Workload(key, prepare, period)


def burst(key: str, make: MakeEndpoints, length: int, *, reverse: bool = False) -> Workload:
    """``length`` messages on one sending chain, delivered in order or in reverse.

    A unit is one fresh acknowledged session carrying the whole burst; the
    figure is per message (encrypt plus decrypt). In reverse, the first
    decryption skips ``length - 1`` keys and stores them, and every later one
    uses a stored key.
    """

    def prepare(units: int) -> Run:
        pairs = [make() for _ in range(units)]
        for pair in pairs:  # open side 0's sending chain: the burst then has no DH step
            pair.decrypt(1, pair.encrypt(0, MESSAGE))

        def run() -> None:
            for pair in pairs:
                sent = [pair.encrypt(0, MESSAGE) for _ in range(length)]
                if reverse:
                    sent.reverse()
                for message in sent:
                    pair.decrypt(1, message)

        return run

    return Workload(key, prepare, ops=length)
