"""The video view of ``e2ee demo --video DIR`` (spec/video.md).

Each call member sends a generated moving test picture encoded with a real
codec (``picture``, ``codec``); the demo encrypts, relays and decrypts the
encoded frames as it does any frame; ``call_view`` decodes what each member
decrypted, tries the same decoder on what the relay forwarded, and writes
contact sheets (``sheet``) and a page (``page``) into DIR.

The view needs the optional ``video`` extra (PyAV and Pillow). Nothing here
imports them until it is used, so ``available()`` can be asked first.
"""

from __future__ import annotations

import importlib.util
from typing import Final

INSTALL_HINT: Final = "python -m pip install -e '.[video]'"


def available() -> bool:
    """Whether PyAV and Pillow, the ``video`` extra, are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("av", "PIL"))


def hint() -> str:
    """The line a demo without ``--video`` ends with: how to see the call."""
    install = "" if available() else f", after {INSTALL_HINT}"
    return f"video view: e2ee demo --video DIR (real video; open DIR/index.html{install})"
