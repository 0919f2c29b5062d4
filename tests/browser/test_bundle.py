"""``python -m durably bundle`` makes a static site that boots, resumes and works offline
from a plain ``python -m http.server`` (no special headers, not our server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playwright.sync_api import BrowserContext
from static_site import durably, go_offline, http_server, wait_for_run, wait_for_steps

REPO = Path(__file__).resolve().parents[2]


def installed_wheel(tmp_path: Path) -> str:
    """The Python of a fresh virtualenv with our wheel pip-installed, as a user gets it:
    nothing of this checkout is importable there."""
    wheels = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         str(REPO), "-w", str(wheels)],
        check=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("durably-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True)
    return python


def test_bundled_site_runs_resumes_and_works_offline(
    opfs_context: BrowserContext, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    python = installed_wheel(tmp_path)
    # As in the README, plus local sources of the pinned files so the test needs no network.
    subprocess.run(
        [python, "-m", "durably", "bundle", str(site), "--jobs", str(REPO / "web/demo/jobs.py"),
         "--pyodide", str(REPO / "node_modules/pyodide"), "--wheels", str(REPO / "build/pinned-wheels")],
        check=True, cwd=tmp_path,
    )  # fmt: skip
    with http_server(site) as base:
        page = opfs_context.new_page()
        page.goto(f"{base}/")
        assert durably(page, "(d) => d.jobs.sort()") == ["countdown", "import-csv"]
        run = durably(page, "(d) => d.trigger('countdown', { steps: 8, step_ms: 250 })")
        wait_for_steps(page, run["id"], 2)
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=120_000)

        page.reload()  # interrupts the run: the next owner resumes it
        done = wait_for_run(page, run["id"])
        assert done["status"] == "completed" and done["leaseGeneration"] == 2

        network = go_offline(opfs_context)
        page.reload()
        again = durably(page, "(d) => d.triggerAndWait('countdown', { steps: 2, step_ms: 0 })")
        assert again["output"] == {"completed": 2}
        assert network == [], f"requests went to the network while offline: {network}"
