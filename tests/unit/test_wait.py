"""Waiting for runs: `wait_for_run`, `trigger_and_wait` and `subscribe` resolve from
this process's events, and by polling for runs another runtime finished; a lease
renewal that races the run's own completion is not taken for a lost lease."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harness import Database, FakeClock, record, until

from durably import CancellationSignal, Event, RunStatus, define_job
from durably.errors import (
    DurablyError,
    NotFoundError,
    RunCancelledError,
    RunFailedError,
    StorageError,
    WaitTimeoutError,
)
from durably.renewal import keep_lease
from durably.store import Lease

QUICK_POLL_MS = 5
NEVER_POLL_MS = 60_000  # a wait that resolves with this did not rely on polling


@define_job(name="echo")
async def echo(step: Any, input: Any) -> Any:
    return await step.run("echo", lambda: input)


@define_job(name="boom")
async def boom(step: Any, input: Any) -> Any:
    raise RuntimeError("boom")


async def test_many_waiters_resolve_from_the_terminal_event(db: Database) -> None:
    durably = await db.runtime([echo], polling_interval_ms=NEVER_POLL_MS)
    runs = [await durably.jobs["echo"].trigger(i) for i in range(3)]
    waiters = [
        asyncio.ensure_future(durably.wait_for_run(run.id, timeout=5))
        for run in runs
        for _ in range(100)
    ]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    assert await durably.process_until_idle() == 3
    results = await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert [r.output for r in results] == [i for i in range(3) for _ in range(100)]
    assert durably._waiters._waiting == {}  # nothing left registered


async def test_waiting_polls_for_runs_finished_by_another_runtime(db: Database) -> None:
    waiting = await db.runtime([], polling_interval_ms=QUICK_POLL_MS)
    worker = await db.runtime([echo, boom])
    ok = await worker.jobs["echo"].trigger("done elsewhere")
    bad = await worker.jobs["boom"].trigger(None)
    ok_wait = asyncio.ensure_future(waiting.wait_for_run(ok.id, timeout=2))
    bad_wait = asyncio.ensure_future(waiting.wait_for_run(bad.id, timeout=2))
    await asyncio.sleep(0.01)
    assert await worker.process_until_idle() == 2
    assert (await ok_wait).output == "done elsewhere"
    with pytest.raises(RunFailedError, match="RuntimeError: boom"):
        await bad_wait


async def test_wait_for_a_finished_run_returns_at_once(db: Database) -> None:
    durably = await db.runtime([echo, boom], polling_interval_ms=NEVER_POLL_MS)
    ok = await durably.jobs["echo"].trigger(1)
    bad = await durably.jobs["boom"].trigger(1)
    await durably.process_until_idle()
    assert (await durably.wait_for_run(ok.id, timeout=0.5)).output == 1
    with pytest.raises(RunFailedError) as info:
        await durably.wait_for_run(bad.id, timeout=0.5)
    assert (info.value.run_id, info.value.error) == (bad.id, "RuntimeError: boom")


async def test_wait_for_an_unknown_run(db: Database) -> None:
    durably = await db.runtime([echo])
    with pytest.raises(NotFoundError, match="run nope not found"):
        await durably.wait_for_run("nope")


async def test_trigger_and_wait_returns_the_result(db: Database) -> None:
    durably = await db.runtime([echo], polling_interval_ms=NEVER_POLL_MS)
    durably.start()
    result = await durably.jobs["echo"].trigger_and_wait(
        {"a": 1}, labels={"k": "v"}, idempotency_key="once", timeout=2
    )
    assert (result.output, result.disposition, result.labels) == ({"a": 1}, "created", {"k": "v"})
    again = await durably.jobs["echo"].trigger_and_wait({"a": 2}, idempotency_key="once", timeout=2)
    assert (again.id, again.output, again.disposition) == (result.id, {"a": 1}, "idempotent")


async def test_trigger_and_wait_raises_run_failed(db: Database) -> None:
    durably = await db.runtime([boom], polling_interval_ms=NEVER_POLL_MS)
    durably.start()
    with pytest.raises(RunFailedError, match=r"failed: RuntimeError: boom") as info:
        await durably.jobs["boom"].trigger_and_wait(None, timeout=2)
    assert info.value.error == "RuntimeError: boom"


async def test_trigger_and_wait_raises_cancelled(db: Database) -> None:
    entered = asyncio.Event()

    async def waits(signal: CancellationSignal) -> None:
        entered.set()
        await signal.wait()

    @define_job(name="waits")
    async def job(step: Any, input: Any) -> Any:
        await step.run("waits", waits)

    durably = await db.runtime([job], polling_interval_ms=NEVER_POLL_MS)
    events = record(durably)
    durably.start()
    waiting = asyncio.ensure_future(durably.jobs["waits"].trigger_and_wait(None, timeout=2))
    await until(entered.is_set)
    (trigger,) = events.of("run:trigger")
    await durably.cancel(trigger.run_id)
    with pytest.raises(RunCancelledError, match="was cancelled"):
        await waiting


async def test_trigger_and_wait_times_out_and_the_run_goes_on(db: Database) -> None:
    durably = await db.runtime([echo], polling_interval_ms=NEVER_POLL_MS)
    with pytest.raises(
        WaitTimeoutError, match=r"did not finish within 0\.02 s; it is still pending"
    ):
        await durably.jobs["echo"].trigger_and_wait(1, timeout=0.02)
    assert isinstance(WaitTimeoutError(), TimeoutError)
    (run,) = await durably.get_runs()
    assert run.status == RunStatus.PENDING
    await durably.process_one()
    assert (await durably.wait_for_run(run.id, timeout=1)).output == 1


async def test_subscribe_yields_the_runs_events_and_ends(db: Database) -> None:
    durably = await db.runtime([echo], polling_interval_ms=NEVER_POLL_MS)
    first = await durably.jobs["echo"].trigger("first")
    mine = await durably.jobs["echo"].trigger("mine")
    seen: list[Event] = []

    async def consume() -> None:
        async for event in durably.subscribe(mine.id):
            seen.append(event)

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0)  # the subscription is registered
    assert await durably.process_until_idle() == 2
    await asyncio.wait_for(consumer, 1)
    assert [e.type for e in seen] == ["run:leased", "step:start", "step:complete", "run:complete"]
    assert all(e.run_id == mine.id for e in seen)
    assert first.id != mine.id


async def test_subscribe_to_a_finished_or_unknown_run(db: Database) -> None:
    durably = await db.runtime([echo])
    run = await durably.jobs["echo"].trigger(1)
    await durably.process_one()
    assert [e async for e in durably.subscribe(run.id)] == []
    with pytest.raises(NotFoundError):
        async for _ in durably.subscribe("nope"):
            pass


async def test_subscribe_ends_for_a_run_finished_by_another_runtime(db: Database) -> None:
    watcher = await db.runtime([], polling_interval_ms=QUICK_POLL_MS)
    worker = await db.runtime([echo])
    run = await worker.jobs["echo"].trigger(1)

    async def consume() -> list[Event]:
        return [e async for e in watcher.subscribe(run.id)]

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0.01)
    await worker.process_one()
    assert await asyncio.wait_for(consumer, 1) == []


# -- lease renewal and completion --------------------------------------------------------------


async def test_renewal_racing_our_own_completion_is_not_a_lost_lease(
    db: Database, clock: FakeClock
) -> None:
    durably = await db.runtime([echo], lease_ms=1_000, lease_renew_interval_ms=1)
    events = record(durably)
    await durably.jobs["echo"].trigger(1)
    execution = durably._scheduler.claim_next()
    assert execution is not None
    # The run's completion commits, and the renewal comes around before the execution
    # has noted that it finished.
    assert durably.store.complete_run(execution.lease, "1", clock(), False)
    await asyncio.wait_for(keep_lease(execution, execution._settings), 1)
    assert execution.signal.reason is None
    assert not events.of("run:lease-renewed") and not events.of("worker:error")


async def test_renewal_after_a_reclaim_is_a_lost_lease(db: Database, clock: FakeClock) -> None:
    a = await db.runtime([echo], lease_ms=1_000, lease_renew_interval_ms=1)
    b = await db.runtime([echo], lease_ms=1_000, lease_renew_interval_ms=100)
    run = await a.jobs["echo"].trigger(1)
    execution = a._scheduler.claim_next()
    assert execution is not None
    clock.advance(1_000)
    assert await b.process_one() is True  # b reclaims and completes the run
    await asyncio.wait_for(keep_lease(execution, execution._settings), 1)
    assert execution.signal.reason == "lease-lost"
    stored = await a.get_run(run.id)
    assert stored is not None and stored.lease_generation == 2


async def test_renewal_of_a_cancelled_run_fires_cancelled(db: Database) -> None:
    a = await db.runtime([echo], lease_ms=1_000, lease_renew_interval_ms=1)
    admin = await db.runtime([echo])
    run = await a.jobs["echo"].trigger(1)
    execution = a._scheduler.claim_next()
    assert execution is not None
    await admin.cancel(run.id)
    await asyncio.wait_for(keep_lease(execution, execution._settings), 1)
    assert execution.signal.reason == "cancelled"
    assert isinstance(execution.lease, Lease)


async def test_close_ends_waits_and_subscriptions(db: Database) -> None:
    durably = await db.runtime([echo], polling_interval_ms=QUICK_POLL_MS)
    run = await durably.jobs["echo"].trigger("never processed")
    waiter = asyncio.ensure_future(durably.wait_for_run(run.id))
    events: list[Event] = []

    async def consume() -> None:
        async for event in durably.subscribe(run.id):
            events.append(event)

    subscription = asyncio.ensure_future(consume())
    await asyncio.sleep(0.02)  # both are waiting, and the poller has run
    assert not waiter.done() and not subscription.done()
    db.runtimes.remove(durably)
    await durably.close()
    with pytest.raises(DurablyError, match="closed while waiting"):
        await asyncio.wait_for(waiter, 1)
    await asyncio.wait_for(subscription, 1)
    assert events == []
    with pytest.raises(DurablyError, match="closed"):
        await durably.wait_for_run(run.id)


# -- storage errors while waiting --------------------------------------------------------------


def fail_status_reads(durably: Any, times: int) -> list[int]:
    """Make the runtime's next `times` status reads raise StorageError; returns a list
    that counts every status read."""
    reads: list[int] = []
    get_statuses = durably.store.get_statuses

    def flaky(run_ids: Any) -> Any:
        reads.append(len(run_ids))
        if len(reads) <= times:
            raise StorageError("database is locked")
        return get_statuses(run_ids)

    durably.store.get_statuses = flaky
    return reads


async def test_the_poller_survives_a_storage_error(db: Database) -> None:
    waiting = await db.runtime([], polling_interval_ms=QUICK_POLL_MS)
    worker = await db.runtime([echo])
    errors = record(waiting)
    reads = fail_status_reads(waiting, times=1)
    run = await worker.jobs["echo"].trigger("done elsewhere")
    wait = asyncio.ensure_future(waiting.wait_for_run(run.id, timeout=2))
    await until(lambda: len(reads) >= 1, what="the first (failing) status read")
    assert await worker.process_until_idle() == 1
    assert (await wait).output == "done elsewhere"
    (error,) = errors.of("worker:error")
    assert (error.context, error.error) == ("waiting for runs", "StorageError: database is locked")
    assert error.run_id is None and error.job_name is None


async def test_subscribe_survives_a_storage_error_in_its_status_read(db: Database) -> None:
    watcher = await db.runtime([], polling_interval_ms=QUICK_POLL_MS)
    worker = await db.runtime([echo])
    errors = record(watcher)
    run = await worker.jobs["echo"].trigger(1)
    reads = fail_status_reads(watcher, times=1)

    async def consume() -> list[Event]:
        return [e async for e in watcher.subscribe(run.id)]

    consumer = asyncio.ensure_future(consume())
    await until(lambda: len(reads) >= 1, what="the first (failing) status read")
    await worker.process_one()
    assert await asyncio.wait_for(consumer, 1) == []
    assert [e.context for e in errors.of("worker:error")] == ["waiting for runs"]
