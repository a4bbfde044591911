//! Headers every response carries: a CSP with no inline script or style (the templates
//! have none; the console's behaviour is in /static/console.js), no framing, no MIME
//! sniffing, no referrer leaving the origin, HSTS when the public URL is https, and
//! `no-store` on console pages (they show personal data and CSRF tokens).

use axum::extract::Request;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
const HSTS: &str = "max-age=31536000";

/// The layer's settings (from the configuration).
#[derive(Clone, Copy, Debug)]
pub struct SecurityHeaders {
    /// The public URL is https: send HSTS.
    pub https: bool,
}

pub async fn add(
    axum::extract::State(cfg): axum::extract::State<SecurityHeaders>,
    req: Request,
    next: Next,
) -> Response {
    let console = req.uri().path() == "/console" || req.uri().path().starts_with("/console/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    if cfg.https {
        set(h, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    if console {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
