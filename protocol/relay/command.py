"""The ``e2ee relay`` subcommand (spec/relay.md §8)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def _relay(args: argparse.Namespace) -> int:
    from protocol.relay.harness import serve_until_signalled
    from protocol.relay.server import require_loopback

    require_loopback(args.host)
    asyncio.run(serve_until_signalled(args.db, args.host, args.port, args.capture))
    return 0


def register(commands: Any) -> None:
    """Add ``relay`` to the ``e2ee`` parser's subparsers."""
    relay = commands.add_parser("relay", help="run the untrusted relay on loopback")
    relay.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    relay.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    relay.add_argument("--db", required=True, help="SQLite database file")
    relay.add_argument("--capture", help="record every byte to this capture file")
    relay.set_defaults(func=_relay)
