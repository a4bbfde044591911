-- WeCom access tokens shared by every instance, so a cluster calls gettoken once per app
-- rather than once per instance. Tokens are sealed like other secrets; the hash lets an
-- instance drop exactly the token that failed (compare-and-swap) without opening it.
CREATE TABLE wecom_tokens (
    cache_key TEXT PRIMARY KEY,
    token_sealed BLOB NOT NULL,
    token_hash TEXT NOT NULL,
    use_until_ms BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
