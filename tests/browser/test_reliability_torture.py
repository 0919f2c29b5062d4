"""Crash torture, quick version: a few random interruptions of the owner (see torture.py;
``make torture`` runs the full version)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, BrowserType
from torture import BOOT_TIMEOUT_MS, Interruption, Report, check_executions, run_torture

QUICK_INTERRUPTIONS = int(os.environ.get("DURABLY_TORTURE_QUICK", "3"))


def test_quick_torture_loses_nothing_and_reruns_nothing(
    browser_type: BrowserType,
    browser_type_launch_args: dict[str, Any],
    server: str,
    tmp_path: Path,
) -> None:
    def launch(profile: Path) -> BrowserContext:
        context = browser_type.launch_persistent_context(profile, **browser_type_launch_args)
        context.set_default_timeout(BOOT_TIMEOUT_MS)
        return context

    seed = int(os.environ["DURABLY_TORTURE_SEED"]) if "DURABLY_TORTURE_SEED" in os.environ else None
    report = run_torture(launch, tmp_path / "profile", server, QUICK_INTERRUPTIONS, seed)
    assert report.failures == [], f"seed {report.seed}: {report.failures[:10]}"
    assert len(report.interruptions) == QUICK_INTERRUPTIONS
    assert report.completed_steps > 0 and report.executions >= report.completed_steps


def test_the_execution_check_catches_a_rerun_step() -> None:
    """The journal check itself, on made-up journals: it must be able to fail."""
    runs = {"r1": None}
    steps = {"r1": {"s0": ("completed", 0), "s1": ("completed", 1)}}

    def failures(lines: list[str], kill_at_ms: int | None) -> list[str]:
        report = Report(seed=0)
        if kill_at_ms is not None:
            report.interruptions.append(Interruption("reload", False, at_ms=kill_at_ms))
        return check_executions(lines, runs, steps, report)

    clean = ["a r1 s0 10", "a r1 s1 20"]
    assert failures(clean, None) == []
    # s1 in flight when worker a was killed, then run again by worker b: allowed.
    assert failures(["a r1 s0 10", "a r1 s1 20", "b r1 s1 40"], kill_at_ms=30) == []
    # Ran twice in one worker, re-ran after its worker went on, or with no kill: not allowed.
    assert failures(["a r1 s0 10", "a r1 s0 15", "a r1 s1 20"], kill_at_ms=30)
    assert failures(["a r1 s0 10", "a r1 s1 20", "b r1 s0 40"], kill_at_ms=30)
    assert failures(["a r1 s0 10", "a r1 s1 20", "b r1 s1 40"], kill_at_ms=None)
    assert failures(["a r1 s0 10"], kill_at_ms=30)  # s1 stored but never executed
