//! The tenant's WeCom self-built apps (secrets sealed by the caller) and the
//! domain-verification files they serve. One row per (tenant, agentid): the main app the
//! wizard sets up, and model apps' own apps.

use super::audit::insert_audit;
use super::{on_pool, Result, Store, StoreError};
use crate::domain::audit::NewAudit;
use crate::domain::integration::IntegrationRole;
use crate::domain::now_ms;
use crate::domain::setup_progress::DoctorSummary;
use sqlx::Row;

/// A stored integration. Sealed fields stay sealed here; `crate::seal` opens them.
#[derive(Clone)]
pub struct IntegrationRecord {
    pub tenant_id: i64,
    pub agentid: i64,
    pub role: IntegrationRole,
    pub corpid: String,
    pub secret_sealed: Vec<u8>,
    pub callback_token_sealed: Vec<u8>,
    pub callback_aes_key_sealed: Vec<u8>,
    /// Which associated data the sealed fields were sealed under
    /// (`crate::app::SEAL_VERSION` for new ones; 1 = before the per-app key).
    pub seal_version: i32,
    /// The last `agent/get` answer, as JSON.
    pub agent_json: Option<String>,
    pub verified_at: Option<i64>,
    pub callback_verified_at: Option<i64>,
    pub updated_at: i64,
}

impl std::fmt::Debug for IntegrationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationRecord")
            .field("tenant_id", &self.tenant_id)
            .field("agentid", &self.agentid)
            .field("role", &self.role)
            .field("corpid", &self.corpid)
            .finish_non_exhaustive()
    }
}

/// Sealed fields re-sealed under new associated data.
pub struct Resealed {
    pub secret_sealed: Vec<u8>,
    pub callback_token_sealed: Vec<u8>,
    pub callback_aes_key_sealed: Vec<u8>,
    pub seal_version: i32,
}

const COLS: &str = "tenant_id, agentid, role, corpid, secret_sealed, callback_token_sealed, \
    callback_aes_key_sealed, seal_version, agent_json, verified_at, callback_verified_at, updated_at";

/// The row as stored; `record` checks the role.
#[derive(sqlx::FromRow)]
struct IntegrationRow {
    tenant_id: i64,
    agentid: i64,
    role: String,
    corpid: String,
    secret_sealed: Vec<u8>,
    callback_token_sealed: Vec<u8>,
    callback_aes_key_sealed: Vec<u8>,
    seal_version: i32,
    agent_json: Option<String>,
    verified_at: Option<i64>,
    callback_verified_at: Option<i64>,
    updated_at: i64,
}

fn record(r: IntegrationRow) -> Result<IntegrationRecord> {
    Ok(IntegrationRecord {
        tenant_id: r.tenant_id,
        agentid: r.agentid,
        role: IntegrationRole::parse(&r.role)
            .ok_or_else(|| StoreError::Corrupt(format!("integration role {:?}", r.role)))?,
        corpid: r.corpid,
        secret_sealed: r.secret_sealed,
        callback_token_sealed: r.callback_token_sealed,
        callback_aes_key_sealed: r.callback_aes_key_sealed,
        seal_version: r.seal_version,
        agent_json: r.agent_json,
        verified_at: r.verified_at,
        callback_verified_at: r.callback_verified_at,
        updated_at: r.updated_at,
    })
}

/// Inserts or updates `$r` inside the transaction `$tx`; the number of rows written (0: the
/// agentid is bound in the other role, which an upsert never changes).
macro_rules! upsert {
    ($tx:expr, $r:expr) => {
        sqlx::query(
            "INSERT INTO wecom_integrations (tenant_id, agentid, role, corpid, secret_sealed, callback_token_sealed,
                callback_aes_key_sealed, seal_version, agent_json, verified_at, callback_verified_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (tenant_id, agentid) DO UPDATE SET corpid = excluded.corpid,
                secret_sealed = excluded.secret_sealed, callback_token_sealed = excluded.callback_token_sealed,
                callback_aes_key_sealed = excluded.callback_aes_key_sealed, seal_version = excluded.seal_version,
                agent_json = excluded.agent_json, verified_at = excluded.verified_at,
                callback_verified_at = excluded.callback_verified_at, updated_at = excluded.updated_at
             WHERE wecom_integrations.role = excluded.role",
        )
        .bind($r.tenant_id)
        .bind($r.agentid)
        .bind($r.role.as_str())
        .bind(&$r.corpid)
        .bind(&$r.secret_sealed)
        .bind(&$r.callback_token_sealed)
        .bind(&$r.callback_aes_key_sealed)
        .bind($r.seal_version)
        .bind(&$r.agent_json)
        .bind($r.verified_at)
        .bind($r.callback_verified_at)
        .bind($r.updated_at)
        .execute(&mut *$tx)
        .await?
        .rows_affected()
    };
}

impl Store {
    /// Inserts or replaces the integration of one WeCom app of a tenant. Saving a main app
    /// under another agentid replaces the tenant's main app (there is at most one). An
    /// agentid already bound in the other role is refused (`Conflict`), never converted.
    pub async fn put_integration(&self, r: &IntegrationRecord) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            if r.role == IntegrationRole::Main {
                sqlx::query("DELETE FROM wecom_integrations WHERE tenant_id = $1 AND role = 'main' AND agentid <> $2")
                    .bind(r.tenant_id)
                    .bind(r.agentid)
                    .execute(&mut *tx)
                    .await?;
            }
            let n = upsert!(tx, r);
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "WeCom app {} of this tenant in another role",
                    r.agentid
                )));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The tenant's main WeCom app (the workbench app the directory follows), if set up.
    pub async fn main_integration(&self, tenant_id: i64) -> Result<Option<IntegrationRecord>> {
        on_pool!(self, |p| {
            let sql = format!(
                "SELECT {COLS} FROM wecom_integrations WHERE tenant_id = $1 AND role = 'main'"
            );
            let r = sqlx::query_as::<_, IntegrationRow>(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .fetch_optional(p)
                .await?;
            r.map(record).transpose()
        })
    }

    /// One WeCom app of the tenant, main or not.
    pub async fn integration(
        &self,
        tenant_id: i64,
        agentid: i64,
    ) -> Result<Option<IntegrationRecord>> {
        on_pool!(self, |p| {
            let sql = format!(
                "SELECT {COLS} FROM wecom_integrations WHERE tenant_id = $1 AND agentid = $2"
            );
            let r = sqlx::query_as::<_, IntegrationRow>(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(agentid)
                .fetch_optional(p)
                .await?;
            r.map(record).transpose()
        })
    }

    /// Every WeCom app of the tenant, the main one first.
    pub async fn integrations(&self, tenant_id: i64) -> Result<Vec<IntegrationRecord>> {
        on_pool!(self, |p| {
            let sql = format!(
                "SELECT {COLS} FROM wecom_integrations WHERE tenant_id = $1
                 ORDER BY CASE role WHEN 'main' THEN 0 ELSE 1 END, agentid"
            );
            let rows = sqlx::query_as::<_, IntegrationRow>(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .fetch_all(p)
                .await?;
            rows.into_iter().map(record).collect()
        })
    }

    /// Integrations (of every tenant) whose values are sealed under an older version.
    pub async fn integrations_sealed_before(&self, version: i32) -> Result<Vec<IntegrationRecord>> {
        on_pool!(self, |p| {
            let sql = format!("SELECT {COLS} FROM wecom_integrations WHERE seal_version < $1 ORDER BY tenant_id, agentid");
            let rows = sqlx::query_as::<_, IntegrationRow>(sqlx::AssertSqlSafe(sql))
                .bind(version)
                .fetch_all(p)
                .await?;
            rows.into_iter().map(record).collect()
        })
    }

    /// Replaces an integration's sealed values if they are still sealed under `from_version`
    /// (another instance, or a new secret saved meanwhile, wins). Whether it replaced them.
    pub async fn reseal_integration(
        &self,
        tenant_id: i64,
        agentid: i64,
        from_version: i32,
        v: &Resealed,
    ) -> Result<bool> {
        on_pool!(self, |p| {
            let n = sqlx::query(
                "UPDATE wecom_integrations SET secret_sealed = $1, callback_token_sealed = $2,
                    callback_aes_key_sealed = $3, seal_version = $4
                 WHERE tenant_id = $5 AND agentid = $6 AND seal_version = $7",
            )
            .bind(&v.secret_sealed)
            .bind(&v.callback_token_sealed)
            .bind(&v.callback_aes_key_sealed)
            .bind(v.seal_version)
            .bind(tenant_id)
            .bind(agentid)
            .bind(from_version)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n > 0)
        })
    }

    /// Binds the catalogue app `app_id` to its own WeCom app `r` (role `app`): stores the
    /// integration, links the app to it (dropping the integration it was bound to before)
    /// and writes the audit entry, in one transaction. `NotFound`: no such app; `Conflict`:
    /// the agentid is the main app's, or another app's.
    pub async fn bind_app_integration(
        &self,
        r: &IntegrationRecord,
        app_id: i64,
        audit: &NewAudit,
    ) -> Result<()> {
        debug_assert_eq!(r.role, IntegrationRole::App);
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let previous: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT wecom_agentid FROM apps WHERE tenant_id = $1 AND id = $2",
            )
            .bind(r.tenant_id)
            .bind(app_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(previous) = previous else {
                return Err(StoreError::NotFound(format!("app {app_id}")));
            };
            if upsert!(tx, r) == 0 {
                return Err(StoreError::Conflict(format!(
                    "WeCom app {} is this tenant's main app",
                    r.agentid
                )));
            }
            sqlx::query("UPDATE apps SET wecom_agentid = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                .bind(r.agentid)
                .bind(now)
                .bind(r.tenant_id)
                .bind(app_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::unique(e, format!("WeCom app {} bound to another app", r.agentid)))?;
            if let Some(prev) = previous.filter(|a| *a != r.agentid) {
                sqlx::query("DELETE FROM wecom_integrations WHERE tenant_id = $1 AND agentid = $2 AND role = 'app'")
                    .bind(r.tenant_id)
                    .bind(prev)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Unbinds the catalogue app `app_id` from its own WeCom app: the link and the
    /// integration (its sealed Secret) go, with the audit entry, in one transaction.
    /// Returns the agentid it was bound to (`None`: it was not bound); `NotFound`: no app.
    pub async fn unbind_app_integration(
        &self,
        tenant_id: i64,
        app_id: i64,
        audit: &NewAudit,
    ) -> Result<Option<i64>> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let bound: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT wecom_agentid FROM apps WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(app_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(bound) = bound else {
                return Err(StoreError::NotFound(format!("app {app_id}")));
            };
            let Some(agentid) = bound else {
                return Ok(None);
            };
            sqlx::query("UPDATE apps SET wecom_agentid = NULL, updated_at = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(now)
                .bind(tenant_id)
                .bind(app_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM wecom_integrations WHERE tenant_id = $1 AND agentid = $2 AND role = 'app'")
                .bind(tenant_id)
                .bind(agentid)
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(Some(agentid))
        })
    }

    /// The agentid of the WeCom app `app_id` is bound to, if any (`NotFound`: no such app).
    pub async fn app_wecom_agentid(&self, tenant_id: i64, app_id: i64) -> Result<Option<i64>> {
        on_pool!(self, |p| {
            let v: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT wecom_agentid FROM apps WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(app_id)
            .fetch_optional(p)
            .await?;
            v.ok_or_else(|| StoreError::NotFound(format!("app {app_id}")))
        })
    }

    /// The catalogue app bound to the WeCom app `agentid`, if any.
    pub async fn app_of_wecom_agentid(&self, tenant_id: i64, agentid: i64) -> Result<Option<i64>> {
        on_pool!(self, |p| {
            Ok(sqlx::query_scalar(
                "SELECT id FROM apps WHERE tenant_id = $1 AND wecom_agentid = $2",
            )
            .bind(tenant_id)
            .bind(agentid)
            .fetch_optional(p)
            .await?)
        })
    }

    pub async fn set_agent_snapshot(
        &self,
        tenant_id: i64,
        agentid: i64,
        agent_json: &str,
    ) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE wecom_integrations SET agent_json = $1, verified_at = $2 WHERE tenant_id = $3 AND agentid = $4")
                .bind(agent_json)
                .bind(now_ms())
                .bind(tenant_id)
                .bind(agentid)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    pub async fn set_callback_verified(&self, tenant_id: i64, agentid: i64, at: i64) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE wecom_integrations SET callback_verified_at = $1 WHERE tenant_id = $2 AND agentid = $3")
                .bind(at)
                .bind(tenant_id)
                .bind(agentid)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Serves `content` at `/{filename}`; `audit` commits with it.
    pub async fn put_verify_file(
        &self,
        tenant_id: i64,
        filename: &str,
        content: &str,
        audit: Option<&NewAudit>,
    ) -> Result<()> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO domain_verifications (tenant_id, filename, content, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, filename) DO UPDATE SET content = excluded.content, created_at = excluded.created_at",
            )
            .bind(tenant_id)
            .bind(filename)
            .bind(content)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if let Some(a) = audit {
                insert_audit!(&mut *tx, a, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn verify_file(&self, tenant_id: i64, filename: &str) -> Result<Option<String>> {
        on_pool!(self, |p| {
            let r = sqlx::query(
                "SELECT content FROM domain_verifications WHERE tenant_id = $1 AND filename = $2",
            )
            .bind(tenant_id)
            .bind(filename)
            .fetch_optional(p)
            .await?;
            match r {
                Some(r) => Ok(Some(r.try_get("content")?)),
                None => Ok(None),
            }
        })
    }

    pub async fn list_verify_files(&self, tenant_id: i64) -> Result<Vec<(String, String)>> {
        on_pool!(self, |p| {
            let rows = sqlx::query("SELECT filename, content FROM domain_verifications WHERE tenant_id = $1 ORDER BY filename")
                .bind(tenant_id)
                .fetch_all(p)
                .await?;
            let mut out = Vec::new();
            for r in &rows {
                out.push((r.try_get("filename")?, r.try_get("content")?));
            }
            Ok(out)
        })
    }

    /// Stops serving the file; `audit` commits with it, if there was one to delete.
    pub async fn delete_verify_file(
        &self,
        tenant_id: i64,
        filename: &str,
        audit: Option<&NewAudit>,
    ) -> Result<bool> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "DELETE FROM domain_verifications WHERE tenant_id = $1 AND filename = $2",
            )
            .bind(tenant_id)
            .bind(filename)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if let (Some(a), true) = (audit, n > 0) {
                insert_audit!(&mut *tx, a, now_ms());
            }
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    /// Keeps doctor's last result for the tenant (replacing the one before).
    pub async fn put_doctor_summary(&self, tenant_id: i64, summary: &DoctorSummary) -> Result<()> {
        let json =
            serde_json::to_string(summary).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO doctor_results (tenant_id, at, summary_json) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id) DO UPDATE SET at = excluded.at, summary_json = excluded.summary_json",
            )
            .bind(tenant_id)
            .bind(summary.at)
            .bind(&json)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// Doctor's last result for the tenant, if it ever ran.
    pub async fn doctor_summary(&self, tenant_id: i64) -> Result<Option<DoctorSummary>> {
        let row: Option<(String,)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT summary_json FROM doctor_results WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(p)
                .await
        })?;
        row.map(|(j,)| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }
}
