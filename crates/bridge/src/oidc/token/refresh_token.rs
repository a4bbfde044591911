//! `grant_type=refresh_token`: rotated on every use. A rotated token presented again
//! within a short grace is a client retrying after a lost answer (it gets a new pair, and
//! the pair it lost is dropped); later, it is a replay, and the whole grant is revoked.

use super::*;
use crate::domain::oidc::{judge_refresh, RefreshUse};
use crate::store::Rotation;

pub async fn exchange(
    st: &AppState,
    provider: &Provider,
    tenant: &Tenant,
    client: &Client,
    f: &TokenForm,
) -> Result<serde_json::Value, OidcError> {
    let token = required(&f.refresh_token, "refresh_token")?;
    let now = now_ms(st);
    let hash = crate::auth::sha256_hex(token);
    let rec = st
        .store
        .oidc_token(tenant.id, &hash)
        .await?
        .filter(|r| r.kind == "refresh")
        .ok_or_else(|| OidcError::InvalidGrant("unknown or revoked refresh token".into()))?;
    // Another client's token is refused without touching it: that client keeps its grant.
    if rec.grant.client_id != client.client_id {
        return Err(OidcError::InvalidGrant(
            "the refresh token was issued to another client".into(),
        ));
    }
    if rec.expires_at < now {
        return Err(OidcError::InvalidGrant(
            "the refresh token has expired".into(),
        ));
    }
    if let Some(s) = f.scope.as_deref().filter(|s| !s.is_empty()) {
        // RFC 6749 §6: a refresh may narrow the scope, never widen it; we keep the grant's.
        let asked = Scopes::parse(s);
        let granted = Scopes::parse(&rec.grant.scope);
        let wider = (asked.profile && !granted.profile)
            || (asked.email && !granted.email)
            || (asked.phone && !granted.phone)
            || (asked.groups && !granted.groups)
            || (asked.offline_access && !granted.offline_access);
        if wider {
            return Err(OidcError::InvalidRequest(
                "a refresh cannot widen the granted scope".into(),
            ));
        }
    }
    let retry = match judge_refresh(rec.rotated_at, now) {
        RefreshUse::First => false,
        RefreshUse::Retry => true,
        RefreshUse::Replay => {
            st.store.revoke_oidc_grant(&rec.grant.id).await?;
            tracing::warn!(client = %client.client_id, "rotated refresh token replayed; grant revoked");
            return Err(OidcError::InvalidGrant(
                "the refresh token was already used; the grant is revoked".into(),
            ));
        }
    };
    if let Err(e) = member_still_admitted(st, client, tenant.id, rec.grant.user_id).await {
        st.store.revoke_oidc_grant(&rec.grant.id).await?;
        return Err(e);
    }
    let issued = new_pair(now);
    match st
        .store
        .rotate_oidc_refresh(&rec.grant, &hash, &issued.pair, retry, now)
        .await?
    {
        Rotation::Rotated => {}
        Rotation::Lost => {
            return Err(OidcError::InvalidGrant(
                "the refresh token was used concurrently".into(),
            ))
        }
    }
    respond(st, provider, tenant, client, &rec.grant, &issued, None, now).await
}
