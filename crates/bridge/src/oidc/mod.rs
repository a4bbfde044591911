//! The bridge as an OpenID Connect provider, per tenant: the issuer is the tenant's public
//! base URL, and the tenant is resolved from the request's Host like every other route.
//!
//! One file per endpoint and grant; the rules (scopes, PKCE, prompt, refresh reuse) are in
//! `domain::oidc`, persistence in `store::oidc`. Handlers parse, call, answer; token,
//! userinfo and revocation errors are `web::error::OAuthError` (RFC 6749 JSON).

pub mod access;
pub mod authorize;
pub mod claims;
pub mod clients;
pub mod discovery;
pub mod end_session;
pub mod jwks;
pub mod keys;
pub mod revocation;
pub mod token;
pub mod userinfo;

use crate::app::AppState;
use crate::domain::tenant::Tenant;
use crate::store::StoreError;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const AUTHORIZE_PATH: &str = "/oidc/authorize";
pub const TOKEN_PATH: &str = "/oidc/token";
pub const USERINFO_PATH: &str = "/oidc/userinfo";
pub const JWKS_PATH: &str = "/oidc/jwks";
pub const END_SESSION_PATH: &str = "/oidc/logout";
pub const REVOCATION_PATH: &str = "/oidc/revoke";

/// What went wrong in a token, userinfo, revocation or end-session request; mapped to
/// HTTP in `web::error` only.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{description}")]
    InvalidClient {
        description: String,
        /// The client tried HTTP Basic: the answer carries `WWW-Authenticate: Basic`.
        basic: bool,
    },
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    UnsupportedTokenType(String),
    #[error("{0}")]
    InvalidToken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// This instance's provider state: the opened signing keys, when it last pruned.
#[derive(Default)]
pub struct Provider {
    pub keys: keys::KeyCache,
    last_prune: std::sync::atomic::AtomicI64,
}

impl Provider {
    pub fn new() -> Arc<Self> {
        Arc::new(Provider::default())
    }

    /// Drops expired codes, tokens and empty grants, at most once a minute per instance.
    pub async fn prune_if_due(&self, st: &AppState, now: i64) -> Result<(), OidcError> {
        use std::sync::atomic::Ordering;
        let last = self.last_prune.load(Ordering::Relaxed);
        if now - last < 60_000
            || self
                .last_prune
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        st.store.prune_oidc(now).await?;
        Ok(())
    }
}

/// Every expiry of the provider reads the time here: the state's clock, which tests
/// move instead of sleeping.
pub fn now_ms(st: &AppState) -> i64 {
    st.clock.now_ms()
}

/// The tenant's issuer: its public base URL (from its configured domain, never the Host).
pub fn issuer(st: &AppState, tenant: &Tenant) -> Result<String, OidcError> {
    tenant
        .domain
        .as_deref()
        .map(|d| st.cfg.base_url_for(d))
        .ok_or_else(|| {
            OidcError::InvalidRequest("this organisation has no public domain configured".into())
        })
}

/// The provider's routes (merged into the main router, which adds the shared layers).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(DISCOVERY_PATH, get(discovery::handler))
        .route(JWKS_PATH, get(jwks::handler))
        .route(
            AUTHORIZE_PATH,
            get(authorize::handler_get).post(authorize::handler_post),
        )
        .route(TOKEN_PATH, post(token::handler))
        .route(
            USERINFO_PATH,
            get(userinfo::handler_get).post(userinfo::handler_post),
        )
        .route(
            END_SESSION_PATH,
            get(end_session::handler_get).post(end_session::handler_post),
        )
        .route(REVOCATION_PATH, post(revocation::handler))
}
