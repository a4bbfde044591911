-- One integration per WeCom app, not per tenant (issue 13 item 1). Keyed by
-- (tenant, agentid); `role` is 'main' (the workbench app the directory follows) or
-- 'app' (a model app's own self-built app); at most one main app per tenant.
-- Existing rows become the tenant's main app. SQL cannot decrypt, so their sealed values
-- keep the old associated data (`seal_version` 1: `tenant:T:wecom.FIELD`); the bridge
-- re-seals them under `tenant:T:wecom:AGENTID:FIELD` (version 2) when it opens the store.
ALTER TABLE wecom_integrations ADD COLUMN role TEXT NOT NULL DEFAULT 'main'
    CHECK (role IN ('main', 'app'));
ALTER TABLE wecom_integrations ALTER COLUMN role DROP DEFAULT;
ALTER TABLE wecom_integrations ADD COLUMN seal_version INTEGER NOT NULL DEFAULT 1
    CHECK (seal_version IN (1, 2));
ALTER TABLE wecom_integrations ALTER COLUMN seal_version DROP DEFAULT;

ALTER TABLE wecom_integrations DROP CONSTRAINT wecom_integrations_pkey;
ALTER TABLE wecom_integrations ADD PRIMARY KEY (tenant_id, agentid);

CREATE UNIQUE INDEX wecom_integrations_one_main ON wecom_integrations (tenant_id) WHERE role = 'main';
