//! The append-only audit log.

use super::{on_pool, Result, Store};
use crate::domain::audit::{AuditEntry, NewAudit};
use crate::domain::now_ms;
use sqlx::Row;

/// Appends an audit entry through `$exec`: the pool, or `&mut *tx` so that the entry
/// commits with the change it records. The one place the audit row is written.
macro_rules! insert_audit {
    ($exec:expr, $entry:expr, $at:expr) => {{
        let e: &$crate::domain::audit::NewAudit = $entry;
        sqlx::query(
            "INSERT INTO audit_log (tenant_id, actor, action, detail, ip, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.tenant_id)
        .bind(e.stored_actor().as_ref())
        .bind(e.action)
        .bind(e.stored_detail().as_ref())
        .bind(&e.ip)
        .bind($at)
        .execute($exec)
        .await?
    }};
}
pub(crate) use insert_audit;

impl Store {
    pub async fn audit(&self, e: &NewAudit) -> Result<()> {
        on_pool!(self, |p| {
            insert_audit!(p, e, now_ms());
            Ok(())
        })
    }

    /// Newest first; `before_id` pages back.
    pub async fn list_audit(
        &self,
        tenant_id: i64,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditEntry>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, tenant_id, actor, action, detail, ip, at FROM audit_log
                 WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(tenant_id)
            .bind(before_id.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(AuditEntry {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                    ip: r.try_get("ip")?,
                    at: r.try_get("at")?,
                });
            }
            Ok(out)
        })
    }
}
