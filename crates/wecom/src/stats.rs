//! Per-endpoint call counters. Sync cost is measured in WeCom API calls, so the bridge
//! reads these to report a run's calls by endpoint and compare them with the lower bound.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EndpointStats {
    /// HTTP requests sent, retries included.
    pub calls: u64,
    /// Of those, how many were retries (after a transient error or a token refresh).
    pub retries: u64,
    /// Answers that were errors (non-zero errcode, bad HTTP status or undecodable).
    pub errors: u64,
    /// Sum of request round-trip times, in microseconds.
    pub total_micros: u64,
    /// Waits for WeCom's rate limits before a call (pacing, or after a 45009).
    pub rate_waits: u64,
    /// Their total length, in milliseconds.
    pub rate_wait_ms: u64,
}

/// A wait for WeCom's rate limit in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateWait {
    pub endpoint: &'static str,
    /// When the wait ends (Unix ms, on the client's clock).
    pub until_ms: u64,
}

#[derive(Debug, Default)]
pub struct CallStats {
    by_endpoint: Mutex<BTreeMap<&'static str, EndpointStats>>,
    waiting: Mutex<Option<RateWait>>,
}

impl CallStats {
    pub fn new() -> Self {
        Self::default()
    }

    fn with(&self, endpoint: &'static str, f: impl FnOnce(&mut EndpointStats)) {
        let mut m = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        f(m.entry(endpoint).or_default());
    }

    pub(crate) fn record_call(&self, endpoint: &'static str) {
        self.with(endpoint, |s| s.calls += 1);
    }
    pub(crate) fn record_retry(&self, endpoint: &'static str) {
        self.with(endpoint, |s| s.retries += 1);
    }
    pub(crate) fn record_error(&self, endpoint: &'static str) {
        self.with(endpoint, |s| s.errors += 1);
    }
    pub(crate) fn record_latency(&self, endpoint: &'static str, d: Duration) {
        self.with(endpoint, |s| s.total_micros += d.as_micros() as u64);
    }

    pub(crate) fn begin_wait(&self, endpoint: &'static str, until_ms: u64) {
        let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        // Concurrent waiters: show the longest.
        if w.is_none_or(|x| x.until_ms < until_ms) {
            *w = Some(RateWait { endpoint, until_ms });
        }
    }
    pub(crate) fn end_wait(&self, endpoint: &'static str, waited: Duration) {
        metrics::counter!("wecom_rate_limit_waits_total", "endpoint" => endpoint).increment(1);
        metrics::histogram!("wecom_rate_limit_wait_seconds", "endpoint" => endpoint)
            .record(waited.as_secs_f64());
        self.with(endpoint, |s| {
            s.rate_waits += 1;
            s.rate_wait_ms += waited.as_millis() as u64;
        });
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The wait for WeCom's rate limit going on now, if any (for progress reports).
    pub fn rate_wait(&self) -> Option<RateWait> {
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> BTreeMap<String, EndpointStats> {
        let m = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// Calls of one endpoint so far.
    pub fn calls(&self, endpoint: &str) -> u64 {
        let m = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        m.get(endpoint).map(|s| s.calls).unwrap_or(0)
    }

    pub fn total_calls(&self) -> u64 {
        let m = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        m.values().map(|s| s.calls).sum()
    }

    pub fn reset(&self) {
        self.by_endpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
