//! The directory as sync reads and writes it: load the current directory (whole, or a
//! few users for an incremental change), and apply a [`DirectoryDiff`] in ONE
//! transaction with batched statements, so a failed or interrupted sync leaves the
//! directory exactly as it was.

use super::audit::insert_audit;
use super::sync_runs::finish_query;
use super::{on_pool, Result, Store, StoreError, SyncRunFinish};
use crate::domain::audit::NewAudit;
use crate::domain::directory::{
    CurrentDept, CurrentDirectory, CurrentTag, CurrentUser, DeptRecord, DirectoryDiff,
    DirectoryPolicy, Membership, TagRecord, UserKey, UserRecord,
};
use crate::domain::now_ms;
use crate::domain::tenant::IntegrationMode;
use crate::domain::user::{DisabledReason, UserStatus};
use serde::de::DeserializeOwned;
use sqlx::Row;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Binds per statement: under SQLite's 32,766 and PostgreSQL's 65,535. SQLite (through
/// sqlx) gets slower per bind as a statement grows: a couple of hundred measured best.
const MAX_BINDS: usize = 200;
const PG_MAX_BINDS: usize = 20_000;
/// Rows per JSON batch.
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

/// Rows for [`json_source`]: a JSON array of arrays.
fn json_rows<T: serde::Serialize>(rows: impl Iterator<Item = T>) -> Result<String> {
    let rows: Vec<T> = rows.collect();
    serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(format!("rows to write: {e}")))
}

/// A table of the rows bound as JSON text to `$param`, one row per inner array as `j.value`.
fn json_source(pg: bool, param: usize) -> String {
    if pg {
        format!("jsonb_array_elements(${param}::jsonb) AS j(value)")
    } else {
        format!("jsonb_each(${param}) AS j")
    }
}

/// Element `i` of a [`json_source`] row as SQL type `ty`. SQLite's `->>` already gives an
/// integer or text by the JSON type; PostgreSQL's gives text, cast to the column's type.
fn json_col(pg: bool, i: usize, ty: &str) -> String {
    if pg && ty != "text" {
        format!("(j.value->>{i})::{ty}")
    } else {
        format!("j.value->>{i}")
    }
}

/// Elements `from..` of a [`json_source`] row, one per type in `types`, comma-separated.
fn json_cols_from(pg: bool, from: usize, types: &[&str]) -> String {
    let cols: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| json_col(pg, from + i, ty))
        .collect();
    cols.join(", ")
}

fn json_cols(pg: bool, types: &[&str]) -> String {
    json_cols_from(pg, 0, types)
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

/// User ids per slice of a whole-tenant load.
const LOAD_SLICE: i64 = 10_000;

const USER_COLS: &str =
    "id, name, status, disabled_reason, position, alias, telephone, mobile, email, \
    main_department, wecom_status, direct_leader, extattr";

/// A `users` row as [`USER_COLS`] selects it.
type UserRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    String,
    String,
);
/// (user_id, kind, external_id, display_id)
type IdentityRow = (i64, String, String, String);
/// (user_id, department_id, sort_order, is_leader)
type MembershipRow = (i64, i64, i64, DbBool);

/// A value bound to a [`Store::select_rows`] read.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

/// A boolean column: SQLite's JSON has it as 0 or 1, PostgreSQL's rows as a boolean.
#[derive(Clone, Copy, Debug)]
struct DbBool(bool);

impl<'de> serde::Deserialize<'de> for DbBool {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Either {
            Bool(bool),
            Int(i64),
        }
        Ok(DbBool(match Either::deserialize(d)? {
            Either::Bool(b) => b,
            Either::Int(i) => i != 0,
        }))
    }
}

impl sqlx::Type<sqlx::Postgres> for DbBool {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <bool as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for DbBool {
    fn decode(
        v: sqlx::postgres::PgValueRef<'r>,
    ) -> std::result::Result<Self, sqlx::error::BoxDynError> {
        Ok(DbBool(<bool as sqlx::Decode<sqlx::Postgres>>::decode(v)?))
    }
}

/// Joins rows of users, their identities and memberships into [`CurrentUser`]s.
fn assemble_users(
    out: &mut Vec<CurrentUser>,
    rows: Vec<UserRow>,
    idents: Vec<IdentityRow>,
    members: Vec<MembershipRow>,
) -> Result<()> {
    let mut wecom: HashMap<i64, (String, String)> = HashMap::with_capacity(idents.len());
    let mut imported: HashSet<i64> = HashSet::new();
    for (uid, kind, key, display) in idents {
        if kind == "wecom" {
            wecom.insert(uid, (key, display));
        } else {
            imported.insert(uid);
        }
    }
    let first = out.len();
    let mut index: HashMap<i64, usize> = HashMap::with_capacity(rows.len());
    for (
        id,
        name,
        status,
        reason,
        position,
        alias,
        telephone,
        mobile,
        email,
        main_department,
        wecom_status,
        direct_leader,
        extattr,
    ) in rows
    {
        let (key, userid) = match wecom.remove(&id) {
            Some((k, d)) => (Some(k), d),
            None => (None, String::new()),
        };
        index.insert(id, out.len());
        out.push(CurrentUser {
            id,
            key,
            record: UserRecord {
                userid,
                name,
                position,
                alias,
                telephone,
                mobile,
                email,
                main_department,
                wecom_status: wecom_status.unwrap_or(0),
                direct_leader,
                extattr,
                departments: Vec::new(),
                name_withheld: false,
            },
            status: status.parse().map_err(StoreError::Corrupt)?,
            disabled_reason: reason
                .map(|s| s.parse())
                .transpose()
                .map_err(StoreError::Corrupt)?,
            imported: imported.contains(&id),
            link_identity: false,
        });
    }
    for (uid, department_id, sort_order, is_leader) in members {
        if let Some(&i) = index.get(&uid) {
            out[i].record.departments.push(Membership {
                department_id,
                sort_order,
                is_leader: is_leader.0,
            });
        }
    }
    for u in &mut out[first..] {
        u.record.normalize();
    }
    Ok(())
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

/// What a full sync commits together with its directory changes, so that the run's
/// record (and what else the run changes) never disagrees with the directory: a crash
/// leaves either all of it or none of it.
#[derive(Clone, Copy, Debug)]
pub struct RunEnd<'a> {
    /// The run's final record.
    pub finish: &'a SyncRunFinish,
    /// The synced app's agentid and its `agent/get` answer as fetched by the run.
    pub agent_json: Option<(i64, &'a str)>,
    /// The tenant's new integration mode (the switch from a third-party app).
    pub integration_mode: Option<IntegrationMode>,
    /// The run's audit line.
    pub audit: Option<&'a NewAudit>,
}

/// The switch from a third-party app, applied with the directory diff.
#[derive(Clone, Debug, Default)]
pub struct RetireIdentities {
    /// open_userid → the self-built userid it was converted to.
    pub relinked: HashMap<String, String>,
}

impl Store {
    pub async fn directory_policy(&self, tenant_id: i64) -> Result<DirectoryPolicy> {
        on_pool!(self, |p| {
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
        on_pool!(self, |p| {
            Ok(
                sqlx::query("SELECT 1 AS one FROM directory_policies WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .fetch_optional(p)
                    .await?
                    .is_some(),
            )
        })
    }

    pub async fn put_directory_policy(&self, tenant_id: i64, pol: &DirectoryPolicy) -> Result<()> {
        on_pool!(self, |p| {
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
        let users = self.load_users(tenant_id, corpid, None).await?;
        let keys: HashMap<i64, &str> = users
            .iter()
            .filter_map(|u| u.key.as_deref().map(|k| (u.id, k)))
            .collect();
        let tags = self
            .load_tags_with(tenant_id, corpid, None, Some(&keys))
            .await?;
        drop(keys);
        let rows: Vec<(i64, i64, String, String, i64, String, DbBool)> = self
            .select_rows(
                "id, parent_id, name, name_en, sort_order, leaders, active",
                "FROM departments WHERE tenant_id = $1",
                &[Arg::Int(tenant_id)],
            )
            .await?;
        let departments = rows
            .into_iter()
            .map(
                |(id, parent_id, name, name_en, sort_order, leaders, active)| {
                    let record = DeptRecord {
                        id,
                        parent_id,
                        name,
                        name_en,
                        sort_order,
                        leaders,
                        name_withheld: false,
                    };
                    (
                        id,
                        CurrentDept {
                            record,
                            active: active.0,
                        },
                    )
                },
            )
            .collect();
        Ok(CurrentDirectory {
            departments,
            users,
            tags,
        })
    }

    /// The rows of `SELECT {cols} {from}` (`from`: FROM, WHERE and any ORDER BY / LIMIT).
    /// On SQLite they come as the one
    /// JSON array the database builds of them: one value crosses the driver instead of
    /// each column of each row, which sqlx-sqlite hands over from its worker thread one by
    /// one (loading 100k users took several times the scan itself). PostgreSQL's binary
    /// rows are cheaper than its JSON: read as they are.
    async fn select_rows<T>(&self, cols: &str, from: &str, args: &[Arg<'_>]) -> Result<Vec<T>>
    where
        T: DeserializeOwned + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let inner = format!("SELECT {cols} {from}");
        match self {
            Store::Sqlite(p) => {
                let sql =
                    format!("SELECT json_group_array(json_array({cols})) AS j FROM ({inner})");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(false, sql)));
                for a in args {
                    q = match *a {
                        Arg::Int(i) => q.bind(i),
                        Arg::Text(s) => q.bind(s),
                    };
                }
                let text: String = q.fetch_one(p).await?.try_get("j")?;
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("rows of {inner:.60}…: {e}")))
            }
            Store::Postgres(p) => {
                let mut q = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(inner.clone()));
                for a in args {
                    q = match *a {
                        Arg::Int(i) => q.bind(i),
                        Arg::Text(s) => q.bind(s),
                    };
                }
                Ok(q.fetch_all(p).await?)
            }
        }
    }

    /// Stored users: all of the tenant, or those whose WeCom identity key is in `keys`.
    /// Users, identities and memberships are read by separate scans and joined here: a
    /// join lets SQLite pick the identities' primary key and go quadratic. A whole
    /// tenant is read in slices of [`LOAD_SLICE`] user ids, so what is in flight stays small.
    pub async fn load_users(
        &self,
        tenant_id: i64,
        corpid: &str,
        keys: Option<&[UserKey]>,
    ) -> Result<Vec<CurrentUser>> {
        self.load_users_sliced(tenant_id, corpid, keys, LOAD_SLICE)
            .await
    }

    async fn load_users_sliced(
        &self,
        tenant_id: i64,
        corpid: &str,
        keys: Option<&[UserKey]>,
        slice: i64,
    ) -> Result<Vec<CurrentUser>> {
        let corpid = corpid.to_ascii_lowercase();
        let mut users: Vec<CurrentUser> = Vec::new();
        let Some(keys) = keys else {
            let mut after = 0i64;
            loop {
                let rows: Vec<UserRow> = self
                    .select_rows(
                        USER_COLS,
                        "FROM users WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                        &[Arg::Int(tenant_id), Arg::Int(after), Arg::Int(slice)],
                    )
                    .await?;
                let Some(hi) = rows.iter().map(|r| r.0).max() else {
                    break;
                };
                let range = [
                    Arg::Int(tenant_id),
                    Arg::Int(after),
                    Arg::Int(hi),
                    Arg::Text(&corpid),
                ];
                let idents: Vec<IdentityRow> = self
                    .select_rows(
                        "user_id, kind, external_id, display_id",
                        "FROM user_identities
                         WHERE tenant_id = $1 AND user_id > $2 AND user_id <= $3
                           AND ((kind = 'wecom' AND corpid = $4) OR kind = 'wecom_open')",
                        &range,
                    )
                    .await?;
                let members: Vec<MembershipRow> = self
                    .select_rows(
                        "user_id, department_id, sort_order, is_leader",
                        "FROM user_departments
                         WHERE tenant_id = $1 AND user_id > $2 AND user_id <= $3",
                        &range[..3],
                    )
                    .await?;
                let full = rows.len() as i64 == slice;
                assemble_users(&mut users, rows, idents, members)?;
                if !full {
                    break;
                }
                after = hi;
            }
            return Ok(users);
        };
        // A few users (an incremental change): identities by key, then their rows by id.
        let lower: Vec<String> = keys.iter().map(|k| k.to_ascii_lowercase()).collect();
        let mut idents: Vec<IdentityRow> = Vec::new();
        for chunk in lower.chunks(MAX_BINDS) {
            let mut args = vec![Arg::Int(tenant_id), Arg::Text(&corpid)];
            args.extend(chunk.iter().map(|k| Arg::Text(k)));
            idents.extend(
                self.select_rows::<IdentityRow>(
                    "user_id, kind, external_id, display_id",
                    &format!(
                        "FROM user_identities
                         WHERE tenant_id = $1 AND kind = 'wecom' AND corpid = $2 AND external_id IN ({})",
                        in_list(chunk.len(), 3)
                    ),
                    &args,
                )
                .await?,
            );
        }
        let ids: Vec<i64> = idents.iter().map(|i| i.0).collect();
        let (mut rows, mut members) = (Vec::new(), Vec::new());
        for chunk in ids.chunks(MAX_BINDS) {
            let mut args = vec![Arg::Int(tenant_id)];
            args.extend(chunk.iter().map(|id| Arg::Int(*id)));
            let list = in_list(chunk.len(), 2);
            rows.extend(
                self.select_rows::<UserRow>(
                    USER_COLS,
                    &format!("FROM users WHERE tenant_id = $1 AND id IN ({list})"),
                    &args,
                )
                .await?,
            );
            members.extend(
                self.select_rows::<MembershipRow>(
                    "user_id, department_id, sort_order, is_leader",
                    &format!(
                        "FROM user_departments
                         WHERE tenant_id = $1 AND user_id IN ({list})"
                    ),
                    &args,
                )
                .await?,
            );
        }
        assemble_users(&mut users, rows, idents, members)?;
        Ok(users)
    }

    /// Stored tags (all, or one), members as WeCom identity keys of `corpid`.
    pub async fn load_tags(
        &self,
        tenant_id: i64,
        corpid: &str,
        only: Option<i64>,
    ) -> Result<HashMap<i64, CurrentTag>> {
        self.load_tags_with(tenant_id, corpid, only, None).await
    }

    /// [`Self::load_tags`], with the members' keys given when the caller has them all.
    async fn load_tags_with(
        &self,
        tenant_id: i64,
        corpid: &str,
        only: Option<i64>,
        known: Option<&HashMap<i64, &str>>,
    ) -> Result<HashMap<i64, CurrentTag>> {
        let corpid = corpid.to_ascii_lowercase();
        let only = Arg::Int(only.unwrap_or(-1));
        let args = [Arg::Int(tenant_id), only];
        let rows: Vec<(i64, String, DbBool)> = self
            .select_rows(
                "id, name, active",
                "FROM tags WHERE tenant_id = $1 AND ($2 = -1 OR id = $2)",
                &args,
            )
            .await?;
        let mut tags: HashMap<i64, CurrentTag> = rows
            .into_iter()
            .map(|(id, name, active)| {
                let record = TagRecord {
                    id,
                    name,
                    users: BTreeSet::new(),
                    departments: BTreeSet::new(),
                };
                (
                    id,
                    CurrentTag {
                        record,
                        active: active.0,
                    },
                )
            })
            .collect();
        let members: Vec<(i64, i64)> = self
            .select_rows(
                "tag_id, user_id",
                "FROM tag_users WHERE tenant_id = $1 AND ($2 = -1 OR tag_id = $2)",
                &args,
            )
            .await?;
        // Members by internal id, then their keys (a join would let SQLite pick the
        // identities' primary key and go quadratic).
        let mut looked_up: HashMap<i64, String> = HashMap::new();
        if known.is_none() {
            let ids: BTreeSet<i64> = members.iter().map(|m| m.1).collect();
            let ids: Vec<i64> = ids.into_iter().collect();
            for chunk in ids.chunks(MAX_BINDS) {
                let mut a = vec![Arg::Int(tenant_id), Arg::Text(&corpid)];
                a.extend(chunk.iter().map(|id| Arg::Int(*id)));
                let rows: Vec<(i64, String)> = self
                    .select_rows(
                        "user_id, external_id",
                        &format!(
                            "FROM user_identities
                             WHERE tenant_id = $1 AND kind = 'wecom' AND corpid = $2 AND user_id IN ({})",
                            in_list(chunk.len(), 3)
                        ),
                        &a,
                    )
                    .await?;
                looked_up.extend(rows);
            }
        }
        for (tag, uid) in members {
            let key = match known {
                Some(k) => k.get(&uid).copied(),
                None => looked_up.get(&uid).map(String::as_str),
            };
            if let (Some(t), Some(k)) = (tags.get_mut(&tag), key) {
                t.record.users.insert(k.to_string());
            }
        }
        let depts: Vec<(i64, i64)> = self
            .select_rows(
                "tag_id, department_id",
                "FROM tag_departments WHERE tenant_id = $1 AND ($2 = -1 OR tag_id = $2)",
                &args,
            )
            .await?;
        for (tag, dept) in depts {
            if let Some(t) = tags.get_mut(&tag) {
                t.record.departments.insert(dept);
            }
        }
        Ok(tags)
    }

    pub async fn load_department(&self, tenant_id: i64, id: i64) -> Result<Option<CurrentDept>> {
        on_pool!(self, |p| {
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
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT user_id FROM user_departments WHERE tenant_id = $1 AND department_id = $2",
            )
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
                // By tenant and user id only, so the (tenant, user id) index is the one
                // used, not the primary key's (tenant, kind, corpid) prefix.
                let sql = format!(
                    "SELECT kind, corpid, external_id FROM user_identities WHERE tenant_id = $1 AND user_id IN ({})",
                    in_list(chunk.len(), 2)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql))).bind(tenant_id);
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(p).await? {
                    let (kind, corp): (String, String) = (r.try_get("kind")?, r.try_get("corpid")?);
                    if kind == "wecom" && corp == corpid {
                        out.push(r.try_get("external_id")?);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Users not disabled, for the mass-disable guard of an incremental change.
    pub async fn active_user_count(&self, tenant_id: i64) -> Result<i64> {
        on_pool!(self, |p| {
            Ok(sqlx::query(
                "SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1 AND status <> 'disabled'",
            )
            .bind(tenant_id)
            .fetch_one(p)
            .await?
            .try_get("n")?)
        })
    }

    /// Applies a diff in one transaction. `run_id`'s record is touched first, which also
    /// takes SQLite's write lock before the new user ids are reserved. `retire` moves the
    /// tenant's third-party identities out of `user_identities` (the switch). `end` (a
    /// full sync) ends the run's record in the same transaction, with the app snapshot,
    /// the tenant's mode and the audit line; without a record to end nothing is applied.
    pub async fn apply_directory_diff(
        &self,
        tenant_id: i64,
        corpid: &str,
        run_id: i64,
        diff: &DirectoryDiff,
        retire: Option<&RetireIdentities>,
        end: Option<RunEnd<'_>>,
    ) -> Result<()> {
        let now = now_ms();
        let corpid = corpid.to_ascii_lowercase();
        let pg = matches!(self, Store::Postgres(_));
        let max_binds = if pg { PG_MAX_BINDS } else { MAX_BINDS };
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE sync_runs SET phase = 'applying', heartbeat_at = $1 WHERE id = $2")
                .bind(now)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;

            // Departments: upserts in batches, removals by id.
            let sql = format!(
                "INSERT INTO departments (tenant_id, id, parent_id, name, name_en, sort_order, leaders, active, updated_at)
                 SELECT $1, {}, TRUE, $2 FROM {} WHERE TRUE
                 ON CONFLICT (tenant_id, id) DO UPDATE SET parent_id = excluded.parent_id,
                    name = excluded.name, name_en = excluded.name_en, sort_order = excluded.sort_order,
                    leaders = excluded.leaders, active = excluded.active, updated_at = excluded.updated_at",
                json_cols(pg, &["bigint", "bigint", "text", "text", "bigint", "text"]),
                json_source(pg, 3)
            );
            for chunk in diff.departments_upsert.chunks(JSON_ROWS) {
                let rows = json_rows(chunk.iter().map(|d| {
                    let r = &d.record;
                    (
                        r.id,
                        r.parent_id,
                        &r.name,
                        &r.name_en,
                        r.sort_order,
                        &r.leaders,
                    )
                }))?;
                sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql.clone())))
                    .bind(tenant_id)
                    .bind(now)
                    .bind(rows)
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in diff.departments_removed.chunks(max_binds) {
                let sql = format!(
                    "UPDATE departments SET active = FALSE, updated_at = $2 WHERE tenant_id = $1 AND id IN ({})",
                    in_list(chunk.len(), 3)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)))
                    .bind(tenant_id)
                    .bind(now);
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
                // In key order, so ids rise with the identities' primary key: every index
                // of the new rows grows at its end instead of at random pages.
                let mut added: Vec<_> = diff.users_added.iter().collect();
                added.sort_unstable_by(|a, b| a.key.cmp(&b.key));
                let pairs: Vec<_> = added.into_iter().zip(reserved.iter().copied()).collect();
                for (u, id) in &pairs {
                    ids.insert(u.key.as_str(), *id);
                }
                // Rows travel as one JSON text per statement, unpacked by the database in C
                // (SQLite's jsonb_each hands out parsed binary JSON; its json_each hands out
                // text that each ->> parses again, 3x slower); binding each value through
                // sqlx costs microseconds apiece.
                let user_sql = format!(
                    "INSERT INTO users (id, tenant_id, name, status, disabled_reason, position, alias, telephone,
                        mobile, email, main_department, wecom_status, direct_leader, extattr, created_at, updated_at)
                     SELECT {c0}, $1, {rest}, $2, $2 FROM {src}",
                    c0 = json_col(pg, 0, "bigint"),
                    rest = json_cols_from(pg, 1, &["text", "text", "text", "text", "text", "text", "text", "text", "bigint", "bigint", "text", "text"]),
                    src = json_source(pg, 3)
                );
                let identity_sql = format!(
                    "INSERT INTO user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, created_at)
                     SELECT $1, 'wecom', $2, {}, $3 FROM {}",
                    json_cols(pg, &["text", "bigint", "text"]),
                    json_source(pg, 4)
                );
                for chunk in pairs.chunks(JSON_ROWS) {
                    let rows = json_rows(chunk.iter().map(|(u, id)| {
                        let r = &u.record;
                        (
                            id,
                            &r.name,
                            u.status.as_str(),
                            u.disabled_reason.map(|d| d.as_str()),
                            &r.position,
                            &r.alias,
                            &r.telephone,
                            &r.mobile,
                            &r.email,
                            r.main_department,
                            r.wecom_status,
                            &r.direct_leader,
                            &r.extattr,
                        )
                    }))?;
                    sqlx::query(sqlx::AssertSqlSafe(eng(pg, user_sql.clone())))
                        .bind(tenant_id)
                        .bind(now)
                        .bind(rows)
                        .execute(&mut *tx)
                        .await?;
                    let rows =
                        json_rows(chunk.iter().map(|(u, id)| (&u.key, id, &u.record.userid)))?;
                    sqlx::query(sqlx::AssertSqlSafe(eng(pg, identity_sql.clone())))
                        .bind(tenant_id)
                        .bind(&corpid)
                        .bind(now)
                        .bind(rows)
                        .execute(&mut *tx)
                        .await?;
                }
            }

            // Memberships of new users, and of updated users whose memberships changed.
            let mut member_rows: Vec<(i64, &Membership)> = Vec::new();
            for u in &diff.users_added {
                if let Some(&id) = ids.get(u.key.as_str()) {
                    member_rows.extend(u.record.departments.iter().map(|m| (id, m)));
                }
            }
            let moved: Vec<i64> = diff
                .users_updated
                .iter()
                .filter(|u| u.departments_changed)
                .map(|u| u.user_id)
                .collect();
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
            // In primary-key order: the inserts append to the index instead of scattering.
            member_rows.sort_unstable_by_key(|(id, m)| (*id, m.department_id));
            let sql = format!(
                "INSERT INTO user_departments (tenant_id, user_id, department_id, sort_order, is_leader) SELECT $1, {} FROM {}",
                json_cols(pg, &["bigint", "bigint", "bigint", "boolean"]),
                json_source(pg, 2)
            );
            for chunk in member_rows.chunks(JSON_ROWS) {
                let rows = json_rows(
                    chunk
                        .iter()
                        .map(|(id, m)| (id, m.department_id, m.sort_order, m.is_leader)),
                )?;
                sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql.clone())))
                    .bind(tenant_id)
                    .bind(rows)
                    .execute(&mut *tx)
                    .await?;
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
                        sqlx::query(
                            "DELETE FROM user_sessions WHERE tenant_id = $1 AND user_id = $2",
                        )
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
                    .map_err(|e| {
                        StoreError::unique(e, format!("WeCom userid {}", u.record.userid))
                    })?;
                }
            }

            // Disabled users, grouped by reason; their sessions end in this transaction.
            for reason in [
                DisabledReason::LeftScope,
                DisabledReason::LeftWecom,
                DisabledReason::WecomDisabled,
                DisabledReason::Admin,
            ] {
                let group: Vec<_> = diff
                    .users_disabled
                    .iter()
                    .filter(|d| d.reason == reason)
                    .collect();
                for chunk in group.chunks(max_binds) {
                    let list = in_list(chunk.len(), 4);
                    let sql = format!(
                        "UPDATE users SET status = 'disabled', disabled_reason = $2, updated_at = $3
                         WHERE tenant_id = $1 AND id IN ({list})"
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)))
                        .bind(tenant_id)
                        .bind(reason.as_str())
                        .bind(now);
                    for d in chunk {
                        q = q.bind(d.user_id);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            let ended: Vec<i64> = diff.users_disabled.iter().map(|d| d.user_id).collect();
            let cleared: Vec<i64> = diff
                .users_disabled
                .iter()
                .filter(|d| d.clear_memberships)
                .map(|d| d.user_id)
                .collect();
            for (table, set) in [
                ("user_sessions", &ended),
                ("user_departments", &cleared),
                ("tag_users", &cleared),
            ] {
                for chunk in set.chunks(max_binds) {
                    let sql = format!(
                        "DELETE FROM {table} WHERE tenant_id = $1 AND user_id IN ({})",
                        in_list(chunk.len(), 2)
                    );
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
                    want.extend(
                        t.record
                            .users
                            .iter()
                            .map(String::as_str)
                            .filter(|k| !ids.contains_key(k)),
                    );
                }
                let want: Vec<&str> = want.into_iter().collect();
                let mut stored: HashMap<String, i64> = HashMap::with_capacity(want.len());
                for chunk in want.chunks(max_binds) {
                    let sql = format!(
                        "SELECT external_id, user_id FROM user_identities
                         WHERE tenant_id = $1 AND kind = 'wecom' AND corpid = $2 AND external_id IN ({})",
                        in_list(chunk.len(), 3)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)))
                        .bind(tenant_id)
                        .bind(&corpid);
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
                        q = q
                            .bind(tenant_id)
                            .bind(t.record.id)
                            .bind(&t.record.name)
                            .bind(true);
                    }
                    q.execute(&mut *tx).await?;
                }
                let rewritten: Vec<i64> = diff
                    .tags_upsert
                    .iter()
                    .filter(|t| t.members_changed)
                    .map(|t| t.record.id)
                    .chain(diff.tags_removed.iter().map(|t| t.0))
                    .collect();
                for table in ["tag_users", "tag_departments"] {
                    for chunk in rewritten.chunks(max_binds) {
                        let sql = format!(
                            "DELETE FROM {table} WHERE tenant_id = $1 AND tag_id IN ({})",
                            in_list(chunk.len(), 2)
                        );
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
                    tu.extend(
                        t.record
                            .users
                            .iter()
                            .filter_map(|k| ids.get(k.as_str()).or_else(|| stored.get(k)))
                            .map(|id| (t.record.id, *id)),
                    );
                    td.extend(t.record.departments.iter().map(|d| (t.record.id, *d)));
                }
                for (table, col, rows) in [
                    ("tag_users", "user_id", &tu),
                    ("tag_departments", "department_id", &td),
                ] {
                    let sql = format!(
                        "INSERT INTO {table} (tenant_id, tag_id, {col}) SELECT $1, {} FROM {}",
                        json_cols(pg, &["bigint", "bigint"]),
                        json_source(pg, 2)
                    );
                    for chunk in rows.chunks(JSON_ROWS) {
                        sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql.clone())))
                            .bind(tenant_id)
                            .bind(json_rows(chunk.iter())?)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                for chunk in diff.tags_removed.chunks(max_binds) {
                    let sql = format!(
                        "UPDATE tags SET active = FALSE WHERE tenant_id = $1 AND id IN ({})",
                        in_list(chunk.len(), 2)
                    );
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
                sqlx::query(
                    "DELETE FROM user_identities WHERE tenant_id = $1 AND kind = 'wecom_open'",
                )
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
            }

            // The run's end, in the same transaction as its changes.
            if let Some(end) = end {
                if let Some((agentid, agent)) = end.agent_json {
                    sqlx::query("UPDATE wecom_integrations SET agent_json = $1, verified_at = $2 WHERE tenant_id = $3 AND agentid = $4")
                        .bind(agent)
                        .bind(now)
                        .bind(tenant_id)
                        .bind(agentid)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(mode) = end.integration_mode {
                    sqlx::query("UPDATE tenants SET integration_mode = $1 WHERE id = $2")
                        .bind(mode.as_str())
                        .bind(tenant_id)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(a) = end.audit {
                    insert_audit!(&mut *tx, &a, now);
                }
                let ended = finish_query!(end.finish, now, run_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if ended != 1 {
                    // No record to end: apply nothing rather than changes no run accounts for.
                    return Err(StoreError::NotFound(format!("sync run {run_id}")));
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::directory::NewUser;

    fn member(i: i64) -> NewUser {
        NewUser {
            key: format!("user{i:03}"),
            record: UserRecord {
                userid: format!("User{i:03}"),
                name: format!("张三{i} 'quoted' \\ \"x\""),
                position: if i % 2 == 0 {
                    "工程师".into()
                } else {
                    String::new()
                },
                alias: String::new(),
                telephone: String::new(),
                mobile: (i % 3 == 0).then(|| format!("1380000{i:04}")),
                email: None,
                main_department: Some(2 + i % 2),
                wecom_status: 1,
                direct_leader: String::new(),
                extattr: if i == 4 {
                    r#"{"attrs":[{"name":"工号","value":"7"}]}"#.into()
                } else {
                    String::new()
                },
                departments: (0..1 + i % 2)
                    .map(|d| Membership {
                        department_id: 2 + d,
                        sort_order: i * 10 + d,
                        is_leader: i % 5 == d,
                    })
                    .collect(),
                name_withheld: false,
            },
            status: if i % 4 == 0 {
                UserStatus::Authorized
            } else {
                UserStatus::Unauthorized
            },
            disabled_reason: None,
        }
    }

    /// Whole-tenant loads come in slices of user ids: every slice size gives the same
    /// directory, equal to what was written, on both engines; a keyed load agrees.
    #[tokio::test]
    async fn sliced_loads_read_back_what_was_written() {
        for s in crate::testing::stores().await {
            let pro = crate::domain::tenant::Edition::Professional;
            let t = s.create_tenant("acme", "Acme", pro, None).await.unwrap();
            let other = s.create_tenant("other", "Other", pro, None).await.unwrap();
            let added: Vec<NewUser> = (0..23).map(member).collect();
            // Another tenant's users interleave with the ids: a slice must not take them.
            for (i, chunk) in added.chunks(5).enumerate() {
                let diff = DirectoryDiff {
                    users_added: chunk.to_vec(),
                    ..Default::default()
                };
                s.apply_directory_diff(t.id, "WWcorp", 0, &diff, None, None)
                    .await
                    .unwrap();
                let theirs = DirectoryDiff {
                    users_added: vec![member(100 + i as i64)],
                    ..Default::default()
                };
                s.apply_directory_diff(other.id, "wwcorp", 0, &theirs, None, None)
                    .await
                    .unwrap();
            }
            let sorted = |mut v: Vec<CurrentUser>| {
                v.sort_by(|a, b| a.key.cmp(&b.key));
                v
            };
            let whole = sorted(s.load_users(t.id, "wwcorp", None).await.unwrap());
            assert_eq!(whole.len(), 23, "{}", s.engine());
            for (u, want) in whole.iter().zip(&added) {
                let mut w = want.record.clone();
                w.normalize();
                assert_eq!(u.key.as_deref(), Some(want.key.as_str()));
                assert_eq!(u.record, w, "{}", s.engine());
                assert_eq!(u.status, want.status);
                assert!(!u.imported && !u.link_identity);
            }
            for slice in [1, 4, 5, 22, 23, 24] {
                let got = sorted(
                    s.load_users_sliced(t.id, "wwcorp", None, slice)
                        .await
                        .unwrap(),
                );
                assert_eq!(got.len(), whole.len(), "slice {slice} on {}", s.engine());
                for (a, b) in got.iter().zip(&whole) {
                    assert_eq!(
                        (a.id, &a.key, &a.record),
                        (b.id, &b.key, &b.record),
                        "slice {slice}"
                    );
                }
            }
            let keys: Vec<UserKey> = ["user003", "USER007", "nobody"].map(String::from).to_vec();
            let some = sorted(s.load_users(t.id, "wwcorp", Some(&keys)).await.unwrap());
            let ids: Vec<i64> = some.iter().map(|u| u.id).collect();
            let want: Vec<i64> = whole
                .iter()
                .filter(|u| ["user003", "user007"].contains(&u.key.as_deref().unwrap()))
                .map(|u| u.id)
                .collect();
            assert_eq!(ids, want, "{}", s.engine());
            assert_eq!(some[1].record, whole[7].record);
            let dir = s.load_directory(other.id, "wwcorp").await.unwrap();
            assert_eq!(dir.users.len(), 5);
        }
    }

    /// A full sync's record ends in the transaction of its changes (issue 19: a crash
    /// right after the apply left the run `running`): they commit together, a change
    /// that fails rolls the record's end back with it, and without a record to end
    /// nothing is applied. Both engines.
    #[tokio::test]
    async fn run_record_commits_with_the_apply() {
        use crate::domain::directory::{RunKind, RunStatus, Trigger};
        use crate::domain::tenant::{Edition, IntegrationMode};
        use crate::store::NewSyncRun;
        for s in crate::testing::stores().await {
            let e = s.engine();
            let t = s
                .create_tenant("acme", "Acme", Edition::Professional, None)
                .await
                .unwrap();
            let new_run = NewSyncRun {
                tenant_id: t.id,
                trigger: Trigger::Cli,
                kind: RunKind::Full,
                actor: "operator".into(),
                forced: false,
            };
            let finish = |added: i64| SyncRunFinish {
                status: RunStatus::Succeeded,
                users_added: added,
                users_updated: 0,
                users_disabled: 0,
                users_moved: 0,
                api_calls: 7,
                api_calls_json: "{}".into(),
                report_json: Some("{}".into()),
                error: None,
            };
            let audit = NewAudit {
                tenant_id: t.id,
                actor: "operator".into(),
                action: "directory.sync",
                detail: "run".into(),
                ip: None,
            };
            let end = |f| RunEnd {
                finish: f,
                agent_json: None,
                integration_mode: Some(IntegrationMode::SelfBuilt),
                audit: Some(&audit),
            };
            let diff = DirectoryDiff {
                users_added: (0..5).map(member).collect(),
                ..Default::default()
            };
            let audits = || async { s.list_audit(t.id, 100, None).await.unwrap().len() };
            let audits_before = audits().await;
            let run = s.create_sync_run(&new_run).await.unwrap();

            // No record to end: nothing is applied.
            let f5 = finish(5);
            let r = s
                .apply_directory_diff(t.id, "wwcorp", run + 1000, &diff, None, Some(end(&f5)))
                .await;
            assert!(matches!(r, Err(StoreError::NotFound(_))), "{e}: {r:?}");
            assert!(
                s.load_users(t.id, "wwcorp", None).await.unwrap().is_empty(),
                "{e}"
            );
            let mode = s
                .tenant_by_id(t.id)
                .await
                .unwrap()
                .unwrap()
                .integration_mode;
            assert_eq!(mode, IntegrationMode::None, "{e}");
            assert_eq!(audits().await, audits_before, "{e}");

            // Applied: the changes, the record's end, the mode and the audit line together.
            s.apply_directory_diff(t.id, "wwcorp", run, &diff, None, Some(end(&f5)))
                .await
                .unwrap();
            let rec = s.sync_run(t.id, run).await.unwrap().unwrap();
            assert_eq!(
                (
                    rec.status,
                    rec.users_added,
                    rec.api_calls,
                    rec.phase.as_str()
                ),
                (RunStatus::Succeeded, 5, 7, "done"),
                "{e}"
            );
            assert!(rec.finished_at.is_some(), "{e}");
            assert_eq!(s.load_users(t.id, "wwcorp", None).await.unwrap().len(), 5);
            let mode = s
                .tenant_by_id(t.id)
                .await
                .unwrap()
                .unwrap()
                .integration_mode;
            assert_eq!(mode, IntegrationMode::SelfBuilt, "{e}");
            assert_eq!(audits().await, audits_before + 1, "{e}");

            // A change that fails (a WeCom identity already taken) rolls back the end too.
            let run2 = s.create_sync_run(&new_run).await.unwrap();
            let again = DirectoryDiff {
                users_added: vec![member(3)],
                ..Default::default()
            };
            let f1 = finish(1);
            let r = s
                .apply_directory_diff(t.id, "wwcorp", run2, &again, None, Some(end(&f1)))
                .await;
            assert!(r.is_err(), "{e}: a second identity for user003 was stored");
            let rec = s.sync_run(t.id, run2).await.unwrap().unwrap();
            assert_eq!(
                (rec.status, rec.finished_at),
                (RunStatus::Running, None),
                "{e}"
            );
            assert_eq!(s.load_users(t.id, "wwcorp", None).await.unwrap().len(), 5);
            assert_eq!(audits().await, audits_before + 1, "{e}");

            // Such a run, found by the next start, is said to have applied nothing.
            assert_eq!(s.interrupt_stale_runs(t.id, 0).await.unwrap(), 1);
            let rec = s.sync_run(t.id, run2).await.unwrap().unwrap();
            assert_eq!(rec.status, RunStatus::Interrupted);
            assert!(
                rec.error
                    .as_deref()
                    .unwrap()
                    .ends_with("nothing was applied"),
                "{e}: {:?}",
                rec.error
            );
        }
    }

    #[test]
    fn placeholder_lists() {
        assert_eq!(super::values(2, 3, 1), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(super::values(1, 2, 4), "($4,$5)");
        assert_eq!(super::in_list(3, 2), "$2,$3,$4");
    }
}
