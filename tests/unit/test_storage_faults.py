"""A full disk (SQLITE_FULL) mid-run: the run fails with a clear StorageError, earlier
data stays intact, nothing is left leased for good, and runs complete once space is
back. `PRAGMA max_page_count` makes SQLite report a real "database or disk is full"."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from harness import FakeClock, claim_and_execute, record

from durably import RunStatus, SqliteStore, create_durably, define_job
from durably.errors import StorageError

LEASE_MS = 10_000


@define_job(name="fill")
async def fill(step: Any, input: Any) -> Any:
    for i in range(input["chunks"]):
        await step.run(f"chunk-{i}", lambda i=i: f"{i:08d}" * 4096)  # 32 KiB each
    return {"chunks": input["chunks"]}


def limit_pages(store: SqliteStore, extra: int | None) -> None:
    """Let the database grow by `extra` pages at most (None: no limit)."""
    conn = store._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra if extra is not None else 2**31}")


def integrity(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


async def test_full_disk_fails_the_run_clearly_and_keeps_earlier_data(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = SqliteStore(str(tmp_path / "full.db"), synchronous="NORMAL")
    durably = create_durably(store, [fill], clock=clock, lease_ms=LEASE_MS, preserve_steps=True)
    await durably.migrate()
    events = record(durably)
    earlier = await durably.jobs["fill"].trigger({"chunks": 2})
    assert await claim_and_execute(durably) == "completed"

    limit_pages(store, 40)  # ~160 KiB: a few chunks fit, 50 do not
    run = await durably.jobs["fill"].trigger({"chunks": 50})
    assert await claim_and_execute(durably) == "failed"
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == RunStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith("StorageError: ") and "database or disk is full" in failed.error
    assert 0 < failed.completed_step_count < 50
    assert events.types(run.id)[-1] == "run:fail"
    kept = await durably.get_run(earlier.id)
    assert kept is not None and kept.status == RunStatus.COMPLETED and kept.output == {"chunks": 2}

    limit_pages(store, None)  # space is back
    again = await durably.jobs["fill"].trigger({"chunks": 3})
    assert await claim_and_execute(durably) == "completed"
    done = await durably.get_run(again.id)
    assert done is not None and done.status == RunStatus.COMPLETED
    store.close()
    assert integrity(tmp_path / "full.db") == ["ok"]


async def test_a_failure_that_cannot_be_recorded_leaves_the_run_reclaimable(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = SqliteStore(str(tmp_path / "full.db"), synchronous="NORMAL")
    durably = create_durably(store, [fill], clock=clock, lease_ms=LEASE_MS, preserve_steps=True)
    await durably.migrate()
    events = record(durably)
    run = await durably.jobs["fill"].trigger({"chunks": 3})

    def full(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("cannot commit to 'full.db': database or disk is full")

    # Every write fails from the first step on: not even the failure can be stored.
    originals = {name: getattr(store, name) for name in ("persist_step", "append_logs", "fail_run")}
    for name in originals:
        setattr(store, name, full)
    with pytest.raises(StorageError, match="database or disk is full"):
        await claim_and_execute(durably)  # the worker loop reports this as worker:error
    stuck = await durably.get_run(run.id)
    assert stuck is not None and stuck.status == RunStatus.LEASED
    assert not events.of("run:fail")

    for name, method in originals.items():
        setattr(store, name, method)
    assert durably._scheduler.claim_next() is None  # the lease still runs...
    clock.advance(LEASE_MS)  # ...until it expires: then the run is claimed again
    assert await claim_and_execute(durably) == "completed"
    done = await durably.get_run(run.id)
    assert done is not None and done.status == RunStatus.COMPLETED and done.lease_generation == 2
    store.close()


async def test_a_failure_whose_traceback_does_not_fit_is_still_recorded(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = SqliteStore(str(tmp_path / "full.db"), synchronous="NORMAL")
    durably = create_durably(store, [fill], clock=clock, lease_ms=LEASE_MS)
    await durably.migrate()
    run = await durably.jobs["fill"].trigger({"chunks": 1})

    def full(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("cannot commit to 'full.db': database or disk is full")

    store.persist_step = full  # type: ignore[method-assign]
    store.append_logs = full  # type: ignore[method-assign]
    assert await claim_and_execute(durably) == "failed"
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == RunStatus.FAILED
    assert failed.error == "StorageError: cannot commit to 'full.db': database or disk is full"
    store.close()
