"""Several tabs of one app in real Chromium: every tab uses the whole client API while
exactly one tab (the holder of the Web Lock) runs the jobs; the others relay their calls
to it and receive its events (web/durably/relay.js), and one of them takes over, without
a reload, when the owner goes."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from urllib.parse import quote

from helpers import BOOT_TIMEOUT_MS, call, wait_ready
from playwright.sync_api import BrowserContext, Page

JOBS = ["./torture_jobs.py"]

# Collects this tab's events as [type, runId] and remembers the client as `window.d`.
LISTEN = """async () => {
    const d = await window.durablyReady;
    window.d = d;
    window.seen = [];
    d.on("*", (e) => window.seen.push([e.type, e.runId ?? null]));
    return d.role;
}"""


def open_tab(context: BrowserContext, server: str, database: str) -> Page:
    page = context.new_page()
    settings = json.dumps({"jobs": JOBS, "database": database, "maxConcurrentRuns": 2})
    page.goto(f"{server}/testing/reliability.html?config={quote(settings)}")
    wait_ready(page)
    page.evaluate(LISTEN)
    return page


def role(page: Page) -> str:
    value: str = page.evaluate("window.d.role")
    return value


def wait_for_owner(pages: list[Page]) -> Page:
    """The one page whose tab owns the database, once every other page knows it."""
    deadline = time.monotonic() + BOOT_TIMEOUT_MS / 1000
    while True:
        owners = [page for page in pages if role(page) == "owner"]
        assert len(owners) <= 1, [role(page) for page in pages]
        if owners:
            break
        assert time.monotonic() < deadline, "no tab took over"
        time.sleep(0.2)
    owner_id = owners[0].evaluate("window.d.tabId")
    for page in pages:
        page.wait_for_function(
            "(id) => window.d.tabId === id || window.d._relay.ownerTabId === id", arg=owner_id
        )
    return owners[0]


def worker_state(page: Page) -> str:
    """What this tab's own worker is: "ready" (owner), "secondary", "booting", ..."""
    state: str = page.evaluate("async () => (await window.d._request('ping', {})).state")
    return state


def seen(page: Page, run_id: str) -> list[str]:
    types: list[str] = page.evaluate(
        "(id) => window.seen.filter(([, runId]) => runId === id).map(([type]) => type)", run_id
    )
    return types


def read_journal(context: BrowserContext, server: str, name: str) -> list[list[str]]:
    """The execution journal of web/testing/torture_jobs.py: [instance, run id, step, ms]."""
    page = context.new_page()
    page.goto(f"{server}/testing/opfs-sqlite.html")
    text: str = page.evaluate(
        """async (name) => {
            const root = await navigator.storage.getDirectory();
            const directory = await root.getDirectoryHandle("durably-torture");
            const file = await directory.getFileHandle(`${name}.log`);
            for (let attempt = 0; ; attempt++) {
                try { return await (await file.getFile()).text(); }
                catch (e) { if (attempt > 100) throw e; await new Promise((r) => setTimeout(r, 50)); }
            }
        }""",
        name,
    )
    page.close()
    return [line.split() for line in text.splitlines()]


def test_secondaries_use_the_owner_and_every_tab_sees_the_events(
    opfs_context: BrowserContext, server: str
) -> None:
    database = "tabs-relay"
    owner = open_tab(opfs_context, server, database)
    assert role(owner) == "owner"
    second = open_tab(opfs_context, server, database)
    third = open_tab(opfs_context, server, database)
    tabs = [owner, second, third]
    job = {"journal": database, "steps": 4, "step_ms": 10}
    run_a = call(second, '(d, input) => d.trigger("torture-good", input)', job)
    done = call(
        third,
        '(d, input) => d.triggerAndWait("torture-good", input, { timeout: 60000 })',
        job,
    )
    assert done["output"] == {"sum": 14, "steps": 4}
    finished = call(second, "(d, id) => d.waitForRun(id, { timeout: 60000 })", run_a["id"])
    assert finished["status"] == "completed"
    # The relayed triggers got keys of their own; each created its run.
    assert run_a["idempotencyKey"].startswith("relay:")
    assert run_a["disposition"] == "created" and done["disposition"] == "created"
    for run_id in (run_a["id"], done["id"]):
        for page in tabs:
            page.wait_for_function(
                "(id) => window.seen.some(([t, r]) => t === 'run:complete' && r === id)", arg=run_id
            )
            types = seen(page, run_id)
            assert types.count("run:complete") == 1, types
            assert types.count("step:complete") == 4, types
    # Reads, steps, logs and counts answer the same in every tab.
    runs = [call(page, "(d) => d.getRuns()") for page in tabs]
    assert [[r["id"] for r in listed] for listed in runs] == [[r["id"] for r in runs[0]]] * 3
    assert {call(page, "(d) => d.countRuns()") for page in tabs} == {2}
    steps = call(third, "(d, id) => d.getSteps(id)", run_a["id"])
    assert [s["name"] for s in steps] == ["s0", "s1", "s2", "s3"]
    # Only the owner's worker opened the database.
    assert [worker_state(page) for page in tabs] == ["ready", "secondary", "secondary"]
    for page in tabs:
        page.close()


def test_closing_the_owner_mid_run_hands_over_and_every_call_settles(
    opfs_context: BrowserContext, server: str
) -> None:
    database = "tabs-handover"
    owner = open_tab(opfs_context, server, database)
    second = open_tab(opfs_context, server, database)
    third = open_tab(opfs_context, server, database)
    job = {"journal": database, "steps": 10, "step_ms": 400}
    run = call(second, '(d, input) => d.trigger("torture-good", input)', job)
    run_id = run["id"]
    # A subscription in the third tab, and the run half done.
    third.evaluate(
        """(id) => { window.subscribed = (async () => {
            const types = [];
            for await (const e of window.d.subscribe(id)) types.push(e.type);
            return types; })(); }""",
        run_id,
    )
    third.wait_for_function(
        "(id) => window.seen.filter(([t, r]) => t === 'step:complete' && r === id).length >= 3",
        arg=run_id,
    )
    # Calls in flight while the owner goes: reads, a wait, a trigger, a cancel.
    for page in (second, third):
        page.evaluate(
            """([id, job]) => {
                const d = window.d;
                window.inflight = Promise.allSettled([
                    d.getRuns(), d.countRuns(), d.getSteps(id),
                    d.waitForRun(id, { timeout: 120000 }),
                    d.trigger("torture-good", { ...job, steps: 1 }),
                    d.cancel("no-such-run"),
                ]).then((outcomes) => outcomes.map((o) => o.status === "fulfilled"
                    ? "ok" : `${o.reason.name}: ${o.reason.message}`));
            }""",
            [run_id, job],
        )
    owner.close()  # the queued lock makes one of the others the owner
    new_owner = wait_for_owner([second, third])
    for page in (second, third):
        outcomes = page.evaluate("window.inflight")
        assert outcomes[:5] == ["ok"] * 5, outcomes  # re-sent to the next owner
        # cancel of an unknown run: either answered (NotFoundError) before the owner
        # went, or rejected because the owner changed with it in flight.
        assert outcomes[5].split(":")[0] in ("NotFoundError", "OwnerChangedError"), outcomes
    final = call(second, "(d, id) => d.waitForRun(id, { timeout: 120000 })", run_id)
    assert final["status"] == "completed", final
    assert final["output"] == {"sum": sum(i * i for i in range(10)), "steps": 10}
    types = third.evaluate("window.subscribed")
    assert types[-1] == "run:complete" and types.count("run:complete") == 1, types
    for page in (second, third):
        page.wait_for_function(
            "(id) => window.seen.some(([t, r]) => t === 'run:complete' && r === id)", arg=run_id
        )
        assert seen(page, run_id).count("run:complete") == 1
    # The triggers that were in flight (re-sent with their key) made one run each.
    assert call(new_owner, '(d) => d.countRuns({ jobName: "torture-good" })') == 3
    call(
        new_owner,
        """async (d) => { for (const r of await d.getRuns())
            await d.waitForRun(r.id, { timeout: 120000 }); }""",
    )
    for page in (second, third):
        page.close()
    lines = read_journal(opfs_context, server, database)
    executions = Counter((run, step) for _, run, step, _ in lines if run == run_id)
    assert {step for _, step in executions} == {f"s{i}" for i in range(10)}
    again = [step for (_, step), count in executions.items() if count > 1]
    # At most the step in flight when the owner went ran again; no completed step did.
    assert len(again) <= 1, executions
    instances = [instance for instance, run, _, _ in lines if run == run_id]
    assert len(set(instances)) == 2  # the first owner's worker, then the new one's


RACE = """([job, key]) => new Promise((resolve) => {
    const channel = new BroadcastChannel("durably-test:race");
    channel.onmessage = () => resolve(window.d.trigger("torture-good", job, { idempotencyKey: key })
        .then((run) => [run.id, run.disposition], (e) => [null, `${e.name}: ${e.message}`]));
    window.raceReady = true;
})"""


def test_racing_triggers_with_one_key_from_every_tab_create_one_run(
    opfs_context: BrowserContext, server: str
) -> None:
    database = "tabs-race"
    tabs = [open_tab(opfs_context, server, database) for _ in range(3)]
    starter = opfs_context.new_page()
    starter.goto(f"{server}/testing/opfs-sqlite.html")  # same origin, no client
    job = {"journal": database, "steps": 1, "step_ms": 0}
    for round_ in range(3):
        key = f"race-{round_}"
        for page in tabs:
            page.evaluate(f"(arg) => {{ window.race = ({RACE})(arg); }}", [job, key])
        starter.evaluate("new BroadcastChannel('durably-test:race').postMessage('go')")
        outcomes = [page.evaluate("window.race") for page in tabs]
        assert len({run_id for run_id, _ in outcomes}) == 1, outcomes
        assert sorted(d for _, d in outcomes) == ["created", "idempotent", "idempotent"], outcomes
    assert call(tabs[0], "(d) => d.countRuns()") == 3
    for page in tabs:
        page.close()
    starter.close()


def test_random_tab_churn_never_makes_two_owners_or_leaves_a_call_unanswered(
    opfs_context: BrowserContext, server: str
) -> None:
    rng = random.Random(20240611)
    database = "tabs-churn"
    open_tabs = [open_tab(opfs_context, server, database)]
    actions = []
    for round_ in range(6):
        if len(open_tabs) < 2 or (len(open_tabs) < 4 and rng.random() < 0.5):
            open_tabs.append(open_tab(opfs_context, server, database))
            action = "open"
        else:
            owner = next(page for page in open_tabs if role(page) == "owner")
            if rng.random() < 0.5:
                victim = owner
            else:
                others = [page for page in open_tabs if page is not owner]
                victim = others[rng.randrange(len(others))]
            open_tabs.remove(victim)
            action = f"close {role(victim)}"
            # A call from every tab in flight while the tab closes.
            for page in open_tabs:
                page.evaluate(
                    """() => { window.churn = window.d.countRuns().then(
                        (n) => `ok ${n}`, (e) => `${e.name}: ${e.message}`); }"""
                )
            victim.close()
            for page in open_tabs:
                outcome = page.evaluate("window.churn")
                assert outcome.startswith("ok"), (round_, action, outcome)
        actions.append(action)
        owner = wait_for_owner(open_tabs)
        states = [worker_state(page) for page in open_tabs]
        assert states.count("ready") == 1, (round_, action, states)
        assert states.count("secondary") == len(open_tabs) - 1, (round_, action, states)
        # Every tab's call is answered, by the one owner.
        job = {"journal": database, "steps": 1, "step_ms": 0}
        runs = [call(page, '(d, job) => d.trigger("torture-good", job)', job) for page in open_tabs]
        assert len({r["id"] for r in runs}) == len(open_tabs)
        counted = {call(page, "(d) => d.countRuns()") for page in open_tabs}
        assert len(counted) == 1, counted
        assert owner in open_tabs
    assert "close owner" in actions and "close secondary" in actions, actions
    for page in open_tabs:
        page.close()


def test_a_silent_owner_is_reported_and_its_return_noticed(
    opfs_context: BrowserContext, server: str
) -> None:
    database = "tabs-frozen"
    owner = open_tab(opfs_context, server, database)
    second = open_tab(opfs_context, server, database)
    wait_for_owner([owner, second])
    assert second.evaluate("window.d.ownerResponsive") is True
    # The owner's page stops sending (as a suspended tab would) but keeps its lock.
    owner.evaluate("clearInterval(window.d._relay._ticker)")
    second.wait_for_function("window.d.ownerResponsive === false", timeout=15_000)
    assert second.evaluate("window.seen.some(([t]) => t === 'owner-unresponsive')")
    assert role(second) == "secondary"  # the owner still holds the lock: no takeover
    owner.evaluate("window.d._relay._announce()")  # it wakes up
    second.wait_for_function("window.d.ownerResponsive === true", timeout=15_000)
    assert call(second, "(d) => d.countRuns()") == 0
    for page in (owner, second):
        page.close()
