//! Operations: health checks, Prometheus metrics, request ids, the shutdown signal. These routes answer on
//! any Host header: they never resolve a tenant.

pub mod metrics;
pub mod request;
pub mod shutdown;

use crate::app::AppState;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";

/// The health routes, and `/metrics` when it is served on the main listener.
pub fn routes(st: &AppState) -> Router<AppState> {
    let r = Router::new()
        .route(HEALTHZ, get(healthz))
        .route(READYZ, get(readyz));
    if st.cfg.metrics_enabled && st.cfg.metrics_listen.is_none() {
        r.route(METRICS, get(metrics_text))
    } else {
        r
    }
}

/// The separate metrics listener's router (`metrics_listen`).
pub fn metrics_router(st: AppState) -> Router {
    Router::new()
        .route(METRICS, get(metrics_text))
        .route(HEALTHZ, get(healthz))
        .with_state(st)
}

/// `GET /healthz`: the process is alive and serving.
pub async fn healthz() -> Response {
    (
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        "ok\n",
    )
        .into_response()
}

#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    /// Each check: `ok` or what is wrong.
    pub database: String,
    pub migrations: String,
    pub instance_key: String,
}

/// The checks behind `/readyz`.
pub async fn readiness(st: &AppState) -> Readiness {
    let database = match st.store.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("unreachable: {e}"),
    };
    let migrations = if database == "ok" {
        match st.store.missing_migrations().await {
            Ok(m) if m.is_empty() => "ok".to_string(),
            Ok(m) => format!("not applied: {m:?}; run `wecom-bridge migrate`"),
            Err(e) => format!("cannot be read: {e}"),
        }
    } else {
        "unknown (database unreachable)".to_string()
    };
    // The key is loaded if it opens what it sealed.
    let probe = st.sealer.seal("readyz", b"probe");
    let instance_key = match st.sealer.open("readyz", &probe) {
        Ok(v) if v == b"probe" => "ok".to_string(),
        _ => "not usable".to_string(),
    };
    Readiness {
        ready: database == "ok" && migrations == "ok" && instance_key == "ok",
        database,
        migrations,
        instance_key,
    }
}

/// `GET /readyz`: 200 when the database answers, every migration is applied and the
/// instance key is loaded; 503 with the failing check otherwise.
pub async fn readyz(State(st): State<AppState>) -> Response {
    let r = readiness(&st).await;
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(CACHE_CONTROL, "no-store")], axum::Json(r)).into_response()
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics_text(State(st): State<AppState>) -> Response {
    match metrics::render(&st).await {
        Some(body) => (
            [
                (CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"),
                (CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics: no Prometheus recorder is installed in this process\n",
        )
            .into_response(),
    }
}
