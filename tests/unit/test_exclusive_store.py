"""A store opened `exclusive=True` (the browser's: the sole writer of its database) skips
the fenced read before each step; a cancel from the same process still stops the run
before its next step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import FakeClock

from durably import RunStatus, create_durably, define_job
from durably.store import SqliteStore


async def test_a_step_of_an_exclusive_store_reads_no_lease(tmp_path: Path) -> None:
    statements: list[str] = []

    @define_job(name="two")
    async def job(step: Any, input: Any) -> Any:
        await step.run("a", lambda: 1)
        await step.run("b", lambda: 2)

    store = SqliteStore(str(tmp_path / "x.db"), exclusive=True)
    durably = create_durably(store, [job], clock=FakeClock())
    await durably.migrate()
    try:
        run = await durably.jobs["two"].trigger(None)
        store._conn.set_trace_callback(statements.append)
        await durably.process_one()
        store._conn.set_trace_callback(None)
        done = await durably.get_run(run.id)
        assert done is not None and done.status == RunStatus.COMPLETED
    finally:
        store.close()
    assert not [s for s in statements if s.startswith("SELECT 1 FROM durably_runs WHERE id")]


async def test_a_cancel_stops_a_run_of_an_exclusive_store_before_its_next_step(
    tmp_path: Path,
) -> None:
    ran: list[str] = []

    @define_job(name="two")
    async def job(step: Any, input: Any) -> Any:
        async def first() -> int:
            ran.append("a")
            await durably.cancel(step.run_id)
            return 1

        await step.run("a", first)
        await step.run("b", lambda: ran.append("b"))

    store = SqliteStore(str(tmp_path / "x.db"), exclusive=True)
    durably = create_durably(store, [job], clock=FakeClock())
    await durably.migrate()
    try:
        run = await durably.jobs["two"].trigger(None)
        await durably.process_one()
        cancelled = await durably.get_run(run.id)
        steps = await durably.get_steps(run.id)
    finally:
        store.close()
    assert ran == ["a"]
    assert cancelled is not None and cancelled.status == RunStatus.CANCELLED
    assert steps == []
