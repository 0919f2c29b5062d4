"""The SQLite claim query is served by durably_runs_claimable: an idle poll reads no run
of a job the worker does not run, however many of them are pending."""

from __future__ import annotations

import json
from pathlib import Path

from durably.store import SqliteStore
from durably.store.sqlite.leases import _ELIGIBLE_RUN


def test_the_claim_query_walks_the_claimable_index(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "plan.db"))
    try:
        store.migrate()
        params = {"now": 0, "jobs": json.dumps(["a", "b"]), "held": json.dumps([])}
        plan = [
            row[3] for row in store._conn.execute(f"EXPLAIN QUERY PLAN {_ELIGIBLE_RUN}", params)
        ]
    finally:
        store.close()
    assert "SEARCH c USING INDEX durably_runs_claimable (job_name=?)" in plan
    # The outer lookup is by rowid; nothing scans the runs table or sorts it per job.
    assert not [step for step in plan if step.startswith("SCAN r") or step.startswith("SCAN c")]
    assert plan.count("USE TEMP B-TREE FOR ORDER BY") <= 1  # only the few candidates


def test_pending_runs_of_other_jobs_are_not_read(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "idle.db"))
    try:
        store.migrate()
        store._conn.executemany(
            "INSERT INTO durably_runs (id, job_name, input, status, created_at, updated_at) "
            "VALUES (?, 'other', '{}', 'pending', ?, ?)",
            [(f"run-{i}", i, i) for i in range(2_000)],
        )
        store._conn.execute(
            "INSERT INTO durably_runs (id, job_name, input, status, created_at, updated_at) "
            "VALUES ('mine', 'mine', '{}', 'pending', 5000, 5000)"
        )
        steps: list[int] = []
        store._conn.set_progress_handler(lambda: steps.append(1), 100)
        claim = store.claim_next("w", 10_000, 1_000, ["mine"])
        store._conn.set_progress_handler(None, 0)
    finally:
        store.close()
    assert claim is not None and claim.run.id == "mine"
    # A scan of 2,000 runs takes tens of thousands of VM steps; the claim takes a few hundred.
    assert len(steps) * 100 < 5_000
