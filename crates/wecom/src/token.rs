//! Access-token caching behind a small trait (wecom-api.md §3).
//!
//! In one process, [`MemoryTokenCache`] gives each key a single-flight refresh: callers
//! that find the token missing or stale queue on the key's lock, the first one fetches,
//! the others take its result. Several bridge instances share tokens by implementing
//! the same trait over the database (a row per key, refreshed under a lock), so that a
//! cluster calls `gettoken` once per app, not once per instance.

use crate::Error;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// A token and when to stop using it (Unix ms, already moved earlier than WeCom's expiry).
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub token: String,
    pub use_until_ms: u64,
}

impl std::fmt::Debug for CachedToken {
    // Tokens never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &"<redacted>")
            .field("use_until_ms", &self.use_until_ms)
            .finish()
    }
}

impl CachedToken {
    /// Our own clock at fetch + `expires_in` − min(300 s, expires_in / 2): stop using it
    /// early so a call never races WeCom's expiry.
    pub fn from_expires_in(token: String, expires_in_secs: u64, now_ms: u64) -> Self {
        let margin = 300.min(expires_in_secs / 2);
        CachedToken {
            token,
            use_until_ms: now_ms + (expires_in_secs - margin) * 1000,
        }
    }

    pub fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.use_until_ms
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fetch of a new token, run by the cache when a refresh is due.
pub type Fetch<'a> = BoxFuture<'a, Result<CachedToken, Error>>;

/// Where tokens live. Keys are opaque strings chosen by the client (corp + app).
pub trait TokenCache: Send + Sync + 'static {
    /// The cached token if it is still fresh.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<CachedToken>>;

    /// Single-flight refresh. If, once the caller holds the key, a fresh token other than
    /// `stale` is cached (someone refreshed meanwhile), return it; otherwise run `fetch`,
    /// store and return its token. Concurrent callers on one key run `fetch` once.
    fn refresh<'a>(
        &'a self,
        key: &'a str,
        stale: Option<&'a str>,
        fetch: Fetch<'a>,
    ) -> BoxFuture<'a, Result<CachedToken, Error>>;

    /// Forget `token` if, and only if, the cache still holds it (compare-and-swap), so a
    /// late failure of an old token never throws away a newer one.
    fn invalidate<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, ()>;
}

/// The in-process cache.
#[derive(Default)]
pub struct MemoryTokenCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<CachedToken>>>>>,
}

impl MemoryTokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<CachedToken>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key.to_string()).or_default().clone()
    }
}

impl TokenCache for MemoryTokenCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<CachedToken>> {
        Box::pin(async move {
            let slot = self.slot(key);
            let guard = slot.lock().await;
            guard.clone().filter(|t| t.is_fresh(now_ms()))
        })
    }

    fn refresh<'a>(
        &'a self,
        key: &'a str,
        stale: Option<&'a str>,
        fetch: Fetch<'a>,
    ) -> BoxFuture<'a, Result<CachedToken, Error>> {
        Box::pin(async move {
            let slot = self.slot(key);
            // Holding the slot across the fetch is the single flight: waiters queue here.
            let mut guard = slot.lock().await;
            if let Some(t) = guard.as_ref() {
                if t.is_fresh(now_ms()) && Some(t.token.as_str()) != stale {
                    return Ok(t.clone());
                }
            }
            let fresh = fetch.await?;
            *guard = Some(fresh.clone());
            Ok(fresh)
        })
    }

    fn invalidate<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let slot = self.slot(key);
            let mut guard = slot.lock().await;
            if guard.as_ref().is_some_and(|t| t.token == token) {
                *guard = None;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn early_expiry_margin() {
        let t = CachedToken::from_expires_in("t".into(), 7200, 0);
        assert_eq!(t.use_until_ms, 6900 * 1000);
        let short = CachedToken::from_expires_in("t".into(), 60, 0);
        assert_eq!(short.use_until_ms, 30 * 1000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refresh_is_single_flight_and_invalidate_is_cas() {
        let cache = Arc::new(MemoryTokenCache::new());
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                let f = fetches.clone();
                cache
                    .refresh(
                        "k",
                        None,
                        Box::pin(async move {
                            f.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            Ok(CachedToken::from_expires_in("A".into(), 7200, now_ms()))
                        }),
                    )
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().token, "A");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        cache.invalidate("k", "old").await;
        assert!(cache.get("k").await.is_some(), "CAS keeps a newer token");
        cache.invalidate("k", "A").await;
        assert!(cache.get("k").await.is_none());
    }
}
