"""Contact sheets: what each member saw of the call over time, beside what the relay had.

Implements the pictures of spec/video.md §3. A sheet has one row per sender
and one column per sampled moment of media time; the moments of the leave
and the join are marked. A member's cell is the picture it decoded, a
"refused" tile where it was handed a frame it was not entitled to and could
not decrypt it, or blank where it got nothing (not in the call). The relay's
sheet shows, for the same moments, the encrypted frame it forwarded drawn
byte by byte as grey levels, marked "not decodable" when its decoder got no
picture out of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageDraw, ImageFont

from protocol.video.picture import FPS, HEIGHT, WIDTH

THUMB: Final = (WIDTH // 4, HEIGHT // 4)
_LABEL_W: Final = 90
_HEAD_H: Final = 40
_GAP: Final = 4
_PAPER: Final = (255, 255, 255)
_INK: Final = (20, 20, 20)
_MARK: Final = (200, 30, 30)


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: a picture, or a word on a tinted tile ("refused", "not decodable")."""

    picture: Image.Image | None = None
    word: str = ""
    tint: tuple[int, int, int] = (235, 235, 235)


@dataclass(frozen=True, slots=True)
class Event:
    """A moment to mark on the sheet: the leave or the join."""

    tick: int
    label: str


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def ciphertext_picture(data: bytes) -> Image.Image:
    """An encrypted frame drawn as a thumbnail: each byte one grey pixel, row by row."""
    size = THUMB[0] * THUMB[1]
    raw = (data * (size // max(len(data), 1) + 1))[:size] if data else bytes(size)
    return Image.frombytes("L", THUMB, raw).convert("RGB")


def _tile(cell: Cell) -> Image.Image:
    if cell.picture is not None:
        tile = cell.picture.resize(THUMB)
    else:
        tile = Image.new("RGB", THUMB, cell.tint)
    if cell.word:
        draw = ImageDraw.Draw(tile)
        font = _font(16)
        box = draw.textbbox((0, 0), cell.word, font=font)
        x, y = (THUMB[0] - box[2]) // 2, (THUMB[1] - box[3]) // 2
        draw.rectangle((x - 4, y - 2, x + box[2] + 4, y + box[3] + 4), fill=_PAPER)
        draw.text((x, y), cell.word, font=font, fill=_MARK)
    return tile


def contact_sheet(
    title: str,
    senders: Sequence[str],
    ticks: Sequence[int],
    cells: dict[tuple[str, int], Cell],
    events: Sequence[Event],
) -> Image.Image:
    """The grid of ``cells`` (keyed by sender and tick), with ``events`` marked between columns."""
    columns = len(ticks)
    width = _LABEL_W + columns * (THUMB[0] + _GAP)
    height = 2 * _HEAD_H + len(senders) * (THUMB[1] + _GAP)
    sheet = Image.new("RGB", (width, height), _PAPER)
    draw = ImageDraw.Draw(sheet)
    draw.text((8, 8), title, font=_font(18), fill=_INK)
    for column, tick in enumerate(ticks):
        x = _LABEL_W + column * (THUMB[0] + _GAP)
        draw.text((x, _HEAD_H + 16), f"t={tick / FPS:.1f} s", font=_font(14), fill=_INK)
        for row, sender in enumerate(senders):
            y = 2 * _HEAD_H + row * (THUMB[1] + _GAP)
            sheet.paste(_tile(cells.get((sender, tick), Cell())), (x, y))
    for row, sender in enumerate(senders):
        y = 2 * _HEAD_H + row * (THUMB[1] + _GAP) + THUMB[1] // 2 - 8
        draw.text((8, y), sender, font=_font(14), fill=_INK)
    for event in events:
        before = sum(tick < event.tick for tick in ticks)
        x = _LABEL_W + before * (THUMB[0] + _GAP) - _GAP // 2 - 1
        draw.line((x, _HEAD_H + 2, x, height), fill=_MARK, width=3)
        draw.text((x + 4, _HEAD_H), event.label, font=_font(14), fill=_MARK)
    return sheet


def stack(sheets: Sequence[Image.Image]) -> Image.Image:
    """Sheets one above the other, left-aligned, on white."""
    width = max(sheet.width for sheet in sheets)
    out = Image.new("RGB", (width, sum(sheet.height for sheet in sheets)), _PAPER)
    y = 0
    for sheet in sheets:
        out.paste(sheet, (0, y))
        y += sheet.height
    return out
