-- WeCom's per-corp, per-API rate limits (10,000/min and 150,000/hour) are one budget for
-- every bridge instance: calls are counted here, per second, by the instance that leases
-- them; rows older than the hour window are deleted as leases are taken.
CREATE TABLE wecom_call_budget (
    budget_key TEXT NOT NULL,          -- <corpid lower-case>/<api path>
    second BIGINT NOT NULL,            -- Unix second the calls were leased at
    calls BIGINT NOT NULL,
    PRIMARY KEY (budget_key, second)
);

-- A 45009 from WeCom: no instance calls that API of that corp before until_ms.
CREATE TABLE wecom_call_blocks (
    budget_key TEXT PRIMARY KEY,
    until_ms BIGINT NOT NULL
);

-- A running sync waiting for WeCom's rate limit: seconds left (NULL = not waiting).
ALTER TABLE sync_runs ADD COLUMN rate_wait_secs BIGINT;
