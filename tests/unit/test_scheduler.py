"""The scheduler (the claim loop): concurrency, stopping, waking on triggers instead of polling,
doing nothing (and writing nothing) when idle, and surviving its own errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import (
    Crash,
    Database,
    assert_idle_loop_writes_nothing,
    record,
    sqlite_only,
    until,
)

from durably import RunStatus, define_job

IDLE_POLL_MS = 2
NEVER_POLL_MS = 60_000  # long enough that a test passing with it did not rely on polling


@define_job(name="echo")
async def echo(step: Any, input: Any) -> Any:
    return await step.run("echo", lambda: input)


async def test_max_concurrent_runs_run_at_once(db: Database) -> None:
    gate = asyncio.Event()
    active: list[int] = []
    peak = 0

    async def hold() -> None:
        nonlocal peak
        active.append(1)
        peak = max(peak, len(active))
        await gate.wait()
        active.pop()

    @define_job(name="held")
    async def held(step: Any, input: Any) -> Any:
        await step.run("hold", hold)

    durably = await db.runtime([held], max_concurrent_runs=3, polling_interval_ms=NEVER_POLL_MS)
    ids = [(await durably.jobs["held"].trigger(i)).id for i in range(5)]
    durably.start()
    await until(lambda: len(active) == 3, what="three runs in flight")
    await asyncio.sleep(0.01)
    assert peak == 3  # not more than three at once
    assert await durably.count_runs(status="leased") == 3
    assert await durably.count_runs(status="pending") == 2

    gate.set()
    for run_id in ids:
        done = await durably.wait_for_run(run_id, timeout=2)
        assert done.status == RunStatus.COMPLETED
    assert peak == 3


async def test_stop_waits_for_runs_in_flight(db: Database) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()

    async def hold() -> str:
        entered.set()
        await gate.wait()
        return "finished"

    @define_job(name="held")
    async def held(step: Any, input: Any) -> Any:
        return await step.run("hold", hold)

    durably = await db.runtime([held, echo], polling_interval_ms=IDLE_POLL_MS)
    run = await durably.jobs["held"].trigger(None)
    durably.start()
    await until(entered.is_set)
    stopping = asyncio.ensure_future(durably.stop())
    await asyncio.sleep(0.01)
    assert not stopping.done()
    gate.set()
    await asyncio.wait_for(stopping, 2)
    done = await durably.get_run(run.id)
    assert done is not None and done.status == RunStatus.COMPLETED and done.output == "finished"

    # A stopped worker claims nothing more.
    later = await durably.jobs["echo"].trigger(1)
    await asyncio.sleep(IDLE_POLL_MS * 10 / 1000)
    still = await durably.get_run(later.id)
    assert still is not None and still.status == RunStatus.PENDING


async def test_a_trigger_wakes_the_worker_at_once(db: Database) -> None:
    durably = await db.runtime([echo], polling_interval_ms=NEVER_POLL_MS)
    await durably.init()  # migrate and start; the first idle cycle starts waiting
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await durably.jobs["echo"].trigger_and_wait({"fast": True}, timeout=2)
    assert result.output == {"fast": True}
    assert loop.time() - started < 1
    run = await durably.jobs["echo"].trigger(2)
    assert (await durably.wait_for_run(run.id, timeout=2)).output == 2


async def test_the_worker_polls_for_runs_triggered_elsewhere(db: Database) -> None:
    worker = await db.runtime([echo], polling_interval_ms=IDLE_POLL_MS)
    elsewhere = await db.runtime([echo])
    worker_events = record(worker)
    worker.start()
    run = await elsewhere.jobs["echo"].trigger("from elsewhere")
    await until(lambda: bool(worker_events.of("run:complete")), what="the worker to poll")
    done = await elsewhere.get_run(run.id)
    assert done is not None and done.output == "from elsewhere"


async def test_an_idle_worker_writes_nothing(db: Database) -> None:
    sqlite_only(db, "traces sqlite3 statements; tests/postgres/test_postgres_store.py checks it")
    durably = await db.runtime([echo], polling_interval_ms=IDLE_POLL_MS)
    await durably.jobs["echo"].trigger(1)
    await durably.process_one()  # something to look at, nothing left to do
    await assert_idle_loop_writes_nothing(db, durably)


async def test_an_execution_that_dies_is_reported_and_the_loop_goes_on(db: Database) -> None:
    def dies() -> None:
        raise Crash

    @define_job(name="dies")
    async def dying(step: Any, input: Any) -> Any:
        await step.run("dies", dies)

    durably = await db.runtime([dying, echo], polling_interval_ms=NEVER_POLL_MS)
    events = record(durably)
    durably.start()
    await durably.jobs["dies"].trigger(None)
    await until(lambda: bool(events.of("worker:error")))
    (error,) = events.of("worker:error")
    assert (error.error, error.context) == ("Crash", "run execution")
    result = await durably.jobs["echo"].trigger_and_wait("still working", timeout=2)
    assert result.output == "still working"


async def test_storage_errors_in_the_loop_are_reported_and_retried(db: Database) -> None:
    durably = await db.runtime([echo], polling_interval_ms=IDLE_POLL_MS)
    events = record(durably)
    claim = durably.store.claim_next
    failures = [RuntimeError("database is locked")]

    def flaky_claim(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return claim(*args)

    durably.store.claim_next = flaky_claim  # type: ignore[method-assign,assignment]
    run = await durably.jobs["echo"].trigger("eventually")
    durably.start()
    done = await durably.wait_for_run(run.id, timeout=2)
    assert done.output == "eventually"
    (error,) = events.of("worker:error")
    assert (error.error, error.context) == ("RuntimeError: database is locked", "worker loop")


async def test_start_is_idempotent_and_stop_then_start_resumes(db: Database) -> None:
    durably = await db.runtime([echo], polling_interval_ms=NEVER_POLL_MS)
    durably.start()
    durably.start()
    assert (await durably.jobs["echo"].trigger_and_wait(1, timeout=2)).output == 1
    await durably.stop()
    durably.start()
    assert (await durably.jobs["echo"].trigger_and_wait(2, timeout=2)).output == 2


#: Runtimes busy being woken (and a subscriber and a waiter on a run in progress) when
#: their program returns from asyncio.run without stopping them, 200 times over.
_NEVER_STOPPED = """
import asyncio
from durably import create_durably, define_job

@define_job(name="slow")
async def slow(step, input):
    await step.run("sleep", lambda: asyncio.sleep(0.001))

async def watch(durably, run_id):
    async for _ in durably.subscribe(run_id):
        pass

async def main(i):
    durably = create_durably(":memory:", [slow], polling_interval_ms=1)
    await durably.init()
    run = await durably.jobs["slow"].trigger(None)
    asyncio.ensure_future(watch(durably, run.id))
    asyncio.ensure_future(durably.wait_for_run(run.id))
    for _ in range(i % 7):
        durably.register(slow)  # wakes the worker loop
        await asyncio.sleep(0)
    durably.register(slow)

for i in range(200):
    asyncio.run(main(i))
print("all returned")
"""


def test_a_runtime_never_stopped_does_not_hang_the_program_exit(tmp_path: Path) -> None:
    # A subprocess, so that a hang fails this test instead of hanging the suite.
    try:
        done = subprocess.run(
            [sys.executable, "-c", _NEVER_STOPPED],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("asyncio.run did not return: a task survived its final cancellation")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "all returned"
