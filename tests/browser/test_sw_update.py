"""Updating the app while two tabs are open: each tab runs one version end to end (its
worker, Pyodide, the wheels and the job modules all from one cache), and an update never
deletes a cache that a tab uses or that an install is still filling."""

from __future__ import annotations

import time

from helpers import BOOT_TIMEOUT_MS, open_demo
from playwright.sync_api import BrowserContext, Page, Route, expect

V2_JOB = '\n\n@define_job(name="added-in-v2")\nasync def added_in_v2(step, input):\n    return 2\n'


def demo_caches(page: Page) -> list[str]:
    names: list[str] = page.evaluate("caches.keys()")
    return sorted(name for name in names if name.startswith("durably-demo-"))


def jobs_once_owner(page: Page) -> list[str]:
    """The jobs this tab's runtime registered, once it owns the database."""
    deadline = time.monotonic() + BOOT_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        jobs = page.evaluate(
            "async () => { const d = await window.durablyReady;"
            " try { return await d.getJobs(); } catch (e) { return null; } }"
        )
        if jobs is not None:
            return list(jobs)
        page.wait_for_timeout(250)
    raise AssertionError("the tab never became the owner")


def test_an_update_with_two_tabs_open_keeps_each_tab_on_one_version(
    opfs_context: BrowserContext, server: str
) -> None:
    first = open_demo(opfs_context, server, "?db=sw-update")
    first.wait_for_function("navigator.serviceWorker.controller !== null")
    expect(first.locator("#offline-status")).to_contain_text("Ready for offline use")
    [v1] = demo_caches(first)
    second = open_demo(opfs_context, server, "?db=sw-update")  # secondary, on version 1
    second.wait_for_function("navigator.serviceWorker.controller !== null")
    # A cache another install is filling at this moment, marked as the service worker
    # marks it: before the cache exists, so a clean-up in between never sees it unmarked.
    first.evaluate(
        """async () => {
            const state = await caches.open("durably-sw-state");
            await state.put("/__durably-sw__/filling/durably-demo-being-filled", new Response(String(Date.now())));
            await caches.open("durably-demo-being-filled");
        }"""
    )
    # Version 2 adds a job to jobs.py.
    jobs_py = first.evaluate("fetch('/demo/jobs.py').then((r) => r.text())")

    def version_2(route: Route) -> None:
        route.fulfill(status=200, content_type="text/x-python", body=jobs_py + V2_JOB)

    opfs_context.route("**/demo/jobs.py", version_2)
    first.reload()  # still version 1; it finds the change and installs version 2
    expect(first.locator("#offline-status")).to_contain_text("A new version is ready")
    with first.expect_navigation():
        first.get_by_role("button", name="Reload to update").click()
    # The first tab's reload released the database: the second tab, still on version 1,
    # takes over and boots Python, wheels and jobs.py from version 1's cache.
    assert "added-in-v2" not in jobs_once_owner(second)
    caches = demo_caches(first)
    assert v1 in caches and "durably-demo-being-filled" in caches, caches
    [v2] = [name for name in caches if name not in (v1, "durably-demo-being-filled")]
    cached_jobs = first.evaluate(
        "async (name) => (await (await caches.open(name)).match('/demo/jobs.py')).text()", v1
    )
    assert "added-in-v2" not in cached_jobs  # version 1's cache was never refilled

    # When the second tab closes, the first (version 2) takes over with version 2's jobs.
    second.close()
    assert "added-in-v2" in jobs_once_owner(first)
    # Version 1 goes at the next clean-up (a navigation) once no page or worker uses it:
    # the closed tab's worker may outlive it briefly, so navigate again until it has gone.
    # The cache being filled stays.
    third = opfs_context.new_page()
    deadline = time.monotonic() + 60
    while True:
        third.goto(f"{server}/demo/?db=-")
        third.wait_for_timeout(500)
        if v1 not in (caches := demo_caches(third)):
            break
        assert time.monotonic() < deadline, caches
    assert caches == sorted([v2, "durably-demo-being-filled"]), caches
