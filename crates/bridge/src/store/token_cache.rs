//! The WeCom token cache shared through the database (DESIGN: "a cluster calls gettoken
//! once per app, not once per instance").
//!
//! In-process, an in-memory cache answers and keeps the single flight; only when it has
//! nothing fresh does an instance look at the shared row, and a refresh takes a
//! PostgreSQL advisory lock on the key, re-reads the row, and calls WeCom only if no other
//! instance refreshed meanwhile. If the database fails, the cache degrades to this
//! instance's memory: a token cache problem must not stop WeCom calls.

use super::{on_pool, Store};
use crate::domain::now_ms;
use crate::seal::Sealer;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use sqlx::Row;
use wecom::token::Fetch;
use wecom::{CachedToken, MemoryTokenCache, TokenCache};

pub struct StoreTokenCache {
    store: Store,
    sealer: Sealer,
    mem: MemoryTokenCache,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn context(key: &str) -> String {
    format!("wecom.token:{key}")
}

impl StoreTokenCache {
    pub fn new(store: Store, sealer: Sealer) -> Self {
        StoreTokenCache {
            store,
            sealer,
            mem: MemoryTokenCache::new(),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<CachedToken>, String> {
        let row: Option<(Vec<u8>, i64)> = on_pool!(&self.store, |p| {
            let r = sqlx::query(
                "SELECT token_sealed, use_until_ms FROM wecom_tokens WHERE cache_key = $1",
            )
            .bind(key)
            .fetch_optional(p)
            .await
            .map_err(|e| e.to_string())?;
            match r {
                Some(r) => Some((
                    r.try_get::<Vec<u8>, _>("token_sealed")
                        .map_err(|e| e.to_string())?,
                    r.try_get::<i64, _>("use_until_ms")
                        .map_err(|e| e.to_string())?,
                )),
                None => None,
            }
        });
        let Some((sealed, until)) = row else {
            return Ok(None);
        };
        let token = self
            .sealer
            .open_string(&context(key), &sealed)
            .map_err(|e| e.to_string())?;
        Ok(Some(CachedToken {
            token,
            use_until_ms: until.max(0) as u64,
        })
        .filter(|t| t.is_fresh(wecom::token::now_ms())))
    }

    /// Cross-instance refresh under the key's advisory lock (PostgreSQL); SQLite is one
    /// process per file, where the in-memory single flight already serialises.
    async fn shared_refresh(
        &self,
        key: &str,
        stale: Option<&str>,
        fetch: Fetch<'_>,
    ) -> Result<CachedToken, wecom::Error> {
        let pg = matches!(self.store, Store::Postgres(_));
        let sealed_ctx = context(key);
        on_pool!(&self.store, |p| {
            // Any database failure before the fetch falls back to fetching directly.
            macro_rules! or_fetch {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::warn!(error = %e, "shared token cache unavailable; fetching directly");
                            return fetch.await;
                        }
                    }
                };
            }
            let mut tx = or_fetch!(p.begin().await);
            if pg {
                or_fetch!(
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                        .bind(key)
                        .execute(&mut *tx)
                        .await
                );
            }
            let row = or_fetch!(
                sqlx::query(
                    "SELECT token_sealed, use_until_ms FROM wecom_tokens WHERE cache_key = $1"
                )
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
            );
            if let Some(r) = row {
                let sealed: Vec<u8> = or_fetch!(r.try_get("token_sealed"));
                let until: i64 = or_fetch!(r.try_get("use_until_ms"));
                // Another instance refreshed meanwhile: use its token.
                if let Ok(token) = self.sealer.open_string(&sealed_ctx, &sealed) {
                    let t = CachedToken {
                        token,
                        use_until_ms: until.max(0) as u64,
                    };
                    if t.is_fresh(wecom::token::now_ms()) && Some(t.token.as_str()) != stale {
                        return Ok(t);
                    }
                }
            }
            let fresh = fetch.await?;
            let saved = sqlx::query(
                "INSERT INTO wecom_tokens (cache_key, token_sealed, token_hash, use_until_ms, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (cache_key) DO UPDATE SET token_sealed = excluded.token_sealed,
                    token_hash = excluded.token_hash, use_until_ms = excluded.use_until_ms,
                    updated_at = excluded.updated_at",
            )
            .bind(key)
            .bind(self.sealer.seal_str(&sealed_ctx, &fresh.token))
            .bind(token_hash(&fresh.token))
            .bind(fresh.use_until_ms as i64)
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
            let committed = match saved {
                Ok(_) => tx.commit().await,
                Err(e) => Err(e),
            };
            if let Err(e) = committed {
                tracing::warn!(error = %e, "shared token cache: cannot store the new token");
            }
            Ok(fresh)
        })
    }
}

impl TokenCache for StoreTokenCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<CachedToken>> {
        Box::pin(async move {
            if let Some(t) = self.mem.get(key).await {
                return Some(t);
            }
            match self.read(key).await {
                Ok(Some(t)) => {
                    let copy = t.clone();
                    let _ = self
                        .mem
                        .refresh(key, None, Box::pin(async move { Ok(copy) }))
                        .await;
                    Some(t)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "shared token cache unreadable");
                    None
                }
            }
        })
    }

    fn refresh<'a>(
        &'a self,
        key: &'a str,
        stale: Option<&'a str>,
        fetch: Fetch<'a>,
    ) -> BoxFuture<'a, Result<CachedToken, wecom::Error>> {
        Box::pin(async move {
            self.mem
                .refresh(key, stale, Box::pin(self.shared_refresh(key, stale, fetch)))
                .await
        })
    }

    fn invalidate<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.mem.invalidate(key, token).await;
            let hash = token_hash(token);
            let r: Result<(), sqlx::Error> = on_pool!(&self.store, |p| {
                sqlx::query("DELETE FROM wecom_tokens WHERE cache_key = $1 AND token_hash = $2")
                    .bind(key)
                    .bind(&hash)
                    .execute(p)
                    .await
                    .map(|_| ())
            });
            if let Err(e) = r {
                tracing::warn!(error = %e, "shared token cache: cannot drop a failed token");
            }
        })
    }
}
