"""The same workloads under CPython on a file database, for reference: a step commit
next to a raw 4 KiB os.write + os.fsync on the same disk, throughput, idle cost and
scale."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from durably import create_durably
from durably.store import SqliteStore

from .pages import REPO, Sizes, ratio


def _load(relative: str, name: str) -> ModuleType:
    """Import one of the browser's job modules by path: the very same jobs run here."""
    spec = importlib.util.spec_from_file_location(name, REPO / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEMO_JOBS = _load("web/demo/jobs.py", "durably_bench_demo_jobs")
BENCH_JOBS = _load("web/testing/bench_jobs.py", "durably_bench_jobs")


def raw_write_fsync_us(directory: Path, count: int) -> float:
    path = directory / "raw.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    block = b"\x07" * 4096
    try:
        for i in range(10):
            os.pwrite(fd, block, i * 4096)
        os.fsync(fd)
        started = time.perf_counter()
        for i in range(count):
            os.pwrite(fd, block, (i % 256) * 4096)
            os.fsync(fd)
        return (time.perf_counter() - started) * 1e6 / count
    finally:
        os.close(fd)
        path.unlink()


async def _runtime(path: Path, synchronous: str, concurrency: int = 1) -> Any:
    store = SqliteStore(str(path), synchronous=synchronous)  # type: ignore[arg-type]
    durably = create_durably(
        store,
        [BENCH_JOBS.bench_steps, BENCH_JOBS.anchor, BENCH_JOBS.chatty, DEMO_JOBS.countdown],
        max_concurrent_runs=concurrency,
        polling_interval_ms=1000,
    )
    await durably.init()
    return durably


async def _step_commit(
    directory: Path, synchronous: str, sizes: Sizes, job: str = "countdown"
) -> float:
    """µs per step of one `job` run (the median of `countdown_reps` runs)."""
    durably = await _runtime(directory / f"steps-{synchronous}-{job}.db", synchronous)
    steps = sizes.countdown_steps
    run_input: dict[str, Any] = {"steps": steps}
    if job == "countdown":
        run_input["step_ms"] = 0
    try:
        samples = []
        for _ in range(sizes.countdown_reps):
            started = time.perf_counter()
            await durably.jobs[job].trigger_and_wait(run_input)
            samples.append((time.perf_counter() - started) * 1e6 / steps)
        return sorted(samples)[len(samples) // 2]
    finally:
        await durably.close()


async def _sequential_runs(directory: Path, sizes: Sizes) -> dict[str, Any]:
    """One-step runs triggered one after another, each awaited."""
    durably = await _runtime(directory / "sequential.db", "FULL")
    try:
        job = durably.jobs["bench-steps"]
        started = time.perf_counter()
        for _ in range(sizes.one_step_runs):
            await job.trigger_and_wait({"steps": 1})
        rate = sizes.one_step_runs / (time.perf_counter() - started)
    finally:
        await durably.close()
    return {"runs": sizes.one_step_runs, "runsPerS": round(rate, 1)}


async def _throughput(directory: Path, concurrency: int, sizes: Sizes) -> dict[str, Any]:
    durably = await _runtime(directory / f"tp-{concurrency}.db", "FULL", concurrency)
    out: dict[str, Any] = {}
    try:
        for name, count, steps in (
            ("oneStep", sizes.one_step_runs, 1),
            ("tenStep", sizes.ten_step_runs, 10),
        ):
            job = durably.jobs["bench-steps"]
            started = time.perf_counter()
            runs = await asyncio.gather(*(job.trigger({"steps": steps}) for _ in range(count)))
            await asyncio.gather(*(durably.wait_for_run(r.id) for r in runs))
            out[name] = {
                "runs": count,
                "runsPerS": round(count / (time.perf_counter() - started), 1),
            }
        if concurrency == 1:
            job = durably.jobs["bench-steps"]
            started = time.perf_counter()
            await asyncio.gather(
                *(job.trigger_and_wait({"steps": 1}) for _ in range(sizes.wait_runs))
            )
            rate = sizes.wait_runs / (time.perf_counter() - started)
            out["triggerAndWait"] = {"runs": sizes.wait_runs, "runsPerS": round(rate, 1)}
    finally:
        await durably.close()
    return out


async def _idle(directory: Path, sizes: Sizes) -> dict[str, Any]:
    durably = await _runtime(directory / "idle.db", "FULL")
    statements: list[str] = []
    try:
        await asyncio.sleep(0.2)
        durably.store._conn.set_trace_callback(statements.append)
        await asyncio.sleep(sizes.idle_seconds)
        durably.store._conn.set_trace_callback(None)
    finally:
        await durably.close()
    writes = [
        s
        for s in statements
        if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "BEGIN"))
    ]
    return {"statementsPerS": len(statements) / sizes.idle_seconds, "writeStatements": len(writes)}


async def _idle_claim_poll(directory: Path, sizes: Sizes) -> dict[str, Any]:
    """An idle claim poll (`claim_next`, and one scheduler poll) with `claim_pending`
    pending runs of a job no worker knows."""
    durably = await _runtime(directory / "claim.db", "FULL")
    try:
        BENCH_JOBS._seed(durably.store._conn, 0, sizes.claim_pending)
        job_names = list(durably.jobs)

        def median_ms(poll: Any) -> float:
            samples = []
            for _ in range(21):
                started = time.perf_counter()
                assert poll() is None, "the idle poll claimed a run"
                samples.append((time.perf_counter() - started) * 1000)
            return round(sorted(samples)[10], 3)

        claim_ms = median_ms(
            lambda: durably.store.claim_next("bench", int(time.time() * 1000), 1, job_names)
        )
        poll_ms = median_ms(durably._scheduler.claim_next)
    finally:
        await durably.close()
    return {"pendingOfOtherJob": sizes.claim_pending, "claimNextMs": claim_ms, "pollMs": poll_ms}


async def _scale(directory: Path, sizes: Sizes) -> dict[str, Any]:
    durably = await _runtime(directory / "scale.db", "FULL")
    conn: sqlite3.Connection = durably.store._conn
    try:
        BENCH_JOBS._seed(conn, sizes.scale_terminal, sizes.scale_pending)
        size = BENCH_JOBS._size(conn)

        async def timed(coro_fn: Any) -> float:
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                await coro_fn()
                samples.append((time.perf_counter() - started) * 1000)
            return round(sorted(samples)[2], 2)

        queries = {
            "getRunsByLabelAndStatus": await timed(
                lambda: durably.get_runs(status="completed", labels={"user": "user-3"}, limit=50)
            ),
            "countByLabelAndStatus": await timed(
                lambda: durably.count_runs(status="completed", labels={"tenant": "tenant-2"})
            ),
            "countAll": await timed(lambda: durably.count_runs()),
        }
        started = time.perf_counter()
        purged = await durably.purge_runs(datetime.now(UTC) + timedelta(seconds=1), 100_000)
        purge_s = time.perf_counter() - started
    finally:
        await durably.close()
    return {
        "storedRuns": size["runs"],
        "bytesPerRun": round(size["bytesPerRun"]),
        "queriesMs": queries,
        "purge": {"runs": purged, "runsPerS": round(purged / purge_s)},
    }


async def _run(sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="durably-bench-", dir=os.environ.get("TMPDIR")) as d:
        directory = Path(d)
        raw = raw_write_fsync_us(directory, sizes.raw_writes)
        full = await _step_commit(directory, "FULL", sizes)
        normal = await _step_commit(directory, "NORMAL", sizes)
        anchor = await _step_commit(directory, "FULL", sizes, "anchor")
        chatty = await _step_commit(directory, "FULL", sizes, "chatty")
        results: dict[str, Any] = {
            "stepCommit": {
                "FULL": {
                    "usPerStep": round(full),
                    "rawWriteFsyncUs": round(raw),
                    "ratio": ratio(full, raw),
                },
                "NORMAL": {"usPerStep": round(normal), "ratio": ratio(normal, raw)},
                "fullOverNormal": ratio(full, normal),
                "anchor": {"usPerStep": round(anchor), "ratio": ratio(anchor, raw)},
                "chatty": {"usPerStep": round(chatty), "ratio": ratio(chatty, raw)},
            },
            "throughput": {
                "maxConcurrentRuns1": await _throughput(directory, 1, sizes),
                "maxConcurrentRuns4": await _throughput(directory, 4, sizes),
                "triggerAndWaitSequential": await _sequential_runs(directory, sizes),
            },
            "idle": await _idle(directory, sizes),
            "idleClaimPoll": await _idle_claim_poll(directory, sizes),
            "scale": await _scale(directory, sizes),
            "filesystem": str(directory),
        }
    return results


def run_cpython(sizes: Sizes) -> dict[str, Any]:
    return asyncio.run(_run(sizes))
