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


def add_worker(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "worker",
        help="run jobs from a database until SIGTERM (a worker process for servers)",
        description=(
            "Claim and execute runs of the given job modules. Run as many worker processes "
            "on one PostgreSQL database as you like. SIGTERM or SIGINT stops claiming, lets "
            "runs in flight finish for --shutdown-timeout seconds and hands the rest back."
        ),
    )
    parser.add_argument(
        "--database",
        required=True,
        help="postgresql://user@host:5432/db (or a SQLite file path for one process)",
    )
    parser.add_argument(
        "--jobs",
        required=True,
        action="append",
        metavar="MODULE",
        help="module defining jobs, e.g. myapp.jobs (repeat for several)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="runs executed at once (default: 1)"
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="seconds runs in flight get to finish on SIGTERM (default: 30)",
    )
    parser.add_argument(
        "--lease-ms", type=int, default=30_000, help="lease length (default: 30000)"
    )
    parser.add_argument(
        "--lease-renew-interval-ms",
        type=int,
        default=5_000,
        help="how often a lease is renewed (default: 5000)",
    )
    parser.add_argument(
        "--polling-interval-ms",
        type=int,
        default=1_000,
        help="fallback poll; triggers wake workers at once on PostgreSQL (default: 1000)",
    )
    parser.add_argument(
        "--max-stalled-attempts",
        type=int,
        default=3,
        help="claims in a row without a finished step before a run fails (default: 3)",
    )
    parser.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    parser.set_defaults(run=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from durably.worker_process import run_worker as run

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    sys.path.insert(0, ".")  # job modules next to where the worker is started
    asyncio.run(
        run(
            args.database,
            args.jobs,
            concurrency=args.concurrency,
            shutdown_timeout=args.shutdown_timeout,
            polling_interval_ms=args.polling_interval_ms,
            lease_ms=args.lease_ms,
            lease_renew_interval_ms=args.lease_renew_interval_ms,
            max_stalled_attempts=args.max_stalled_attempts,
        )
    )
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
    add_worker(commands)
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
    except ValueError as error:  # a bad option value (create_durably checks them)
        print(f"durably: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. the port is already taken
        print(f"durably: {error}", file=sys.stderr)
        return 1
    return status


def console_main() -> None:
    """The ``durably`` console script."""
    sys.exit(main())
