-- Issue 17: an admin may cancel a running sync; the run stops before it applies anything.
ALTER TABLE sync_runs ADD COLUMN cancel_requested_by TEXT;
