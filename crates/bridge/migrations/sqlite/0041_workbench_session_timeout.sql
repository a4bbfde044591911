-- The workbench's session timeout, set by the tenant's admin (Login configuration): a member
-- idle this long signs in again. NULL: the instance's member_session_idle_secs.
ALTER TABLE tenants ADD COLUMN member_session_idle_secs BIGINT;
