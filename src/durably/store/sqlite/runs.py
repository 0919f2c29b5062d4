"""Creating and reading runs in SQLite: triggers (idempotency and concurrency keys,
coalescing), lookups, filtered lists and counts. Invariant kept: at most one pending run
per concurrency key, and an idempotency key names one run per job, decided inside one
write transaction so that two triggers cannot both create."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ...errors import ConflictError, NotFoundError
from ...models import Disposition, Run, RunStatus
from ..base import NewRun, RunQuery
from ..rows import run_from_row
from ..sql import run_filters
from .database import SqliteDatabase


class SqliteRuns(SqliteDatabase):
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
                    return require_run(self, row[0]), "idempotent"
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
                    return require_run(self, row[0]), "coalesced"
                if row:
                    raise ConflictError(
                        f"concurrency key {new.concurrency_key!r} already has a pending run "
                        f"({row[0]}); pass coalesce='skip' to reuse it"
                    )
            conn.execute(
                "INSERT INTO durably_runs (id, job_name, input, status, idempotency_key, "
                "concurrency_key, run_at, created_at, updated_at) "
                "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
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
            )
            conn.executemany(
                "INSERT INTO durably_run_labels (run_id, key, value) VALUES (?, ?, ?)",
                [(new.id, k, v) for k, v in new.labels.items()],
            )
            return require_run(self, new.id), "created"

    def get_run(self, run_id: str) -> Run | None:
        return find_run(self, run_id)

    def get_runs(self, query: RunQuery) -> list[Run]:
        where, params = run_filters(query, "?")
        sql = f"SELECT * FROM durably_runs{where} ORDER BY created_at DESC, rowid DESC"
        if query.limit is not None or query.offset is not None:
            sql += " LIMIT ? OFFSET ?"
            params.extend((-1 if query.limit is None else query.limit, query.offset or 0))
        return runs_from_rows(self, self._execute(sql, params).fetchall())

    def count_runs(self, query: RunQuery) -> int:
        where, params = run_filters(query, "?")
        return int(self._execute(f"SELECT count(*) FROM durably_runs{where}", params).fetchone()[0])

    def get_statuses(self, run_ids: Sequence[str]) -> dict[str, RunStatus]:
        if not run_ids:
            return {}
        rows = self._execute(
            "SELECT id, status FROM durably_runs WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(run_ids)),),
        ).fetchall()
        return {row[0]: RunStatus(row[1]) for row in rows}


# Shared with the other parts of the store that return runs (claims, cancels, deletes).


def find_run(db: SqliteDatabase, run_id: str) -> Run | None:
    row = db._execute("SELECT * FROM durably_runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else runs_from_rows(db, [row])[0]


def require_run(db: SqliteDatabase, run_id: str) -> Run:
    run = find_run(db, run_id)
    if run is None:
        raise NotFoundError(f"run {run_id} not found")
    return run


def runs_from_rows(db: SqliteDatabase, rows: list[sqlite3.Row]) -> list[Run]:
    """`durably_runs` rows as runs, with their labels (one query for all of them)."""
    if not rows:
        return []
    labels: dict[str, dict[str, str]] = {r["id"]: {} for r in rows}
    for run_id, key, value in db._execute(
        "SELECT run_id, key, value FROM durably_run_labels "
        "WHERE run_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(labels)),),
    ):
        labels[run_id][key] = value
    return [run_from_row(r, labels[r["id"]]) for r in rows]
