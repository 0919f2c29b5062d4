"""The browser worker's protocol bridge, on CPython: one response per request, named
errors, camelCase records, and no message that can stop it."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from durably import Step, create_durably, define_job
from durably.browser.bridge import (
    HANDLERS,
    Bridge,
    _runtime_options,
    open_bridge,
    prepare_runtime,
)


class CountInput(BaseModel):
    steps: int


@define_job(name="count", input=CountInput)
async def count(step: Step, input: CountInput) -> dict[str, int]:
    for i in range(input.steps):
        await step.run(f"step-{i}", lambda i=i: i)
    return {"completed": input.steps}


class Page:
    """Collects what the bridge posts, split into responses and events."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def post(self, text: str) -> None:
        self.messages.append(json.loads(text))

    def responses(self) -> dict[Any, dict[str, Any]]:
        return {m["id"]: m for m in self.messages if "ok" in m}

    def events(self) -> list[dict[str, Any]]:
        """Every event, in order (events travel only as ``{"type": "events", "events"}``)."""
        assert all(m.get("type") == "events" for m in self.messages if "ok" not in m)
        return [e for m in self.messages if m.get("type") == "events" for e in m["events"]]


@pytest.fixture
async def bridged() -> AsyncIterator[tuple[Bridge, Page]]:
    page = Page()
    durably = create_durably(":memory:", [count], polling_interval_ms=50)
    bridge = Bridge(durably, page.post)
    await durably.init()
    yield bridge, page
    await bridge.close()


async def ask(bridge: Bridge, page: Page, request: dict[str, Any]) -> dict[str, Any]:
    bridge.handle(json.dumps(request))
    for _ in range(500):
        response = page.responses().get(request["id"])
        if response is not None:
            return response
        await asyncio.sleep(0.01)
    raise AssertionError(f"no response to {request}")


async def test_trigger_and_wait_returns_camel_case_records(bridged: tuple[Bridge, Page]) -> None:
    bridge, page = bridged
    done = await ask(bridge, page, {"id": 1, "type": "triggerAndWait", "job": "count",
                                    "input": {"steps": 2}, "timeout": 5000,
                                    "options": {"labels": {"user_name": "ada"}}})  # fmt: skip
    assert done["ok"] is True
    assert done["result"]["output"] == {"completed": 2}
    run = await ask(bridge, page, {"id": 2, "type": "getRun", "runId": done["result"]["id"]})
    assert run["result"]["jobName"] == "count"
    assert run["result"]["completedStepCount"] == 2
    # User data keeps its own keys: only our records are camelCased.
    assert run["result"]["labels"] == {"user_name": "ada"}
    steps = await ask(bridge, page, {"id": 3, "type": "getSteps", "runId": done["result"]["id"]})
    assert [s["name"] for s in steps["result"]] == ["step-0", "step-1"]
    assert "startedAt" in steps["result"][0]
    events = [e["type"] for e in page.events() if e.get("runId") == done["result"]["id"]]
    assert events[0] == "run:trigger" and events[-1] == "run:complete"
    # Dates travel as epoch ms (the page client makes them ISO-8601 strings).
    assert all("jobName" in e and isinstance(e["timestamp"], int) for e in page.events())


async def test_waiting_for_a_cancelled_run_fails_with_run_cancelled_error(
    bridged: tuple[Bridge, Page],
) -> None:
    bridge, page = bridged
    await bridge.durably.stop()  # the run stays pending until it is cancelled
    run = await ask(bridge, page, {"id": 1, "type": "trigger", "job": "count",
                                   "input": {"steps": 1}})  # fmt: skip
    await ask(bridge, page, {"id": 2, "type": "cancel", "runId": run["result"]["id"]})
    waited = await ask(bridge, page, {"id": 3, "type": "waitForRun", "runId": run["result"]["id"]})
    assert waited["ok"] is False
    assert waited["error"]["name"] == "RunCancelledError"


async def test_purge_posts_one_camel_case_runs_purge_event(bridged: tuple[Bridge, Page]) -> None:
    bridge, page = bridged
    done = await ask(bridge, page, {"id": 1, "type": "triggerAndWait", "job": "count",
                                    "input": {"steps": 1}, "timeout": 5000})  # fmt: skip
    later = "2999-01-01T00:00:00Z"
    purged = await ask(bridge, page, {"id": 2, "type": "purgeRuns", "olderThan": later})
    assert purged["result"] == 1
    bridge.flush_events()
    (event,) = [e for e in page.events() if e["type"] == "runs:purge"]
    assert event["runIds"] == [done["result"]["id"]]
    assert (event["count"], event["runId"], event["jobName"]) == (1, None, None)


async def test_a_single_event_travels_in_the_one_events_shape(
    bridged: tuple[Bridge, Page],
) -> None:
    bridge, page = bridged
    bridge.durably.report_error(RuntimeError("lone"), "test")
    bridge.flush_events()
    (message,) = page.messages
    assert message["type"] == "events"
    assert [e["error"] for e in message["events"]] == ["RuntimeError: lone"]


@pytest.mark.parametrize(
    ("request_", "name", "fragment"),
    [
        ({"id": 1, "type": "trigger", "job": "nope", "input": {}}, "NotFoundError", "'nope'"),
        ({"id": 1, "type": "trigger", "job": "count", "input": {"steps": "x"}},
         "ValidationError", "steps"),
        ({"id": 1, "type": "trigger", "job": "count", "input": {"steps": 1},
          "options": {"labels": {"a": 1}}}, "ValidationError", "label"),
        ({"id": 1, "type": "trigger", "job": "count", "input": {"steps": 1},
          "options": {"priority": 1}}, "ValidationError", "priority"),
        ({"id": 1, "type": "getRun"}, "ValidationError", "runId"),
        ({"id": 1, "type": "explode"}, "ProtocolError", "unknown request type"),
        ({"id": 1, "type": "cancel", "runId": "missing"}, "NotFoundError", "missing"),
        ({"id": 1, "type": "purgeRuns", "olderThan": "yesterday"}, "ValidationError", "olderThan"),
        ({"id": 1, "type": "getRuns", "status": "sleeping"}, "ValidationError", "status"),
    ],
)  # fmt: skip
async def test_bad_requests_get_named_errors_and_store_nothing(
    bridged: tuple[Bridge, Page], request_: dict[str, Any], name: str, fragment: str
) -> None:
    bridge, page = bridged
    response = await ask(bridge, page, request_)
    assert response["ok"] is False
    assert response["error"]["name"] == name
    assert fragment in response["error"]["message"]
    assert await bridge.durably.count_runs() == 0


async def test_random_messages_each_get_one_response(bridged: tuple[Bridge, Page]) -> None:
    bridge, page = bridged
    rng = random.Random(20261122)
    values: list[Any] = [None, True, 0, -1, 1.5, "", "x" * 300, [], {}, [1, {"a": None}],
                         {"steps": 1}, {"steps": -3}, "count", "2020-01-01T00:00:00Z"]  # fmt: skip
    types = [*HANDLERS, "init", "", "trigger ", None, 7]
    fields = ["job", "input", "runId", "options", "status", "jobName", "labels", "limit",
              "offset", "olderThan", "timeout"]  # fmt: skip
    texts: list[str] = ["", "{", "[]", "null", '"text"', "{}", '{"id": true}', '{"id": 1.5}']
    for n in range(2000):
        message: dict[str, Any] = {"id": f"fuzz-{n}", "type": rng.choice(types)}
        for field in rng.sample(fields, rng.randint(0, 4)):
            message[field] = rng.choice(values)
        if message["type"] in ("triggerAndWait", "waitForRun"):
            message["timeout"] = 0  # never wait in a fuzz test
        texts.append(json.dumps(message))
    for text in texts:
        bridge.handle(text)
    for _ in range(1000):
        if len([m for m in page.messages if "ok" in m]) >= len(texts):
            break
        await asyncio.sleep(0.01)
    responses = [m for m in page.messages if "ok" in m]
    assert len(responses) == len(texts)
    ids = [r["id"] for r in responses if r["id"] is not None]
    assert len(ids) == len(set(ids)), "a request got more than one response"
    assert all(r["ok"] or (r["error"]["name"] and r["error"]["message"]) for r in responses)
    # Still serving afterwards.
    ok = await ask(bridge, page, {"id": "after", "type": "getJobs"})
    assert ok == {"id": "after", "ok": True, "result": ["count"]}


async def test_open_bridge_loads_job_modules_and_reports_broken_ones(tmp_path: Path) -> None:
    good = tmp_path / "good_jobs.py"
    good.write_text(
        "from durably import define_job\n"
        "@define_job(name='hello')\n"
        "async def hello(step, input):\n"
        "    return await step.run('greet', lambda: f'hello {input}')\n"
    )
    broken = tmp_path / "broken_jobs.py"
    broken.write_text("import os\n\nvalue = 1\nraise RuntimeError('boom at import')\n")
    page = Page()
    config = {
        "databasePath": str(tmp_path / "app.sqlite3"),
        "synchronous": "NORMAL",
        "options": {"pollingIntervalMs": 50, "leaseMs": 10_000},
        "jobModules": [
            {"source": "/app/broken_jobs.py", "module": "broken_jobs", "path": str(broken)},
            {"source": "/app/good_jobs.py", "module": "good_jobs", "path": str(good)},
        ],
    }
    bridge = await open_bridge(json.dumps(config), page.post)
    try:
        info = json.loads(bridge.info_json())
        assert info["jobs"] == ["hello"]
        [error] = info["jobErrors"]
        assert error["module"] == "/app/broken_jobs.py"
        assert "line 4" in error["message"] and "boom at import" in error["message"]
        assert any(e["type"] == "worker:error" and "broken_jobs" in e["error"]
                   for e in page.events())  # fmt: skip
        done = await ask(bridge, page, {"id": 1, "type": "triggerAndWait", "job": "hello",
                                        "input": "ada", "timeout": 5000})  # fmt: skip
        assert done["result"]["output"] == "hello ada"
    finally:
        await bridge.close()


async def test_prepared_job_modules_open_without_loading_them_again(tmp_path: Path) -> None:
    """A waiting tab imports its job modules before it owns the database (prepare_runtime,
    which opens nothing); open_bridge then uses them instead of importing them again."""
    jobs = tmp_path / "standby_jobs.py"
    jobs.write_text(
        "from durably import define_job\n"
        "IMPORTS = globals().get('IMPORTS', 0) + 1\n"
        "@define_job(name='standby')\n"
        "async def standby(step, input):\n"
        "    return await step.run('one', lambda: 1)\n"
    )
    modules = [{"source": "/app/standby_jobs.py", "module": "standby_jobs", "path": str(jobs)}]
    database = tmp_path / "app.sqlite3"
    prepared = prepare_runtime(json.dumps({"jobModules": modules}))
    assert [job.name for job in prepared.jobs] == ["standby"]
    assert not database.exists()
    jobs.write_text("raise RuntimeError('imported twice')\n")
    config = {"databasePath": str(database), "jobModules": modules}
    bridge = await open_bridge(json.dumps(config), Page().post, prepared)
    try:
        assert json.loads(bridge.info_json())["jobs"] == ["standby"]
        assert json.loads(bridge.info_json())["jobErrors"] == []
    finally:
        await bridge.close()


async def test_open_bridge_rejects_unknown_runtime_options(tmp_path: Path) -> None:
    config = {"databasePath": str(tmp_path / "x.sqlite3"), "options": {"leaseMS": 5}}
    with pytest.raises(Exception, match="unknown runtime option"):
        await open_bridge(json.dumps(config), Page().post)


def test_runtime_options_map_browser_names_to_python_ones() -> None:
    kwargs = _runtime_options({"maxStalledAttempts": 5, "maxConcurrentRuns": 2})
    assert kwargs["max_stalled_attempts"] == 5
    assert kwargs["max_concurrent_runs"] == 2


@define_job(name="approve")
async def approve(step: Any, input: Any) -> Any:
    await step.wait_until_online("network")
    return await step.wait_for_event("approval")


async def test_send_event_resume_delays_and_the_network_over_the_protocol() -> None:
    page = Page()
    durably = create_durably(":memory:", [approve], polling_interval_ms=5)
    bridge = Bridge(durably, page.post)
    await durably.init()
    try:
        bridge.set_online(False)
        delayed = await ask(bridge, page, {"id": 1, "type": "trigger", "job": "approve",
                                           "options": {"delayMs": 3_600_000}})  # fmt: skip
        assert delayed["ok"] and delayed["result"]["runAt"] is not None
        started = await ask(bridge, page, {"id": 2, "type": "trigger", "job": "approve"})
        run_id = started["result"]["id"]
        for _ in range(200):
            run = await durably.get_run(run_id)
            if run is not None and run.status == "waiting":
                break
            await asyncio.sleep(0.01)
        got = await ask(bridge, page, {"id": 3, "type": "getRun", "runId": run_id})
        assert got["result"]["waitingFor"] == {"kind": "online", "name": "network", "until": None}
        bridge.set_online(True)
        sent = await ask(bridge, page, {"id": 4, "type": "sendEvent", "runId": run_id,
                                        "name": "approval", "payload": {"ok": True}})  # fmt: skip
        assert sent == {"id": 4, "ok": True, "result": None}
        done = await ask(bridge, page, {"id": 5, "type": "waitForRun", "runId": run_id,
                                        "timeout": 2000})  # fmt: skip
        assert done["result"]["output"] == {"ok": True}
        refused = await ask(bridge, page, {"id": 6, "type": "resume", "runId": run_id})
        assert refused["error"]["name"] == "ConflictError"
        unknown = await ask(bridge, page, {"id": 7, "type": "sendEvent", "runId": "nope",
                                           "name": "approval"})  # fmt: skip
        assert unknown["error"]["name"] == "NotFoundError"
        events = [e["type"] for e in page.events()]
        assert {"run:wait", "run:wake"} <= set(events)
    finally:
        await bridge.close()
