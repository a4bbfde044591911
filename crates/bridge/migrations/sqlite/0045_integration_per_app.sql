-- One integration per WeCom app, not per tenant (issue 13 item 1). Keyed by
-- (tenant, agentid); `role` is 'main' (the workbench app the directory follows) or
-- 'app' (a model app's own self-built app); at most one main app per tenant.
-- Existing rows become the tenant's main app. SQL cannot decrypt, so their sealed values
-- keep the old associated data (`seal_version` 1: `tenant:T:wecom.FIELD`); the bridge
-- re-seals them under `tenant:T:wecom:AGENTID:FIELD` (version 2) when it opens the store.
-- SQLite cannot change a primary key in place: the table is rebuilt.
CREATE TABLE wecom_integrations_v2 (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    agentid BIGINT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('main', 'app')),
    corpid TEXT NOT NULL,
    secret_sealed BLOB NOT NULL,
    callback_token_sealed BLOB NOT NULL,
    callback_aes_key_sealed BLOB NOT NULL,
    seal_version INTEGER NOT NULL CHECK (seal_version IN (1, 2)),
    agent_json TEXT,
    verified_at BIGINT,
    callback_verified_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, agentid)
);

INSERT INTO wecom_integrations_v2 (tenant_id, agentid, role, corpid, secret_sealed, callback_token_sealed,
    callback_aes_key_sealed, seal_version, agent_json, verified_at, callback_verified_at, updated_at)
SELECT tenant_id, agentid, 'main', corpid, secret_sealed, callback_token_sealed,
    callback_aes_key_sealed, 1, agent_json, verified_at, callback_verified_at, updated_at
FROM wecom_integrations;

DROP TABLE wecom_integrations;
ALTER TABLE wecom_integrations_v2 RENAME TO wecom_integrations;

CREATE UNIQUE INDEX wecom_integrations_one_main ON wecom_integrations (tenant_id) WHERE role = 'main';
