"""`python -m bench [--quick] [--only browser|boot|steps|cpython|postgres] [--out FILE]`: run the
benchmarks, print one JSON document and write it to bench/results/latest.json (or FILE)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .browser import run_browser, run_steps
from .cpython import run_cpython
from .pages import QUICK, REPO, Sizes, ratio
from .postgres import run_postgres
from .startup import run_boot


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that it works")
    parser.add_argument(
        "--only",
        choices=["browser", "boot", "steps", "cpython", "postgres"],
        help="boot: the start-up figures only; steps: the browser's step figures only",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "loadAverageBefore": [round(x, 2) for x in os.getloadavg()],
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "sizes": sizes.__dict__,
    }
    if args.only in (None, "browser"):
        browser = run_browser(sizes, _log)
        tp = browser["throughput"]
        tp["triggerAndWaitOverTrigger"] = ratio(
            tp["triggerAndWait"]["oneStep"]["runsPerS"],
            tp["maxConcurrentRuns1"]["oneStep"]["runsPerS"],
        )
        report["browser"] = browser
    if args.only == "boot":
        report["browser"] = run_boot(sizes, _log)
    if args.only == "steps":
        report["browser"] = run_steps(sizes, _log)
    if args.only in (None, "cpython"):
        _log("CPython reference")
        report["cpython"] = run_cpython(sizes)
    if args.only in (None, "postgres"):
        _log("PostgreSQL with worker processes")
        report["postgres"] = run_postgres(sizes, _log)
    report["loadAverageAfter"] = [round(x, 2) for x in os.getloadavg()]
    report["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
