-- Tenants, console admins and their sessions, the WeCom integration, domain
-- verification files, audit log. Times are Unix milliseconds.
CREATE TABLE tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    edition TEXT NOT NULL,
    domain TEXT UNIQUE,
    integration_mode TEXT NOT NULL DEFAULT 'none',
    created_at BIGINT NOT NULL
);

CREATE TABLE admins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, username)
);

CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY,
    admin_id BIGINT NOT NULL REFERENCES admins(id),
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip TEXT
);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);

CREATE TABLE wecom_integrations (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants(id),
    corpid TEXT NOT NULL,
    agentid BIGINT NOT NULL,
    secret_sealed BLOB NOT NULL,
    callback_token_sealed BLOB NOT NULL,
    callback_aes_key_sealed BLOB NOT NULL,
    agent_json TEXT,
    verified_at BIGINT,
    callback_verified_at BIGINT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE domain_verifications (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    filename TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, filename)
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    ip TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
