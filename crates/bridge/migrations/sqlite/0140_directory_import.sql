-- Issue 20: people a previous integration knew, brought in by an import (Users → Import
-- users → Upload a file), and matched to WeCom members by the tenant's rule on a sync.
-- Local notes: the bridge owns them, a sync never writes them.
ALTER TABLE users ADD COLUMN notes TEXT NOT NULL DEFAULT '';

-- The keys an import gave a person besides email and mobile (kept on `users`), until a
-- sync links them to a WeCom userid.
CREATE TABLE user_import_keys (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    userid TEXT,                         -- a WeCom userid the previous integration knew
    external_key TEXT,                   -- any other key, e.g. an employee number (工号)
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

-- How a sync finds stored people who have no WeCom identity yet (chosen on the import
-- page or with `wecom-bridge users import --match-rule`): userid | email | mobile |
-- extattr:<field name>. No row: userid.
CREATE TABLE directory_match_rules (
    tenant_id BIGINT PRIMARY KEY REFERENCES tenants(id),
    rule TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
