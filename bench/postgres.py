"""PostgreSQL next to SQLite on the same machine: runs/s with 1, 2 and 4 real worker
processes (``python -m durably worker``) on one database, one-step and ten-step runs,
the same workloads on one SQLite process, and claim latency with 1 and 4 concurrent
claimers (runs without keys, and runs each with its own concurrency key, which take the
advisory-lock path). The server is found or provisioned as for the tests
(tests/unit/pg_server.py); every figure comes from one fresh schema."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from durably import PostgresStore, create_durably
from durably.models import RunStatus
from durably.store import NewRun, RunQuery, SqliteStore

from . import worker_jobs
from .pages import REPO, Sizes

sys.path.insert(0, str(REPO / "tests" / "unit"))
import pg_server

WORKER_COUNTS = (1, 2, 4)
RUNS_PER_WORKER_SLOT = 4  # --concurrency of each worker process


def _schema_url(base: str) -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    # Durable commits, as SQLite's synchronous=FULL next to it (the test database
    # turns them off for speed).
    options = f"-c search_path={name} -c synchronous_commit=on"
    return pg_server.with_options(base, options), name


def _fresh(base: str) -> str:
    url, name = _schema_url(base)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    store = PostgresStore(url)
    store.migrate()
    store.close()
    return url


def _wait_done(store: PostgresStore, ids: list[str], procs: list[Any]) -> None:
    while True:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a benchmark worker process exited")
        statuses = store.get_statuses(ids)
        if all(s == "completed" for s in statuses.values()):
            return
        time.sleep(0.01)


async def _trigger(url: str, count: int, steps: int) -> list[str]:
    durably = create_durably(url, [worker_jobs.bench_steps])
    runs = [await durably.jobs["bench-steps"].trigger({"steps": steps}) for _ in range(count)]
    durably.store.close()
    return [r.id for r in runs]


def _throughput(base: str, workers: int, count: int, steps: int) -> float:
    url = _fresh(base)
    command = [sys.executable, "-m", "durably", "worker", "--database", url,
               "--jobs", "bench.worker_jobs", "--concurrency", str(RUNS_PER_WORKER_SLOT),
               "--quiet"]  # fmt: skip
    procs = [subprocess.Popen(command, cwd=REPO) for _ in range(workers)]
    try:
        time.sleep(1.5)  # imported, migrated, listening
        started = time.perf_counter()
        ids = asyncio.run(_trigger(url, count, steps))
        store = PostgresStore(url)
        _wait_done(store, ids, procs)
        elapsed = time.perf_counter() - started
        store.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
    return round(count / elapsed, 1)


async def _sqlite_throughput(directory: Path, count: int, steps: int) -> float:
    store = SqliteStore(str(directory / f"tp-{steps}.db"))
    durably = create_durably(
        store, [worker_jobs.bench_steps], max_concurrent_runs=RUNS_PER_WORKER_SLOT
    )
    await durably.init()
    started = time.perf_counter()
    runs = [await durably.jobs["bench-steps"].trigger({"steps": steps}) for _ in range(count)]
    await asyncio.gather(*(durably.wait_for_run(r.id) for r in runs))
    elapsed = time.perf_counter() - started
    await durably.close()
    return round(count / elapsed, 1)


def _claimer(url: str, claims: int, results: Any) -> None:
    store = PostgresStore(url)
    samples = []
    now = int(time.time() * 1000)
    for _ in range(claims):
        started = time.perf_counter()
        claim = store.claim_next(f"bench-{os.getpid()}", now, 60_000, ["bench-steps"])
        samples.append((time.perf_counter() - started) * 1e6)
        if claim is None:
            if not store.count_runs(RunQuery(statuses=[RunStatus.PENDING])):
                break
            continue  # lost every candidate to the other claimers: a worker would retry
        store.complete_run(claim.lease, "null", now, False)
    store.close()
    results.put(samples)


def _claim_latency(base: str, claimers: int, runs: int, keyed: bool) -> dict[str, Any]:
    url = _fresh(base)
    store = PostgresStore(url)
    now = int(time.time() * 1000)
    for i in range(runs):
        store.create_run(
            NewRun(
                uuid.uuid4().hex, "bench-steps", '{"steps": 1}',
                concurrency_key=f"key-{i}" if keyed else None,
            ),
            now,
        )  # fmt: skip
    store.close()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    procs = [
        context.Process(target=_claimer, args=(url, runs // claimers, results))
        for _ in range(claimers)
    ]
    for p in procs:
        p.start()
    samples = sorted(s for _ in procs for s in results.get())
    for p in procs:
        p.join()
    return {
        "claims": len(samples),
        "p50Us": round(samples[len(samples) // 2]),
        "p99Us": round(samples[int(len(samples) * 0.99)]),
    }


def _round_trip_us(url: str) -> float:
    import psycopg

    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for _ in range(500):
            conn.execute("SELECT 1")
        return round((time.perf_counter() - started) / 500 * 1e6)


def _loop_block(url: str) -> dict[str, Any]:
    """How long one store call holds the caller (and so the event loop), by call."""
    store = PostgresStore(url)
    durably = create_durably(store, [worker_jobs.bench_steps])
    asyncio.run(durably.migrate())
    now = int(time.time() * 1000)
    timings: dict[str, list[float]] = {"createRun": [], "claimNext": [], "persistStep": [],
                                       "completeRun": [], "claimNextIdle": []}  # fmt: skip

    def timed(name: str, fn: Any) -> Any:
        started = time.perf_counter()
        value = fn()
        timings[name].append((time.perf_counter() - started) * 1e6)
        return value

    for _ in range(200):
        new = NewRun(uuid.uuid4().hex, "bench-steps", "{}")
        timed("createRun", lambda new=new: store.create_run(new, now))
        claim = timed("claimNext", lambda: store.claim_next("b", now, 60_000, ["bench-steps"]))
        timed("persistStep", lambda c=claim: store.persist_step(c.lease, "s", 0, "1", now, now))
        timed("completeRun", lambda c=claim: store.complete_run(c.lease, "null", now, False))
        timed("claimNextIdle", lambda: store.claim_next("b", now, 60_000, ["bench-steps"]))
    store.close()
    return {k: round(sorted(v)[len(v) // 2]) for k, v in timings.items()}


def run_postgres(sizes: Sizes, log: Any) -> dict[str, Any]:
    database = pg_server.database()
    try:
        base = database.url
        out: dict[str, Any] = {
            "server": database.source,
            "roundTripUs": _round_trip_us(base),
            "cores": os.cpu_count(),
        }
        log("PostgreSQL: event-loop block per store call")
        out["blockPerCallUs"] = _loop_block(_fresh(base))
        throughput: dict[str, Any] = {}
        for name, count, steps in (
            ("oneStep", sizes.one_step_runs * 2, 1),
            ("tenStep", sizes.ten_step_runs * 2, 10),
        ):
            row = {}
            for workers in WORKER_COUNTS:
                log(f"PostgreSQL: {name} on {workers} worker processes")
                row[f"workers{workers}"] = _throughput(base, workers, count, steps)
            with tempfile.TemporaryDirectory(prefix="durably-bench-") as d:
                row["sqliteOneProcess"] = asyncio.run(_sqlite_throughput(Path(d), count, steps))
            throughput[name] = {"runs": count, "runsPerS": row}
        out["throughput"] = throughput
        claims = max(100, sizes.one_step_runs * 2)
        log("PostgreSQL: claim latency under contention")
        out["claimLatency"] = {
            f"{kind}{n}Claimers": _claim_latency(base, n, claims, keyed)
            for kind, keyed in (("unkeyed", False), ("keyed", True))
            for n in (1, 4)
        }
        return out
    finally:
        pg_server.shutdown()
