"""Export and import of the whole database: a consistent copy taken while a run makes
progress, imported into a fresh runtime with every run and step; files that are not
intact durably databases of this or an older schema are refused and change nothing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from test_bridge import Page, ask

from durably import Durably, Step, create_durably, define_job
from durably.browser.bridge import Bridge
from durably.errors import StorageError, ValidationError
from durably.store import SqliteStore, Store
from durably.store.sqlite import migrations


class Steps(BaseModel):
    steps: int


class Gate:
    """Released by the test to let `gated` take its next step (one event per test loop)."""

    event: asyncio.Event

    def reset(self) -> None:
        self.event = asyncio.Event()

    def set(self) -> None:
        self.event.set()


gate = Gate()


@define_job(name="gated", input=Steps)
async def gated(step: Step, input: Steps) -> dict[str, int]:
    for i in range(input.steps):
        if i >= 2:  # two steps at once, then one per opening of the gate
            await gate.event.wait()
            gate.event.clear()
        await step.run(f"step-{i}", lambda i=i: {"i": i})
        step.progress(i + 1, input.steps)
    return {"done": input.steps}


@define_job(name="quick", input=Steps)
async def quick(step: Step, input: Steps) -> int:
    for i in range(input.steps):
        await step.run(f"q-{i}", lambda i=i: i * 10)
    return input.steps


JOBS = [gated, quick]


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[Durably]:
    """A runtime with three finished runs and one `gated` run stopped after two steps."""
    gate.reset()
    durably = create_durably(str(tmp_path / "source.sqlite3"), JOBS, polling_interval_ms=10)
    await durably.init()
    for n in (1, 2, 3):
        await durably.jobs["quick"].trigger_and_wait({"steps": n}, timeout=5)
    run = await durably.jobs["gated"].trigger({"steps": 5})

    async def two_steps_done() -> bool:
        return len(await durably.get_steps(run.id)) == 2

    await until(two_steps_done)
    yield durably
    gate.set()
    await durably.close(1)


async def release_until_finished(durably: Durably, run_id: str) -> Any:
    """Open the gate until the run finishes (other runtimes in the test share the gate)."""

    async def finished() -> bool:
        gate.set()
        run = await durably.get_run(run_id)
        return run is not None and run.status.is_terminal

    await until(finished)
    return await durably.get_run(run_id)


async def snapshot(durably: Durably) -> dict[str, Any]:
    """Every run and step, as the runtime reports them."""
    runs = await durably.get_runs()
    return {
        run.id: {
            "job": run.job_name,
            "status": str(run.status),
            "input": run.input,
            "output": run.output,
            "steps": [(s.name, s.status, s.output) for s in await durably.get_steps(run.id)],
        }
        for run in runs
    }


async def test_export_while_a_run_progresses_is_a_consistent_database(
    source: Durably, tmp_path: Path
) -> None:
    [leased] = await source.get_runs(status="leased")
    target = tmp_path / "backup.sqlite3"
    await source.export_database(str(target))
    gate.set()  # the run goes on after the export

    with closing(sqlite3.connect(target)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("SELECT count(*) FROM durably_runs").fetchone() == (4,)
        steps = copy.execute(
            "SELECT name FROM durably_steps WHERE run_id = ? ORDER BY name", (leased.id,)
        ).fetchall()
        assert steps == [("step-0",), ("step-1",)]
        status = copy.execute(
            "SELECT status FROM durably_runs WHERE id = ?", (leased.id,)
        ).fetchone()
        assert status == ("leased",)
    assert not Path(f"{target}-wal").exists()


async def test_an_export_imports_into_a_fresh_runtime_with_every_run_and_step(
    source: Durably, tmp_path: Path
) -> None:
    backup = str(tmp_path / "backup.sqlite3")
    await source.export_database(backup)
    before = await snapshot(source)
    [leased] = await source.get_runs(status="leased")

    fresh = create_durably(str(tmp_path / "fresh.sqlite3"), JOBS, polling_interval_ms=10)
    await fresh.init()
    await fresh.jobs["quick"].trigger_and_wait({"steps": 1}, timeout=5)  # replaced by the import
    try:
        assert await fresh.import_database(backup) == 1  # the leased run, reclaimed
        assert await snapshot(fresh) == before
        # It resumes here after its two stored steps and finishes.
        run = await release_until_finished(fresh, leased.id)
        assert run.output == {"done": 5}
        steps = await fresh.get_steps(leased.id)
        assert [s.name for s in steps] == [f"step-{i}" for i in range(5)]
    finally:
        await fresh.close(1)


async def test_import_stops_the_runs_in_flight_and_replaces_them(
    source: Durably, tmp_path: Path
) -> None:
    empty = create_durably(str(tmp_path / "empty.sqlite3"), JOBS)
    await empty.migrate()
    await empty.export_database(str(tmp_path / "empty-backup.sqlite3"))
    empty.store.close()
    [leased] = await source.get_runs(status="leased")

    assert await source.import_database(str(tmp_path / "empty-backup.sqlite3")) == 0
    assert await source.get_runs() == []
    gate.set()
    await asyncio.sleep(0.1)  # the stopped run wrote nothing into the new database
    assert await source.get_run(leased.id) is None
    assert await source.get_steps(leased.id) == []
    # The scheduler runs again.
    assert (await source.jobs["quick"].trigger_and_wait({"steps": 2}, timeout=5)).output == 2


def newer_schema(path: Path, source: Path) -> None:
    path.write_bytes(source.read_bytes())
    with closing(sqlite3.connect(path)) as conn:
        newest = migrations()[-1].version
        conn.execute("INSERT INTO durably_schema_versions VALUES (?, 'x')", (newest + 1,))
        conn.commit()


def not_durably(path: Path, source: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('hello')")
        conn.commit()


def truncated(path: Path, source: Path) -> None:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def truncated_mid_page(path: Path, source: Path) -> None:
    path.write_bytes(source.read_bytes()[:5000])


def not_sqlite(path: Path, source: Path) -> None:
    path.write_bytes(b'{"runs": []}' * 100)


def damaged(path: Path, source: Path) -> None:
    data = bytearray(source.read_bytes())
    data[4096 + 8 : 4096 + 200] = b"\xff" * 192  # the second page's b-tree header and cells
    path.write_bytes(bytes(data))


def empty(path: Path, source: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    "make",
    [truncated, truncated_mid_page, not_sqlite, newer_schema, not_durably, damaged, empty],
)
async def test_a_bad_file_is_refused_and_the_database_still_works_unchanged(
    source: Durably, tmp_path: Path, make: Any
) -> None:
    backup = tmp_path / "backup.sqlite3"
    await source.export_database(str(backup))
    bad = tmp_path / "bad.sqlite3"
    make(bad, backup)
    before = await snapshot(source)

    with pytest.raises(ValidationError) as refused:
        await source.import_database(str(bad))
    assert "nothing was changed" in str(refused.value)
    assert refused.value.fields == ["file"]
    if make is newer_schema:
        assert "schema version" in str(refused.value)

    assert await snapshot(source) == before
    # The run in flight was not disturbed: it goes on and finishes.
    [leased] = await source.get_runs(status="leased")
    assert (await release_until_finished(source, leased.id)).output == {"done": 5}
    assert (await source.jobs["quick"].trigger_and_wait({"steps": 1}, timeout=5)).output == 1


async def test_a_missing_file_is_refused(source: Durably, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="nothing was changed"):
        await source.import_database(str(tmp_path / "nowhere.sqlite3"))


async def test_a_database_of_another_page_size_imports(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("PRAGMA page_size = 1024")
        conn.execute("VACUUM")
    store = SqliteStore(str(other))
    store.migrate()
    store.close()
    durably = create_durably(str(tmp_path / "live.sqlite3"), JOBS)
    await durably.migrate()
    await durably.jobs["quick"].trigger({"steps": 1})
    try:
        await durably.import_database(str(other))
        assert await durably.get_runs() == []
    finally:
        await durably.close()


async def test_database_bytes_counts_the_file_and_its_log(source: Durably, tmp_path: Path) -> None:
    path = Path(source.store.path)  # type: ignore[attr-defined]
    on_disk = path.stat().st_size + Path(f"{path}-wal").stat().st_size
    assert source.database_bytes() == on_disk > 4096


async def test_a_store_without_file_copies_refuses_naming_its_tool(tmp_path: Path) -> None:
    class ServerStore(SqliteStore):
        backup_tool = "pg_dump"

        export_database = Store.export_database
        import_database = Store.import_database

    store = ServerStore(str(tmp_path / "x.sqlite3"))
    with pytest.raises(StorageError, match="pg_dump"):
        store.export_database(str(tmp_path / "out"))
    with pytest.raises(StorageError, match="pg_dump"):
        store.import_database(str(tmp_path / "out"))
    store.close()


async def test_the_bridge_exports_and_imports_through_temporary_files(
    source: Durably, tmp_path: Path
) -> None:
    page = Page()
    bridge = Bridge(source, page.post)
    exported = await ask(bridge, page, {"id": 1, "type": "exportDatabase"})
    assert exported["ok"], exported
    file = Path(exported["result"]["file"])
    assert exported["result"]["bytes"] == file.stat().st_size > 0
    size = await ask(bridge, page, {"id": 2, "type": "getDatabaseSize"})
    assert size["result"]["databaseBytes"] == source.database_bytes()

    not_sqlite(tmp_path / "bad", file)
    refused = await ask(
        bridge, page, {"id": 3, "type": "importDatabase", "file": str(tmp_path / "bad")}
    )
    assert refused["error"]["name"] == "ValidationError"
    assert refused["error"]["fields"] == ["file"]

    # The worker's round trip: bytes out of the export, into a new file for the import.
    data = bridge.read_temporary_file(str(file))
    assert data.startswith(b"SQLite format 3\x00") and not file.exists()
    copy = bridge.write_temporary_file(data)
    answer = json.loads(
        await bridge.call(json.dumps({"id": 4, "type": "importDatabase", "file": copy}))
    )
    assert answer == {"id": 4, "ok": True, "result": {"runs": 4, "reclaimedRuns": 1}}
    assert 4 not in page.responses()  # call() returns the response instead of posting it
    bridge.remove_temporary_file(copy)
    assert not Path(copy).exists()
