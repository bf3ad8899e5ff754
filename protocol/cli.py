"""The ``e2ee`` command line: vectors, demo, relay, audit, bench."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from protocol.arguments import existing_folder, output_folder
from protocol.progress import StderrProgress


class _Parser(argparse.ArgumentParser):
    """Wrong usage is one line on stderr and exit status 2, without the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _vectors_generate(args: argparse.Namespace) -> int:
    from protocol.vectors import generate_all

    try:
        written = generate_all(args.out, StderrProgress("vectors generate", "families"))
    except OSError as error:
        print(f"e2ee vectors generate: cannot write {args.out}: {error.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def _vectors_verify(args: argparse.Namespace) -> int:
    from protocol.vectors import verify_all

    failures = verify_all(args.folder, StderrProgress("vectors verify", "files"))
    for line in failures:
        print(f"FAIL {line}")
    if failures:
        print(f"{len(failures)} failures")
        return 1
    print(f"all vectors in {args.folder} verify")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="e2ee", description="End-to-end encryption reference implementation")
    commands = parser.add_subparsers(dest="command", required=True)

    vectors = commands.add_parser("vectors", help="generate or verify test vectors")
    vector_commands = vectors.add_subparsers(dest="vectors_command", required=True)
    generate = vector_commands.add_parser("generate", help="write every vector file")
    generate.add_argument(
        "--out", required=True, type=output_folder, help="output folder (made if missing)"
    )
    generate.set_defaults(func=_vectors_generate)
    verify = vector_commands.add_parser("verify", help="check vector files against the library")
    verify.add_argument("folder", type=existing_folder, help="folder holding index.json")
    verify.set_defaults(func=_vectors_verify)

    from protocol.audit.command import register as register_audit_command
    from protocol.demo.command import register as register_demo_command
    from protocol.relay.command import register as register_relay_command

    register_relay_command(commands)
    register_demo_command(commands)
    register_audit_command(commands)

    from protocol.bench.command import register as register_bench_command

    register_bench_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
