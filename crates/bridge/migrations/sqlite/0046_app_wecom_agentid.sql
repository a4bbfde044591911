-- A catalogue app bound to its own WeCom self-built app (issue 14): the agentid of its
-- integration (wecom_integrations, role 'app', same tenant). NULL: opened through the
-- workbench only. One WeCom app serves at most one catalogue app.
ALTER TABLE apps ADD COLUMN wecom_agentid BIGINT;
CREATE UNIQUE INDEX apps_wecom_agentid ON apps (tenant_id, wecom_agentid) WHERE wecom_agentid IS NOT NULL;
