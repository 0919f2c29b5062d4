"""Leases in SQLite: the claim, renewal and expiry. Invariant kept: one claim per
generation, and at most one live holder per concurrency key; see "Why the claim is safe"
below and docs/adr/0005-claim-fences-stalled-holders-of-its-key.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..base import Claim, Lease
from ..sql import lease_guard, lease_params
from .database import SqliteDatabase
from .runs import runs_from_rows

# Why the claim is safe:
# - Single writer: the lease and the fence commit in one `BEGIN IMMEDIATE` transaction,
#   and SQLite admits one writer at a time. No renewal can slip between "the key looks
#   free" and "its stale holders are fenced"; a renewal that committed before the claim
#   made its lease live, so the claim does not pass over it. Two workers can never claim
#   the same generation: the transaction re-selects the run under the write lock.
# - Release in the same transaction: every other run of the claimed run's key whose
#   lease expired gets a new generation, so every fenced write of its (possibly only
#   stalled) holder changes nothing from then on.
# - Own runs are never released: `held` runs (those the claiming worker executes) are
#   neither claimed nor fenced, and block their key as a live lease does, whatever the
#   clock says about their expiry.
# - RETURNING hands back the claimed row from the UPDATE itself, so nothing committed by
#   others afterwards (a cancel) can confuse what was claimed.

# The oldest claimable run of the given jobs: pending and due (no `run_at`, or passed),
# leased with an expired lease, or waiting with `wake_at` passed; but never one the
# claiming worker executes itself (`held`). A run is skipped while another run of its
# concurrency key has a live lease, is held (a held run may look expired: its worker's
# event loop was blocked, but it is still executing) or is waiting (a waiting run is in
# progress and keeps its key). Another worker's expired lease neither blocks its key nor
# hides its run: the claim fences it.
#
# How it is found: for each job, its oldest eligible run, by a walk of
# durably_runs_claimable (the job's pending, leased and waiting runs by created_at,
# rowid) that stops at its first match; then the oldest of those few. Runs of jobs the
# caller does not run, and finished runs, are never read, however many there are (one
# shared walk by created_at would step over all of them on every idle poll). The result
# is the same run as one scan of every run in (created_at, rowid) order would choose.
# Named parameters: now, jobs (JSON array of job names), held (JSON array of run ids).
_ELIGIBLE_RUN = """
    SELECT r.id, r.status, r.waiting_for FROM durably_runs r
     WHERE r.rowid IN (
        SELECT (
            SELECT c.rowid FROM durably_runs c
             WHERE c.job_name = j.value AND c.status IN ('pending', 'leased', 'waiting')
               AND ((c.status = 'pending' AND (c.run_at IS NULL OR c.run_at <= :now))
                    OR (c.status = 'leased' AND c.lease_expires_at <= :now)
                    OR (c.status = 'waiting' AND c.wake_at <= :now))
               AND c.id NOT IN (SELECT value FROM json_each(:held))
               AND (c.concurrency_key IS NULL OR NOT EXISTS (
                    SELECT 1 FROM durably_runs o
                     WHERE o.concurrency_key = c.concurrency_key AND o.id != c.id
                       AND (o.status = 'waiting'
                            OR (o.status = 'leased'
                                AND (o.lease_expires_at > :now
                                     OR o.id IN (SELECT value FROM json_each(:held)))))))
             ORDER BY c.created_at, c.rowid
             LIMIT 1)
          FROM json_each(:jobs) j)
     ORDER BY r.created_at, r.rowid
     LIMIT 1"""

# Lease the run the eligible query chose (:id), read under the same write lock. SET
# expressions read the row as it was before the update, so `status = 'leased'` is true
# exactly when the previous holder abandoned the run: that claim counts as stalled. A
# waiting run's wait is over: what it waited for was read before (for run:wake).
_LEASE_RUN = """
    UPDATE durably_runs
       SET status = 'leased', lease_owner = :owner, lease_expires_at = :expires,
           lease_generation = lease_generation + 1,
           stalled_claims = stalled_claims + (status = 'leased'),
           wake_at = NULL, waiting_for = NULL,
           started_at = coalesce(started_at, :now), updated_at = :now
     WHERE id = :id
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


class SqliteLeases(SqliteDatabase):
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
        # Lease and fence in one write transaction (see "Why the claim is safe").
        with self._transaction() as conn:
            # Chosen and leased under one write lock: nobody can take it in between.
            chosen = conn.execute(_ELIGIBLE_RUN, params).fetchone()
            if chosen is None:
                return None
            row = conn.execute(_LEASE_RUN, {**params, "id": chosen["id"]}).fetchone()
            if row["concurrency_key"] is not None:
                conn.execute(
                    _FENCE_EXPIRED_RUNS_OF_KEY,
                    {**params, "key": row["concurrency_key"], "id": row["id"]},
                )
        run = runs_from_rows(self, [row])[0]
        return Claim(
            run,
            Lease(run.id, run.lease_generation, owner),
            row["stalled_claims"],
            row["stalled_step"],
            json.loads(chosen["waiting_for"]) if chosen["status"] == "waiting" else None,
        )

    def renew_lease(self, lease: Lease, now: int, lease_ms: int) -> bool:
        return self._write_one(
            "UPDATE durably_runs SET lease_expires_at = ?, updated_at = ? "
            f"WHERE {lease_guard('?')}",
            (now + lease_ms, now, *lease_params(lease)),
        )

    def expire_leases(self, now: int) -> int:
        # Only for a new sole owner (it holds the Web Lock, so no other holder is alive):
        # every leased run becomes claimable at once; the claim then fences as usual.
        return self._execute(
            "UPDATE durably_runs SET lease_expires_at = ?, updated_at = ? WHERE status = 'leased'",
            (now, now),
        ).rowcount
