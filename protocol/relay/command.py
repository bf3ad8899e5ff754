"""The ``e2ee relay`` subcommand (spec/relay.md §8).

Wrong usage is refused before anything is opened or written: a port outside
0-65535, an address that is not loopback, a database in a missing folder or
a file that is not an SQLite database. A port already in use is reported in
one line, and no database file is made by the attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, Final

from protocol.arguments import output_file

SQLITE_HEADER: Final = b"SQLite format 3\x00"


def port_number(text: str) -> int:
    """A TCP port, 0-65535 (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not in 0-65535")
    return port


def loopback_host(text: str) -> str:
    """A loopback address: the relay speaks plain TCP (spec/relay.md §1)."""
    from protocol.errors import AccessDenied
    from protocol.relay.server import require_loopback

    try:
        return require_loopback(text)
    except AccessDenied:
        raise argparse.ArgumentTypeError(f"{text} is not a loopback address") from None


def database_file(text: str) -> Path:
    """An SQLite database to open or create, in a folder that exists."""
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {path.parent} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a database file")
    if path.exists():
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
        if header and header != SQLITE_HEADER:
            raise argparse.ArgumentTypeError(f"{text} is not an SQLite database")
    return path


def _relay(args: argparse.Namespace) -> int:
    from protocol.errors import ProtocolError
    from protocol.relay.harness import serve_until_signalled

    try:
        asyncio.run(serve_until_signalled(args.db, args.host, args.port, args.capture))
    except OSError as error:
        print(f"e2ee relay: cannot listen on {args.host}:{args.port}: {error.strerror}",
              file=sys.stderr)  # fmt: skip
        return 2
    except ProtocolError as error:
        print(f"e2ee relay: cannot use the database {args.db}: {error}", file=sys.stderr)
        return 2
    return 0


def register(commands: Any) -> None:
    """Add ``relay`` to the ``e2ee`` parser's subparsers."""
    relay = commands.add_parser("relay", help="run the untrusted relay on loopback")
    relay.add_argument(
        "--host", type=loopback_host, default="127.0.0.1", help="loopback address to bind"
    )
    relay.add_argument("--port", type=port_number, default=0, help="TCP port (0: any free port)")
    relay.add_argument("--db", type=database_file, required=True, help="SQLite database file")
    relay.add_argument("--capture", type=output_file, help="record every byte to this capture file")
    relay.set_defaults(func=_relay)
