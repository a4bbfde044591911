//! The append-only audit log.

use super::AuditQuery;
use super::{on_pool, Result, Store};
use crate::domain::audit::{AuditEntry, NewAudit};
use crate::domain::now_ms;

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
        let q = AuditQuery {
            before_id,
            limit,
            ..AuditQuery::default()
        };
        self.audit_by_filter(tenant_id, &q).await
    }

    /// The actors and the actions the tenant's log holds (at most 500 of each), for the
    /// console's filters.
    pub async fn audit_facets(&self, tenant_id: i64) -> Result<(Vec<String>, Vec<String>)> {
        on_pool!(self, |p| {
            let actors: Vec<(String,)> = sqlx::query_as(
                "SELECT DISTINCT actor FROM audit_log WHERE tenant_id = $1 ORDER BY actor LIMIT 500",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            let actions: Vec<(String,)> = sqlx::query_as(
                "SELECT DISTINCT action FROM audit_log WHERE tenant_id = $1 ORDER BY action LIMIT 500",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            Ok((
                actors.into_iter().map(|a| a.0).collect(),
                actions.into_iter().map(|a| a.0).collect(),
            ))
        })
    }

    /// Deletes the entries of every tenant recorded before `before` (ms): the retention
    /// period. Harmless when several instances run it at once.
    pub async fn purge_audit(&self, before: i64) -> Result<u64> {
        on_pool!(self, |p| {
            Ok(sqlx::query("DELETE FROM audit_log WHERE at < $1")
                .bind(before)
                .execute(p)
                .await?
                .rows_affected())
        })
    }
}
