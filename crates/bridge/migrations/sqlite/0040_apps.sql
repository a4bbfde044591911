-- The app catalogue (per tenant): what the workbench shows, where each app opens, and who
-- may open it. Times are Unix milliseconds.
CREATE TABLE apps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    slug TEXT NOT NULL,                  -- short name in URLs: /apps/{slug}/open, /auth/verify?app={slug}
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL DEFAULT '',
    icon TEXT NOT NULL DEFAULT 'app',    -- a built-in icon's name, or 'uploaded'
    icon_kind TEXT,                      -- png | svg when uploaded
    icon_data BLOB,                     -- the uploaded icon (size-checked, at most 64 KB)
    category TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    position BIGINT NOT NULL DEFAULT 0,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    url TEXT NOT NULL,
    everyone BOOLEAN NOT NULL DEFAULT TRUE, -- every authorized member, or only app_access
    contact TEXT NOT NULL DEFAULT '',    -- whom a refused member should ask
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, slug)
);

-- The chosen departments (with subtrees), tags and members of an app's policy.
CREATE TABLE app_access (
    app_id BIGINT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,                  -- department | tag | user
    ref_id BIGINT NOT NULL,              -- WeCom department or tag id, or users.id
    PRIMARY KEY (app_id, kind, ref_id)
);

-- Each member's opens, for the workbench's frequently used apps.
CREATE TABLE app_opens (
    app_id BIGINT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id),
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    opens BIGINT NOT NULL DEFAULT 0,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);
