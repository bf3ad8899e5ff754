"""``e2ee bench --plot FILE``: key-distribution cost against group size, as a hand-written SVG.

The figure has group size (devices) across and milliseconds per key
distribution up, both on log scales, so a cost linear in the group size is
a straight line of slope one; one line per series (ours and its floor).
Only the standard library is used, so the plot works on a fresh install.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Final

_WIDTH: Final = 640
_HEIGHT: Final = 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 40, 50
_COLOURS: Final = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    points: Sequence[tuple[int, float]]  # (devices, milliseconds)


def _scales(series: Sequence[Series]) -> tuple[float, float, int, int]:
    """log2 of the smallest and largest group size; the decades spanned by the costs."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if y > 0] or [1.0]
    low, high = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    return math.log2(min(xs)), math.log2(max(xs)), low, max(high, low + 1)


def _polyline(points: Sequence[tuple[float, float]], colour: str) -> str:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>{dots}'


def render_svg(title: str, series: Sequence[Series]) -> str:
    """An SVG document plotting every series against the same axes."""
    x_low, x_high, decade_low, decade_high = _scales(series)
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def place(devices: int, millis: float) -> tuple[float, float]:
        x = _LEFT + (math.log2(devices) - x_low) / ((x_high - x_low) or 1.0) * plot_w
        y_fraction = (math.log10(max(millis, 1e-9)) - decade_low) / (decade_high - decade_low)
        return x, _TOP + plot_h - y_fraction * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
        f'<text x="{_WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" '
        'stroke="black"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="black"/>',
    ]
    for devices, _ in series[0].points:
        x, _ = place(devices, 0)
        parts.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">{devices}</text>'
        )
    for decade in range(decade_low, decade_high + 1):
        millis = 10.0**decade
        _, y = place(2, millis)
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{millis:g}</text>')
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
        )
    parts.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_HEIGHT - 10}" text-anchor="middle">'
        "devices in the call</text>"
    )
    parts.append(
        f'<text transform="translate(16 {_TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        "ms per key distribution (log scale)</text>"
    )
    for index, one in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        parts.append(_polyline([place(x, y) for x, y in one.points], colour))
        legend_y = _TOP + 10 + 16 * index
        parts.append(
            f'<rect x="{_LEFT + 12}" y="{legend_y - 9}" width="12" height="3" fill="{colour}"/>'
            f'<text x="{_LEFT + 30}" y="{legend_y - 4}">{escape(one.label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_svg(path: Path, title: str, series: Sequence[Series]) -> None:
    path.write_text(render_svg(title, series), encoding="utf-8")
