"""Test harness for the unit suite: a fake clock, the store backends every shared
scenario runs against, one test database, and small helpers (event recorder,
waiting on a condition, driving one execution).

A new backend is one more entry in `STORES`. Time that matters (leases,
retention, ordering) comes from `FakeClock`, which tests advance explicitly.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pg_server
import pytest

from durably import Durably, SqliteStore, Store, create_durably
from durably.execution import Outcome

#: 2023-11-14T22:13:20Z: a fixed, readable start for every fake clock.
EPOCH_MS = 1_700_000_000_000


class FakeClock:
    """Epoch milliseconds that only move when a test advances them."""

    def __init__(self, start_ms: int = EPOCH_MS) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> int:
        self.ms += ms
        return self.ms


# -- store backends -------------------------------------------------------------------


class StoreOpener:
    """Opens stores on one test database; every call reaches the same data."""

    def open(self) -> Store:
        raise NotImplementedError

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query run directly on the test database, bypassing the store."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteOpener(StoreOpener):
    """A SQLite test database, also readable through a plain sqlite3 connection."""

    def raw(self) -> sqlite3.Connection:
        """A plain sqlite3 connection to the same data, for checking tables directly."""
        raise NotImplementedError

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.raw().execute(sql, params).fetchall()]


class FileOpener(SqliteOpener):
    """A WAL database file; each `open()` is its own connection, as another process has.

    Stores use ``synchronous=NORMAL``: commits are equally visible and atomic, only
    not fsynced one by one, which keeps the suite fast on slow disks. (The crash test
    runs the default, FULL.)"""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self._raw: sqlite3.Connection | None = None

    def open(self) -> Store:
        return SqliteStore(self.path, synchronous="NORMAL")

    def raw(self) -> sqlite3.Connection:
        if self._raw is None:
            self._raw = sqlite3.connect(self.path, isolation_level=None)
        return self._raw

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()


class MemoryOpener(SqliteOpener):
    """One ":memory:" connection, so every runtime of the test shares one store."""

    def __init__(self) -> None:
        self._store = SqliteStore(":memory:")

    def open(self) -> Store:
        return self._store

    def raw(self) -> sqlite3.Connection:
        return self._store._conn


class PostgresOpener(StoreOpener):
    """A schema of its own in the session's PostgreSQL test database (see pg_server);
    each `open()` is its own connection pool, as another process has."""

    def __init__(self) -> None:
        self.url = pg_server.database().url
        self.schema = pg_server.database().new_schema()
        self._conn: Any = None

    def open(self) -> Store:
        from durably.store.postgres import PostgresStore

        return PostgresStore(self.url, schema=self.schema)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        # Scenarios write qmark parameters; SQLite's rowid (insertion order) is `seq` here.
        import psycopg

        if self._conn is None:
            self._conn = psycopg.connect(
                self.url, autocommit=True, options=f"-c search_path={self.schema}"
            )
        sql = sql.replace("?", "%s").replace("rowid", "seq")
        return [tuple(r) for r in self._conn.execute(sql, params).fetchall()]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


@dataclass(frozen=True)
class StoreBackend:
    """One store the shared scenarios run against: `id` names it in test ids, `opener`
    makes a fresh test database in the test's temporary directory."""

    id: str
    opener: Callable[[Path], StoreOpener]


#: Every store the shared scenario suite runs against: each test that takes the `db`
#: fixture runs once per entry. A new store is one more entry here.
STORES: list[StoreBackend] = [
    StoreBackend("sqlite-file", lambda tmp: FileOpener(tmp / "durably.db")),
    StoreBackend("sqlite-memory", lambda tmp: MemoryOpener()),
    # The session's server and database come from pg_server (provisioned on first use).
    StoreBackend("postgres", lambda tmp: PostgresOpener()),
]


@dataclass
class Database:
    """One test's database: open runtimes on it, read its tables directly."""

    kind: str
    opener: StoreOpener
    clock: FakeClock
    runtimes: list[Durably] = field(default_factory=list)

    async def runtime(self, jobs: Iterable[Any] = (), **options: Any) -> Durably:
        """A migrated runtime on this database using the test's clock (worker not started)."""
        options.setdefault("clock", self.clock)
        durably = create_durably(self.opener.open(), list(jobs), **options)
        await durably.migrate()
        self.runtimes.append(durably)
        return durably

    def raw(self) -> sqlite3.Connection:
        """The plain sqlite3 connection of a SQLite database (SQLite-only scenarios)."""
        assert isinstance(self.opener, SqliteOpener), f"{self.kind} is not a SQLite store"
        return self.opener.raw()

    def count(self, table: str, where: str = "TRUE", params: Iterable[Any] = ()) -> int:
        sql = f"SELECT count(*) FROM {table} WHERE {where}"
        return int(self.opener.rows(sql, tuple(params))[0][0])

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self.opener.rows(sql, tuple(params))


def sqlite_only(db: Database, why: str) -> None:
    """Skip a scenario that looks inside SQLite itself when it runs on another store."""
    if not isinstance(db.opener, SqliteOpener):
        pytest.skip(f"SQLite only: {why}")


# -- helpers --------------------------------------------------------------------------


class Recorder:
    """Every event a runtime emits, in order."""

    def __init__(self, durably: Durably) -> None:
        #: Event subclasses, typed loosely so tests can read their own fields.
        self.events: list[Any] = []
        self.unsubscribe = durably.on("*", self.events.append)

    def types(self, run_id: str | None = None) -> list[str]:
        return [e.type for e in self.events if run_id is None or e.run_id == run_id]

    def of(self, event_type: str) -> list[Any]:
        return [e for e in self.events if e.type == event_type]


def record(durably: Durably) -> Recorder:
    return Recorder(durably)


async def until(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 3.0, what: str = ""
) -> None:
    """Wait (yielding to the loop) until `predicate` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.001)


async def claim_and_execute(durably: Durably) -> Outcome | None:
    """Claim one run and execute it, returning the execution's outcome (None: nothing)."""
    execution = durably._scheduler.claim_next()
    if execution is None:
        return None
    return await durably._scheduler.execute(execution)


def count_polls(durably: Durably) -> Callable[[], int]:
    """Count the runtime's claim attempts (one per worker cycle with a free slot);
    returns a function that reads the count."""
    calls = [0]
    claim = durably.store.claim_next

    def counting(*args: Any) -> Any:
        calls[0] += 1
        return claim(*args)

    durably.store.claim_next = counting  # type: ignore[method-assign,assignment]
    return lambda: calls[0]


async def idle_cycles(polls: Callable[[], int], cycles: int = 5) -> None:
    """Wait until the worker has gone round its loop `cycles` more times."""
    target = polls() + cycles
    await until(lambda: polls() >= target, what=f"{cycles} worker cycles")


async def assert_idle_loop_writes_nothing(db: Database, durably: Durably) -> None:
    """Start `durably`'s worker and check that ten idle cycles only read the SQLite
    database: no statement but SELECTs, no change of ours (total_changes), none seen by
    another connection (data_version)."""
    polls = count_polls(durably)
    durably.start()
    await idle_cycles(polls, 1)
    conn = durably.store._conn  # type: ignore[attr-defined]
    # data_version moves when another connection commits; total_changes counts our own.
    version = db.raw().execute("PRAGMA data_version").fetchone()[0]
    changes = conn.total_changes
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        await idle_cycles(polls, 10)
    finally:
        conn.set_trace_callback(None)
    assert len(statements) >= 10
    writes = [s for s in statements if not s.lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert conn.total_changes == changes
    assert db.raw().execute("PRAGMA data_version").fetchone()[0] == version


class Crash(BaseException):
    """Abandons an execution mid-run as a killed process would: nothing catches it."""
