"""Fencing: once a run is reclaimed (new lease generation), nothing the stale holder
does reaches the database, and its execution ends as lease-lost, not as a failure.

Two runtimes share one database and one clock: A claims and blocks; the clock
passes A's lease; B reclaims and completes the run; then A wakes up and tries
each kind of write.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harness import Database, FakeClock, claim_and_execute, record, until

from durably import CancellationSignal, RunStatus, define_job
from durably.errors import LeaseLostError
from durably.store import Lease, NewLog, NewRun

LEASE_MS = 10_000

WRITE_KINDS = ["step", "progress", "log", "complete", "fail"]


def stale_job(kind: str, entered: asyncio.Event, gate: asyncio.Event, seen: list[str]) -> Any:
    """Runtime A's version of the job: blocks, then attempts one write of `kind`."""

    async def blocked_then(action: Any) -> Any:
        entered.set()
        await gate.wait()
        return action()

    @define_job(name="fenced")
    async def job(step: Any, input: Any) -> Any:
        try:
            if kind == "step":
                await step.run("work", lambda: blocked_then(lambda: "from-a"))
            elif kind == "progress":
                await step.run("work", lambda: blocked_then(lambda: step.progress(1, 2, "from-a")))
            elif kind == "log":
                await step.run("work", lambda: blocked_then(lambda: step.log.info("from-a")))
            elif kind == "complete":
                await blocked_then(lambda: None)
                return {"by": "a"}
            elif kind == "fail":
                await blocked_then(lambda: None)
                raise RuntimeError("from-a")
        except LeaseLostError:
            seen.append("lease-lost")
            raise
        return {"by": "a"}

    return job


@define_job(name="fenced")
async def fresh_job(step: Any, input: Any) -> Any:
    """Runtime B's version: completes at once."""
    await step.run("work", lambda: "from-b")
    step.log.info("from-b")
    step.progress(2, 2, "from-b")
    return {"by": "b"}


@pytest.mark.parametrize("kind", WRITE_KINDS)
async def test_stale_holder_writes_nothing(db: Database, clock: FakeClock, kind: str) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()
    seen: list[str] = []
    a = await db.runtime(
        [stale_job(kind, entered, gate, seen)], lease_ms=LEASE_MS, owner="a", preserve_steps=True
    )
    b = await db.runtime([fresh_job], lease_ms=LEASE_MS, owner="b", preserve_steps=True)
    a_events, b_events = record(a), record(b)
    run = await a.jobs["fenced"].trigger({})

    execution = a._scheduler.claim_next()
    assert execution is not None and execution.lease.generation == 1
    task = asyncio.ensure_future(a._scheduler.execute(execution))
    await until(entered.is_set, what="A to block")

    clock.advance(LEASE_MS)  # A's lease has now expired
    assert await claim_and_execute(b) == "completed"
    after_b = db.rows("SELECT * FROM durably_runs")
    steps_after_b = db.rows("SELECT * FROM durably_steps")
    logs_after_b = db.rows("SELECT * FROM durably_logs")
    mark = len(a_events.events)

    gate.set()
    assert await asyncio.wait_for(task, 2) == "lease-lost"

    # Nothing A did after waking reached the database.
    assert db.rows("SELECT * FROM durably_runs") == after_b
    assert db.rows("SELECT * FROM durably_steps") == steps_after_b
    assert db.rows("SELECT * FROM durably_logs") == logs_after_b
    done = await b.get_run(run.id)
    assert done is not None
    assert done.status == RunStatus.COMPLETED
    assert done.output == {"by": "b"}
    assert done.error is None
    assert done.lease_generation == 2
    assert done.completed_step_count == 1
    assert done.progress is not None and done.progress.message == "from-b"
    steps = await b.get_steps(run.id)
    assert [(s.name, s.status, s.output) for s in steps] == [("work", "completed", "from-b")]
    assert [log.message for log in await b.get_logs(run.id)] == ["from-b"]

    # A announced nothing of what it could not write and recorded no failure; the step
    # it had in flight ends with step:cancel, so no listener sees it running forever.
    # The exception: a line logged inside a step is announced when written and stored
    # with the step's commit, so the stale holder's line was announced, then dropped.
    late = a_events.types()[mark:]
    assert not set(late) & {
        "step:complete", "run:progress", "run:complete", "run:fail", "run:cancel"
    }  # fmt: skip
    expected = {"step": ["step:cancel"], "progress": ["step:cancel"]}
    expected["log"] = ["log:write", "step:cancel"]
    assert late == expected.get(kind, [])
    assert execution.signal.reason == "lease-lost"
    if kind in ("step", "progress", "log"):
        assert seen == ["lease-lost"]  # raised inside the job as LeaseLostError
    assert b_events.types(run.id)[-1] == "run:complete"


async def test_stale_holder_cannot_renew_its_lease(db: Database, clock: FakeClock) -> None:
    entered = asyncio.Event()
    reasons: list[str] = []

    async def wait_for_signal(signal: CancellationSignal) -> str:
        entered.set()
        reason = await signal.wait()
        reasons.append(reason)
        return reason

    @define_job(name="fenced")
    async def job(step: Any, input: Any) -> Any:
        return await step.run("work", wait_for_signal)

    a = await db.runtime([job], lease_ms=LEASE_MS, lease_renew_interval_ms=2, owner="a")
    b = await db.runtime([fresh_job], lease_ms=LEASE_MS, owner="b")
    a_events = record(a)
    run = await a.jobs["fenced"].trigger({})
    execution = a._scheduler.claim_next()
    assert execution is not None
    task = asyncio.ensure_future(a._scheduler.execute(execution))
    await until(entered.is_set)
    # While the lease is A's, renewing works.
    await until(lambda: bool(a_events.of("run:lease-renewed")), what="a renewal")

    clock.advance(LEASE_MS)
    taken = b._scheduler.claim_next()  # no await in between: A cannot renew first
    assert taken is not None and taken.lease.generation == 2
    renewals = len(a_events.of("run:lease-renewed"))

    assert await asyncio.wait_for(task, 2) == "lease-lost"
    assert reasons == ["lease-lost"]
    assert len(a_events.of("run:lease-renewed")) == renewals
    stored = await b.get_run(run.id)
    assert stored is not None
    assert stored.lease_owner == "b"
    assert stored.lease_generation == 2
    assert stored.lease_expires_at is not None
    assert stored.lease_expires_at.timestamp() * 1000 == clock() + LEASE_MS
    assert await b._scheduler.execute(taken) == "completed"
    assert not a_events.of("run:fail")


async def test_store_rejects_every_write_of_a_stale_generation(
    db: Database, clock: FakeClock
) -> None:
    store = db.opener.open()
    store.migrate()
    store.create_run(NewRun(id="r", job_name="j", input_json="{}"), clock())
    first = store.claim_next("a", clock(), LEASE_MS, ["j"])
    assert first is not None
    stale = first[1]
    clock.advance(LEASE_MS)
    second = store.claim_next("b", clock(), LEASE_MS, ["j"])
    assert second is not None
    current = second[1]
    assert (stale.generation, current.generation) == (1, 2)

    def snapshot() -> list[list[tuple[Any, ...]]]:
        return [
            db.rows(f"SELECT * FROM {table}")
            for table in ("durably_runs", "durably_steps", "durably_logs")
        ]

    before = snapshot()
    now = clock.advance(1)
    assert store.renew_lease(stale, now, LEASE_MS) is False
    assert store.start_step(stale) is False
    assert store.persist_step(stale, "s", 0, '"x"', now, now) is False
    assert store.persist_step_failure(stale, "s", 0, "err", now, now) is False
    assert store.update_progress(stale, '{"current":1}', now) is False
    assert store.append_logs(stale, [NewLog("info", "m", None, None, now)]) is False
    assert store.complete_run(stale, '"x"', now, True) is False
    assert store.fail_run(stale, "err", now) is False
    assert snapshot() == before

    # The same writes under the current lease apply.
    assert store.renew_lease(current, now, LEASE_MS) is True
    assert store.start_step(current) is True
    assert store.persist_step(current, "s", 0, '"x"', now, now) is True
    assert store.update_progress(current, '{"current":1}', now) is True
    assert store.append_logs(current, [NewLog("info", "m", None, None, now)]) is True
    assert store.complete_run(current, '"x"', now, True) is True
    # ...and once the run is finished, not even the last holder can write.
    assert store.fail_run(current, "err", now) is False
    assert store.renew_lease(current, now, LEASE_MS) is False
    assert store.append_logs(current, [NewLog("info", "late", None, None, now)]) is False


async def test_cancelled_run_rejects_its_holders_writes(db: Database, clock: FakeClock) -> None:
    store = db.opener.open()
    store.migrate()
    store.create_run(NewRun(id="r", job_name="j", input_json="{}"), clock())
    claimed = store.claim_next("a", clock(), LEASE_MS, ["j"])
    assert claimed is not None
    lease: Lease = claimed[1]
    store.cancel_run("r", clock(), True)
    assert store.persist_step(lease, "s", 0, "1", clock(), clock()) is False
    assert store.complete_run(lease, "1", clock(), True) is False
    assert store.renew_lease(lease, clock(), LEASE_MS) is False
    assert db.count("durably_steps") == 0
    run = store.get_run("r")
    assert run is not None and run.status == RunStatus.CANCELLED
