"""Ownership in real Chromium: tabs that start at the same moment get exactly one owner,
and a secondary tab's worker never opens the database (it creates no sync access
handle, so the owner's exclusive handles are never disturbed)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from playwright.sync_api import BrowserContext, Page

ROUNDS = 2
TABS = 3


def held_page(context: BrowserContext, server: str, database: str) -> Page:
    page = context.new_page()
    config = json.dumps(
        {"database": database, "jobs": ["./reliability_jobs.py"],
         "workerUrl": "./instrumented-worker.js"}
    )  # fmt: skip
    page.goto(f"{server}/testing/reliability.html?hold&config={quote(config)}")
    page.wait_for_function("typeof window.go === 'function'")
    return page


def settle(page: Page) -> dict[str, Any]:
    page.wait_for_function("window.durablyReady !== undefined")
    result: dict[str, Any] = page.evaluate(
        """async () => {
            try {
                const d = await window.durablyReady;
                const ping = await d._request("ping", {});
                const handles = window.workerReports
                    .filter((r) => r?.type === "durably-test:sync-access-handle").map((r) => r.name);
                return { role: d.role, state: ping.state, handles };
            } catch (e) { return { error: `${e.name}: ${e.message}` }; }
        }"""
    )
    return result


def test_tabs_started_together_get_exactly_one_owner(
    opfs_context: BrowserContext, server: str
) -> None:
    for round_ in range(ROUNDS):
        database = f"race-{round_}"
        pages = [held_page(opfs_context, server, database) for _ in range(TABS)]
        pages[round_ % TABS].evaluate("window.go()")  # every held tab starts now
        results = [settle(page) for page in pages]
        roles = sorted(r.get("role", r.get("error")) for r in results)
        assert roles == ["owner"] + ["secondary"] * (TABS - 1), (round_, results)
        owner = next(p for p, r in zip(pages, results, strict=True) if r["role"] == "owner")
        for page, result in zip(pages, results, strict=True):
            if page is owner:
                assert result["state"] == "ready"
                names = {
                    f"{database}.sqlite3",
                    f"{database}.sqlite3-wal",
                    f"{database}.sqlite3-journal",
                }
                assert set(result["handles"]) == names, result
            else:
                assert result["state"] == "secondary"
                assert result["handles"] == [], result  # never touched the database
                error = page.evaluate(
                    """async () => { const d = await window.durablyReady;
                        try { await d.trigger("echo", { text: "x" }); return null; }
                        catch (e) { return e.name; } }"""
                )
                assert error == "NotOwnerError"
        # The owner's handles were never disturbed: it keeps writing and reading.
        done = owner.evaluate(
            """async () => { const d = await window.durablyReady;
                return (await d.triggerAndWait("echo", { text: "owner" }, { timeout: 60000 })).output; }"""
        )
        assert done == {"text": "owner"}
        # Still no secondary opened anything, even after the owner wrote.
        for page in pages:
            if page is not owner:
                assert settle(page)["handles"] == []
        for page in pages:
            page.close()
