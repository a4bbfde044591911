-- Directory sync: run records, the callback inbox, identities retired by the switch
-- from a third-party app. Times are Unix milliseconds.

-- One row per sync run (full, dry run, incremental, switch). Progress columns are
-- updated while it runs so any instance can show a progress bar.
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    run_trigger TEXT NOT NULL,              -- wizard | console | schedule | callback | cli
    kind TEXT NOT NULL,                  -- full | dry_run | incremental
    status TEXT NOT NULL,                -- running | succeeded | failed | blocked | interrupted
    phase TEXT NOT NULL DEFAULT '',
    progress_done BIGINT NOT NULL DEFAULT 0,
    progress_total BIGINT NOT NULL DEFAULT 0,
    users_added BIGINT NOT NULL DEFAULT 0,
    users_updated BIGINT NOT NULL DEFAULT 0,
    users_disabled BIGINT NOT NULL DEFAULT 0,
    users_moved BIGINT NOT NULL DEFAULT 0,
    api_calls BIGINT NOT NULL DEFAULT 0,
    api_calls_json TEXT NOT NULL DEFAULT '{}',
    report_json TEXT,
    error TEXT,
    forced BOOLEAN NOT NULL DEFAULT FALSE,
    actor TEXT NOT NULL DEFAULT '',
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX sync_runs_tenant ON sync_runs (tenant_id, id);

-- change_contact callbacks, stored before WeCom gets its 200 and applied afterwards.
-- Deduplicated on the SHA-256 of the decrypted XML (WeCom's own keys are too weak);
-- applied rows are kept at least 24 hours so retries within that window are recognised.
CREATE TABLE callback_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    xml_sha256 TEXT NOT NULL,
    change_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,                -- pending | applied | failed
    error TEXT,
    received_at BIGINT NOT NULL,
    applied_at BIGINT,
    UNIQUE (tenant_id, xml_sha256)
);
CREATE INDEX callback_events_pending ON callback_events (status, tenant_id, id);

-- Third-party identities replaced when the tenant switched to the self-built app: kept
-- for the record, no longer usable for sign-in.
CREATE TABLE retired_identities (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    corpid TEXT NOT NULL,
    external_id TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    display_id TEXT NOT NULL,
    source_agentid BIGINT,
    relinked_userid TEXT,                -- the self-built userid it was converted to, if any
    retired_at BIGINT NOT NULL,
    run_id BIGINT,
    PRIMARY KEY (tenant_id, kind, corpid, external_id)
);
