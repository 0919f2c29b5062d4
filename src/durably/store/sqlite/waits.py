"""Waiting runs in SQLite: suspending on a wait, the event mailbox, waking, the next due
time, and resuming failed runs. Invariant kept: a suspension (the wait's step record and
the run's `waiting` state) and a delivery (the event taken and the wait completed) each
commit in one transaction fenced by the lease, so a stale holder suspends nothing and an
event is delivered once."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ...errors import ConflictError
from ...models import Run
from ..base import Lease, Wait
from ..sql import STEP_UPSERT, lease_guard, lease_params
from .database import SqliteDatabase
from .runs import require_run

_LEASE_GUARD = lease_guard("?")


class SqliteWaits(SqliteDatabase):
    def suspend_run(
        self, lease: Lease, wait: Wait, now: int, progress_json: str | None = None
    ) -> bool:
        with self._transaction() as conn:
            # Leaving `leased` releases the lease: from now on only a claim (at wake_at,
            # or once an event or the network wakes it) can execute the run again.
            suspended = conn.execute(
                "UPDATE durably_runs SET status = 'waiting', wake_at = ?, waiting_for = ?, "
                "lease_owner = NULL, lease_expires_at = NULL, progress = coalesce(?, progress), "
                "stalled_claims = 0, stalled_step = NULL, updated_at = ? "
                f"WHERE {_LEASE_GUARD}",
                (
                    wait.until,
                    json.dumps(wait.waiting_for()),
                    progress_json,
                    now,
                    *lease_params(lease),
                ),
            ).rowcount
            if not suspended:
                return False
            conn.execute(
                "INSERT INTO durably_steps (run_id, name, step_index, status, started_at, "
                "kind, attempts, last_error, wake_at) VALUES (?, ?, ?, 'waiting', ?, ?, ?, ?, ?) "
                f"{STEP_UPSERT}",
                (
                    lease.run_id,
                    wait.name,
                    wait.index,
                    wait.started_at,
                    wait.step_kind,
                    wait.attempts,
                    wait.last_error,
                    wait.until,
                ),
            )
            # The upsert clears wake_at (right for outcomes); a wait keeps its deadline.
            conn.execute(
                "UPDATE durably_steps SET wake_at = ? WHERE run_id = ? AND name = ?",
                (wait.until, lease.run_id, wait.name),
            )
            return True

    def deliver_event(
        self, lease: Lease, name: str, index: int, started_at: int, now: int
    ) -> str | None:
        # A plain read first: a wait whose event has not come writes nothing.
        if not self._execute(
            "SELECT 1 FROM durably_events WHERE run_id = ? AND name = ? AND delivered_at IS NULL",
            (lease.run_id, name),
        ).fetchone():
            return None
        with self._transaction() as conn:
            if not conn.execute(
                f"SELECT 1 FROM durably_runs WHERE {_LEASE_GUARD}", lease_params(lease)
            ).fetchone():
                return None
            # Under the write lock: the oldest undelivered event of that name, taken once.
            row = conn.execute(
                "UPDATE durably_events SET delivered_at = ? WHERE id = ("
                "  SELECT id FROM durably_events WHERE run_id = ? AND name = ? "
                "   AND delivered_at IS NULL ORDER BY id LIMIT 1) RETURNING payload",
                (now, lease.run_id, name),
            ).fetchone()
            if row is None:
                return None
            payload: str = row[0]
            conn.execute(
                "UPDATE durably_runs SET completed_step_count = completed_step_count + 1, "
                "current_step_index = ?, updated_at = ?, stalled_claims = 0, "
                f"stalled_step = NULL WHERE {_LEASE_GUARD}",
                (index + 1, now, *lease_params(lease)),
            )
            conn.execute(
                "INSERT INTO durably_steps (run_id, name, step_index, status, output, "
                "started_at, completed_at, kind, attempts) "
                f"VALUES (?, ?, ?, 'completed', ?, ?, ?, 'event', 1) {STEP_UPSERT}",
                (lease.run_id, name, index, payload, started_at, now),
            )
            return payload

    def send_event(self, run_id: str, name: str, payload_json: str, now: int) -> bool:
        with self._transaction() as conn:
            run = require_run(self, run_id)
            if run.status.is_terminal:
                raise ConflictError(
                    f"run {run_id} is already {run.status}; it takes no more events"
                )
            conn.execute(
                "INSERT INTO durably_events (run_id, name, payload, created_at) "
                "VALUES (?, ?, ?, ?)",
                (run_id, name, payload_json, now),
            )
            # A run waiting for this event is due now; the claim delivers it.
            return (
                conn.execute(
                    "UPDATE durably_runs SET wake_at = ?, updated_at = ? WHERE id = ? "
                    "AND status = 'waiting' AND json_extract(waiting_for, '$.kind') = 'event' "
                    "AND json_extract(waiting_for, '$.name') = ?",
                    (now, now, run_id, name),
                ).rowcount
                > 0
            )

    def wake_network_waits(self, now: int) -> int:
        return self._execute(
            "UPDATE durably_runs SET wake_at = ?, updated_at = ? WHERE status = 'waiting' "
            "AND wake_at IS NULL AND json_extract(waiting_for, '$.kind') = 'online'",
            (now, now),
        ).rowcount

    def next_wake_at(self, job_names: Sequence[str]) -> int | None:
        if not job_names:
            return None
        # Two index range scans (durably_runs_wake, durably_runs_run_at), each reading
        # its first entry per status: cheap however many runs wait.
        row = self._execute(
            "SELECT min(due) FROM ("
            "  SELECT min(wake_at) AS due FROM durably_runs WHERE status = 'waiting' "
            "   AND wake_at IS NOT NULL AND job_name IN (SELECT value FROM json_each(:jobs))"
            "  UNION ALL"
            "  SELECT min(run_at) FROM durably_runs WHERE status = 'pending' "
            "   AND run_at IS NOT NULL AND job_name IN (SELECT value FROM json_each(:jobs)))",
            {"jobs": json.dumps(list(job_names))},
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def resume_run(self, run_id: str, now: int) -> Run:
        with self._transaction() as conn:
            run = require_run(self, run_id)
            if run.status != "failed":
                raise ConflictError(
                    f"run {run_id} is {run.status}; only a failed run can be resumed"
                )
            try:
                conn.execute(
                    "UPDATE durably_runs SET status = 'pending', error = NULL, "
                    "completed_at = NULL, stalled_claims = 0, stalled_step = NULL, "
                    "run_at = NULL, wake_at = NULL, waiting_for = NULL, updated_at = ? "
                    "WHERE id = ?",
                    (now, run_id),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(
                    f"concurrency key {run.concurrency_key!r} already has a pending run; "
                    f"run {run_id} cannot be resumed until it has started"
                ) from None
            # What did not complete runs afresh (a failed step gets all its attempts).
            conn.execute(
                "DELETE FROM durably_steps WHERE run_id = ? AND status != 'completed'",
                (run_id,),
            )
        return require_run(self, run_id)
