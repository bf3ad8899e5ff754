"""The ``e2ee bench`` subcommand (README.md "Performance")."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add ``bench`` to the ``e2ee`` subcommands (``commands`` is argparse's subparsers)."""
    bench = commands.add_parser(
        "bench",
        help="benchmark against the primitive floor and peer libraries",
        description="Benchmarks: medians per operation, ratios to the pyca primitive floor, "
        "peers side by side (install the 'bench' extra), memory, targets met or not.",
    )
    bench.add_argument(
        "--quick", action="store_true", help="fewer, shorter rounds (about a minute)"
    )
    bench.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    bench.add_argument(
        "--plot",
        metavar="FILE",
        help="write an SVG of key distribution cost against group size (2 to 256 devices)",
    )
    bench.add_argument("--repeats", type=int, help="rounds per row (default 11, quick 5)")
    bench.add_argument(
        "--memory-messages",
        type=int,
        help="messages for the retained-memory figure (default 100,000, quick 10,000)",
    )
    bench.add_argument("--no-peers", action="store_true", help="skip the peer libraries")
    bench.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from protocol.bench import FULL, QUICK, plot_key_distribution, run
    from protocol.bench.report import render_text, to_json

    config = QUICK if args.quick else FULL
    changes: dict[str, Any] = {"with_peers": not args.no_peers}
    if args.repeats is not None:
        changes["repeats"] = max(1, args.repeats)
    if args.memory_messages is not None:
        changes["memory_messages"] = max(1, args.memory_messages)
    config = dataclasses.replace(config, **changes)
    report = run(config)
    if args.json:
        json.dump(to_json(report), sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        print(render_text(report))
    if args.plot:
        plot_key_distribution(config, Path(args.plot))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
