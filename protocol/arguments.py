"""Argument types of the ``e2ee`` command line: wrong usage is refused while parsing.

No spec/ section: each function is an argparse ``type=`` that returns the
parsed value or raises ``argparse.ArgumentTypeError`` with one sentence,
which ``protocol.cli`` prints as one line before exiting with status 2,
before anything has been run or written.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def positive_int(text: str) -> int:
    """A whole number of at least 1 (rounds, messages)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def output_folder(text: str) -> Path:
    """A folder to write into: it may not exist yet, but it may not be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{parent} is a file, so {text} cannot be a folder")
    return path


def existing_folder(text: str) -> Path:
    """A folder that must already exist (one to read)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"folder {text} does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return path


def output_file(text: str) -> Path:
    """A file to write: its folder must exist, and it may not be a folder itself."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {path.parent} does not exist")
    return path
