-- Password sign-in throttling (domain::throttle): failures in a row per client IP and
-- per account, and until when the key is locked out. Shared by every instance.
CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY,       -- ip:<addr> | account:<tenant>:<sha256 of username>
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,     -- Unix ms
    locked_until BIGINT NOT NULL         -- Unix ms; 0 = never locked
);
CREATE INDEX login_throttle_last_failure ON login_throttle (last_failure_at);
