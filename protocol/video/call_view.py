"""The video call as the demo runs it with ``--video`` (spec/video.md §2-§4).

``VideoCall`` is the demo's source of frames and its witness of what each
member decrypted (``protocol.demo.media.CallMedia``):

* ``frame`` draws the sender's picture and encodes it: the encoded frame is
  the plaintext the demo SFrame-encrypts and sends through the relay; a key
  frame is forced when the sender gains a receiver (a joiner cannot decode
  from a stream's middle), and the join or leave is noted for the sheets;
* ``decrypted`` decodes what a member decrypted, with one decoder per
  (member, sender) stream, and compares the picture with the one sent;
* ``relay_capture`` feeds every frame the relay forwarded, as the relay
  has it (encrypted), to the same decoder, one stream per sender
  (``relay_view``), and as a control the senders' own encoded frames to a
  fresh decoder;
* ``write`` puts the contact sheets and the page in a folder.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final

from PIL import Image

from protocol.audit.observe import observe
from protocol.randomness import Random
from protocol.video.codec import H264, CodecSpec, Decoder, Encoder, count_decodable
from protocol.video.page import write_page
from protocol.video.picture import FPS, HEIGHT, WIDTH, call_picture, picture_error
from protocol.video.relay_view import decode_streams, decoded_count, sframe_payload
from protocol.video.sheet import THUMB, Cell, Event, ciphertext_picture, contact_sheet, stack

# Largest mean error per channel value (0-255) of a decoded picture against
# the picture sent; at BIT_RATE the codecs stay below 3 on these pictures.
TOLERANCE: Final = 8.0
SAMPLE_EVERY: Final = FPS // 2  # a sheet column every half second of media time


@lru_cache(maxsize=64)
def _sent_picture(sender: str, tick: int) -> Image.Image:
    """The picture (cached: each is encoded once and compared by every receiver)."""
    return call_picture(sender, tick)


@dataclass
class MemberVideo:
    """What one member made of the frames it decrypted."""

    decoded: int = 0
    undecodable: int = 0
    unknown: int = 0  # decrypted bytes that are no frame its sender encoded
    worst_error: float = 0.0
    nearer_to_next: int = 0  # pictures at least as close to the sender's next picture
    thumbnails: dict[tuple[str, int], Image.Image] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.decoded > 0
            and self.undecodable == self.unknown == self.nearer_to_next == 0
            and self.worst_error <= TOLERANCE
        )


@dataclass
class RelayVideo:
    """The relay's attempt on what it forwarded, and the control on the plaintext."""

    forwarded: int = 0
    decoded: int = 0
    control_frames: int = 0
    control_decoded: int = 0
    decodable: dict[tuple[str, int], bool] = field(default_factory=dict)
    samples: dict[tuple[str, int], bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        control = self.control_decoded == self.control_frames > 0
        return self.forwarded > 0 and self.decoded == 0 and control


class VideoCall:
    """Encodes every sender's pictures and checks every member's decoding."""

    def __init__(self, spec: CodecSpec = H264) -> None:
        self.spec = spec
        self._encoders: dict[str, Encoder] = {}
        self._receivers: dict[str, frozenset[str]] = {}
        self._origin: dict[bytes, tuple[str, int]] = {}
        self.streams: dict[str, list[tuple[int, bytes]]] = {}  # sender: (tick, frame) in order
        self._decoders: dict[tuple[str, str], Decoder] = {}
        self.members: dict[str, MemberVideo] = {}
        self.relay = RelayVideo()
        self.events: dict[int, str] = {}  # tick: "dave.1 joins" (after the call has started)

    def frame(self, sender: str, tick: int, receivers: Sequence[str], rng: Random) -> bytes:
        """The encoded frame ``sender`` sends at ``tick`` to ``receivers`` (``rng`` unused)."""
        encoder = self._encoders.setdefault(sender, Encoder(self.spec))
        before = self._receivers.get(sender)
        joined = frozenset(receivers) - (before or frozenset())
        if before is not None:
            self._note(tick, joined, before - frozenset(receivers))
        self._receivers[sender] = frozenset(receivers)
        data = encoder.encode(_sent_picture(sender, tick), tick, key_frame=bool(joined))
        self._origin[hashlib.sha256(data).digest()] = (sender, tick)
        self.streams.setdefault(sender, []).append((tick, data))
        return data

    def _note(self, tick: int, joined: frozenset[str], left: frozenset[str]) -> None:
        if self.streams and tick not in self.events and (joined or left):
            words = [f"{name} joins" for name in sorted(joined)]
            words += [f"{name} leaves" for name in sorted(left)]
            self.events[tick] = ", ".join(words)

    def decrypted(self, receiver: str, sender: str, plaintext: bytes) -> None:
        """Decode a frame ``receiver`` decrypted and compare it with the picture sent."""
        seen = self.members.setdefault(receiver, MemberVideo())
        origin = self._origin.get(hashlib.sha256(plaintext).digest())
        if origin is None or origin[0] != sender:
            seen.unknown += 1
            return
        decoder = self._decoders.setdefault((receiver, sender), Decoder(self.spec))
        picture = decoder.decode(plaintext)
        if picture is None:
            seen.undecodable += 1
            return
        tick = origin[1]
        error = picture_error(picture, _sent_picture(sender, tick))
        seen.decoded += 1
        seen.worst_error = max(seen.worst_error, error)
        if picture_error(picture, _sent_picture(sender, tick + 1)) <= error:
            seen.nearer_to_next += 1
        if tick % SAMPLE_EVERY == 0:
            seen.thumbnails[(sender, tick)] = picture.resize(THUMB)

    def relay_capture(self, capture: Path) -> None:
        """Try the decoder on every frame the relay forwarded (from its capture)."""
        forwarded: dict[str, list[bytes]] = {}
        for media in observe(capture).media:
            sender = f"{media.sender.user}.{media.sender.device}"
            forwarded.setdefault(sender, []).append(media.frame)
        attempts = decode_streams(forwarded, self.spec)
        self.relay.forwarded = sum(len(frames) for frames in forwarded.values())
        self.relay.decoded = decoded_count(attempts)
        for attempt in attempts:
            ticks = [tick for tick, _ in self.streams.get(attempt.sender, [])]
            frames = forwarded[attempt.sender]
            for tick, frame, decoded in zip(ticks, frames, attempt.decoded, strict=False):
                if tick % SAMPLE_EVERY == 0:
                    self.relay.decodable[(attempt.sender, tick)] = decoded
                    self.relay.samples[(attempt.sender, tick)] = frame
        for stream in self.streams.values():
            self.relay.control_frames += len(stream)
            self.relay.control_decoded += count_decodable((data for _, data in stream), self.spec)

    @property
    def ok(self) -> bool:
        return self.relay.ok and bool(self.members) and all(m.ok for m in self.members.values())

    def write(self, folder: Path, refused: Iterable[tuple[str, str, int]], summary: str) -> Path:
        """Write one sheet per member and the page; returns the page's path.

        ``refused`` lists (member, sender, tick) of frames a member was handed
        and could not decrypt.
        """
        folder.mkdir(parents=True, exist_ok=True)
        refusals = set(refused)
        marks = [Event(tick, label) for tick, label in sorted(self.events.items())]
        last = max((tick for stream in self.streams.values() for tick, _ in stream), default=0)
        ticks = list(range(0, last + 1, SAMPLE_EVERY))
        senders = sorted(self.streams)
        sheets: dict[str, str] = {}
        for member in sorted(set(self.members) | {m for m, _, _ in refusals}):
            others = [s for s in senders if s != member]
            seen = self.members.get(member, MemberVideo())
            cells = member_cells(member, seen, refusals, ticks, others)
            mine = contact_sheet(f"what {member} decoded", others, ticks, cells, marks)
            relay = contact_sheet(
                "what the relay forwarded (the same frames, encrypted)",
                others,
                ticks,
                self._relay_cells(),
                marks,
            )
            sheets[member] = f"{member}.png"
            stack([mine, relay]).save(folder / sheets[member])
        counts = Counter(member for member, _, _ in refusals)
        return write_page(folder, self, sheets, counts, summary)

    def finish(self, folder: Path, refused: Iterable[tuple[str, str, int]], summary: str) -> str:
        """Write the view into ``folder``; the lines ``e2ee demo --video`` prints about it."""
        page = self.write(folder, refused, summary)
        decoded = sum(seen.decoded for seen in self.members.values())
        worst = max((seen.worst_error for seen in self.members.values()), default=0.0)
        relay = self.relay
        return "\n".join(
            [
                f"video: {self.spec.name} {WIDTH}x{HEIGHT} at {FPS} fps; members decoded "
                f"{decoded} frames, worst mean error {worst:.2f} (at most {TOLERANCE:g})",
                f"video: the relay's {self.spec.name} decoder decoded {relay.decoded} of the "
                f"{relay.forwarded} frames the senders gave it (control, before encryption: "
                f"{relay.control_decoded} of {relay.control_frames})",
                f"video: {'OK' if self.ok else 'FAILED'}; open {page}",
            ]
        )

    def _relay_cells(self) -> dict[tuple[str, int], Cell]:
        cells = {}
        for key, frame in self.relay.samples.items():
            word = "DECODED" if self.relay.decodable[key] else "not decodable"
            cells[key] = Cell(ciphertext_picture(sframe_payload(frame)), word)
        return cells


def member_cells(
    member: str,
    seen: MemberVideo,
    refusals: set[tuple[str, str, int]],
    ticks: list[int],
    others: list[str],
) -> dict[tuple[str, int], Cell]:
    cells = {key: Cell(picture) for key, picture in seen.thumbnails.items()}
    for sender in others:
        for tick in ticks:
            if (member, sender, tick) in refusals:
                cells[(sender, tick)] = Cell(None, "refused", (250, 215, 215))
    return cells
