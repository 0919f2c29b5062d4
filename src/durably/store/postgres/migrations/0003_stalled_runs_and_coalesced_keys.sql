-- Poison runs: a run reclaimed again and again without finishing a step fails instead
-- of looping forever. Claims since the last finished step that found the run abandoned
-- (status still 'leased'); a finished step resets it to 0.
ALTER TABLE durably_runs ADD COLUMN stalled_claims INTEGER NOT NULL DEFAULT 0;
-- The step in flight while the run is recovering (stalled_claims > 0).
ALTER TABLE durably_runs ADD COLUMN stalled_step TEXT;

-- Idempotency keys of triggers that were coalesced into another run (which may belong
-- to another job: concurrency keys span jobs).
CREATE TABLE durably_idempotency_keys (
    job_name        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    run_id          TEXT NOT NULL REFERENCES durably_runs (id) ON DELETE CASCADE,
    PRIMARY KEY (job_name, idempotency_key)
);
CREATE INDEX durably_idempotency_keys_run ON durably_idempotency_keys (run_id);
