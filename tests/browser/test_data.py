"""Keeping the user's data in the browser: a backup taken from OPFS while a run makes
progress imports into another origin profile with every run and step; a file that is
not an intact durably database is refused and changes nothing; storage figures and
persistence come from Chromium itself; the runs UI offers persistence and a backup."""

from __future__ import annotations

import base64
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from helpers import call, call_error, wait_ready
from playwright.sync_api import BrowserContext, BrowserType, Page, expect

DATABASE = "data"

EXPORT = """async (d) => {
    const blob = await d.exportDatabase();
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { type: blob.type, size: blob.size, base64: btoa(text) };
}"""

IMPORT = """async (d, encoded) => {
    const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
    return await d.importDatabase(new Blob([bytes]));
}"""

SNAPSHOT = """async (d) => {
    const runs = await d.getRuns({ limit: 1000 });
    const out = {};
    for (const run of runs) {
        const steps = await d.getSteps(run.id);
        out[run.id] = { job: run.jobName, status: run.status, input: run.input, output: run.output,
                        steps: steps.map((s) => [s.name, s.status, s.output]) };
    }
    return out;
}"""


def open_runs_page(context: BrowserContext, server: str, database: str = DATABASE) -> Page:
    page = context.new_page()
    page.goto(f"{server}/testing/runs-element.html?db={database}")
    wait_ready(page)
    return page


def steps_of(page: Page, run_id: str) -> int:
    return len(call(page, "(d, id) => d.getSteps(id)", run_id))


def wait_for_steps(page: Page, run_id: str, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while steps_of(page, run_id) < at_least:
        assert time.monotonic() < deadline, f"run {run_id} did not reach {at_least} steps"
        page.wait_for_timeout(50)


@pytest.fixture
def other_profile(
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any], tmp_path: Path
) -> Iterator[BrowserContext]:
    """A second persistent context: another profile, so another origin storage."""
    context = browser_type.launch_persistent_context(
        tmp_path / "other-profile", **browser_type_launch_args
    )
    context.set_default_timeout(120_000)
    try:
        yield context
    finally:
        context.close()


def export_bytes(page: Page) -> bytes:
    exported = call(page, EXPORT)
    assert exported["type"] == "application/vnd.sqlite3"
    data = base64.b64decode(exported["base64"])
    assert len(data) == exported["size"]
    return data


def check_database(data: bytes, tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "exported.sqlite3"
    path.write_bytes(data)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    return conn


def test_a_backup_taken_while_a_run_progresses_imports_into_another_profile(
    opfs_context: BrowserContext, other_profile: BrowserContext, server: str, tmp_path: Path
) -> None:
    page = open_runs_page(opfs_context, server)
    for n in (2, 3):
        call(page, "(d, input) => d.triggerAndWait('countdown', input, {timeout: 30000})",
             {"steps": n, "step_ms": 0})  # fmt: skip
    running = call(page, "(d, input) => d.trigger('countdown', input)",
                   {"steps": 40, "step_ms": 60})["id"]  # fmt: skip
    wait_for_steps(page, running, 5)

    data = export_bytes(page)
    wait_for_steps(page, running, steps_of(page, running) + 3)  # it went on meanwhile
    before = call(page, SNAPSHOT)

    with closing(check_database(data, tmp_path)) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("SELECT count(*) FROM durably_runs").fetchone() == (3,)
        exported_steps = copy.execute(
            "SELECT count(*) FROM durably_steps WHERE run_id = ? AND status = 'completed'",
            (running,),
        ).fetchone()[0]
    assert 5 <= exported_steps < len(before[running]["steps"])

    fresh = open_runs_page(other_profile, server)
    assert call(fresh, SNAPSHOT) == {}
    result = call(fresh, IMPORT, base64.b64encode(data).decode())
    assert result == {"runs": 3, "reclaimedRuns": 1}
    after = call(fresh, SNAPSHOT)
    assert set(after) == set(before)
    for run_id, run in before.items():
        if run_id != running:
            assert after[run_id] == run  # finished runs: every field and step
    # The run in flight at the export resumes in the other profile from its stored steps.
    assert after[running]["steps"][:exported_steps] == before[running]["steps"][:exported_steps]
    finished = call(fresh, "(d, id) => d.waitForRun(id, {timeout: 60000})", running)
    assert finished["output"] == {"completed": 40}
    assert steps_of(fresh, running) == 40


@pytest.mark.parametrize("damage", ["truncated", "not-sqlite"])
def test_a_bad_file_is_refused_and_the_database_still_works(
    opfs_context: BrowserContext, server: str, damage: str
) -> None:
    page = open_runs_page(opfs_context, server)
    call(page, "(d) => d.triggerAndWait('countdown', {steps: 3, step_ms: 0}, {timeout: 30000})")
    data = export_bytes(page)
    bad = data[: len(data) // 2] if damage == "truncated" else b"not a database " * 200
    before = call(page, SNAPSHOT)

    error = call_error(page, IMPORT,
                       base64.b64encode(bad).decode())  # fmt: skip
    assert error.startswith("ValidationError: "), error
    assert "nothing was changed" in error

    assert call(page, SNAPSHOT) == before
    done = call(
        page, "(d) => d.triggerAndWait('countdown', {steps: 2, step_ms: 0}, {timeout: 30000})"
    )
    assert done["output"] == {"completed": 2}


def test_storage_info_reports_chromiums_figures_and_persistence(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_runs_page(opfs_context, server)
    info = call(page, "(d) => d.storageInfo()")
    assert info["usage"] > 0 and info["quota"] > 0
    assert 4096 <= info["databaseBytes"] < 50_000_000
    # More data, more bytes: the figure is the live size of the file and its WAL.
    call(
        page,
        """async (d) => { for (let i = 0; i < 30; i++)
        await d.triggerAndWait('countdown', {steps: 5, step_ms: 0}, {timeout: 30000}); }""",
    )
    assert call(page, "(d) => d.storageInfo()")["databaseBytes"] > info["databaseBytes"]

    granted = call(page, "(d) => d.requestPersistence()")
    assert isinstance(granted, bool)
    assert granted == page.evaluate("navigator.storage.persisted()")
    assert call(page, "(d) => d.storageInfo()")["persisted"] == granted


def test_the_ui_shows_the_notice_and_downloads_a_backup(
    opfs_context: BrowserContext, server: str, tmp_path: Path
) -> None:
    page = open_runs_page(opfs_context, server, "data-ui")
    call(page, "(d) => d.triggerAndWait('countdown', {steps: 2, step_ms: 0}, {timeout: 30000})")
    notice = page.locator("durably-runs .storage-notice").first
    if page.evaluate("navigator.storage.persisted()"):
        expect(notice).to_be_hidden()
    else:
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("not persistent")

    with page.expect_download() as downloading:
        page.locator("durably-runs").get_by_role("button", name="Download backup").click()
    download = downloading.value
    assert download.suggested_filename == f"data-ui-{date.today().isoformat()}.sqlite3"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    with closing(check_database(target.read_bytes(), tmp_path)) as copy:
        assert copy.execute("SELECT count(*) FROM durably_runs").fetchone() == (1,)
    expect(page.locator("durably-runs .storage-status")).to_contain_text("Backup downloaded")


def test_the_ui_warns_when_usage_nears_the_quota(opfs_context: BrowserContext, server: str) -> None:
    # The browser's own estimate, scaled so usage is 90 % of the quota.
    opfs_context.add_init_script(
        """const estimate = navigator.storage.estimate.bind(navigator.storage);
        navigator.storage.estimate = async () => {
            const real = await estimate();
            return { ...real, quota: Math.ceil(real.usage / 0.9) };
        };"""
    )
    page = open_runs_page(opfs_context, server, "data-quota")
    warning = page.locator("durably-runs .storage-notice.warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(re.compile(r"nearly full: .* \(90 %\)"))
