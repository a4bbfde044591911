//! The tenant's WeCom self-built app settings (secrets sealed by the caller) and the
//! domain-verification files it serves.

use super::{on_pool, Result, Store};
use crate::domain::now_ms;
use sqlx::Row;

/// A stored integration. Sealed fields stay sealed here; `crate::seal` opens them.
#[derive(Clone)]
pub struct IntegrationRecord {
    pub tenant_id: i64,
    pub corpid: String,
    pub agentid: i64,
    pub secret_sealed: Vec<u8>,
    pub callback_token_sealed: Vec<u8>,
    pub callback_aes_key_sealed: Vec<u8>,
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
            .field("corpid", &self.corpid)
            .field("agentid", &self.agentid)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Inserts or replaces the integration of a tenant.
    pub async fn put_integration(&self, r: &IntegrationRecord) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO wecom_integrations (tenant_id, corpid, agentid, secret_sealed, callback_token_sealed,
                    callback_aes_key_sealed, agent_json, verified_at, callback_verified_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (tenant_id) DO UPDATE SET corpid = excluded.corpid, agentid = excluded.agentid,
                    secret_sealed = excluded.secret_sealed, callback_token_sealed = excluded.callback_token_sealed,
                    callback_aes_key_sealed = excluded.callback_aes_key_sealed, agent_json = excluded.agent_json,
                    verified_at = excluded.verified_at, callback_verified_at = excluded.callback_verified_at,
                    updated_at = excluded.updated_at",
            )
            .bind(r.tenant_id)
            .bind(&r.corpid)
            .bind(r.agentid)
            .bind(&r.secret_sealed)
            .bind(&r.callback_token_sealed)
            .bind(&r.callback_aes_key_sealed)
            .bind(&r.agent_json)
            .bind(r.verified_at)
            .bind(r.callback_verified_at)
            .bind(r.updated_at)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    pub async fn integration(&self, tenant_id: i64) -> Result<Option<IntegrationRecord>> {
        on_pool!(self, p => {
            let r = sqlx::query(
                "SELECT tenant_id, corpid, agentid, secret_sealed, callback_token_sealed, callback_aes_key_sealed,
                        agent_json, verified_at, callback_verified_at, updated_at
                 FROM wecom_integrations WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_optional(p)
            .await?;
            match r {
                None => Ok(None),
                Some(r) => Ok(Some(IntegrationRecord {
                    tenant_id: r.try_get("tenant_id")?,
                    corpid: r.try_get("corpid")?,
                    agentid: r.try_get("agentid")?,
                    secret_sealed: r.try_get("secret_sealed")?,
                    callback_token_sealed: r.try_get("callback_token_sealed")?,
                    callback_aes_key_sealed: r.try_get("callback_aes_key_sealed")?,
                    agent_json: r.try_get("agent_json")?,
                    verified_at: r.try_get("verified_at")?,
                    callback_verified_at: r.try_get("callback_verified_at")?,
                    updated_at: r.try_get("updated_at")?,
                })),
            }
        })
    }

    pub async fn set_agent_snapshot(&self, tenant_id: i64, agent_json: &str) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE wecom_integrations SET agent_json = $1, verified_at = $2 WHERE tenant_id = $3")
                .bind(agent_json)
                .bind(now_ms())
                .bind(tenant_id)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    pub async fn set_callback_verified(&self, tenant_id: i64, at: i64) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE wecom_integrations SET callback_verified_at = $1 WHERE tenant_id = $2")
                .bind(at)
                .bind(tenant_id)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    pub async fn put_verify_file(
        &self,
        tenant_id: i64,
        filename: &str,
        content: &str,
    ) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO domain_verifications (tenant_id, filename, content, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, filename) DO UPDATE SET content = excluded.content, created_at = excluded.created_at",
            )
            .bind(tenant_id)
            .bind(filename)
            .bind(content)
            .bind(now_ms())
            .execute(p)
            .await?;
            Ok(())
        })
    }

    pub async fn verify_file(&self, tenant_id: i64, filename: &str) -> Result<Option<String>> {
        on_pool!(self, p => {
            let r = sqlx::query("SELECT content FROM domain_verifications WHERE tenant_id = $1 AND filename = $2")
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
        on_pool!(self, p => {
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

    pub async fn delete_verify_file(&self, tenant_id: i64, filename: &str) -> Result<bool> {
        on_pool!(self, p => {
            let n = sqlx::query("DELETE FROM domain_verifications WHERE tenant_id = $1 AND filename = $2")
                .bind(tenant_id)
                .bind(filename)
                .execute(p)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
    }
}
