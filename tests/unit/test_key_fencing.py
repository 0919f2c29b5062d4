"""At most one run per concurrency key makes progress, even when a holder stalls.

A claim that passes over an expired lease of its key fences that run in the same
transaction (two-phase release): the stalled holder can write nothing afterwards. A
runtime never reclaims the runs it executes itself, however late their leases look.
The claim takes the claimed row from its own UPDATE, so a cancel right after is harmless.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from harness import Database, FakeClock, count_polls, idle_cycles, record, sqlite_only, until

from durably import RunStatus, SqliteStore, define_job
from durably.store import NewLog, NewRun

LEASE_MS = 10_000


async def test_claiming_a_key_fences_the_stalled_holder_of_that_key(
    db: Database, clock: FakeClock
) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()

    async def stall() -> str:
        entered.set()
        await gate.wait()
        return "from-p1"

    @define_job(name="a")
    async def job_a(step: Any, input: Any) -> Any:
        await step.run("work", stall)
        step.log.info("from-p1")
        return "a"

    @define_job(name="b")
    async def job_b(step: Any, input: Any) -> Any:
        return await step.run("work", lambda: "from-p2")

    p1 = await db.runtime([job_a], lease_ms=LEASE_MS, owner="p1", preserve_steps=True)
    p2 = await db.runtime([job_b], lease_ms=LEASE_MS, owner="p2", preserve_steps=True)
    p1_events = record(p1)
    a_run = await p1.jobs["a"].trigger({}, concurrency_key="k")
    held = p1._scheduler.claim_next()
    assert held is not None
    task = asyncio.ensure_future(p1._scheduler.execute(held))
    await until(entered.is_set, what="p1 to stall mid-step")

    clock.advance(LEASE_MS)  # p1's lease runs out while it stalls
    b_run = await p2.jobs["b"].trigger({}, concurrency_key="k")
    taken = p2._scheduler.claim_next()
    assert taken is not None and taken.run.id == b_run.id

    # The stalled run was released in the same transaction: new generation, no owner,
    # still leased with its expired lease (claimable once the key is free).
    fenced = await p1.get_run(a_run.id)
    assert fenced is not None
    assert (fenced.status, fenced.lease_owner, fenced.lease_generation) == (
        RunStatus.LEASED,
        None,
        2,
    )
    # p1 wakes: no write of its run of key k applies, starting with the renewal.
    now = clock.advance(1)
    assert p1.store.renew_lease(held.lease, now, LEASE_MS) is False
    assert p1.store.append_logs(held.lease, [NewLog("info", "late", None, None, now)]) is False
    gate.set()
    assert await asyncio.wait_for(task, 2) == "lease-lost"
    assert db.count("durably_steps", "run_id = ?", [a_run.id]) == 0
    assert db.count("durably_logs", "run_id = ?", [a_run.id]) == 0
    assert not p1_events.of("run:fail") and not p1_events.of("step:complete")
    assert db.count("durably_runs", "concurrency_key = 'k' AND lease_owner IS NOT NULL") == 1

    # Once the key is free again, the fenced run is claimed and completes normally.
    assert p1._scheduler.claim_next() is None  # p2's lease on key k is live
    assert await p2._scheduler.execute(taken) == "completed"
    again = p1._scheduler.claim_next()
    assert again is not None and (again.run.id, again.lease.generation) == (a_run.id, 3)
    assert await p1._scheduler.execute(again) == "completed"


async def test_claim_fences_only_expired_runs_of_the_same_key(
    db: Database, clock: FakeClock
) -> None:
    store = db.opener.open()
    store.migrate()
    for run_id, key in [("k1", "k"), ("free", None)]:
        store.create_run(NewRun(id=run_id, job_name="a", input_json="{}", concurrency_key=key), 0)
    first = store.claim_next("p1", clock(), LEASE_MS, ["a"])
    other = store.claim_next("p1", clock(), LEASE_MS, ["a"])
    assert first is not None and other is not None
    assert (first[0].id, other[0].id) == ("k1", "free")
    store.create_run(NewRun(id="k2", job_name="b", input_json="{}", concurrency_key="k"), 0)
    clock.advance(LEASE_MS)
    taken = store.claim_next("p2", clock(), LEASE_MS, ["b"])
    assert taken is not None and taken[0].id == "k2"
    assert db.rows(
        "SELECT id, status, lease_owner, lease_generation FROM durably_runs ORDER BY id"
    ) == [
        ("free", "leased", "p1", 1),  # no key: untouched (an expired lease, claimable)
        ("k1", "leased", None, 2),  # fenced
        ("k2", "leased", "p2", 1),
    ]
    assert store.renew_lease(first[1], clock(), LEASE_MS) is False
    assert store.persist_step(first[1], "s", 0, "1", clock(), clock()) is False
    assert store.complete_run(first[1], "1", clock(), True) is False
    assert store.fail_run(first[1], "x", clock()) is False
    assert store.renew_lease(other[1], clock(), LEASE_MS) is True


async def test_a_runtime_never_reclaims_its_own_run_whose_step_blocked_past_the_lease(
    db: Database, clock: FakeClock
) -> None:
    blocked_runs: list[int] = []
    release = asyncio.Event()

    def block_the_loop() -> str:
        # A synchronous step that holds the event loop longer than the lease, as a
        # long computation in the browser's worker does: no renewal can run meanwhile.
        blocked_runs.append(1)
        clock.advance(LEASE_MS + 1)
        return "done"

    @define_job(name="slow")
    async def slow(step: Any, input: Any) -> Any:
        first = await step.run("block", block_the_loop)
        await step.run("after", release.wait)
        return first

    @define_job(name="quick")
    async def quick(step: Any, input: Any) -> Any:
        return await step.run("only", lambda: "quick")

    durably = await db.runtime(
        [slow, quick], lease_ms=LEASE_MS, max_concurrent_runs=2, polling_interval_ms=5
    )
    events = record(durably)
    slow_run = await durably.jobs["slow"].trigger(None)
    quick_run = await durably.jobs["quick"].trigger(None)
    polls = count_polls(durably)
    durably.start()
    assert (await durably.wait_for_run(quick_run.id, timeout=2)).status == RunStatus.COMPLETED
    await idle_cycles(polls)  # the loop has had its chances to claim the expired run

    release.set()
    done = await durably.wait_for_run(slow_run.id, timeout=2)
    assert done.output == "done"
    assert done.lease_generation == 1  # claimed once
    assert blocked_runs == [1]  # the blocking step ran once
    assert len([e for e in events.of("run:leased") if e.run_id == slow_run.id]) == 1
    assert not events.of("run:fail")


async def test_a_cancel_right_after_the_claim_is_harmless(db: Database, clock: FakeClock) -> None:
    sqlite_only(db, "wraps the sqlite3 connection to cancel between claim and commit")

    @define_job(name="j")
    async def job(step: Any, input: Any) -> Any:
        return await step.run("s", lambda: 1)

    durably = await db.runtime([job], lease_ms=LEASE_MS)
    events = record(durably)
    run = await durably.jobs["j"].trigger(None, labels={"team": "a"})
    store = durably.store
    assert isinstance(store, SqliteStore)
    canceller = db.opener.open()
    store._conn = CancelAfterClaim(store._conn, lambda: canceller.cancel_run(run.id, clock(), True))

    execution = durably._scheduler.claim_next()  # another process cancels once the claim committed
    assert store._conn.fired
    assert execution is not None
    assert execution.run.status == RunStatus.LEASED
    assert execution.run.labels == {"team": "a"}
    # The execution finds the run cancelled at its first fenced write.
    assert await durably._scheduler.execute(execution) == "cancelled"
    stored = await durably.get_run(run.id)
    assert stored is not None and stored.status == RunStatus.CANCELLED
    assert db.count("durably_steps") == 0
    assert not events.of("run:fail")


class CancelAfterClaim:
    """A connection wrapper that runs `hook` (a cancel by another process) before the
    first statement after the claim's UPDATE that runs outside a transaction: the
    earliest moment another connection can write."""

    def __init__(self, conn: sqlite3.Connection, hook: Any) -> None:
        self._conn = conn
        self._hook = hook
        self._claimed = False
        self.fired = False

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if self._claimed and not self.fired and not self._conn.in_transaction:
            self.fired = True
            self._hook()
        cursor = self._conn.execute(sql, params)
        if "SET status = 'leased'" in sql:
            self._claimed = True
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)
