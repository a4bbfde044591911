-- Member sign-in `state` is stateless and MAC'd (domain::oauth_state): starting a
-- sign-in writes nothing. Only redeemed states are remembered, until they could no
-- longer verify anyway, so each works once on whichever instance gets the callback.
DROP TABLE login_states;

CREATE TABLE login_state_redemptions (
    state_id TEXT PRIMARY KEY,           -- hex of the state's nonce
    expires_at BIGINT NOT NULL           -- Unix ms; pruned after this
);
CREATE INDEX login_state_redemptions_expiry ON login_state_redemptions (expires_at);
