"""Schema versions, for every SQL store: migrations are numbered `.sql` files in a
`migrations/` folder next to each dialect's store, recorded in `durably_schema_versions`
once applied. Invariant kept: a database whose schema is newer than this release knows
is refused before anything is written to it."""

from __future__ import annotations

from importlib import resources
from typing import NamedTuple

from ..errors import SchemaVersionError, StorageError

#: Applied versions, one row each. Portable DDL: every dialect creates it the same way.
VERSIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS durably_schema_versions "
    "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
)


class Migration(NamedTuple):
    version: int
    sql: str


def load_migrations(package: str) -> list[Migration]:
    """Numbered migrations shipped in `<package>/migrations/NNNN_name.sql`, in order."""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append(Migration(int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)


def pending_migrations(
    migrations: list[Migration], applied: set[int], database: str
) -> list[Migration]:
    """The migrations `applied` lacks, in order. Raises SchemaVersionError when the
    database (named `database` in the message) is newer than every known migration:
    call it before writing anything, inside the transaction that would apply them."""
    found = max(applied, default=0)
    newest_known = migrations[-1].version if migrations else 0
    if found > newest_known:
        raise SchemaVersionError(
            f"database {database!r} has schema version {found}, newer than this "
            f"runtime's {newest_known}; open it with a newer release of durably "
            "(nothing was changed)"
        )
    return [m for m in migrations if m.version not in applied]


def migration_failed(
    migration: Migration, database: str, applied: set[int], cause: Exception
) -> StorageError:
    """The error for a migration that failed; its transaction left the database as it was."""
    return StorageError(
        f"migration {migration.version:04d} failed on {database!r}: {cause}; the database "
        f"was left at schema version {max(applied, default=0)}"
    )


def split_statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations have no ';' inside literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
