"""Driving the demo page the way an application's page script would."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from playwright.sync_api import BrowserContext, Page

BOOT_TIMEOUT_MS = 120_000


def open_demo(context: BrowserContext, base_url: str, query: str = "") -> Page:
    """Open the demo page and wait until `window.durablyReady` has settled."""
    page = context.new_page()
    page.goto(f"{base_url}/demo/{query}")
    wait_ready(page)
    return page


def boot_outcome(page: Page) -> dict[str, Any]:
    """Wait for createDurably: {role, jobs, jobErrors}, or {error: "Name: message"}."""
    result: dict[str, Any] = page.evaluate(
        """async () => {
            try {
                const d = await window.durablyReady;
                return { role: d.role, jobs: d.jobs, jobErrors: d.jobErrors };
            } catch (e) { return { error: `${e.name}: ${e.message}` }; }
        }"""
    )
    return result


def wait_ready(page: Page) -> dict[str, Any]:
    """Wait for the runtime; returns {role, jobs, jobErrors} (or raises with the page's error)."""
    result = boot_outcome(page)
    if "error" in result:
        raise AssertionError(f"the runtime did not start: {result['error']}")
    return result


def open_reliability_page(
    context: BrowserContext, server: str, database: str, **config: Any
) -> Page:
    """Open web/testing/reliability.html, which calls createDurably with `config`
    (its test job module by default)."""
    page = context.new_page()
    settings = json.dumps({"jobs": ["./reliability_jobs.py"], "database": database, **config})
    page.goto(f"{server}/testing/reliability.html?config={quote(settings)}")
    return page


def call(page: Page, script: str, arg: Any = None) -> Any:
    """Run `async (d, arg) => ...` with the page's durably client."""
    return page.evaluate(
        f"async (arg) => {{ const d = await window.durablyReady; return await ({script})(d, arg); }}",
        arg,
    )


def call_error(page: Page, script: str, arg: Any = None) -> str:
    """Like `call`, but expects a rejection and returns "Name: message"."""
    outcome = page.evaluate(
        f"""async (arg) => {{
            const d = await window.durablyReady;
            try {{ await ({script})(d, arg); return null; }}
            catch (e) {{ return `${{e.name}}: ${{e.message}}`; }}
        }}""",
        arg,
    )
    assert outcome is not None, f"expected {script} to reject"
    return str(outcome)
