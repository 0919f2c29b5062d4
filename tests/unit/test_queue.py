"""The queue: statuses pending → leased → completed | failed | cancelled, which run a
claim picks, what it writes, and reading runs back with filters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import Database, FakeClock, claim_and_execute

from durably import RunStatus, define_job
from durably.errors import NotFoundError, ValidationError

LEASE_MS = 10_000


@define_job(name="echo")
async def echo(step: Any, input: Any) -> Any:
    return await step.run("echo", lambda: input)


@define_job(name="boom")
async def boom(step: Any, input: Any) -> Any:
    raise RuntimeError("boom")


@define_job(name="other")
async def other(step: Any, input: Any) -> Any:
    return "other"


async def test_run_moves_pending_leased_completed(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([echo], lease_ms=LEASE_MS, owner="worker-a")
    run = await durably.jobs["echo"].trigger({"n": 1})
    assert run.status == RunStatus.PENDING
    assert run.disposition == "created"
    assert (run.lease_owner, run.lease_expires_at, run.lease_generation) == (None, None, 0)
    assert run.created_at.timestamp() * 1000 == clock()

    clock.advance(5)
    execution = durably._scheduler.claim_next()
    assert execution is not None
    leased = await durably.get_run(run.id)
    assert leased is not None
    assert leased.status == RunStatus.LEASED
    assert leased.lease_owner == "worker-a"
    assert leased.lease_expires_at is not None
    assert leased.lease_expires_at.timestamp() * 1000 == clock() + LEASE_MS
    assert leased.lease_generation == 1
    assert leased.started_at is not None and leased.started_at.timestamp() * 1000 == clock()

    assert await durably._scheduler.execute(execution) == "completed"
    done = await durably.get_run(run.id)
    assert done is not None
    assert done.status == RunStatus.COMPLETED
    assert done.output == {"n": 1}
    assert done.completed_at is not None
    assert (done.lease_owner, done.lease_expires_at) == (None, None)
    assert done.completed_step_count == 1


async def test_failing_job_ends_failed(db: Database) -> None:
    durably = await db.runtime([boom])
    run = await durably.jobs["boom"].trigger(None)
    assert await durably.process_one() is True
    failed = await durably.get_run(run.id)
    assert failed is not None
    assert failed.status == RunStatus.FAILED
    assert failed.error == "RuntimeError: boom"
    assert failed.output is None


async def test_cancelled_pending_run_is_never_claimed(db: Database) -> None:
    durably = await db.runtime([echo])
    run = await durably.jobs["echo"].trigger(1)
    await durably.cancel(run.id)
    assert await durably.process_one() is False
    cancelled = await durably.get_run(run.id)
    assert cancelled is not None and cancelled.status == RunStatus.CANCELLED


async def test_finished_runs_are_never_claimed_again(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([echo, boom], lease_ms=LEASE_MS)
    await durably.jobs["echo"].trigger(1)
    await durably.jobs["boom"].trigger(1)
    assert await durably.process_until_idle() == 2
    clock.advance(LEASE_MS * 10)
    assert await durably.process_one() is False
    assert await durably.count_runs(status=["completed", "failed"]) == 2


async def test_claim_takes_the_oldest_eligible_run(db: Database, clock: FakeClock) -> None:
    stalled = await db.runtime([echo], lease_ms=LEASE_MS, owner="stalled")
    durably = await db.runtime([echo], lease_ms=LEASE_MS, owner="live")
    first = await durably.jobs["echo"].trigger(1)
    clock.advance(1)
    second = await durably.jobs["echo"].trigger(2)

    a = stalled._scheduler.claim_next()
    b = stalled._scheduler.claim_next()
    assert a is not None and b is not None
    assert (a.run.id, b.run.id) == (first.id, second.id)
    assert durably._scheduler.claim_next() is None  # both leases are live

    clock.advance(1)
    third = await durably.jobs["echo"].trigger(3)
    clock.advance(LEASE_MS)
    # The expired leases are older than the pending run, so they are reclaimed first
    # (by another runtime: a runtime never reclaims the runs it executes itself).
    order = [durably._scheduler.claim_next() for _ in range(3)]
    assert [e.run.id for e in order if e] == [first.id, second.id, third.id]
    assert [e.lease.generation for e in order if e] == [2, 2, 1]


async def test_same_millisecond_runs_are_claimed_in_trigger_order(db: Database) -> None:
    durably = await db.runtime([echo])
    ids = [(await durably.jobs["echo"].trigger(i)).id for i in range(5)]
    claimed = [durably._scheduler.claim_next() for _ in ids]
    assert [e.run.id for e in claimed if e] == ids


async def test_every_claim_increments_the_generation(db: Database, clock: FakeClock) -> None:
    runtimes = [await db.runtime([echo], lease_ms=LEASE_MS, owner=f"w{i}") for i in range(3)]
    run = await runtimes[0].jobs["echo"].trigger(1)
    for generation, durably in zip((1, 2, 3), runtimes, strict=True):
        execution = durably._scheduler.claim_next()
        assert execution is not None and execution.lease.generation == generation
        stored = await durably.get_run(run.id)
        assert stored is not None and stored.lease_generation == generation
        clock.advance(LEASE_MS)


async def test_claim_never_leases_two_runs_of_one_concurrency_key(db: Database) -> None:
    durably = await db.runtime([echo])
    first = await durably.jobs["echo"].trigger(1, concurrency_key="k")
    running = durably._scheduler.claim_next()
    assert running is not None and running.run.id == first.id
    waiting = await durably.jobs["echo"].trigger(2, concurrency_key="k")
    unkeyed = await durably.jobs["echo"].trigger(3)

    # The keyed run waits; a run without the key is not held up behind it.
    nxt = durably._scheduler.claim_next()
    assert nxt is not None and nxt.run.id == unkeyed.id
    assert durably._scheduler.claim_next() is None
    assert db.count("durably_runs", "concurrency_key = 'k' AND status = 'leased'") == 1

    assert await durably._scheduler.execute(running) == "completed"
    after = durably._scheduler.claim_next()
    assert after is not None and after.run.id == waiting.id


async def test_claim_only_takes_jobs_registered_in_that_runtime(db: Database) -> None:
    echo_only = await db.runtime([echo])
    other_only = await db.runtime([other])
    nothing = await db.runtime([])
    run = await other_only.jobs["other"].trigger(None)

    assert echo_only._scheduler.claim_next() is None
    assert nothing._scheduler.claim_next() is None
    assert await other_only.process_one() is True
    done = await other_only.get_run(run.id)
    assert done is not None and done.output == "other"


async def test_trigger_by_name_and_unknown_job(db: Database) -> None:
    durably = await db.runtime([echo])
    run = await durably.trigger("echo", 7)
    assert run.job_name == "echo" and run.input == 7
    with pytest.raises(NotFoundError, match="'nope' is not registered"):
        await durably.trigger("nope", 1)


async def test_process_until_idle_counts_and_honours_max_runs(db: Database) -> None:
    durably = await db.runtime([echo])
    for i in range(4):
        await durably.jobs["echo"].trigger(i)
    assert await durably.process_until_idle(max_runs=3) == 3
    assert await durably.count_runs(status="pending") == 1
    assert await durably.process_until_idle() == 1
    assert await durably.process_until_idle() == 0


async def test_claim_and_execute_returns_outcomes(db: Database) -> None:
    durably = await db.runtime([echo, boom])
    await durably.jobs["echo"].trigger(1)
    await durably.jobs["boom"].trigger(1)
    assert await claim_and_execute(durably) == "completed"
    assert await claim_and_execute(durably) == "failed"
    assert await claim_and_execute(durably) is None


# -- reading runs -----------------------------------------------------------------------


async def _seed_runs(db: Database, clock: FakeClock) -> tuple[Any, dict[str, str]]:
    durably = await db.runtime([echo, boom, other])
    ids: dict[str, str] = {}
    for name, job, labels in (
        ("e1", "echo", {"team": "red", "env": "prod"}),
        ("b1", "boom", {"team": "red"}),
        ("o1", "other", {"team": "blue", "env": "prod"}),
        ("e2", "echo", {"team": "blue"}),
        ("e3", "echo", {}),
    ):
        clock.advance(10)
        ids[name] = (await durably.trigger(job, name, labels=labels)).id
    # Leave e3 pending; finish the rest (e1 completed, b1 failed, o1 completed, e2 completed).
    await durably.process_until_idle(max_runs=4)
    return durably, ids


async def test_get_runs_filters_and_orders_newest_first(db: Database, clock: FakeClock) -> None:
    durably, ids = await _seed_runs(db, clock)

    def names(runs: list[Any]) -> list[str]:
        by_id = {v: k for k, v in ids.items()}
        return [by_id[r.id] for r in runs]

    assert names(await durably.get_runs()) == ["e3", "e2", "o1", "b1", "e1"]
    assert names(await durably.get_runs(status="completed")) == ["e2", "o1", "e1"]
    assert names(await durably.get_runs(status=["failed", "pending"])) == ["e3", "b1"]
    assert names(await durably.get_runs(job_name="echo")) == ["e3", "e2", "e1"]
    assert names(await durably.get_runs(job_name=["boom", "other"])) == ["o1", "b1"]
    assert names(await durably.get_runs(labels={"team": "red"})) == ["b1", "e1"]
    assert names(await durably.get_runs(labels={"team": "red", "env": "prod"})) == ["e1"]
    assert names(await durably.get_runs(labels={"env": "prod", "team": "blue"})) == ["o1"]
    assert names(await durably.get_runs(labels={"team": "green"})) == []
    assert names(await durably.get_runs(job_name="echo", status="completed")) == ["e2", "e1"]
    assert names(await durably.get_runs(limit=2)) == ["e3", "e2"]
    assert names(await durably.get_runs(limit=2, offset=2)) == ["o1", "b1"]
    assert names(await durably.get_runs(offset=3)) == ["b1", "e1"]
    labelled = await durably.get_runs(labels={"env": "prod", "team": "red"})
    assert labelled[0].labels == {"team": "red", "env": "prod"}


async def test_count_runs_uses_the_same_filters(db: Database, clock: FakeClock) -> None:
    durably, _ = await _seed_runs(db, clock)
    assert await durably.count_runs() == 5
    assert await durably.count_runs(status="completed") == 3
    assert await durably.count_runs(status=["completed", "failed"]) == 4
    assert await durably.count_runs(job_name=["echo"]) == 3
    assert await durably.count_runs(labels={"team": "blue"}) == 2
    assert await durably.count_runs(labels={"team": "blue"}, status="pending") == 0


async def test_get_runs_rejects_bad_filters(db: Database) -> None:
    durably = await db.runtime([echo])
    with pytest.raises(ValidationError, match="unknown status") as info:
        await durably.get_runs(status="running")
    assert info.value.fields == ["status"]
    with pytest.raises(ValidationError, match="limit"):
        await durably.get_runs(limit=-1)
    with pytest.raises(ValidationError, match="offset"):
        await durably.get_runs(offset=-2)


async def test_get_run_of_unknown_id_is_none(db: Database) -> None:
    durably = await db.runtime([echo])
    assert await durably.get_run("nope") is None


async def test_run_snapshot_to_dict_is_json_safe(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([echo])
    run = await durably.jobs["echo"].trigger({"x": [1, 2]}, labels={"a": "b"})
    data = json.loads(json.dumps(run.to_dict()))
    assert data["status"] == "pending"
    assert data["labels"] == {"a": "b"}
    assert data["created_at"] == data["updated_at"] == "2023-11-14T22:13:20.000Z"
    assert data["lease_expires_at"] is None


async def test_reclaim_leases_makes_leased_runs_claimable_now(
    db: Database, clock: FakeClock
) -> None:
    previous_owner = await db.runtime([echo], lease_ms=LEASE_MS, owner="gone")
    new_owner = await db.runtime([echo], lease_ms=LEASE_MS, owner="new")
    run = await previous_owner.jobs["echo"].trigger(1, concurrency_key="k")
    assert previous_owner._scheduler.claim_next() is not None
    assert new_owner._scheduler.claim_next() is None  # the lease is still live

    assert new_owner.reclaim_leases() == 1
    assert await claim_and_execute(new_owner) == "completed"
    done = await new_owner.get_run(run.id)
    assert done is not None and done.lease_generation == 2
