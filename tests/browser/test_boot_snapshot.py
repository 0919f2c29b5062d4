"""The Python memory snapshot (ADR 0007): made after a first boot, restored by the
next one, which then runs jobs on its OPFS database; a snapshot that cannot be restored
is dropped and the boot goes on without it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from playwright.sync_api import BrowserContext, Page

TIMEOUT_MS = 120_000


def bench(page: Page, script: str, arg: Any = None) -> Any:
    return page.evaluate(f"async (arg) => ({script})(window.bench, arg)", arg)


def open_bench(context: BrowserContext, server: str, database: str) -> Page:
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    config = quote(json.dumps({"database": database}))
    page.goto(f"{server}/testing/bench.html?config={config}")
    page.wait_for_function("() => window.bench !== undefined")
    page.evaluate("() => window.benchReady")
    return page


def wait_for_snapshot(page: Page) -> None:
    """Poll: made a couple of seconds after the boot, in a worker of its own."""
    for _ in range(TIMEOUT_MS // 200):
        if bench(page, "(b) => b.snapshotCached()"):
            return
        page.wait_for_timeout(200)
    raise AssertionError("no snapshot was cached")


def restored(page: Page) -> bool | None:
    result: bool | None = bench(page, "(b) => b.boot().worker?.snapshot")
    return result


def run_countdown(page: Page) -> str:
    run = bench(page, "(b) => b.trigger('countdown', {steps: 2, step_ms: 0})")
    bench(page, "(b, id) => b.whenFinished([id])", run["id"])
    [done] = [
        e for e in bench(page, "(b, id) => b.events(id)", run["id"]) if e["type"] == "run:complete"
    ]
    return str(done["type"])


def test_a_later_boot_restores_the_snapshot_and_runs_jobs(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_bench(opfs_context, server, "snapshot")
    assert restored(page) is False  # first visit: nothing cached yet
    wait_for_snapshot(page)
    page.reload()
    page.wait_for_function("() => window.bench !== undefined")
    page.evaluate("() => window.benchReady")
    assert restored(page) is True
    assert run_countdown(page) == "run:complete"


def test_a_snapshot_that_cannot_be_restored_is_dropped_and_the_boot_goes_on(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_bench(opfs_context, server, "snapshot-broken")
    wait_for_snapshot(page)
    page.evaluate(
        """async () => {
            const cache = await caches.open("durably-pyodide-snapshot");
            const [key] = await cache.keys();
            await cache.put(key, new Response(new Uint8Array(4096).fill(7)));
        }"""
    )
    page.reload()
    page.wait_for_function("() => window.bench !== undefined")
    page.evaluate("() => window.benchReady")
    assert restored(page) is False
    assert run_countdown(page) == "run:complete"
