-- A whole tenant's directory is read in slices of user ids: users by (tenant, id) and
-- their identities by (tenant, user id), each slice one index range. Without these the
-- planners took the tenant prefix of another index and scanned the tenant per slice.
-- The identities' (tenant, user id) index serves every look-up by user id, so the one on
-- user id alone goes: one index less to maintain per synced member.
CREATE INDEX users_tenant_id ON users (tenant_id, id);
CREATE INDEX user_identities_tenant_user ON user_identities (tenant_id, user_id);
DROP INDEX user_identities_user;
