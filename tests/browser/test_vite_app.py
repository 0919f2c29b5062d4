"""The Vite example (examples/vite-app), installed from the packed npm tarball and built by
``vite build`` (``make example``), served by ``python -m http.server``: it boots, runs an
import, resumes it after a reload and works offline after the first visit."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect
from static_site import durably, go_offline, http_server, wait_for_run, wait_for_steps

BUILT = Path(__file__).resolve().parents[2] / "examples" / "vite-app" / "dist"
NOTES = "\n\n".join(f"Note {i}\nbody of note {i} #tag{i % 3}" for i in range(8))


def test_vite_app_runs_resumes_and_works_offline(opfs_context: BrowserContext) -> None:
    if not (BUILT / "durably-precache.json").is_file():
        pytest.fail("examples/vite-app/dist is missing: run `make example`")
    with http_server(BUILT) as base:
        page = opfs_context.new_page()
        page.goto(f"{base}/")
        assert durably(page, "(d) => d.jobs") == ["import-notes"]
        run = durably(
            page,
            "(d, text) => d.trigger('import-notes', { text, batch_size: 1, delay_ms: 250 })",
            NOTES,
        )
        wait_for_steps(page, run["id"], 3)
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=120_000)

        page.reload()  # interrupts the import: the next owner resumes it
        done = wait_for_run(page, run["id"])
        assert done["status"] == "completed" and done["leaseGeneration"] == 2
        assert len(done["output"]["notes"]) == 8
        assert done["output"]["tags"] == {"tag0": 3, "tag1": 3, "tag2": 2}
        expect(page.locator("#notes li")).to_have_count(8)
        expect(page.locator("durably-runs")).to_contain_text("import-notes")

        network = go_offline(opfs_context)
        page.reload()
        page.wait_for_function("window.durably || /Could not/.test(status.textContent)")
        expect(page.locator("#status")).to_have_text("Ready · works offline")
        page.get_by_role("button", name="Import notes").click()
        expect(page.locator("#notes li")).to_have_count(11, timeout=120_000)
        assert network == [], f"requests went to the network while offline: {network}"
