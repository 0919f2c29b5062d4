"""Storage faults in real Chromium: the quota runs out mid-run, the database file is
held by another worker, OPFS is missing. Each ends in a clear error, never in lost or
corrupted data or a run stuck as leased."""

from __future__ import annotations

from typing import Any

from helpers import boot_outcome, call, open_reliability_page
from playwright.sync_api import BrowserContext, Page
from torture import read_database


def close_runtime(page: Page) -> None:
    call(page, "(d) => d.close()")
    page.close()


def database_health(context: BrowserContext, server: str, database: str) -> dict[str, Any]:
    health: dict[str, Any] = read_database(context, server, database, """
result = {
    "integrity": [row[0] for row in db.execute("PRAGMA integrity_check")],
    "statuses": dict(db.execute("SELECT status, count(*) FROM durably_runs GROUP BY status").fetchall()),
}
""")  # fmt: skip
    return health


def test_quota_exceeded_fails_the_run_clearly_and_recovers(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_reliability_page(opfs_context, server, "quota")
    assert boot_outcome(page)["role"] == "owner"
    earlier = [
        call(page, '(d, i) => d.triggerAndWait("echo", { text: `before ${i}` }, { timeout: 60000 })', i)
        for i in range(3)
    ]  # fmt: skip
    usage = page.evaluate("async () => (await navigator.storage.estimate()).usage")
    cdp = opfs_context.new_cdp_session(page)
    cdp.send("Storage.overrideQuotaForOrigin", {"origin": server, "quotaSize": usage + 2_000_000})
    try:
        # ~25 MB of step outputs against a quota 2 MB above the current usage.
        run = call(page, '(d) => d.trigger("fill", { steps: 400, kib: 64 })')
        done = call(
            page,
            "(d, id) => d.waitForRun(id, { timeout: 120000 }).catch((e) => d.getRun(id))",
            run["id"],
        )
        assert done["status"] == "failed", done
        assert "StorageError" in done["error"] and "full" in done["error"], done["error"]
        assert 0 < done["completedStepCount"] < 400
        # Earlier data is readable while the disk is still full.
        for result in earlier:
            again = call(page, "(d, id) => d.getRun(id)", result["id"])
            assert again["status"] == "completed" and again["output"] == result["output"]
    finally:
        cdp.send("Storage.overrideQuotaForOrigin", {"origin": server})
    # Space is back: new runs complete, in the same runtime.
    after = call(page, '(d) => d.triggerAndWait("echo", { text: "after" }, { timeout: 60000 })')
    assert after["output"] == {"text": "after"}
    assert call(page, '(d) => d.countRuns({ status: ["pending", "leased"] })') == 0
    close_runtime(page)
    health = database_health(opfs_context, server, "quota")
    assert health == {"integrity": ["ok"], "statuses": {"completed": 4, "failed": 1}}, health


HOLD_DATABASE_FILE = """async (name) => {
    const source = `onmessage = async (event) => {
        const root = await navigator.storage.getDirectory();
        const directory = await root.getDirectoryHandle("durably");
        const file = await directory.getFileHandle(event.data);
        self.handle = await file.createSyncAccessHandle();
        postMessage("held");
    };`;
    const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
    await new Promise((resolve) => { worker.onmessage = resolve; worker.postMessage(name); });
    window.holder = worker;
}"""


def test_database_held_by_another_worker_rejects_naming_the_file(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_reliability_page(opfs_context, server, "held")
    assert boot_outcome(page)["role"] == "owner"
    call(page, '(d) => d.triggerAndWait("echo", { text: "kept" }, { timeout: 60000 })')
    close_runtime(page)

    # Another dedicated worker (not a durably runtime: it takes no Web Lock) opens the
    # database file's sync access handle and keeps it.
    holder = opfs_context.new_page()
    holder.goto(f"{server}/vendor/manifest.json")  # any same-origin page
    holder.evaluate(HOLD_DATABASE_FILE, "held.sqlite3")
    page = open_reliability_page(opfs_context, server, "held")
    error = boot_outcome(page).get("error", "")
    assert "durably/held.sqlite3" in error and "holds it" in error, error
    page.close()
    holder.close()  # ends its worker, which lets the handle go

    health = database_health(opfs_context, server, "held")
    assert health == {"integrity": ["ok"], "statuses": {"completed": 1}}, health


def test_missing_opfs_rejects_naming_what_is_missing(
    opfs_context: BrowserContext, server: str
) -> None:
    for missing, named in [
        ("FileSystemSyncAccessHandle", "FileSystemSyncAccessHandle"),
        ("getDirectory", "navigator.storage.getDirectory"),
        ("locks", "Web Locks"),
        ("secureContext", "a secure context"),
    ]:
        page = open_reliability_page(
            opfs_context, server, "no-opfs", workerUrl=f"./without-capability.js?missing={missing}"
        )
        error = boot_outcome(page).get("error", "")
        assert error.startswith("UnsupportedError:") and named in error, (missing, error)
        page.close()
    # The refused runtimes created nothing in OPFS.
    page = opfs_context.new_page()
    page.goto(f"{server}/testing/opfs-sqlite.html")
    assert page.evaluate("harness.listOpfs()") == []
