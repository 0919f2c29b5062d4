"""Writes by the lease holder on PostgreSQL (fenced by generation), and reading steps
and logs back. Each write is a single statement carrying the lease guard (data-modifying
CTEs keep a step and its count in one statement), so a stale holder or a cancelled run
changes nothing and most calls cost one round trip. Inserts that only reference the run
(logs, failed steps) lock its row FOR SHARE, so they cannot land after a claim that
fenced the run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...models import LogRecord, RunStatus, StepKind, StepRecord
from ..base import Lease, NewLog
from ..rows import log_from_row, step_from_row
from ..sql import STEP_UPSERT
from .connection import LEASE_GUARD, PostgresConnection, guard

# The log lines of a write (%(logs)s: a JSON array, see `_logs_param`), inserted for each
# run id a CTE named `source` returned, i.e. only if the fenced write applied. ORDER BY
# the array position: ids follow the order the lines were written in.
_LOGGED = """, logged AS (
    INSERT INTO durably_logs (run_id, step_name, level, message, data, created_at)
    SELECT s.id, l->>'step', l->>'level', l->>'message', l->>'data', (l->>'created')::bigint
      FROM {source} s, jsonb_array_elements(%(logs)s::jsonb) WITH ORDINALITY AS e(l, n)
     ORDER BY n)"""


def _logs_param(logs: Sequence[NewLog]) -> str:
    return json.dumps(
        [
            {"step": x.step_name, "level": x.level, "message": x.message,
             "data": x.data_json, "created": x.created_at}
            for x in logs
        ]
    )  # fmt: skip


class PostgresSteps(PostgresConnection):
    def start_step(self, lease: Lease) -> bool:
        return (
            self._one(f"SELECT 1 AS ok FROM durably_runs WHERE {LEASE_GUARD}", guard(lease))
            is not None
        )

    def record_stalled_step(self, lease: Lease, name: str, now: int) -> bool:
        return self._write(
            f"UPDATE durably_runs SET stalled_step = %(name)s WHERE {LEASE_GUARD}",
            {"name": name, **guard(lease)},
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
        # One statement: the count, the step row and its logs commit together or not at
        # all, and the step is written only if the guarded UPDATE (which locks the run
        # row, so a concurrent claim waits or has already changed the generation) applied.
        logged = _LOGGED.format(source="counted") if logs else ""
        return self._write(
            "WITH counted AS ("
            "  UPDATE durably_runs SET completed_step_count = completed_step_count + 1,"
            "   current_step_index = %(next)s, progress = coalesce(%(progress)s, progress),"
            "   updated_at = %(now)s, stalled_claims = 0, stalled_step = NULL"
            f"  WHERE {LEASE_GUARD} RETURNING id){logged} "
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
                "logs": _logs_param(logs),
                **guard(lease),
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
        logs: Sequence[NewLog] = (),
    ) -> bool:
        # FOR SHARE: a claim's fence (an UPDATE of the run) waits for this insert, or this
        # insert waits for the fence and then finds the generation changed. Without the
        # lock, the check could read the run before a fence that commits first. The
        # step's logs are written in the same statement, only if the step row was.
        failed = (
            "INSERT INTO durably_steps (run_id, name, step_index, status, error, started_at, "
            "completed_at, kind, attempts, last_error) SELECT %(id)s, %(name)s, %(index)s, "
            "'failed', %(error)s, %(started)s, %(now)s, %(kind)s, %(attempts)s, %(error)s "
            f"WHERE EXISTS (SELECT 1 FROM durably_runs WHERE {LEASE_GUARD} FOR SHARE) "
            f"{STEP_UPSERT}"
        )
        if logs:
            failed = (
                f"WITH failed AS ({failed} RETURNING run_id AS id)"
                f"{_LOGGED.format(source='failed')} SELECT id FROM failed"
            )
        return self._write(
            failed,
            {
                "name": name,
                "index": index,
                "error": error,
                "started": started_at,
                "now": now,
                "kind": kind,
                "attempts": attempts,
                "logs": _logs_param(logs),
                **guard(lease),
            },
        )

    def update_progress(self, lease: Lease, progress_json: str, now: int) -> bool:
        return self._write(
            f"UPDATE durably_runs SET progress = %(progress)s, updated_at = %(now)s "
            f"WHERE {LEASE_GUARD}",
            {"progress": progress_json, "now": now, **guard(lease)},
        )

    def append_logs(self, lease: Lease, logs: Sequence[NewLog]) -> bool:
        # FOR SHARE for the same reason as in persist_step_failure; all lines or none.
        params: dict[str, Any] = {"logs": _logs_param(logs), **guard(lease)}
        return self._write(
            f"WITH held AS (SELECT id FROM durably_runs WHERE {LEASE_GUARD} FOR SHARE)"
            f"{_LOGGED.format(source='held')} SELECT 1 FROM held",
            params,
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
            f" WHERE {LEASE_GUARD} RETURNING id, concurrency_key){clear} "
            f"SELECT id, (SELECT {self._notify()} WHERE f.concurrency_key IS NOT NULL) "
            "FROM finished f",
            {
                "status": str(status),
                "value": value,
                "now": now,
                "progress": progress_json,
                **guard(lease),
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
