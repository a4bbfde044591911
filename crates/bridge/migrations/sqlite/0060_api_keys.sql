-- Admin API keys (issue 16): shown once, stored as the SHA-256 of the whole token.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,              -- the token's first characters, to recognise it
    token_sha256 TEXT NOT NULL UNIQUE, -- hex
    scope TEXT NOT NULL,               -- read | read_write
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);
