//! Requests are routed to a tenant by their Host header (its custom domain); nothing
//! crosses tenants.

use crate::app::AppState;
use crate::domain::tenant::Tenant;
use crate::web::error::WebError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The tenant whose custom domain the request was sent to.
#[derive(Clone, Debug)]
pub struct CurrentTenant(pub Tenant);

/// The request's `host[:port]` as sent, lower-cased; an error when it has several Host
/// headers (which one a proxy or cache used is anyone's guess).
pub fn request_host(parts: &Parts) -> Result<Option<String>, WebError> {
    host_of(&parts.headers, &parts.uri)
}

pub fn host_of(
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
) -> Result<Option<String>, WebError> {
    if headers.get_all(axum::http::header::HOST).iter().count() > 1 {
        return Err(WebError::BadRequest(
            "the request has more than one Host header".into(),
        ));
    }
    Ok(headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().to_ascii_lowercase())
        .or_else(|| uri.authority().map(|a| a.as_str().to_ascii_lowercase()))
        .filter(|h| !h.is_empty()))
}

impl FromRequestParts<AppState> for CurrentTenant {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, WebError> {
        if let Some(t) = parts.extensions.get::<CurrentTenant>() {
            return Ok(t.clone());
        }
        let host = request_host(parts)?
            .ok_or_else(|| WebError::BadRequest("the request has no Host header".into()))?;
        let t = st
            .store
            .tenant_by_domain(&host)
            .await?
            .ok_or(WebError::UnknownHost(host))?;
        let t = CurrentTenant(t);
        parts.extensions.insert(t.clone());
        Ok(t)
    }
}
