//! API keys, and the admin API's own reads: users by cursor (department subtrees
//! included) and the audit log by filter.

use super::users::{UserRow, USER_COLS};
use super::{in_list, on_pool, Result, Store, StoreError};
use crate::domain::api_key::{ApiKey, Scope};
use crate::domain::audit::AuditEntry;
use crate::domain::now_ms;
use crate::domain::user::{User, UserStatus};
use sqlx::{FromRow, Row};

const KEY_COLS: &str =
    "id, tenant_id, name, prefix, scope, created_by, created_at, last_used_at, revoked_at";

macro_rules! key_from_row {
    ($r:expr) => {{
        let r = $r;
        let scope: String = r.try_get("scope")?;
        ApiKey {
            id: r.try_get("id")?,
            tenant_id: r.try_get("tenant_id")?,
            name: r.try_get("name")?,
            prefix: r.try_get("prefix")?,
            scope: Scope::parse(&scope)
                .ok_or_else(|| StoreError::Corrupt(format!("api key scope {scope:?}")))?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            last_used_at: r.try_get("last_used_at")?,
            revoked_at: r.try_get("revoked_at")?,
        }
    }};
}

/// A page of users for the API: ordered by id, after a cursor.
#[derive(Clone, Debug, Default)]
pub struct UserCursorQuery {
    /// Lower-cased substring of name, alias, position or userid.
    pub search: Option<String>,
    pub status: Option<UserStatus>,
    /// Members of this department or of any department below it.
    pub department_subtree: Option<i64>,
    pub tag_id: Option<i64>,
    pub after_id: i64,
    pub limit: i64,
}

/// Audit entries matching all the given filters, newest first, before a cursor.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    /// Any of these actors (one person's identities: `user:3`, `wecom:lisi`); empty: any.
    pub actors: Vec<String>,
    /// Exact action, or a prefix ending in `.` (`user.` matches `user.disabled`).
    pub action: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Store {
    pub async fn create_api_key(
        &self,
        tenant_id: i64,
        name: &str,
        prefix: &str,
        token_sha256: &str,
        scope: Scope,
        created_by: &str,
    ) -> Result<i64> {
        on_pool!(self, |p| {
            let id: i64 = sqlx::query(
                "INSERT INTO api_keys (tenant_id, name, prefix, token_sha256, scope, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(tenant_id)
            .bind(name)
            .bind(prefix)
            .bind(token_sha256)
            .bind(scope.as_str())
            .bind(created_by)
            .bind(now_ms())
            .fetch_one(p)
            .await?
            .try_get("id")?;
            Ok(id)
        })
    }

    pub async fn list_api_keys(&self, tenant_id: i64) -> Result<Vec<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC");
        on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(key_from_row!(r));
            }
            Ok(out)
        })
    }

    /// The key whose token hashes to `token_sha256`, revoked or not, any tenant.
    pub async fn api_key_by_hash(&self, token_sha256: &str) -> Result<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE token_sha256 = $1");
        on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(token_sha256)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Ok(Some(key_from_row!(&r))),
                None => Ok(None),
            }
        })
    }

    /// Revokes a live key of the tenant; `None` if there is no such live key.
    pub async fn revoke_api_key(&self, tenant_id: i64, id: i64) -> Result<Option<ApiKey>> {
        let sql = format!(
            "UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL RETURNING {KEY_COLS}"
        );
        on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now_ms())
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Ok(Some(key_from_row!(&r))),
                None => Ok(None),
            }
        })
    }

    /// Records a use; written at most once a minute per key (it is read in the console).
    pub async fn touch_api_key(&self, id: i64, now: i64) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(now)
            .bind(id)
            .bind(now - 60_000)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    pub async fn users_by_cursor(&self, tenant_id: i64, q: &UserCursorQuery) -> Result<Vec<User>> {
        let like = q
            .search
            .as_deref()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .map(|s| format!("%{}%", like_escape(&s)))
            .unwrap_or_default();
        // Every parameter appears once; a neutral value turns its filter off.
        let sql = format!(
            "WITH RECURSIVE sub(id) AS (
                 SELECT CAST($4 AS BIGINT)
                 UNION SELECT d.id FROM departments d JOIN sub ON d.parent_id = sub.id
                 WHERE d.tenant_id = $1 AND d.id <> d.parent_id)
             SELECT {USER_COLS} FROM users u WHERE u.tenant_id = $1
             AND ($2 = '' OR LOWER(u.name) LIKE $2 ESCAPE '\\' OR LOWER(u.alias) LIKE $2 ESCAPE '\\'
                  OR LOWER(u.position) LIKE $2 ESCAPE '\\'
                  OR EXISTS (SELECT 1 FROM user_identities i
                      WHERE i.tenant_id = u.tenant_id AND i.user_id = u.id AND i.external_id LIKE $2 ESCAPE '\\'))
             AND ($3 = '' OR u.status = $3)
             AND ($4 = 0 OR EXISTS (SELECT 1 FROM user_departments ud
                  WHERE ud.tenant_id = u.tenant_id AND ud.user_id = u.id AND ud.department_id IN (SELECT id FROM sub)))
             AND ($5 = 0 OR EXISTS (SELECT 1 FROM tag_users t
                  WHERE t.tenant_id = u.tenant_id AND t.user_id = u.id AND t.tag_id = $5))
             AND u.id > $6
             ORDER BY u.id LIMIT $7"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(&like)
                .bind(q.status.map(|s| s.as_str()).unwrap_or(""))
                .bind(q.department_subtree.unwrap_or(0))
                .bind(q.tag_id.unwrap_or(0))
                .bind(q.after_id)
                .bind(q.limit.clamp(1, 500))
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(UserRow::from_row(r)?.into_user()?);
            }
            Ok(out)
        })
    }

    pub async fn audit_by_filter(&self, tenant_id: i64, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let (action_exact, action_prefix) = match q.action.as_deref().map(str::trim) {
            Some(a) if a.ends_with('.') => (String::new(), format!("{}%", like_escape(a))),
            Some(a) => (a.to_string(), String::new()),
            None => (String::new(), String::new()),
        };
        // One person's identities: `actor IN (…)`, after the fixed placeholders.
        let any_of = if q.actors.is_empty() {
            String::new()
        } else {
            format!(" AND actor IN ({})", in_list(9, q.actors.len()))
        };
        let sql = format!(
            "SELECT id, tenant_id, actor, action, detail, ip, at FROM audit_log
             WHERE tenant_id = $1 AND id < $2
             AND ($3 = '' OR actor = $3)
             AND ($4 = '' OR action = $4)
             AND ($5 = '' OR action LIKE $5 ESCAPE '\\')
             AND at >= $6 AND at < $7{any_of}
             ORDER BY id DESC LIMIT $8"
        );
        on_pool!(self, |p| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(q.before_id.unwrap_or(i64::MAX))
                .bind(q.actor.clone().unwrap_or_default())
                .bind(&action_exact)
                .bind(&action_prefix)
                .bind(q.from_ms.unwrap_or(i64::MIN))
                .bind(q.to_ms.unwrap_or(i64::MAX))
                .bind(q.limit.clamp(1, 10_000));
            for a in &q.actors {
                query = query.bind(a);
            }
            let rows = query.fetch_all(p).await?;
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
