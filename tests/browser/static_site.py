"""Serving a built site with ``python -m http.server`` and driving a page that exposes
``window.durably``: the shipped paths must work on a plain static file server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, Route

TIMEOUT_MS = 120_000


@contextmanager
def http_server(root: Path) -> Iterator[str]:
    """Serve ``root`` with the standard library's file server; yield its base URL."""
    command = [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
               "--directory", str(root)]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 40123 (http://...) ..."
        port = int(line.split(" port ", 1)[1].split()[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def durably(page: Page, script: str, arg: Any = None) -> Any:
    """Run ``async (d, arg) => ...`` once the page has set ``window.durably``."""
    page.wait_for_function("window.durably", timeout=TIMEOUT_MS)
    return page.evaluate(f"async (arg) => ({script})(window.durably, arg)", arg)


def wait_for_run(page: Page, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = durably(page, "(d, id) => d.waitForRun(id, { timeout: 100000 })", run_id)
    return run


def wait_for_steps(page: Page, run_id: str, count: int) -> None:
    page.wait_for_function(
        """async ([id, count]) => {
            const run = await window.durably?.getRun(id);
            return run && run.completedStepCount >= count;
        }""",
        arg=[run_id, count],
        timeout=TIMEOUT_MS,
        polling=100,
    )


def go_offline(context: BrowserContext) -> list[str]:
    """Cut the network; return the list that collects any request that still tried it."""
    network: list[str] = []

    def refuse(route: Route) -> None:
        network.append(route.request.url)
        route.abort("internetdisconnected")

    context.route("**/*", refuse)
    context.set_offline(True)
    return network
