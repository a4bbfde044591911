//! The directory as sync reads and writes it: load the current directory (whole, or a
//! few users for an incremental change), and apply a [`DirectoryDiff`] in ONE
//! transaction with batched statements, so a failed or interrupted sync leaves the
//! directory exactly as it was.

use super::audit::insert_audit;
use super::{in_list, on_pool, Result, Store, StoreError, SyncRunFinish};
use crate::domain::audit::NewAudit;
use crate::domain::directory::{
    CurrentDept, CurrentDirectory, CurrentTag, CurrentUser, DeptRecord, DirectoryPolicy,
    Membership, TagRecord, UserKey, UserRecord,
};
use crate::domain::now_ms;
use crate::domain::tenant::IntegrationMode;
use serde::de::DeserializeOwned;
use sqlx::Row;
use std::collections::{BTreeSet, HashMap, HashSet};

pub use ahead::OpenApply;

mod ahead;
mod apply;
mod bulk;
mod import;
mod imported;
#[cfg(test)]
mod tests;

/// Binds per statement: under SQLite's 32,766 and PostgreSQL's 65,535. SQLite (through
/// sqlx) gets slower per bind as a statement grows: a couple of hundred measured best.
const MAX_BINDS: usize = 200;
const PG_MAX_BINDS: usize = 20_000;

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

/// What [`Store::apply_directory_diff`] does besides the diff.
#[derive(Debug, Default)]
pub struct ApplyWith<'a> {
    /// The switch: the tenant's third-party identities move out of `user_identities`.
    pub retire: Option<&'a RetireIdentities>,
    /// A full sync: its record ends in the same transaction, with the app snapshot, the
    /// tenant's mode and the audit line; without a record to end nothing is applied.
    pub end: Option<RunEnd<'a>>,
    /// The apply's transaction, opened during the fetch with rows written ahead.
    pub open: Option<OpenApply>,
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

    /// Saves the policy; `audit` (who changed it) commits with it.
    pub async fn put_directory_policy(
        &self,
        tenant_id: i64,
        pol: &DirectoryPolicy,
        audit: Option<&NewAudit>,
    ) -> Result<()> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
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
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if let Some(a) = audit {
                insert_audit!(&mut *tx, a, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The whole stored directory of a tenant, users keyed by their WeCom identity of `corpid`.
    pub async fn load_directory(&self, tenant_id: i64, corpid: &str) -> Result<CurrentDirectory> {
        self.load_directory_folding(tenant_id, corpid, &mut |_| false)
            .await
    }

    /// [`Self::load_directory`] without the users `fold` takes (it has accounted for them
    /// as they were read: a sync's members set aside as unchanged); only their keys are
    /// kept, to name tag members.
    pub async fn load_directory_folding(
        &self,
        tenant_id: i64,
        corpid: &str,
        fold: &mut (dyn FnMut(&CurrentUser) -> bool + Send),
    ) -> Result<CurrentDirectory> {
        let mut users = Vec::new();
        let mut folded: Vec<(i64, UserKey)> = Vec::new();
        self.scan_users(tenant_id, corpid, |slice| {
            for u in slice {
                match (fold(&u), u.key) {
                    (true, Some(k)) => folded.push((u.id, k)),
                    (true, None) => {}
                    (false, key) => users.push(CurrentUser { key, ..u }),
                }
            }
        })
        .await?;
        let keys: HashMap<i64, &str> = users
            .iter()
            .filter_map(|u| u.key.as_deref().map(|k| (u.id, k)))
            .chain(folded.iter().map(|(id, k)| (*id, k.as_str())))
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
            folded: Default::default(),
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

    /// Every stored user of a tenant, handed to `each` a slice at a time: for a caller
    /// that keeps less than the whole user (the sync's baseline).
    pub async fn scan_users(
        &self,
        tenant_id: i64,
        corpid: &str,
        mut each: impl FnMut(Vec<CurrentUser>) + Send,
    ) -> Result<()> {
        self.scan_users_sliced(tenant_id, corpid, LOAD_SLICE, &mut each)
            .await
    }

    /// The whole tenant in slices of `slice` user ids, so what is in flight stays small.
    async fn scan_users_sliced(
        &self,
        tenant_id: i64,
        corpid: &str,
        slice: i64,
        each: &mut (dyn FnMut(Vec<CurrentUser>) + Send),
    ) -> Result<()> {
        let corpid = corpid.to_ascii_lowercase();
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
            let mut users = Vec::with_capacity(rows.len());
            assemble_users(&mut users, rows, idents, members)?;
            each(users);
            if !full {
                break;
            }
            after = hi;
        }
        Ok(())
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
            self.scan_users_sliced(tenant_id, &corpid, slice, &mut |mut s| users.append(&mut s))
                .await?;
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
                        in_list(3, chunk.len())
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
            let list = in_list(2, chunk.len());
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
                            in_list(3, chunk.len())
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
                    in_list(2, chunk.len())
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
}
