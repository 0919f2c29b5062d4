"""An asyncio CancelledError that does not cancel the run's task (a cancelled inner
future or task) fails the step and the run, naming it; it must not escape and leave
the run leased to be re-executed forever. A real cancellation of the execution task
(`stop(timeout)`) still propagates and leaves the run to the next owner.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness import Database, FakeClock, record, until

from durably import RunStatus, define_job

LEASE_MS = 10_000


async def await_cancelled_future() -> None:
    future = asyncio.get_running_loop().create_future()
    future.cancel()
    await future


async def test_a_stray_cancelled_error_in_a_step_fails_the_step_and_the_run(
    db: Database,
) -> None:
    @define_job(name="stray")
    async def job(step: Any, input: Any) -> Any:
        await step.run("x", await_cancelled_future)

    durably = await db.runtime([job], lease_ms=LEASE_MS, preserve_steps=True)
    events = record(durably)
    run = await durably.jobs["stray"].trigger(None)
    assert await durably.process_one() is True

    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == RunStatus.FAILED
    message = (
        "CancelledError raised inside step 'x' (a cancelled inner task or future, "
        "not a cancellation of the run)"
    )
    assert failed.error == f"StrayCancellationError: {message}"
    [step] = await durably.get_steps(run.id)
    assert (step.name, step.status, step.error) == ("x", "failed", failed.error)
    assert events.types(run.id)[-3:] == ["step:fail", "log:write", "run:fail"]
    assert events.of("run:fail")[0].failed_step == "x"


async def test_a_stray_cancelled_error_between_steps_fails_the_run(db: Database) -> None:
    @define_job(name="stray")
    async def job(step: Any, input: Any) -> Any:
        await step.run("first", lambda: 1)
        await await_cancelled_future()

    durably = await db.runtime([job], lease_ms=LEASE_MS)
    run = await durably.jobs["stray"].trigger(None)
    assert await durably.process_one() is True
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == RunStatus.FAILED
    assert failed.error == (
        "StrayCancellationError: CancelledError raised in job 'stray' outside any step "
        "(a cancelled inner task or future, not a cancellation of the run)"
    )


async def test_stopping_with_a_timeout_still_abandons_the_run(
    db: Database, clock: FakeClock
) -> None:
    entered = asyncio.Event()

    async def forever() -> None:
        entered.set()
        await asyncio.Event().wait()

    @define_job(name="long")
    async def job(step: Any, input: Any) -> Any:
        await step.run("forever", forever)

    durably = await db.runtime([job], lease_ms=LEASE_MS, polling_interval_ms=5)
    events = record(durably)
    run = await durably.jobs["long"].trigger(None)
    durably.start()
    await until(entered.is_set, what="the step to start")
    await asyncio.wait_for(durably.stop(timeout=0.05), 2)

    # A real cancellation: the run is left leased for the next owner, nothing recorded.
    abandoned = await durably.get_run(run.id)
    assert abandoned is not None and abandoned.status == RunStatus.LEASED
    assert db.count("durably_steps") == 0
    assert not events.of("run:fail") and not events.of("step:fail")
