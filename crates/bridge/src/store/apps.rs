//! The app catalogue: apps, their access policies, icons, and members' opens; and where a
//! member sits in the directory (departments with ancestors, tags), which policies need.

use super::audit::insert_audit;
use super::{on_pool, Result, Store, StoreError};
use crate::domain::apps::{Access, App, AppDraft, Chosen, Icon, IconKind, Placement};
use crate::domain::audit::NewAudit;
use crate::domain::now_ms;
use std::collections::{HashMap, HashSet};

const APP_COLS: &str = "id, tenant_id, slug, name_zh, name_en, icon, icon_kind, category, \
     description, position, enabled, url, everyone, contact";

#[derive(sqlx::FromRow)]
struct AppRow {
    id: i64,
    tenant_id: i64,
    slug: String,
    name_zh: String,
    name_en: String,
    icon: String,
    icon_kind: Option<String>,
    category: String,
    description: String,
    position: i64,
    enabled: bool,
    url: String,
    everyone: bool,
    contact: String,
}

#[derive(sqlx::FromRow)]
struct AccessRow {
    app_id: i64,
    kind: String,
    ref_id: i64,
}

fn assemble(rows: Vec<AppRow>, access: Vec<AccessRow>) -> Vec<App> {
    let mut chosen: HashMap<i64, Chosen> = HashMap::new();
    for a in access {
        let c = chosen.entry(a.app_id).or_default();
        match a.kind.as_str() {
            "department" => c.departments.push(a.ref_id),
            "tag" => c.tags.push(a.ref_id),
            _ => c.users.push(a.ref_id),
        }
    }
    rows.into_iter()
        .map(|r| App {
            id: r.id,
            tenant_id: r.tenant_id,
            icon: match r.icon_kind.as_deref().and_then(IconKind::parse) {
                Some(kind) if r.icon == "uploaded" => Icon::Uploaded { kind },
                _ => Icon::Builtin(r.icon),
            },
            access: if r.everyone {
                Access::Everyone
            } else {
                Access::Chosen(chosen.remove(&r.id).unwrap_or_default())
            },
            slug: r.slug,
            name_zh: r.name_zh,
            name_en: r.name_en,
            category: r.category,
            description: r.description,
            position: r.position,
            enabled: r.enabled,
            url: r.url,
            contact: r.contact,
        })
        .collect()
}

macro_rules! write_access {
    ($tx:expr, $app_id:expr, $access:expr) => {{
        sqlx::query("DELETE FROM app_access WHERE app_id = $1")
            .bind($app_id)
            .execute(&mut *$tx)
            .await?;
        if let Access::Chosen(c) = $access {
            for (kind, ids) in [
                ("department", &c.departments),
                ("tag", &c.tags),
                ("user", &c.users),
            ] {
                for id in ids {
                    sqlx::query(
                        "INSERT INTO app_access (app_id, kind, ref_id) VALUES ($1, $2, $3)",
                    )
                    .bind($app_id)
                    .bind(kind)
                    .bind(*id)
                    .execute(&mut *$tx)
                    .await?;
                }
            }
        }
    }};
}

impl Store {
    /// Every app of the tenant, with its policy.
    pub async fn list_apps(&self, tenant_id: i64) -> Result<Vec<App>> {
        on_pool!(self, |p| {
            let rows: Vec<AppRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                // APP_COLS is a constant column list.
                "SELECT {APP_COLS} FROM apps WHERE tenant_id = $1 ORDER BY position, id"
            )))
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            let access: Vec<AccessRow> = sqlx::query_as(
                "SELECT a.app_id, a.kind, a.ref_id FROM app_access a JOIN apps p ON p.id = a.app_id
                 WHERE p.tenant_id = $1 ORDER BY a.app_id, a.kind, a.ref_id",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            Ok(assemble(rows, access))
        })
    }

    pub async fn app_by_slug(&self, tenant_id: i64, slug: &str) -> Result<Option<App>> {
        on_pool!(self, |p| {
            let row: Option<AppRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {APP_COLS} FROM apps WHERE tenant_id = $1 AND slug = $2"
            )))
            .bind(tenant_id)
            .bind(slug)
            .fetch_optional(p)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let access: Vec<AccessRow> = sqlx::query_as(
                "SELECT app_id, kind, ref_id FROM app_access WHERE app_id = $1 ORDER BY kind, ref_id",
            )
            .bind(row.id)
            .fetch_all(p)
            .await?;
            Ok(assemble(vec![row], access).pop())
        })
    }

    pub async fn app_by_id(&self, tenant_id: i64, id: i64) -> Result<Option<App>> {
        let slug: Option<String> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT slug FROM apps WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        match slug {
            Some(s) => self.app_by_slug(tenant_id, &s).await,
            None => Ok(None),
        }
    }

    /// Creates an app with its policy and the audit entry, in one transaction.
    pub async fn insert_app(&self, tenant_id: i64, d: &AppDraft, audit: &NewAudit) -> Result<i64> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO apps (tenant_id, slug, name_zh, name_en, icon, category, description, position,
                                   enabled, url, everyone, contact, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id",
            )
            .bind(tenant_id)
            .bind(&d.slug)
            .bind(&d.name_zh)
            .bind(&d.name_en)
            .bind(&d.icon)
            .bind(&d.category)
            .bind(&d.description)
            .bind(d.position)
            .bind(d.enabled)
            .bind(&d.url)
            .bind(matches!(d.access, Access::Everyone))
            .bind(&d.contact)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::unique(e, format!("app {}", d.slug)))?;
            write_access!(tx, id, &d.access);
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Saves an app's fields and policy with the audit entry. `false`: no such app.
    pub async fn update_app(
        &self,
        tenant_id: i64,
        id: i64,
        d: &AppDraft,
        audit: &NewAudit,
    ) -> Result<bool> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            // An uploaded icon stays unless the admin picks a built-in one.
            let n = sqlx::query(
                "UPDATE apps SET slug = $1, name_zh = $2, name_en = $3,
                        icon = CASE WHEN $4 = 'uploaded' AND icon_kind IS NULL THEN 'app' ELSE $4 END,
                        category = $5, description = $6, position = $7, enabled = $8, url = $9,
                        everyone = $10, contact = $11, updated_at = $12
                 WHERE tenant_id = $13 AND id = $14",
            )
            .bind(&d.slug)
            .bind(&d.name_zh)
            .bind(&d.name_en)
            .bind(&d.icon)
            .bind(&d.category)
            .bind(&d.description)
            .bind(d.position)
            .bind(d.enabled)
            .bind(&d.url)
            .bind(matches!(d.access, Access::Everyone))
            .bind(&d.contact)
            .bind(now)
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::unique(e, format!("app {}", d.slug)))?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            write_access!(tx, id, &d.access);
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Deletes an app (its policy and opens go with it) and unlinks its OIDC clients.
    pub async fn delete_app(&self, tenant_id: i64, id: i64, audit: &NewAudit) -> Result<bool> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE oidc_clients SET app_id = NULL WHERE tenant_id = $1 AND app_id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            // The app's own WeCom app goes with it: its sealed Secret is kept nowhere else.
            sqlx::query(
                "DELETE FROM wecom_integrations WHERE tenant_id = $1 AND role = 'app'
                 AND agentid = (SELECT wecom_agentid FROM apps WHERE tenant_id = $1 AND id = $2)",
            )
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let n = sqlx::query("DELETE FROM apps WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn set_app_icon(
        &self,
        tenant_id: i64,
        id: i64,
        kind: IconKind,
        bytes: &[u8],
        audit: &NewAudit,
    ) -> Result<bool> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE apps SET icon = 'uploaded', icon_kind = $1, icon_data = $2, updated_at = $3
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(kind.as_str())
            .bind(bytes)
            .bind(now)
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn app_icon(
        &self,
        tenant_id: i64,
        slug: &str,
    ) -> Result<Option<(IconKind, Vec<u8>)>> {
        let row: Option<(Option<String>, Option<Vec<u8>>)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT icon_kind, icon_data FROM apps WHERE tenant_id = $1 AND slug = $2 AND icon = 'uploaded'",
            )
            .bind(tenant_id)
            .bind(slug)
            .fetch_optional(p)
            .await?
        });
        Ok(row.and_then(|(k, d)| Some((IconKind::parse(k.as_deref()?)?, d?))))
    }

    /// A member's departments with every ancestor, and the tags they hold directly or
    /// through a tagged department above them.
    pub async fn member_placement(&self, tenant_id: i64, user_id: i64) -> Result<Placement> {
        // (department ids, (department, parent) pairs, direct tags, (tag, department)).
        type Rows = (Vec<i64>, Vec<(i64, i64)>, Vec<i64>, Vec<(i64, i64)>);
        let (deps, parents, direct_tags, dept_tags): Rows = on_pool!(self, |p| {
            let deps: Vec<i64> = sqlx::query_scalar(
                "SELECT department_id FROM user_departments WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(p)
            .await?;
            // The ancestors of the member's departments, by one recursive walk.
            let parents: Vec<(i64, i64)> = sqlx::query_as(
                "WITH RECURSIVE up(id, parent_id) AS (
                     SELECT d.id, d.parent_id FROM departments d
                     JOIN user_departments ud ON ud.tenant_id = d.tenant_id AND ud.department_id = d.id
                     WHERE d.tenant_id = $1 AND ud.user_id = $2
                     UNION
                     SELECT d.id, d.parent_id FROM departments d JOIN up ON d.id = up.parent_id
                     WHERE d.tenant_id = $1
                 ) SELECT id, parent_id FROM up",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(p)
            .await?;
            let direct: Vec<i64> = sqlx::query_scalar(
                "SELECT tag_id FROM tag_users WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(p)
            .await?;
            let dept_tags: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT tag_id, department_id FROM tag_departments WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            (deps, parents, direct, dept_tags)
        });
        let parent: HashMap<i64, i64> = parents.into_iter().collect();
        let all = crate::domain::apps::with_ancestors(&deps, &|d| parent.get(&d).copied());
        let mut tags: HashSet<i64> = direct_tags.into_iter().collect();
        tags.extend(
            dept_tags
                .into_iter()
                .filter(|(_, d)| all.contains(d))
                .map(|(t, _)| t),
        );
        Ok(Placement {
            user_id,
            departments_with_ancestors: all,
            tags,
        })
    }

    pub async fn record_app_open(&self, tenant_id: i64, app_id: i64, user_id: i64) -> Result<()> {
        let now = now_ms();
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO app_opens (app_id, user_id, tenant_id, opens, last_at) VALUES ($1, $2, $3, 1, $4)
                 ON CONFLICT (user_id, app_id) DO UPDATE SET opens = app_opens.opens + 1, last_at = excluded.last_at",
            )
            .bind(app_id)
            .bind(user_id)
            .bind(tenant_id)
            .bind(now)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// (app id, opens, last opened) of one member.
    pub async fn app_opens_of(&self, tenant_id: i64, user_id: i64) -> Result<Vec<(i64, i64, i64)>> {
        on_pool!(self, |p| {
            Ok(sqlx::query_as(
                "SELECT app_id, opens, last_at FROM app_opens WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(p)
            .await?)
        })
    }
}

impl Store {
    /// Internal ids of members by WeCom userid (any spelling); unknown userids are left out.
    pub async fn users_by_wecom_userids(
        &self,
        tenant_id: i64,
        userids: &[String],
    ) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        on_pool!(self, |p| {
            for u in userids {
                let id: Option<i64> = sqlx::query_scalar(
                    "SELECT user_id FROM user_identities WHERE tenant_id = $1 AND kind = 'wecom' AND external_id = $2",
                )
                .bind(tenant_id)
                .bind(u.to_ascii_lowercase())
                .fetch_optional(p)
                .await?;
                if let Some(id) = id {
                    out.push((u.clone(), id));
                }
            }
        });
        Ok(out)
    }

    /// The WeCom userid (as WeCom spells it) of each of `ids` that has one.
    pub async fn wecom_userids_of(
        &self,
        tenant_id: i64,
        ids: &[i64],
    ) -> Result<HashMap<i64, String>> {
        let mut out = HashMap::new();
        on_pool!(self, |p| {
            for id in ids {
                let u: Option<String> = sqlx::query_scalar(
                    "SELECT display_id FROM user_identities WHERE tenant_id = $1 AND kind = 'wecom' AND user_id = $2",
                )
                .bind(tenant_id)
                .bind(*id)
                .fetch_optional(p)
                .await?;
                if let Some(u) = u {
                    out.insert(*id, u);
                }
            }
        });
        Ok(out)
    }
}
