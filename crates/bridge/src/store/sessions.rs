//! Member sign-in state: redeemed OAuth `state` ids (single use), member sessions, the session
//! cookie key and the revocation log that the database fills by trigger whenever a
//! session row is deleted (migration 0004).

use super::audit::insert_audit;
use super::{on_pool, Result, Store};
use crate::domain::audit::NewAudit;
use crate::domain::login::Revocation;
use crate::domain::now_ms;
use sqlx::Row;

#[derive(Clone, Debug)]
pub struct NewUserSession<'a> {
    pub id_hash: &'a str,
    pub tenant_id: i64,
    pub user_id: i64,
    pub via: &'a str,
    pub now: i64,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// A member session as the Users page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSessionRecord {
    pub id_hash: String,
    pub user_id: i64,
    pub via: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Store {
    /// Records that a sign-in state was used: `true` the first time, `false` on any
    /// later attempt (on any instance). Redemptions that expired before `now` are
    /// dropped on the way (indexed by expiry; only verified states ever get here).
    pub async fn redeem_login_state(
        &self,
        state_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM login_state_redemptions WHERE expires_at < $1")
                .bind(now)
                .execute(p)
                .await?;
            let r = sqlx::query(
                "INSERT INTO login_state_redemptions (state_id, expires_at) VALUES ($1, $2)
                 ON CONFLICT (state_id) DO NOTHING",
            )
            .bind(state_id)
            .bind(expires_at)
            .execute(p)
            .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// The sealed session-cookie key, creating it (from `make`) on first use; every
    /// instance reads the same row.
    pub async fn session_key_sealed(&self, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>> {
        let fresh = make();
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO session_keys (id, key_sealed, created_at) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&fresh)
            .bind(now_ms())
            .execute(p)
            .await?;
            let r = sqlx::query("SELECT key_sealed FROM session_keys WHERE id = 1")
                .fetch_one(p)
                .await?;
            Ok(r.try_get("key_sealed")?)
        })
    }

    /// Records a successful sign-in in one transaction: the session row, the user's
    /// last login, the audit entry.
    pub async fn start_user_session(&self, s: &NewUserSession<'_>, audit: &NewAudit) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO user_sessions (id_hash, tenant_id, user_id, via, created_at, last_seen_at, ip, user_agent)
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
            )
            .bind(s.id_hash)
            .bind(s.tenant_id)
            .bind(s.user_id)
            .bind(s.via)
            .bind(s.now)
            .bind(s.ip)
            .bind(s.user_agent)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE users SET last_login_at = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(s.now)
                .bind(s.tenant_id)
                .bind(s.user_id)
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, audit, s.now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether the session row still exists (it is deleted when the session ends).
    pub async fn user_session_exists(&self, id_hash: &str) -> Result<bool> {
        on_pool!(self, |p| {
            Ok(
                sqlx::query("SELECT 1 AS one FROM user_sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .fetch_optional(p)
                    .await?
                    .is_some(),
            )
        })
    }

    pub async fn touch_user_session(&self, id_hash: &str, now: i64) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE user_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(id_hash)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Ends one session of a tenant; false when there was none.
    pub async fn delete_user_session(&self, tenant_id: i64, id_hash: &str) -> Result<bool> {
        on_pool!(self, |p| {
            let n = sqlx::query("DELETE FROM user_sessions WHERE tenant_id = $1 AND id_hash = $2")
                .bind(tenant_id)
                .bind(id_hash)
                .execute(p)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
    }

    /// Ends every session of some users; returns how many ended.
    pub async fn delete_sessions_of_users(&self, tenant_id: i64, user_ids: &[i64]) -> Result<u64> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let mut n = 0;
            for id in user_ids {
                n += sqlx::query("DELETE FROM user_sessions WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(n)
        })
    }

    pub async fn list_user_sessions(
        &self,
        tenant_id: i64,
        user_id: i64,
    ) -> Result<Vec<UserSessionRecord>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT id_hash, user_id, via, created_at, last_seen_at, ip, user_agent FROM user_sessions
                 WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(UserSessionRecord {
                    id_hash: r.try_get("id_hash")?,
                    user_id: r.try_get("user_id")?,
                    via: r.try_get("via")?,
                    created_at: r.try_get("created_at")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    ip: r.try_get("ip")?,
                    user_agent: r.try_get("user_agent")?,
                });
            }
            Ok(out)
        })
    }

    /// Revocation log rows with id > `after`, oldest first, at most `limit`.
    pub async fn revocations_after(&self, after: i64, limit: i64) -> Result<Vec<Revocation>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, id_hash, at FROM session_revocations WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(Revocation {
                    id: r.try_get("id")?,
                    id_hash: r.try_get("id_hash")?,
                    at: r.try_get("at")?,
                });
            }
            Ok(out)
        })
    }

    /// Housekeeping: drops sessions created before `sessions_before` (past their
    /// absolute lifetime; the trigger logs them, harmlessly) and log rows older than
    /// `log_before`, always keeping the newest log row so readers can tell where the
    /// sequence stands.
    pub async fn prune_member_sessions(&self, sessions_before: i64, log_before: i64) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM user_sessions WHERE created_at < $1")
                .bind(sessions_before)
                .execute(p)
                .await?;
            sqlx::query(
                "DELETE FROM session_revocations WHERE at < $1
                 AND id < (SELECT MAX(id) FROM session_revocations)",
            )
            .bind(log_before)
            .execute(p)
            .await?;
            Ok(())
        })
    }
}
