"""Migrating a SQLite database: this release's migrations (`migrations/NNNN_name.sql`)
applied in one write transaction. Invariant kept: a failure part way, or a schema newer
than this release knows, leaves the database exactly as it was."""

from __future__ import annotations

import sqlite3

from ..migrations import (
    VERSIONS_TABLE,
    Migration,
    load_migrations,
    migration_failed,
    pending_migrations,
    split_statements,
)
from .database import SqliteDatabase


def migrations() -> list[Migration]:
    """This release's SQLite migrations, in order."""
    return load_migrations(str(__package__))


class SqliteSchema(SqliteDatabase):
    def migrate(self) -> None:
        """Bring the schema up to this release's newest migration.

        All pending migrations commit as one transaction: a failure part way (a bad
        statement, a full disk) leaves the database exactly as the previous release
        wrote it, so that release can still open it. A database whose schema is newer
        than this release knows is refused before anything is written to it.
        """
        shipped = migrations()
        with self._transaction() as conn:
            has_versions = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' "
                "AND name = 'durably_schema_versions'"
            ).fetchone()
            applied: set[int] = set()
            if has_versions:
                applied = {
                    row[0] for row in conn.execute("SELECT version FROM durably_schema_versions")
                }
            # Raises inside the transaction, which rolls back having written nothing.
            pending = pending_migrations(shipped, applied, self.path)
            conn.execute(VERSIONS_TABLE)
            for migration in pending:
                try:
                    for statement in split_statements(migration.sql):
                        conn.execute(statement)
                    if "writable_schema" in migration.sql:
                        _reload_edited_schema(conn)
                except sqlite3.Error as exc:
                    raise migration_failed(migration, self.path, applied, exc) from exc
                conn.execute(
                    "INSERT INTO durably_schema_versions VALUES (?, datetime('now'))",
                    (migration.version,),
                )


def _reload_edited_schema(conn: sqlite3.Connection) -> None:
    """End a migration that edited table definitions under ``writable_schema`` (a widened
    CHECK), as SQLite documents it: bump schema_version so every connection re-reads
    the schema, turn writable_schema off, and check the result, all in the migration's
    transaction."""
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute(f"PRAGMA schema_version = {int(version) + 1}")
    conn.execute("PRAGMA writable_schema = OFF")
    problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError(f"schema check failed: {'; '.join(problems[:3])}")
