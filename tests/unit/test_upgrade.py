"""Upgrades: databases written by earlier releases open with the current code.

Every fixture in tests/fixtures/databases (written by tests/fixtures/make_fixture.py on
the release named in its JSON sidecar) is copied, opened and migrated: every run, step,
log and label the sidecar lists is still there with the same values, and the runs that
were pending or interrupted mid-run finish under the current code without running a
stored step again. A database from a newer release is refused untouched, and a migration
that fails part way leaves the database as it was.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from durably import Durably, create_durably
from durably.errors import SchemaVersionError, StorageError
from durably.models import RunStatus
from durably.store import sqlite as sqlite_store
from durably.store.migrations import Migration
from durably.store.sqlite import schema as sqlite_schema

REPO = Path(__file__).resolve().parents[2]
FIXTURES = sorted((REPO / "tests" / "fixtures" / "databases").glob("*.sqlite3"))
UNFINISHED = ("pending", "leased")


def load_jobs() -> ModuleType:
    path = REPO / "web" / "testing" / "upgrade_jobs.py"
    spec = importlib.util.spec_from_file_location("upgrade_jobs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


JOBS = load_jobs()
NEWEST_KNOWN = sqlite_schema.migrations()[-1][0]


class Fixture:
    """A private copy of one fixture database and its sidecar."""

    def __init__(self, source: Path, tmp_path: Path) -> None:
        self.path = tmp_path / source.name
        shutil.copyfile(source, self.path)
        self.sidecar: dict[str, Any] = json.loads(source.with_suffix(".json").read_text())
        self.runs: list[dict[str, Any]] = self.sidecar["runs"]

    def open(self, **options: Any) -> Durably:
        return create_durably(str(self.path), [JOBS.import_items], **options)

    def raw(self) -> closing[sqlite3.Connection]:
        return closing(sqlite3.connect(self.path, isolation_level=None))


@pytest.fixture(params=FIXTURES, ids=[p.stem for p in FIXTURES])
def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Fixture:
    return Fixture(request.param, tmp_path)


def test_there_is_a_fixture_of_the_current_schema() -> None:
    assert f"schema-{NEWEST_KNOWN}.sqlite3" in [p.name for p in FIXTURES], (
        "run tests/fixtures/make_fixture.py and commit its files"
    )


def schema_of(conn: sqlite3.Connection) -> list[tuple[str, str, str | None]]:
    return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def versions_of(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    return conn.execute("SELECT version, applied_at FROM durably_schema_versions").fetchall()


def assert_same(actual: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    """Every field the fixture recorded has the same value (later fields may be added)."""
    differences = {k: (actual.get(k), v) for k, v in expected.items() if actual.get(k) != v}
    assert not differences, f"{what}: (now, in the fixture) {differences}"


def executions(logs: list[dict[str, Any]]) -> list[str]:
    """Items whose step function ran, in order, from the job's "executing <item>" logs."""
    return [log["message"].removeprefix("executing ") for log in logs
            if log["message"].startswith("executing ")]  # fmt: skip


async def test_every_run_step_log_and_label_survives(fixture: Fixture) -> None:
    runtime = fixture.open()
    try:
        await runtime.migrate()
        for recorded in fixture.runs:
            run_id = recorded["run"]["id"]
            run = await runtime.get_run(run_id)
            assert run is not None, f"run {run_id} ({recorded['scenario']}) is gone"
            assert_same(run.to_dict(), recorded["run"], f"run {recorded['scenario']}")
            steps = [s.to_dict() for s in await runtime.get_steps(run_id)]
            logs = [entry.to_dict() for entry in await runtime.get_logs(run_id)]
            assert len(steps) == len(recorded["steps"]) and len(logs) == len(recorded["logs"])
            for now, then in zip(steps, recorded["steps"], strict=True):
                assert_same(now, then, f"step {then['name']} of {recorded['scenario']}")
            for now, then in zip(logs, recorded["logs"], strict=True):
                assert_same(now, then, f"log {then['id']} of {recorded['scenario']}")
        assert await runtime.count_runs() == len(fixture.runs)
        # Labels still filter (their table and index came through).
        recorded_labels = {r["run"]["id"]: r["run"]["labels"] for r in fixture.runs}
        pairs = {pair for labels in recorded_labels.values() for pair in labels.items()}
        for key, value in pairs:
            found = {run.id for run in await runtime.get_runs(labels={key: value})}
            expected = {i for i, labels in recorded_labels.items() if labels.get(key) == value}
            assert found == expected, (key, value)
    finally:
        await runtime.close()


async def test_pending_and_interrupted_runs_finish_without_rerunning_stored_steps(
    fixture: Fixture,
) -> None:
    runtime = fixture.open(preserve_steps=True)
    try:
        await runtime.migrate()
        # Runs whose lease has run out are claimed like pending ones; a live lease is
        # left alone (its holder may still be at work) ...
        await runtime.process_until_idle()
        now = runtime.now().isoformat()
        for recorded in fixture.runs:
            run = recorded["run"]
            live = run["status"] == "leased" and run["lease_expires_at"] > now
            current = await runtime.get_run(run["id"])
            assert current is not None
            if live:
                assert current.status == RunStatus.LEASED, recorded["scenario"]
            elif run["status"] in UNFINISHED:
                assert current.status == RunStatus.COMPLETED, recorded["scenario"]
        # ... until a sole owner (the browser tab holding the Web Lock) reclaims it.
        runtime.reclaim_leases()
        await runtime.process_until_idle()

        for recorded in fixture.runs:
            run, scenario = recorded["run"], recorded["scenario"]
            current = await runtime.get_run(run["id"])
            assert current is not None
            if run["status"] not in UNFINISHED:
                assert current.status == run["status"], scenario
                continue
            items = run["input"]["items"]
            assert current.status == RunStatus.COMPLETED, (scenario, current.error)
            assert current.output == {
                "imported": [{"item": item, "length": len(item)} for item in items]
            }
            logs = [entry.to_dict() for entry in await runtime.get_logs(run["id"])]
            for now_log, then in zip(logs, recorded["logs"], strict=False):
                assert_same(now_log, then, f"log {then['id']} of {scenario}")
            # Each step function ran exactly once over both releases.
            assert sorted(executions(logs)) == sorted(items), scenario
            steps = {s.name: s.to_dict() for s in await runtime.get_steps(run["id"])}
            assert list(steps) == [f"import-{item}" for item in items]
            for then in recorded["steps"]:
                assert_same(steps[then["name"]], then, f"step {then['name']} of {scenario}")
        assert await runtime.count_runs(status=list(UNFINISHED)) == 0
    finally:
        await runtime.close()


async def test_migrations_are_recorded_once_and_a_second_open_applies_nothing(
    fixture: Fixture,
) -> None:
    runtime = fixture.open()
    await runtime.migrate()
    await runtime.close()
    with fixture.raw() as conn:
        versions, schema = versions_of(conn), schema_of(conn)
    assert [v for v, _ in versions] == list(range(1, NEWEST_KNOWN + 1))
    # The versions the old release applied keep their original record.
    assert [v for v, _ in versions[: len(fixture.sidecar["migrations"])]] == (
        fixture.sidecar["migrations"]
    )

    again = fixture.open()
    store = again.store
    assert isinstance(store, sqlite_store.SqliteStore)
    changes = store._conn.total_changes
    await again.migrate()
    assert store._conn.total_changes == changes
    await again.close()
    with fixture.raw() as conn:
        assert versions_of(conn) == versions and schema_of(conn) == schema


def newer_database(path: Path, version: int) -> bytes:
    """A database as a later release would leave it: this schema plus a newer version
    recorded, closed cleanly (WAL folded in). Returns its bytes."""
    store = sqlite_store.SqliteStore(str(path))
    store.migrate()
    store._conn.execute(
        "INSERT INTO durably_schema_versions VALUES (?, datetime('now'))", (version,)
    )
    store.close()
    assert not Path(f"{path}-wal").exists()
    return path.read_bytes()


async def test_a_database_from_a_newer_release_is_refused_and_left_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "newer.sqlite3"
    newer = NEWEST_KNOWN + 3
    before = newer_database(path, newer)
    runtime = create_durably(str(path), [JOBS.import_items])
    with pytest.raises(SchemaVersionError) as raised:
        await runtime.migrate()
    await runtime.close()
    assert isinstance(raised.value, StorageError)
    assert str(raised.value) == (
        f"database {str(path)!r} has schema version {newer}, newer than this runtime's "
        f"{NEWEST_KNOWN}; open it with a newer release of durably (nothing was changed)"
    )
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-journal").exists()


async def test_a_migration_that_fails_part_way_leaves_the_database_as_it_was(
    fixture: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fixture.raw() as conn:
        schema, versions = schema_of(conn), versions_of(conn)
    shipped = sqlite_schema.migrations()
    good = Migration(
        NEWEST_KNOWN + 1,
        "CREATE TABLE durably_extra (x INTEGER);\n"
        "ALTER TABLE durably_runs ADD COLUMN extra TEXT;\n"
        "UPDATE durably_runs SET extra = 'x';",
    )
    bad = Migration(
        NEWEST_KNOWN + 2,
        "CREATE TABLE durably_more (y INTEGER);\nINSERT INTO durably_no_such_table VALUES (1);",
    )
    monkeypatch.setattr(sqlite_schema, "migrations", lambda: [*shipped, good, bad])

    runtime = fixture.open()
    with pytest.raises(StorageError, match=f"migration {bad[0]:04d} failed.*no such table"):
        await runtime.migrate()
    # Still usable read-only as before; nothing of either new migration (nor of the
    # shipped ones the fixture lacked) is in the file.
    assert await runtime.count_runs() == len(fixture.runs)
    await runtime.close()
    with fixture.raw() as conn:
        assert schema_of(conn) == schema and versions_of(conn) == versions
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # Without the failing migration the upgrade goes through.
    monkeypatch.setattr(sqlite_schema, "migrations", lambda: [*shipped, good])
    runtime = fixture.open()
    await runtime.migrate()
    await runtime.close()
    with fixture.raw() as conn:
        applied = [v for v, _ in versions_of(conn)]
        assert applied == [*range(1, NEWEST_KNOWN + 1), good[0]]
        assert conn.execute("SELECT count(*) FROM durably_runs WHERE extra = 'x'").fetchone()[0]
