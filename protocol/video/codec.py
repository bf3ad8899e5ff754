"""A real video codec for the call's pictures: H.264 or VP8 through PyAV (spec/video.md §2).

``Encoder`` turns each picture into one encoded frame (one access unit),
as a real-time call sends it: no frames held back for look-ahead, a key
frame every ``KEY_INTERVAL`` frames and whenever a new receiver joins.
``Decoder`` keeps the state of one incoming stream; a frame it cannot
decode gives ``None`` instead of an exception. ``count_decodable`` is what
the relay's side tries on what it forwarded.

Note that these are FFmpeg's own encoders and decoders (libx264 and the
native H.264 decoder, libvpx for VP8), as PyAV's wheels ship them; nothing
of the codec is written here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final

import av
import av.error
from av.video.frame import PictureType
from PIL import Image

from protocol.video.picture import FPS, HEIGHT, WIDTH

BIT_RATE: Final = 1_000_000  # bits per second: a typical 360p call
KEY_INTERVAL: Final = 2 * FPS


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """One codec: its name in the report, FFmpeg's encoder and decoder, encoder options."""

    name: str
    encoder: str
    decoder: str
    options: dict[str, str] = field(default_factory=dict)


H264: Final = CodecSpec("H.264", "libx264", "h264", {"preset": "ultrafast", "tune": "zerolatency"})
# One thread: libvpx's threads spin against each other on a busy machine.
VP8: Final = CodecSpec(
    "VP8",
    "libvpx",
    "libvpx",
    {"deadline": "realtime", "cpu-used": "16", "lag-in-frames": "0", "threads": "1"},
)
CODECS: Final = {"h264": H264, "vp8": VP8}


class Encoder:
    """One sender's stream: a picture in, one encoded frame out."""

    def __init__(self, spec: CodecSpec) -> None:
        context = av.CodecContext.create(spec.encoder, "w")
        assert isinstance(context, av.VideoCodecContext)
        context.width, context.height = WIDTH, HEIGHT
        context.pix_fmt = "yuv420p"
        context.time_base = Fraction(1, FPS)
        context.framerate = Fraction(FPS, 1)
        context.bit_rate = BIT_RATE
        context.gop_size = KEY_INTERVAL
        context.options = dict(spec.options)
        context.open()
        self.context = context

    def encode(self, picture: Image.Image, tick: int, key_frame: bool = False) -> bytes:
        """The encoded frame of ``picture``; ``key_frame`` forces one (a receiver joined)."""
        # PyAV's stubs leave from_image and to_image untyped (unused without the extra).
        frame: av.VideoFrame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call, unused-ignore]
        frame.pts = tick
        if key_frame:
            frame.pict_type = PictureType.I
        packets = self.context.encode(frame)
        if len(packets) != 1:
            raise RuntimeError(f"the encoder gave {len(packets)} packets for one picture")
        return bytes(packets[0])


class Decoder:
    """One incoming stream: encoded frames in order, pictures out."""

    def __init__(self, spec: CodecSpec) -> None:
        context = av.CodecContext.create(spec.decoder, "r")
        assert isinstance(context, av.VideoCodecContext)
        self.context = context

    def decode(self, data: bytes) -> Image.Image | None:
        """The picture in ``data``, or None if the decoder finds none."""
        try:
            frames = self.context.decode(av.Packet(data))
        except av.error.FFmpegError:
            return None
        if not frames:
            return None
        picture: Image.Image = frames[-1].to_image()  # type: ignore[no-untyped-call, unused-ignore]
        return picture


def count_decodable(stream: Iterable[bytes], spec: CodecSpec) -> int:
    """How many of the frames of one stream, fed in order to one decoder, give a picture."""
    decoder = Decoder(spec)
    return sum(decoder.decode(data) is not None for data in stream)
