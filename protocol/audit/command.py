"""The ``e2ee audit`` subcommand (spec/relay.md §9)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from protocol.profiles import ALL_PROFILES, PQ_DEFAULT


def _audit(args: argparse.Namespace) -> int:
    from protocol.audit.evidence import audit
    from protocol.errors import ProtocolError
    from protocol.profiles import get_profile
    from protocol.progress import StderrProgress

    try:
        progress = StderrProgress("audit", "steps (read the capture, then five parts)")
        result = audit(
            args.capture,
            args.secrets,
            get_profile(args.profile),
            samples_per_kind=args.samples,
            progress=progress,
        )
    except (ProtocolError, OSError) as error:
        print(f"e2ee audit: cannot read the capture or secrets: {error}", file=sys.stderr)
        return 2
    print("\n".join(result.report))
    return 0 if result.ok else 1


def register(commands: Any) -> None:
    """Add ``audit`` to the ``e2ee`` parser's subparsers."""
    audit = commands.add_parser(
        "audit", help="what a relay capture reveals, and that it decrypts nothing"
    )
    audit.add_argument("capture", help="capture file written by the relay")
    audit.add_argument("--secrets", help="the demo's --secrets-out dump, to scan the capture for")
    audit.add_argument(
        "--profile",
        choices=sorted(ALL_PROFILES),
        default=PQ_DEFAULT.name,
        help="the profile of the captured sessions (default pq-default)",
    )
    audit.add_argument(
        "--samples", type=int, default=1, help="messages and frames (each) to try every key on"
    )
    audit.set_defaults(func=_audit)
