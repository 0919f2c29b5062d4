"""Operations on whole runs: cancel, retrigger, delete, purge, and whether step
outputs outlive a finished run (`preserve_steps`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from harness import Database, FakeClock, claim_and_execute, record, until

from durably import CancellationSignal, RunStatus, define_job
from durably.errors import ConflictError, NotFoundError, ValidationError
from durably.models import datetime_to_ms, ms_to_datetime

LEASE_MS = 10_000
TABLES = ("durably_runs", "durably_steps", "durably_logs", "durably_run_labels")


@define_job(name="quick")
async def quick(step: Any, input: Any) -> Any:
    step.log.info("hello")
    return await step.run("only", lambda: input)


@define_job(name="boom")
async def boom(step: Any, input: Any) -> Any:
    await step.run("first", lambda: "kept?")
    raise RuntimeError("boom")


def counts_for(db: Database, run_id: str) -> dict[str, int]:
    return {
        table: db.count(table, f"{'id' if table == 'durably_runs' else 'run_id'} = ?", (run_id,))
        for table in TABLES
    }


# -- cancel ---------------------------------------------------------------------------------


async def test_cancel_a_pending_run(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([quick])
    events = record(durably)
    run = await durably.jobs["quick"].trigger(1)
    clock.advance(7)
    cancelled = await durably.cancel(run.id)
    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.completed_at == ms_to_datetime(clock())
    assert events.types() == ["run:trigger", "run:cancel"]
    assert events.of("run:cancel")[0].job_name == "quick"
    assert await durably.process_one() is False


async def test_cancel_a_finished_or_unknown_run_fails(db: Database) -> None:
    durably = await db.runtime([quick, boom])
    done = await durably.jobs["quick"].trigger(1)
    failed = await durably.jobs["boom"].trigger(1)
    await durably.process_until_idle()
    cancelled = await durably.jobs["quick"].trigger(2)
    await durably.cancel(cancelled.id)
    for run_id, status in (
        (done.id, "completed"),
        (failed.id, "failed"),
        (cancelled.id, "cancelled"),
    ):
        with pytest.raises(ConflictError, match=f"already {status}"):
            await durably.cancel(run_id)
    with pytest.raises(NotFoundError):
        await durably.cancel("no-such-run")
    done_after = await durably.get_run(done.id)
    assert done_after is not None and done_after.status == RunStatus.COMPLETED


async def test_cancel_fires_the_signal_of_a_running_step(db: Database) -> None:
    entered = asyncio.Event()
    reasons: list[str] = []
    later_called: list[bool] = []

    async def long(signal: CancellationSignal) -> str:
        entered.set()
        reasons.append(await signal.wait())
        return "stopped early"

    @define_job(name="long")
    async def job(step: Any, input: Any) -> Any:
        await step.run("long", long)
        await step.run("later", lambda: later_called.append(True))

    durably = await db.runtime([job], preserve_steps=True)
    events = record(durably)
    run = await durably.jobs["long"].trigger(None)
    task = asyncio.ensure_future(claim_and_execute(durably))
    await until(entered.is_set)
    await durably.cancel(run.id)
    assert await asyncio.wait_for(task, 2) == "cancelled"

    assert reasons == ["cancelled"]
    assert later_called == []
    assert db.count("durably_steps") == 0  # the step finished after the cancel: not stored
    stored = await durably.get_run(run.id)
    assert stored is not None and stored.status == RunStatus.CANCELLED
    assert stored.completed_step_count == 0
    types = events.types(run.id)
    assert types.count("run:cancel") == 1
    assert types[-2:] == ["step:cancel", "run:cancel"]  # the terminal event is last
    assert "step:complete" not in types and "run:fail" not in types


async def test_cancel_stops_a_run_at_the_next_step_boundary(db: Database) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()
    signals: list[CancellationSignal] = []
    after: list[str] = []

    async def ignores_signal() -> str:
        entered.set()
        await gate.wait()
        return "done anyway"

    @define_job(name="stubborn")
    async def job(step: Any, input: Any) -> Any:
        signals.append(step.signal)
        await step.run("stubborn", ignores_signal)
        after.append("body went on")
        await step.run("next", lambda: after.append("next step"))

    durably = await db.runtime([job])
    run = await durably.jobs["stubborn"].trigger(None)
    task = asyncio.ensure_future(claim_and_execute(durably))
    await until(entered.is_set)
    await durably.cancel(run.id)
    assert signals[0].cancelled and signals[0].reason == "cancelled"
    assert not task.done()  # the step itself is not interrupted...
    gate.set()
    assert await asyncio.wait_for(task, 2) == "cancelled"  # ...but nothing after it runs
    assert after == []
    assert db.count("durably_steps") == 0


async def test_cancel_from_another_runtime_stops_the_execution(
    db: Database, clock: FakeClock
) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()

    async def blocked() -> str:
        entered.set()
        await gate.wait()
        return "late"

    @define_job(name="remote")
    async def job(step: Any, input: Any) -> Any:
        await step.run("blocked", blocked)
        return "finished"

    worker = await db.runtime([job])
    admin = await db.runtime([job])
    worker_events = record(worker)
    run = await worker.jobs["remote"].trigger(None)
    task = asyncio.ensure_future(claim_and_execute(worker))
    await until(entered.is_set)
    await admin.cancel(run.id)
    gate.set()
    assert await asyncio.wait_for(task, 2) == "cancelled"
    assert db.count("durably_steps") == 0
    stored = await admin.get_run(run.id)
    assert stored is not None and stored.status == RunStatus.CANCELLED and stored.output is None
    # The executing runtime tells its own listeners the run was cancelled.
    assert worker_events.types(run.id)[-1] == "run:cancel"


async def test_a_step_that_gives_up_on_the_signal_is_cancelled_not_failed(db: Database) -> None:
    entered = asyncio.Event()

    async def gives_up(signal: CancellationSignal) -> None:
        entered.set()
        await signal.wait()
        raise RuntimeError("interrupted")

    @define_job(name="gives-up")
    async def job(step: Any, input: Any) -> Any:
        await step.run("gives-up", gives_up)

    durably = await db.runtime([job])
    events = record(durably)
    run = await durably.jobs["gives-up"].trigger(None)
    task = asyncio.ensure_future(claim_and_execute(durably))
    await until(entered.is_set)
    await durably.cancel(run.id)
    assert await asyncio.wait_for(task, 2) == "cancelled"
    stored = await durably.get_run(run.id)
    assert stored is not None and stored.status == RunStatus.CANCELLED and stored.error is None
    assert db.count("durably_steps") == 0
    assert not events.of("run:fail") and not events.of("step:fail")
    assert events.of("step:cancel")


async def test_cancel_between_claim_and_execution_never_starts_the_job(db: Database) -> None:
    body: list[str] = []

    @define_job(name="late")
    async def job(step: Any, input: Any) -> Any:
        body.append("ran")
        await step.run("s", lambda: 1)

    durably = await db.runtime([job])
    events = record(durably)
    run = await durably.jobs["late"].trigger(None)
    execution = durably._scheduler.claim_next()  # the worker claims; its task has not started yet
    assert execution is not None
    await durably.cancel(run.id)
    assert await durably._scheduler.execute(execution) == "cancelled"
    assert body == []
    assert events.types(run.id) == ["run:trigger", "run:cancel"]


async def test_cancel_between_steps_stops_before_the_next_step(db: Database) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()
    called: list[str] = []

    @define_job(name="between")
    async def job(step: Any, input: Any) -> Any:
        await step.run("first", lambda: called.append("first"))
        entered.set()
        await gate.wait()  # work outside any step
        await step.run("second", lambda: called.append("second"))

    durably = await db.runtime([job], preserve_steps=True)
    run = await durably.jobs["between"].trigger(None)
    task = asyncio.ensure_future(claim_and_execute(durably))
    await until(entered.is_set)
    await durably.cancel(run.id)
    gate.set()
    assert await asyncio.wait_for(task, 2) == "cancelled"
    assert called == ["first"]
    assert db.rows("SELECT name FROM durably_steps") == [("first",)]


# -- retrigger ------------------------------------------------------------------------------


async def test_retrigger_creates_a_fresh_run_with_the_same_input_and_labels(
    db: Database,
) -> None:
    durably = await db.runtime([quick, boom])
    events = record(durably)
    original = await durably.jobs["boom"].trigger({"x": 1}, labels={"team": "red"})
    await durably.process_one()
    again = await durably.retrigger(original.id)
    assert again.id != original.id
    assert (again.job_name, again.input, again.labels) == ("boom", {"x": 1}, {"team": "red"})
    assert again.status == RunStatus.PENDING and again.disposition == "created"
    assert events.types(again.id) == ["run:trigger"]
    kept = await durably.get_run(original.id)
    assert kept is not None and kept.status == RunStatus.FAILED


async def test_retrigger_only_finished_runs(db: Database) -> None:
    durably = await db.runtime([quick])
    pending = await durably.jobs["quick"].trigger(1)
    with pytest.raises(ConflictError, match="still pending"):
        await durably.retrigger(pending.id)
    assert durably._scheduler.claim_next() is not None
    with pytest.raises(ConflictError, match="still leased"):
        await durably.retrigger(pending.id)
    with pytest.raises(NotFoundError):
        await durably.retrigger("nope")
    assert db.count("durably_runs") == 1


# -- delete ---------------------------------------------------------------------------------


async def test_delete_run_cascades_to_steps_logs_and_labels(db: Database) -> None:
    durably = await db.runtime([quick], preserve_steps=True)
    events = record(durably)
    doomed = await durably.jobs["quick"].trigger(1, labels={"a": "1", "b": "2"})
    kept = await durably.jobs["quick"].trigger(2, labels={"a": "1"})
    await durably.process_until_idle()
    assert counts_for(db, doomed.id) == {
        "durably_runs": 1,
        "durably_steps": 1,
        "durably_logs": 1,
        "durably_run_labels": 2,
    }
    await durably.delete_run(doomed.id)
    assert counts_for(db, doomed.id) == dict.fromkeys(TABLES, 0)
    assert counts_for(db, kept.id) == {
        "durably_runs": 1,
        "durably_steps": 1,
        "durably_logs": 1,
        "durably_run_labels": 1,
    }
    delete_event = events.of("run:delete")[0]
    assert (delete_event.run_id, delete_event.job_name) == (doomed.id, "quick")
    assert await durably.get_run(doomed.id) is None


async def test_delete_refuses_unfinished_and_unknown_runs(db: Database) -> None:
    durably = await db.runtime([quick])
    run = await durably.jobs["quick"].trigger(1)
    with pytest.raises(ConflictError, match="cancel it before deleting it"):
        await durably.delete_run(run.id)
    assert durably._scheduler.claim_next() is not None
    with pytest.raises(ConflictError):
        await durably.delete_run(run.id)
    with pytest.raises(NotFoundError):
        await durably.delete_run("nope")
    assert db.count("durably_runs") == 1


# -- purge ----------------------------------------------------------------------------------


async def test_purge_deletes_only_terminal_runs_older_than_the_cutoff(
    db: Database, clock: FakeClock
) -> None:
    durably = await db.runtime([quick, boom], preserve_steps=True)
    old_done = await durably.jobs["quick"].trigger(1, labels={"k": "v"})
    old_failed = await durably.jobs["boom"].trigger(1)
    await durably.process_until_idle()
    old_cancelled = await durably.jobs["quick"].trigger(2)
    await durably.cancel(old_cancelled.id)
    still_leased = await durably.jobs["boom"].trigger(3)
    still_pending = await durably.jobs["quick"].trigger(3)
    leased = durably._scheduler.claim_next()
    assert leased is not None and leased.run.id == still_leased.id
    clock.advance(60_000)
    cutoff = ms_to_datetime(clock())
    assert cutoff is not None
    clock.advance(1)
    recent = await durably.jobs["quick"].trigger(4)
    await durably.cancel(recent.id)  # finished, but after the cutoff

    events = record(durably)
    assert await durably.purge_runs(cutoff) == 3
    # One event for the whole purge, naming the runs; run:delete stays per deleted run.
    (purge,) = events.events
    assert purge.type == "runs:purge"
    assert sorted(purge.run_ids) == sorted([old_done.id, old_failed.id, old_cancelled.id])
    assert (purge.count, purge.run_id, purge.job_name) == (3, None, None)
    remaining = {r.id for r in await durably.get_runs()}
    assert remaining == {still_pending.id, still_leased.id, recent.id}
    for gone in (old_done, old_failed, old_cancelled):
        assert counts_for(db, gone.id) == dict.fromkeys(TABLES, 0)


async def test_purge_honours_its_limit_oldest_first(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([quick])
    ids = []
    for i in range(5):
        run = await durably.jobs["quick"].trigger(i)
        await durably.cancel(run.id)
        ids.append(run.id)
        clock.advance(10)
    now = ms_to_datetime(clock())
    assert now is not None
    assert await durably.purge_runs(now, limit=2) == 2
    assert {r.id for r in await durably.get_runs()} == set(ids[2:])
    events = record(durably)
    assert await durably.purge_runs(now, limit=10) == 3
    assert await durably.purge_runs(now, limit=10) == 0
    # Oldest first, and a purge that deleted nothing says nothing.
    assert [e.run_ids for e in events.events] == [ids[2:]]


async def test_purge_cutoff_is_exact_to_the_millisecond(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([quick])
    clock.ms = 2_183_226_373_410  # a time whose float timestamp * 1000 falls short
    run = await durably.jobs["quick"].trigger(1)
    await durably.cancel(run.id)
    at = ms_to_datetime(clock())
    just_after = ms_to_datetime(clock() + 1)
    assert at is not None and just_after is not None
    assert await durably.purge_runs(at) == 0  # strictly older only
    assert await durably.purge_runs(just_after) == 1


def test_datetimes_and_milliseconds_round_trip() -> None:
    for ms in (0, 1_079_337_347_472, 1_700_000_000_123, 2_165_497_250_430, 2_183_226_373_411):
        when = ms_to_datetime(ms)
        assert when is not None and datetime_to_ms(when) == ms
    aware = datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert datetime_to_ms(aware) == datetime_to_ms(datetime(2024, 1, 1, tzinfo=UTC))


async def test_purge_checks_its_arguments(db: Database) -> None:
    durably = await db.runtime([quick])
    with pytest.raises(ValueError, match="timezone-aware"):
        await durably.purge_runs(datetime(2024, 1, 1))
    with pytest.raises(ValidationError, match="limit"):
        await durably.purge_runs(datetime.now(UTC) + timedelta(days=1), limit=0)


# -- preserve_steps -------------------------------------------------------------------------


async def _finish(durably: Any, how: str) -> str:
    if how == "completed":
        run = await durably.jobs["quick"].trigger({"big": "output"})
        await durably.process_one()
    elif how == "failed":
        run = await durably.jobs["boom"].trigger(None)
        await durably.process_one()
    else:
        gate = asyncio.Event()

        async def hold() -> None:
            await gate.wait()

        @define_job(name="held")
        async def held(step: Any, input: Any) -> Any:
            await step.run("first", lambda: "kept?")
            await step.run("hold", hold)

        durably.register(held)
        run = await durably.jobs["held"].trigger(None)
        task = asyncio.ensure_future(durably.process_one())
        await until(lambda: durably.store.get_completed_step_outputs(run.id) != {})
        await durably.cancel(run.id)
        gate.set()
        await asyncio.wait_for(task, 2)
    stored = await durably.get_run(run.id)
    assert stored is not None and stored.status == how
    return str(run.id)


@pytest.mark.parametrize("how", ["completed", "cancelled"])
async def test_step_outputs_are_dropped_at_the_end_unless_preserved(db: Database, how: str) -> None:
    dropping = await db.runtime([quick, boom], preserve_steps=False)
    run_id = await _finish(dropping, how)
    steps = await dropping.get_steps(run_id)
    assert steps and all(s.output is None for s in steps)
    assert db.count("durably_steps", "output IS NOT NULL") == 0


async def test_a_failed_run_keeps_its_step_outputs_for_resume(db: Database) -> None:
    # preserve_steps governs completed and cancelled runs: a failed run may be resumed.
    dropping = await db.runtime([quick, boom], preserve_steps=False)
    run_id = await _finish(dropping, "failed")
    completed = [s for s in await dropping.get_steps(run_id) if s.status == "completed"]
    assert completed and all(s.output is not None for s in completed)
    await dropping.delete_run(run_id)
    assert db.count("durably_steps") == 0


@pytest.mark.parametrize("how", ["completed", "failed", "cancelled"])
async def test_preserve_steps_keeps_step_outputs(db: Database, how: str) -> None:
    keeping = await db.runtime([quick, boom], preserve_steps=True)
    run_id = await _finish(keeping, how)
    steps = await keeping.get_steps(run_id)
    completed = [s for s in steps if s.status == "completed"]
    assert completed and all(s.output is not None for s in completed)
