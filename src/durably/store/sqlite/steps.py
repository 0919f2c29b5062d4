"""Writes by the lease holder in SQLite (steps, progress, logs, completion, failure) and
the reads of steps and logs. Invariant kept: every write carries the lease guard
(`status = 'leased' AND lease_generation = ?`), or runs in a transaction that checked it
first, so a stale holder (reclaimed run) or a cancelled run changes nothing, and each
reports whether it applied."""

from __future__ import annotations

from collections.abc import Sequence
from sqlite3 import Connection

from ...models import LogRecord, RunStatus, StepKind, StepRecord
from ..base import Lease, NewLog
from ..rows import log_from_row, step_from_row
from ..sql import STEP_UPSERT, lease_guard, lease_params
from .database import SqliteDatabase

_LEASE_GUARD = lease_guard("?")

_INSERT_LOG = (
    "INSERT INTO durably_logs (run_id, step_name, level, message, data, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def _insert_logs(conn: Connection, run_id: str, logs: Sequence[NewLog]) -> None:
    """Insert `logs` in order (ids ascending); the caller has checked the lease."""
    if not logs:
        return  # most steps log nothing: not even an empty executemany
    conn.executemany(
        _INSERT_LOG,
        [(run_id, x.step_name, x.level, x.message, x.data_json, x.created_at) for x in logs],
    )


class SqliteSteps(SqliteDatabase):
    # -- writes by the lease holder (fenced by generation) ---------------------------

    def start_step(self, lease: Lease) -> bool:
        # A read, not a write: a step that starts costs no commit. The step's own
        # commit (persist_step) is fenced again and moves current_step_index on.
        if self.exclusive:
            # The sole writer: only this store can move the lease on (a claim, a cancel),
            # and the runtime learns of those in-process (the scheduler never claims its
            # own runs; a cancel fires the run's signal). The read would only repeat it.
            return True
        row = self._execute(
            f"SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD}", lease_params(lease)
        ).fetchone()
        return row is not None

    def record_stalled_step(self, lease: Lease, name: str, now: int) -> bool:
        # Advisory, like a log line: the step's own commit (or the next claim) flushes it.
        return self._write_unflushed(
            f"UPDATE durably_runs SET stalled_step = ? WHERE {_LEASE_GUARD}",
            (name, *lease_params(lease)),
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
        logs: Sequence[NewLog] = (),
    ) -> bool:
        with self._transaction() as conn:
            counted = conn.execute(
                "UPDATE durably_runs SET completed_step_count = completed_step_count + 1, "
                "current_step_index = ?, progress = coalesce(?, progress), updated_at = ?, "
                "stalled_claims = 0, stalled_step = NULL "  # the run progressed
                f"WHERE {_LEASE_GUARD}",
                (index + 1, progress_json, now, *lease_params(lease)),
            ).rowcount
            if not counted:
                return False
            # A failed attempt of this step (caught by the job, or recorded before a crash)
            # is replaced: the row always holds the step's latest outcome.
            conn.execute(
                "INSERT INTO durably_steps (run_id, name, step_index, status, output, "
                "started_at, completed_at, kind, attempts) "
                f"VALUES (?, ?, ?, 'completed', ?, ?, ?, ?, ?) {STEP_UPSERT}",
                (lease.run_id, name, index, output_json, started_at, now, kind, attempts),
            )
            _insert_logs(conn, lease.run_id, logs)
            return True

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
        logs: Sequence[NewLog] = (),
    ) -> bool:
        # INSERT ... SELECT writes only while the lease is still ours; a re-run after a
        # resume replaces the earlier attempt's row. The step's logs go in the same commit.
        with self._transaction() as conn:
            failed = conn.execute(
                "INSERT INTO durably_steps (run_id, name, step_index, status, error, started_at, "
                "completed_at, kind, attempts, last_error) "
                "SELECT ?, ?, ?, 'failed', ?, ?, ?, ?, ?, ? "
                f"WHERE EXISTS (SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD}) {STEP_UPSERT}",
                (lease.run_id, name, index, error, started_at, now, kind, attempts, error,
                 *lease_params(lease)),
            ).rowcount  # fmt: skip
            if failed:
                _insert_logs(conn, lease.run_id, logs)
            return failed > 0

    def update_progress(self, lease: Lease, progress_json: str, now: int) -> bool:
        return self._write_unflushed(
            f"UPDATE durably_runs SET progress = ?, updated_at = ? WHERE {_LEASE_GUARD}",
            (progress_json, now, *lease_params(lease)),
        )

    def append_logs(self, lease: Lease, logs: Sequence[NewLog]) -> bool:
        if len(logs) == 1:
            # INSERT ... SELECT: the line is written only while the lease is still ours.
            x = logs[0]
            return self._write_unflushed(
                "INSERT INTO durably_logs (run_id, step_name, level, message, data, created_at) "
                "SELECT ?, ?, ?, ?, ?, ? "
                f"WHERE EXISTS (SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD})",
                (lease.run_id, x.step_name, x.level, x.message, x.data_json, x.created_at,
                 *lease_params(lease)),
            )  # fmt: skip
        # Checked and written under one write lock: no claim or cancel slips in between.
        with self._unflushed(), self._transaction() as conn:
            held = conn.execute(
                f"SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD}", lease_params(lease)
            ).fetchone()
            if held is None:
                return False
            _insert_logs(conn, lease.run_id, logs)
            return True

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
                "updated_at = ?, lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, "
                "waiting_for = NULL, "
                f"progress = coalesce(?, progress) WHERE {_LEASE_GUARD}",
                (str(status), value, now, now, progress_json, *lease_params(lease)),
            ).rowcount
            # Step outputs are dropped only by the holder whose finish applied.
            if changed and not preserve_steps:
                conn.execute(
                    "UPDATE durably_steps SET output = NULL WHERE run_id = ?", (lease.run_id,)
                )
            return bool(changed)

    # -- steps and logs --------------------------------------------------------------

    def get_completed_step_outputs(self, run_id: str) -> dict[str, str | None]:
        rows = self._execute(
            "SELECT name, output FROM durably_steps WHERE run_id = ? AND status = 'completed'",
            (run_id,),
        ).fetchall()
        return {name: output for name, output in rows}

    def get_steps(self, run_id: str) -> list[StepRecord]:
        rows = self._execute(
            "SELECT run_id, name, step_index, status, output, error, started_at, completed_at, "
            "kind, attempts, last_error, wake_at FROM durably_steps WHERE run_id = ? "
            "ORDER BY step_index, started_at",
            (run_id,),
        ).fetchall()
        return [step_from_row(r) for r in rows]

    def get_logs(self, run_id: str) -> list[LogRecord]:
        rows = self._execute(
            "SELECT id, run_id, step_name, level, message, data, created_at "
            "FROM durably_logs WHERE run_id = ? ORDER BY id",
            (run_id,),
        ).fetchall()
        return [log_from_row(r) for r in rows]
