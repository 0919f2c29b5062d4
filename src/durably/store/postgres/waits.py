"""Waiting runs on PostgreSQL: suspending on a wait, the event mailbox, waking, the next
due time, and resuming failed runs. Invariants kept: a suspension (the wait's step record
and the run's `waiting` state) and a delivery (the event taken and the wait completed)
each commit atomically and fenced by the lease, so a stale holder suspends nothing and an
event is delivered once; an event sent while its run suspends on it is never missed (the
run row lock orders the two, see `suspend_run`). Whatever makes a run due, or changes when
one will be, notifies the other workers as a trigger does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from ...errors import ConflictError, NotFoundError
from ...models import Run, RunStatus
from ..base import Lease, Wait
from ..rows import run_from_row
from ..sql import STEP_UPSERT
from .connection import LEASE_GUARD, PostgresConnection, guard

# A wait's step record keeps its deadline: the shared upsert clears it (right for an
# outcome), a suspension stores the new one.
_WAIT_UPSERT = STEP_UPSERT.replace("wake_at = NULL", "wake_at = excluded.wake_at")

# The run waits for the event `name` (parameters: name).
_WAITS_FOR_EVENT = (
    "status = 'waiting' AND (waiting_for::json ->> 'kind') = 'event' "
    "AND (waiting_for::json ->> 'name') = %(name)s"
)


def _lock_if_held(conn: psycopg.Connection[Any], lease: Lease) -> bool:
    """Lock the run's row if the lease still holds (inside a transaction): a claim that
    would fence it, a cancel or an event sent to it waits until this transaction ends."""
    return (
        conn.execute(
            f"SELECT 1 FROM durably_runs WHERE {LEASE_GUARD} FOR UPDATE", guard(lease)
        ).fetchone()
        is not None
    )


class PostgresWaits(PostgresConnection):
    def suspend_run(
        self, lease: Lease, wait: Wait, now: int, progress_json: str | None = None
    ) -> bool:
        with self._connection() as conn, conn.transaction():
            # Lock the run first, and only then look at the mailbox in a new statement:
            # `send_event` locks the run row too before it stores an event and wakes a
            # run waiting for it. Either it committed before this lock was granted (the
            # statement below sees its event and makes the run due at once), or it waits
            # for this transaction and then finds the run waiting. Checking the mailbox
            # in the UPDATE alone could read a snapshot older than an event whose sender
            # saw the run still leased: the run would sleep on a delivered mailbox.
            if not _lock_if_held(conn, lease):
                return False
            # Leaving `leased` releases the lease: from now on only a claim (at wake_at,
            # or once an event or the network wakes it) can execute the run again. The
            # step record is written only if the fenced UPDATE applied (same statement).
            row = conn.execute(
                "WITH suspended AS ("
                "  UPDATE durably_runs SET status = 'waiting', wake_at = CASE"
                "   WHEN %(kind)s = 'event' AND EXISTS (SELECT 1 FROM durably_events e"
                "    WHERE e.run_id = %(id)s AND e.name = %(name)s AND e.delivered_at IS NULL)"
                "   THEN %(now)s ELSE %(until)s END,"
                "   waiting_for = %(for)s, lease_owner = NULL, lease_expires_at = NULL,"
                "   progress = coalesce(%(progress)s, progress), stalled_claims = 0,"
                f"   stalled_step = NULL, updated_at = %(now)s WHERE {LEASE_GUARD}"
                "  RETURNING id, wake_at), "
                "recorded AS (INSERT INTO durably_steps (run_id, name, step_index, status,"
                "  started_at, kind, attempts, last_error, wake_at)"
                "  SELECT id, %(name)s, %(index)s, 'waiting', %(started)s, %(step_kind)s,"
                f"  %(attempts)s, %(last_error)s, %(until)s FROM suspended {_WAIT_UPSERT}) "
                # Other workers re-read the next due time (this process may stop first).
                f"SELECT wake_at, (SELECT {self._notify()} WHERE wake_at IS NOT NULL) "
                "FROM suspended",
                {
                    "kind": wait.kind,
                    "name": wait.name,
                    "index": wait.index,
                    "now": now,
                    "until": wait.until,
                    "for": json.dumps(wait.waiting_for()),
                    "progress": progress_json,
                    "started": wait.started_at,
                    "step_kind": wait.step_kind,
                    "attempts": wait.attempts,
                    "last_error": wait.last_error,
                    **guard(lease),
                },
            ).fetchone()
            return row is not None

    def deliver_event(
        self, lease: Lease, name: str, index: int, started_at: int, now: int
    ) -> str | None:
        # A plain read first: a wait whose event has not come writes and locks nothing.
        if not self._one(
            "SELECT 1 AS ok FROM durably_events WHERE run_id = %s AND name = %s "
            "AND delivered_at IS NULL LIMIT 1",
            (lease.run_id, name),
        ):
            return None
        params = {"name": name, "index": index, "started": started_at, "now": now}
        with self._connection() as conn, conn.transaction():
            # The run row lock, under the fence: a claim that fences the run waits for
            # this transaction or has already changed the generation. Events of a run
            # are only taken here, under this lock, so the oldest one is taken once.
            if not _lock_if_held(conn, lease):
                return None
            taken = conn.execute(
                "UPDATE durably_events SET delivered_at = %(now)s WHERE id = ("
                "  SELECT id FROM durably_events WHERE run_id = %(id)s AND name = %(name)s"
                "   AND delivered_at IS NULL ORDER BY id LIMIT 1) RETURNING payload",
                {**params, **guard(lease)},
            ).fetchone()
            if taken is None:
                return None
            # Counted like a step, in one statement with its record (see steps.py).
            conn.execute(
                "WITH counted AS ("
                "  UPDATE durably_runs SET completed_step_count = completed_step_count + 1,"
                "   current_step_index = %(next)s, updated_at = %(now)s, stalled_claims = 0,"
                f"   stalled_step = NULL WHERE {LEASE_GUARD} RETURNING id) "
                "INSERT INTO durably_steps (run_id, name, step_index, status, output, "
                "started_at, completed_at, kind, attempts) SELECT id, %(name)s, %(index)s, "
                "'completed', %(payload)s, %(started)s, %(now)s, 'event', 1 FROM counted "
                f"{STEP_UPSERT}",
                {**params, "next": index + 1, "payload": taken["payload"], **guard(lease)},
            )
            payload: str = taken["payload"]
            return payload

    def send_event(self, run_id: str, name: str, payload_json: str, now: int) -> bool:
        with self._connection() as conn, conn.transaction():
            # FOR UPDATE: a claim or a suspension in flight finishes first, so the status
            # judged here is the newest, and a run suspending on this event afterwards
            # finds it in the mailbox (see suspend_run).
            row = conn.execute(
                "SELECT status FROM durably_runs WHERE id = %s FOR UPDATE", (run_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"run {run_id} not found")
            status = RunStatus(row["status"])
            if status.is_terminal:
                raise ConflictError(f"run {run_id} is already {status}; it takes no more events")
            conn.execute(
                "INSERT INTO durably_events (run_id, name, payload, created_at) "
                "VALUES (%s, %s, %s, %s)",
                (run_id, name, payload_json, now),
            )
            # A run waiting for this event is due now; the claim delivers it. Other
            # workers learn it at commit (a NOTIFY is delivered then, never before).
            woken = conn.execute(
                "UPDATE durably_runs SET wake_at = %(now)s, updated_at = %(now)s "
                f"WHERE id = %(id)s AND {_WAITS_FOR_EVENT} RETURNING {self._notify()}",
                {"now": now, "id": run_id, "name": name},
            ).fetchone()
            return woken is not None

    def wake_network_waits(self, now: int) -> int:
        rows = self._all(
            "WITH woken AS (UPDATE durably_runs SET wake_at = %(now)s, updated_at = %(now)s "
            "  WHERE status = 'waiting' AND wake_at IS NULL"
            "   AND (waiting_for::json ->> 'kind') = 'online' RETURNING id) "
            f"SELECT count(*) AS n, (SELECT {self._notify()}) FROM woken HAVING count(*) > 0",
            {"now": now},
        )
        return int(rows[0]["n"]) if rows else 0

    def next_wake_at(self, job_names: Sequence[str]) -> int | None:
        if not job_names:
            return None
        # Two index range scans (durably_runs_wake, durably_runs_run_at), each reading
        # its first entry: cheap however many runs wait. A read, no lock.
        row = self._one(
            "SELECT least("
            "  (SELECT min(wake_at) FROM durably_runs WHERE status = 'waiting'"
            "    AND wake_at IS NOT NULL AND job_name = ANY(%(jobs)s)),"
            "  (SELECT min(run_at) FROM durably_runs WHERE status = 'pending'"
            "    AND run_at IS NOT NULL AND job_name = ANY(%(jobs)s))) AS due",
            {"jobs": list(job_names)},
        )
        return None if row is None or row["due"] is None else int(row["due"])

    def resume_run(self, run_id: str, now: int) -> Run:
        with self._connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT status, concurrency_key FROM durably_runs WHERE id = %s FOR UPDATE",
                (run_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"run {run_id} not found")
            if row["status"] != "failed":
                raise ConflictError(
                    f"run {run_id} is {row['status']}; only a failed run can be resumed"
                )
            try:
                # The unique index of pending runs per key rejects a second pending run;
                # the error aborts this transaction, which rolls back having written nothing.
                resumed = conn.execute(
                    "UPDATE durably_runs SET status = 'pending', error = NULL, "
                    "completed_at = NULL, stalled_claims = 0, stalled_step = NULL, "
                    "run_at = NULL, wake_at = NULL, waiting_for = NULL, updated_at = %s "
                    "WHERE id = %s RETURNING *",
                    (now, run_id),
                ).fetchone()
            except psycopg.errors.UniqueViolation:
                raise ConflictError(
                    f"concurrency key {row['concurrency_key']!r} already has a pending run; "
                    f"run {run_id} cannot be resumed until it has started"
                ) from None
            # What did not complete runs afresh (a failed step gets all its attempts).
            conn.execute(
                "DELETE FROM durably_steps WHERE run_id = %s AND status <> 'completed'",
                (run_id,),
            )
            conn.execute(f"SELECT {self._notify()}")  # claimable now, like a trigger
            labels = conn.execute(
                "SELECT key, value FROM durably_run_labels WHERE run_id = %s", (run_id,)
            ).fetchall()
            assert resumed is not None
            return run_from_row(resumed, {r["key"]: r["value"] for r in labels})
