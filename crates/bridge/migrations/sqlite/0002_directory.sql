-- The directory synced from WeCom. A user's internal id never changes; WeCom identities
-- (corp + userid, or a third-party open_userid) are separate rows pointing at it. Nothing
-- is hard-deleted: people who left are disabled, so business data pointing at them stays valid.
CREATE TABLE departments (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    id BIGINT NOT NULL,                  -- WeCom department id
    parent_id BIGINT NOT NULL,           -- WeCom parentid (may be outside the visible scope)
    name TEXT NOT NULL,
    name_en TEXT NOT NULL DEFAULT '',
    sort_order BIGINT NOT NULL DEFAULT 0, -- WeCom order: larger sorts first
    leaders TEXT NOT NULL DEFAULT '',    -- comma-separated WeCom userids
    active BOOLEAN NOT NULL DEFAULT TRUE, -- false once out of scope or deleted in WeCom
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    -- authorized | unauthorized | disabled
    status TEXT NOT NULL,
    -- why disabled: left_scope | left_wecom | wecom_disabled | admin (NULL otherwise)
    disabled_reason TEXT,
    position TEXT NOT NULL DEFAULT '',
    alias TEXT NOT NULL DEFAULT '',
    telephone TEXT NOT NULL DEFAULT '',
    mobile TEXT,
    email TEXT,
    main_department BIGINT,
    wecom_status BIGINT,                 -- 1 active, 2 disabled, 4 not activated, 5 left
    direct_leader TEXT NOT NULL DEFAULT '',
    extattr TEXT NOT NULL DEFAULT '',    -- JSON of WeCom's extattr.attrs
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_login_at BIGINT
);
CREATE INDEX users_tenant_status ON users (tenant_id, status);

CREATE TABLE user_identities (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    -- wecom: a self-built app's userid (key lower-cased); wecom_open: a third-party open_userid
    kind TEXT NOT NULL,
    corpid TEXT NOT NULL,
    external_id TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    display_id TEXT NOT NULL,            -- the stored spelling of the userid
    source_agentid BIGINT,               -- for wecom_open: the third-party app that issued it
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, corpid, external_id)
);
CREATE INDEX user_identities_user ON user_identities (user_id);

CREATE TABLE user_departments (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    department_id BIGINT NOT NULL,
    sort_order BIGINT NOT NULL DEFAULT 0,
    is_leader BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (tenant_id, user_id, department_id)
);
CREATE INDEX user_departments_dept ON user_departments (tenant_id, department_id);

CREATE TABLE tags (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE tag_users (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    tag_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    PRIMARY KEY (tenant_id, tag_id, user_id)
);

CREATE TABLE tag_departments (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    tag_id BIGINT NOT NULL,
    department_id BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, tag_id, department_id)
);

-- Per-tenant directory policy.
CREATE TABLE directory_policies (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants(id),
    new_user_status TEXT NOT NULL DEFAULT 'unauthorized',   -- authorized | unauthorized
    max_disable_permille BIGINT NOT NULL DEFAULT 200,       -- a sync disabling more stops (20%)
    reconcile_interval_secs BIGINT NOT NULL DEFAULT 3600,
    updated_at BIGINT NOT NULL
);

-- Signed-in members (the workbench and apps). Only the SHA-256 of the session id is kept.
-- Disabling a user deletes their sessions in the same transaction.
CREATE TABLE user_sessions (
    id_hash TEXT PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    via TEXT NOT NULL,                   -- wecom_client | wecom_qr | ...
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);
