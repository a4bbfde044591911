//! `/oidc/userinfo` by GET and POST; the access token in the `Authorization: Bearer`
//! header or in the form (RFC 6750 §2.1–2.2). Errors are RFC 6750 with JSON bodies.

use super::*;
use crate::domain::oidc::Scopes;
use crate::web::error::OAuthError;
use crate::web::tenant::CurrentTenant;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct BearerForm {
    access_token: Option<String>,
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The claims an access token may read.
pub async fn claims_for(
    st: &AppState,
    tenant: &Tenant,
    access_token: &str,
) -> Result<serde_json::Value, OidcError> {
    let now = now_ms(st);
    let invalid =
        || OidcError::InvalidToken("the access token is invalid, expired or revoked".into());
    let rec = st
        .store
        .oidc_token(tenant.id, &crate::auth::sha256_hex(access_token))
        .await?
        .filter(|r| r.kind == "access" && r.expires_at >= now)
        .ok_or_else(invalid)?;
    let client = st
        .store
        .oidc_client(tenant.id, &rec.grant.client_id)
        .await?
        .ok_or_else(invalid)?;
    let scopes = Scopes::parse(&rec.grant.scope);
    let subject = claims::load_subject(st, tenant.id, rec.grant.user_id, &client, scopes)
        .await?
        .filter(|s| s.user.status == crate::domain::user::UserStatus::Authorized)
        .ok_or_else(invalid)?;
    Ok(serde_json::Value::Object(claims::user_claims(
        &subject,
        scopes,
        &client,
        &rec.grant.locale,
    )))
}

async fn answer(st: &AppState, t: &Tenant, token: Option<String>, two: bool) -> Response {
    let result = async {
        if two {
            return Err(OidcError::InvalidRequest(
                "send the access token once, in the header or the form".into(),
            ));
        }
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OidcError::InvalidToken("an access token is required".into()))?;
        claims_for(st, t, &token).await
    }
    .await;
    match result {
        Ok(v) => {
            let mut r = axum::Json(v).into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => OAuthError::from(e).into_response(),
    }
}

pub async fn handler_get(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    headers: HeaderMap,
) -> Response {
    answer(&st, &t, bearer(&headers), false).await
}

pub async fn handler_post(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    headers: HeaderMap,
    f: Result<axum::Form<BearerForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let header = bearer(&headers);
    let form = f.ok().and_then(|axum::Form(f)| f.access_token);
    let two = header.is_some() && form.is_some();
    answer(&st, &t, header.or(form), two).await
}
