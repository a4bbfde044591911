//! Reading users and changing their account status: what sign-in and user management
//! need. Directory sync writes users through `store::directory`.

use super::audit::insert_audit;
use super::{in_list, on_pool, parse, Result, Store, IN_CHUNK};
use crate::domain::audit::NewAudit;
use crate::domain::now_ms;
use crate::domain::user::{DisabledReason, User, UserStatus};
use sqlx::{FromRow, Row};

pub(crate) const USER_COLS: &str = "u.id, u.tenant_id, u.name, u.status, u.disabled_reason, u.position, u.alias, u.telephone, \
     u.mobile, u.email, u.main_department, u.wecom_status, u.created_at, u.updated_at, u.last_login_at";

/// A `users` row as [`USER_COLS`] reads it; [`UserRow::into_user`] checks its enums.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    tenant_id: i64,
    name: String,
    status: String,
    disabled_reason: Option<String>,
    position: String,
    alias: String,
    telephone: String,
    mobile: Option<String>,
    email: Option<String>,
    main_department: Option<i64>,
    wecom_status: Option<i64>,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
}

impl UserRow {
    pub(crate) fn into_user(self) -> Result<User> {
        Ok(User {
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            status: parse(self.status)?,
            disabled_reason: self.disabled_reason.map(parse).transpose()?,
            position: self.position,
            alias: self.alias,
            telephone: self.telephone,
            mobile: self.mobile,
            email: self.email,
            main_department: self.main_department,
            wecom_status: self.wecom_status,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_login_at: self.last_login_at,
        })
    }
}

/// Filters of the Users page; all optional.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Matches name, userid, alias or position (case-insensitive substring).
    pub query: Option<String>,
    pub status: Option<UserStatus>,
    /// Direct members of this department.
    pub department_id: Option<i64>,
    pub tag_id: Option<i64>,
    pub sort: UserSort,
    pub limit: i64,
    pub offset: i64,
}

/// The order of the Users list: a column, ascending or descending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserSort {
    #[default]
    Name,
    NameDesc,
    Status,
    StatusDesc,
    /// Most recent sign-in first; never signed in last.
    LastLogin,
    LastLoginOldest,
}

impl UserSort {
    pub const ALL: [UserSort; 6] = [
        UserSort::Name,
        UserSort::NameDesc,
        UserSort::Status,
        UserSort::StatusDesc,
        UserSort::LastLogin,
        UserSort::LastLoginOldest,
    ];

    /// As the page's `sort` parameter names it.
    pub fn as_str(self) -> &'static str {
        match self {
            UserSort::Name => "name",
            UserSort::NameDesc => "-name",
            UserSort::Status => "status",
            UserSort::StatusDesc => "-status",
            UserSort::LastLogin => "-login",
            UserSort::LastLoginOldest => "login",
        }
    }

    pub fn parse(s: &str) -> Option<UserSort> {
        UserSort::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The ORDER BY text: fixed strings only, never user input. NULLs sort the same on
    /// both engines (SQLite puts them first, PostgreSQL last, unless told).
    fn order_by(self) -> &'static str {
        match self {
            UserSort::Name => "u.name, u.id",
            UserSort::NameDesc => "u.name DESC, u.id DESC",
            UserSort::Status => "u.status, u.name, u.id",
            UserSort::StatusDesc => "u.status DESC, u.name, u.id",
            UserSort::LastLogin => "(u.last_login_at IS NULL), u.last_login_at DESC, u.name, u.id",
            UserSort::LastLoginOldest => "(u.last_login_at IS NULL), u.last_login_at, u.name, u.id",
        }
    }
}

impl Store {
    /// How many of the tenant's users have each account status.
    pub async fn count_users_by_status(&self, tenant_id: i64) -> Result<Vec<(UserStatus, i64)>> {
        let rows: Vec<(String, i64)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT status, COUNT(*) AS n FROM users WHERE tenant_id = $1 GROUP BY status ORDER BY status",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await
        })?;
        rows.into_iter().map(|(s, n)| Ok((parse(s)?, n))).collect()
    }

    /// How many of the tenant's users have signed in at `since` (Unix ms) or later.
    pub async fn count_signed_in_since(&self, tenant_id: i64, since: i64) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND last_login_at >= $2",
            )
            .bind(tenant_id)
            .bind(since)
            .fetch_one(p)
            .await
        })?;
        Ok(n)
    }

    pub async fn user_by_id(&self, tenant_id: i64, user_id: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.tenant_id = $1 AND u.id = $2");
        on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(user_id)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Ok(Some(UserRow::from_row(&r)?.into_user()?)),
                None => Ok(None),
            }
        })
    }

    /// The user behind a WeCom userid of `corpid` (look-up ignores case, as WeCom's does).
    pub async fn user_by_wecom_userid(
        &self,
        tenant_id: i64,
        corpid: &str,
        userid: &str,
    ) -> Result<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLS} FROM users u JOIN user_identities i ON i.user_id = u.id
             WHERE i.tenant_id = $1 AND i.kind = 'wecom' AND i.corpid = $2 AND i.external_id = $3"
        );
        on_pool!(self, |p| {
            let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(corpid.to_ascii_lowercase())
                .bind(userid.to_ascii_lowercase())
                .fetch_optional(p)
                .await?;
            match r {
                Some(r) => Ok(Some(UserRow::from_row(&r)?.into_user()?)),
                None => Ok(None),
            }
        })
    }

    /// Sets the status of these users (disabling also ends their sessions).
    pub async fn set_users_status(
        &self,
        tenant_id: i64,
        user_ids: &[i64],
        status: UserStatus,
        reason: Option<DisabledReason>,
    ) -> Result<u64> {
        self.set_users_status_audited(tenant_id, user_ids, status, reason, &[])
            .await
    }

    /// Sets the status of these users (disabling also ends their sessions) and writes the
    /// audit entries, in one transaction. Returns how many users changed.
    pub async fn set_users_status_audited(
        &self,
        tenant_id: i64,
        user_ids: &[i64],
        status: UserStatus,
        reason: Option<DisabledReason>,
        audits: &[NewAudit],
    ) -> Result<u64> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let mut changed = 0;
            for ids in user_ids.chunks(IN_CHUNK) {
                let sql = format!(
                    "UPDATE users SET status = $1, disabled_reason = $2, updated_at = $3
                     WHERE tenant_id = $4 AND id IN ({}) AND (status <> $1 OR disabled_reason IS DISTINCT FROM $2)",
                    in_list(5, ids.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(status.as_str())
                    .bind(reason.map(|r| r.as_str()))
                    .bind(now)
                    .bind(tenant_id);
                for id in ids {
                    q = q.bind(id);
                }
                changed += q.execute(&mut *tx).await?.rows_affected();
                if status == UserStatus::Disabled {
                    let sql = format!(
                        "DELETE FROM user_sessions WHERE tenant_id = $1 AND user_id IN ({})",
                        in_list(2, ids.len())
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
                    for id in ids {
                        q = q.bind(id);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            for a in audits {
                insert_audit!(&mut *tx, a, now);
            }
            tx.commit().await?;
            Ok(changed)
        })
    }

    /// The tenant's users with these ids, in id order; unknown ids are left out.
    pub async fn users_by_ids(&self, tenant_id: i64, ids: &[i64]) -> Result<Vec<User>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT {USER_COLS} FROM users u WHERE u.tenant_id = $1 AND u.id IN ({}) ORDER BY u.id",
                in_list(2, chunk.len())
            );
            on_pool!(self, |p| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant_id);
                for id in chunk {
                    q = q.bind(id);
                }
                for r in q.fetch_all(p).await? {
                    out.push(UserRow::from_row(&r)?.into_user()?);
                }
            });
        }
        out.sort_by_key(|u| u.id);
        Ok(out)
    }

    /// A page of users matching `f`, ordered by name, and the total matching.
    pub async fn list_users(&self, tenant_id: i64, f: &UserFilter) -> Result<(Vec<User>, i64)> {
        let like = f
            .query
            .as_ref()
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty())
            .map(|q| {
                format!(
                    "%{}%",
                    q.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                )
            });
        // Every parameter appears once in the text (a neutral value disables its filter),
        // so the numbering is the same on both engines.
        const FILTER: &str = "u.tenant_id = $1
            AND ($2 = '' OR LOWER(u.name) LIKE $2 ESCAPE '\\' OR LOWER(u.alias) LIKE $2 ESCAPE '\\'
                 OR LOWER(u.position) LIKE $2 ESCAPE '\\'
                 OR EXISTS (SELECT 1 FROM user_identities i
                     WHERE i.tenant_id = u.tenant_id AND i.user_id = u.id AND i.external_id LIKE $2 ESCAPE '\\'))
            AND ($3 = '' OR u.status = $3)
            AND ($4 = 0 OR EXISTS (SELECT 1 FROM user_departments d
                 WHERE d.tenant_id = u.tenant_id AND d.user_id = u.id AND d.department_id = $4))
            AND ($5 = 0 OR EXISTS (SELECT 1 FROM tag_users t
                 WHERE t.tenant_id = u.tenant_id AND t.user_id = u.id AND t.tag_id = $5))";
        let list_sql = format!(
            "SELECT {USER_COLS} FROM users u WHERE {FILTER} ORDER BY {} LIMIT $6 OFFSET $7",
            f.sort.order_by()
        );
        let count_sql = format!("SELECT COUNT(*) AS n FROM users u WHERE {FILTER}");
        let limit = if f.limit <= 0 { 50 } else { f.limit.min(500) };
        on_pool!(self, |p| {
            macro_rules! binds {
                ($q:expr) => {
                    $q.bind(tenant_id)
                        .bind(like.clone().unwrap_or_default())
                        .bind(f.status.map(|s| s.as_str()).unwrap_or(""))
                        .bind(f.department_id.unwrap_or(0))
                        .bind(f.tag_id.unwrap_or(0))
                        .bind(limit)
                        .bind(f.offset.max(0))
                };
            }
            let rows = binds!(sqlx::query(sqlx::AssertSqlSafe(list_sql)))
                .fetch_all(p)
                .await?;
            let total: i64 = sqlx::query(sqlx::AssertSqlSafe(count_sql))
                .bind(tenant_id)
                .bind(like.clone().unwrap_or_default())
                .bind(f.status.map(|s| s.as_str()).unwrap_or(""))
                .bind(f.department_id.unwrap_or(0))
                .bind(f.tag_id.unwrap_or(0))
                .fetch_one(p)
                .await?
                .try_get("n")?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(UserRow::from_row(r)?.into_user()?);
            }
            Ok((out, total))
        })
    }
}
