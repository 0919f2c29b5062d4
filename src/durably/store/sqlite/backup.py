"""Exporting and importing a whole SQLite database: the user's data leaving and entering.

An export is SQLite's online backup of the live connection, taken in one step, so it is
one consistent snapshot even while runs keep writing. An import is checked completely in
memory first (header, length, `integrity_check`, a durably schema no newer than ours);
only then is it copied INTO the live connection by the backup API, which SQLite applies
as one write transaction: the database is either wholly the old one or wholly the new one.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import closing, suppress
from pathlib import Path

from ...errors import StorageError, ValidationError
from .database import SqliteDatabase
from .schema import migrations

#: Every SQLite database file starts with these 16 bytes.
SQLITE_HEADER = b"SQLite format 3\x00"
#: The header is 100 bytes; no database file is shorter than its first page (>= 512).
MIN_FILE_BYTES = 512
#: Tables every durably database has, whatever its schema version.
DURABLY_TABLES = ("durably_schema_versions", "durably_runs")


def _refuse(path: str, reason: str) -> ValidationError:
    return ValidationError(f"cannot import {path!r}: {reason}; nothing was changed", ["file"])


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from None


def _check_header(path: str, data: bytes) -> bytes:
    """The file's bytes, checked against the header's own figures and marked as a
    rollback-journal database (an in-memory copy cannot be in WAL mode)."""
    if len(data) < MIN_FILE_BYTES or not data.startswith(SQLITE_HEADER):
        raise _refuse(path, "it is not a SQLite database (no SQLite header)")
    page_size = int.from_bytes(data[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1) or data[18] not in (1, 2):
        raise _refuse(path, "its SQLite header is damaged")
    if data[19] not in (1, 2):
        raise _refuse(path, "its SQLite header is damaged")
    # The page count at offset 28 is valid when the change counter (24) matches the
    # "version valid for" number (92): then a shorter file was cut off.
    pages = int.from_bytes(data[28:32], "big")
    if data[24:28] == data[92:96] and pages and len(data) < pages * page_size:
        raise _refuse(
            path, f"it is truncated ({len(data)} bytes of a {pages * page_size}-byte database)"
        )
    if len(data) % page_size:
        raise _refuse(path, "it is truncated (not a whole number of pages)")
    return data[:18] + b"\x01\x01" + data[20:]


def load_database_file(path: str) -> sqlite3.Connection:
    """An in-memory copy of the durably database at `path`, checked from header to
    schema; ValidationError says why a file is refused. The file is only read."""
    data = _check_header(path, _read_file(path))
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.deserialize(data)
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
        if problems != ["ok"]:
            raise _refuse(path, f"SQLite finds it damaged: {'; '.join(problems)}")
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not set(DURABLY_TABLES) <= tables:
            raise _refuse(path, "it is a SQLite database but not a durably database")
        found = conn.execute("SELECT max(version) FROM durably_schema_versions").fetchone()[0]
        newest = migrations()[-1].version
        if not isinstance(found, int) or found > newest:
            raise _refuse(
                path,
                f"its schema version is {found}, newer than this runtime's {newest} "
                "(import it with a newer release of durably)",
            )
        if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise _refuse(path, "its rows break the schema's foreign keys")
    except sqlite3.Error as exc:
        conn.close()
        raise _refuse(path, f"SQLite cannot read it: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _with_page_size(incoming: sqlite3.Connection, page_size: int) -> sqlite3.Connection:
    """`incoming` rewritten with `page_size`: a WAL database cannot change its page size,
    and neither can an in-memory one, so the copy adopts ours through a temporary file
    (in rollback mode, where VACUUM can change it). The file is gone when this returns."""
    with tempfile.TemporaryDirectory(prefix="durably-import-") as folder:
        resized = sqlite3.connect(os.path.join(folder, "resized.sqlite3"), isolation_level=None)
        try:
            incoming.backup(resized, pages=-1)
            resized.execute(f"PRAGMA page_size = {int(page_size)}")
            resized.execute("VACUUM")
            memory = sqlite3.connect(":memory:", isolation_level=None)
            memory.deserialize(resized.serialize())
        finally:
            resized.close()
            incoming.close()
    return memory


class SqliteBackup(SqliteDatabase):
    def export_database(self, path: str) -> None:
        """Write a consistent copy of the database to `path` (a new file, replaced if it
        exists), as a single self-contained file in rollback-journal mode."""
        Path(path).unlink(missing_ok=True)
        try:
            with closing(sqlite3.connect(path, isolation_level=None)) as copy:
                # Exclusive: the copy arrives marked as WAL (the live database is), and
                # WAL without shared memory needs exclusive locking until we switch it off.
                copy.execute("PRAGMA locking_mode = EXCLUSIVE")
                # pages=-1: the whole database in one step, under one read transaction.
                self._conn.backup(copy, pages=-1)
                copy.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.Error as exc:
            Path(path).unlink(missing_ok=True)
            raise StorageError(f"cannot export {self.path!r} to {path!r}: {exc}") from exc

    def validate_import(self, path: str) -> None:
        """Raise ValidationError unless `path` holds a durably database this store can import."""
        load_database_file(path).close()

    def import_database(self, path: str) -> None:
        """Replace the whole database with the one at `path`, or raise ValidationError
        and change nothing. The caller migrates it afterwards and must have stopped
        every lease holder first (their runs are replaced under them)."""
        incoming = load_database_file(path)
        live_page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        if incoming.execute("PRAGMA page_size").fetchone()[0] != live_page_size:
            incoming = _with_page_size(incoming, live_page_size)
        with closing(incoming):
            try:
                # One write transaction on the live database: all pages or none.
                incoming.backup(self._conn, pages=-1)
            except sqlite3.Error as exc:
                raise StorageError(f"cannot import {path!r} into {self.path!r}: {exc}") from exc

    def database_bytes(self) -> int:
        """The bytes the database occupies: its file plus its write-ahead log."""
        if self.path == ":memory:" or self.path.startswith("file:"):
            row = self._conn.execute("PRAGMA page_count").fetchone()[0]
            return int(row) * int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        total = 0
        for name in (self.path, f"{self.path}-wal", f"{self.path}-journal"):
            with suppress(FileNotFoundError):
                total += os.stat(name).st_size
        return total
