"""Waiting runs: durable sleeps, events, the network, retries with durable delays, step
timeouts, delayed triggers and resuming failed runs. Every scenario runs against every
store, with the injected clock: nothing here sleeps for real (bar a step timeout's 50 ms)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from harness import (
    Database,
    FakeClock,
    assert_idle_loop_writes_nothing,
    claim_and_execute,
    count_polls,
    idle_cycles,
    record,
    sqlite_only,
    until,
)

from durably import RunStatus, define_job
from durably.errors import ConflictError, NotFoundError, ValidationError
from durably.models import ms_to_datetime
from durably.retries import RetryPolicy

HOUR_MS = 3_600_000
IDLE_POLL_MS = 2


@define_job(name="cool-down")
async def cool_down(step: Any, input: Any) -> Any:
    before = await step.run("before", lambda: "fetched")
    await step.sleep("cool-down", 3600)
    after = await step.run("after", lambda: "sent")
    return [before, after]


@define_job(name="quick")
async def quick(step: Any, input: Any) -> Any:
    return await step.run("only", lambda: input)


@define_job(name="approval")
async def approval(step: Any, input: Any) -> Any:
    timeout = input.get("timeout") if isinstance(input, dict) else None
    return await step.wait_for_event("approval", timeout=timeout)


async def test_a_sleeping_run_frees_the_slot_and_wakes_when_its_time_has_come(
    db: Database, clock: FakeClock
) -> None:
    durably = await db.runtime(
        [cool_down, quick], max_concurrent_runs=1, polling_interval_ms=IDLE_POLL_MS
    )
    events = record(durably)
    start = clock()
    sleeper = await durably.jobs["cool-down"].trigger(None)
    durably.start()
    await until(lambda: bool(events.of("run:wait")), what="the sleep")
    waiting = await durably.get_run(sleeper.id)
    assert waiting is not None and waiting.status == RunStatus.WAITING
    assert waiting.lease_owner is None and waiting.lease_expires_at is None
    assert waiting.wake_at == ms_to_datetime(start + HOUR_MS)
    assert waiting.waiting_for == {
        "kind": "sleep",
        "name": "cool-down",
        "until": "2023-11-14T23:13:20.000Z",
    }
    assert await durably.count_runs(status="waiting") == 1

    # Meanwhile the single slot serves other runs.
    quick_ids = [(await durably.jobs["quick"].trigger(i)).id for i in range(3)]
    for run_id in quick_ids:
        assert (await durably.wait_for_run(run_id, timeout=2)).status == RunStatus.COMPLETED

    polls = count_polls(durably)
    clock.advance(HOUR_MS - 1)
    await idle_cycles(polls, 3)
    still = await durably.get_run(sleeper.id)
    assert still is not None and still.status == RunStatus.WAITING
    clock.advance(1)
    done = await durably.wait_for_run(sleeper.id, timeout=2)
    assert done.output == ["fetched", "sent"]
    steps = {s.name: s for s in await durably.get_steps(sleeper.id)}
    assert (steps["cool-down"].kind, steps["cool-down"].status) == ("sleep", "completed")
    wake = [e for e in events.of("run:wake") if e.run_id == sleeper.id]
    assert [(e.kind, e.name) for e in wake] == [("sleep", "cool-down")]
    assert events.types(sleeper.id)[-1] == "run:complete"


async def test_a_new_runtime_mid_sleep_sleeps_only_what_remains(
    db: Database, clock: FakeClock
) -> None:
    calls: list[str] = []

    @define_job(name="napper")
    async def napper(step: Any, input: Any) -> Any:
        await step.run("before", lambda: calls.append("before"))
        await step.sleep("nap", 3600)
        await step.run("after", lambda: calls.append("after"))

    first = await db.runtime([napper])
    start = clock()
    run = await first.jobs["napper"].trigger(None)
    assert await claim_and_execute(first) == "waiting"
    await first.stop()
    clock.advance(HOUR_MS // 2)

    second = await db.runtime([napper], polling_interval_ms=HOUR_MS)
    assert await second.process_one() is False  # not due yet
    # The scheduler's timer is set from the store's next due time: half an hour left.
    assert second.store.next_wake_at(["napper"]) == start + HOUR_MS
    assert second._scheduler._next_timeout(HOUR_MS / 1000) == HOUR_MS / 2 / 1000
    clock.advance(HOUR_MS // 2)
    assert await claim_and_execute(second) == "completed"
    assert calls == ["before", "after"]  # the completed step did not run again
    nap = next(s for s in await second.get_steps(run.id) if s.name == "nap")
    assert nap.started_at == ms_to_datetime(start)


async def test_an_event_sent_before_the_wait_is_delivered_when_it_waits(db: Database) -> None:
    durably = await db.runtime([approval])
    events = record(durably)
    run = await durably.jobs["approval"].trigger(None)
    await durably.send_event(run.id, "approval", {"approved": True})
    await durably.send_event(run.id, "approval", {"approved": False})  # a second one
    assert await claim_and_execute(durably) == "completed"
    done = await durably.get_run(run.id)
    assert done is not None and done.output == {"approved": True}
    assert not events.of("run:wait")  # it never had to wait
    # Delivered once: the first event is taken, the second stays undelivered.
    assert db.count("durably_events", "delivered_at IS NOT NULL") == 1
    assert db.count("durably_events", "delivered_at IS NULL") == 1


async def test_an_event_sent_to_a_waiting_run_wakes_it_at_once(db: Database) -> None:
    durably = await db.runtime([approval], polling_interval_ms=HOUR_MS, preserve_steps=True)
    run = await durably.jobs["approval"].trigger(None)
    durably.start()
    await until(lambda: durably.store.get_statuses([run.id])[run.id] == "waiting")
    waiting = await durably.get_run(run.id)
    assert waiting is not None and waiting.wake_at is None
    assert waiting.waiting_for == {"kind": "event", "name": "approval", "until": None}
    await durably.send_event(run.id, "other-name", 1)  # not what it waits for
    await asyncio.sleep(0.02)
    assert durably.store.get_statuses([run.id])[run.id] == "waiting"
    await durably.send_event(run.id, "approval", {"approved": True})
    done = await durably.wait_for_run(run.id, timeout=2)  # no poll needed: woken
    assert done.output == {"approved": True}
    steps = await durably.get_steps(run.id)
    assert [(s.name, s.kind, s.status, s.output) for s in steps] == [
        ("approval", "event", "completed", {"approved": True})
    ]


async def test_an_event_wait_times_out(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([approval])
    run = await durably.jobs["approval"].trigger({"timeout": 60})
    assert await claim_and_execute(durably) == "waiting"
    waiting = await durably.get_run(run.id)
    assert waiting is not None and waiting.wake_at == ms_to_datetime(clock() + 60_000)
    clock.advance(59_999)
    assert await claim_and_execute(durably) is None
    clock.advance(1)
    assert await claim_and_execute(durably) == "failed"
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.error is not None
    assert failed.error.startswith("WaitTimeoutError: event 'approval' did not arrive")
    with pytest.raises(ConflictError):  # finished: it takes no more events
        await durably.send_event(run.id, "approval", 1)


async def test_a_job_can_catch_a_timeout_and_replay_keeps_it(
    db: Database, clock: FakeClock
) -> None:
    from durably.errors import WaitTimeoutError

    @define_job(name="approve-or-not")
    async def job(step: Any, input: Any) -> Any:
        try:
            answer = await step.wait_for_event("approval", timeout=10)
        except WaitTimeoutError:
            answer = "nobody answered"
        await step.sleep("then", 5)
        return answer

    durably = await db.runtime([job])
    run = await durably.jobs["approve-or-not"].trigger(None)
    assert await claim_and_execute(durably) == "waiting"
    clock.advance(10_000)
    assert await claim_and_execute(durably) == "waiting"  # timed out, now sleeping
    await durably.send_event(run.id, "approval", "too late")
    clock.advance(5_000)
    assert await claim_and_execute(durably) == "completed"
    done = await durably.get_run(run.id)
    assert done is not None and done.output == "nobody answered"


async def test_sending_events_checks_the_run_and_the_payload(db: Database) -> None:
    durably = await db.runtime([approval, quick])
    with pytest.raises(NotFoundError):
        await durably.send_event("no-such-run", "approval", 1)
    run = await durably.jobs["approval"].trigger(None)
    with pytest.raises(ValidationError):
        await durably.send_event(run.id, "approval", {"bad": float("nan")})
    with pytest.raises(ValidationError):
        await durably.send_event(run.id, "approval", {1, 2})
    with pytest.raises(ValidationError):
        await durably.send_event(run.id, "", 1)
    assert db.count("durably_events") == 0  # nothing stored
    done = await durably.jobs["quick"].trigger(1)
    await claim_and_execute(durably)
    await claim_and_execute(durably)
    with pytest.raises(ConflictError):
        await durably.send_event(done.id, "approval", 1)


async def test_a_wait_name_shares_the_namespace_of_step_names(db: Database) -> None:
    @define_job(name="duplicate")
    async def duplicate(step: Any, input: Any) -> Any:
        await step.run("same", lambda: 1)
        await step.sleep("same", 1)

    durably = await db.runtime([duplicate])
    run = await durably.jobs["duplicate"].trigger(None)
    assert await claim_and_execute(durably) == "failed"
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.error is not None
    assert failed.error.startswith("StepNameError: step 'same' is used twice")


def flaky_job(name: str, failures: int, calls: list[int], **options: Any) -> Any:
    def upload() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise ConnectionError(f"attempt {len(calls)} failed")
        return "uploaded"

    @define_job(name=name)
    async def job(step: Any, input: Any) -> Any:
        return await step.run("upload", upload, **options)

    return job


async def test_retries_wait_durably_and_keep_their_count_across_a_restart(
    db: Database, clock: FakeClock
) -> None:
    calls: list[int] = []
    job = flaky_job("flaky", 2, calls, retries=5, retry_delay=1.0, backoff=2.0)
    first = await db.runtime([job])
    events = record(first)
    run = await first.jobs["flaky"].trigger(None)
    assert await claim_and_execute(first) == "waiting"
    [retry] = events.of("step:retry")
    assert (retry.attempt, retry.next_delay_ms, retry.offline) == (1, 1_000, False)
    assert retry.error == "ConnectionError: attempt 1 failed"
    waiting = await first.get_run(run.id)
    assert waiting is not None and waiting.waiting_for is not None
    assert (waiting.waiting_for["kind"], waiting.waiting_for["name"]) == ("retry", "upload")
    [step] = await first.get_steps(run.id)
    assert (step.status, step.attempts, step.last_error) == (
        "waiting",
        1,
        "ConnectionError: attempt 1 failed",
    )
    await first.stop()

    second = await db.runtime([job])  # a restart: the count comes from the store
    events = record(second)
    assert await claim_and_execute(second) is None  # the delay is not over
    clock.advance(1_000)
    assert await claim_and_execute(second) == "waiting"
    [retry] = events.of("step:retry")
    assert (retry.attempt, retry.next_delay_ms) == (2, 2_000)
    clock.advance(2_000)
    assert await claim_and_execute(second) == "completed"
    [step] = await second.get_steps(run.id)
    assert (step.status, step.attempts, step.last_error) == (
        "completed",
        3,
        "ConnectionError: attempt 2 failed",
    )
    assert len(calls) == 3
    assert events.types(run.id)[-1] == "run:complete"


async def test_a_step_fails_once_its_retries_are_used_up(db: Database, clock: FakeClock) -> None:
    calls: list[int] = []
    durably = await db.runtime([flaky_job("hopeless", 99, calls, retries=1, retry_delay=0)])
    events = record(durably)
    run = await durably.jobs["hopeless"].trigger(None)
    assert await claim_and_execute(durably) == "waiting"
    assert await claim_and_execute(durably) == "failed"
    assert len(calls) == 2
    [step] = await durably.get_steps(run.id)
    assert (step.status, step.attempts, step.error) == (
        "failed",
        2,
        "ConnectionError: attempt 2 failed",
    )
    assert [e.type for e in events.events if e.type.startswith("step:")] == [
        "step:start",
        "step:retry",
        "step:start",
        "step:fail",
    ]


def test_retry_delays_grow_by_backoff_up_to_the_cap() -> None:
    policy = RetryPolicy.create(10, 1.0, 2.0, 300.0, None)
    assert [policy.delay_ms(n) for n in (1, 2, 3, 9, 10, 5000)] == [
        1_000,
        2_000,
        4_000,
        256_000,
        300_000,
        300_000,
    ]
    for bad in ({"retries": -1}, {"backoff": 0.5}, {"retry_delay": float("inf")},
                {"timeout": 0}, {"retries": True}):  # fmt: skip
        options = {"retries": 1, "retry_delay": 1.0, "backoff": 2.0, "max_retry_delay": 9.0,
                   "timeout": None, **bad}  # fmt: skip
        with pytest.raises(ValidationError):
            RetryPolicy.create(**options)


async def test_a_step_timeout_cancels_an_async_attempt(db: Database) -> None:
    cancelled: list[bool] = []

    async def hangs() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    @define_job(name="hangs")
    async def job(step: Any, input: Any) -> Any:
        return await step.run("hangs", hangs, timeout=0.05, retries=1, retry_delay=0)

    durably = await db.runtime([job])
    events = record(durably)
    run = await durably.jobs["hangs"].trigger(None)
    assert await claim_and_execute(durably) == "waiting"  # the timed-out attempt counts
    [retry] = events.of("step:retry")
    assert retry.error.startswith("StepTimeoutError: step 'hangs' did not finish within 0.05 s")
    assert await claim_and_execute(durably) == "failed"
    assert cancelled == [True, True]
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.error is not None
    assert failed.error.startswith("StepTimeoutError")


async def test_a_delayed_trigger_is_pending_until_due(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([quick])
    delayed = await durably.jobs["quick"].trigger("later", delay=60)
    assert delayed.status == RunStatus.PENDING
    assert delayed.run_at == ms_to_datetime(clock() + 60_000)
    at = ms_to_datetime(clock()) + timedelta(minutes=2)
    scheduled = await durably.jobs["quick"].trigger("at", run_at=at)
    assert scheduled.run_at == at
    now = await durably.jobs["quick"].trigger("now")
    assert await durably.process_until_idle() == 1  # only the run without a delay
    assert (await durably.get_run(now.id)).status == RunStatus.COMPLETED  # type: ignore[union-attr]
    assert durably.store.next_wake_at(["quick"]) == clock() + 60_000
    clock.advance(60_000)
    assert await durably.process_until_idle() == 1
    clock.advance(60_000)
    assert await durably.process_until_idle() == 1
    for bad in ({"delay": -1}, {"delay": "60"}, {"run_at": at.replace(tzinfo=None)},
                {"delay": 1, "run_at": at}):  # fmt: skip
        with pytest.raises(ValidationError):
            await durably.jobs["quick"].trigger(1, **bad)


async def test_resume_continues_a_failed_run_after_its_completed_steps(
    db: Database,
) -> None:
    calls: list[str] = []
    broken = [True]

    def second() -> str:
        calls.append("second")
        if broken[0]:
            raise RuntimeError("server down")
        return "b"

    @define_job(name="two-parts")
    async def job(step: Any, input: Any) -> Any:
        first = await step.run("first", lambda: calls.append("first") or "a")
        return [first, await step.run("second", second)]

    durably = await db.runtime([job], preserve_steps=False)
    events = record(durably)
    run = await durably.jobs["two-parts"].trigger(None)
    assert await claim_and_execute(durably) == "failed"
    broken[0] = False
    resumed = await durably.resume(run.id)
    assert (resumed.status, resumed.error, resumed.completed_at) == (RunStatus.PENDING, None, None)
    assert await claim_and_execute(durably) == "completed"
    done = await durably.get_run(run.id)
    assert done is not None and done.output == ["a", "b"]
    assert calls == ["first", "second", "second"]  # "first" did not run again
    types = events.types(run.id)
    assert types[types.index("run:fail") + 1 : types.index("run:fail") + 3] == [
        "run:resume",
        "run:leased",
    ]
    with pytest.raises(ConflictError):
        await durably.resume(run.id)  # it did not fail
    with pytest.raises(NotFoundError):
        await durably.resume("no-such-run")


async def test_cancel_works_on_a_waiting_run_and_delete_needs_it_finished(
    db: Database,
) -> None:
    durably = await db.runtime([approval])
    events = record(durably)
    run = await durably.jobs["approval"].trigger(None)
    assert await claim_and_execute(durably) == "waiting"
    with pytest.raises(ConflictError):
        await durably.delete_run(run.id)
    with pytest.raises(ConflictError):
        await durably.resume(run.id)
    await durably.cancel(run.id)
    cancelled = await durably.get_run(run.id)
    assert cancelled is not None and cancelled.status == RunStatus.CANCELLED
    assert cancelled.wake_at is None and cancelled.waiting_for is None
    assert events.types(run.id)[-1] == "run:cancel"
    with pytest.raises(ConflictError):
        await durably.resume(run.id)
    await durably.delete_run(run.id)


async def test_a_waiting_run_keeps_its_concurrency_key(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([cool_down])
    sleeper = await durably.jobs["cool-down"].trigger(None, concurrency_key="k")
    assert await claim_and_execute(durably) == "waiting"
    other = await durably.jobs["cool-down"].trigger(None, concurrency_key="k")
    assert await claim_and_execute(durably) is None  # blocked by the waiting run
    clock.advance(HOUR_MS)
    assert await claim_and_execute(durably) == "completed"
    assert (await durably.get_run(sleeper.id)).status == RunStatus.COMPLETED  # type: ignore[union-attr]
    assert await claim_and_execute(durably) == "waiting"  # now the other one runs
    assert (await durably.get_run(other.id)).status == RunStatus.WAITING  # type: ignore[union-attr]


async def test_waiting_for_the_network(db: Database) -> None:
    @define_job(name="online")
    async def online(step: Any, input: Any) -> Any:
        await step.wait_until_online("network")
        return "sent"

    durably = await db.runtime([online])
    assert durably.online is True  # CPython: online, the wait returns at once
    run = await durably.jobs["online"].trigger(None)
    assert await claim_and_execute(durably) == "completed"

    durably.set_online(False)
    run = await durably.jobs["online"].trigger(None)
    assert await claim_and_execute(durably) == "waiting"
    waiting = await durably.get_run(run.id)
    assert waiting is not None and waiting.waiting_for == {
        "kind": "online",
        "name": "network",
        "until": None,
    }
    assert await claim_and_execute(durably) is None
    durably.set_online(True)  # wakes it
    assert await claim_and_execute(durably) == "completed"


async def test_an_attempt_failing_offline_is_not_counted(db: Database) -> None:
    calls: list[int] = []
    durably = await db.runtime([flaky_job("offline", 1, calls, retries=1, retry_delay=0)])
    events = record(durably)
    durably.set_online(False)
    run = await durably.jobs["offline"].trigger(None)
    assert await claim_and_execute(durably) == "waiting"
    [retry] = events.of("step:retry")
    assert (retry.attempt, retry.offline, retry.next_delay_ms) == (1, True, None)
    [step] = await durably.get_steps(run.id)
    assert (step.status, step.attempts) == ("waiting", 0)  # not counted
    assert await claim_and_execute(durably) is None  # waits for the network
    durably.set_online(True)
    assert await claim_and_execute(durably) == "completed"
    [step] = await durably.get_steps(run.id)
    assert (step.status, step.attempts) == ("completed", 1)


async def test_an_idle_worker_with_many_waiting_runs_writes_nothing(
    db: Database, clock: FakeClock
) -> None:
    sqlite_only(db, "reads SQLite's change counters; tests/postgres checks it there")
    durably = await db.runtime([cool_down, approval], polling_interval_ms=IDLE_POLL_MS)
    for i in range(1_000):
        await durably.jobs["cool-down" if i % 2 else "approval"].trigger(None)
    assert await durably.process_until_idle() == 1_000
    assert await durably.count_runs(status="waiting") == 1_000
    await assert_idle_loop_writes_nothing(db, durably)
