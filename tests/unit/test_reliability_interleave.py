"""Randomised interleavings with kills: runtimes on one database are killed mid-run (their
tasks abandoned, as a closed tab's are) and replaced by new ones, while others claim,
execute, let leases lapse and reclaim, in a seeded random order.

Beyond test_interleave.py's invariants (one finish per run, no lost step), every step
function checks on entry that its step is not already stored as completed: a stored
step must never execute again, whoever holds the run and however often it was
reclaimed. Re-executions of steps that were in flight are allowed and counted.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest
from harness import Database, FakeClock, Recorder, record

from durably import Durably, RunStatus, define_job

LEASE_MS = 60_000
SEEDS = range(24)


@pytest.mark.parametrize("seed", SEEDS)
async def test_kills_and_reclaims_never_rerun_a_stored_step(
    db: Database, clock: FakeClock, seed: int
) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    blocked: list[asyncio.Future[str]] = []
    violations: list[str] = []
    executions: Counter[tuple[str, str]] = Counter()

    async def step_fn(run_id: str, name: str) -> str:
        stored = db.rows(
            "SELECT 1 FROM durably_steps WHERE run_id = ? AND name = ? AND status = 'completed'",
            (run_id, name),
        )
        if stored:
            violations.append(f"{run_id}/{name} executed after it was stored")
        executions[run_id, name] += 1
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
            name = f"s{i}"
            outputs.append(await step.run(name, lambda name=name: step_fn(step.run_id, name)))
        return {"outputs": outputs}

    owners = iter(range(1000))
    recorders: list[Recorder] = []

    async def new_runtime() -> Durably:
        runtime = await db.runtime(
            [chain], lease_ms=LEASE_MS, preserve_steps=True, owner=f"w{next(owners)}"
        )
        recorders.append(record(runtime))
        return runtime

    live = [await new_runtime(), await new_runtime()]
    tasks: dict[asyncio.Task[bool], Durably] = {}
    run_ids: list[str] = []
    kills = 0

    async def trigger() -> None:
        run = await rng.choice(live).jobs["chain"].trigger({"steps": rng.randint(1, 4)})
        run_ids.append(run.id)

    def release_one() -> None:
        release = blocked.pop(rng.randrange(len(blocked)))
        if not release.done():
            release.set_result("fail" if rng.random() < 0.1 else f"v{rng.randrange(10**6)}")

    def reap() -> None:
        for task in [t for t in tasks if t.done()]:
            del tasks[task]
            if not task.cancelled():
                task.result()  # an execution never raises out of process_one

    async def kill() -> None:
        victim = live.pop(rng.randrange(len(live)))
        for task, runtime in list(tasks.items()):
            if runtime is victim:
                task.cancel()  # abandoned mid-step: its lease stays until it runs out
        await asyncio.sleep(0)
        reap()
        live.append(await new_runtime())

    for _ in range(4):
        await trigger()
    for _ in range(300):
        roll = rng.random()
        if roll < 0.25 and len(tasks) < 4:
            runtime = rng.choice(live)
            tasks[asyncio.ensure_future(runtime.process_one())] = runtime
        elif roll < 0.55 and blocked:
            release_one()
        elif roll < 0.7:
            clock.advance(rng.choice([1, LEASE_MS // 2, LEASE_MS]))
        elif roll < 0.8 and tasks:
            await kill()
            kills += 1
        elif roll < 0.87 and len(run_ids) < 12:
            await trigger()
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
        reap()

    for _ in range(600):
        while blocked:
            release_one()
        await asyncio.sleep(0)
        reap()
        if not tasks and await live[0].count_runs(status=["pending", "leased"]) == 0:
            break
        if not tasks:
            clock.advance(LEASE_MS)
            runtime = rng.choice(live)
            tasks[asyncio.ensure_future(runtime.process_one())] = runtime
    else:
        pytest.fail("runs did not all finish")

    assert violations == []
    events = [e for r in recorders for e in r.events]
    finishes = Counter(e.run_id for e in events if e.type in ("run:complete", "run:fail"))
    for run_id in run_ids:
        run = await live[0].get_run(run_id)
        assert run is not None
        assert run.status in (RunStatus.COMPLETED, RunStatus.FAILED), run
        assert finishes[run_id] == 1, (run_id, finishes[run_id])
        stored = db.rows(
            "SELECT name FROM durably_steps WHERE run_id = ? AND status = 'completed'", (run_id,)
        )
        assert run.completed_step_count == len(stored)
        for (name,) in stored:
            assert executions[run_id, name] >= 1, (run_id, name)
        if run.status == RunStatus.COMPLETED:
            assert len(stored) == len(run.output["outputs"])
    assert kills > 0  # every seed kills some runtimes mid-run
