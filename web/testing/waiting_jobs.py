"""Jobs of the browser tests of waiting runs (tests/browser/test_waiting.py)."""

from __future__ import annotations

from typing import Any

from durably import Step, define_job


@define_job(name="approval")
async def approval(step: Step, input: Any) -> Any:
    """Waits for the event "approval" and returns its payload."""
    before = await step.run("prepare", lambda: "prepared")
    payload = await step.wait_for_event("approval")
    return {"before": before, "payload": payload}


async def _fetch_json() -> Any:
    from pyodide.http import pyfetch  # the worker's fetch: fails while the browser is offline

    response = await pyfetch("/testing/json.py", cache="no-store")
    return response.status


@define_job(name="upload")
async def upload(step: Step, input: Any) -> Any:
    """Waits for the network, then fetches with retries (offline failures not counted)."""
    await step.wait_until_online("network")
    return await step.run("upload", _fetch_json, retries=3, retry_delay=0.2)


@define_job(name="upload-now")
async def upload_now(step: Step, input: Any) -> Any:
    """Fetches at once, with retries: an attempt failing offline waits for the network."""
    return await step.run("upload", _fetch_json, retries=3, retry_delay=0.2)
