"""The picture each call member sends, and how far a decoded one is from it (spec/video.md §2).

A picture is a pure function of the member's name and the frame number, so
the sender, every receiver and the tests draw the same one: a background
colour of the member's own (from SHA-256 of its name), its name and the
frame number in large type, a bar that sweeps across and a disc that swings,
so that consecutive frames differ and a codec has motion to encode.
"""

from __future__ import annotations

import hashlib
import math
from functools import cache
from typing import Final

from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageStat

WIDTH: Final = 640
HEIGHT: Final = 360
FPS: Final = 30
WHITE: Final = (255, 255, 255)
BLACK: Final = (0, 0, 0)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def background(name: str) -> tuple[int, int, int]:
    """The member's colour: mid-dark, so white type stays readable."""
    digest = hashlib.sha256(name.encode()).digest()
    red, green, blue = (30 + byte // 2 for byte in digest[:3])
    return red, green, blue


def call_picture(name: str, tick: int) -> Image.Image:
    """The picture ``name`` sends as frame ``tick`` (RGB, WIDTH x HEIGHT)."""
    picture = Image.new("RGB", (WIDTH, HEIGHT), background(name))
    draw = ImageDraw.Draw(picture)
    bar = (tick * 8) % (WIDTH + 80) - 80
    draw.rectangle((bar, 0, bar + 80, HEIGHT), fill=(240, 240, 240))
    swing = int(100 * math.sin(tick / 10))
    centre = WIDTH // 2 + swing
    draw.ellipse((centre - 60, 200, centre + 60, 320), fill=(250, 200, 0))
    caption = f"frame {tick}  t={tick / FPS:.2f} s"
    for position, text, size in (((24, 24), name, 64), ((24, 110), caption, 28)):
        draw.text(position, text, font=_font(size), fill=WHITE, stroke_width=2, stroke_fill=BLACK)
    return picture


def picture_error(decoded: Image.Image, sent: Image.Image) -> float:
    """Mean absolute difference per RGB channel value (0-255) between two pictures."""
    difference = ImageChops.difference(decoded.convert("RGB"), sent)
    channels = ImageStat.Stat(difference).mean
    return float(sum(channels) / len(channels))
