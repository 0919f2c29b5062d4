"""Events: every type is emitted in its situation with run_id, job_name and
timestamp; a simple run's order; and listeners that raise never break a run."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from harness import Database, FakeClock, claim_and_execute, record, until

from durably import CancellationSignal, Event, RunStatus, define_job
from durably.events import EVENT_TYPES
from durably.models import ms_to_datetime


@define_job(name="two-steps")
async def two_steps(step: Any, input: Any) -> Any:
    first = await step.run("first", lambda: 1)
    second = await step.run("second", lambda: first + 1)
    return {"sum": first + second}


async def test_simple_run_emits_events_in_order(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([two_steps], lease_ms=10_000, owner="me")
    events = record(durably)
    run = await durably.jobs["two-steps"].trigger({"x": 1}, labels={"k": "v"})
    await durably.process_one()

    assert events.types() == [
        "run:trigger",
        "run:leased",
        "step:start",
        "step:complete",
        "step:start",
        "step:complete",
        "run:complete",
    ]
    for event in events.events:
        assert (event.run_id, event.job_name) == (run.id, "two-steps")
        assert event.timestamp == ms_to_datetime(clock())
    trigger, leased, start1, done1, start2, done2, complete = events.events
    assert (trigger.input, trigger.labels) == ({"x": 1}, {"k": "v"})
    assert (leased.lease_owner, leased.lease_generation) == ("me", 1)
    assert leased.lease_expires_at == ms_to_datetime(clock() + 10_000)
    assert (start1.step_name, start1.step_index, start2.step_name, start2.step_index) == (
        "first",
        0,
        "second",
        1,
    )
    assert (done1.output, done2.output, done2.duration_ms) == (1, 2, 0)
    assert complete.output == {"sum": 3}


def _check(event: Event, run_id: str | None, job_name: str | None, clock: FakeClock) -> None:
    assert event.run_id == run_id
    assert event.job_name == job_name
    assert event.timestamp == ms_to_datetime(clock())
    data = json.loads(json.dumps(event.to_dict()))
    assert next(iter(data)) == "type" and data["type"] == event.type


Scenario = Callable[[Database, FakeClock], Awaitable[tuple[str | None, str | None, list[Event]]]]


async def _coalesced(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    durably = await db.runtime([two_steps])
    events = record(durably)
    run = await durably.jobs["two-steps"].trigger(1, concurrency_key="k")
    await durably.jobs["two-steps"].trigger(2, concurrency_key="k", coalesce="skip")
    return run.id, "two-steps", events.events


async def _renewed(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    renewed = asyncio.Event()

    async def long_step() -> None:
        await renewed.wait()

    @define_job(name="long")
    async def long(step: Any, input: Any) -> Any:
        await step.run("long", long_step)

    durably = await db.runtime([long], lease_ms=1_000, lease_renew_interval_ms=2)
    durably.on("run:lease-renewed", lambda e: renewed.set())
    events = record(durably)
    run = await durably.jobs["long"].trigger(None)
    clock.advance(100)
    await asyncio.wait_for(durably.process_one(), 2)
    (event,) = [e for e in events.events if e.type == "run:lease-renewed"][:1]
    assert event.lease_expires_at == ms_to_datetime(clock() + 1_000)
    return run.id, "long", events.events


async def _progress_and_log(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    @define_job(name="chatty")
    async def chatty(step: Any, input: Any) -> Any:
        step.progress(1, 2, "half")
        step.log.warn("careful", {"n": 1})

    durably = await db.runtime([chatty])
    events = record(durably)
    run = await durably.jobs["chatty"].trigger(None)
    await durably.process_one()
    progress = next(e for e in events.events if e.type == "run:progress")
    assert (progress.progress.current, progress.progress.total) == (1, 2)
    log = next(e for e in events.events if e.type == "log:write")
    assert (log.level, log.message, log.data, log.step_name) == ("warn", "careful", {"n": 1}, None)
    return run.id, "chatty", events.events


async def _failed(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    def broken() -> None:
        raise KeyError("missing")

    @define_job(name="failing")
    async def failing(step: Any, input: Any) -> Any:
        await step.run("broken", broken)

    durably = await db.runtime([failing])
    events = record(durably)
    run = await durably.jobs["failing"].trigger(None)
    await durably.process_one()
    fail = next(e for e in events.events if e.type == "run:fail")
    assert (fail.error, fail.failed_step) == ("KeyError: 'missing'", "broken")
    step_fail = next(e for e in events.events if e.type == "step:fail")
    assert (step_fail.step_name, step_fail.error) == ("broken", "KeyError: 'missing'")
    return run.id, "failing", events.events


async def _cancelled(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    entered = asyncio.Event()

    async def waits(signal: CancellationSignal) -> None:
        entered.set()
        await signal.wait()

    @define_job(name="cancellable")
    async def cancellable(step: Any, input: Any) -> Any:
        await step.run("waits", waits)

    durably = await db.runtime([cancellable])
    events = record(durably)
    run = await durably.jobs["cancellable"].trigger(None)
    task = asyncio.ensure_future(durably.process_one())
    await until(entered.is_set)
    await durably.cancel(run.id)
    await asyncio.wait_for(task, 2)
    step_cancel = next(e for e in events.events if e.type == "step:cancel")
    assert (step_cancel.step_name, step_cancel.step_index) == ("waits", 0)
    return run.id, "cancellable", events.events


async def _deleted(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    durably = await db.runtime([two_steps])
    events = record(durably)
    run = await durably.jobs["two-steps"].trigger(None)
    await durably.process_one()
    await durably.delete_run(run.id)
    return run.id, "two-steps", events.events


async def _worker_error(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    durably = await db.runtime([two_steps])
    events = record(durably)

    def broken_listener(event: Event) -> None:
        raise RuntimeError("listener broke")

    durably.on("step:complete", broken_listener)
    run = await durably.jobs["two-steps"].trigger(None)
    await durably.process_one()
    error = next(e for e in events.events if e.type == "worker:error")
    assert (error.error, error.context) == (
        "RuntimeError: listener broke",
        "listener for step:complete",
    )
    return run.id, "two-steps", events.events


async def _purged(db: Database, clock: FakeClock) -> tuple[None, None, list[Event]]:
    durably = await db.runtime([two_steps])
    run = await durably.jobs["two-steps"].trigger(None)
    await durably.process_one()
    events = record(durably)
    await durably.purge_runs(ms_to_datetime(clock() + 1))
    purge = next(e for e in events.events if e.type == "runs:purge")
    assert (purge.run_ids, purge.count) == ([run.id], 1)
    return None, None, events.events


async def _completed(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    durably = await db.runtime([two_steps])
    events = record(durably)
    run = await durably.jobs["two-steps"].trigger(None)
    await durably.process_one()
    return run.id, "two-steps", events.events


@define_job(name="approval")
async def approval(step: Any, input: Any) -> Any:
    return await step.wait_for_event("approved")


async def _waited(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    durably = await db.runtime([approval])
    events = record(durably)
    run = await durably.jobs["approval"].trigger(None)
    assert await claim_and_execute(durably) == "waiting"
    await durably.send_event(run.id, "approved", {"by": "ada"})
    assert await claim_and_execute(durably) == "completed"
    wait = events.of("run:wait")[0]
    assert (wait.kind, wait.name, wait.until) == ("event", "approved", None)
    wake = events.of("run:wake")[0]
    assert (wake.kind, wake.name) == ("event", "approved")
    return run.id, "approval", events.events


async def _retried(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("server said 503")
        return "ok"

    @define_job(name="flaky")
    async def job(step: Any, input: Any) -> Any:
        return await step.run("upload", flaky, retries=2, retry_delay=0)

    durably = await db.runtime([job])
    events = record(durably)
    run = await durably.jobs["flaky"].trigger(None)
    assert await claim_and_execute(durably) == "waiting"
    assert await claim_and_execute(durably) == "completed"
    retry = events.of("step:retry")[0]
    assert (retry.step_name, retry.attempt, retry.next_delay_ms) == ("upload", 1, 0)
    assert retry.error == "ConnectionError: server said 503"
    return run.id, "flaky", events.events


@define_job(name="fails-once")
async def fails_once(step: Any, input: Any) -> Any:
    await step.run("first", lambda: 1)
    raise RuntimeError("fails")


async def _resumed(db: Database, clock: FakeClock) -> tuple[str, str, list[Event]]:
    durably = await db.runtime([fails_once])
    events = record(durably)
    run = await durably.jobs["fails-once"].trigger(None)
    assert await claim_and_execute(durably) == "failed"
    resumed = await durably.resume(run.id)
    assert resumed.status == RunStatus.PENDING and resumed.error is None
    assert events.types()[-1] == "run:resume"
    return run.id, "fails-once", events.events


#: Which scenario shows each event type.
SCENARIOS: dict[str, Scenario] = {
    "run:trigger": _completed,
    "run:coalesced": _coalesced,
    "run:leased": _completed,
    "run:lease-renewed": _renewed,
    "run:progress": _progress_and_log,
    "run:complete": _completed,
    "run:fail": _failed,
    "run:cancel": _cancelled,
    "run:delete": _deleted,
    "runs:purge": _purged,
    "step:start": _completed,
    "step:complete": _completed,
    "step:fail": _failed,
    "step:cancel": _cancelled,
    "log:write": _progress_and_log,
    "worker:error": _worker_error,
    "run:wait": _waited,
    "run:wake": _waited,
    "step:retry": _retried,
    "run:resume": _resumed,
}


def test_every_event_type_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
async def test_event_is_emitted_in_its_situation(
    db: Database, clock: FakeClock, event_type: str
) -> None:
    run_id, job_name, events = await SCENARIOS[event_type](db, clock)
    matching = [e for e in events if e.type == event_type]
    assert matching, f"{event_type} was not emitted"
    for event in matching:
        _check(event, run_id, job_name, clock)


async def test_raising_listeners_never_break_the_run(db: Database) -> None:
    durably = await db.runtime([two_steps])
    errors = record(durably)

    def sync_breaks(event: Event) -> None:
        raise ValueError(f"sync {event.type}")

    async def async_breaks(event: Event) -> None:
        await asyncio.sleep(0)
        raise ValueError(f"async {event.type}")

    for event_type in ("run:trigger", "run:leased", "step:complete", "run:complete"):
        durably.on(event_type, sync_breaks)
        durably.on(event_type, async_breaks)
    run = await durably.jobs["two-steps"].trigger(None)
    assert await claim_and_execute(durably) == "completed"
    await until(lambda: len(errors.of("worker:error")) == 10)  # 5 events x 2 listeners

    done = await durably.get_run(run.id)
    assert done is not None and done.status == RunStatus.COMPLETED
    reported = sorted(e.error for e in errors.of("worker:error"))
    assert "ValueError: sync run:trigger" in reported
    assert "ValueError: async run:complete" in reported
    assert all(e.run_id == run.id for e in errors.of("worker:error"))


async def test_a_raising_worker_error_listener_is_logged_not_looped(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    durably = await db.runtime([two_steps])
    calls: list[str] = []

    def breaks(event: Event) -> None:
        calls.append(event.type)
        raise RuntimeError("again")

    durably.on("run:trigger", breaks)
    durably.on("worker:error", breaks)
    with caplog.at_level(logging.ERROR, logger="durably"):
        await durably.jobs["two-steps"].trigger(None)
    assert calls == ["run:trigger", "worker:error"]
    assert "worker:error listener raised" in caplog.text


async def test_on_checks_the_type_and_unsubscribes(db: Database) -> None:
    durably = await db.runtime([two_steps])
    with pytest.raises(ValueError, match="unknown event type 'run:started'"):
        durably.on("run:started", lambda e: None)
    seen: list[str] = []
    unsubscribe = durably.on("run:trigger", lambda e: seen.append(e.type))
    await durably.jobs["two-steps"].trigger(1)
    unsubscribe()
    unsubscribe()  # twice is harmless
    await durably.jobs["two-steps"].trigger(2)
    assert seen == ["run:trigger"]


# -- the terminal event is a run's last ---------------------------------------------------


def _blocking_job(name: str, entered: asyncio.Event, gate: asyncio.Event) -> Any:
    """A job whose second step blocks until `gate` is set, ignoring the signal."""

    async def blocked() -> str:
        entered.set()
        await gate.wait()
        return "late"

    @define_job(name=name)
    async def job(step: Any, input: Any) -> Any:
        await step.run("first", lambda: 1)
        await step.run("blocked", blocked)
        await step.run("never", lambda: 2)

    return job


STOPPED_IN_SECOND_STEP = [
    "run:trigger",
    "run:leased",
    "step:start",
    "step:complete",
    "step:start",
    "step:cancel",
    "run:cancel",
]


async def test_cancel_during_a_step_ends_the_step_then_the_run(db: Database) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()
    durably = await db.runtime([_blocking_job("blocking", entered, gate)])
    events = record(durably)
    run = await durably.jobs["blocking"].trigger(None)
    task = asyncio.ensure_future(claim_and_execute(durably))
    await until(entered.is_set)
    await durably.cancel(run.id)
    # Announced at once, in order, while the step function is still running.
    assert events.types(run.id) == STOPPED_IN_SECOND_STEP
    gate.set()
    assert await asyncio.wait_for(task, 2) == "cancelled"
    assert events.types(run.id) == STOPPED_IN_SECOND_STEP  # nothing after run:cancel
    cancel = events.of("step:cancel")[0]
    assert (cancel.step_name, cancel.step_index) == ("blocked", 1)


async def test_cancel_by_another_runtime_ends_the_step_then_the_run(db: Database) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()
    job = _blocking_job("blocking", entered, gate)
    worker = await db.runtime([job])
    admin = await db.runtime([job])
    events = record(worker)
    run = await worker.jobs["blocking"].trigger(None)
    task = asyncio.ensure_future(claim_and_execute(worker))
    await until(entered.is_set)
    await admin.cancel(run.id)  # the worker learns of it only from its rejected write
    gate.set()
    assert await asyncio.wait_for(task, 2) == "cancelled"
    assert events.types(run.id) == STOPPED_IN_SECOND_STEP


async def test_cancel_by_another_runtime_seen_at_lease_renewal(db: Database) -> None:
    entered = asyncio.Event()

    async def waits(signal: CancellationSignal) -> str:
        entered.set()
        return await signal.wait()

    @define_job(name="renewing")
    async def job(step: Any, input: Any) -> Any:
        await step.run("waits", waits)

    worker = await db.runtime([job], lease_ms=1_000, lease_renew_interval_ms=2)
    admin = await db.runtime([job])
    events = record(worker)
    run = await worker.jobs["renewing"].trigger(None)
    task = asyncio.ensure_future(claim_and_execute(worker))
    await until(entered.is_set)
    await admin.cancel(run.id)
    assert await asyncio.wait_for(task, 2) == "cancelled"
    types = [t for t in events.types(run.id) if t != "run:lease-renewed"]
    assert types == ["run:trigger", "run:leased", "step:start", "step:cancel", "run:cancel"]


async def test_subscribe_yields_the_step_cancel_before_ending_at_run_cancel(
    db: Database,
) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()
    durably = await db.runtime([_blocking_job("blocking", entered, gate)])
    run = await durably.jobs["blocking"].trigger(None)

    async def consume() -> list[str]:
        return [e.type async for e in durably.subscribe(run.id)]

    consumer = asyncio.ensure_future(consume())
    task = asyncio.ensure_future(claim_and_execute(durably))
    await until(entered.is_set)
    await durably.cancel(run.id)
    gate.set()
    assert await asyncio.wait_for(task, 2) == "cancelled"
    assert await asyncio.wait_for(consumer, 1) == STOPPED_IN_SECOND_STEP[1:]
