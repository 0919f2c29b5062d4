"""Stored rows to models, for every SQL store: a row is anything indexable by column name
(`sqlite3.Row`, a psycopg dict row). Times are stored as integer epoch milliseconds (UTC)
and JSON columns as JSON text; both are decoded here and nowhere else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from ..encoding import from_json
from ..models import (
    LogRecord,
    Progress,
    Run,
    RunStatus,
    StepRecord,
    _json_safe,
    ms_to_datetime,
)


class Row(Protocol):
    """A result row read by column name."""

    def __getitem__(self, column: str, /) -> Any: ...


def run_from_row(row: Row, labels: dict[str, str]) -> Run:
    """A `durably_runs` row (every column) with the run's labels."""
    progress = from_json(row["progress"])
    waiting = row["status"] == "waiting"
    return Run(
        id=row["id"],
        job_name=row["job_name"],
        input=from_json(row["input"]),
        status=RunStatus(row["status"]),
        idempotency_key=row["idempotency_key"],
        concurrency_key=row["concurrency_key"],
        labels=labels,
        current_step_index=row["current_step_index"],
        completed_step_count=row["completed_step_count"],
        progress=Progress(**progress) if progress else None,
        output=from_json(row["output"]),
        error=row["error"],
        lease_owner=row["lease_owner"],
        lease_expires_at=ms_to_datetime(row["lease_expires_at"]),
        lease_generation=row["lease_generation"],
        started_at=ms_to_datetime(row["started_at"]),
        completed_at=ms_to_datetime(row["completed_at"]),
        created_at=_datetime(row["created_at"]),
        updated_at=_datetime(row["updated_at"]),
        wake_at=ms_to_datetime(row["wake_at"]) if waiting else None,
        waiting_for=waiting_for_from_json(row["waiting_for"]) if waiting else None,
        run_at=ms_to_datetime(row["run_at"]),
    )


def waiting_for_from_json(text: str | None) -> dict[str, Any] | None:
    """A stored `waiting_for` with its `until` (ms) as an ISO-8601 UTC string."""
    value = from_json(text)
    if not isinstance(value, dict):
        return None
    until = value.get("until")
    return {**value, "until": None if until is None else _json_safe(ms_to_datetime(until))}


def step_from_row(row: Row) -> StepRecord:
    """A `durably_steps` row (every column)."""
    return StepRecord(
        run_id=row["run_id"],
        name=row["name"],
        index=row["step_index"],
        status=row["status"],
        output=from_json(row["output"]),
        error=row["error"],
        started_at=_datetime(row["started_at"]),
        completed_at=ms_to_datetime(row["completed_at"]),
        kind=row["kind"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        wake_at=ms_to_datetime(row["wake_at"]),
    )


def log_from_row(row: Row) -> LogRecord:
    """A `durably_logs` row (every column)."""
    return LogRecord(
        id=row["id"],
        run_id=row["run_id"],
        step_name=row["step_name"],
        level=row["level"],
        message=row["message"],
        data=from_json(row["data"]),
        created_at=_datetime(row["created_at"]),
    )


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
