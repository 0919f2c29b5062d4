"""Randomised interleavings of two runtimes on one database.

A seeded scheduler starts executions on either runtime, releases blocked steps
(some fail), advances the shared clock past leases, and triggers more runs, in
random order. Whatever the order, the queue's invariants must hold.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

import pytest
from harness import Database, FakeClock, record

from durably import RunStatus, define_job

LEASE_MS = 60_000
SEEDS = range(16)


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_interleavings_keep_the_invariants(
    db: Database, clock: FakeClock, seed: int
) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    blocked: list[asyncio.Future[str]] = []
    tokens = iter(range(1_000_000))

    async def step_fn() -> str:
        release: asyncio.Future[str] = loop.create_future()
        blocked.append(release)
        verdict = await release
        if verdict == "fail":
            raise RuntimeError("step failed")
        return verdict

    @define_job(name="chain")
    async def chain(step: Any, input: Any) -> Any:
        outputs = []
        for i in range(input["steps"]):
            if i == 1:
                # An optional step: its failure is caught and the run goes on.
                try:
                    outputs.append(await step.run("optional", step_fn))
                except RuntimeError:
                    outputs.append(None)
            else:
                outputs.append(await step.run(f"s{i}", step_fn))
        return {"outputs": outputs}

    a = await db.runtime([chain], lease_ms=LEASE_MS, preserve_steps=True, owner="a")
    b = await db.runtime([chain], lease_ms=LEASE_MS, preserve_steps=True, owner="b")
    recorders = [record(a), record(b)]
    run_ids: list[str] = []
    tasks: list[asyncio.Task[bool]] = []

    async def trigger() -> None:
        runtime = rng.choice([a, b])
        run = await runtime.jobs["chain"].trigger({"steps": rng.randint(1, 4)})
        run_ids.append(run.id)

    def release_one() -> None:
        release = blocked.pop(rng.randrange(len(blocked)))
        if not release.done():
            release.set_result("fail" if rng.random() < 0.1 else f"v{next(tokens)}")

    def reap() -> None:
        for task in [t for t in tasks if t.done()]:
            tasks.remove(task)
            task.result()  # an execution never raises out of process_one

    for _ in range(4):
        await trigger()

    for _ in range(250):
        roll = rng.random()
        if roll < 0.25 and len(tasks) < 4:
            tasks.append(asyncio.ensure_future(rng.choice([a, b]).process_one()))
        elif roll < 0.6 and blocked:
            release_one()
        elif roll < 0.8:
            clock.advance(rng.choice([1, LEASE_MS // 2, LEASE_MS]))
        elif roll < 0.85 and len(run_ids) < 10:
            await trigger()
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
        reap()

    # Drain: release everything, let leases lapse, and keep executing until all is done.
    for _ in range(400):
        while blocked:
            release_one()
        await asyncio.sleep(0)
        reap()
        if not tasks and await a.count_runs(status=["pending", "leased"]) == 0:
            break
        if not tasks:
            clock.advance(LEASE_MS)
            tasks.append(asyncio.ensure_future(rng.choice([a, b]).process_one()))
    else:
        pytest.fail("runs did not all finish")

    events = [e for r in recorders for e in r.events]
    finishes = Counter(e.run_id for e in events if e.type in ("run:complete", "run:fail"))
    step_completions = [e for e in events if e.type == "step:complete"]
    for run_id in run_ids:
        run = await a.get_run(run_id)
        assert run is not None
        # Every run ends terminal, finished exactly once.
        assert run.status in (RunStatus.COMPLETED, RunStatus.FAILED), run
        assert finishes[run_id] == 1, (run_id, finishes[run_id])
        if run.status == RunStatus.FAILED:
            assert run.error == "RuntimeError: step failed"  # the only failure we inject
        # The count of completed steps matches the stored completed steps.
        stored = db.rows(
            "SELECT name, output FROM durably_steps WHERE run_id = ? AND status = 'completed'",
            (run_id,),
        )
        assert run.completed_step_count == len(stored)
        if run.status == RunStatus.COMPLETED:
            # The output was assembled from the stored step outputs (replayed or fresh).
            by_name = {name: json.loads(output) for name, output in stored}
            names = ["s0", "optional", "s2", "s3"][: len(run.output["outputs"])]
            expected = [by_name.get(n) for n in names]
            assert run.output["outputs"] == expected
    # No step whose completion was announced was lost or overwritten afterwards.
    for event in step_completions:
        rows = db.rows(
            "SELECT status, output FROM durably_steps WHERE run_id = ? AND name = ?",
            (event.run_id, event.step_name),
        )
        assert rows == [("completed", json.dumps(event.output))], event
