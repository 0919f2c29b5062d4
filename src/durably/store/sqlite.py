"""The store on Python's built-in `sqlite3`: a file, ":memory:", or a file in OPFS.

One connection in autocommit mode; multi-statement writes run inside
`BEGIN IMMEDIATE` so they take the write lock up front and never deadlock on
upgrade. Every write made for a lease holder carries
``status = 'leased' AND lease_generation = ?`` in its WHERE clause: a stale
holder (reclaimed run) or a cancelled run changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal

from ..encoding import from_json
from ..errors import ConflictError, NotFoundError, SchemaVersionError, StorageError
from ..models import (
    Disposition,
    LogLevel,
    LogRecord,
    Progress,
    Run,
    RunStatus,
    StepRecord,
    ms_to_datetime,
)
from .base import Claim, Lease, NewRun, RunQuery, Store

Synchronous = Literal["FULL", "NORMAL", "OFF"]
_LEASE_GUARD = "id = ? AND lease_generation = ? AND status = 'leased'"

# Step rows are keyed by (run_id, name); a new attempt overwrites the previous one.
_STEP_UPSERT = (
    "ON CONFLICT (run_id, name) DO UPDATE SET step_index = excluded.step_index, "
    "status = excluded.status, output = excluded.output, error = excluded.error, "
    "started_at = excluded.started_at, completed_at = excluded.completed_at"
)

# The oldest claimable run of the given jobs: pending, or leased with an expired
# lease, but never one the claiming worker executes itself (`held`). A run is skipped
# while another run of its concurrency key has a live lease or is held (a held run may
# look expired: its worker's event loop was blocked, but it is still executing). Another
# worker's expired lease neither blocks its key nor hides its run: the claim fences it.
# Named parameters: now, jobs (JSON array of job names), held (JSON array of run ids).
_ELIGIBLE_RUN = """
    SELECT r.id FROM durably_runs r
     WHERE (r.status = 'pending' OR (r.status = 'leased' AND r.lease_expires_at <= :now))
       AND r.job_name IN (SELECT value FROM json_each(:jobs))
       AND r.id NOT IN (SELECT value FROM json_each(:held))
       AND (r.concurrency_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM durably_runs o
             WHERE o.concurrency_key = r.concurrency_key AND o.id != r.id
               AND o.status = 'leased'
               AND (o.lease_expires_at > :now
                    OR o.id IN (SELECT value FROM json_each(:held)))))
     ORDER BY r.created_at, r.rowid
     LIMIT 1"""

# Lease the eligible run. SET expressions read the row as it was before the update, so
# `status = 'leased'` is true exactly when the previous holder abandoned the run: that
# claim counts as stalled. RETURNING hands back the claimed row from this statement,
# so nothing written by others after it (a cancel) can confuse the claim.
_LEASE_ELIGIBLE_RUN = f"""
    UPDATE durably_runs
       SET status = 'leased', lease_owner = :owner, lease_expires_at = :expires,
           lease_generation = lease_generation + 1,
           stalled_claims = stalled_claims + (status = 'leased'),
           started_at = coalesce(started_at, :now), updated_at = :now
     WHERE id = ({_ELIGIBLE_RUN})
    RETURNING *"""

# The release half of a two-phase release. The eligible query let the claim through
# because every other leased run of the key has an expired lease; their holders may
# still be alive (a stalled process) and about to write. A new generation makes every
# fenced write of theirs change nothing from now on. Status and expiry stay as they are:
# such a run is claimable again once the key is free. Committed with the claim, under
# the same write lock, so no holder can renew in between.
_FENCE_EXPIRED_RUNS_OF_KEY = """
    UPDATE durably_runs
       SET lease_generation = lease_generation + 1, lease_owner = NULL, updated_at = :now
     WHERE concurrency_key = :key AND id != :id
       AND status = 'leased' AND lease_expires_at <= :now
       AND id NOT IN (SELECT value FROM json_each(:held))"""


def _migrations() -> list[tuple[int, str]]:
    """Numbered migrations shipped in `migrations/NNNN_name.sql`, in order."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)


class SqliteStore(Store):
    """Store runs in a SQLite database.

    `exclusive=True` sets ``locking_mode=EXCLUSIVE`` before anything else touches the
    file: the browser owner uses it (it holds the Web Lock, and WAL then needs no
    shared memory). `synchronous` trades durability for speed: FULL survives an OS
    crash, NORMAL survives a process or tab crash.
    """

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

    # -- plumbing --------------------------------------------------------------------

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
        under synchronous=FULL not synced on its own. In WAL mode the next FULL commit
        syncs the log file, and with it every frame written before, so the record is
        as durable as the run's next step. This saves a sync per log line."""
        if self._synchronous != "FULL":
            return self._write_one(sql, params)
        self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            return self._write_one(sql, params)
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")

    # -- lifecycle -------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema up to this release's newest migration.

        All pending migrations commit as one transaction: a failure part way (a bad
        statement, a full disk) leaves the database exactly as the previous release
        wrote it, so that release can still open it. A database whose schema is newer
        than this release knows is refused before anything is written to it.
        """
        migrations = _migrations()
        newest_known = migrations[-1][0] if migrations else 0
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
            found = max(applied, default=0)
            if found > newest_known:
                # Raised inside the transaction, which rolls back having written nothing.
                raise SchemaVersionError(
                    f"database {self.path!r} has schema version {found}, newer than this "
                    f"runtime's {newest_known}; open it with a newer release of durably "
                    "(nothing was changed)"
                )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS durably_schema_versions "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            for version, sql in migrations:
                if version in applied:
                    continue
                try:
                    for statement in _split_sql(sql):
                        conn.execute(statement)
                except sqlite3.Error as exc:
                    raise StorageError(
                        f"migration {version:04d} failed on {self.path!r}: {exc}; the database "
                        f"was left at schema version {found}"
                    ) from exc
                conn.execute(
                    "INSERT INTO durably_schema_versions VALUES (?, datetime('now'))", (version,)
                )

    def close(self) -> None:
        self._conn.close()

    # -- creating and reading runs ---------------------------------------------------

    def create_run(self, new: NewRun, now: int) -> tuple[Run, Disposition]:
        with self._transaction() as conn:
            if new.idempotency_key is not None:
                # The run this key named first: one created with it, or the one a trigger
                # with it was coalesced into.
                row = conn.execute(
                    "SELECT id FROM durably_runs WHERE job_name = :job AND idempotency_key = :key "
                    "UNION ALL SELECT run_id FROM durably_idempotency_keys "
                    "WHERE job_name = :job AND idempotency_key = :key",
                    {"job": new.job_name, "key": new.idempotency_key},
                ).fetchone()
                if row:
                    return self._require_run(row[0]), "idempotent"
            if new.concurrency_key is not None:
                row = conn.execute(
                    "SELECT id FROM durably_runs WHERE concurrency_key = ? AND status = 'pending'",
                    (new.concurrency_key,),
                ).fetchone()
                if row and new.coalesce:
                    if new.idempotency_key is not None:
                        conn.execute(
                            "INSERT INTO durably_idempotency_keys (job_name, idempotency_key, "
                            "run_id) VALUES (?, ?, ?)",
                            (new.job_name, new.idempotency_key, row[0]),
                        )
                    return self._require_run(row[0]), "coalesced"
                if row:
                    raise ConflictError(
                        f"concurrency key {new.concurrency_key!r} already has a pending run "
                        f"({row[0]}); pass coalesce='skip' to reuse it"
                    )
            conn.execute(
                "INSERT INTO durably_runs (id, job_name, input, status, idempotency_key, "
                "concurrency_key, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
                (
                    new.id,
                    new.job_name,
                    new.input_json,
                    new.idempotency_key,
                    new.concurrency_key,
                    now,
                    now,
                ),
            )
            conn.executemany(
                "INSERT INTO durably_run_labels (run_id, key, value) VALUES (?, ?, ?)",
                [(new.id, k, v) for k, v in new.labels.items()],
            )
            return self._require_run(new.id), "created"

    def get_run(self, run_id: str) -> Run | None:
        row = self._execute("SELECT * FROM durably_runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._to_runs([row])[0]

    def _require_run(self, run_id: str) -> Run:
        run = self.get_run(run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} not found")
        return run

    def _where(self, query: RunQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.statuses:
            clauses.append(f"status IN ({', '.join('?' * len(query.statuses))})")
            params.extend(str(s) for s in query.statuses)
        if query.job_names:
            clauses.append(f"job_name IN ({', '.join('?' * len(query.job_names))})")
            params.extend(query.job_names)
        for key, value in query.labels.items():
            clauses.append(
                "id IN (SELECT run_id FROM durably_run_labels WHERE key = ? AND value = ?)"
            )
            params.extend((key, value))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def get_runs(self, query: RunQuery) -> list[Run]:
        where, params = self._where(query)
        sql = f"SELECT * FROM durably_runs{where} ORDER BY created_at DESC, rowid DESC"
        if query.limit is not None or query.offset is not None:
            sql += " LIMIT ? OFFSET ?"
            params.extend((-1 if query.limit is None else query.limit, query.offset or 0))
        return self._to_runs(self._execute(sql, params).fetchall())

    def count_runs(self, query: RunQuery) -> int:
        where, params = self._where(query)
        return int(self._execute(f"SELECT count(*) FROM durably_runs{where}", params).fetchone()[0])

    def get_statuses(self, run_ids: Sequence[str]) -> dict[str, RunStatus]:
        if not run_ids:
            return {}
        rows = self._execute(
            "SELECT id, status FROM durably_runs WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(run_ids)),),
        ).fetchall()
        return {row[0]: RunStatus(row[1]) for row in rows}

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
        params: dict[str, Any] = {
            "now": now,
            "jobs": json.dumps(list(job_names)),
            "held": json.dumps(list(held)),
            "owner": owner,
            "expires": now + lease_ms,
        }
        # A plain read first: an idle poll finds nothing and must neither write nor
        # take the write lock. The UPDATE below re-selects under the write lock, so
        # a run taken by someone else in between is simply not claimed.
        if self._execute(_ELIGIBLE_RUN, params).fetchone() is None:
            return None
        # Lease and fence in one write transaction: SQLite's single writer lock makes
        # the claim and the release of the key's stale holders one atomic step, and two
        # workers can never claim the same generation.
        with self._transaction() as conn:
            rows = conn.execute(_LEASE_ELIGIBLE_RUN, params).fetchall()
            if not rows:
                return None
            row = rows[0]
            if row["concurrency_key"] is not None:
                conn.execute(
                    _FENCE_EXPIRED_RUNS_OF_KEY,
                    {**params, "key": row["concurrency_key"], "id": row["id"]},
                )
        run = self._to_runs([row])[0]
        return Claim(
            run,
            Lease(run.id, run.lease_generation, owner),
            row["stalled_claims"],
            row["stalled_step"],
        )

    def renew_lease(self, lease: Lease, now: int, lease_ms: int) -> bool:
        return self._write_one(
            f"UPDATE durably_runs SET lease_expires_at = ?, updated_at = ? WHERE {_LEASE_GUARD}",
            (now + lease_ms, now, lease.run_id, lease.generation),
        )

    def expire_leases(self, now: int) -> int:
        return self._execute(
            "UPDATE durably_runs SET lease_expires_at = ?, updated_at = ? WHERE status = 'leased'",
            (now, now),
        ).rowcount

    # -- writes by the lease holder --------------------------------------------------

    def start_step(self, lease: Lease, index: int, now: int) -> bool:
        # A read, not a write: a step that starts costs no commit. The step's own
        # commit (persist_step) is fenced again and moves current_step_index on.
        row = self._execute(
            f"SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD}", (lease.run_id, lease.generation)
        ).fetchone()
        return row is not None

    def record_stalled_step(self, lease: Lease, name: str, now: int) -> bool:
        # Advisory, like a log line: the step's own commit (or the next claim) flushes it.
        return self._write_unflushed(
            f"UPDATE durably_runs SET stalled_step = ? WHERE {_LEASE_GUARD}",
            (name, lease.run_id, lease.generation),
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
    ) -> bool:
        with self._transaction() as conn:
            counted = conn.execute(
                "UPDATE durably_runs SET completed_step_count = completed_step_count + 1, "
                "current_step_index = ?, progress = coalesce(?, progress), updated_at = ?, "
                "stalled_claims = 0, stalled_step = NULL "  # the run progressed
                f"WHERE {_LEASE_GUARD}",
                (index + 1, progress_json, now, lease.run_id, lease.generation),
            ).rowcount
            if not counted:
                return False
            # A failed attempt of this step (caught by the job, or recorded before a crash)
            # is replaced: the row always holds the step's latest outcome.
            conn.execute(
                "INSERT INTO durably_steps (run_id, name, step_index, status, output, "
                "started_at, completed_at) VALUES (?, ?, ?, 'completed', ?, ?, ?)"
                f" {_STEP_UPSERT}",
                (lease.run_id, name, index, output_json, started_at, now),
            )
            return True

    def persist_step_failure(
        self, lease: Lease, name: str, index: int, error: str, started_at: int, now: int
    ) -> bool:
        # INSERT ... SELECT writes only while the lease is still ours; a re-run after a
        # resume replaces the earlier attempt's row.
        return self._write_one(
            "INSERT INTO durably_steps (run_id, name, step_index, status, error, started_at, "
            "completed_at) SELECT ?, ?, ?, 'failed', ?, ?, ? "
            f"WHERE EXISTS (SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD}) {_STEP_UPSERT}",
            (lease.run_id, name, index, error, started_at, now, lease.run_id, lease.generation),
        )

    def update_progress(self, lease: Lease, progress_json: str, now: int) -> bool:
        return self._write_unflushed(
            f"UPDATE durably_runs SET progress = ?, updated_at = ? WHERE {_LEASE_GUARD}",
            (progress_json, now, lease.run_id, lease.generation),
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
        return self._write_unflushed(
            "INSERT INTO durably_logs (run_id, step_name, level, message, data, created_at) "
            "SELECT ?, ?, ?, ?, ?, ? "
            f"WHERE EXISTS (SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD})",
            (
                lease.run_id,
                step_name,
                level,
                message,
                data_json,
                now,
                lease.run_id,
                lease.generation,
            ),
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
        with self._transaction() as conn:
            changed = conn.execute(
                f"UPDATE durably_runs SET status = ?, {column} = ?, completed_at = ?, "
                "updated_at = ?, lease_owner = NULL, lease_expires_at = NULL, "
                f"progress = coalesce(?, progress) WHERE {_LEASE_GUARD}",
                (str(status), value, now, now, progress_json, lease.run_id, lease.generation),
            ).rowcount
            if changed and not preserve_steps:
                conn.execute(
                    "UPDATE durably_steps SET output = NULL WHERE run_id = ?", (lease.run_id,)
                )
            return bool(changed)

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

    def fail_run(self, lease: Lease, error: str, now: int, preserve_steps: bool) -> bool:
        return self._finish(lease, RunStatus.FAILED, "error", error, now, preserve_steps)

    # -- steps and logs --------------------------------------------------------------

    def get_completed_step_outputs(self, run_id: str) -> dict[str, str | None]:
        rows = self._execute(
            "SELECT name, output FROM durably_steps WHERE run_id = ? AND status = 'completed'",
            (run_id,),
        ).fetchall()
        return {name: output for name, output in rows}

    def get_steps(self, run_id: str) -> list[StepRecord]:
        rows = self._execute(
            "SELECT run_id, name, step_index, status, output, error, started_at, completed_at "
            "FROM durably_steps WHERE run_id = ? ORDER BY step_index, started_at",
            (run_id,),
        ).fetchall()
        return [
            StepRecord(
                run_id=r[0],
                name=r[1],
                index=r[2],
                status=r[3],
                output=from_json(r[4]),
                error=r[5],
                started_at=_dt(r[6]),
                completed_at=ms_to_datetime(r[7]),
            )
            for r in rows
        ]

    def get_logs(self, run_id: str) -> list[LogRecord]:
        rows = self._execute(
            "SELECT id, run_id, step_name, level, message, data, created_at "
            "FROM durably_logs WHERE run_id = ? ORDER BY id",
            (run_id,),
        ).fetchall()
        return [
            LogRecord(
                id=r[0],
                run_id=r[1],
                step_name=r[2],
                level=r[3],
                message=r[4],
                data=from_json(r[5]),
                created_at=_dt(r[6]),
            )
            for r in rows
        ]

    # -- operations on whole runs ----------------------------------------------------

    def cancel_run(self, run_id: str, now: int, preserve_steps: bool) -> Run:
        with self._transaction() as conn:
            run = self._require_run(run_id)
            if run.status.is_terminal:
                raise ConflictError(f"run {run_id} is already {run.status}; it cannot be cancelled")
            conn.execute(
                "UPDATE durably_runs SET status = 'cancelled', completed_at = ?, updated_at = ?, "
                "lease_owner = NULL, lease_expires_at = NULL WHERE id = ?",
                (now, now, run_id),
            )
            if not preserve_steps:
                conn.execute("UPDATE durably_steps SET output = NULL WHERE run_id = ?", (run_id,))
            return run

    def delete_run(self, run_id: str) -> Run:
        with self._transaction() as conn:
            run = self._require_run(run_id)
            if not run.status.is_terminal:
                raise ConflictError(f"run {run_id} is {run.status}; cancel it before deleting it")
            # Steps, logs and labels go with it (ON DELETE CASCADE).
            conn.execute("DELETE FROM durably_runs WHERE id = ?", (run_id,))
            return run

    def purge_runs(self, older_than: int, limit: int) -> list[str]:
        # RETURNING (SQLite 3.35+) names the deleted rows in the same statement, so the
        # ids reported are exactly the runs this transaction removed.
        rows = self._execute(
            "DELETE FROM durably_runs WHERE id IN ("
            "  SELECT id FROM durably_runs"
            "   WHERE completed_at < ? AND status IN ('completed', 'failed', 'cancelled')"
            "   ORDER BY completed_at LIMIT ?)"
            " RETURNING id",
            (older_than, limit),
        ).fetchall()
        return [row[0] for row in rows]

    # -- row mapping -----------------------------------------------------------------

    def _to_runs(self, rows: list[sqlite3.Row]) -> list[Run]:
        if not rows:
            return []
        records: list[sqlite3.Row] = rows
        labels: dict[str, dict[str, str]] = {r["id"]: {} for r in records}
        for run_id, key, value in self._execute(
            "SELECT run_id, key, value FROM durably_run_labels "
            "WHERE run_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(labels)),),
        ):
            labels[run_id][key] = value
        return [_to_run(r, labels[r["id"]]) for r in records]


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _to_run(r: sqlite3.Row, labels: dict[str, str]) -> Run:
    progress = from_json(r["progress"])
    return Run(
        id=r["id"],
        job_name=r["job_name"],
        input=from_json(r["input"]),
        status=RunStatus(r["status"]),
        idempotency_key=r["idempotency_key"],
        concurrency_key=r["concurrency_key"],
        labels=labels,
        current_step_index=r["current_step_index"],
        completed_step_count=r["completed_step_count"],
        progress=Progress(**progress) if progress else None,
        output=from_json(r["output"]),
        error=r["error"],
        lease_owner=r["lease_owner"],
        lease_expires_at=ms_to_datetime(r["lease_expires_at"]),
        lease_generation=r["lease_generation"],
        started_at=ms_to_datetime(r["started_at"]),
        completed_at=ms_to_datetime(r["completed_at"]),
        created_at=_dt(r["created_at"]),
        updated_at=_dt(r["updated_at"]),
    )


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (our migrations have no ';' inside literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
