//! `/oidc/revoke` (RFC 7009): the client authenticates as at the token endpoint. Revoking a
//! refresh token revokes its whole grant; an access token, itself. Unknown tokens and
//! tokens of other clients are answered 200 without effect (§2.2).

use super::*;
use crate::oidc::token::{authenticate_client, TokenForm};
use crate::web::error::OAuthError;
use crate::web::tenant::CurrentTenant;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn revoke(
    st: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    f: &TokenForm,
) -> Result<(), OidcError> {
    let client = authenticate_client(st, tenant.id, headers, f).await?;
    let token = f
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OidcError::InvalidRequest("token is required".into()))?;
    if let Some(h) = f.token_type_hint.as_deref() {
        if !matches!(h, "access_token" | "refresh_token") {
            return Err(OidcError::UnsupportedTokenType(format!(
                "token_type_hint {h:?} is not supported"
            )));
        }
    }
    let hash = crate::auth::sha256_hex(token);
    let Some(rec) = st.store.oidc_token(tenant.id, &hash).await? else {
        return Ok(());
    };
    if rec.grant.client_id != client.client_id {
        return Ok(());
    }
    if rec.kind == "refresh" {
        st.store.revoke_oidc_grant(&rec.grant.id).await?;
    } else {
        st.store.delete_oidc_token(&hash).await?;
    }
    Ok(())
}

pub async fn handler(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    headers: HeaderMap,
    f: Result<axum::Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let result = match f {
        Ok(axum::Form(f)) => revoke(&st, &t, &headers, &f).await,
        Err(e) => Err(OidcError::InvalidRequest(format!(
            "invalid form: {}",
            e.body_text()
        ))),
    };
    match result {
        Ok(()) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => OAuthError::from(e).into_response(),
    }
}
