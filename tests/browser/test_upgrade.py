"""Upgrades in the browser: a database an earlier release left in OPFS opens with the
current runtime, and one from a newer release is refused untouched.

The fixture's bytes are written into OPFS from the page, where the worker keeps a
database (`durably/<name>.sqlite3`), before createDurably runs (the page waits for
`window.go()`, see web/testing/reliability.js).
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

from helpers import boot_outcome, call
from playwright.sync_api import BrowserContext, Page

from durably.browser.protocol import camel_key
from durably.store.sqlite import migrations

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "databases" / f"schema-{migrations()[-1][0]}.sqlite3"
NEWEST_KNOWN = migrations()[-1][0]

WRITE_DATABASE = """async ([name, encoded]) => {
    const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
    const root = await navigator.storage.getDirectory();
    const directory = await root.getDirectoryHandle("durably", { create: true });
    const file = await directory.getFileHandle(name, { create: true });
    const writable = await file.createWritable();
    await writable.write(bytes);
    await writable.close();
}"""

READ_DATABASE = """async (name) => {
    const root = await navigator.storage.getDirectory();
    const directory = await root.getDirectoryHandle("durably");
    const file = await (await directory.getFileHandle(name)).getFile();
    const bytes = new Uint8Array(await file.arrayBuffer());
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text);
}"""


def start_on(context: BrowserContext, server: str, database: str, data: bytes) -> Page:
    """Put `data` in OPFS as `database`'s file, then start the runtime on it."""
    page = context.new_page()
    config = {"database": database, "jobs": ["./upgrade_jobs.py"], "maxConcurrentRuns": 1}
    page.goto(f"{server}/testing/reliability.html?hold&config={quote(json.dumps(config))}")
    page.evaluate(WRITE_DATABASE, [f"{database}.sqlite3", base64.b64encode(data).decode()])
    page.evaluate("window.go()")
    return page


def camel(record: dict[str, Any]) -> dict[str, Any]:
    return {camel_key(key): value for key, value in record.items()}


def assert_same(actual: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    differences = {k: (actual.get(k), v) for k, v in camel(expected).items() if actual.get(k) != v}
    assert not differences, f"{what}: (now, in the fixture) {differences}"


def test_an_earlier_release_database_opens_and_its_runs_finish(
    opfs_context: BrowserContext, server: str
) -> None:
    sidecar = json.loads(FIXTURE.with_suffix(".json").read_text())
    page = start_on(opfs_context, server, "upgrade", FIXTURE.read_bytes())
    assert boot_outcome(page).get("role") == "owner", boot_outcome(page)
    listed = call(page, "(d) => d.getRuns()")
    assert sorted(r["id"] for r in listed) == sorted(r["run"]["id"] for r in sidecar["runs"])

    for recorded in sidecar["runs"]:
        run, scenario = recorded["run"], recorded["scenario"]
        if run["status"] in ("pending", "leased"):
            # Leased runs are reclaimed at start-up (this tab holds the Web Lock).
            done = call(page, "(d, id) => d.waitForRun(id, { timeout: 60000 })", run["id"])
            items = run["input"]["items"]
            assert done["status"] == "completed", (scenario, done)
            assert done["output"] == {"imported": [{"item": i, "length": len(i)} for i in items]}
            for key in ("input", "labels", "idempotency_key", "concurrency_key", "created_at"):
                assert done[camel_key(key)] == run[key], (scenario, key)
        else:
            now = call(page, "(d, id) => d.getRun(id)", run["id"])
            assert_same(now, run, f"run {scenario}")
        steps = {s["name"]: s for s in call(page, "(d, id) => d.getSteps(id)", run["id"])}
        for then in recorded["steps"]:
            # Same times: a step stored by the earlier release never ran again.
            assert_same(steps[then["name"]], then, f"step {then['name']} of {scenario}")
        logs = call(page, "(d, id) => d.getLogs(id)", run["id"])
        for now_log, then in zip(logs, recorded["logs"], strict=False):
            assert_same(now_log, then, f"log {then['id']} of {scenario}")
        assert len(logs) >= len(recorded["logs"])
        if run["status"] in ("pending", "leased"):
            ran = Counter(
                log["message"].removeprefix("executing ")
                for log in logs
                if log["message"].startswith("executing ")
            )
            assert ran == Counter(run["input"]["items"]), (scenario, ran)
    assert call(page, "(d) => d.countRuns()") == len(sidecar["runs"])
    page.close()


def test_a_database_from_a_newer_release_is_refused_untouched(
    opfs_context: BrowserContext, server: str, tmp_path: Path
) -> None:
    newer = NEWEST_KNOWN + 3
    path = tmp_path / "newer.sqlite3"
    shutil.copyfile(FIXTURE, path)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("INSERT INTO durably_schema_versions VALUES (?, datetime('now'))", (newer,))
        # As durably leaves its files: WAL mode, everything folded into the database.
        conn.execute("PRAGMA journal_mode = WAL")
    before = path.read_bytes()
    page = start_on(opfs_context, server, "newer", before)
    error = boot_outcome(page).get("error", "")
    assert error.startswith("SchemaVersionError: "), error
    assert f"schema version {newer}, newer than this runtime's {NEWEST_KNOWN}" in error, error
    assert "nothing was changed" in error, error
    after = base64.b64decode(page.evaluate(READ_DATABASE, "newer.sqlite3"))
    assert after == before
    page.close()
