-- Runs can wait: for a time (sleep, a retry's delay), an event, or the network. A
-- waiting run holds no lease; it becomes claimable again at `wake_at` (or when its
-- event arrives, or the network returns). The PostgreSQL dialect of SQLite's migration
-- 0004; see docs/adr/0006-waiting-runs.md.

-- When a waiting run becomes claimable (epoch ms); NULL: no time (an event without a
-- timeout, the network).
ALTER TABLE durably_runs ADD COLUMN wake_at BIGINT;
-- What a waiting run waits for: JSON {"kind": "sleep|event|online|retry", "name", "until"}.
ALTER TABLE durably_runs ADD COLUMN waiting_for TEXT;
-- A delayed pending run is not claimable before this time (epoch ms); NULL: at once.
ALTER TABLE durably_runs ADD COLUMN run_at BIGINT;

-- Step records also hold waits (their names share one namespace per run).
ALTER TABLE durably_steps ADD COLUMN kind TEXT NOT NULL DEFAULT 'step'
    CHECK (kind IN ('step', 'sleep', 'event', 'online'));
-- Attempts made so far (a step with retries), and the error of the last failed one.
ALTER TABLE durably_steps ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE durably_steps ADD COLUMN last_error TEXT;
-- The deadline of a wait in progress (a sleep's end, an event's timeout, a retry's next
-- attempt): stored at its first encounter, so a restart waits only what remains.
ALTER TABLE durably_steps ADD COLUMN wake_at BIGINT;

-- The mailbox: events sent to a run, kept until a wait of that name takes them. Each is
-- delivered once (delivered_at set in the statement that records the wait's outcome).
CREATE TABLE durably_events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       TEXT    NOT NULL REFERENCES durably_runs (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX durably_events_undelivered ON durably_events (run_id, name, id)
    WHERE delivered_at IS NULL;

-- The scheduler's timer reads the next due time of waiting and delayed runs.
CREATE INDEX durably_runs_wake ON durably_runs (status, wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX durably_runs_run_at ON durably_runs (status, run_at) WHERE run_at IS NOT NULL;

-- Widen the status CHECKs of runs and steps by 'waiting'. Unlike SQLite, PostgreSQL
-- replaces a CHECK in place: the new one only loosens the old, so every stored row
-- passes it (the check still scans the table once, inside this transaction).
ALTER TABLE durably_runs DROP CONSTRAINT durably_runs_status_check,
    ADD CONSTRAINT durably_runs_status_check
    CHECK (status IN ('pending', 'leased', 'completed', 'failed', 'cancelled', 'waiting'));
ALTER TABLE durably_steps DROP CONSTRAINT durably_steps_status_check,
    ADD CONSTRAINT durably_steps_status_check
    CHECK (status IN ('completed', 'failed', 'cancelled', 'waiting'));
