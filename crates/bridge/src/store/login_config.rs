//! Login configuration: which identity sources are on, per workbench (and later per
//! app). Read from the database on every request, never cached in the process, so a
//! change applies on the next request on every instance.

use super::audit::insert_audit;
use super::{on_pool, Result, Store};
use crate::domain::audit::NewAudit;
use crate::domain::login::{LoginConfig, LoginTarget};
use crate::domain::now_ms;
use sqlx::Row;

impl Store {
    pub async fn login_config(&self, tenant_id: i64, target: LoginTarget) -> Result<LoginConfig> {
        let key = target.key();
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT source, enabled FROM login_sources WHERE tenant_id = $1 AND target = $2",
            )
            .bind(tenant_id)
            .bind(&key)
            .fetch_all(p)
            .await?;
            let mut pairs = Vec::with_capacity(rows.len());
            for r in &rows {
                pairs.push((
                    r.try_get::<String, _>("source")?,
                    r.try_get::<bool, _>("enabled")?,
                ));
            }
            Ok(LoginConfig::from_rows(
                pairs.iter().map(|(s, e)| (s.as_str(), *e)),
            ))
        })
    }

    /// Saves every source of `config` for `target` in one transaction.
    pub async fn set_login_config(
        &self,
        tenant_id: i64,
        target: LoginTarget,
        config: &LoginConfig,
        actor: &str,
        audit: Option<&NewAudit>,
    ) -> Result<()> {
        let key = target.key();
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for (src, on) in &config.sources {
                sqlx::query(
                    "INSERT INTO login_sources (tenant_id, target, source, enabled, updated_at, updated_by)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (tenant_id, target, source)
                     DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at,
                                   updated_by = excluded.updated_by",
                )
                .bind(tenant_id)
                .bind(&key)
                .bind(src.as_str())
                .bind(*on)
                .bind(now)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(a) = audit {
                insert_audit!(&mut *tx, a, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
