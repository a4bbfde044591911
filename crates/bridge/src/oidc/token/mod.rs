//! `/oidc/token`: client authentication (`client_secret_basic`, `client_secret_post`, or
//! `none` for public clients), then the grant. Every answer is `Cache-Control: no-store`.

pub mod authorization_code;
pub mod refresh_token;

use super::*;
use crate::domain::oidc::{
    Client, ClientKind, Scopes, ACCESS_TTL_MS, ID_TOKEN_TTL_MS, REFRESH_TTL_MS,
};
use crate::store::{NewTokenPair, OidcGrant};
use crate::web::error::OAuthError;
use crate::web::tenant::CurrentTenant;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

/// The token request's form (RFC 6749 §4.1.3, §6).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    // Revocation (RFC 7009) shares the client authentication.
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
}

/// Authenticates the client of a token or revocation request.
pub async fn authenticate_client(
    st: &AppState,
    tenant_id: i64,
    headers: &HeaderMap,
    f: &TokenForm,
) -> Result<Client, OidcError> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let invalid = |basic: bool, d: &str| OidcError::InvalidClient {
        description: d.into(),
        basic,
    };
    let (client_id, secret, via_basic) = if let Some(b64) = basic {
        if f.client_secret.is_some() {
            return Err(OidcError::InvalidRequest(
                "use one client authentication method, not two".into(),
            ));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| invalid(true, "malformed Basic credentials"))?;
        let raw =
            String::from_utf8(raw).map_err(|_| invalid(true, "malformed Basic credentials"))?;
        let (id, secret) = raw
            .split_once(':')
            .ok_or_else(|| invalid(true, "malformed Basic credentials"))?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded.
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let id = dec(id);
        if f.client_id.as_deref().is_some_and(|c| c != id) {
            return Err(invalid(
                true,
                "client_id differs from the authenticated client",
            ));
        }
        (id, Some(dec(secret)), true)
    } else {
        let id = f
            .client_id
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| invalid(false, "client authentication is required"))?;
        (id, f.client_secret.clone(), false)
    };
    let client = st
        .store
        .oidc_client(tenant_id, &client_id)
        .await?
        .ok_or_else(|| invalid(via_basic, "unknown client"))?;
    match client.kind {
        ClientKind::Confidential => {
            let ok = secret.as_deref().is_some_and(|s| client.secret_matches(s));
            if !ok {
                return Err(invalid(via_basic, "client authentication failed"));
            }
        }
        ClientKind::Public => {
            if secret.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(invalid(via_basic, "a public client has no secret"));
            }
        }
    }
    Ok(client)
}

/// Issues an access token, a refresh token and an ID token for `grant`, storing the pair
/// through `store` (a new grant, or a rotation).
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub pair: NewTokenPair,
}

pub fn new_pair(now: i64) -> Issued {
    let access_token = crate::auth::random_token();
    let refresh_token = crate::auth::random_token();
    Issued {
        pair: NewTokenPair {
            access_hash: crate::auth::sha256_hex(&access_token),
            access_expires_at: now + ACCESS_TTL_MS,
            refresh_hash: crate::auth::sha256_hex(&refresh_token),
            refresh_expires_at: now + REFRESH_TTL_MS,
        },
        access_token,
        refresh_token,
    }
}

/// The token response (RFC 6749 §5.1, OIDC core §3.1.3.3), with a freshly signed ID token.
#[allow(clippy::too_many_arguments)]
pub async fn respond(
    st: &AppState,
    provider: &Provider,
    tenant: &Tenant,
    client: &Client,
    grant: &OidcGrant,
    issued: &Issued,
    nonce: Option<&str>,
    now: i64,
) -> Result<serde_json::Value, OidcError> {
    let scopes = Scopes::parse(&grant.scope);
    let subject = claims::load_subject(st, tenant.id, grant.user_id, client, scopes)
        .await?
        .ok_or_else(|| OidcError::InvalidGrant("the member no longer exists".into()))?;
    let iss = issuer(st, tenant)?;
    let user = claims::user_claims(&subject, scopes, client, &grant.locale);
    let id = claims::id_token_claims(
        user,
        &claims::IdTokenFacts {
            issuer: &iss,
            client_id: &client.client_id,
            nonce,
            auth_time_ms: grant.auth_time,
            access_token: &issued.access_token,
            now_ms: now,
            ttl_ms: ID_TOKEN_TTL_MS,
        },
    );
    let id_token = keys::sign(st, &provider.keys, tenant.id, client.id_token_alg, &id, now).await?;
    Ok(json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL_MS / 1000,
        "refresh_token": issued.refresh_token,
        "id_token": id_token,
        "scope": grant.scope,
    }))
}

/// Checks that the member may still use the client (status gate and the app's policy).
pub async fn member_still_admitted(
    st: &AppState,
    client: &Client,
    tenant_id: i64,
    user_id: i64,
) -> Result<(), OidcError> {
    let user = st
        .store
        .user_by_id(tenant_id, user_id)
        .await?
        .filter(|u| u.status == crate::domain::user::UserStatus::Authorized)
        .ok_or_else(|| OidcError::InvalidGrant("the member is no longer authorized".into()))?;
    if !access::app_admits(st, client, &user).await? {
        return Err(OidcError::InvalidGrant(
            "the application's access policy no longer admits the member".into(),
        ));
    }
    Ok(())
}

pub async fn handler(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    Extension(provider): Extension<Arc<Provider>>,
    headers: HeaderMap,
    f: Result<axum::Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let result = async {
        let axum::Form(f) =
            f.map_err(|e| OidcError::InvalidRequest(format!("invalid form: {}", e.body_text())))?;
        let client = authenticate_client(&st, t.id, &headers, &f).await?;
        match f.grant_type.as_deref() {
            Some("authorization_code") => {
                authorization_code::exchange(&st, &provider, &t, &client, &f).await
            }
            Some("refresh_token") => refresh_token::exchange(&st, &provider, &t, &client, &f).await,
            Some(other) => Err(OidcError::UnsupportedGrantType(format!(
                "grant_type {other:?} is not supported"
            ))),
            None => Err(OidcError::InvalidRequest("grant_type is required".into())),
        }
    }
    .await;
    match result {
        Ok(body) => {
            let mut resp = axum::Json(body).into_response();
            resp.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp.headers_mut()
                .insert(PRAGMA, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(e) => OAuthError::from(e).into_response(),
    }
}

/// A form parameter a grant needs: present and not empty.
fn required<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str, OidcError> {
    v.as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OidcError::InvalidRequest(format!("{name} is required")))
}
