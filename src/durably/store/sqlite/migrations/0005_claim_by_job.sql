-- The claim looks for the oldest claimable run of each job the worker runs: this index
-- holds the runs that may be claimable (pending, leased, waiting) by job, oldest first,
-- so each lookup is a walk that stops at its first eligible run, and runs of other jobs
-- (say 50,000 pending runs no worker here knows) cost an idle poll nothing. Partial:
-- finished runs are not in it, however many are kept.
-- Its implicit rowid column serves the tie-break (ORDER BY created_at, rowid).
CREATE INDEX durably_runs_claimable ON durably_runs (job_name, created_at)
    WHERE status IN ('pending', 'leased', 'waiting');
