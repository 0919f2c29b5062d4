-- Listing runs newest first without a filter (what a runs view shows first) walks this
-- index backwards and stops after LIMIT rows, instead of sorting every run. Its
-- implicit rowid column also serves the tie-break (ORDER BY created_at, rowid).
CREATE INDEX durably_runs_created ON durably_runs (created_at);
