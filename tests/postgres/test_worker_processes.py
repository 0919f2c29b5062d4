"""Real worker processes (`python -m durably worker`) sharing one PostgreSQL database:
load with concurrency keys, random SIGKILLs, a stalled (SIGSTOPped) worker.

What ran is checked from outside: the `history` table the test jobs write (every step
execution with its worker's pid and the time) and the store's own tables."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import defaultdict
from typing import Any

import pg_jobs
from procs import Schema, Workers

from durably import create_durably
from durably.errors import ConflictError

KEYS = 20


async def trigger_all(url: str, runs: list[tuple[str, dict[str, Any], str | None]]) -> list[str]:
    """Trigger every run; a run with a concurrency key is retried until its key has no
    pending run (the queue allows one), as a producer would."""
    durably = create_durably(url, [pg_jobs.short, pg_jobs.long])
    await durably.migrate()
    ids: list[str] = []

    async def feed(batch: list[tuple[str, dict[str, Any], str | None]]) -> None:
        for job, input, key in batch:
            while True:
                try:
                    run = await durably.jobs[job].trigger(input, concurrency_key=key)
                    ids.append(run.id)
                    break
                except ConflictError:
                    await asyncio.sleep(0.005)

    by_key: dict[str | None, list[Any]] = defaultdict(list)
    for run in runs:
        by_key[run[2]].append(run)
    await feed(by_key.pop(None, []))
    await asyncio.gather(*(feed(batch) for batch in by_key.values()))
    await durably.close()
    return ids


def wait_until_done(schema: Schema, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = schema.rows("SELECT count(*) FROM durably_runs WHERE status = 'completed'")[0][0]
        if done == count:
            return
        time.sleep(0.2)
    statuses = schema.rows("SELECT status, count(*) FROM durably_runs GROUP BY status")
    errors = schema.rows("SELECT id, error FROM durably_runs WHERE status = 'failed' LIMIT 3")
    raise AssertionError(f"not all {count} runs completed in {timeout}s: {statuses} {errors}")


def key_overlaps(schema: Schema) -> list[tuple[Any, ...]]:
    """Pairs of runs of one key whose executions overlapped in time (first step start
    to last step end, as the steps recorded them)."""
    return schema.rows(
        "WITH spans AS (SELECT run_id, key, min(at) AS first, max(at) AS last FROM history "
        " WHERE key IS NOT NULL GROUP BY run_id, key) "
        "SELECT a.run_id, b.run_id, a.key FROM spans a JOIN spans b "
        "  ON a.key = b.key AND a.run_id < b.run_id "
        " WHERE a.first < b.last AND b.first < a.last"
    )


def test_four_workers_complete_2000_runs_once_and_one_run_per_key_at_a_time(
    schema: Schema, workers: Workers
) -> None:
    rng = random.Random(7)
    runs = []
    for n in range(2000):
        key = f"k{rng.randrange(KEYS)}" if n % 4 == 0 else None  # a quarter with keys
        job = "long" if n % 10 == 0 else "short"
        steps = 3 if job == "long" else 1
        runs.append((job, {"n": n, "steps": steps, "key": key}, key))
    for _ in range(4):
        workers.start("--quiet", concurrency=2)
    started = time.monotonic()
    ids = asyncio.run(trigger_all(schema.url, runs))
    assert len(set(ids)) == 2000
    wait_until_done(schema, 2000, timeout=90)
    elapsed = time.monotonic() - started

    # Every run completed once, with its own output.
    outputs = schema.rows("SELECT output, lease_generation FROM durably_runs")
    assert sorted(int(o[0].split(":")[1].strip(" }")) for o in outputs) == list(range(2000))
    assert {generation for _, generation in outputs} == {1}  # claimed once each
    # No step executed twice.
    assert (
        schema.rows(
            "SELECT run_id, step, count(*) FROM history GROUP BY run_id, step HAVING count(*) > 1"
        )
        == []
    )
    assert schema.rows("SELECT count(DISTINCT run_id) FROM history")[0][0] == 2000
    # Runs of one key never overlapped, and all four workers took part.
    assert key_overlaps(schema) == []
    assert len({pid for (pid,) in schema.rows("SELECT DISTINCT pid FROM history")}) == 4
    print(f"2000 runs on 4 workers in {elapsed:.1f}s")


def test_killed_workers_runs_are_reclaimed_and_complete(schema: Schema, workers: Workers) -> None:
    rng = random.Random(20)
    # Kills land on busy workers, so one run may be hit more than once in a row: this
    # test is about reclaiming, not about failing poison runs (test_stalled_runs.py).
    lease = ("--lease-ms", "3000", "--lease-renew-interval-ms", "250",
             "--polling-interval-ms", "100", "--max-stalled-attempts", "25")  # fmt: skip
    runs = []
    for n in range(240):
        key = f"k{n % 8}" if n % 3 == 0 else None
        runs.append(("long", {"n": n, "steps": 4, "sleep_ms": 25, "key": key}, key))
    for _ in range(4):
        workers.start(*lease, "--quiet", concurrency=2)
    killed: set[int] = set()

    async def produce_and_kill() -> None:
        trigger = asyncio.ensure_future(trigger_all(schema.url, runs))
        for _ in range(20):
            await asyncio.sleep(rng.uniform(0.1, 0.4))
            # A worker that is executing steps (not one still starting up), so that
            # kills land mid-run even when a loaded machine starts processes slowly.
            busy: list[Any] = []
            while not busy:
                active = {pid for (pid,) in schema.rows("SELECT DISTINCT pid FROM history")}
                busy = [p for p in workers.alive() if p.pid in active]
                await asyncio.sleep(0.02)
            victim = rng.choice(sorted(busy, key=lambda p: p.pid))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed.add(victim.pid)
            workers.start(*lease, "--quiet", concurrency=2)
        await trigger

    asyncio.run(produce_and_kill())
    wait_until_done(schema, len(runs), timeout=60)

    # Nothing lost: every run completed with its output.
    outputs = schema.rows("SELECT output FROM durably_runs")
    assert sorted(int(o[0].split(":")[1].strip(" }")) for o in outputs) == list(range(240))
    # Nothing run twice beyond the step in flight: every execution of a step that was
    # executed again was made by a worker that was killed (the step it was in).
    repeated = schema.rows(
        "SELECT run_id, step, array_agg(pid ORDER BY id) FROM history "
        "WHERE step NOT LIKE '%%:end' GROUP BY run_id, step HAVING count(*) > 1"
    )
    for run_id, step, pids in repeated:
        assert set(pids[:-1]) <= killed, (run_id, step, pids, killed)
    # Each killed worker left at most its in-flight steps (2 runs at once) to repeat.
    per_pid = defaultdict(int)
    for _, _, pids in repeated:
        for pid in pids[:-1]:
            per_pid[pid] += 1
    assert all(count <= 2 for count in per_pid.values()), per_pid
    assert repeated, "no kill hit a step in flight: the test did not test reclaiming"
    assert key_overlaps_beyond_kills(schema, killed) == []


def key_overlaps_beyond_kills(schema: Schema, killed: set[int]) -> list[tuple[Any, ...]]:
    """Overlapping runs of one key, ignoring executions by killed workers (whose last
    step may have run on after a reclaim, in a process that was about to die)."""
    return [
        row
        for row in schema.rows(
            "WITH spans AS (SELECT run_id, key, min(at) AS first, max(at) AS last "
            " FROM history WHERE key IS NOT NULL AND NOT (pid = ANY(%s)) GROUP BY run_id, key) "
            "SELECT a.run_id, b.run_id FROM spans a JOIN spans b "
            "  ON a.key = b.key AND a.run_id < b.run_id "
            " WHERE a.first < b.last AND b.first < a.last",
            (list(killed),),
        )
    ]


def test_a_stalled_worker_writes_nothing_after_its_run_was_reclaimed(
    schema: Schema, workers: Workers
) -> None:
    lease = ("--lease-ms", "600", "--lease-renew-interval-ms", "150",
             "--polling-interval-ms", "100")  # fmt: skip
    stale = workers.start(*lease, concurrency=1)
    (run_id,) = asyncio.run(
        trigger_all(schema.url, [("long", {"n": 1, "steps": 8, "sleep_ms": 150}, None)])
    )
    deadline = time.monotonic() + 20
    while not schema.rows("SELECT 1 FROM durably_steps WHERE run_id = %s", (run_id,)):
        assert time.monotonic() < deadline, "the first worker never finished a step"
        time.sleep(0.02)
    stale.send_signal(signal.SIGSTOP)
    stalled_at = schema.rows("SELECT lease_generation FROM durably_runs")[0][0]
    time.sleep(0.8)  # past the lease
    workers.start(*lease, concurrency=1)
    wait_until_done(schema, 1, timeout=30)

    tables = ("durably_runs", "durably_steps", "durably_logs", "durably_run_labels")
    before = {t: schema.rows(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    generation = before["durably_runs"][0]
    assert schema.rows("SELECT lease_generation FROM durably_runs")[0][0] == stalled_at + 1
    stale.send_signal(signal.SIGCONT)
    time.sleep(1.5)  # renewals, the step in flight, its completion: all refused
    after = {t: schema.rows(f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}
    assert after == before, generation
    stale_pid_steps = schema.rows(
        "SELECT count(*) FROM history WHERE pid = %s AND step NOT LIKE '%%:end'", (stale.pid,)
    )[0][0]
    assert stale_pid_steps >= 1  # it did run steps before it stalled
    assert stale.poll() is None, "the stale worker should live on (and find nothing to do)"


def test_sigterm_finishes_short_runs_and_hands_long_ones_back(
    schema: Schema, workers: Workers
) -> None:
    options = ("--shutdown-timeout", "0.5", "--polling-interval-ms", "100")
    first = workers.start(*options, concurrency=2)
    ids = asyncio.run(
        trigger_all(
            schema.url,
            [
                ("short", {"n": 0, "steps": 2, "pause_ms": 100}, None),  # done in 0.2 s
                ("long", {"n": 1, "steps": 50, "pause_ms": 100}, None),  # needs 5 s
            ],
        )
    )
    deadline = time.monotonic() + 20
    while schema.rows("SELECT count(DISTINCT run_id) FROM history")[0][0] < 2:
        assert time.monotonic() < deadline, "the worker never started both runs"
        time.sleep(0.02)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    log = workers.log(first)
    assert f"run {ids[0]} (short) completed" in log
    assert f"run {ids[1]} (long) handed back" in log
    long_run = schema.rows(
        "SELECT status, lease_expires_at <= (extract(epoch FROM now()) * 1000)::bigint "
        "FROM durably_runs WHERE id = %s",
        (ids[1],),
    )
    assert long_run == [("leased", True)]  # claimable at once, not after its lease
    workers.start("--polling-interval-ms", "100", concurrency=1)
    wait_until_done(schema, 2, timeout=30)
