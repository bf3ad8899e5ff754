"""Progress of long commands on stderr (``e2ee bench``, ``e2ee vectors``, ``e2ee audit``).

No spec/ section: this is the command line's courtesy, never part of a
result. A ``Progress`` is called with (done, total) after each step of a
known number of steps. ``StderrProgress`` rewrites one line in place on a
terminal and, when stderr is a file or a pipe (CI logs), writes a line only
at every tenth of the way, so a log stays short.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

Progress = Callable[[int, int], None]


def silent(done: int, total: int) -> None:
    """The progress of a caller that wants none (``--json``, the library API)."""


class StderrProgress:
    """``label: done/total what`` on stderr, in place on a terminal, by tenths otherwise."""

    def __init__(self, label: str, what: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.what = what
        self.stream = sys.stderr if stream is None else stream
        self.in_place = self.stream.isatty()
        self.tenths_shown = -1

    def __call__(self, done: int, total: int) -> None:
        line = f"{self.label}: {done}/{total} {self.what}"
        if self.in_place:
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{line}\x1b[K{end}")
        else:
            tenths = 10 * done // max(total, 1)
            if tenths == self.tenths_shown:
                return
            self.tenths_shown = tenths
            self.stream.write(line + "\n")
        self.stream.flush()
