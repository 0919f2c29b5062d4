"""The SQLite connection every part of `SqliteStore` writes through: opening, pragmas and
transactions. One connection in autocommit mode; a multi-statement write runs inside
`BEGIN IMMEDIATE`, which takes the write lock up front (never a deadlocking upgrade
from a read lock) and makes SQLite's single writer the store's unit of atomicity.
Storage failures surface as StorageError; constraint violations pass through."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from ...errors import StorageError

Synchronous = Literal["FULL", "NORMAL", "OFF"]


class SqliteDatabase:
    """One open SQLite connection and the ways the store uses it (options: `SqliteStore`)."""

    def __init__(
        self,
        path: str = ":memory:",
        *,
        synchronous: Synchronous = "FULL",
        exclusive: bool = False,
        busy_timeout_ms: int = 5_000,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "OFF"):
            raise ValueError(f"synchronous must be FULL, NORMAL or OFF, not {synchronous!r}")
        self.path = path
        self._synchronous = synchronous
        #: The connection holds the file's lock for its lifetime: no other connection or
        #: process writes this database, so nothing but this store changes a lease.
        self.exclusive = exclusive
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, cached_statements=256)
            self._conn.row_factory = sqlite3.Row
            if exclusive:
                # Must precede every other statement, or a WAL database wants a -shm file.
                self._conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._conn.execute("PRAGMA temp_store = MEMORY")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path!r}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: all statements inside commit together or not at all."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot start a write on {self.path!r}: {exc}") from exc
        try:
            yield conn
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # A statement that failed for storage reasons (e.g. SQLITE_FULL: "database or
            # disk is full") surfaces as StorageError, as it does at BEGIN and COMMIT.
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                raise StorageError(f"database error on {self.path!r}: {exc}") from exc
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"cannot commit to {self.path!r}: {exc}") from exc

    def _execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StorageError(f"database error on {self.path!r}: {exc}") from exc

    def _write_one(self, sql: str, params: Sequence[Any]) -> bool:
        """A single-statement write (atomic on its own); True if it changed a row."""
        return self._execute(sql, params).rowcount > 0

    def _write_unflushed(self, sql: str, params: Sequence[Any]) -> bool:
        """`_write_one` for advisory records (log lines, progress): committed at once, but
        under synchronous=FULL not synced on its own (see `_unflushed`)."""
        with self._unflushed():
            return self._write_one(sql, params)

    @contextmanager
    def _unflushed(self) -> Iterator[None]:
        """Commits made inside are not synced on their own under synchronous=FULL. In WAL
        mode the next FULL commit syncs the log file, and with it every frame written
        before, so an advisory record is as durable as the run's next step. This saves
        a sync per log line."""
        if self._synchronous != "FULL":
            yield
            return
        self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")
