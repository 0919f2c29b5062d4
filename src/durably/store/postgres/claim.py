"""The claim on PostgreSQL: many worker processes lease runs from one table at once.

Default isolation (READ COMMITTED), no SERIALIZABLE retries. Each statement sees what
was committed when it started; row locks (`FOR UPDATE`, `SKIP LOCKED`) and one
transaction-scoped advisory lock per concurrency key supply the rest. The argument for
each step sits next to its SQL; docs/adr/0008-postgres-claim.md tells the whole story.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

#: First half of the two-int advisory lock key: keeps our per-key locks apart from any
#: advisory locks the application takes on the same database (the second half is
#: hashtext(concurrency_key); two keys that collide only serialize each other's claims).
KEY_LOCK_CLASS = 0x6475  # "du"

#: Candidates a claim tries before it reports nothing eligible this time. Losing a
#: candidate means another worker just claimed it (or its key); after this many losses
#: in a row the worker retries on its next wake-up (a claim or finish elsewhere notifies).
MAX_CANDIDATES = 16

# Claimable now: pending and due (no `run_at`, or passed), leased by a holder whose
# lease expired, or waiting with `wake_at` passed; of the caller's jobs; never one the
# caller executes itself (`held`). Parameters: now, jobs, held. Written for a table
# alias `r`; CLAIM_KEYED reuses it on the bare table name. The status list repeats what
# _DUE implies, so that the planner may use the partial index durably_runs_claimable.
_DUE = """
    ((r.status = 'pending' AND (r.run_at IS NULL OR r.run_at <= %(now)s))
     OR (r.status = 'leased' AND r.lease_expires_at <= %(now)s)
     OR (r.status = 'waiting' AND r.wake_at <= %(now)s))"""
_CLAIMABLE = f"""{_DUE}
    AND r.status IN ('pending', 'leased', 'waiting')
    AND r.job_name = ANY(%(jobs)s) AND NOT (r.id = ANY(%(held)s))"""

# The oldest candidate, by a plain read (no lock, no write): an idle poll is this one
# statement. The key check here is only a filter for likely candidates; the decision is
# taken again under locks below. A run is passed over while another run of its key has a
# live lease, is held by the caller (its lease may look expired: the caller's event loop
# was blocked, but it still executes the run) or is waiting (a waiting run is in progress
# and keeps its key, though it holds no lease).
FIND_CANDIDATE = f"""
    SELECT r.id, r.concurrency_key FROM durably_runs r
     WHERE {_CLAIMABLE}
       AND NOT (r.id = ANY(%(skip)s))
       AND (r.concurrency_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM durably_runs o
             WHERE o.concurrency_key = r.concurrency_key AND o.id <> r.id
               AND (o.status = 'waiting'
                    OR (o.status = 'leased'
                        AND (o.lease_expires_at > %(now)s OR o.id = ANY(%(held)s))))))
     ORDER BY r.created_at, r.seq
     LIMIT 1"""

# Runs without a concurrency key: one statement. The subquery locks the oldest claimable
# keyless run with FOR UPDATE SKIP LOCKED, so concurrent claimers each lock a different
# row and never wait on each other. Under READ COMMITTED a row updated after the
# statement's snapshot is re-read before it is locked and the WHERE clause is checked
# again on its newest version (a run claimed meanwhile is now leased with a live lease:
# it fails the check and the scan moves on). The lock is held until the UPDATE commits,
# so no second claimer can lease the same generation. The subquery is a plain scalar
# subquery, not a CTE: it cannot serve a stale snapshot row to the UPDATE. SET reads the
# locked (newest) version, so `status = 'leased'` is true exactly when the previous
# holder abandoned the run: that claim counts as stalled.
#
# A waiting run's wait is over: `wake_at` is cleared. Its `waiting_for` is what the
# caller reports as `Claim.woken_from`, and RETURNING shows only the new row, so the
# claim keeps `waiting_for` exactly when it woke a waiting run and clears it otherwise
# (SET reads the locked version, like the stalled count). A second statement to read it
# first would cost every claim a round trip. Nothing reads `waiting_for` of a run that
# is not waiting (rows.run_from_row, the wake-ups and the claim all test the status),
# and the run's next suspension, finish, cancel or claim replaces it.
_LEASE = """
    UPDATE durably_runs
       SET status = 'leased', lease_owner = %(owner)s, lease_expires_at = %(expires)s,
           lease_generation = lease_generation + 1,
           stalled_claims = stalled_claims + (status = 'leased')::int,
           wake_at = NULL,
           waiting_for = CASE WHEN status = 'waiting' THEN waiting_for END,
           started_at = coalesce(started_at, %(now)s), updated_at = %(now)s"""

CLAIM_UNKEYED = f"""{_LEASE}
     WHERE id = (
        SELECT r.id FROM durably_runs r
         WHERE {_CLAIMABLE} AND r.concurrency_key IS NULL
         ORDER BY r.created_at, r.seq
         LIMIT 1
           FOR UPDATE SKIP LOCKED)
    RETURNING *"""

# Runs with a concurrency key: a short transaction of four statements.
#
# 1. Serialize every claim of the key: pg_advisory_xact_lock, held until commit. All
#    claims of a key take it before they read or lock any row of the key, so the lock
#    order is always advisory lock, then rows: no deadlock between claimers.
LOCK_KEY = "SELECT pg_advisory_xact_lock(%(class)s, hashtext(%(key)s))"

# 2. Lock every leased or waiting run of the key. This statement starts after the
#    advisory lock was granted, so its snapshot holds every earlier claim of the key
#    (committed before its lock was released): no run of the key can be leased without
#    us seeing it (only a claim leases, and claims of the key queue on the lock). A run
#    becomes waiting only from leased (a holder's suspension): a leased run we lock here
#    cannot suspend until we commit, and one that suspended before this statement
#    started is waiting in its snapshot. FOR UPDATE waits for a holder's write in flight
#    (a renewal, a suspension) and returns the row as that write left it; from now on no
#    holder of the key can renew or suspend, and we judge each run on its newest version
#    (a row updated since the snapshot is re-read and re-checked, so a run that just
#    left `waiting` or `leased` drops out).
LOCK_LEASED_OF_KEY = """
    SELECT id, status, lease_expires_at FROM durably_runs
     WHERE concurrency_key = %(key)s AND status IN ('leased', 'waiting')
     ORDER BY id
       FOR UPDATE"""

# 3. Lease the candidate if it is still claimable (a cancel or trigger may have changed it:
#    the row is locked and re-read by the UPDATE itself).
_DUE_HERE = _DUE.replace("r.", "durably_runs.")
CLAIM_KEYED = f"""{_LEASE}
      FROM (SELECT %(id)s::text AS id) c
     WHERE durably_runs.id = c.id
       AND {_DUE_HERE}
       AND NOT (durably_runs.id = ANY(%(held)s))
    RETURNING durably_runs.*"""

# 4. Fence the key's other leased runs (all expired: step 2 found no live lease and no
#    waiting run), as on SQLite (ADR 0005): a new generation and no owner, status and
#    expiry unchanged. Their rows are locked since step 2, so no renewal or suspension
#    slipped in between; their stalled holders can write nothing from now on. Committed
#    together with the lease.
FENCE_EXPIRED_OF_KEY = """
    UPDATE durably_runs
       SET lease_generation = lease_generation + 1, lease_owner = NULL, updated_at = %(now)s
     WHERE id = ANY(%(fenced)s)"""


def claim_row(
    conn: psycopg.Connection[Any],
    owner: str,
    now: int,
    lease_ms: int,
    job_names: Sequence[str],
    held: Sequence[str],
) -> dict[str, Any] | None:
    """Lease the oldest eligible run on `conn` (autocommit) and return its row."""
    params: dict[str, Any] = {
        "now": now,
        "jobs": list(job_names),
        "held": list(held),
        "owner": owner,
        "expires": now + lease_ms,
        "skip": [],
        "class": KEY_LOCK_CLASS,
    }
    for _ in range(MAX_CANDIDATES):
        candidate = conn.execute(FIND_CANDIDATE, params).fetchone()
        if candidate is None:
            return None
        if candidate["concurrency_key"] is None:
            row: dict[str, Any] | None = conn.execute(CLAIM_UNKEYED, params).fetchone()
            if row is not None:
                return row
            continue  # every keyless run was taken by others meanwhile; look again
        keyed = {**params, "id": candidate["id"], "key": candidate["concurrency_key"]}
        row = _claim_keyed(conn, keyed)
        if row is not None:
            return row
        params["skip"] = [*params["skip"], candidate["id"]]
    return None


def _claim_keyed(conn: psycopg.Connection[Any], params: dict[str, Any]) -> dict[str, Any] | None:
    # Nothing is written unless the lease applies; an early return commits a transaction
    # that only read and locked, which releases the locks like a rollback would.
    with conn.transaction():
        conn.execute(LOCK_KEY, params)
        leased = conn.execute(LOCK_LEASED_OF_KEY, params).fetchall()
        others = [r for r in leased if r["id"] != params["id"]]
        now = params["now"]
        if any(
            r["status"] == "waiting" or r["lease_expires_at"] > now or r["id"] in params["held"]
            for r in others
        ):
            return None
        row: dict[str, Any] | None = conn.execute(CLAIM_KEYED, params).fetchone()
        if row is None:
            return None
        if others:
            conn.execute(FENCE_EXPIRED_OF_KEY, {**params, "fenced": [r["id"] for r in others]})
        return row
