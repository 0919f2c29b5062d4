"""The browser runtime end to end: boot, events, persistence, resume after reload,
ownership across tabs, bad requests, and no request leaving our origin."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from helpers import call, call_error, open_demo, wait_ready
from playwright.sync_api import BrowserContext


def step_executions(logs: list[dict[str, Any]]) -> Counter[str]:
    """How many times each countdown step function ran (it logs once per execution)."""
    return Counter(
        log["message"].removeprefix("executing ")
        for log in logs
        if log["message"].startswith("executing ")
    )


def test_boot_trigger_and_events_in_order(
    opfs_context: BrowserContext, server: str, record_requests: Callable[..., Any]
) -> None:
    requests = record_requests(opfs_context)
    page = open_demo(opfs_context, server)
    assert wait_ready(page)["role"] == "owner"
    result = call(
        page,
        """async (d) => {
            const events = [];
            d.on("*", (e) => { if (e.runId) events.push(e.type); });
            const result = await d.triggerAndWait("countdown", { steps: 2, step_ms: 0 }, { timeout: 20000 });
            return { result, events };
        }""",
    )
    assert result["result"]["output"] == {"completed": 2}
    assert result["result"]["disposition"] == "created"
    assert result["events"] == [
        "run:trigger",
        "run:leased",
        "step:start", "log:write", "step:complete", "run:progress",
        "step:start", "log:write", "step:complete", "run:progress",
        "run:complete",
    ]  # fmt: skip
    run = call(page, "(d, id) => d.getRun(id)", result["result"]["id"])
    assert run["status"] == "completed"
    assert run["jobName"] == "countdown"
    assert run["completedStepCount"] == 2
    assert requests.urls, "the request log recorded nothing"
    assert requests.foreign(server) == []


def test_data_survives_closing_the_page(opfs_context: BrowserContext, server: str) -> None:
    page = open_demo(opfs_context, server)
    run = call(
        page,
        """async (d) => {
            const run = await d.trigger("countdown", { steps: 1, step_ms: 0 }, { labels: { kept: "yes" } });
            await d.waitForRun(run.id, { timeout: 20000 });
            return run;
        }""",
    )
    page.close()
    reopened = open_demo(opfs_context, server)
    again = call(reopened, "(d, id) => d.getRun(id)", run["id"])
    assert again["status"] == "completed"
    assert again["labels"] == {"kept": "yes"}
    assert again["output"] == {"completed": 1}
    assert call(reopened, '(d) => d.countRuns({ labels: { kept: "yes" } })') == 1


def test_reload_mid_run_resumes_at_once_without_rerunning_steps(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_demo(opfs_context, server)
    run_id = call(
        page,
        '(d) => d.trigger("countdown", { steps: 12, step_ms: 150 }).then((run) => run.id)',
    )
    deadline = time.monotonic() + 60
    while call(page, "(d, id) => d.getRun(id)", run_id)["completedStepCount"] < 4:
        assert time.monotonic() < deadline, "the run made no progress"
        page.wait_for_timeout(50)
    page.reload()
    wait_ready(page)
    # The default lease is 30 s: finishing well within that proves the new owner
    # reclaimed the run at start-up instead of waiting for the old lease to expire.
    done = call(page, "(d, id) => d.waitForRun(id, { timeout: 15000 })", run_id)
    assert done["status"] == "completed"
    assert done["leaseGeneration"] == 2
    assert done["completedStepCount"] == 12
    executions = step_executions(call(page, "(d, id) => d.getLogs(id)", run_id))
    assert set(executions) == {f"step-{i}" for i in range(12)}
    rerun = [name for name, count in executions.items() if count > 1]
    # At most the step that was in flight at the reload ran twice (at-least-once).
    assert len(rerun) <= 1, executions
    assert all(count <= 2 for count in executions.values()), executions
    for i in range(4):
        assert executions[f"step-{i}"] == 1, executions


def test_second_tab_is_secondary_until_the_owner_closes(
    opfs_context: BrowserContext, server: str
) -> None:
    owner = open_demo(opfs_context, server)
    assert wait_ready(owner)["role"] == "owner"
    second = opfs_context.new_page()
    warnings: list[str] = []
    second.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    second.goto(f"{server}/demo/")
    assert wait_ready(second)["role"] == "secondary"
    assert any("another tab owns the job runtime" in w for w in warnings), warnings
    # Its calls are relayed to the owner tab.
    relayed = call(
        second,
        '(d) => d.triggerAndWait("countdown", { steps: 1, step_ms: 0 }, { timeout: 20000 })',
    )
    assert relayed["output"] == {"completed": 1}
    assert call(second, "(d) => d.role") == "secondary"

    owner.close()
    second.wait_for_function("window.durablyReady.then(d => d.role === 'owner')", timeout=120_000)
    second.evaluate(
        """() => window.durablyReady.then((d) => new Promise((resolve) => {
            if (d.jobs.length) resolve(); else d.on("boot", (e) => e.phase === "ready" && resolve());
        }))"""
    )
    result = call(
        second,
        '(d) => d.triggerAndWait("countdown", { steps: 1, step_ms: 0 }, { timeout: 20000 })',
    )
    assert result["output"] == {"completed": 1}


def test_bad_requests_reject_with_named_errors_and_store_nothing(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_demo(opfs_context, server)
    unknown = call_error(page, '(d) => d.trigger("no-such-job", {})')
    assert unknown.startswith("NotFoundError: job 'no-such-job' is not registered"), unknown
    invalid = call_error(page, '(d) => d.trigger("countdown", { steps: "many", step_ms: 1 })')
    assert invalid.startswith("ValidationError: invalid input for job 'countdown'"), invalid
    assert "steps" in invalid
    not_json = call_error(page, '(d) => d.trigger("countdown", { steps: NaN, step_ms: 1 })')
    assert not_json.startswith("ValidationError:") and "NaN" in not_json, not_json
    labels = call_error(page, '(d) => d.trigger("countdown", { steps: 1 }, { labels: { n: 1 } })')
    assert labels.startswith("ValidationError:") and "label" in labels, labels
    missing = call_error(page, '(d) => d.cancel("no-such-run")')
    assert missing.startswith("NotFoundError:"), missing
    assert call(page, "(d) => d.countRuns()") == 0


def test_cancel_mid_step_ends_the_step_before_the_run(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_demo(opfs_context, server)
    result = call(
        page,
        """async (d) => {
            const all = [];
            d.on("*", (e) => all.push(e));
            // Each step sleeps 1.5 s and ignores the signal: it finishes after the cancel.
            const run = await d.trigger("countdown", { steps: 3, step_ms: 1500 });
            const subscribed = [];
            const subscription = (async () => {
                for await (const e of d.subscribe(run.id)) subscribed.push(e.type);
            })();
            await new Promise((resolve) => {
                const off = d.on("step:start", (e) => { if (e.runId === run.id) { off(); resolve(); } });
            });
            await d.cancel(run.id);
            await subscription;
            // Longer than the step in flight: anything the execution emitted late shows up.
            await new Promise((resolve) => setTimeout(resolve, 2500));
            const mine = all.filter((e) => e.runId === run.id);
            return {
                types: mine.map((e) => e.type),
                cancelled: mine.filter((e) => e.type === "step:cancel").map((e) => e.stepName),
                subscribed,
                status: (await d.getRun(run.id)).status,
            };
        }""",
    )
    assert result["status"] == "cancelled"
    assert result["types"] == [
        "run:trigger", "run:leased", "step:start", "log:write", "step:cancel", "run:cancel"
    ]  # fmt: skip
    assert result["cancelled"] == ["step-0"]
    assert result["subscribed"] == [
        "run:leased",
        "step:start",
        "log:write",
        "step:cancel",
        "run:cancel",
    ]
