"""Jobs the worker-process tests run (`python -m durably worker --jobs pg_jobs`).

Every step records its execution in the `history` table of the test schema (run, step,
concurrency key, worker pid, wall-clock time), so the tests can check from outside what
ran where and when: steps executed twice, runs of one key overlapping in time.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psycopg

from durably import Step, define_job

_conn: psycopg.Connection[Any] | None = None


def record(run_id: str, step: str, key: str | None) -> None:
    """Append to `history`; across a server restart, reconnect and retry for a while."""
    global _conn
    for attempt in range(50):
        try:
            if _conn is None or _conn.closed:
                _conn = psycopg.connect(os.environ["DURABLY_TEST_URL"], autocommit=True)
            _conn.execute(
                "INSERT INTO history (run_id, step, key, pid, at) "
                "VALUES (%s, %s, %s, %s, clock_timestamp())",
                (run_id, step, key, os.getpid()),
            )
            return
        except psycopg.OperationalError:
            if _conn is not None:
                _conn.close()
            if attempt == 49:
                raise
            time.sleep(0.2)


async def _steps(step: Step, input: dict[str, Any]) -> dict[str, Any]:
    key = input.get("key")
    for i in range(int(input["steps"])):
        name = f"s{i}"

        def body(name: str = name) -> int:
            record(step.run_id, name, key)
            if input.get("sleep_ms"):
                time.sleep(input["sleep_ms"] / 1000)  # blocks: a worker stays busy
            record(step.run_id, name + ":end", key)
            return 1

        await step.run(name, body)
        if input.get("pause_ms"):
            await asyncio.sleep(input["pause_ms"] / 1000)  # yields: other runs go on
    return {"n": input["n"]}


@define_job(name="short")
async def short(step: Step, input: dict[str, Any]) -> dict[str, Any]:
    return await _steps(step, input)


@define_job(name="long")
async def long(step: Step, input: dict[str, Any]) -> dict[str, Any]:
    return await _steps(step, input)
