-- The claim reads only runs of the jobs the worker runs that may be claimable: this
-- index finds them without reading runs of other jobs (say 50,000 pending runs no
-- worker here knows) or finished runs. Partial: finished runs are not in it, however
-- many are kept.
CREATE INDEX durably_runs_claimable ON durably_runs (job_name, created_at, seq)
    WHERE status IN ('pending', 'leased', 'waiting');
