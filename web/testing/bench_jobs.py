"""Jobs for the benchmarks (bench/): plain steps, the anchor and chatty steps, a
progress burst, and a probe that reports on the runtime it runs in (heap sizes, SQL
trace, database size, seeding)."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import time
import uuid
from typing import Any

from pydantic import BaseModel, Field

from durably import Step, define_job


class StepsInput(BaseModel):
    steps: int = Field(default=1, ge=0, le=10_000)


@define_job(name="bench-steps", input=StepsInput)
async def bench_steps(step: Step, input: StepsInput) -> int:
    for i in range(input.steps):
        await step.run(f"s{i}", lambda i=i: i)
    return input.steps


@define_job(name="anchor", input=StepsInput)
async def anchor(step: Step, input: StepsInput) -> int:
    """The cheapest durable step: a tiny output, nothing else (the step-commit anchor)."""
    for i in range(input.steps):
        await step.run(f"s-{i}", lambda i=i: {"i": i})
    return input.steps


@define_job(name="chatty", input=StepsInput)
async def chatty(step: Step, input: StepsInput) -> int:
    """A step as a real job writes it: one log line and a progress report inside the
    step function, around a tiny output (no sleep)."""
    for i in range(input.steps):

        def work(i: int = i) -> dict[str, int]:
            step.log.info(f"step {i}")
            step.progress(i + 1, input.steps)
            return {"i": i}

        await step.run(f"s-{i}", work)
    return input.steps


class ProgressInput(BaseModel):
    count: int = Field(ge=1, le=1_000_000)


@define_job(name="bench-progress", input=ProgressInput)
async def bench_progress(step: Step, input: ProgressInput) -> int:
    for i in range(input.count):
        step.progress(i + 1, input.count)
    return input.count


class ProbeInput(BaseModel):
    action: str
    terminal: int = 10_000
    pending: int = 1_000


_trace: list[str] = []
_WRITES = ("INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "REPLACE")


def _connection(step: Step) -> sqlite3.Connection:
    conn: sqlite3.Connection = step._execution.store._conn  # type: ignore[attr-defined]
    return conn


def _heap() -> dict[str, Any]:
    gc.collect()
    result: dict[str, Any] = {"pythonObjects": len(gc.get_objects())}
    try:
        import pyodide_js  # type: ignore[import-not-found]

        result["wasmHeapBytes"] = pyodide_js._module.HEAP8.length
    except ImportError:
        pass
    return result


def _seed(conn: sqlite3.Connection, terminal: int, pending: int) -> int:
    now = int(time.time() * 1000)
    statuses = ["completed"] * 8 + ["failed", "cancelled"]
    runs, labels, steps, logs = [], [], [], []
    for i in range(terminal + pending):
        run_id = uuid.uuid4().hex
        created = now - 1_000_000 + i
        if i < terminal:
            status = statuses[i % len(statuses)]
            output = '{"completed":3}' if status == "completed" else None
            error = "ValueError: boom" if status == "failed" else None
            runs.append((run_id, "countdown", '{"steps":3,"step_ms":0}', status, 3, 3,
                         output, error, created, created + 5, created, created + 5))  # fmt: skip
            steps.append((run_id, "step-0", 0, "completed", created, created + 1))
            logs.append((run_id, "step-0", "info", "executing step-0", created))
        else:
            # A job no worker knows, so these stay pending.
            runs.append((run_id, "seeded", "{}", "pending", 0, 0, None, None,
                         None, None, created, created))  # fmt: skip
        labels.append((run_id, "user", f"user-{i % 20}"))
        labels.append((run_id, "tenant", f"tenant-{i % 5}"))
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO durably_runs (id, job_name, input, status, current_step_index, "
        "completed_step_count, output, error, started_at, completed_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        runs,
    )
    conn.executemany("INSERT INTO durably_run_labels VALUES (?, ?, ?)", labels)
    conn.executemany(
        "INSERT INTO durably_steps (run_id, name, step_index, status, started_at, completed_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        steps,
    )
    conn.executemany(
        "INSERT INTO durably_logs (run_id, step_name, level, message, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        logs,
    )
    conn.execute("COMMIT")
    return len(runs)


def _size(conn: sqlite3.Connection) -> dict[str, Any]:
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    runs = conn.execute("SELECT count(*) FROM durably_runs").fetchone()[0]
    wal = path + "-wal"
    return {
        "runs": runs,
        "databaseBytes": pages * page_size,
        "walBytes": os.stat(wal).st_size if os.path.exists(wal) else 0,
        "bytesPerRun": pages * page_size / max(runs, 1),
    }


def _claim_poll(step: Step, reps: int = 50) -> dict[str, Any]:
    """The mean ms of an idle claim poll: `claim_next` for jobs with nothing to claim
    (the seeded pending runs belong to a job no worker knows). Timed over `reps` polls
    together: the browser's clock is too coarse for one fast poll."""
    store = step._execution.store  # type: ignore[attr-defined]
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for _ in range(reps):
        claim = store.claim_next("bench-idle", now, 1, ["countdown"])
        assert claim is None, "the idle poll claimed a run"
    return {"ms": (time.perf_counter() - started) * 1000 / reps}


@define_job(name="bench-probe", input=ProbeInput)
async def bench_probe(step: Step, input: ProbeInput) -> Any:
    conn = _connection(step)
    if input.action == "heap":
        return _heap()
    if input.action == "trace-start":
        _trace.clear()
        conn.set_trace_callback(_trace.append)
        return True
    if input.action == "trace-read":
        conn.set_trace_callback(None)
        window = list(_trace)
        kinds: dict[str, int] = {}
        for sql in window:
            kind = " ".join(sql.split()[:3])
            kinds[kind] = kinds.get(kind, 0) + 1
        writes = sum(1 for sql in window if sql.lstrip().upper().startswith(_WRITES))
        return {"count": len(window), "writes": writes, "kinds": kinds}
    if input.action == "seed":
        started = time.perf_counter()
        seeded = _seed(conn, input.terminal, input.pending)
        return {"seeded": seeded, "ms": (time.perf_counter() - started) * 1000}
    if input.action == "claim-poll":
        return _claim_poll(step)
    if input.action == "size":
        return _size(conn)
    if input.action == "checkpoint":
        return list(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    raise ValueError(f"unknown probe action {input.action!r}: {json.dumps(input.action)}")
