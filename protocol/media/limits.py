"""The limits of call key management, in one place (spec/media.md §7).

Every bound the sender and receiver of call keys enforce is a field of
``MediaLimits``, with its trade-off written beside it. ``DEFAULT_MEDIA_LIMITS``
is what a deployment uses; tests and vectors pass smaller values to reach the
boundaries quickly, and the vectors record the values they used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol.errors import InvalidArgument

# RFC 9605 §5.1: KID = (generation << R) | step. R = 8 gives 256 ratchet
# steps per generation (a join costs one step) and 2^56 generations. The
# receiver must know R; every MediaKey carries it.
DEFAULT_R: Final = 8
MIN_R: Final = 1
MAX_R: Final = 16


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Bounds of the call-key state machines (spec/media.md §7)."""

    # Counters remembered per (sender device, KID). RFC 3711 §3.3.2 asks for at
    # least 64; 128 frames is about 4 s of 30 fps video. Larger tolerates more
    # reordering and costs one bit per counter; frames older than the window
    # are refused even if genuine.
    replay_window: int = 128
    # Ratchet steps a receiver derives on its own to reach a frame's KID. Each
    # step is one HKDF; the bound stops a forged KID from costing 2^R HKDFs
    # per frame. Joins are rare, so 16 unseen joins between two frames is
    # already abnormal. Beyond it: LIMIT_EXCEEDED.
    max_catch_up: int = 16
    # Steps of one generation whose frame keys a receiver keeps (the newest and
    # the ones before it), so frames reordered across a join still decrypt.
    # Each kept step is a key that could decrypt older frames: fewer is better
    # forward secrecy, more tolerates longer reordering (RingRTC keeps 5).
    max_retained_steps: int = 5
    # Generations kept per sender: the one in use, the next one delivered
    # ahead of its switch, one replaced before use, and one in its grace
    # period. A new generation beyond this evicts the oldest.
    max_generations: int = 4
    # Seconds a receiver keeps an old generation after the first authenticated
    # frame of a newer one, for frames still in flight (MSC4143's example uses
    # 10 s). Longer helps slow paths; shorter ends the old key's life sooner.
    grace_period: float = 10.0
    # Seconds between distributing a new generation and sending with it, so
    # receivers hold the key first (RingRTC and MSC4143: 5 s). A removed
    # member can decrypt for this long after its removal.
    rotation_delay: float = 5.0
    # Counters a sender reserves at once; the reservation is persisted before
    # any counter in it is used. Larger means fewer writes; a restart skips
    # the unused rest of the block, which costs nothing in a 2^64 space.
    reservation_block: int = 1024
    # Frames held while their key has not arrived yet (RFC 9605 §4.4.4 MAY
    # buffer). They are unauthenticated, so the buffer is small and drops its
    # oldest entry when full; about 2 s of one 30 fps video sender.
    max_buffered_frames: int = 64

    def __post_init__(self) -> None:
        counts = (
            self.replay_window,
            self.max_catch_up,
            self.max_retained_steps,
            self.max_generations,
            self.reservation_block,
        )
        if any(not isinstance(v, int) or v < 1 for v in counts) or self.max_buffered_frames < 0:
            raise InvalidArgument("media limits must be positive integers")
        if self.grace_period < 0 or self.rotation_delay < 0:
            raise InvalidArgument("media time limits must not be negative")


DEFAULT_MEDIA_LIMITS: Final = MediaLimits()
