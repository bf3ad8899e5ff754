"""The ``e2ee demo`` subcommand (spec/relay.md §8).

Wrong usage (a call of no time, a negative or endless one, more than
``MAX_SECONDS``) is refused before anything runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Final

from protocol.arguments import output_file, output_folder
from protocol.profiles import ALL_PROFILES, PQ_DEFAULT, get_profile

# Every frame is kept for the entitlement check: ten minutes is about 60,000.
MAX_SECONDS: Final = 600.0


def call_seconds(text: str) -> float:
    """The call's media time: more than 0, at most ``MAX_SECONDS``."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"the call lasts more than 0 and at most {MAX_SECONDS:.0f} seconds, not {text}"
        )
    return seconds


def _demo(args: argparse.Namespace) -> int:
    """``e2ee demo``: exit 0 only if every entitled frame decrypted and no other did."""
    from protocol import video
    from protocol.demo.run import DemoOptions, run_demo
    from protocol.demo.summary import summary

    media = None
    if args.video is not None:
        if not video.available():
            print(f"e2ee demo: --video needs the extra: {video.INSTALL_HINT}", file=sys.stderr)
            return 2
        from protocol.video.call_view import VideoCall
        from protocol.video.codec import CODECS

        media = VideoCall(CODECS[args.video_codec])
    options = DemoOptions(
        seconds=args.seconds,
        realtime=args.realtime,
        capture=args.capture,
        secrets_out=args.secrets_out,
        seed=args.seed,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        media=media,
        profile=get_profile(args.profile),
    )
    report = asyncio.run(run_demo(options))
    text = summary(report, options)
    print(text)
    if media is None:
        print(video.hint())
        return 0 if report.ok else 1
    print(media.finish(args.video, report.entitlement.refused, text))
    return 0 if report.ok and media.ok else 1


def register(commands: Any) -> None:
    """Add ``demo`` to the ``e2ee`` parser's subparsers."""
    demo = commands.add_parser("demo", help="messages and a group call through a relay")
    demo.add_argument(
        "--seconds", type=call_seconds, default=4.0, help="call length (media time, seconds)"
    )
    demo.add_argument("--realtime", action="store_true", help="send frames at 30 per second")
    demo.add_argument(
        "--capture",
        type=output_file,
        help="keep the relay's capture in this file, for e2ee audit (default: removed)",
    )
    demo.add_argument(
        "--secrets-out",
        type=output_file,
        help="write every key and plaintext here for the audit (mode 0600; keep it private)",
    )
    demo.add_argument(
        "--profile",
        choices=sorted(ALL_PROFILES),
        default=PQ_DEFAULT.name,
        help="the devices' session profile (default pq-default)",
    )
    demo.add_argument(
        "--seed", type=bytes.fromhex, help="hex seed: deterministic keys (never for real use)"
    )
    demo.add_argument(
        "--video",
        metavar="DIR",
        type=output_folder,
        help="send real video (the 'video' extra) and write what each member and the relay "
        "saw into DIR (open DIR/index.html)",
    )
    demo.add_argument(
        "--video-codec", choices=("h264", "vp8"), default="h264", help="codec for --video"
    )
    demo.set_defaults(func=_demo)
