//! Every request: a request id (the caller's `x-request-id` when it is sane, a fresh
//! one otherwise) in the response header and in the tracing span every log line of the
//! request is written in; and its route, status and latency counted.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, for handlers that want to show or forward it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// An incoming id is reused if it is 1..=128 characters of `A-Z a-z 0-9 - _ . : /`.
pub fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

fn fresh() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

pub async fn layer(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map(str::to_string)
        .unwrap_or_else(fresh);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = resp.status().as_u16();
    super::metrics::http_request(method.as_str(), &route, status, took);
    span.in_scope(|| tracing::debug!(status, ms = took.as_secs_f64() * 1e3, "request answered"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids() {
        assert!(sane("3f2a-11ee.b:c/d_e"));
        assert!(!sane(""));
        assert!(!sane(&"a".repeat(129)));
        assert!(!sane("a b"));
        assert!(!sane("a\u{7f}"));
        assert!(!sane("<script>"));
        assert_eq!(fresh().len(), 32);
    }
}
