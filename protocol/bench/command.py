"""The ``e2ee bench`` subcommand (README.md "Performance")."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from protocol.arguments import output_file, positive_int
from protocol.progress import StderrProgress, silent


def register(commands: Any) -> None:
    """Add ``bench`` to the ``e2ee`` subcommands (``commands`` is argparse's subparsers)."""
    bench = commands.add_parser(
        "bench",
        help="benchmark against the primitive floor and peer libraries",
        description="Benchmarks: medians per operation, ratios to the pyca primitive floor, "
        "peers side by side (install the 'bench' extra), memory, targets met or not. "
        "Progress goes to stderr (none with --json).",
    )
    bench.add_argument(
        "--quick", action="store_true", help="fewer, shorter rounds (about a minute)"
    )
    bench.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    bench.add_argument(
        "--plot",
        metavar="FILE",
        type=output_file,
        help="run the benchmark, then measure key distribution for 2 to 256 devices "
        "and write it to FILE as an SVG",
    )
    bench.add_argument(
        "--repeats", type=positive_int, help="rounds per row, at least 1 (default 11, quick 5)"
    )
    bench.add_argument(
        "--memory-messages",
        type=positive_int,
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
        changes["repeats"] = args.repeats
    if args.memory_messages is not None:
        changes["memory_messages"] = args.memory_messages
    config = dataclasses.replace(config, **changes)
    quiet = args.json
    report = run(config, silent if quiet else StderrProgress("bench", "row batches timed"))
    if args.json:
        json.dump(to_json(report), sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        print(render_text(report), flush=True)
    if args.plot:
        sizes = f"{config.plot_sizes[0]} to {config.plot_sizes[-1]}"
        progress = silent if quiet else StderrProgress(f"plot ({sizes} devices)", "group sizes")
        plot_key_distribution(config, args.plot, progress)
        if not quiet:
            print(f"wrote {args.plot}", file=sys.stderr)
    return 0
