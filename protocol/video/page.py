"""The page of ``e2ee demo --video DIR``: the numbers, then each member's sheet (spec/video.md §3).

One static HTML file, ``index.html``, beside the sheets, with no script and
nothing fetched from elsewhere, so it opens from the folder in any browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protocol.video.call_view import VideoCall

_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}img{max-width:100%;border:1px solid #ccc}"
    "pre{background:#f4f4f4;padding:1em}"
)


def _member_rows(call: VideoCall, refused: Mapping[str, int]) -> list[str]:
    rows = []
    for name, seen in sorted(call.members.items()):
        cells = (
            name,
            seen.decoded,
            refused.get(name, 0),
            seen.undecodable + seen.unknown,
            f"{seen.worst_error:.2f}",
            "yes" if seen.ok else "NO",
        )
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return rows


def write_page(
    folder: Path,
    call: VideoCall,
    sheets: Mapping[str, str],
    refused: Mapping[str, int],
    summary: str,
) -> Path:
    """Write ``index.html`` in ``folder`` and return its path (``refused``: count per member)."""
    from protocol.video.call_view import TOLERANCE

    relay = call.relay
    verdict = "OK" if call.ok else "FAILED"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>e2ee demo: the video call</title><style>{_STYLE}</style></head><body>",
        f"<h1>The video call through an untrusted relay: {verdict}</h1>",
        f"<p>Each member sent its own test picture as {escape(call.spec.name)} video; "
        "every frame was SFrame-encrypted, sent through the relay and decrypted by the "
        "members entitled to it, who decoded it.</p>",
        "<h2>Members</h2><table><tr><th>member</th><th>frames decoded</th>"
        "<th>refused (not entitled)</th>"
        "<th>decrypted but not decodable</th>"
        f"<th>worst mean error (0-255; at most {TOLERANCE:g})</th><th>as sent</th></tr>",
        *_member_rows(call, refused),
        "</table>",
        "<h2>The relay</h2>",
        f"<p>The senders gave the relay {relay.forwarded} frames to forward. Fed in order "
        f"to the same {escape(call.spec.name)} decoder, one stream per sender, "
        f"<strong>{relay.decoded} decoded</strong>. The control: the same decoder "
        f"decoded {relay.control_decoded} of the {relay.control_frames} frames the senders "
        "encoded, before encryption.</p>",
        "<h2>What each member saw</h2>",
        "<p>Per member, top: the pictures it decoded over media time, or <em>refused</em> "
        "where it was handed a frame it was not entitled to (the leaver after it left, "
        "the joiner before it joined) and could not decrypt it; blank where it received "
        "nothing. Bottom: what the relay had of the same frames, drawn byte by byte.</p>",
    ]
    for member, image in sorted(sheets.items()):
        parts.append(f"<h3>{escape(member)}</h3><img src='{escape(image)}' alt='{escape(member)}'>")
    parts += ["<h2>The demo's summary</h2>", f"<pre>{escape(summary)}</pre>", "</body></html>"]
    page = folder / "index.html"
    page.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return page
