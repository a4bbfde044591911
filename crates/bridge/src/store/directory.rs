//! The directory as sync reads and writes it: load the current directory (whole, or a
//! few users for an incremental change), and apply a [`DirectoryDiff`] in ONE
//! transaction with batched statements, so a failed or interrupted sync leaves the
//! directory exactly as it was.

use super::{on_pool, Result, Store, StoreError};
use crate::domain::directory::{
    CurrentDept, CurrentDirectory, CurrentTag, CurrentUser, DeptRecord, DirectoryDiff,
    DirectoryPolicy, Membership, TagRecord, UserKey, UserRecord,
};
use crate::domain::now_ms;
use crate::domain::user::{DisabledReason, UserStatus};
use futures::TryStreamExt;
use sqlx::Row;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Binds per statement: under SQLite's 32,766 and PostgreSQL's 65,535. SQLite (through
/// sqlx) gets slower per bind as a statement grows: a couple of hundred measured best.
const MAX_BINDS: usize = 200;
const PG_MAX_BINDS: usize = 20_000;
/// Rows per JSON batch (SQLite).
const JSON_ROWS: usize = 5_000;

/// `($s,$s+1,…),(…)` for `rows` rows of `cols` placeholders starting at `$start`.
fn values(rows: usize, cols: usize, start: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 7);
    let mut n = start;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&n.to_string());
            n += 1;
        }
        s.push(')');
    }
    s
}

/// `$start,…` for an IN list of `n` values.
fn in_list(n: usize, start: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Generated statements for the engine. SQLite reads `$N` as a *named* parameter and
/// resolves each name by a linear search while parsing, so a batch of 30,000 `$N` is
/// quadratic (minutes for 100k members); `?N` is numbered and costs nothing. The
/// generated statements hold no `$` other than placeholders.
fn eng(pg: bool, sql: String) -> String {
    if pg {
        sql
    } else {
        sql.replace('$', "?")
    }
}

/// A third-party (`wecom_open`) identity of an imported directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedIdentity {
    pub user_id: i64,
    pub corpid: String,
    pub open_userid: String,
    pub source_agentid: Option<i64>,
    pub name: String,
}

/// One member of a directory imported through a third-party app (for set-ups and tests).
#[derive(Clone, Debug)]
pub struct ImportedMember {
    pub open_userid: String,
    /// What the import stored as the name: usually the id itself (§7).
    pub name: String,
}

/// The switch from a third-party app, applied with the directory diff.
#[derive(Clone, Debug, Default)]
pub struct RetireIdentities {
    /// open_userid → the self-built userid it was converted to.
    pub relinked: HashMap<String, String>,
}

impl Store {
    pub async fn directory_policy(&self, tenant_id: i64) -> Result<DirectoryPolicy> {
        on_pool!(self, p => {
            let r = sqlx::query(
                "SELECT new_user_status, max_disable_permille, reconcile_interval_secs
                 FROM directory_policies WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_optional(p)
            .await?;
            match r {
                None => Ok(DirectoryPolicy::default()),
                Some(r) => {
                    let s: String = r.try_get("new_user_status")?;
                    Ok(DirectoryPolicy {
                        new_user_status: s.parse().map_err(StoreError::Corrupt)?,
                        max_disable_permille: r.try_get("max_disable_permille")?,
                        reconcile_interval_secs: r.try_get("reconcile_interval_secs")?,
                    })
                }
            }
        })
    }

    /// Whether the tenant has a stored policy (else the defaults and the instance's
    /// reconcile interval apply).
    pub async fn has_directory_policy(&self, tenant_id: i64) -> Result<bool> {
        on_pool!(self, p => {
            Ok(sqlx::query("SELECT 1 AS one FROM directory_policies WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(p)
                .await?
                .is_some())
        })
    }

    pub async fn put_directory_policy(&self, tenant_id: i64, pol: &DirectoryPolicy) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO directory_policies (tenant_id, new_user_status, max_disable_permille, reconcile_interval_secs, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id) DO UPDATE SET new_user_status = excluded.new_user_status,
                    max_disable_permille = excluded.max_disable_permille,
                    reconcile_interval_secs = excluded.reconcile_interval_secs, updated_at = excluded.updated_at",
            )
            .bind(tenant_id)
            .bind(pol.new_user_status.as_str())
            .bind(pol.max_disable_permille)
            .bind(pol.reconcile_interval_secs)
            .bind(now_ms())
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// The whole stored directory of a tenant, users keyed by their WeCom identity of `corpid`.
    pub async fn load_directory(&self, tenant_id: i64, corpid: &str) -> Result<CurrentDirectory> {
        let mut dir = CurrentDirectory {
            users: self.load_users(tenant_id, corpid, None).await?,
            ..Default::default()
        };
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, parent_id, name, name_en, sort_order, leaders, active FROM departments WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            for r in &rows {
                let record = DeptRecord {
                    id: r.try_get("id")?,
                    parent_id: r.try_get("parent_id")?,
                    name: r.try_get("name")?,
                    name_en: r.try_get("name_en")?,
                    sort_order: r.try_get("sort_order")?,
                    leaders: r.try_get("leaders")?,
                    name_withheld: false,
                };
                dir.departments.insert(record.id, CurrentDept { record, active: r.try_get("active")? });
            }
        });
        dir.tags = self.load_tags(tenant_id, corpid, None).await?;
        Ok(dir)
    }

    /// Stored users: all of the tenant, or those whose WeCom identity key is in `keys`.
    /// Users, identities and memberships are read by separate scans and joined here: a
    /// join lets SQLite pick the identities' primary key and go quadratic.
    pub async fn load_users(
        &self,
        tenant_id: i64,
        corpid: &str,
        keys: Option<&[UserKey]>,
    ) -> Result<Vec<CurrentUser>> {
        let corpid = corpid.to_ascii_lowercase();
        let pg = matches!(self, Store::Postgres(_));
        if keys.is_some_and(|k| k.is_empty()) {
            return Ok(Vec::new());
        }
        // Identities first: (user id → wecom key, spelling), and who has a wecom_open one.
        let mut wecom: HashMap<i64, (String, String)> = HashMap::new();
        let mut imported: HashSet<i64> = HashSet::new();
        let id_sql = match keys {
            None => "SELECT user_id, kind, external_id, display_id FROM user_identities
                     WHERE tenant_id = $1 AND ((kind = 'wecom' AND corpid = $2) OR kind = 'wecom_open')"
                .to_string(),
            Some(k) => format!(
                "SELECT user_id, kind, external_id, display_id FROM user_identities
                 WHERE tenant_id = $1 AND kind = 'wecom' AND corpid = $2 AND external_id IN ({})",
                in_list(k.len(), 3)
            ),
        };
        on_pool!(self, p => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, id_sql))).bind(tenant_id).bind(&corpid);
            for k in keys.unwrap_or_default() {
                q = q.bind(k.to_ascii_lowercase());
            }
            // Streamed, not collected: 100k rows at once would double the peak memory.
            let mut rows = q.fetch(p);
            while let Some(r) = rows.try_next().await? {
                let uid: i64 = r.try_get("user_id")?;
                let kind: String = r.try_get("kind")?;
                if kind == "wecom" {
                    wecom.insert(uid, (r.try_get("external_id")?, r.try_get("display_id")?));
                } else {
                    imported.insert(uid);
                }
            }
        });
        let ids: Vec<i64> = match keys {
            None => Vec::new(),
            Some(_) if wecom.is_empty() => return Ok(Vec::new()),
            Some(_) => wecom.keys().copied().collect(),
        };
        let (user_sql, member_sql) = match keys {
            None => (
                format!("SELECT {COLS} FROM users WHERE tenant_id = $1"),
                "SELECT user_id, department_id, sort_order, is_leader FROM user_departments WHERE tenant_id = $1".to_string(),
            ),
            Some(_) => (
                format!("SELECT {COLS} FROM users WHERE tenant_id = $1 AND id IN ({})", in_list(ids.len(), 2)),
                format!(
                    "SELECT user_id, department_id, sort_order, is_leader FROM user_departments
                     WHERE tenant_id = $1 AND user_id IN ({})",
                    in_list(ids.len(), 2)
                ),
            ),
        };
        const COLS: &str =
            "id, name, status, disabled_reason, position, alias, telephone, mobile, email, \
            main_department, wecom_status, direct_leader, extattr";
        let mut users: Vec<CurrentUser> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        on_pool!(self, p => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, user_sql))).bind(tenant_id);
            for id in &ids {
                q = q.bind(*id);
            }
            let mut rows = q.fetch(p);
            while let Some(r) = rows.try_next().await? {
                let status: String = r.try_get("status")?;
                let reason: Option<String> = r.try_get("disabled_reason")?;
                let id: i64 = r.try_get("id")?;
                let (key, display) = match wecom.remove(&id) {
                    Some((k, d)) => (Some(k), d),
                    None => (None, String::new()),
                };
                index.insert(id, users.len());
                users.push(CurrentUser {
                    id,
                    key,
                    record: UserRecord {
                        userid: display,
                        name: r.try_get("name")?,
                        position: r.try_get("position")?,
                        alias: r.try_get("alias")?,
                        telephone: r.try_get("telephone")?,
                        mobile: r.try_get("mobile")?,
                        email: r.try_get("email")?,
                        main_department: r.try_get("main_department")?,
                        wecom_status: r.try_get::<Option<i64>, _>("wecom_status")?.unwrap_or(0),
                        direct_leader: r.try_get("direct_leader")?,
                        extattr: r.try_get("extattr")?,
                        departments: Vec::new(),
                        name_withheld: false,
                    },
                    status: status.parse().map_err(StoreError::Corrupt)?,
                    disabled_reason: reason.map(|s| s.parse()).transpose().map_err(StoreError::Corrupt)?,
                    imported: imported.contains(&id),
                    link_identity: false,
                });
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, member_sql))).bind(tenant_id);
            for id in &ids {
                q = q.bind(*id);
            }
            let mut rows = q.fetch(p);
            while let Some(r) = rows.try_next().await? {
                let uid: i64 = r.try_get("user_id")?;
                if let Some(&i) = index.get(&uid) {
                    users[i].record.departments.push(Membership {
                        department_id: r.try_get("department_id")?,
                        sort_order: r.try_get("sort_order")?,
                        is_leader: r.try_get("is_leader")?,
                    });
                }
            }
        });
        for u in &mut users {
            u.record.normalize();
        }
        Ok(users)
    }

    /// Stored tags (all, or one), members as WeCom identity keys of `corpid`.
    pub async fn load_tags(
        &self,
        tenant_id: i64,
        corpid: &str,
        only: Option<i64>,
    ) -> Result<HashMap<i64, CurrentTag>> {
        let corpid = corpid.to_ascii_lowercase();
        let only = only.unwrap_or(-1);
        let mut tags: HashMap<i64, CurrentTag> = HashMap::new();
        on_pool!(self, p => {
            let rows = sqlx::query("SELECT id, name, active FROM tags WHERE tenant_id = $1 AND ($2 = -1 OR id = $2)")
                .bind(tenant_id)
                .bind(only)
                .fetch_all(p)
                .await?;
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                tags.insert(id, CurrentTag {
                    record: TagRecord { id, name: r.try_get("name")?, users: BTreeSet::new(), departments: BTreeSet::new() },
                    active: r.try_get("active")?,
                });
            }
            // Members by internal id, then their keys (a join would let SQLite pick the
            // identities' primary key and go quadratic).
            let rows = sqlx::query("SELECT tag_id, user_id FROM tag_users WHERE tenant_id = $1 AND ($2 = -1 OR tag_id = $2)")
                .bind(tenant_id)
                .bind(only)
                .fetch_all(p)
                .await?;
            let mut members: Vec<(i64, i64)> = Vec::with_capacity(rows.len());
            for r in &rows {
                members.push((r.try_get("tag_id")?, r.try_get("user_id")?));
            }
            let mut keys: HashMap<i64, String> = HashMap::new();
            if !members.is_empty() {
                let rows = sqlx::query(
                    "SELECT user_id, external_id FROM user_identities WHERE tenant_id = $1 AND kind = 'wecom' AND corpid = $2",
                )
                .bind(tenant_id)
                .bind(&corpid)
                .fetch_all(p)
                .await?;
                for r in &rows {
                    keys.insert(r.try_get("user_id")?, r.try_get("external_id")?);
                }
            }
            for (tag, uid) in members {
                if let (Some(t), Some(k)) = (tags.get_mut(&tag), keys.get(&uid)) {
                    t.record.users.insert(k.clone());
                }
            }
            let rows = sqlx::query("SELECT tag_id, department_id FROM tag_departments WHERE tenant_id = $1 AND ($2 = -1 OR tag_id = $2)")
                .bind(tenant_id)
                .bind(only)
                .fetch_all(p)
                .await?;
            for r in &rows {
                let id: i64 = r.try_get("tag_id")?;
                if let Some(t) = tags.get_mut(&id) {
                    t.record.departments.insert(r.try_get("department_id")?);
                }
            }
        });
        Ok(tags)
    }

    pub async fn load_department(&self, tenant_id: i64, id: i64) -> Result<Option<CurrentDept>> {
        on_pool!(self, p => {
            let r = sqlx::query(
                "SELECT id, parent_id, name, name_en, sort_order, leaders, active FROM departments WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(p)
            .await?;
            match r {
                None => Ok(None),
                Some(r) => Ok(Some(CurrentDept {
                    record: DeptRecord {
                        id: r.try_get("id")?,
                        parent_id: r.try_get("parent_id")?,
                        name: r.try_get("name")?,
                        name_en: r.try_get("name_en")?,
                        sort_order: r.try_get("sort_order")?,
                        leaders: r.try_get("leaders")?,
                        name_withheld: false,
                    },
                    active: r.try_get("active")?,
                })),
            }
        })
    }

    /// Keys of the stored users who are members of department `id`.
    pub async fn department_member_keys(
        &self,
        tenant_id: i64,
        corpid: &str,
        id: i64,
    ) -> Result<Vec<UserKey>> {
        let corpid = corpid.to_ascii_lowercase();
        let pg = matches!(self, Store::Postgres(_));
        on_pool!(self, p => {
            let rows = sqlx::query("SELECT user_id FROM user_departments WHERE tenant_id = $1 AND department_id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_all(p)
                .await?;
            let mut ids = Vec::with_capacity(rows.len());
            for r in &rows {
                ids.push(r.try_get::<i64, _>("user_id")?);
            }
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(MAX_BINDS) {
                // By user id only, so the user_id index is the one used.
                let sql = format!(
                    "SELECT tenant_id, kind, corpid, external_id FROM user_identities WHERE user_id IN ({})",
                    in_list(chunk.len(), 1)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(p).await? {
                    let (t, kind, corp): (i64, String, String) = (r.try_get("tenant_id")?, r.try_get("kind")?, r.try_get("corpid")?);
                    if t == tenant_id && kind == "wecom" && corp == corpid {
                        out.push(r.try_get("external_id")?);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Users not disabled, for the mass-disable guard of an incremental change.
    pub async fn active_user_count(&self, tenant_id: i64) -> Result<i64> {
        on_pool!(self, p => {
            Ok(sqlx::query("SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1 AND status <> 'disabled'")
                .bind(tenant_id)
                .fetch_one(p)
                .await?
                .try_get("n")?)
        })
    }

    /// Applies a diff in one transaction. `run_id`'s record is touched first, which also
    /// takes SQLite's write lock before the new user ids are reserved. `retire` moves the
    /// tenant's third-party identities out of `user_identities` (the switch).
    pub async fn apply_directory_diff(
        &self,
        tenant_id: i64,
        corpid: &str,
        run_id: i64,
        diff: &DirectoryDiff,
        retire: Option<&RetireIdentities>,
    ) -> Result<()> {
        let now = now_ms();
        let corpid = corpid.to_ascii_lowercase();
        let pg = matches!(self, Store::Postgres(_));
        let max_binds = if pg { PG_MAX_BINDS } else { MAX_BINDS };
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE sync_runs SET phase = 'applying', heartbeat_at = $1 WHERE id = $2")
                .bind(now)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;

            // Departments: upserts in batches, removals by id.
            const DCOLS: usize = 9;
            for chunk in diff.departments_upsert.chunks(max_binds / DCOLS) {
                let sql = format!(
                    "INSERT INTO departments (tenant_id, id, parent_id, name, name_en, sort_order, leaders, active, updated_at)
                     VALUES {} ON CONFLICT (tenant_id, id) DO UPDATE SET parent_id = excluded.parent_id,
                        name = excluded.name, name_en = excluded.name_en, sort_order = excluded.sort_order,
                        leaders = excluded.leaders, active = excluded.active, updated_at = excluded.updated_at",
                    values(chunk.len(), DCOLS, 1)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                for d in chunk {
                    let r = &d.record;
                    q = q.bind(tenant_id).bind(r.id).bind(r.parent_id).bind(&r.name).bind(&r.name_en)
                        .bind(r.sort_order).bind(&r.leaders).bind(true).bind(now);
                }
                q.execute(&mut *tx).await?;
            }
            for chunk in diff.departments_removed.chunks(max_binds) {
                let sql = format!(
                    "UPDATE departments SET active = FALSE, updated_at = $2 WHERE tenant_id = $1 AND id IN ({})",
                    in_list(chunk.len(), 3)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql))).bind(tenant_id).bind(now);
                for d in chunk {
                    q = q.bind(d.id);
                }
                q.execute(&mut *tx).await?;
            }

            // New users: reserve ids, then users, identities and memberships in batches.
            let mut ids: HashMap<&str, i64> = HashMap::new();
            if !diff.users_added.is_empty() {
                let n = diff.users_added.len() as i64;
                let reserved: Vec<i64> = if pg {
                    let rows = sqlx::query("SELECT nextval(pg_get_serial_sequence('users', 'id')) AS id FROM generate_series(1, $1) AS s")
                        .bind(n)
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut v = Vec::with_capacity(rows.len());
                    for r in &rows {
                        v.push(r.try_get::<i64, _>("id")?);
                    }
                    v
                } else {
                    // SQLite: this transaction holds the write lock, so MAX(id) is stable.
                    let m: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM users")
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("m")?;
                    (m + 1..=m + n).collect()
                };
                for (u, id) in diff.users_added.iter().zip(&reserved) {
                    ids.insert(u.key.as_str(), *id);
                }
                const UCOLS: usize = 16;
                let pairs: Vec<_> = diff.users_added.iter().zip(reserved.iter().copied()).collect();
                // SQLite: rows travel as one JSON text per statement, unpacked by json_each
                // in C; binding each value through sqlx costs microseconds apiece.
                let json_chunks: &[_] = if pg { &[] } else { &pairs };
                for chunk in json_chunks.chunks(JSON_ROWS) {
                    let rows: Vec<serde_json::Value> = chunk
                        .iter()
                        .map(|(u, id)| {
                            let r = &u.record;
                            serde_json::json!([id, r.name, u.status.as_str(), u.disabled_reason.map(|d| d.as_str()),
                                r.position, r.alias, r.telephone, r.mobile, r.email, r.main_department,
                                r.wecom_status, r.direct_leader, r.extattr])
                        })
                        .collect();
                    sqlx::query(
                        "INSERT INTO users (id, tenant_id, name, status, disabled_reason, position, alias, telephone,
                            mobile, email, main_department, wecom_status, direct_leader, extattr, created_at, updated_at)
                         SELECT j.value->>0, ?1, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5,
                            j.value->>6, j.value->>7, j.value->>8, j.value->>9, j.value->>10, j.value->>11, j.value->>12, ?2, ?2
                         FROM json_each(?3) AS j",
                    )
                    .bind(tenant_id)
                    .bind(now)
                    .bind(serde_json::Value::Array(rows).to_string())
                    .execute(&mut *tx)
                    .await?;
                    let ids: Vec<serde_json::Value> = chunk
                        .iter()
                        .map(|(u, id)| serde_json::json!([u.key, id, u.record.userid]))
                        .collect();
                    sqlx::query(
                        "INSERT INTO user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, created_at)
                         SELECT ?1, 'wecom', ?2, j.value->>0, j.value->>1, j.value->>2, ?3 FROM json_each(?4) AS j",
                    )
                    .bind(tenant_id)
                    .bind(&corpid)
                    .bind(now)
                    .bind(serde_json::Value::Array(ids).to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                let pairs: &[_] = if pg { &pairs } else { &[] };
                for chunk in pairs.chunks(max_binds / UCOLS) {
                    let sql = format!(
                        "INSERT INTO users (id, tenant_id, name, status, disabled_reason, position, alias, telephone,
                            mobile, email, main_department, wecom_status, direct_leader, extattr, created_at, updated_at)
                         VALUES {}",
                        values(chunk.len(), UCOLS, 1)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                    for (u, id) in chunk {
                        let r = &u.record;
                        q = q.bind(*id).bind(tenant_id).bind(&r.name).bind(u.status.as_str())
                            .bind(u.disabled_reason.map(|d| d.as_str())).bind(&r.position).bind(&r.alias)
                            .bind(&r.telephone).bind(&r.mobile).bind(&r.email).bind(r.main_department)
                            .bind(r.wecom_status).bind(&r.direct_leader).bind(&r.extattr).bind(now).bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
                const ICOLS: usize = 7;
                for chunk in pairs.chunks(max_binds / ICOLS) {
                    let sql = format!(
                        "INSERT INTO user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, created_at)
                         VALUES {}",
                        values(chunk.len(), ICOLS, 1)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                    for (u, id) in chunk {
                        q = q.bind(tenant_id).bind("wecom").bind(&corpid).bind(&u.key).bind(*id).bind(&u.record.userid).bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
            }

            // Memberships of new users, and of updated users whose memberships changed.
            let mut member_rows: Vec<(i64, &Membership)> = Vec::new();
            for u in &diff.users_added {
                if let Some(&id) = ids.get(u.key.as_str()) {
                    member_rows.extend(u.record.departments.iter().map(|m| (id, m)));
                }
            }
            let moved: Vec<i64> = diff.users_updated.iter().filter(|u| u.departments_changed).map(|u| u.user_id).collect();
            for chunk in moved.chunks(max_binds) {
                let sql = format!(
                    "DELETE FROM user_departments WHERE tenant_id = $1 AND user_id IN ({})",
                    in_list(chunk.len(), 2)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql))).bind(tenant_id);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(&mut *tx).await?;
            }
            for u in diff.users_updated.iter().filter(|u| u.departments_changed) {
                member_rows.extend(u.record.departments.iter().map(|m| (u.user_id, m)));
            }
            const MCOLS: usize = 5;
            let json_chunks: &[_] = if pg { &[] } else { &member_rows };
            for chunk in json_chunks.chunks(JSON_ROWS) {
                let rows: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|(id, m)| serde_json::json!([id, m.department_id, m.sort_order, i64::from(m.is_leader)]))
                    .collect();
                sqlx::query(
                    "INSERT INTO user_departments (tenant_id, user_id, department_id, sort_order, is_leader)
                     SELECT ?1, j.value->>0, j.value->>1, j.value->>2, j.value->>3 FROM json_each(?2) AS j",
                )
                .bind(tenant_id)
                .bind(serde_json::Value::Array(rows).to_string())
                .execute(&mut *tx)
                .await?;
            }
            let member_rows: &[_] = if pg { &member_rows } else { &[] };
            for chunk in member_rows.chunks(max_binds / MCOLS) {
                let sql = format!(
                    "INSERT INTO user_departments (tenant_id, user_id, department_id, sort_order, is_leader) VALUES {}",
                    values(chunk.len(), MCOLS, 1)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                for (id, m) in chunk {
                    q = q.bind(tenant_id).bind(*id).bind(m.department_id).bind(m.sort_order).bind(m.is_leader);
                }
                q.execute(&mut *tx).await?;
            }

            // Updated users: one statement each (a re-sync changes few).
            for u in &diff.users_updated {
                if u.row_changed() {
                    let r = &u.record;
                    sqlx::query(
                        "UPDATE users SET name = $1, position = $2, alias = $3, telephone = $4, mobile = $5, email = $6,
                            main_department = $7, wecom_status = $8, direct_leader = $9, extattr = $10, updated_at = $11
                         WHERE tenant_id = $12 AND id = $13",
                    )
                    .bind(&r.name).bind(&r.position).bind(&r.alias).bind(&r.telephone).bind(&r.mobile)
                    .bind(&r.email).bind(r.main_department).bind(r.wecom_status).bind(&r.direct_leader)
                    .bind(&r.extattr).bind(now).bind(tenant_id).bind(u.user_id)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some((status, reason)) = u.status {
                    sqlx::query("UPDATE users SET status = $1, disabled_reason = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5")
                        .bind(status.as_str())
                        .bind(reason.map(|r| r.as_str()))
                        .bind(now)
                        .bind(tenant_id)
                        .bind(u.user_id)
                        .execute(&mut *tx)
                        .await?;
                    if status == UserStatus::Disabled {
                        sqlx::query("DELETE FROM user_sessions WHERE tenant_id = $1 AND user_id = $2")
                            .bind(tenant_id)
                            .bind(u.user_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                if u.link_identity {
                    sqlx::query(
                        "INSERT INTO user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, created_at)
                         VALUES ($1, 'wecom', $2, $3, $4, $5, $6)",
                    )
                    .bind(tenant_id)
                    .bind(&corpid)
                    .bind(&u.key)
                    .bind(u.user_id)
                    .bind(&u.record.userid)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::unique(e, format!("WeCom userid {}", u.record.userid)))?;
                } else if u.display_changed {
                    // A userid change (or a new spelling): same internal user, new key.
                    sqlx::query(
                        "UPDATE user_identities SET external_id = $1, display_id = $2
                         WHERE tenant_id = $3 AND kind = 'wecom' AND corpid = $4 AND user_id = $5",
                    )
                    .bind(&u.key)
                    .bind(&u.record.userid)
                    .bind(tenant_id)
                    .bind(&corpid)
                    .bind(u.user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::unique(e, format!("WeCom userid {}", u.record.userid)))?;
                }
            }

            // Disabled users, grouped by reason; their sessions end in this transaction.
            for reason in [DisabledReason::LeftScope, DisabledReason::LeftWecom, DisabledReason::WecomDisabled, DisabledReason::Admin] {
                let group: Vec<_> = diff.users_disabled.iter().filter(|d| d.reason == reason).collect();
                for chunk in group.chunks(max_binds) {
                    let list = in_list(chunk.len(), 4);
                    let sql = format!(
                        "UPDATE users SET status = 'disabled', disabled_reason = $2, updated_at = $3
                         WHERE tenant_id = $1 AND id IN ({list})"
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql))).bind(tenant_id).bind(reason.as_str()).bind(now);
                    for d in chunk {
                        q = q.bind(d.user_id);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            let ended: Vec<i64> = diff.users_disabled.iter().map(|d| d.user_id).collect();
            let cleared: Vec<i64> = diff.users_disabled.iter().filter(|d| d.clear_memberships).map(|d| d.user_id).collect();
            for (table, set) in [("user_sessions", &ended), ("user_departments", &cleared), ("tag_users", &cleared)] {
                for chunk in set.chunks(max_binds) {
                    let sql = format!("DELETE FROM {table} WHERE tenant_id = $1 AND user_id IN ({})", in_list(chunk.len(), 2));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql))).bind(tenant_id);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    q.execute(&mut *tx).await?;
                }
            }

            // Tags: upsert, rewrite the members of changed ones, deactivate removed ones.
            if !diff.tags_upsert.is_empty() || !diff.tags_removed.is_empty() {
                // Member keys → internal ids: new users above, the rest from the store.
                let mut want: BTreeSet<&str> = BTreeSet::new();
                for t in diff.tags_upsert.iter().filter(|t| t.members_changed) {
                    want.extend(t.record.users.iter().map(String::as_str).filter(|k| !ids.contains_key(k)));
                }
                let want: Vec<&str> = want.into_iter().collect();
                let mut stored: HashMap<String, i64> = HashMap::with_capacity(want.len());
                for chunk in want.chunks(max_binds) {
                    let sql = format!(
                        "SELECT external_id, user_id FROM user_identities
                         WHERE tenant_id = $1 AND kind = 'wecom' AND corpid = $2 AND external_id IN ({})",
                        in_list(chunk.len(), 3)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql))).bind(tenant_id).bind(&corpid);
                    for k in chunk {
                        q = q.bind(*k);
                    }
                    for r in q.fetch_all(&mut *tx).await? {
                        stored.insert(r.try_get("external_id")?, r.try_get("user_id")?);
                    }
                }
                for chunk in diff.tags_upsert.chunks(max_binds / 4) {
                    let sql = format!(
                        "INSERT INTO tags (tenant_id, id, name, active) VALUES {}
                         ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, active = excluded.active",
                        values(chunk.len(), 4, 1)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                    for t in chunk {
                        q = q.bind(tenant_id).bind(t.record.id).bind(&t.record.name).bind(true);
                    }
                    q.execute(&mut *tx).await?;
                }
                let rewritten: Vec<i64> = diff.tags_upsert.iter().filter(|t| t.members_changed).map(|t| t.record.id)
                    .chain(diff.tags_removed.iter().map(|t| t.0)).collect();
                for table in ["tag_users", "tag_departments"] {
                    for chunk in rewritten.chunks(max_binds) {
                        let sql = format!("DELETE FROM {table} WHERE tenant_id = $1 AND tag_id IN ({})", in_list(chunk.len(), 2));
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql))).bind(tenant_id);
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                let mut tu: Vec<(i64, i64)> = Vec::new();
                let mut td: Vec<(i64, i64)> = Vec::new();
                for t in diff.tags_upsert.iter().filter(|t| t.members_changed) {
                    tu.extend(t.record.users.iter().filter_map(|k| ids.get(k.as_str()).or_else(|| stored.get(k))).map(|id| (t.record.id, *id)));
                    td.extend(t.record.departments.iter().map(|d| (t.record.id, *d)));
                }
                for (table, col, rows) in [("tag_users", "user_id", &tu), ("tag_departments", "department_id", &td)] {
                    for chunk in rows.chunks(max_binds / 3) {
                        let sql = format!("INSERT INTO {table} (tenant_id, tag_id, {col}) VALUES {}", values(chunk.len(), 3, 1));
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                        for (tag, x) in chunk {
                            q = q.bind(tenant_id).bind(*tag).bind(*x);
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                for chunk in diff.tags_removed.chunks(max_binds) {
                    let sql = format!("UPDATE tags SET active = FALSE WHERE tenant_id = $1 AND id IN ({})", in_list(chunk.len(), 2));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql))).bind(tenant_id);
                    for t in chunk {
                        q = q.bind(t.0);
                    }
                    q.execute(&mut *tx).await?;
                }
            }

            // The switch: third-party identities leave user_identities (no more sign-in
            // through them) and are kept in retired_identities for the record.
            if let Some(ret) = retire {
                let rows = sqlx::query(
                    "SELECT corpid, external_id, user_id, display_id, source_agentid FROM user_identities
                     WHERE tenant_id = $1 AND kind = 'wecom_open'",
                )
                .bind(tenant_id)
                .fetch_all(&mut *tx)
                .await?;
                for r in &rows {
                    let ext: String = r.try_get("external_id")?;
                    sqlx::query(
                        "INSERT INTO retired_identities (tenant_id, kind, corpid, external_id, user_id, display_id,
                            source_agentid, relinked_userid, retired_at, run_id)
                         VALUES ($1, 'wecom_open', $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (tenant_id, kind, corpid, external_id) DO UPDATE SET
                            relinked_userid = excluded.relinked_userid, retired_at = excluded.retired_at, run_id = excluded.run_id",
                    )
                    .bind(tenant_id)
                    .bind(r.try_get::<String, _>("corpid")?)
                    .bind(&ext)
                    .bind(r.try_get::<i64, _>("user_id")?)
                    .bind(r.try_get::<String, _>("display_id")?)
                    .bind(r.try_get::<Option<i64>, _>("source_agentid")?)
                    .bind(ret.relinked.get(&ext))
                    .bind(now)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("DELETE FROM user_identities WHERE tenant_id = $1 AND kind = 'wecom_open'")
                    .bind(tenant_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The tenant's third-party identities (an imported directory not switched yet).
    pub async fn imported_identities(&self, tenant_id: i64) -> Result<Vec<ImportedIdentity>> {
        on_pool!(self, p => {
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
        on_pool!(self, p => {
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
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT external_id, user_id, relinked_userid FROM retired_identities WHERE tenant_id = $1 ORDER BY user_id",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push((r.try_get("external_id")?, r.try_get("user_id")?, r.try_get("relinked_userid")?));
            }
            Ok(out)
        })
    }

    /// Whether the pool was closed (the server stopped): background tasks end then.
    pub fn is_closed(&self) -> bool {
        on_pool!(self, p => p.is_closed())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholder_lists() {
        assert_eq!(super::values(2, 3, 1), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(super::values(1, 2, 4), "($4,$5)");
        assert_eq!(super::in_list(3, 2), "$2,$3,$4");
    }
}
