//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0), per tenant.

use super::*;
use crate::domain::oidc::{Scopes, SigningAlg};
use crate::web::error::WebError;
use crate::web::tenant::CurrentTenant;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The provider metadata of `issuer`.
pub fn metadata(issuer: &str) -> Value {
    let at = |p: &str| format!("{issuer}{p}");
    json!({
        "issuer": issuer,
        "authorization_endpoint": at(AUTHORIZE_PATH),
        "token_endpoint": at(TOKEN_PATH),
        "userinfo_endpoint": at(USERINFO_PATH),
        "jwks_uri": at(JWKS_PATH),
        "end_session_endpoint": at(END_SESSION_PATH),
        "revocation_endpoint": at(REVOCATION_PATH),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": SigningAlg::ALL.map(SigningAlg::as_str),
        "scopes_supported": Scopes::SUPPORTED,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
            "name", "preferred_username", "email", "email_verified", "groups", "locale",
            "picture", "gender", "phone_number", "phone_number_verified"],
        "prompt_values_supported": ["none", "login"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        // RFC 9207: the authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": true,
    })
}

pub async fn handler(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
) -> Result<Response, WebError> {
    let issuer = issuer(&st, &t)?;
    Ok((
        [(CACHE_CONTROL, "public, max-age=300")],
        axum::Json(metadata(&issuer)),
    )
        .into_response())
}
