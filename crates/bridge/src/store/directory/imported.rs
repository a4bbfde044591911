//! A third-party app's imported directory, kept until the switch re-links it.

use super::*;
use crate::domain::now_ms;
use crate::domain::user::UserStatus;
use crate::store::{on_pool, Result, Store, StoreError};
use sqlx::Row;

impl Store {
    /// The tenant's third-party identities (an imported directory not switched yet).
    pub async fn imported_identities(&self, tenant_id: i64) -> Result<Vec<ImportedIdentity>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT i.user_id, i.corpid, i.external_id, i.source_agentid, u.name FROM user_identities i
                 JOIN users u ON u.id = i.user_id WHERE i.tenant_id = $1 AND i.kind = 'wecom_open' ORDER BY i.user_id",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(ImportedIdentity {
                    user_id: r.try_get("user_id")?,
                    corpid: r.try_get("corpid")?,
                    open_userid: r.try_get("external_id")?,
                    source_agentid: r.try_get("source_agentid")?,
                    name: r.try_get("name")?,
                });
            }
            Ok(out)
        })
    }

    /// Stores a directory as a third-party app imports it: users named by their
    /// open_userid, each with a `wecom_open` identity issued to `source_agentid`. Returns
    /// the internal user ids in order.
    pub async fn seed_imported_directory(
        &self,
        tenant_id: i64,
        corpid: &str,
        source_agentid: i64,
        members: &[ImportedMember],
        status: UserStatus,
    ) -> Result<Vec<i64>> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let mut ids = Vec::with_capacity(members.len());
            for m in members {
                let id: i64 = sqlx::query(
                    "INSERT INTO users (tenant_id, name, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
                )
                .bind(tenant_id)
                .bind(&m.name)
                .bind(status.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
                sqlx::query(
                    "INSERT INTO user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, source_agentid, created_at)
                     VALUES ($1, 'wecom_open', $2, $3, $4, $3, $5, $6)",
                )
                .bind(tenant_id)
                .bind(corpid)
                .bind(&m.open_userid)
                .bind(id)
                .bind(source_agentid)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::unique(e, format!("open_userid {}", m.open_userid)))?;
                ids.push(id);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// Identities retired by the switch: (open_userid, user id, relinked userid).
    pub async fn retired_identities(
        &self,
        tenant_id: i64,
    ) -> Result<Vec<(String, i64, Option<String>)>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT external_id, user_id, relinked_userid FROM retired_identities WHERE tenant_id = $1 ORDER BY user_id",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push((
                    r.try_get("external_id")?,
                    r.try_get("user_id")?,
                    r.try_get("relinked_userid")?,
                ));
            }
            Ok(out)
        })
    }

    /// Whether the pool was closed (the server stopped): background tasks end then.
    pub fn is_closed(&self) -> bool {
        on_pool!(self, |p| p.is_closed())
    }
}
