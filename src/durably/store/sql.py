"""SQL text every store shares: the lease guard, run filters and the step upsert. Plain
standard SQL over the shared table layout; each dialect passes its placeholder ("?" for
sqlite3, "%s" for psycopg). Invariant kept: every write made for a lease holder carries
`lease_guard`, so a reclaimed or cancelled run changes nothing."""

from __future__ import annotations

from typing import Any

from .base import Lease, RunQuery


def lease_guard(placeholder: str) -> str:
    """The predicate every lease-holder write carries; its parameters are `lease_params`.

    A write applies only while the run is still `leased` under this generation: a claim
    by another worker (or the fence of a stalled holder) bumps the generation, a cancel
    changes the status, and either makes the write change nothing."""
    return f"id = {placeholder} AND lease_generation = {placeholder} AND status = 'leased'"


def lease_params(lease: Lease) -> tuple[str, int]:
    """The parameters of `lease_guard`, in order."""
    return (lease.run_id, lease.generation)


def run_filters(query: RunQuery, placeholder: str) -> tuple[str, list[Any]]:
    """`query`'s filters as a WHERE clause (empty without filters) and its parameters.
    Pagination and order are the dialect's."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.statuses:
        clauses.append(f"status IN ({', '.join([placeholder] * len(query.statuses))})")
        params.extend(str(s) for s in query.statuses)
    if query.job_names:
        clauses.append(f"job_name IN ({', '.join([placeholder] * len(query.job_names))})")
        params.extend(query.job_names)
    for key, value in query.labels.items():
        clauses.append(
            "id IN (SELECT run_id FROM durably_run_labels "
            f"WHERE key = {placeholder} AND value = {placeholder})"
        )
        params.extend((key, value))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


# Step rows are keyed by (run_id, name); a new attempt overwrites the previous one, but
# the last error of a failed attempt is kept when a later one completes. A completed or
# failed record has no deadline (wake_at); `suspend_run` sets it.
STEP_UPSERT = (
    "ON CONFLICT (run_id, name) DO UPDATE SET step_index = excluded.step_index, "
    "status = excluded.status, output = excluded.output, error = excluded.error, "
    "started_at = excluded.started_at, "
    "completed_at = excluded.completed_at, kind = excluded.kind, "
    "attempts = excluded.attempts, "
    "last_error = coalesce(excluded.last_error, durably_steps.last_error), wake_at = NULL"
)
