"""The relay's side of the video call: its decoders on what it forwarded (spec/video.md §4).

The relay has every frame it forwarded, and the SFrame header of each is in
the clear (RFC 9605 §9.2): the best it can do is feed what follows the
header, in order, to a video decoder per sender, as a receiver would.
``decode_streams`` does exactly that; the demo (``call_view``) and the
audit (over a capture) both use it, and neither must see a picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from protocol.errors import ProtocolError
from protocol.media.sframe import decode_header
from protocol.video.codec import CODECS, CodecSpec, Decoder


@dataclass(frozen=True, slots=True)
class StreamAttempt:
    """Per frame of one sender's stream, in order: whether the decoder got a picture."""

    sender: str
    decoded: tuple[bool, ...]


def sframe_payload(frame: bytes) -> bytes:
    """What follows the SFrame header, or the whole frame if it has none."""
    try:
        return frame[decode_header(frame)[2] :]
    except ProtocolError:
        return frame


def decode_streams(streams: Mapping[str, Sequence[bytes]], spec: CodecSpec) -> list[StreamAttempt]:
    """Feed each sender's forwarded frames, in order, to a fresh ``spec`` decoder."""
    attempts = []
    for sender, frames in streams.items():
        decoder = Decoder(spec)
        decoded = tuple(decoder.decode(sframe_payload(frame)) is not None for frame in frames)
        attempts.append(StreamAttempt(sender, decoded))
    return attempts


def decoded_count(attempts: Iterable[StreamAttempt]) -> int:
    return sum(sum(attempt.decoded) for attempt in attempts)


def try_codecs(streams: Mapping[str, Sequence[bytes]]) -> list[tuple[str, int, int]]:
    """(codec, frames decoded, frames tried) for every codec the view knows (``e2ee audit``)."""
    total = sum(len(frames) for frames in streams.values())
    return [
        (spec.name, decoded_count(decode_streams(streams, spec)), total) for spec in CODECS.values()
    ]
