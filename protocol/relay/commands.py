"""The ``e2ee relay``, ``e2ee demo`` and ``e2ee audit`` subcommands (spec/relay.md §8-§9)."""

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


def _demo(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from protocol.demo import DemoOptions, main

    options = DemoOptions(
        seconds=args.seconds,
        realtime=args.realtime,
        capture=Path(args.capture) if args.capture else None,
        secrets_out=Path(args.secrets_out) if args.secrets_out else None,
        seed=args.seed,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    return main(options)


def _audit(args: argparse.Namespace) -> int:
    from protocol.errors import ProtocolError
    from protocol.relay.audit import audit

    try:
        result = audit(args.capture, args.secrets, samples_per_kind=args.samples)
    except (ProtocolError, OSError) as error:
        print(f"audit: cannot read the capture or secrets: {error}")
        return 2
    print("\n".join(result.report))
    return 0 if result.ok else 1


def register(commands: Any) -> None:
    """Add the relay subcommands to the ``e2ee`` parser's subparsers."""
    relay = commands.add_parser("relay", help="run the untrusted relay on loopback")
    relay.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    relay.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    relay.add_argument("--db", required=True, help="SQLite database file")
    relay.add_argument("--capture", help="record every byte to this capture file")
    relay.set_defaults(func=_relay)

    demo = commands.add_parser("demo", help="messages and a group call through a relay")
    demo.add_argument("--seconds", type=float, default=4.0, help="call length (media time)")
    demo.add_argument("--realtime", action="store_true", help="send frames at 30 per second")
    demo.add_argument("--capture", help="capture file (default: in a temporary folder)")
    demo.add_argument(
        "--secrets-out", help="write every key and plaintext here for the audit (keep it private)"
    )
    demo.add_argument(
        "--seed", type=bytes.fromhex, help="hex seed: deterministic keys (never for real use)"
    )
    demo.set_defaults(func=_demo)

    audit = commands.add_parser(
        "audit", help="what a relay capture reveals, and that it decrypts nothing"
    )
    audit.add_argument("capture", help="capture file written by the relay")
    audit.add_argument("--secrets", help="the demo's --secrets-out dump, to scan the capture for")
    audit.add_argument(
        "--samples", type=int, default=1, help="messages and frames (each) to try every key on"
    )
    audit.set_defaults(func=_audit)
