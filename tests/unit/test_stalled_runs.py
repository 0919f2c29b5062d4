"""Poison runs: a run whose worker (or tab) stops every time before a step finishes is
failed after `max_stalled_attempts` such claims, instead of being retried forever.
Claims of a run that keeps finishing steps never count against it.

A "killed" worker is simulated with `Crash`, which nothing catches: the run stays
leased, as after a process kill or a tab reload.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from harness import Crash, Database, FakeClock, record

from durably import RunStatus, define_job

LEASE_MS = 10_000


async def crash_each_time(durably: Any, clock: FakeClock, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Crash):
            await durably.process_one()
        clock.advance(LEASE_MS)  # the dead worker's lease runs out


async def test_a_run_that_never_finishes_its_step_fails_after_the_limit(
    db: Database, clock: FakeClock
) -> None:
    attempts: Counter[str] = Counter()

    def upload() -> None:
        attempts["upload"] += 1
        raise Crash  # the worker dies in this step, every time

    @define_job(name="poison")
    async def poison(step: Any, input: Any) -> Any:
        await step.run("prepare", lambda: "ready")
        await step.run("upload", upload)

    durably = await db.runtime([poison], lease_ms=LEASE_MS)  # the default limit: 3
    events = record(durably)
    run = await durably.jobs["poison"].trigger(None)
    await crash_each_time(durably, clock, 3)
    assert db.rows("SELECT stalled_claims, stalled_step FROM durably_runs") == [(2, "upload")]

    # The fourth claim is the third in a row that found the run abandoned: it fails the
    # run without executing the job again.
    assert await durably.process_one() is True
    assert attempts["upload"] == 3
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == RunStatus.FAILED
    assert failed.error == (
        "StalledRunError: run stalled: step 'upload' did not finish in 3 consecutive "
        "attempts (the worker or tab stopped each time); it is failed instead of retried "
        "forever"
    )
    [fail] = events.of("run:fail")
    assert fail.failed_step == "upload"
    assert await durably.process_one() is False  # nothing left to claim


async def test_a_stalled_run_without_a_known_step_says_so(db: Database, clock: FakeClock) -> None:
    def crash() -> None:
        raise Crash

    @define_job(name="poison")
    async def poison(step: Any, input: Any) -> Any:
        await step.run("upload", crash)

    durably = await db.runtime([poison], lease_ms=LEASE_MS, max_stalled_attempts=1)
    run = await durably.jobs["poison"].trigger(None)
    # The first attempt was claimed from pending: its step start wrote nothing.
    await crash_each_time(durably, clock, 1)
    assert await durably.process_one() is True
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == RunStatus.FAILED
    assert failed.error is not None
    assert "no step finished (the step in flight is not known) in 1 consecutive" in failed.error


async def test_reloads_during_normal_progress_never_count(db: Database, clock: FakeClock) -> None:
    attempts: Counter[str] = Counter()

    def crash_on_first_attempt(name: str) -> Any:
        def fn() -> str:
            attempts[name] += 1
            if attempts[name] == 1:
                raise Crash  # the tab is reloaded once in every step
            return name

        return fn

    names = [f"s{i}" for i in range(6)]

    @define_job(name="steady")
    async def steady(step: Any, input: Any) -> Any:
        return [await step.run(n, crash_on_first_attempt(n)) for n in names]

    durably = await db.runtime([steady], lease_ms=LEASE_MS, max_stalled_attempts=2)
    run = await durably.jobs["steady"].trigger(None)
    for _ in names:
        with pytest.raises(Crash):
            await durably.process_one()
        # The browser's way: the new owner expires every lease at start-up.
        durably.reclaim_leases()
    assert await durably.process_one() is True
    done = await durably.get_run(run.id)
    assert done is not None and done.status == RunStatus.COMPLETED, done.error
    assert done.output == names
    assert db.rows("SELECT stalled_claims, stalled_step FROM durably_runs") == [(0, None)]


async def test_a_finished_step_resets_the_count(db: Database, clock: FakeClock) -> None:
    crash_in = {"a", "b"}

    def step_fn(name: str) -> Any:
        def fn() -> str:
            if name in crash_in:
                raise Crash
            return name

        return fn

    @define_job(name="j")
    async def job(step: Any, input: Any) -> Any:
        return [await step.run(n, step_fn(n)) for n in ("a", "b")]

    durably = await db.runtime([job], lease_ms=LEASE_MS, max_stalled_attempts=3)
    run = await durably.jobs["j"].trigger(None)
    await crash_each_time(durably, clock, 2)  # "a" stalls twice
    assert db.rows("SELECT stalled_claims, stalled_step FROM durably_runs") == [(1, "a")]
    crash_in.discard("a")
    await crash_each_time(durably, clock, 1)  # "a" finishes, "b" stalls
    assert db.rows("SELECT stalled_claims, stalled_step FROM durably_runs") == [(0, None)]
    await crash_each_time(durably, clock, 1)  # "b" stalls again: 2 attempts in a row
    assert db.rows("SELECT stalled_claims, stalled_step FROM durably_runs") == [(1, "b")]
    crash_in.clear()
    assert await durably.process_one() is True
    done = await durably.get_run(run.id)
    assert done is not None and done.status == RunStatus.COMPLETED, done.error
