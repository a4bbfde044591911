//! What the Users page shows beside a user (WeCom identities, departments, tags, the
//! filter choices), and `upsert_wecom_user`, which puts one WeCom member into the
//! directory: for tests and seeding (directory sync writes through `store::directory`).

use super::{in_list, on_pool, Result, Store, IN_CHUNK};
use crate::domain::now_ms;
use crate::domain::user::UserStatus;
use sqlx::Row;
use std::collections::HashMap;

/// One WeCom member to put into the directory (tests and seeding).
#[derive(Clone, Debug)]
pub struct WecomUserSeed {
    pub userid: String,
    pub name: String,
    pub status: UserStatus,
    pub position: String,
    /// (department id, name, parent id); the first is the main department.
    pub departments: Vec<(i64, String, i64)>,
    /// (tag id, name).
    pub tags: Vec<(i64, String)>,
}

/// A user's WeCom identity, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRecord {
    pub kind: String,
    pub corpid: String,
    /// The userid as WeCom spells it.
    pub display_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserExtras {
    pub identities: Vec<IdentityRecord>,
    /// (id, name), main department first.
    pub departments: Vec<(i64, String)>,
    pub tags: Vec<(i64, String)>,
}

impl Store {
    /// Creates or updates the user behind a WeCom userid of `corpid`, with its
    /// departments and tags (created when missing). Returns the internal user id.
    pub async fn upsert_wecom_user(
        &self,
        tenant_id: i64,
        corpid: &str,
        u: &WecomUserSeed,
    ) -> Result<i64> {
        let now = now_ms();
        let corp = corpid.to_ascii_lowercase();
        let key = u.userid.to_ascii_lowercase();
        let main = u.departments.first().map(|d| d.0);
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let existing = sqlx::query(
                "SELECT user_id FROM user_identities WHERE tenant_id = $1 AND kind = 'wecom' AND corpid = $2 AND external_id = $3",
            )
            .bind(tenant_id)
            .bind(&corp)
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
            let user_id: i64 = match existing {
                Some(r) => {
                    let id: i64 = r.try_get("user_id")?;
                    sqlx::query(
                        "UPDATE users SET name = $1, status = $2, position = $3, main_department = $4, updated_at = $5
                         WHERE tenant_id = $6 AND id = $7",
                    )
                    .bind(&u.name)
                    .bind(u.status.as_str())
                    .bind(&u.position)
                    .bind(main)
                    .bind(now)
                    .bind(tenant_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
                None => {
                    let r = sqlx::query(
                        "INSERT INTO users (tenant_id, name, status, position, main_department, wecom_status, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, 1, $6, $6) RETURNING id",
                    )
                    .bind(tenant_id)
                    .bind(&u.name)
                    .bind(u.status.as_str())
                    .bind(&u.position)
                    .bind(main)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    let id: i64 = r.try_get("id")?;
                    sqlx::query(
                        "INSERT INTO user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, created_at)
                         VALUES ($1, 'wecom', $2, $3, $4, $5, $6)",
                    )
                    .bind(tenant_id)
                    .bind(&corp)
                    .bind(&key)
                    .bind(id)
                    .bind(&u.userid)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            sqlx::query("DELETE FROM user_departments WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for (i, (id, name, parent)) in u.departments.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO departments (tenant_id, id, parent_id, name, updated_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(parent)
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO user_departments (tenant_id, user_id, department_id, sort_order) VALUES ($1, $2, $3, $4)",
                )
                .bind(tenant_id)
                .bind(user_id)
                .bind(id)
                .bind(i as i64)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM tag_users WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for (id, name) in &u.tags {
                sqlx::query(
                    "INSERT INTO tags (tenant_id, id, name) VALUES ($1, $2, $3)
                     ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO tag_users (tenant_id, tag_id, user_id) VALUES ($1, $2, $3)",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(user_id)
        })
    }

    /// Identities, departments (main first) and tags of one user.
    pub async fn user_extras(&self, tenant_id: i64, user_id: i64) -> Result<UserExtras> {
        on_pool!(self, |p| {
            let mut x = UserExtras::default();
            for r in sqlx::query(
                "SELECT kind, corpid, display_id FROM user_identities WHERE tenant_id = $1 AND user_id = $2 ORDER BY kind, corpid",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(p)
            .await?
            {
                x.identities.push(IdentityRecord {
                    kind: r.try_get("kind")?,
                    corpid: r.try_get("corpid")?,
                    display_id: r.try_get("display_id")?,
                });
            }
            for r in sqlx::query(
                "SELECT d.id, d.name FROM user_departments ud
                 JOIN departments d ON d.tenant_id = ud.tenant_id AND d.id = ud.department_id
                 JOIN users u ON u.id = ud.user_id
                 WHERE ud.tenant_id = $1 AND ud.user_id = $2
                 ORDER BY CASE WHEN d.id = u.main_department THEN 0 ELSE 1 END, ud.sort_order, d.id",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(p)
            .await?
            {
                x.departments.push((r.try_get("id")?, r.try_get("name")?));
            }
            for r in sqlx::query(
                "SELECT t.id, t.name FROM tag_users tu JOIN tags t ON t.tenant_id = tu.tenant_id AND t.id = tu.tag_id
                 WHERE tu.tenant_id = $1 AND tu.user_id = $2 ORDER BY t.name, t.id",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(p)
            .await?
            {
                x.tags.push((r.try_get("id")?, r.try_get("name")?));
            }
            Ok(x)
        })
    }

    /// Active departments and tags, (id, name) by name, for the Users page filters.
    pub async fn directory_choices(
        &self,
        tenant_id: i64,
    ) -> Result<(Vec<(i64, String)>, Vec<(i64, String)>)> {
        on_pool!(self, |p| {
            let mut deps = Vec::new();
            for r in sqlx::query("SELECT id, name FROM departments WHERE tenant_id = $1 AND active ORDER BY name, id")
                .bind(tenant_id)
                .fetch_all(p)
                .await?
            {
                deps.push((r.try_get("id")?, r.try_get("name")?));
            }
            let mut tags = Vec::new();
            for r in sqlx::query(
                "SELECT id, name FROM tags WHERE tenant_id = $1 AND active ORDER BY name, id",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?
            {
                tags.push((r.try_get("id")?, r.try_get("name")?));
            }
            Ok((deps, tags))
        })
    }
}

impl Store {
    /// The names of the active tags each of `user_ids` belongs to (for "how is this
    /// person in scope" when no synced department holds them).
    pub async fn tag_names_of(
        &self,
        tenant_id: i64,
        user_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<String>>> {
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        for ids in user_ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT tu.user_id, t.name FROM tag_users tu
                 JOIN tags t ON t.tenant_id = tu.tenant_id AND t.id = tu.tag_id AND t.active
                 WHERE tu.tenant_id = $1 AND tu.user_id IN ({}) ORDER BY t.name",
                in_list(2, ids.len())
            );
            let rows: Vec<(i64, String)> = on_pool!(self, |p| {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
                for id in ids {
                    q = q.bind(id);
                }
                q.fetch_all(p).await
            })?;
            for (user, name) in rows {
                out.entry(user).or_default().push(name);
            }
        }
        Ok(out)
    }

    /// WeCom userids (as spelled) of the users with ids in `[lo, hi]`, by user id: one
    /// query for a page of the Users list.
    pub async fn wecom_userids_between(
        &self,
        tenant_id: i64,
        lo: i64,
        hi: i64,
    ) -> Result<std::collections::HashMap<i64, String>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT user_id, display_id FROM user_identities
                 WHERE tenant_id = $1 AND kind = 'wecom' AND user_id >= $2 AND user_id <= $3",
            )
            .bind(tenant_id)
            .bind(lo)
            .bind(hi)
            .fetch_all(p)
            .await?;
            let mut out = std::collections::HashMap::with_capacity(rows.len());
            for r in &rows {
                out.insert(
                    r.try_get::<i64, _>("user_id")?,
                    r.try_get::<String, _>("display_id")?,
                );
            }
            Ok(out)
        })
    }
}
