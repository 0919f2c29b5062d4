-- Listing runs newest first without a filter walks this index backwards and stops after
-- LIMIT rows, instead of sorting every run (seq is the tie-break, as rowid on SQLite).
CREATE INDEX durably_runs_created ON durably_runs (created_at, seq);
