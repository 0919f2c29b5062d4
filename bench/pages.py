"""What every browser benchmark uses: the sizes, a headless Chromium with an on-disk
profile (ordinary Playwright contexts keep OPFS in memory), web/testing/bench.html and
calls into it."""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from durably.serve import serving_in_thread

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 300_000


@dataclass(frozen=True)
class Sizes:
    countdown_steps: int = 100
    countdown_reps: int = 3
    raw_writes: int = 300
    one_step_runs: int = 200
    ten_step_runs: int = 50
    wait_runs: int = 200
    progress_events: int = 5_000
    idle_seconds: float = 10.0
    memory_runs: int = 1_000
    scale_terminal: int = 10_000
    scale_pending: int = 1_000
    resume_steps: int = 20
    resume_after: int = 5
    resume_step_ms: int = 100
    warm_reps: int = 3
    takeover_reps: int = 3
    commit_rounds: int = 2
    storage_commits: int = 100
    storage_filler_kib: tuple[int, ...] = (64, 1024, 8192)
    #: Pending runs of a job no worker knows, under an idle claim poll.
    claim_pending: int = 50_000


QUICK = Sizes(
    countdown_steps=20,
    countdown_reps=1,
    raw_writes=50,
    one_step_runs=20,
    ten_step_runs=5,
    wait_runs=20,
    progress_events=200,
    idle_seconds=1.0,
    memory_runs=20,
    scale_terminal=300,
    scale_pending=30,
    resume_steps=6,
    resume_after=2,
    resume_step_ms=100,
    warm_reps=1,
    takeover_reps=1,
    commit_rounds=1,
    storage_commits=10,
    storage_filler_kib=(64,),
    claim_pending=50_000,
)


def _load_launch_options() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec((REPO / "playwright.config.py").read_text(), namespace)
    options: dict[str, Any] = namespace["launch_options"]()
    return options


class Browser:
    """Fresh on-disk profiles on demand, each a first visit."""

    def __init__(self, playwright: Playwright, base_url: str, root: Path) -> None:
        self._playwright = playwright
        self._options = _load_launch_options()
        self.base_url = base_url
        self._root = root
        self._count = 0

    def profile(self) -> BrowserContext:
        self._count += 1
        context = self._playwright.chromium.launch_persistent_context(
            self._root / f"profile-{self._count}", **self._options
        )
        context.set_default_timeout(TIMEOUT_MS)
        return context

    def open(
        self, context: BrowserContext, config: dict[str, Any] | None = None, *, new: bool = False
    ) -> Page:
        page = context.pages[0] if context.pages and not new else context.new_page()
        query = f"?config={quote(json.dumps(config))}" if config is not None else ""
        page.goto(f"{self.base_url}/testing/bench.html{query}")
        page.wait_for_function("() => window.bench !== undefined")
        return page


def call(page: Page, script: str, arg: Any = None) -> Any:
    """Evaluate `async (bench, arg) => ...` in the bench page."""
    return page.evaluate(f"async (arg) => ({script})(window.bench, arg)", arg)


def ready(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("() => window.benchReady")
    if result and result.get("jobErrors"):
        raise RuntimeError(f"job modules failed: {result['jobErrors']}")
    return result


def start(page: Page, config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = call(page, "(b, c) => b.start(c)", config)
    if result.get("jobErrors"):
        raise RuntimeError(f"job modules failed: {result['jobErrors']}")
    return result


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 3) if baseline else float("nan")


@contextmanager
def opened_browser() -> Iterator[Browser]:
    """The demo server, and a Chromium whose profiles live in a temporary directory."""
    with (
        serving_in_thread(REPO / "web") as base_url,
        sync_playwright() as playwright,
        tempfile.TemporaryDirectory(prefix="durably-bench-") as root,
    ):
        yield Browser(playwright, base_url, Path(root))
