"""<durably-runs> and the offline demo, in real Chromium.

Most tests share one page (web/testing/runs-element.html, booted once per module) and
act only on runs they trigger themselves, finding rows by run id; tests that need their
own tabs or profile use the demo page with a database of their own (``?db=``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import BOOT_TIMEOUT_MS, call, open_demo, wait_ready
from playwright.sync_api import Browser, BrowserContext, Dialog, Locator, Page, Route, expect

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "demo.png"
# docs/demo.png is written when missing or when this is set; otherwise a temporary copy.
UPDATE_SCREENSHOT = os.environ.get("DURABLY_UPDATE_SCREENSHOT") == "1"
MARKUP = '<img src=x onerror="window.pwned=1;alert(1)">'
RUN_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def ui_page(browser: Browser, server: str) -> Iterator[Page]:
    """The element's test page, booted once for this module's single-page tests."""
    context = browser.new_context()
    context.set_default_timeout(BOOT_TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{server}/testing/runs-element.html?db=ui-{time.monotonic_ns()}")
    assert wait_ready(page)["role"] == "owner"
    context.set_default_timeout(RUN_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def element(page: Page) -> Locator:
    return page.locator("durably-runs")


def row(page: Page, run_id: str) -> Locator:
    """The table row of one run (CSS locators pierce the open shadow root)."""
    return page.locator(f'durably-runs tr.run[data-run-id="{run_id}"]')


def row_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator("durably-runs tr.run").evaluate_all(
        "rows => rows.map((r) => r.dataset.runId)"
    )
    return ids


def trigger(page: Page, job: str, input: dict[str, Any], **options: Any) -> str:
    run_id: str = call(
        page,
        "(d, [job, input, options]) => d.trigger(job, input, options).then((run) => run.id)",
        [job, input, options],
    )
    return run_id


def wait_for_run(page: Page, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = call(page, "(d, id) => d.waitForRun(id, { timeout: 30000 })", run_id)
    return run


def wait_for_progress(page: Page, run_id: str, at_least: int) -> None:
    """Wait until the run's progress bar shows at least `at_least` done."""
    page.wait_for_function(
        """([id, atLeast]) => {
            const bar = document.querySelector("durably-runs").shadowRoot
                .querySelector(`tr.run[data-run-id="${id}"] [role=progressbar]`);
            return Number(bar?.getAttribute("aria-valuenow") ?? -1) >= atLeast;
        }""",
        arg=[run_id, at_least],
    )


def watch_rendering(page: Page) -> None:
    """Record, per run, every aria-valuenow and status badge text the element renders,
    and count animation frames, from now on."""
    page.evaluate(
        """() => {
            const root = document.querySelector("durably-runs").shadowRoot;
            window.rendered = {};
            window.frames = 0;
            const tick = () => { window.frames++; requestAnimationFrame(tick); };
            requestAnimationFrame(tick);
            const note = (node, kind, value) => {
                const id = node.closest("tr.run")?.dataset.runId;
                if (!id) return;
                const seen = (window.rendered[id] ??= { valuenow: [], status: [] });
                seen[kind].push(value);
            };
            new MutationObserver((records) => {
                for (const record of records) {
                    const target = record.target;
                    if (record.type === "attributes") {
                        note(target, "valuenow", target.getAttribute("aria-valuenow"));
                    } else if (target.classList?.contains("badge") && target.closest("td.status")) {
                        note(target, "status", target.textContent);
                    }
                }
            }).observe(root, {
                subtree: true, childList: true, attributes: true,
                attributeFilter: ["aria-valuenow"],
            });
        }"""
    )


def rendered(page: Page, run_id: str) -> dict[str, list[str | None]]:
    seen: dict[str, list[str | None]] = page.evaluate(
        "id => window.rendered[id] ?? { valuenow: [], status: [] }", run_id
    )
    return seen


# -- the live list ------------------------------------------------------------------


def test_list_follows_trigger_progress_and_completion(ui_page: Page) -> None:
    watch_rendering(ui_page)
    run_id = trigger(ui_page, "countdown", {"steps": 5, "step_ms": 150})
    run_row = row(ui_page, run_id)
    expect(run_row.locator("td.status .badge")).to_have_text("completed")
    bar = run_row.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "5")
    expect(bar).to_have_attribute("aria-valuemax", "5")
    expect(bar).to_have_attribute("aria-valuemin", "0")
    expect(bar).to_have_attribute("aria-valuetext", "5 of 5: step 5 of 5")
    expect(bar).to_have_accessible_name(f"Progress of countdown run {run_id[:8]}")

    seen = rendered(ui_page, run_id)
    values = [int(v) for v in seen["valuenow"] if v is not None]
    assert values == sorted(values) and len(set(values)) >= 3, seen  # it moved, forwards
    assert seen["status"][-1] == "completed", seen
    assert "running" in seen["status"], seen
    assert run_row.locator("td.elapsed").inner_text().endswith("s")
    assert run_row.locator("td.started time").get_attribute("datetime")


def test_rendering_is_throttled_under_a_progress_storm(ui_page: Page) -> None:
    """Hundreds of progress events a second: every one reaches the model, the DOM is
    written at most once per animation frame."""
    watch_rendering(ui_page)
    ui_page.evaluate(
        """() => window.durablyReady.then((d) => {
            window.progressEvents = 0;
            d.on("run:progress", () => window.progressEvents++);
        })"""
    )
    frames_before = ui_page.evaluate("window.frames")
    run_id = trigger(ui_page, "progress-storm", {"events": 600, "pause_ms": 0})
    wait_for_run(ui_page, run_id)
    bar = row(ui_page, run_id).get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "600")
    frames = ui_page.evaluate("window.frames") - frames_before
    events = ui_page.evaluate("window.progressEvents")
    writes = len(rendered(ui_page, run_id)["valuenow"])
    assert events == 600
    assert 1 <= writes <= frames + 1, (writes, frames, events)
    print(f"{events} progress events, {writes} renders of the bar, {frames} frames")


def test_a_waiting_run_shows_what_it_waits_for(ui_page: Page) -> None:
    run_id = trigger(ui_page, "approval", {})
    badge = row(ui_page, run_id).locator("td.status .badge")
    expect(badge).to_have_text("waiting for approval")
    call(ui_page, '(d, id) => d.sendEvent(id, "approval", { ok: true })', run_id)
    assert wait_for_run(ui_page, run_id)["output"] == {"ok": True}
    expect(badge).to_have_text("completed")


def test_cancel_retrigger_and_delete(ui_page: Page) -> None:
    long_run = trigger(ui_page, "countdown", {"steps": 500, "step_ms": 100})
    long_row = row(ui_page, long_run)
    expect(long_row.locator("td.status .badge")).to_have_text("running")
    long_row.get_by_role("button", name=f"Cancel countdown run {long_run[:8]}").click()
    expect(long_row.locator("td.status .badge")).to_have_text("cancelled")
    expect(long_row.get_by_role("button", name="Cancel")).to_have_count(0)
    assert call(ui_page, "(d, id) => d.getRun(id)", long_run)["status"] == "cancelled"

    short_run = trigger(ui_page, "countdown", {"steps": 1, "step_ms": 0})
    short_row = row(ui_page, short_run)
    expect(short_row.locator("td.status .badge")).to_have_text("completed")
    listed_before = row_ids(ui_page)
    short_row.get_by_role("button", name=f"Retrigger countdown run {short_run[:8]}").click()
    first_row = ui_page.locator("durably-runs tr.run").first  # newest first
    expect(first_row).not_to_have_attribute("data-run-id", listed_before[0])
    newest = call(ui_page, "(d, id) => d.getRun(id)", first_row.get_attribute("data-run-id"))
    assert newest["id"] not in listed_before
    assert newest["jobName"] == "countdown" and newest["input"] == {"steps": 1, "step_ms": 0}
    expect(row(ui_page, newest["id"]).locator("td.status .badge")).to_have_text("completed")

    short_row.get_by_role("button", name=f"Delete countdown run {short_run[:8]}").click()
    expect(short_row).to_have_count(0)
    assert call(ui_page, "(d, id) => d.getRun(id)", short_run) is None
    # The focus stays in the list, on the row that took the deleted one's place.
    assert (
        ui_page.evaluate(
            "document.querySelector('durably-runs').shadowRoot.activeElement?.className"
        )
        == "toggle"
    )


def test_purged_runs_leave_the_list_at_once(opfs_context: BrowserContext, server: str) -> None:
    # A database of its own: a purge deletes every finished run, not only this test's.
    page = open_demo(opfs_context, server, f"?db=ui-purge-{time.monotonic_ns()}")
    purged = [trigger(page, "countdown", {"steps": 1, "step_ms": 0}) for _ in range(3)]
    for run_id in purged:
        wait_for_run(page, run_id)
        expect(row(page, run_id).locator("td.status .badge")).to_have_text("completed")
    kept = trigger(page, "countdown", {"steps": 500, "step_ms": 100})  # still running: kept
    expect(row(page, kept).locator("td.status .badge")).to_have_text("running")
    # From here on the list can never be fetched again: only the event can remove rows.
    result = call(
        page,
        """async (d) => {
            const purges = [];
            d.on("runs:purge", (e) => purges.push(e));
            d.getRuns = d.countRuns = () => new Promise(() => {});
            const count = await d.purgeRuns({ olderThan: Date.now() + 60000 });
            return { count, purges };
        }""",
    )
    assert result["count"] == 3
    (event,) = result["purges"]
    assert sorted(event["runIds"]) == sorted(purged) and event["count"] == 3
    for run_id in purged:
        expect(row(page, run_id)).to_have_count(0)
    expect(row(page, kept)).to_have_count(1)
    call(page, "(d, id) => d.cancel(id)", kept)


def test_filters_and_pages(ui_page: Page) -> None:
    for i in range(3):
        wait_for_run(ui_page, trigger(ui_page, "echo", {"text": f"page {i}"}))
    runs = element(ui_page)
    runs.get_by_label("Job").select_option("echo")
    total = call(ui_page, '(d) => d.countRuns({ jobName: "echo" })')
    expect(runs.locator("tr.run")).to_have_count(min(total, 10))
    for name in runs.locator("tr.run button.toggle").all_inner_texts():
        assert name == "echo"
    ui_page.evaluate("document.querySelector('durably-runs').pageSize = 2")
    expect(runs.locator(".pager")).to_contain_text(f"1–2 of {total}")
    runs.get_by_role("button", name="Next page").click()
    expect(runs.locator(".pager")).to_contain_text(f"3–{min(4, total)} of {total}")
    expect(runs.get_by_role("button", name="Previous page")).to_be_enabled()
    runs.get_by_label("Status").select_option("cancelled")
    expect(runs.locator("tr.run")).to_have_count(0)
    expect(runs.locator("td.empty")).to_have_text("No runs match these filters.")
    runs.get_by_label("Status").select_option("")
    runs.get_by_label("Job").select_option("")
    ui_page.evaluate("document.querySelector('durably-runs').pageSize = 10")
    expect(runs.locator(".pager")).to_contain_text("1–")


def test_job_text_is_shown_as_text_never_as_html(ui_page: Page) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    ui_page.on("dialog", on_dialog)
    run_id = trigger(ui_page, "echo", {"text": MARKUP, "fail": True}, labels={"<b>tag</b>": MARKUP})
    run_row = row(ui_page, run_id)
    expect(run_row.locator("td.status .badge")).to_have_text("failed")
    expect(run_row.locator(".error-text")).to_contain_text(MARKUP)
    expect(run_row.locator(".label")).to_have_text(f"<b>tag</b>={MARKUP}")
    expect(run_row.locator(".progress-text")).to_have_text(f"1/1 · {MARKUP}")

    # Expand it from the keyboard.
    toggle = run_row.get_by_role("button", name=f"echo run {run_id[:8]}: show steps and logs")
    toggle.focus()
    ui_page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    details = ui_page.locator(f"durably-runs #{toggle.get_attribute('aria-controls')}")
    log_line = details.locator(".logs li").first
    expect(log_line.locator(".text")).to_have_text(MARKUP)
    expect(log_line.locator("code.data")).to_have_text(
        '{"text":"<img src=x onerror=\\"window.pwned=1;alert(1)\\">"}'
    )
    expect(details.locator("pre.error")).to_contain_text(MARKUP)
    expect(details.locator("tr[part=step]")).to_have_count(1)

    assert (
        ui_page.evaluate(
            "document.querySelector('durably-runs').shadowRoot.querySelectorAll('img, b').length"
        )
        == 0
    )
    assert ui_page.evaluate("window.pwned") is None
    assert dialogs == []
    ui_page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(details).to_be_hidden()


# -- tabs, offline and the screenshot -------------------------------------------------


def test_secondary_tab_lists_runs_acts_on_them_and_says_where_jobs_run(
    context: BrowserContext, server: str
) -> None:
    context.set_default_timeout(BOOT_TIMEOUT_MS)
    database = f"ui-tabs-{time.monotonic_ns()}"
    owner = open_demo(context, server, f"?db={database}")
    expect(element(owner).locator("table")).to_be_visible()
    earlier = trigger(owner, "countdown", {"steps": 1, "step_ms": 0})
    second = open_demo(context, server, f"?db={database}")
    banner = second.locator("durably-runs [part=banner]")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Jobs run in another tab of this app")
    # The list, through the owner: the run triggered there, finished.
    expect(element(second).locator("table")).to_be_visible()
    expect(row(second, earlier).locator("td.status .badge")).to_have_text("completed")

    # The element's actions and the demo's form work from the secondary tab.
    long_run = trigger(second, "countdown", {"steps": 500, "step_ms": 100})
    for page in (second, owner):  # live in both tabs
        badge = row(page, long_run).locator("td.status .badge")
        expect(badge).to_have_text("running", timeout=RUN_TIMEOUT_MS)
    row(second, long_run).get_by_role("button", name=f"Cancel countdown run {long_run[:8]}").click()
    for page in (second, owner):
        badge = row(page, long_run).locator("td.status .badge")
        expect(badge).to_have_text("cancelled", timeout=RUN_TIMEOUT_MS)
    row(second, earlier).get_by_role("button", name=f"Delete countdown run {earlier[:8]}").click()
    for page in (second, owner):
        expect(row(page, earlier)).to_have_count(0, timeout=RUN_TIMEOUT_MS)
    second.get_by_role("button", name="Run countdown").click()
    expect(second.locator("#form-status")).to_contain_text("Started countdown")
    expect(owner.locator("durably-runs tr.run")).to_have_count(2, timeout=RUN_TIMEOUT_MS)
    assert call(second, "(d) => d.role") == "secondary"

    owner.close()  # releases the lock: the second tab boots and takes over
    second.evaluate("window.durablyReady.then((d) => { window.client = d; })")
    second.wait_for_function("window.client.role === 'owner'", timeout=BOOT_TIMEOUT_MS)
    expect(banner).to_be_hidden()
    expect(row(second, long_run).locator("td.status .badge")).to_have_text("cancelled")


def test_offline_reload_boots_and_resumes_an_interrupted_run(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_demo(opfs_context, server, "?db=ui-offline")
    # The service worker installs after the runtime started, then claims this page.
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    expect(page.locator("#offline-status")).to_contain_text("Ready for offline use")
    caches = page.evaluate("caches.keys()")
    manifest = page.evaluate("fetch('/vendor/manifest.json').then((r) => r.json())")
    assert any(name.startswith(f"durably-demo-{manifest['version']}-") for name in caches), caches

    page.get_by_label("Steps", exact=True).fill("10")
    page.get_by_label("ms per step", exact=True).fill("200")
    page.get_by_role("button", name="Run countdown").click()
    run_id = call(
        page, '(d) => d.getRuns({ jobName: "countdown", limit: 1 }).then((runs) => runs[0].id)'
    )
    wait_for_progress(page, run_id, 3)

    network: list[str] = []

    def refuse(route: Route) -> None:  # anything not served by the service worker
        network.append(route.request.url)
        route.abort("internetdisconnected")

    opfs_context.route("**/*", refuse)
    served: list[tuple[str, bool]] = []
    opfs_context.on(
        "response", lambda response: served.append((response.url, response.from_service_worker))
    )
    opfs_context.set_offline(True)
    page.reload()
    wait_ready(page)
    done = wait_for_run(page, run_id)
    assert done["status"] == "completed" and done["completedStepCount"] == 10
    assert done["leaseGeneration"] == 2  # the reload's owner took the run over
    expect(row(page, run_id).locator("td.status .badge")).to_have_text("completed")
    assert network == [], f"requests went to the network while offline: {network}"
    from_cache = {url.rsplit("/", 1)[-1] for url, cached in served if cached}
    # The module worker's own fetches (Pyodide, wheels, job module) came from the cache too.
    assert {"worker.js", "pyodide.asm.wasm", "manifest.json", "jobs.py"} <= from_cache, served


def test_screenshot_for_the_readme(browser: Browser, server: str, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 700}, device_scale_factor=1)
    context.set_default_timeout(BOOT_TIMEOUT_MS)
    try:
        page = open_demo(context, server, f"?db=ui-screenshot-{time.monotonic_ns()}")
        page.get_by_role("button", name="Import CSV").click()
        page.get_by_label("Steps", exact=True).fill("3")
        page.get_by_label("ms per step", exact=True).fill("0")
        page.get_by_role("button", name="Run countdown").click()
        page.get_by_label("Steps", exact=True).fill("200")
        page.get_by_role("button", name="Run countdown").click()
        runs = call(page, "(d) => d.getRuns()")
        cancelled = runs[0]["id"]
        page.locator(
            f'durably-runs tr.run[data-run-id="{cancelled}"] button[data-action="cancel"]'
        ).click()
        page.get_by_label("Steps", exact=True).fill("40")
        page.get_by_label("ms per step", exact=True).fill("400")
        page.get_by_role("button", name="Run countdown").click()
        for run in runs[1:]:
            wait_for_run(page, run["id"])
        running = call(page, '(d) => d.getRuns({ status: "leased" })')[0]["id"]
        wait_for_progress(page, running, 4)
        row(page, runs[-1]["id"]).locator("button.toggle").click()  # the CSV import
        expect(page.locator("durably-runs .logs li").first).to_be_visible()
        page.locator("#form-status").evaluate("node => node.textContent = ''")
        page.evaluate("document.activeElement?.blur()")
        write_docs = UPDATE_SCREENSHOT or not SCREENSHOT.exists()
        target = SCREENSHOT if write_docs else tmp_path / "demo.png"
        target.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size < 200_000
        call(page, "(d, id) => d.cancel(id)", running)
    finally:
        context.close()


def demo_caches(page: Page) -> list[str]:
    names: list[str] = page.evaluate("caches.keys()")
    return [name for name in names if name.startswith("durably-demo-")]


def test_a_changed_file_installs_a_new_version_and_drops_the_old_cache(
    context: BrowserContext, server: str
) -> None:
    # An invalid database name makes the runtime refuse at once, so no Python boots;
    # the page still sets up offline use.
    page = context.new_page()
    page.goto(f"{server}/demo/?db=-")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    first = demo_caches(page)
    assert len(first) == 1, first

    css = page.evaluate("fetch('/demo/demo.css').then((r) => r.text())")
    context.route(
        "**/demo/demo.css",
        lambda route: route.fulfill(status=200, content_type="text/css", body=css + "\n/* v2 */\n"),
    )
    page.reload()  # served by the old version, which finds the change and installs the new one
    expect(page.locator("#offline-status")).to_contain_text("A new version is ready")
    with page.expect_navigation():  # the new version takes over and the page reloads
        page.get_by_role("button", name="Reload to update").click()
    deadline = time.monotonic() + 30
    while (second := demo_caches(page)) == first or len(second) != 1:  # activate cleans up
        assert time.monotonic() < deadline, (first, second)
        page.wait_for_timeout(100)
    assert first[0].split("-")[2] == second[0].split("-")[2]  # same runtime, new app files
    served = page.evaluate("caches.match('/demo/demo.css').then((r) => r.text())")
    assert served.endswith("/* v2 */\n")
