//! WeCom's per-corp, per-API call budget (wecom-api.md §16) shared by every instance.
//!
//! Each lease is one short transaction: drop the key's calls older than the hour window,
//! read the rest and any 45009 block, decide with the client's own arithmetic
//! ([`wecom::pace::decide`]), record what was granted at the current second. On
//! PostgreSQL an advisory lock on the key serialises instances; SQLite is one process
//! per file and the transaction starts by writing, so it holds the write lock throughout.

use super::{on_pool, Store};
use futures::future::BoxFuture;
use sqlx::Row;
use wecom::pace::{decide, CallBudget, Lease, RateLimits, GUARD_SECS};

pub struct StoreCallBudget {
    store: Store,
}

impl StoreCallBudget {
    pub fn new(store: Store) -> Self {
        StoreCallBudget { store }
    }

    async fn take_tx(
        &self,
        key: &str,
        want: u32,
        now_ms: u64,
        limits: RateLimits,
    ) -> Result<Lease, sqlx::Error> {
        let pg = matches!(self.store, Store::Postgres(_));
        let now_s = (now_ms / 1000) as i64;
        let horizon = now_s - 3600 - GUARD_SECS as i64;
        on_pool!(&self.store, |p| {
            let mut tx = p.begin().await?;
            if pg {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(format!("wecom.budget:{key}"))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM wecom_call_budget WHERE budget_key = $1 AND second <= $2")
                .bind(key)
                .bind(horizon)
                .execute(&mut *tx)
                .await?;
            let rows =
                sqlx::query("SELECT second, calls FROM wecom_call_budget WHERE budget_key = $1")
                    .bind(key)
                    .fetch_all(&mut *tx)
                    .await?;
            let mut buckets = Vec::with_capacity(rows.len());
            for r in &rows {
                let s: i64 = r.try_get("second")?;
                let n: i64 = r.try_get("calls")?;
                buckets.push((s.max(0) as u64, n.max(0) as u64));
            }
            let blocked: Option<i64> =
                sqlx::query("SELECT until_ms FROM wecom_call_blocks WHERE budget_key = $1")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get("until_ms"))
                    .transpose()?;
            let lease = decide(
                &buckets,
                blocked.unwrap_or(0).max(0) as u64,
                now_ms,
                want,
                limits,
            );
            if let Lease::Granted(n) = lease {
                sqlx::query(
                    "INSERT INTO wecom_call_budget (budget_key, second, calls) VALUES ($1, $2, $3)
                     ON CONFLICT (budget_key, second) DO UPDATE SET calls = wecom_call_budget.calls + excluded.calls",
                )
                .bind(key)
                .bind(now_s)
                .bind(i64::from(n))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(lease)
        })
    }
}

impl CallBudget for StoreCallBudget {
    fn take<'a>(
        &'a self,
        key: &'a str,
        want: u32,
        now_ms: u64,
        limits: RateLimits,
    ) -> BoxFuture<'a, Result<Lease, String>> {
        Box::pin(async move {
            self.take_tx(key, want, now_ms, limits)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn give_back<'a>(&'a self, key: &'a str, n: u32, taken_ms: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let r: Result<(), sqlx::Error> = on_pool!(&self.store, |p| {
                sqlx::query(
                    "UPDATE wecom_call_budget SET calls = CASE WHEN calls > $3 THEN calls - $3 ELSE 0 END
                     WHERE budget_key = $1 AND second = $2",
                )
                .bind(key)
                .bind((taken_ms / 1000) as i64)
                .bind(i64::from(n))
                .execute(p)
                .await
                .map(|_| ())
            });
            if let Err(e) = r {
                tracing::warn!(error = %e, "WeCom call budget: cannot give back unspent calls");
            }
        })
    }

    fn block<'a>(&'a self, key: &'a str, until_ms: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let r: Result<(), sqlx::Error> = on_pool!(&self.store, |p| {
                sqlx::query(
                    "INSERT INTO wecom_call_blocks (budget_key, until_ms) VALUES ($1, $2)
                     ON CONFLICT (budget_key) DO UPDATE SET until_ms =
                        CASE WHEN excluded.until_ms > wecom_call_blocks.until_ms
                             THEN excluded.until_ms ELSE wecom_call_blocks.until_ms END",
                )
                .bind(key)
                .bind(until_ms as i64)
                .execute(p)
                .await
                .map(|_| ())
            });
            if let Err(e) = r {
                tracing::warn!(error = %e, "WeCom call budget: cannot record a 45009 block");
            }
        })
    }
}
