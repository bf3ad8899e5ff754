"""The receiver's sliding replay window for SFrame counters (spec/media.md §6.2).

RFC 9605 §9.3 leaves anti-replay to the application and suggests RFC 3711
§3.3.2's window with CTR as the index. A window remembers the highest
authenticated counter and, as a bitmap, which of the ``size - 1`` counters
below it were seen. A counter is acceptable if it is above the highest, or
inside the window and unseen; everything else is a replay.

The check and the update are separate on purpose: ``check`` is read-only and
runs before decryption, ``record`` runs only after the AEAD has authenticated
the frame (the ``sframe`` crate's bugs #95 and #113 moved the window on
unauthenticated frames).
"""

from __future__ import annotations

from typing import NamedTuple

from protocol.errors import FrameReplay


class ReplayWindow(NamedTuple):
    """Seen counters of one (sender device, KID): the highest and a bitmap below it.

    Bit ``i`` of ``seen`` is set when counter ``highest - i`` was authenticated;
    bit 0 is ``highest`` itself. ``highest`` is None before the first frame.
    An immutable tuple: it is rebuilt for every frame, and a tuple is the
    cheapest immutable record Python has.
    """

    size: int
    highest: int | None = None
    seen: int = 0

    def check(self, ctr: int) -> None:
        """Raise FrameReplay if ``ctr`` was seen or lies below the window (read-only)."""
        if self.highest is None or ctr > self.highest:
            return
        offset = self.highest - ctr
        if offset >= self.size:
            raise FrameReplay(f"counter is {offset} below the highest, window is {self.size}")
        if self.seen >> offset & 1:
            raise FrameReplay("counter was already received")

    def record(self, ctr: int) -> ReplayWindow:
        """The window after an authenticated frame with counter ``ctr``.

        Callers ``check`` first; recording an unacceptable counter is a bug.
        """
        mask = (1 << self.size) - 1
        if self.highest is None:
            return ReplayWindow(self.size, ctr, 1)
        if ctr > self.highest:
            shifted = self.seen << (ctr - self.highest) if ctr - self.highest < self.size else 0
            return ReplayWindow(self.size, ctr, (shifted | 1) & mask)
        return ReplayWindow(self.size, self.highest, self.seen | 1 << (self.highest - ctr))
