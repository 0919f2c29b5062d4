-- Runs, their steps, logs and labels: the PostgreSQL dialect of the SQLite schema of the
-- same version. Times are integer epoch milliseconds (UTC, from the runtime's clock, as
-- on SQLite); JSON columns hold strict JSON text, so rows map to models the same way.

CREATE TABLE durably_runs (
    id                   TEXT PRIMARY KEY,
    -- Insertion order: the tie-break of runs created in the same millisecond (SQLite's
    -- rowid plays this part there).
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY,
    job_name             TEXT    NOT NULL,
    input                TEXT    NOT NULL,
    status               TEXT    NOT NULL
        CHECK (status IN ('pending', 'leased', 'completed', 'failed', 'cancelled')),
    idempotency_key      TEXT,
    concurrency_key      TEXT,
    current_step_index   INTEGER NOT NULL DEFAULT 0,
    completed_step_count INTEGER NOT NULL DEFAULT 0,
    progress             TEXT,
    output               TEXT,
    error                TEXT,
    lease_owner          TEXT,
    lease_expires_at     BIGINT,
    -- Incremented by every claim; every write by a lease holder is guarded by it.
    lease_generation     INTEGER NOT NULL DEFAULT 0,
    started_at           BIGINT,
    completed_at         BIGINT,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);

-- An idempotency key names one run per job, forever (until the run is deleted).
CREATE UNIQUE INDEX durably_runs_idempotency
    ON durably_runs (job_name, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- At most one pending run per concurrency key, enforced against every process.
CREATE UNIQUE INDEX durably_runs_one_pending_per_key
    ON durably_runs (concurrency_key) WHERE concurrency_key IS NOT NULL AND status = 'pending';

-- Claim scans eligible runs oldest first.
CREATE INDEX durably_runs_claim ON durably_runs (status, created_at, seq);
CREATE INDEX durably_runs_concurrency ON durably_runs (concurrency_key, status)
    WHERE concurrency_key IS NOT NULL;
CREATE INDEX durably_runs_job ON durably_runs (job_name, created_at);
-- Purge and retention scan terminal runs by completion time.
CREATE INDEX durably_runs_completed ON durably_runs (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE durably_steps (
    run_id       TEXT    NOT NULL REFERENCES durably_runs (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    step_index   INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
    output       TEXT,
    error        TEXT,
    started_at   BIGINT  NOT NULL,
    completed_at BIGINT,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE durably_logs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     TEXT    NOT NULL REFERENCES durably_runs (id) ON DELETE CASCADE,
    step_name  TEXT,
    level      TEXT    NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message    TEXT    NOT NULL,
    data       TEXT,
    created_at BIGINT  NOT NULL
);
CREATE INDEX durably_logs_run ON durably_logs (run_id, id);

CREATE TABLE durably_run_labels (
    run_id TEXT NOT NULL REFERENCES durably_runs (id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
-- Filtering runs by label looks up (key, value) first.
CREATE INDEX durably_run_labels_lookup ON durably_run_labels (key, value, run_id);
