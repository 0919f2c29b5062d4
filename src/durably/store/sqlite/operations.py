"""Operations on whole runs in SQLite: cancel, delete and purge. Invariant kept: a
finished run is never cancelled, an unfinished one never deleted or purged; each check
and its write share one transaction (or one statement), so no claim or finish slips in
between. A run's steps, logs, labels and keys go with it (ON DELETE CASCADE)."""

from __future__ import annotations

from ...errors import ConflictError
from ...models import Run
from .database import SqliteDatabase
from .runs import require_run


class SqliteRunOperations(SqliteDatabase):
    def cancel_run(self, run_id: str, now: int, preserve_steps: bool) -> Run:
        with self._transaction() as conn:
            run = require_run(self, run_id)
            if run.status.is_terminal:
                raise ConflictError(f"run {run_id} is already {run.status}; it cannot be cancelled")
            # Leaving `leased` fences the holder: its guarded writes change nothing now.
            conn.execute(
                "UPDATE durably_runs SET status = 'cancelled', completed_at = ?, updated_at = ?, "
                "lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, waiting_for = NULL "
                "WHERE id = ?",
                (now, now, run_id),
            )
            if not preserve_steps:
                conn.execute("UPDATE durably_steps SET output = NULL WHERE run_id = ?", (run_id,))
            return run

    def delete_run(self, run_id: str) -> Run:
        with self._transaction() as conn:
            run = require_run(self, run_id)
            if not run.status.is_terminal:
                raise ConflictError(f"run {run_id} is {run.status}; cancel it before deleting it")
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
