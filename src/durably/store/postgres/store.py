"""The store on PostgreSQL (psycopg 3): one database shared by many worker processes.

Connections come from a small pool in autocommit mode. This module holds the lifecycle,
creating and reading runs, leases and operations on whole runs; the claim lives in
`claim.py`, the lease holder's fenced writes in `steps.py`, waiting runs in `waits.py`,
the shared plumbing in `connection.py`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ...errors import ConflictError, NotFoundError, StorageError
from ...models import Disposition, Run, RunStatus
from ..base import Claim, Lease, NewRun, RunQuery, Store
from ..migrations import VERSIONS_TABLE, load_migrations, migration_failed, pending_migrations
from ..rows import run_from_row
from ..sql import run_filters
from .claim import claim_row
from .connection import LEASE_GUARD, guard
from .listener import Listener
from .steps import PostgresSteps
from .waits import PostgresWaits

# A run row with its labels as one JSON object: reads cost one round trip.
_RUN_COLUMNS = (
    "r.*, (SELECT json_object_agg(l.key, l.value) FROM durably_run_labels l "
    "WHERE l.run_id = r.id) AS labels"
)

# Serializes migrations of one schema across processes that start at once.
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('durably.migrate.' || current_schema()))"


def migrations() -> list[tuple[int, str]]:
    """Numbered PostgreSQL migrations shipped in `migrations/NNNN_name.sql`, in order."""
    return [(m.version, m.sql) for m in load_migrations(__package__)]


class PostgresStore(PostgresSteps, PostgresWaits, Store):
    """Store runs in a PostgreSQL database, shared by any number of worker processes.

    `dsn` is a libpq URL or conninfo string. `schema` puts the tables in that schema
    (created if missing) instead of the connection's default. `pool_size` bounds the
    connections of this store (calls are synchronous, so one is busy at a time; the
    spare serves a reconnect while a broken one is replaced). `timeout` (seconds) bounds
    how long a call waits for a connection: while the server is unreachable, calls fail
    with StorageError after it instead of hanging. The LISTEN connection that `watch`
    uses is separate and reconnects on its own.
    """

    #: Export and import copy one SQLite file; a server database is backed up with its own tools.
    backup_tool = "pg_dump and pg_restore"

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        pool_size: int = 2,
        timeout: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self._timeout = timeout
        self._channel = f"durably_wake.{schema}" if schema else "durably_wake"
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": max(1, round(timeout)),
        }
        if schema:
            # Added to the URL's own options (e.g. ``?options=-c%20statement_timeout=5s``).
            given = psycopg.conninfo.conninfo_to_dict(dsn).get("options") or ""
            self._kwargs["options"] = f"{given} -c search_path={schema}".strip()
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=self._kwargs,
            timeout=timeout,
            reconnect_timeout=timeout,
            num_workers=1,
            open=False,
            name="durably",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StorageError(f"cannot connect to {self._where()}: {exc}") from exc
        self._listener: Listener | None = None
        self._listener_guard = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema up to this release's newest migration, in one transaction
        under an advisory lock: processes starting together apply each migration once,
        the others wait and then find it applied. A newer schema is refused unchanged."""
        known = load_migrations(__package__)
        with self._connection() as conn, conn.transaction():
            if self.schema:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
            conn.execute(_MIGRATION_LOCK)
            applied: set[int] = set()
            if conn.execute("SELECT to_regclass('durably_schema_versions') AS t").fetchone()["t"]:  # type: ignore[index]
                applied = {
                    row["version"]
                    for row in conn.execute("SELECT version FROM durably_schema_versions")
                }
            # Raised inside the transaction, which rolls back having written nothing.
            todo = pending_migrations(known, applied, self._where())
            conn.execute(VERSIONS_TABLE)
            for migration in todo:
                try:
                    # A whole script in one simple-query message (no parameters).
                    conn.execute(migration.sql.encode())
                except psycopg.Error as exc:
                    raise migration_failed(migration, self._where(), applied, exc) from exc
                conn.execute(
                    "INSERT INTO durably_schema_versions VALUES (%s, now()::text)",
                    (migration.version,),
                )

    def close(self) -> None:
        with self._listener_guard:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        self._pool.close()

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from a listener thread) whenever another process announces a
        claimable run: a trigger, a finished or cancelled run of a concurrency key,
        reclaimed leases. Also once after the listener (re)connects, as notifications may
        have been missed while it was away. Returns a function that stops watching."""
        with self._listener_guard:
            if self._listener is None:
                self._listener = Listener(self.dsn, self._channel, self._kwargs)
            listener = self._listener
        return listener.add(callback)

    # -- creating and reading runs ---------------------------------------------------

    def create_run(self, new: NewRun, now: int) -> tuple[Run, Disposition]:
        # READ COMMITTED: two triggers with the same key can both find no run and both
        # insert; the unique indexes let one through and the other retries, then finds
        # the winner's run (idempotent, coalesced or a conflict, as if it came second).
        for attempt in range(5):
            try:
                return self._create_run_once(new, now)
            except psycopg.IntegrityError as exc:
                if attempt == 4:
                    raise StorageError(f"cannot create run {new.id}: {exc}") from exc
        raise AssertionError("unreachable")

    def _create_run_once(self, new: NewRun, now: int) -> tuple[Run, Disposition]:
        with self._connection() as conn, conn.transaction():
            if new.idempotency_key is not None:
                row = conn.execute(
                    "SELECT id FROM durably_runs WHERE job_name = %(job)s "
                    "AND idempotency_key = %(key)s UNION ALL "
                    "SELECT run_id FROM durably_idempotency_keys "
                    "WHERE job_name = %(job)s AND idempotency_key = %(key)s",
                    {"job": new.job_name, "key": new.idempotency_key},
                ).fetchone()
                if row:
                    return self._require_run(conn, row["id"]), "idempotent"
            if new.concurrency_key is not None:
                row = conn.execute(
                    "SELECT id FROM durably_runs WHERE concurrency_key = %s AND status = 'pending'",
                    (new.concurrency_key,),
                ).fetchone()
                if row and new.coalesce:
                    if new.idempotency_key is not None:
                        conn.execute(
                            "INSERT INTO durably_idempotency_keys (job_name, idempotency_key, "
                            "run_id) VALUES (%s, %s, %s)",
                            (new.job_name, new.idempotency_key, row["id"]),
                        )
                    return self._require_run(conn, row["id"]), "coalesced"
                if row:
                    raise ConflictError(
                        f"concurrency key {new.concurrency_key!r} already has a pending run "
                        f"({row['id']}); pass coalesce='skip' to reuse it"
                    )
            inserted = conn.execute(
                "INSERT INTO durably_runs (id, job_name, input, status, idempotency_key, "
                "concurrency_key, run_at, created_at, updated_at) "
                "VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s, %s) RETURNING *",
                (
                    new.id,
                    new.job_name,
                    new.input_json,
                    new.idempotency_key,
                    new.concurrency_key,
                    new.run_at,
                    now,
                    now,
                ),
            ).fetchone()
            if new.labels:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO durably_run_labels (run_id, key, value) VALUES (%s, %s, %s)",
                        [(new.id, k, v) for k, v in new.labels.items()],
                    )
            # Delivered to listeners when this transaction commits, never before.
            conn.execute(f"SELECT {self._notify()}")
            assert inserted is not None
            return run_from_row(inserted, dict(new.labels)), "created"

    def get_run(self, run_id: str) -> Run | None:
        with self._connection() as conn:
            return self._get_run(conn, run_id)

    def _get_run(self, conn: psycopg.Connection[Any], run_id: str) -> Run | None:
        row = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM durably_runs r WHERE r.id = %s", (run_id,)
        ).fetchone()
        return None if row is None else _rowrun_from_row(row)

    def _require_run(self, conn: psycopg.Connection[Any], run_id: str) -> Run:
        run = self._get_run(conn, run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} not found")
        return run

    def get_runs(self, query: RunQuery) -> list[Run]:
        where, params = run_filters(query, "%s")
        text = (
            f"SELECT {_RUN_COLUMNS} FROM durably_runs r{where} "
            "ORDER BY r.created_at DESC, r.seq DESC"
        )
        if query.limit is not None or query.offset is not None:
            text += " LIMIT %s OFFSET %s"
            params.extend((query.limit, query.offset or 0))
        return [_rowrun_from_row(row) for row in self._all(text, params)]

    def count_runs(self, query: RunQuery) -> int:
        where, params = run_filters(query, "%s")
        return int(self._one(f"SELECT count(*) AS n FROM durably_runs r{where}", params)["n"])

    def get_statuses(self, run_ids: Sequence[str]) -> dict[str, RunStatus]:
        if not run_ids:
            return {}
        rows = self._all("SELECT id, status FROM durably_runs WHERE id = ANY(%s)", (list(run_ids),))
        return {row["id"]: RunStatus(row["status"]) for row in rows}

    # -- leases ----------------------------------------------------------------------

    def claim_next(
        self,
        owner: str,
        now: int,
        lease_ms: int,
        job_names: Sequence[str],
        held: Sequence[str] = (),
    ) -> Claim | None:
        if not job_names:
            return None
        with self._connection() as conn:
            row = claim_row(conn, owner, now, lease_ms, job_names, held)
            if row is None:
                return None
            labels = self._labels(conn, row["id"])
        run = run_from_row(row, labels)
        # The claim kept `waiting_for` only if it woke a waiting run (see claim.py).
        woken = row["waiting_for"]
        return Claim(
            run,
            Lease(run.id, run.lease_generation, owner),
            row["stalled_claims"],
            row["stalled_step"],
            json.loads(woken) if woken is not None else None,
        )

    def _labels(self, conn: psycopg.Connection[Any], run_id: str) -> dict[str, str]:
        rows = conn.execute(
            "SELECT key, value FROM durably_run_labels WHERE run_id = %s", (run_id,)
        ).fetchall()
        return {r["key"]: r["value"] for r in rows}

    def renew_lease(self, lease: Lease, now: int, lease_ms: int) -> bool:
        return self._write(
            f"UPDATE durably_runs SET lease_expires_at = %(expires)s, updated_at = %(now)s "
            f"WHERE {LEASE_GUARD}",
            {"expires": now + lease_ms, "now": now, **guard(lease)},
        )

    def expire_leases(self, now: int) -> int:
        with self._connection() as conn, conn.transaction():
            count = conn.execute(
                "UPDATE durably_runs SET lease_expires_at = %s, updated_at = %s "
                "WHERE status = 'leased'",
                (now, now),
            ).rowcount
            if count:
                conn.execute(f"SELECT {self._notify()}")
            return count

    def release_lease(self, lease: Lease, now: int) -> bool:
        """Hand a run back: its lease expires now, so any worker may claim it at once
        (as a stalled claim: the run was left mid-step). Fenced like every holder write."""
        return self._write(
            f"WITH released AS (UPDATE durably_runs SET lease_expires_at = %(now)s, "
            f"updated_at = %(now)s WHERE {LEASE_GUARD} RETURNING id) "
            f"SELECT {self._notify()} FROM released",
            {"now": now, **guard(lease)},
        )

    # -- operations on whole runs ----------------------------------------------------

    def cancel_run(self, run_id: str, now: int, preserve_steps: bool) -> Run:
        with self._connection() as conn, conn.transaction():
            # FOR UPDATE: a claim or a holder's write in flight finishes first, and the
            # status we judge is the newest one.
            conn.execute("SELECT 1 FROM durably_runs WHERE id = %s FOR UPDATE", (run_id,))
            run = self._require_run(conn, run_id)
            if run.status.is_terminal:
                raise ConflictError(f"run {run_id} is already {run.status}; it cannot be cancelled")
            conn.execute(
                "UPDATE durably_runs SET status = 'cancelled', completed_at = %s, updated_at = %s, "
                "lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, waiting_for = NULL "
                "WHERE id = %s",
                (now, now, run_id),
            )
            if not preserve_steps:
                conn.execute("UPDATE durably_steps SET output = NULL WHERE run_id = %s", (run_id,))
            if run.concurrency_key is not None:
                conn.execute(f"SELECT {self._notify()}")
            return run

    def delete_run(self, run_id: str) -> Run:
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT 1 FROM durably_runs WHERE id = %s FOR UPDATE", (run_id,))
            run = self._require_run(conn, run_id)
            if not run.status.is_terminal:
                raise ConflictError(f"run {run_id} is {run.status}; cancel it before deleting it")
            # Steps, logs, labels and coalesced keys go with it (ON DELETE CASCADE).
            conn.execute("DELETE FROM durably_runs WHERE id = %s", (run_id,))
            return run

    def purge_runs(self, older_than: int, limit: int) -> list[str]:
        # SKIP LOCKED: two processes purging at once take different runs. RETURNING has
        # no order of its own: the outer SELECT reports the deleted runs oldest first.
        rows = self._all(
            "WITH gone AS (DELETE FROM durably_runs WHERE id IN ("
            "  SELECT id FROM durably_runs"
            "   WHERE completed_at < %s AND status IN ('completed', 'failed', 'cancelled')"
            "   ORDER BY completed_at, seq LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING id, completed_at, seq) SELECT id FROM gone ORDER BY completed_at, seq",
            (older_than, limit),
        )
        return [row["id"] for row in rows]


def _rowrun_from_row(row: dict[str, Any]) -> Run:
    return run_from_row(row, dict(row["labels"] or {}))
