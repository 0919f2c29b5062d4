"""Command line entry point: ``python -m durably <command>``.

A small argparse dispatcher; each subcommand adds its parser in one ``add_*`` function and
runs through one ``run_*`` function, so commands can be added without touching the others.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from durably.errors import DurablyError


def add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the web/ folder (demo, worker, vendored Pyodide) on 127.0.0.1",
        description="Serve the web/ folder for the browser demo and tests.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default: 127.0.0.1, a secure context for OPFS)",
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port to bind; 0 picks a free one (default: 8000)"
    )
    parser.add_argument(
        "--root", type=Path, default=Path("web"), help="folder to serve (default: ./web)"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from durably.serve import serve

    serve(args.root, args.host, args.port, verbose=args.verbose)
    return 0


def add_bundle(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "bundle",
        help="lay out a static site (runtime, Pyodide, wheels, jobs, service worker)",
        description=(
            "Write into OUTDIR everything a static site needs to run durably jobs in the "
            "browser, pinned and hash-checked, plus a service worker that precaches it. "
            "Pyodide's runtime files come from --pyodide, else from a node_modules/pyodide "
            "of the pinned version in this directory or above, else from the npm registry "
            "(checked against the pinned integrity hash, cached in ~/.cache/durably)."
        ),
    )
    parser.add_argument("out_dir", type=Path, metavar="OUTDIR", help="folder to write")
    parser.add_argument(
        "--jobs", type=Path, nargs="+", required=True, metavar="FILE", help="job modules (.py)"
    )
    parser.add_argument(
        "--pyodide", type=Path, metavar="DIR", help="an npm pyodide package of the pinned version"
    )
    parser.add_argument(
        "--wheels",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="reuse pinned wheels found here (hash-checked) instead of downloading them",
    )
    parser.set_defaults(run=run_bundle)


def run_bundle(args: argparse.Namespace) -> int:
    from durably.bundle import bundle

    bundle(args.out_dir, args.jobs, pyodide=args.pyodide, wheels=args.wheels)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m durably", description="Durable, resumable Python jobs."
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_serve(commands)
    add_bundle(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except DurablyError as error:
        print(f"durably: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # e.g. the port is already taken
        print(f"durably: {error}", file=sys.stderr)
        return 1
    return status


def console_main() -> None:
    """The ``durably`` console script."""
    sys.exit(main())
