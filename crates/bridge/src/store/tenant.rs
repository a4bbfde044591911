//! Tenants: create, look up (by slug, id, domain), change edition, domain, mode.

use super::audit::insert_audit;
use super::{on_pool, parse, Result, Store, StoreError};
use crate::domain::now_ms;
use crate::domain::tenant::{Edition, IntegrationMode, Tenant};
use sqlx::FromRow;

const COLS: &str =
    "id, slug, name, edition, domain, integration_mode, created_at, member_session_idle_secs, time_zone";

/// A `tenants` row as [`COLS`] reads it; [`TenantRow::into_tenant`] checks its enums.
#[derive(sqlx::FromRow)]
struct TenantRow {
    id: i64,
    slug: String,
    name: String,
    edition: String,
    domain: Option<String>,
    integration_mode: String,
    created_at: i64,
    member_session_idle_secs: Option<i64>,
    time_zone: String,
}

impl TenantRow {
    fn into_tenant(self) -> Result<Tenant> {
        Ok(Tenant {
            id: self.id,
            slug: self.slug,
            name: self.name,
            edition: parse(self.edition)?,
            domain: self.domain,
            integration_mode: parse(self.integration_mode)?,
            created_at: self.created_at,
            member_session_idle_secs: self.member_session_idle_secs,
            time_zone: self.time_zone,
        })
    }
}

impl Store {
    pub async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        edition: Edition,
        domain: Option<&str>,
    ) -> Result<Tenant> {
        let sql = format!(
            "INSERT INTO tenants (slug, name, edition, domain, integration_mode, created_at)
             VALUES ($1, $2, $3, $4, 'none', $5) RETURNING {COLS}"
        );
        on_pool!(self, |p| {
            let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(slug)
                .bind(name)
                .bind(edition.as_str())
                .bind(domain)
                .bind(now_ms())
                .fetch_one(p)
                .await
                .map_err(|e| {
                    StoreError::unique(e, format!("tenant {slug:?} or domain {domain:?}"))
                })?;
            Ok(TenantRow::from_row(&r)?.into_tenant()?)
        })
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let sql = format!("SELECT {COLS} FROM tenants ORDER BY id");
        on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(TenantRow::from_row(r)?.into_tenant()?);
            }
            Ok(out)
        })
    }

    async fn tenant_where(&self, clause: &str, arg: TenantKey<'_>) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLS} FROM tenants WHERE {clause}");
        on_pool!(self, |p| {
            let q = sqlx::query(sqlx::AssertSqlSafe(sql));
            let q = match arg {
                TenantKey::Id(id) => q.bind(id),
                TenantKey::Text(s) => q.bind(s),
            };
            match q.fetch_optional(p).await? {
                Some(r) => Ok(Some(TenantRow::from_row(&r)?.into_tenant()?)),
                None => Ok(None),
            }
        })
    }

    pub async fn tenant_by_id(&self, id: i64) -> Result<Option<Tenant>> {
        self.tenant_where("id = $1", TenantKey::Id(id)).await
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        self.tenant_where("slug = $1", TenantKey::Text(slug)).await
    }

    /// The tenant whose custom domain is `host` (`host[:port]`, compared lower-case).
    pub async fn tenant_by_domain(&self, host: &str) -> Result<Option<Tenant>> {
        let host = host.to_ascii_lowercase();
        self.tenant_where("domain = $1", TenantKey::Text(&host))
            .await
    }

    async fn update_tenant(&self, id: i64, column: &str, value: Option<&str>) -> Result<Tenant> {
        let sql = format!("UPDATE tenants SET {column} = $1 WHERE id = $2 RETURNING {COLS}");
        on_pool!(self, |p| {
            let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(value)
                .bind(id)
                .fetch_optional(p)
                .await
                .map_err(|e| StoreError::unique(e, format!("{column} {value:?}")))?
                .ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))?;
            Ok(TenantRow::from_row(&r)?.into_tenant()?)
        })
    }

    pub async fn set_tenant_edition(&self, id: i64, edition: Edition) -> Result<Tenant> {
        self.update_tenant(id, "edition", Some(edition.as_str()))
            .await
    }

    pub async fn set_tenant_domain(&self, id: i64, domain: Option<&str>) -> Result<Tenant> {
        self.update_tenant(id, "domain", domain).await
    }

    /// The console's time zone (an IANA name the caller has checked).
    pub async fn set_tenant_time_zone(&self, id: i64, tz: &str) -> Result<Tenant> {
        self.update_tenant(id, "time_zone", Some(tz)).await
    }

    pub async fn set_integration_mode(&self, id: i64, mode: IntegrationMode) -> Result<Tenant> {
        self.update_tenant(id, "integration_mode", Some(mode.as_str()))
            .await
    }

    /// The workbench's idle timeout (`None`: the instance default), with its audit entry.
    pub async fn set_member_session_idle(
        &self,
        tenant_id: i64,
        secs: Option<i64>,
        audit: &crate::domain::audit::NewAudit,
    ) -> Result<()> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE tenants SET member_session_idle_secs = $1 WHERE id = $2")
                .bind(secs)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(())
        })
    }
}

enum TenantKey<'a> {
    Id(i64),
    Text(&'a str),
}
