"""`retain_runs`: finished runs past the retention period are purged by the worker
when it is idle, one batch of 100 per idle cycle, at most once a minute once the
backlog is gone, and never while it has runs to claim or execute."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harness import Database, FakeClock, count_polls, idle_cycles, record, until

from durably import create_durably, define_job
from durably.scheduler import RETENTION_BATCH, RETENTION_INTERVAL_MS

POLL_MS = 2


@define_job(name="job")
async def job(step: Any, input: Any) -> Any:
    return input


def spy_on_purges(durably: Any) -> list[int]:
    """Wrap the store's purge_runs; returns the list of how many each call deleted."""
    deleted: list[int] = []
    purge = durably.store.purge_runs

    def recording(older_than: int, limit: int) -> list[str]:
        assert limit == RETENTION_BATCH
        run_ids: list[str] = purge(older_than, limit)
        deleted.append(len(run_ids))
        return run_ids

    durably.store.purge_runs = recording
    return deleted


async def finished_runs(durably: Any, count: int) -> list[str]:
    ids = []
    for i in range(count):
        run = await durably.jobs["job"].trigger(i)
        await durably.cancel(run.id)
        ids.append(run.id)
    return ids


@pytest.mark.parametrize("bad", ["30x", "0d", "", "-1d", "1.5h", "d", 30, None.__class__])
def test_invalid_retain_runs_is_rejected_at_creation(bad: Any) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        create_durably(":memory:", retain_runs=bad)


@pytest.mark.parametrize(
    ("text", "ms"), [("45s", 45_000), ("90m", 5_400_000), ("30d", 2_592_000_000)]
)
def test_valid_retain_runs(text: str, ms: int) -> None:
    durably = create_durably(":memory:", retain_runs=text)
    assert durably.settings.retain_runs_ms == ms
    durably.store.close()


async def test_idle_worker_purges_in_batches_then_once_a_minute(
    db: Database, clock: FakeClock
) -> None:
    durably = await db.runtime([job], retain_runs="1s", polling_interval_ms=POLL_MS)
    await finished_runs(durably, 250)
    clock.advance(1_001)
    backlog = {r.id for r in await durably.get_runs()}
    deleted = spy_on_purges(durably)
    polls = count_polls(durably)
    events = record(durably)
    durably.start()
    await until(lambda: sum(deleted) == 250, what="the backlog to be purged")
    assert deleted[:3] == [100, 100, 50]
    assert await durably.count_runs() == 0
    # One runs:purge per batch, naming exactly the runs it deleted; no run:delete.
    purges = events.of("runs:purge")
    assert [(p.count, len(p.run_ids)) for p in purges] == [(100, 100), (100, 100), (50, 50)]
    assert {i for p in purges for i in p.run_ids} == backlog
    assert all(p.run_id is None and p.job_name is None for p in purges)
    assert events.types() == ["runs:purge"] * 3

    # Runs that become old soon after are left until a minute has passed.
    recent = await finished_runs(durably, 3)
    clock.advance(1_001)
    calls = len(deleted)
    await idle_cycles(polls)
    assert len(deleted) == calls
    assert await durably.count_runs() == 3

    clock.advance(RETENTION_INTERVAL_MS)
    await until(lambda: sum(deleted) == 253, what="the next purge")
    assert {r.id for r in await durably.get_runs()}.isdisjoint(recent)


async def test_retention_keeps_unfinished_and_recent_runs(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([job], retain_runs="1h", polling_interval_ms=POLL_MS)
    old = await finished_runs(durably, 2)
    # A run of a job this runtime does not execute: it stays pending, however old.
    elsewhere = await db.runtime([define_job(name="elsewhere", run=job.run)])
    unfinished = await elsewhere.jobs["elsewhere"].trigger("old but pending")
    clock.advance(3_600_001)
    young = await finished_runs(durably, 1)
    deleted = spy_on_purges(durably)
    durably.start()
    await until(lambda: bool(deleted))
    remaining = {r.id for r in await durably.get_runs()}
    assert remaining == {*young, unfinished.id}
    assert remaining.isdisjoint(old)


async def test_retention_never_runs_on_the_claim_path(db: Database, clock: FakeClock) -> None:
    gate = asyncio.Event()
    started = asyncio.Event()

    @define_job(name="slow")
    async def slow(step: Any, input: Any) -> Any:
        started.set()
        await gate.wait()

    # Two slots: with one run in flight, each cycle still looks for work (and finds none).
    durably = await db.runtime(
        [job, slow], retain_runs="1s", polling_interval_ms=POLL_MS, max_concurrent_runs=2
    )
    await finished_runs(durably, 2)
    clock.advance(1_001)
    deleted = spy_on_purges(durably)

    # Manual processing claims and executes; it never purges.
    await durably.jobs["job"].trigger("manual")
    assert await durably.process_until_idle() == 1
    assert deleted == []

    # A started worker that has work claims it; while a run is in flight it does no housekeeping.
    await durably.jobs["slow"].trigger(None)
    polls = count_polls(durably)
    durably.start()
    await until(started.is_set)
    await idle_cycles(polls)
    assert deleted == []
    assert await durably.count_runs(status="cancelled") == 2

    gate.set()
    await until(lambda: bool(deleted), what="the idle purge")
    assert await durably.count_runs(status="cancelled") == 0


async def test_without_retain_runs_nothing_is_purged(db: Database, clock: FakeClock) -> None:
    durably = await db.runtime([job], polling_interval_ms=POLL_MS)
    await finished_runs(durably, 2)
    clock.advance(10 * 365 * 86_400_000)
    deleted = spy_on_purges(durably)
    polls = count_polls(durably)
    durably.start()
    await idle_cycles(polls)
    assert deleted == []
    assert await durably.count_runs() == 2
