-- Issue 20: fields WeCom withholds from the directory API (apps created after 2022-06-20),
-- filled from auth/getuserdetail when a member consents at an in-client sign-in.

-- The tenant's opt-in (off unless a row says otherwise).
CREATE TABLE wecom_consent_settings (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants(id),
    enabled BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

-- One value per (user, field), with where it came from and when. Directory sync never
-- writes this table, so a sync that cannot see a field cannot erase it.
CREATE TABLE user_consented_fields (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    field TEXT NOT NULL,         -- mobile | email | biz_mail | avatar | gender
    value TEXT NOT NULL,
    source TEXT NOT NULL,        -- wecom_consent
    recorded_at BIGINT NOT NULL, -- unix ms
    PRIMARY KEY (user_id, field)
);
CREATE INDEX user_consented_fields_tenant ON user_consented_fields (tenant_id, field);
