//! `grant_type=authorization_code`: a code works once, within ~60 s, for the client and
//! redirect URI it was issued to, with the PKCE verifier of its challenge. A second
//! redemption is refused and revokes the tokens the first one produced.

use super::*;
use crate::domain::oidc::pkce_verifies;
use crate::store::CodeRedemption;

pub async fn exchange(
    st: &AppState,
    provider: &Provider,
    tenant: &Tenant,
    client: &Client,
    f: &TokenForm,
) -> Result<serde_json::Value, OidcError> {
    let code = required(&f.code, "code")?;
    let now = now_ms(st);
    let code_hash = crate::auth::sha256_hex(code);
    let rec = match st
        .store
        .redeem_oidc_code(tenant.id, &code_hash, now)
        .await?
    {
        CodeRedemption::Fresh(c) => c,
        CodeRedemption::Reused => {
            tracing::warn!(client = %client.client_id, "authorization code reused; its grant is revoked");
            return Err(OidcError::InvalidGrant(
                "the code was already used; the tokens issued for it are revoked".into(),
            ));
        }
        CodeRedemption::Unknown => return Err(OidcError::InvalidGrant("unknown code".into())),
    };
    if rec.expires_at < now {
        return Err(OidcError::InvalidGrant("the code has expired".into()));
    }
    if rec.client_id != client.client_id {
        return Err(OidcError::InvalidGrant(
            "the code was issued to another client".into(),
        ));
    }
    if f.redirect_uri.as_deref() != Some(rec.redirect_uri.as_str()) {
        return Err(OidcError::InvalidGrant(
            "redirect_uri differs from the authorization request's".into(),
        ));
    }
    match (&rec.code_challenge, f.code_verifier.as_deref()) {
        (Some(ch), Some(v)) if pkce_verifies(ch, v) => {}
        (Some(_), Some(_)) => {
            return Err(OidcError::InvalidGrant(
                "the PKCE code_verifier does not match".into(),
            ))
        }
        (Some(_), None) => {
            return Err(OidcError::InvalidGrant(
                "the PKCE code_verifier is missing".into(),
            ))
        }
        // RFC 9700 §2.1.1: a verifier for a request without a challenge is an injected code.
        (None, Some(_)) => {
            return Err(OidcError::InvalidGrant(
                "a code_verifier was sent but the request had no code_challenge".into(),
            ))
        }
        (None, None) => {}
    }
    member_still_admitted(st, client, tenant.id, rec.user_id).await?;
    let grant = OidcGrant {
        id: crate::auth::random_token(),
        tenant_id: tenant.id,
        client_id: client.client_id.clone(),
        user_id: rec.user_id,
        scope: rec.scope.clone(),
        auth_time: rec.auth_time,
        locale: rec.locale.clone(),
        created_at: now,
    };
    let issued = new_pair(now);
    if !st
        .store
        .create_oidc_grant(&code_hash, &grant, &issued.pair)
        .await?
    {
        return Err(OidcError::InvalidGrant("the code was already used".into()));
    }
    respond(
        st,
        provider,
        tenant,
        client,
        &grant,
        &issued,
        rec.nonce.as_deref(),
        now,
    )
    .await
}
