"""Labelled randomness (spec/profiles.md §4).

Every random value the library uses is drawn through a ``Random`` passed in
by the caller: ``rng.draw("ratchet_key", 32)``. A draw has a label and a
length, so an auditor sees exactly which randomness an operation consumed,
and the test vectors can record every random byte and replay it.

Sources:

* ``SystemRandom``: the operating system's CSPRNG; the default everywhere.
* ``ScriptedRandom``: replays a recorded list of ``(label, bytes)`` and fails
  loudly when a label or length differs or the list runs out.
* ``DrbgRandom``: a deterministic generator for vectors and benchmarks,
  SHAKE-128 over a seed, a counter, the label and the length (byte layout:
  spec/vectors.md §2). Never for
  production keys: anyone with the seed has every key.
* ``RecordingRandom``: wraps another source and records what it handed out,
  which is how the vector generator fills the ``entropy`` lists.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import Protocol

from cryptography.hazmat.primitives import hashes

from protocol.errors import InvalidArgument

_DRBG_DOMAIN = b"e2ee-reference DRBG v1"


class Random(Protocol):
    """A source of labelled random bytes."""

    def draw(self, label: str, length: int) -> bytes:
        """Return ``length`` random bytes for the purpose named by ``label``."""
        ...


def _check_request(label: str, length: int) -> None:
    if not isinstance(label, str) or not label:
        raise InvalidArgument("a draw needs a non-empty label")
    if not isinstance(length, int) or length <= 0:
        raise InvalidArgument("a draw needs a positive length")


class SystemRandom:
    """The operating system's CSPRNG (``os.urandom``)."""

    def draw(self, label: str, length: int) -> bytes:
        _check_request(label, length)
        return os.urandom(length)

    def __repr__(self) -> str:
        return "SystemRandom()"


class ScriptedRandom:
    """Replays a labelled list of draws; any mismatch is an error."""

    def __init__(self, entries: Iterable[tuple[str, bytes]]) -> None:
        self._entries = [(label, bytes(value)) for label, value in entries]
        self._next = 0

    def draw(self, label: str, length: int) -> bytes:
        _check_request(label, length)
        if self._next >= len(self._entries):
            raise InvalidArgument(f"scripted randomness exhausted at draw {label!r}")
        want_label, value = self._entries[self._next]
        if want_label != label or len(value) != length:
            raise InvalidArgument(
                f"scripted draw {self._next} is {want_label!r}/{len(value)} bytes, "
                f"asked for {label!r}/{length} bytes"
            )
        self._next += 1
        return value

    @property
    def remaining(self) -> int:
        """How many recorded draws have not been consumed yet."""
        return len(self._entries) - self._next

    def assert_exhausted(self) -> None:
        """Raise unless every recorded draw was consumed."""
        if self.remaining:
            label = self._entries[self._next][0]
            raise InvalidArgument(f"{self.remaining} scripted draws unused, next {label!r}")

    def __repr__(self) -> str:
        return f"ScriptedRandom(<{len(self._entries)} draws, {self.remaining} left>)"


class DrbgRandom:
    """Deterministic draws: SHAKE-128(domain ‖ seed ‖ counter ‖ label ‖ length).

    Each draw is independent of the others' lengths, so inserting a draw
    changes only the draws after it. For vectors and benchmarks only.
    """

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or not seed:
            raise InvalidArgument("a DRBG seed must be non-empty bytes")
        self._seed = seed
        self._counter = 0

    def draw(self, label: str, length: int) -> bytes:
        _check_request(label, length)
        encoded_label = label.encode()
        digest = hashes.Hash(hashes.SHAKE128(length))
        digest.update(_DRBG_DOMAIN)
        digest.update(struct.pack(">H", len(self._seed)) + self._seed)
        digest.update(struct.pack(">QH", self._counter, len(encoded_label)) + encoded_label)
        digest.update(struct.pack(">I", length))
        self._counter += 1
        return digest.finalize()

    def __repr__(self) -> str:
        return f"DrbgRandom(<seed redacted>, draws={self._counter})"


class RecordingRandom:
    """Wraps a source and records every ``(label, bytes)`` it hands out."""

    def __init__(self, inner: Random) -> None:
        self._inner = inner
        self.draws: list[tuple[str, bytes]] = []

    def draw(self, label: str, length: int) -> bytes:
        value = self._inner.draw(label, length)
        self.draws.append((label, value))
        return value

    def __repr__(self) -> str:
        return f"RecordingRandom(<{len(self.draws)} draws recorded>)"


SYSTEM_RANDOM = SystemRandom()
