"""The store on PostgreSQL (psycopg 3): one database shared by many worker processes.

Connections come from a small pool in autocommit mode. Every write made for a lease
holder is a single statement carrying ``status = 'leased' AND lease_generation = %s``
(data-modifying CTEs keep a step and its count in one statement), so a stale holder or
a cancelled run changes nothing, and most calls cost one round trip. Inserts that only
reference the run (logs, failed steps) lock its row FOR SHARE, so they cannot land after
a claim that fenced the run. The claim itself lives in `claim.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ...errors import ConflictError, NotFoundError, StorageError
from ...models import Disposition, LogLevel, LogRecord, Run, RunStatus, StepKind, StepRecord
from ..base import Claim, Lease, NewRun, RunQuery, Store, Wait
from ..migrations import VERSIONS_TABLE, load_migrations, migration_failed, pending_migrations
from ..rows import log_from_row, run_from_row, step_from_row
from ..sql import STEP_UPSERT, lease_guard, run_filters
from .claim import claim_row
from .listener import Listener

# The shared lease guard with named parameters (see `_guard`).
_LEASE_GUARD = lease_guard("%s").replace("%s", "%(id)s", 1).replace("%s", "%(gen)s", 1)

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


class PostgresStore(Store):
    """Store runs in a PostgreSQL database, shared by any number of worker processes.

    `dsn` is a libpq URL or conninfo string. `schema` puts the tables in that schema
    (created if missing) instead of the connection's default. `pool_size` bounds the
    connections of this store (calls are synchronous, so one is busy at a time; the
    spare serves a reconnect while a broken one is replaced). `timeout` (seconds) bounds
    how long a call waits for a connection: while the server is unreachable, calls fail
    with StorageError after it instead of hanging. The LISTEN connection that `watch`
    uses is separate and reconnects on its own.
    """

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

    # -- plumbing --------------------------------------------------------------------

    def _where(self) -> str:
        """The server for messages, without a password."""
        try:
            info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError:
            return "the PostgreSQL server"
        return f"PostgreSQL {info.get('host', 'localhost')}:{info.get('port', 5432)}/" + str(
            info.get("dbname", "")
        )

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection; server and network failures surface as StorageError.
        Constraint violations pass through (callers retry or report them)."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StorageError(f"no connection to {self._where()}: {exc}") from exc
        except psycopg.IntegrityError:
            raise
        except psycopg.Error as exc:
            raise StorageError(f"database error on {self._where()}: {exc}") from exc

    def _one(self, query: str, params: dict[str, Any] | Sequence[Any] = ()) -> Any:
        with self._connection() as conn:
            return conn.execute(query, params).fetchone()

    def _all(self, query: str, params: dict[str, Any] | Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(query, params).fetchall()

    def _write(self, query: str, params: dict[str, Any]) -> bool:
        """A single-statement write; True if it changed (or returned) a row."""
        with self._connection() as conn:
            return conn.execute(query, params).rowcount > 0

    def _notify(self) -> str:
        return f"pg_notify('{self._channel}', '')"

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
        return Claim(
            run,
            Lease(run.id, run.lease_generation, owner),
            row["stalled_claims"],
            row["stalled_step"],
        )

    def _labels(self, conn: psycopg.Connection[Any], run_id: str) -> dict[str, str]:
        rows = conn.execute(
            "SELECT key, value FROM durably_run_labels WHERE run_id = %s", (run_id,)
        ).fetchall()
        return {r["key"]: r["value"] for r in rows}

    def renew_lease(self, lease: Lease, now: int, lease_ms: int) -> bool:
        return self._write(
            f"UPDATE durably_runs SET lease_expires_at = %(expires)s, updated_at = %(now)s "
            f"WHERE {_LEASE_GUARD}",
            {"expires": now + lease_ms, "now": now, **_guard(lease)},
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
            f"updated_at = %(now)s WHERE {_LEASE_GUARD} RETURNING id) "
            f"SELECT {self._notify()} FROM released",
            {"now": now, **_guard(lease)},
        )

    # -- writes by the lease holder (fenced by generation) ---------------------------

    def start_step(self, lease: Lease) -> bool:
        return (
            self._one(f"SELECT 1 AS ok FROM durably_runs WHERE {_LEASE_GUARD}", _guard(lease))
            is not None
        )

    def record_stalled_step(self, lease: Lease, name: str, now: int) -> bool:
        return self._write(
            f"UPDATE durably_runs SET stalled_step = %(name)s WHERE {_LEASE_GUARD}",
            {"name": name, **_guard(lease)},
        )

    def persist_step(
        self,
        lease: Lease,
        name: str,
        index: int,
        output_json: str,
        started_at: int,
        now: int,
        progress_json: str | None = None,
        kind: StepKind = "step",
        attempts: int = 1,
    ) -> bool:
        # One statement: the count and the step row commit together or not at all, and
        # the step is written only if the guarded UPDATE (which locks the run row, so a
        # concurrent claim waits or has already changed the generation) applied.
        return self._write(
            "WITH counted AS ("
            "  UPDATE durably_runs SET completed_step_count = completed_step_count + 1,"
            "   current_step_index = %(next)s, progress = coalesce(%(progress)s, progress),"
            "   updated_at = %(now)s, stalled_claims = 0, stalled_step = NULL"
            f"  WHERE {_LEASE_GUARD} RETURNING id) "
            "INSERT INTO durably_steps (run_id, name, step_index, status, output, started_at, "
            "completed_at, kind, attempts) SELECT id, %(name)s, %(index)s, 'completed', "
            f"%(output)s, %(started)s, %(now)s, %(kind)s, %(attempts)s FROM counted {STEP_UPSERT}",
            {
                "next": index + 1,
                "progress": progress_json,
                "now": now,
                "name": name,
                "index": index,
                "output": output_json,
                "started": started_at,
                "kind": kind,
                "attempts": attempts,
                **_guard(lease),
            },
        )

    def persist_step_failure(
        self,
        lease: Lease,
        name: str,
        index: int,
        error: str,
        started_at: int,
        now: int,
        kind: StepKind = "step",
        attempts: int = 1,
    ) -> bool:
        # FOR SHARE: a claim's fence (an UPDATE of the run) waits for this insert, or this
        # insert waits for the fence and then finds the generation changed. Without the
        # lock, the check could read the run before a fence that commits first.
        return self._write(
            "INSERT INTO durably_steps (run_id, name, step_index, status, error, started_at, "
            "completed_at, kind, attempts, last_error) SELECT %(id)s, %(name)s, %(index)s, "
            "'failed', %(error)s, %(started)s, %(now)s, %(kind)s, %(attempts)s, %(error)s "
            f"WHERE EXISTS (SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD} FOR SHARE) "
            f"{STEP_UPSERT}",
            {
                "name": name,
                "index": index,
                "error": error,
                "started": started_at,
                "now": now,
                "kind": kind,
                "attempts": attempts,
                **_guard(lease),
            },
        )

    def update_progress(self, lease: Lease, progress_json: str, now: int) -> bool:
        return self._write(
            f"UPDATE durably_runs SET progress = %(progress)s, updated_at = %(now)s "
            f"WHERE {_LEASE_GUARD}",
            {"progress": progress_json, "now": now, **_guard(lease)},
        )

    def append_log(
        self,
        lease: Lease,
        level: LogLevel,
        message: str,
        data_json: str | None,
        step_name: str | None,
        now: int,
    ) -> bool:
        # FOR SHARE for the same reason as in persist_step_failure.
        return self._write(
            "INSERT INTO durably_logs (run_id, step_name, level, message, data, created_at) "
            "SELECT %(id)s, %(step)s, %(level)s, %(message)s, %(data)s, %(now)s "
            f"WHERE EXISTS (SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD} FOR SHARE)",
            {
                "step": step_name,
                "level": level,
                "message": message,
                "data": data_json,
                "now": now,
                **_guard(lease),
            },
        )

    def _finish(
        self,
        lease: Lease,
        status: RunStatus,
        column: str,
        value: str,
        now: int,
        preserve_steps: bool,
        progress_json: str | None = None,
    ) -> bool:
        # One statement: the status change, the cleared step outputs and (for a run with
        # a concurrency key, whose next run may now be claimed) the wake-up notification.
        clear = (
            ""
            if preserve_steps
            else ", cleared AS (UPDATE durably_steps SET output = NULL "
            "WHERE run_id IN (SELECT id FROM finished))"
        )
        return self._write(
            f"WITH finished AS (UPDATE durably_runs SET status = %(status)s, {column} = %(value)s,"
            " completed_at = %(now)s, updated_at = %(now)s, lease_owner = NULL,"
            " lease_expires_at = NULL, wake_at = NULL, waiting_for = NULL,"
            " progress = coalesce(%(progress)s, progress)"
            f" WHERE {_LEASE_GUARD} RETURNING id, concurrency_key){clear} "
            f"SELECT id, (SELECT {self._notify()} WHERE f.concurrency_key IS NOT NULL) "
            "FROM finished f",
            {
                "status": str(status),
                "value": value,
                "now": now,
                "progress": progress_json,
                **_guard(lease),
            },
        )

    def complete_run(
        self,
        lease: Lease,
        output_json: str,
        now: int,
        preserve_steps: bool,
        progress_json: str | None = None,
    ) -> bool:
        return self._finish(
            lease, RunStatus.COMPLETED, "output", output_json, now, preserve_steps, progress_json
        )

    def fail_run(self, lease: Lease, error: str, now: int) -> bool:
        # A failed run keeps its steps' outputs: `resume_run` continues after them.
        return self._finish(lease, RunStatus.FAILED, "error", error, now, preserve_steps=True)

    # -- steps and logs --------------------------------------------------------------

    def get_completed_step_outputs(self, run_id: str) -> dict[str, str | None]:
        rows = self._all(
            "SELECT name, output FROM durably_steps WHERE run_id = %s AND status = 'completed'",
            (run_id,),
        )
        return {r["name"]: r["output"] for r in rows}

    def get_steps(self, run_id: str) -> list[StepRecord]:
        rows = self._all(
            "SELECT * FROM durably_steps WHERE run_id = %s ORDER BY step_index, started_at",
            (run_id,),
        )
        return [step_from_row(r) for r in rows]

    def get_logs(self, run_id: str) -> list[LogRecord]:
        rows = self._all("SELECT * FROM durably_logs WHERE run_id = %s ORDER BY id", (run_id,))
        return [log_from_row(r) for r in rows]

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

    # -- waiting runs (not supported by this store yet) ---------------------------------

    def next_wake_at(self, job_names: Sequence[str]) -> int | None:
        return None  # no run of this store waits for a time

    def suspend_run(
        self, lease: Lease, wait: Wait, now: int, progress_json: str | None = None
    ) -> bool:
        raise StorageError("the PostgreSQL store does not support waiting runs yet")

    def deliver_event(
        self, lease: Lease, name: str, index: int, started_at: int, now: int
    ) -> str | None:
        raise StorageError("the PostgreSQL store does not support waiting runs yet")

    def send_event(self, run_id: str, name: str, payload_json: str, now: int) -> bool:
        raise StorageError("the PostgreSQL store does not support waiting runs yet")

    def wake_network_waits(self, now: int) -> int:
        return 0  # no run of this store waits for the network

    def resume_run(self, run_id: str, now: int) -> Run:
        raise StorageError("the PostgreSQL store does not support resuming runs yet")

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


def _guard(lease: Lease) -> dict[str, Any]:
    return {"id": lease.run_id, "gen": lease.generation}


def _rowrun_from_row(row: dict[str, Any]) -> Run:
    return run_from_row(row, dict(row["labels"] or {}))
