-- Runs can wait: for a time (sleep, a retry's delay), an event, or the network. A
-- waiting run holds no lease; it becomes claimable again at `wake_at` (or when its
-- event arrives, or the network returns). See docs/adr/0006-waiting-runs.md.

-- When a waiting run becomes claimable (epoch ms); NULL: no time (an event without a
-- timeout, the network).
ALTER TABLE durably_runs ADD COLUMN wake_at INTEGER;
-- What a waiting run waits for: JSON {"kind": "sleep|event|online|retry", "name", "until"}.
ALTER TABLE durably_runs ADD COLUMN waiting_for TEXT;
-- A delayed pending run is not claimable before this time (epoch ms); NULL: at once.
ALTER TABLE durably_runs ADD COLUMN run_at INTEGER;

-- Step records also hold waits (their names share one namespace per run).
ALTER TABLE durably_steps ADD COLUMN kind TEXT NOT NULL DEFAULT 'step'
    CHECK (kind IN ('step', 'sleep', 'event', 'online'));
-- Attempts made so far (a step with retries), and the error of the last failed one.
ALTER TABLE durably_steps ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE durably_steps ADD COLUMN last_error TEXT;
-- The deadline of a wait in progress (a sleep's end, an event's timeout, a retry's next
-- attempt): stored at its first encounter, so a restart waits only what remains.
ALTER TABLE durably_steps ADD COLUMN wake_at INTEGER;

-- The mailbox: events sent to a run, kept until a wait of that name takes them. Each is
-- delivered once (delivered_at set in the transaction that records the wait's outcome).
CREATE TABLE durably_events (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT    NOT NULL REFERENCES durably_runs (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX durably_events_undelivered ON durably_events (run_id, name, id)
    WHERE delivered_at IS NULL;

-- The scheduler's timer reads the next due time of waiting and delayed runs.
CREATE INDEX durably_runs_wake ON durably_runs (status, wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX durably_runs_run_at ON durably_runs (status, run_at) WHERE run_at IS NOT NULL;

-- Widen the status CHECKs of runs and steps by 'waiting' in place. SQLite cannot alter a
-- CHECK; rebuilding durably_runs would cascade-delete its steps, logs and labels (foreign
-- keys are on, and cannot be turned off inside the migration's transaction). Loosening a
-- CHECK changes no stored row, so SQLite documents editing the table's definition under
-- writable_schema for it; the migration runner then bumps schema_version (so every
-- connection re-reads the definition) and turns writable_schema off, in this transaction.
PRAGMA writable_schema = ON;
UPDATE sqlite_master SET sql = replace(sql, '''cancelled''))', '''cancelled'', ''waiting''))')
 WHERE type = 'table' AND name IN ('durably_runs', 'durably_steps');
