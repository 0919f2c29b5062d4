"""The store itself: migrations, runtime settings, and opening databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import Database, sqlite_only

from durably import SqliteStore, create_durably, define_job
from durably.errors import StorageError
from durably.store.sqlite import migrations


@define_job(name="echo")
async def echo(step: Any, input: Any) -> Any:
    return input


async def test_migrate_records_the_schema_version(db: Database) -> None:
    sqlite_only(db, "reads sqlite_master; tests/postgres/test_postgres_store.py checks it there")
    await db.runtime([echo])
    versions = db.rows("SELECT version FROM durably_schema_versions")
    assert versions == [(v,) for v, _ in migrations()]
    assert versions[0] == (1,)
    tables = {
        name
        for (name,) in db.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        if name.startswith("durably_")
    }
    assert tables == {
        "durably_schema_versions",
        "durably_runs",
        "durably_steps",
        "durably_logs",
        "durably_run_labels",
        "durably_idempotency_keys",
        "durably_events",
    }


async def test_migrating_twice_is_a_no_op(db: Database) -> None:
    sqlite_only(db, "reads sqlite_master; tests/postgres/test_postgres_store.py checks it there")
    durably = await db.runtime([echo])
    run = await durably.jobs["echo"].trigger(1, labels={"k": "v"})
    schema = db.rows("SELECT type, name, sql FROM sqlite_master ORDER BY name")
    versions = db.rows("SELECT * FROM durably_schema_versions")

    await durably.migrate()
    again = await db.runtime([echo])  # a second runtime on the same database migrates too

    assert db.rows("SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema
    assert db.rows("SELECT * FROM durably_schema_versions") == versions
    kept = await again.get_run(run.id)
    assert kept is not None and kept.labels == {"k": "v"}


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    numbers = [v for v, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_file_database_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "x.db"))
    try:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_store_rejects_bad_options_and_unopenable_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(":memory:", synchronous="SOMETIMES")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="cannot open database"):
        SqliteStore(str(tmp_path / "missing-dir" / "x.db"))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("polling_interval_ms", 0),
        ("lease_ms", -1),
        ("lease_renew_interval_ms", 1.5),
        ("max_concurrent_runs", True),
        ("max_stalled_attempts", 0),
    ],
)
def test_create_durably_rejects_bad_settings(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{option} must be a positive integer"):
        create_durably(":memory:", **{option: value})


def test_lease_renewal_must_be_shorter_than_the_lease() -> None:
    with pytest.raises(ValueError, match="lease_renew_interval_ms must be shorter"):
        create_durably(":memory:", lease_ms=1_000, lease_renew_interval_ms=1_000)
