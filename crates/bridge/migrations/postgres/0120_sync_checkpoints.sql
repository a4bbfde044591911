-- Issue 20: a full sync saves what it has read from WeCom as it goes (each department's
-- members, each tag), so a run interrupted half way resumes from here within the same
-- hour instead of reading everything again. Cleared when a run succeeds.
CREATE TABLE sync_checkpoints (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    item_id BIGINT NOT NULL,
    run_id BIGINT NOT NULL,
    read_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, item_id)
);
