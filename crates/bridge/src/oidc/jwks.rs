//! The JWKS: the tenant's active signing keys and the retired ones whose tokens may still
//! be live.

use super::*;
use crate::web::error::WebError;
use crate::web::tenant::CurrentTenant;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

pub async fn handler(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
) -> Result<Response, WebError> {
    let doc = keys::jwks(&st, t.id, now_ms(&st)).await?;
    // Short cache: a rotated key must reach relying parties well before old tokens expire.
    Ok((
        [
            (CONTENT_TYPE, "application/jwk-set+json"),
            (CACHE_CONTROL, "public, max-age=60"),
        ],
        doc.to_string(),
    )
        .into_response())
}
