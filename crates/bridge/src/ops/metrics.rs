//! Prometheus metrics through the `metrics` facade and its Prometheus exporter.
//!
//! The recorder is process-wide (the facade has one global recorder): installed once,
//! when a server with `metrics_enabled` starts, and shared by every server of the
//! process. Without it every `counter!`/`histogram!` below is a no-op.
//!
//! Families (see the README's "Run it in production"):
//! - `http_requests_total{method,route,status}`, `http_request_duration_seconds{method,route}`
//!   (route = the matched route template, never the raw path);
//! - `wecom_bridge_sign_ins_total{outcome}` (`ok` or the cause of the refusal);
//! - `wecom_bridge_sync_runs_total{kind,trigger,status}`,
//!   `wecom_bridge_sync_run_duration_seconds{kind,status}`;
//! - from the `wecom` crate: `wecom_api_calls_total{endpoint,errcode}`,
//!   `wecom_api_call_duration_seconds{endpoint}`, `wecom_token_refreshes_total{outcome}`,
//!   `wecom_rate_limit_waits_total{endpoint}`, `wecom_rate_limit_wait_seconds{endpoint}`;
//! - read at each scrape: `wecom_bridge_callbacks_pending`,
//!   `wecom_bridge_callback_oldest_pending_seconds` (the lag of the callback waiting
//!   longest), `wecom_bridge_db_pool_connections{state}` and
//!   `wecom_bridge_db_pool_max_connections`.

use crate::app::AppState;
use crate::auth::LoginError;
use crate::domain::directory::{RunKind, RunStatus, Trigger};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Histogram buckets, in seconds: from a fast request to a long sync.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder (once); `None` if another recorder was
/// installed first (then `/metrics` says so).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let b = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("static non-empty buckets");
            match b.install_recorder() {
                Ok(h) => {
                    describe();
                    Some(h)
                }
                Err(e) => {
                    tracing::error!(error = %e, "metrics: cannot install the Prometheus recorder");
                    None
                }
            }
        })
        .as_ref()
}

/// The installed recorder, if any.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(|h| h.as_ref())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by route template and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route template"
    );
    describe_counter!(
        "wecom_bridge_sign_ins_total",
        "Member sign-ins through WeCom by outcome (ok or the cause of the refusal)"
    );
    describe_counter!(
        "wecom_bridge_sync_runs_total",
        "Directory sync runs finished, by kind, trigger and status"
    );
    describe_histogram!(
        "wecom_bridge_sync_run_duration_seconds",
        Unit::Seconds,
        "Directory sync run duration"
    );
    describe_counter!(
        "wecom_api_calls_total",
        "WeCom API requests by endpoint and errcode (0 = ok; transport, invalid_answer)"
    );
    describe_histogram!(
        "wecom_api_call_duration_seconds",
        Unit::Seconds,
        "WeCom API request latency"
    );
    describe_counter!(
        "wecom_token_refreshes_total",
        "WeCom access token fetches (gettoken) by outcome"
    );
    describe_counter!(
        "wecom_rate_limit_waits_total",
        "Waits for WeCom's rate limits before a call"
    );
    describe_histogram!(
        "wecom_rate_limit_wait_seconds",
        Unit::Seconds,
        "Length of the waits for WeCom's rate limits"
    );
    describe_histogram!(
        "wecom_bridge_callback_lag_seconds",
        Unit::Seconds,
        "Time from a callback's receipt to its application, by outcome (applied, failed)"
    );
    describe_gauge!(
        "wecom_bridge_callbacks_pending",
        "WeCom change callbacks received and not yet applied"
    );
    describe_gauge!(
        "wecom_bridge_callback_oldest_pending_seconds",
        Unit::Seconds,
        "Age of the oldest pending callback (received -> not yet applied)"
    );
    describe_gauge!(
        "wecom_bridge_db_pool_connections",
        "Database pool connections by state (idle, in_use)"
    );
    describe_gauge!(
        "wecom_bridge_db_pool_max_connections",
        "Database pool size limit"
    );
}

/// One answered HTTP request.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    metrics::counter!(
        "http_requests_total",
        "method" => method.to_string(),
        "route" => route.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method.to_string(),
        "route" => route.to_string()
    )
    .record(took.as_secs_f64());
}

/// The cause of a refused sign-in, as a label value.
pub fn sign_in_cause(e: &LoginError) -> &'static str {
    match e {
        LoginError::StateMissing => "state_missing",
        LoginError::StateInvalid => "state_invalid",
        LoginError::StateForeign => "state_foreign",
        LoginError::Cancelled => "cancelled",
        LoginError::SourceOff => "source_off",
        LoginError::NotConfigured => "not_configured",
        LoginError::Domain(_) => "domain",
        LoginError::Code(_) => "code_refused",
        LoginError::Wecom(_) => "wecom_error",
        LoginError::NotInDirectory { .. } => "not_in_directory",
        LoginError::Unauthorized { .. } => "unauthorized",
        LoginError::Disabled { .. } => "disabled",
        LoginError::Store(_) | LoginError::Internal(_) => "internal",
    }
}

/// A member sign-in through WeCom ended: `Ok` or the refusal's cause.
pub fn sign_in<T>(r: &Result<T, LoginError>) {
    let outcome = match r {
        Ok(_) => "ok",
        Err(e) => sign_in_cause(e),
    };
    metrics::counter!("wecom_bridge_sign_ins_total", "outcome" => outcome).increment(1);
}

/// A directory sync run ended.
pub fn sync_run(kind: RunKind, trigger: Trigger, status: RunStatus, took: Duration) {
    metrics::counter!(
        "wecom_bridge_sync_runs_total",
        "kind" => kind.as_str(),
        "trigger" => trigger.as_str(),
        "status" => status.as_str()
    )
    .increment(1);
    metrics::histogram!(
        "wecom_bridge_sync_run_duration_seconds",
        "kind" => kind.as_str(),
        "status" => status.as_str()
    )
    .record(took.as_secs_f64());
}

/// A stored callback was handled, `lag_ms` after it was received.
pub fn callback_handled(status: &'static str, lag_ms: i64) {
    metrics::histogram!("wecom_bridge_callback_lag_seconds", "status" => status)
        .record(lag_ms.max(0) as f64 / 1000.0);
}

/// Reads the gauges that are state rather than events (pool, pending callbacks).
pub async fn observe_state(st: &AppState) {
    let pool = st.store.pool_usage();
    metrics::gauge!("wecom_bridge_db_pool_connections", "state" => "idle").set(pool.idle as f64);
    metrics::gauge!("wecom_bridge_db_pool_connections", "state" => "in_use")
        .set(pool.in_use as f64);
    metrics::gauge!("wecom_bridge_db_pool_max_connections").set(pool.max as f64);
    match st.store.pending_callback_stats().await {
        Ok((count, oldest_ms)) => {
            metrics::gauge!("wecom_bridge_callbacks_pending").set(count as f64);
            let lag = oldest_ms
                .map(|at| (crate::domain::now_ms() - at).max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            metrics::gauge!("wecom_bridge_callback_oldest_pending_seconds").set(lag);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count pending callbacks"),
    }
}

/// The Prometheus text exposition, or `None` when no recorder is installed.
pub async fn render(st: &AppState) -> Option<String> {
    let h = handle()?;
    observe_state(st).await;
    h.run_upkeep();
    Some(h.render())
}
