-- Issue 20: a full sync saves what it has read from WeCom as it goes (each department's
-- members, each tag), so a run interrupted half way resumes from here within the same
-- hour instead of reading everything again. Cleared when a run succeeds.
CREATE TABLE sync_checkpoints (
    tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    read_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, item_id)
);
