//! Console admin accounts and their server-side sessions.

use super::audit::insert_audit;
use super::{on_pool, Result, Store, StoreError};
use crate::domain::audit::NewAudit;
use sqlx::Row;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AdminRecord {
    pub id: i64,
    pub tenant_id: i64,
    pub username: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    pub must_change_password: bool,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AdminSession {
    pub admin_id: i64,
    pub tenant_id: i64,
    pub username: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub must_change_password: bool,
}

impl Store {
    pub async fn create_admin(
        &self,
        tenant_id: i64,
        username: &str,
        password_hash: &str,
        must_change_password: bool,
    ) -> Result<i64> {
        on_pool!(self, |p| {
            let r = sqlx::query(
                "INSERT INTO admins (tenant_id, username, password_hash, must_change_password, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(tenant_id)
            .bind(username)
            .bind(password_hash)
            .bind(must_change_password)
            .bind(crate::domain::now_ms())
            .fetch_one(p)
            .await
            .map_err(|e| StoreError::unique(e, format!("admin {username:?}")))?;
            Ok(r.try_get("id")?)
        })
    }

    pub async fn admin_by_username(
        &self,
        tenant_id: i64,
        username: &str,
    ) -> Result<Option<AdminRecord>> {
        on_pool!(self, |p| {
            Ok(sqlx::query_as::<_, AdminRecord>(
                "SELECT id, tenant_id, username, password_hash, must_change_password
                 FROM admins WHERE tenant_id = $1 AND username = $2",
            )
            .bind(tenant_id)
            .bind(username)
            .fetch_optional(p)
            .await?)
        })
    }

    pub async fn count_admins(&self, tenant_id: i64) -> Result<i64> {
        on_pool!(self, |p| {
            let r = sqlx::query("SELECT COUNT(*) AS n FROM admins WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_one(p)
                .await?;
            Ok(r.try_get("n")?)
        })
    }

    /// Sets a new password hash and ends every session of that admin.
    pub async fn set_admin_password(
        &self,
        admin_id: i64,
        password_hash: &str,
        must_change: bool,
        audit: Option<&NewAudit>,
    ) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE admins SET password_hash = $1, must_change_password = $2 WHERE id = $3",
            )
            .bind(password_hash)
            .bind(must_change)
            .bind(admin_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("admin {admin_id}")));
            }
            sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
                .bind(admin_id)
                .execute(&mut *tx)
                .await?;
            if let Some(a) = audit {
                insert_audit!(&mut *tx, a, crate::domain::now_ms());
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Starts a session; `audit` (the sign-in) commits with it.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_admin_session(
        &self,
        id_hash: &str,
        admin_id: i64,
        tenant_id: i64,
        csrf: &str,
        now: i64,
        ip: Option<&str>,
        audit: Option<&NewAudit>,
    ) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO admin_sessions (id_hash, admin_id, tenant_id, csrf, created_at, last_seen_at, ip)
                 VALUES ($1, $2, $3, $4, $5, $5, $6)",
            )
            .bind(id_hash)
            .bind(admin_id)
            .bind(tenant_id)
            .bind(csrf)
            .bind(now)
            .bind(ip)
            .execute(&mut *tx)
            .await?;
            if let Some(a) = audit {
                insert_audit!(&mut *tx, a, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn admin_session(&self, id_hash: &str) -> Result<Option<AdminSession>> {
        on_pool!(self, |p| {
            Ok(sqlx::query_as::<_, AdminSession>(
                "SELECT s.admin_id, s.tenant_id, a.username, s.csrf, s.created_at, s.last_seen_at, a.must_change_password
                 FROM admin_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.id_hash = $1",
            )
            .bind(id_hash)
            .fetch_optional(p)
            .await?)
        })
    }

    pub async fn touch_admin_session(&self, id_hash: &str, now: i64) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(id_hash)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Ends a session; `audit` (the sign-out) commits with it.
    pub async fn delete_admin_session(
        &self,
        id_hash: &str,
        audit: Option<&NewAudit>,
    ) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(&mut *tx)
                .await?;
            if let Some(a) = audit {
                insert_audit!(&mut *tx, a, crate::domain::now_ms());
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
