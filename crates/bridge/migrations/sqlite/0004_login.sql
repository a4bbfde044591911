-- Sign-in: login configuration, OAuth sign-ins in progress, the member-session MAC key
-- and the session revocation log. Times are Unix milliseconds.

-- Which identity sources sign people in, per workbench and (later) per app. A missing
-- row means the source's default (domain::login::IdentitySource::default_enabled).
-- Read on every request, never cached, so a change applies at once on every instance.
CREATE TABLE login_sources (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    target TEXT NOT NULL,                -- 'workbench' | 'app:<id>'
    source TEXT NOT NULL,                -- 'wecom' | 'password' | later ones
    enabled BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, target, source)
);

-- OAuth `state` values handed to WeCom: single use (deleted when redeemed), bound to the
-- browser (the SHA-256 of its binding cookie), short-lived. Only hashes are stored.
CREATE TABLE login_states (
    state_hash TEXT PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    binding_hash TEXT NOT NULL,
    return_to TEXT NOT NULL,
    via TEXT NOT NULL,                   -- wecom_client | wecom_qr
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_states_expiry ON login_states (expires_at);

-- The key that signs member-session cookies, shared by every instance, sealed with the
-- instance key. One row.
CREATE TABLE session_keys (
    id BIGINT PRIMARY KEY,
    key_sealed BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every ended member session, whatever ended it (logout, revocation, a status change):
-- instances poll this log so a signed session cookie stops working everywhere.
CREATE TABLE session_revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL,
    id_hash TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX session_revocations_at ON session_revocations (at);

CREATE TRIGGER user_sessions_revoked AFTER DELETE ON user_sessions
BEGIN
    INSERT INTO session_revocations (tenant_id, id_hash, at)
    VALUES (OLD.tenant_id, OLD.id_hash, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;

-- Only authorized users may hold a session, whichever code path changes the status.
CREATE TRIGGER users_lose_sessions AFTER UPDATE OF status ON users
WHEN NEW.status <> 'authorized'
BEGIN
    DELETE FROM user_sessions WHERE user_id = NEW.id;
END;
