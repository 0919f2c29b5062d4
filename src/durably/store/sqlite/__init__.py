"""The store on Python's built-in `sqlite3`: a file, ":memory:", or a file in OPFS.

`SqliteStore` is composed of one part per concern of the `Store` interface, all writing
through one connection (`database.py`); SQL shared with other stores lives one level up
(`rows.py`, `sql.py`, `migrations.py`). Every write made for a lease holder carries the
lease guard: a stale holder (reclaimed run) or a cancelled run changes nothing.
"""

from __future__ import annotations

from ..base import Store
from .backup import SqliteBackup
from .database import Synchronous
from .leases import SqliteLeases
from .operations import SqliteRunOperations
from .runs import SqliteRuns
from .schema import SqliteSchema, migrations
from .steps import SqliteSteps
from .waits import SqliteWaits

__all__ = ["SqliteStore", "Synchronous", "migrations"]


class SqliteStore(
    SqliteSchema,
    SqliteRuns,
    SqliteLeases,
    SqliteSteps,
    SqliteWaits,
    SqliteRunOperations,
    SqliteBackup,
    Store,
):
    """Store runs in a SQLite database.

    `exclusive=True` sets ``locking_mode=EXCLUSIVE`` before anything else touches the
    file: the browser owner uses it (it holds the Web Lock, and WAL then needs no
    shared memory). As the database's only writer, the store then skips the lease read
    before each step (`start_step`); the step's commit is fenced as always.
    `synchronous` trades durability for speed: FULL survives an OS crash, NORMAL
    survives a process or tab crash.
    """
