//! Password sign-in throttling counters (domain::throttle), shared by every instance.
//! Each statement is atomic on its own: concurrent failures on several instances are
//! all counted, and only one of them starts a given lockout.

use super::{on_pool, Result, Store};
use sqlx::Row;

impl Store {
    /// The latest `locked_until` among `keys` (0 if none is known).
    pub async fn login_locked_until(&self, keys: &[String]) -> Result<i64> {
        let mut until = 0i64;
        for k in keys {
            let r = on_pool!(self, |p| {
                sqlx::query("SELECT locked_until FROM login_throttle WHERE throttle_key = $1")
                    .bind(k)
                    .fetch_optional(p)
                    .await?
                    .map(|r| r.try_get::<i64, _>("locked_until"))
                    .transpose()?
            });
            until = until.max(r.unwrap_or(0));
        }
        Ok(until)
    }

    /// Counts a failure of `key` at `now` and returns the failures in a row, counting
    /// from zero again when the last one was before `forget_before`. Rows forgotten
    /// and unlocked are dropped on the way.
    pub async fn login_failure(&self, key: &str, now: i64, forget_before: i64) -> Result<i64> {
        on_pool!(self, |p| {
            sqlx::query(
                "DELETE FROM login_throttle WHERE last_failure_at < $1 AND locked_until < $2",
            )
            .bind(forget_before)
            .bind(now)
            .execute(p)
            .await?;
            let r = sqlx::query(
                "INSERT INTO login_throttle (throttle_key, failures, last_failure_at, locked_until)
                 VALUES ($1, 1, $2, 0)
                 ON CONFLICT (throttle_key) DO UPDATE SET
                     failures = CASE WHEN login_throttle.last_failure_at < $3 THEN 1
                                     ELSE login_throttle.failures + 1 END,
                     last_failure_at = $2
                 RETURNING failures",
            )
            .bind(key)
            .bind(now)
            .bind(forget_before)
            .fetch_one(p)
            .await?;
            Ok(r.try_get("failures")?)
        })
    }

    /// Locks `key` until `until`. `true` if this starts a lockout (the key was not
    /// locked at `now`), `false` if it extends one already running.
    pub async fn login_lock(&self, key: &str, now: i64, until: i64) -> Result<bool> {
        on_pool!(self, |p| {
            let started = sqlx::query(
                "UPDATE login_throttle SET locked_until = $2
                 WHERE throttle_key = $1 AND locked_until <= $3",
            )
            .bind(key)
            .bind(until)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
                == 1;
            if !started {
                sqlx::query(
                    "UPDATE login_throttle SET locked_until = $2
                     WHERE throttle_key = $1 AND locked_until < $2",
                )
                .bind(key)
                .bind(until)
                .execute(p)
                .await?;
            }
            Ok(started)
        })
    }

    /// Forgets `key`'s failures (a successful sign-in of the account).
    pub async fn login_success(&self, key: &str) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
                .bind(key)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// (failures, locked_until) of `key`, for tests and the console.
    pub async fn login_throttle_state(&self, key: &str) -> Result<Option<(i64, i64)>> {
        on_pool!(self, |p| {
            let r = sqlx::query(
                "SELECT failures, locked_until FROM login_throttle WHERE throttle_key = $1",
            )
            .bind(key)
            .fetch_optional(p)
            .await?;
            Ok(match r {
                Some(r) => Some((r.try_get("failures")?, r.try_get("locked_until")?)),
                None => None,
            })
        })
    }
}
