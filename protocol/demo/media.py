"""Where a call member's frames come from, and who sees them decrypted (spec/relay.md §8).

The demo's call SFrame-encrypts whatever a ``CallMedia`` gives it as a
member's frame, and tells it every frame a member decrypted. The default,
``SyntheticMedia``, is random bytes of a video's sizes; ``e2ee demo
--video DIR`` passes the encoded pictures of ``protocol.video.call_view``
instead, which decodes what members decrypted and what the relay forwarded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

from protocol.randomness import Random

FPS: Final = 30


class CallMedia(Protocol):
    """The frames of a call, and the witness of their delivery."""

    def frame(self, sender: str, tick: int, receivers: Sequence[str], rng: Random) -> bytes:
        """The plaintext frame ``sender`` sends at ``tick`` to the members ``receivers``."""
        ...

    def decrypted(self, receiver: str, sender: str, plaintext: bytes) -> None:
        """``receiver`` decrypted ``plaintext``, a frame of ``sender``'s."""
        ...

    def relay_capture(self, capture: Path) -> None:
        """The relay's capture of the call, before the demo removes it."""
        ...


class SyntheticMedia:
    """Random frames of a video's sizes: key frames of 30-50 KB once a second, deltas of 1-8 KB.

    Each frame starts with the sender's id and the tick, so that no two are
    equal; the rest is drawn from the sender's randomness (``demo_frame``).
    """

    def frame(self, sender: str, tick: int, receivers: Sequence[str], rng: Random) -> bytes:
        key_frame = tick % FPS == 0
        size = 30_000 + (tick * 7919) % 20_000 if key_frame else 1_000 + (tick * 104_729) % 7_000
        return sender.encode() + tick.to_bytes(4, "big") + rng.draw("demo_frame", size)

    def decrypted(self, receiver: str, sender: str, plaintext: bytes) -> None:
        """Nothing to do: the call itself checks each frame against what was sent."""

    def relay_capture(self, capture: Path) -> None:
        """Nothing to do."""
