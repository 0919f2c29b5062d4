"""Ownership in real Chromium: tabs that start at the same moment get exactly one owner,
and a secondary tab's worker never opens the database (it creates no sync access
handle, so the owner's exclusive handles are never disturbed)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from helpers import BOOT_TIMEOUT_MS, boot_outcome, call, open_reliability_page
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
        """async (BOOT_TIMEOUT_MS) => {
            try {
                const d = await window.durablyReady;
                // A worker still preparing Python answers once that synchronous work
                // ends, which on a loaded machine can take longer than the usual 30 s.
                const ping = await d._request("ping", {}, BOOT_TIMEOUT_MS);
                const handles = window.workerReports
                    .filter((r) => r?.type === "durably-test:sync-access-handle").map((r) => r.name);
                return { role: d.role, state: ping.state, handles };
            } catch (e) { return { error: `${e.name}: ${e.message}` }; }
        }""",
        BOOT_TIMEOUT_MS,
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
                # Its calls are relayed to the owner, which runs them.
                relayed = page.evaluate(
                    """async () => { const d = await window.durablyReady;
                        return (await d.triggerAndWait("echo", { text: "x" }, { timeout: 60000 })).output; }"""
                )
                assert relayed == {"text": "x"}
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


# A plain dedicated worker (no Web Lock) creates the database file and keeps its handle.
HOLD_NEW_DATABASE_FILE = """async (name) => {
    const source = `onmessage = async (event) => {
        const root = await navigator.storage.getDirectory();
        const directory = await root.getDirectoryHandle("durably", { create: true });
        const file = await directory.getFileHandle(event.data, { create: true });
        self.handle = await file.createSyncAccessHandle();
        postMessage("held");
    };`;
    const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
    await new Promise((resolve) => { worker.onmessage = resolve; worker.postMessage(name); });
    window.holder = worker;
}"""

# Tab 1 drives worker.js directly (no client, which would terminate a failed worker and
# so hide whether the worker itself gives the lock back).
FAILING_OWNER = """async (database) => {
    const worker = new Worker("/durably/worker.js", { type: "module" });
    const channel = new MessageChannel();
    worker.postMessage({ type: "durably:connect", protocol: 2 }, [channel.port2]);
    window.failingWorker = worker;  // kept alive: the page stays open with it
    window.failingOwner = new Promise((resolve) => {
        channel.port1.onmessage = ({ data }) => { if (data.id === 1) resolve(data); };
    });
    channel.port1.postMessage({ id: 1, type: "init", config: { database, jobs: [] } });
}"""


def test_an_owner_whose_boot_fails_lets_the_next_tab_take_over(
    opfs_context: BrowserContext, server: str
) -> None:
    database = "failover"
    # Another worker holds the database file, so tab 1 boots as owner and fails to open it.
    holder = opfs_context.new_page()
    holder.goto(f"{server}/vendor/manifest.json")  # any same-origin page
    holder.evaluate(HOLD_NEW_DATABASE_FILE, f"{database}.sqlite3")
    tab1 = opfs_context.new_page()
    tab1.goto(f"{server}/vendor/manifest.json")
    tab1.evaluate(FAILING_OWNER, database)
    tab2 = open_reliability_page(opfs_context, server, database)  # waits in line
    assert boot_outcome(tab2)["role"] == "secondary"

    failed = tab1.evaluate("window.failingOwner")
    holder.close()  # the file is free again for whoever owns the lock next
    assert failed["ok"] is False, failed
    assert "holds it" in failed["error"]["message"], failed
    assert "this tab released the database lock" in failed["error"]["message"], failed

    tab2.evaluate("window.durablyReady.then((d) => { window.client = d; })")
    tab2.wait_for_function("window.client.role === 'owner'", timeout=BOOT_TIMEOUT_MS)
    result = call(tab2, '(d) => d.triggerAndWait("echo", { text: "after" }, { timeout: 60000 })')
    assert result["output"] == {"text": "after"}, result
    tab1.close()
    tab2.close()
