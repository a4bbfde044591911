//! The directory as sync sees it: the *desired* directory built from WeCom's answers, the
//! *current* one loaded from the store, and the diff between them (with field-level
//! changes), the mass-disable guard and the report types of a run. No I/O here.
//!
//! Users are matched by their WeCom userid, lower-cased ([`UserKey`]): WeCom compares
//! userids without case, and the store keeps the spelling separately.

use crate::domain::user::{DisabledReason, UserStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// A WeCom userid, lower-cased.
pub type UserKey = String;

pub fn user_key(userid: &str) -> UserKey {
    userid.to_ascii_lowercase()
}

/// WeCom member status values (`user/get` `status`).
pub mod wecom_status {
    pub const ACTIVE: i64 = 1;
    pub const DISABLED: i64 = 2;
    pub const UNACTIVATED: i64 = 4;
    pub const LEFT: i64 = 5;
}

// ---------------------------------------------------------------------------------------
// Records

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeptRecord {
    pub id: i64,
    pub parent_id: i64,
    pub name: String,
    pub name_en: String,
    /// WeCom `order`: larger sorts first.
    pub sort_order: i64,
    /// Comma-separated userids of the department's leaders.
    pub leaders: String,
    /// WeCom sent no name; `name` is a fallback. A stored name is kept instead.
    #[serde(default)]
    pub name_withheld: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub department_id: i64,
    pub sort_order: i64,
    pub is_leader: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The userid as WeCom spells it.
    pub userid: String,
    pub name: String,
    pub position: String,
    pub alias: String,
    pub telephone: String,
    /// `None` = withheld or unknown: never overwrites a stored value.
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub main_department: Option<i64>,
    pub wecom_status: i64,
    /// Comma-separated userids.
    pub direct_leader: String,
    /// JSON of WeCom's `extattr.attrs`, `""` when there are none.
    pub extattr: String,
    /// Sorted by department id.
    pub departments: Vec<Membership>,
    /// WeCom sent no name; `name` is a fallback (alias or userid). A stored name is kept.
    #[serde(default)]
    pub name_withheld: bool,
}

impl UserRecord {
    /// Sorts and de-duplicates the memberships so records compare by value.
    pub fn normalize(&mut self) {
        self.departments.sort();
        self.departments.dedup_by_key(|m| m.department_id);
    }

    fn department_ids(&self) -> Vec<i64> {
        self.departments.iter().map(|m| m.department_id).collect()
    }
}

/// A member's display name when WeCom withholds it: the alias, else the userid.
/// Returns the name and whether it is a fallback.
pub fn member_name(name: &str, alias: &str, userid: &str) -> (String, bool) {
    if !name.trim().is_empty() {
        (name.to_string(), false)
    } else if !alias.trim().is_empty() {
        (alias.to_string(), true)
    } else {
        (userid.to_string(), true)
    }
}

/// A department's name when WeCom withholds it: its id, as WeCom itself shows third parties.
pub fn department_name(name: &str, id: i64) -> (String, bool) {
    if name.trim().is_empty() {
        (id.to_string(), true)
    } else {
        (name.to_string(), false)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    pub id: i64,
    pub name: String,
    /// In-scope members (keys).
    pub users: BTreeSet<UserKey>,
    pub departments: BTreeSet<i64>,
}

/// What WeCom says the directory is, within the app's visible scope.
#[derive(Clone, Debug, Default)]
pub struct DesiredDirectory {
    pub departments: BTreeMap<i64, DeptRecord>,
    pub users: HashMap<UserKey, UserRecord>,
    pub tags: BTreeMap<i64, TagRecord>,
}

/// A user as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: i64,
    /// The WeCom identity's key; `None` for users that have none (a third-party import
    /// not re-linked yet).
    pub key: Option<UserKey>,
    /// `userid` is the identity's stored spelling (empty without one).
    pub record: UserRecord,
    pub status: UserStatus,
    pub disabled_reason: Option<DisabledReason>,
    /// Has a third-party (`wecom_open`) identity: part of an imported directory.
    pub imported: bool,
    /// The WeCom identity is to be created by this run (re-linked by the switch).
    pub link_identity: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentDept {
    pub record: DeptRecord,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentTag {
    pub record: TagRecord,
    pub active: bool,
}

#[derive(Clone, Debug, Default)]
pub struct CurrentDirectory {
    pub departments: HashMap<i64, CurrentDept>,
    pub users: Vec<CurrentUser>,
    pub tags: HashMap<i64, CurrentTag>,
}

impl CurrentDirectory {
    /// Users that may sign in or be authorized: everyone not disabled.
    pub fn active_users(&self) -> usize {
        self.users
            .iter()
            .filter(|u| u.status != UserStatus::Disabled)
            .count()
    }
}

// ---------------------------------------------------------------------------------------
// Policy

/// Per-tenant directory policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DirectoryPolicy {
    /// Status of users a sync creates: authorized or unauthorized.
    pub new_user_status: UserStatus,
    /// A sync disabling more than this share (‰) of the active users stops.
    pub max_disable_permille: i64,
    pub reconcile_interval_secs: i64,
}

impl Default for DirectoryPolicy {
    fn default() -> Self {
        DirectoryPolicy {
            new_user_status: UserStatus::Unauthorized,
            max_disable_permille: 200,
            reconcile_interval_secs: 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("new users can start authorized or unauthorized, not disabled")]
    NewUserStatus,
    #[error("the mass-disable limit must be between 0 and 1000 ‰")]
    Permille,
    #[error("the reconcile interval must be at least 60 seconds (or 0 to turn it off)")]
    Interval,
}

impl DirectoryPolicy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.new_user_status == UserStatus::Disabled {
            return Err(PolicyError::NewUserStatus);
        }
        if !(0..=1000).contains(&self.max_disable_permille) {
            return Err(PolicyError::Permille);
        }
        if self.reconcile_interval_secs != 0 && self.reconcile_interval_secs < 60 {
            return Err(PolicyError::Interval);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Diff

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

fn change(out: &mut Vec<FieldChange>, field: &str, old: impl fmt::Display, new: impl fmt::Display) {
    out.push(FieldChange {
        field: field.into(),
        old: old.to_string(),
        new: new.to_string(),
    });
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeptUpsert {
    pub record: DeptRecord,
    /// New, or active again after being out of scope.
    pub added: bool,
    pub changes: Vec<FieldChange>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeptRemoval {
    pub id: i64,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub key: UserKey,
    pub record: UserRecord,
    pub status: UserStatus,
    pub disabled_reason: Option<DisabledReason>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserUpdate {
    pub user_id: i64,
    pub key: UserKey,
    /// The record to store (withheld fields already filled from the stored one).
    pub record: UserRecord,
    pub changes: Vec<FieldChange>,
    /// Set when the status or reason changes.
    pub status: Option<(UserStatus, Option<DisabledReason>)>,
    pub previous_status: UserStatus,
    /// Old department ids, when the memberships changed (a move or a new leader flag).
    pub moved_from: Option<Vec<i64>>,
    pub departments_changed: bool,
    /// The WeCom identity is created by this run (third-party switch).
    pub link_identity: bool,
    /// The userid's spelling changed (same key).
    pub display_changed: bool,
}

impl UserUpdate {
    /// Disables a user who was not disabled before.
    pub fn disables(&self) -> bool {
        matches!(self.status, Some((UserStatus::Disabled, _)))
            && self.previous_status != UserStatus::Disabled
    }

    /// Whether any column of the `users` row changes.
    pub fn row_changed(&self) -> bool {
        self.status.is_some()
            || self
                .changes
                .iter()
                .any(|c| c.field != "departments" && c.field != "userid")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDisable {
    pub user_id: i64,
    pub userid: String,
    pub name: String,
    pub reason: DisabledReason,
    /// Was authorized or unauthorized (counts for the guard).
    pub was_active: bool,
    /// Gone from the directory: drop department and tag memberships too.
    pub clear_memberships: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagUpsert {
    pub record: TagRecord,
    pub added: bool,
    pub changes: Vec<FieldChange>,
    pub members_changed: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryDiff {
    pub departments_upsert: Vec<DeptUpsert>,
    pub departments_removed: Vec<DeptRemoval>,
    pub users_added: Vec<NewUser>,
    pub users_updated: Vec<UserUpdate>,
    pub users_disabled: Vec<UserDisable>,
    pub tags_upsert: Vec<TagUpsert>,
    pub tags_removed: Vec<(i64, String)>,
    /// (disabled userid, added userid, name): same name, one gone and one new. A full
    /// sync cannot see a userid change (only the callback carries it), so these are
    /// reported for an admin to check, never merged.
    pub possible_renames: Vec<(String, String, String)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffCounts {
    pub departments_added: usize,
    pub departments_updated: usize,
    pub departments_removed: usize,
    pub users_added: usize,
    pub users_updated: usize,
    pub users_moved: usize,
    pub users_disabled: usize,
    pub users_reenabled: usize,
    pub tags_added: usize,
    pub tags_updated: usize,
    pub tags_removed: usize,
    pub identities_linked: usize,
}

impl DirectoryDiff {
    pub fn is_empty(&self) -> bool {
        self.departments_upsert.is_empty()
            && self.departments_removed.is_empty()
            && self.users_added.is_empty()
            && self.users_updated.is_empty()
            && self.users_disabled.is_empty()
            && self.tags_upsert.is_empty()
            && self.tags_removed.is_empty()
    }

    /// Active users this diff disables (what the mass-disable guard counts).
    pub fn active_disabled(&self) -> usize {
        self.users_disabled.iter().filter(|d| d.was_active).count()
            + self.users_updated.iter().filter(|u| u.disables()).count()
    }

    pub fn counts(&self) -> DiffCounts {
        DiffCounts {
            departments_added: self.departments_upsert.iter().filter(|d| d.added).count(),
            departments_updated: self.departments_upsert.iter().filter(|d| !d.added).count(),
            departments_removed: self.departments_removed.len(),
            users_added: self.users_added.len(),
            users_updated: self.users_updated.len(),
            users_moved: self
                .users_updated
                .iter()
                .filter(|u| u.moved_from.is_some())
                .count(),
            users_disabled: self.users_disabled.len()
                + self.users_updated.iter().filter(|u| u.disables()).count(),
            users_reenabled: self
                .users_updated
                .iter()
                .filter(|u| matches!(u.status, Some((s, _)) if s != UserStatus::Disabled))
                .count(),
            tags_added: self.tags_upsert.iter().filter(|t| t.added).count(),
            tags_updated: self.tags_upsert.iter().filter(|t| !t.added).count(),
            tags_removed: self.tags_removed.len(),
            identities_linked: self
                .users_updated
                .iter()
                .filter(|u| u.link_identity)
                .count(),
        }
    }
}

/// How a diff treats what WeCom did not return.
#[derive(Clone, Copy, Debug)]
pub struct DiffOptions {
    pub new_user_status: UserStatus,
}

/// Diff of a *complete* view of the scope (a full sync): everything missing from
/// `desired` left the scope. Departments and tags missing are deactivated, users
/// disabled (never deleted).
/// Takes `desired` by value: new users' records move into the diff rather than being
/// copied (an initial sync of 100k members would hold them twice).
pub fn diff_full(
    desired: DesiredDirectory,
    current: &CurrentDirectory,
    opts: DiffOptions,
) -> DirectoryDiff {
    let mut diff = DirectoryDiff::default();

    // Departments.
    for d in desired.departments.values() {
        match current.departments.get(&d.id) {
            None => diff.departments_upsert.push(DeptUpsert {
                record: d.clone(),
                added: true,
                changes: Vec::new(),
            }),
            Some(cur) => {
                if let Some(u) = diff_department(&cur.record, cur.active, d) {
                    diff.departments_upsert.push(u);
                }
            }
        }
    }
    let mut removed: Vec<_> = current
        .departments
        .values()
        .filter(|c| c.active && !desired.departments.contains_key(&c.record.id))
        .map(|c| DeptRemoval {
            id: c.record.id,
            name: c.record.name.clone(),
        })
        .collect();
    removed.sort_by_key(|r| r.id);
    diff.departments_removed = removed;

    // Users.
    let mut seen: HashSet<&str> = HashSet::with_capacity(current.users.len());
    for cur in &current.users {
        let Some(key) = cur.key.as_deref() else {
            // Imported through a third-party app and not re-linked: not part of the
            // self-built directory.
            if cur.imported {
                if let Some(d) = disable(cur, DisabledReason::LeftScope) {
                    diff.users_disabled.push(d);
                }
            }
            continue;
        };
        match desired.users.get(key) {
            Some(want) => {
                seen.insert(key);
                if let Some(u) = diff_user(cur, want, opts) {
                    diff.users_updated.push(u);
                }
            }
            None => {
                if let Some(d) = disable(cur, DisabledReason::LeftScope) {
                    diff.users_disabled.push(d);
                }
            }
        }
    }
    let mut added: Vec<_> = desired
        .users
        .into_iter()
        .filter(|(k, _)| !seen.contains(k.as_str()))
        .map(|(k, r)| new_user(k, r, opts))
        .collect();
    added.sort_by(|a, b| a.key.cmp(&b.key));
    diff.users_added = added;
    diff.users_updated.sort_by_key(|u| u.user_id);
    diff.users_disabled.sort_by_key(|u| u.user_id);

    // Same name gone and new: maybe a userid change that no callback told us about.
    let mut by_name: HashMap<&str, &str> = HashMap::new();
    for d in &diff.users_disabled {
        by_name.insert(d.name.as_str(), d.userid.as_str());
    }
    for a in &diff.users_added {
        if let Some(old) = by_name.get(a.record.name.as_str()) {
            diff.possible_renames.push((
                old.to_string(),
                a.record.userid.clone(),
                a.record.name.clone(),
            ));
        }
    }

    // Tags.
    for t in desired.tags.values() {
        match current.tags.get(&t.id) {
            None => diff.tags_upsert.push(TagUpsert {
                record: t.clone(),
                added: true,
                changes: Vec::new(),
                members_changed: true,
            }),
            Some(cur) => {
                if let Some(u) = diff_tag(&cur.record, cur.active, t) {
                    diff.tags_upsert.push(u);
                }
            }
        }
    }
    let mut tags_removed: Vec<_> = current
        .tags
        .values()
        .filter(|c| c.active && !desired.tags.contains_key(&c.record.id))
        .map(|c| (c.record.id, c.record.name.clone()))
        .collect();
    tags_removed.sort();
    diff.tags_removed = tags_removed;
    diff
}

/// A user WeCom reports that the store does not have yet.
pub fn new_user(key: UserKey, record: UserRecord, opts: DiffOptions) -> NewUser {
    let (status, disabled_reason) = match wecom_disabled_reason(record.wecom_status) {
        Some(reason) => (UserStatus::Disabled, Some(reason)),
        None => (opts.new_user_status, None),
    };
    NewUser {
        key,
        record,
        status,
        disabled_reason,
    }
}

/// Disabled in WeCom (2) or left the company (5): the account cannot be used.
fn wecom_disabled_reason(wecom_status: i64) -> Option<DisabledReason> {
    match wecom_status {
        wecom_status::DISABLED => Some(DisabledReason::WecomDisabled),
        wecom_status::LEFT => Some(DisabledReason::LeftWecom),
        _ => None,
    }
}

/// Disabling a user that left (the scope, or WeCom). `None` if nothing changes: already
/// disabled stays as it is (an admin's decision, or an earlier reason, is kept).
pub fn disable(cur: &CurrentUser, reason: DisabledReason) -> Option<UserDisable> {
    if cur.status == UserStatus::Disabled {
        return None;
    }
    Some(UserDisable {
        user_id: cur.id,
        userid: cur.record.userid.clone(),
        name: cur.record.name.clone(),
        reason,
        was_active: true,
        clear_memberships: matches!(
            reason,
            DisabledReason::LeftScope | DisabledReason::LeftWecom
        ),
    })
}

/// The stored record with WeCom's answer over it; withheld values keep the stored ones.
fn merged(cur: &UserRecord, want: &UserRecord) -> UserRecord {
    let mut r = want.clone();
    if r.mobile.is_none() {
        r.mobile = cur.mobile.clone();
    }
    if r.email.is_none() {
        r.email = cur.email.clone();
    }
    if r.name_withheld && !cur.name.is_empty() {
        r.name = cur.name.clone();
    }
    r
}

fn opt(s: &Option<impl fmt::Display>) -> String {
    s.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

fn memberships(ms: &[Membership]) -> String {
    ms.iter()
        .map(|m| {
            let mut s = m.department_id.to_string();
            if m.is_leader {
                s.push('*');
            }
            s
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The field changes between a stored user and WeCom's current answer, and the status
/// change they imply. `None` when nothing changes.
pub fn diff_user(cur: &CurrentUser, want: &UserRecord, opts: DiffOptions) -> Option<UserUpdate> {
    let c = &cur.record;
    let r = merged(c, want);
    let mut ch = Vec::new();
    if c.name != r.name {
        change(&mut ch, "name", &c.name, &r.name);
    }
    if c.position != r.position {
        change(&mut ch, "position", &c.position, &r.position);
    }
    if c.alias != r.alias {
        change(&mut ch, "alias", &c.alias, &r.alias);
    }
    if c.telephone != r.telephone {
        change(&mut ch, "telephone", &c.telephone, &r.telephone);
    }
    if c.mobile != r.mobile {
        change(&mut ch, "mobile", opt(&c.mobile), opt(&r.mobile));
    }
    if c.email != r.email {
        change(&mut ch, "email", opt(&c.email), opt(&r.email));
    }
    if c.main_department != r.main_department {
        change(
            &mut ch,
            "main_department",
            opt(&c.main_department),
            opt(&r.main_department),
        );
    }
    if c.wecom_status != r.wecom_status {
        change(&mut ch, "wecom_status", c.wecom_status, r.wecom_status);
    }
    if c.direct_leader != r.direct_leader {
        change(&mut ch, "direct_leader", &c.direct_leader, &r.direct_leader);
    }
    if c.extattr != r.extattr {
        change(&mut ch, "extattr", &c.extattr, &r.extattr);
    }
    let departments_changed = c.departments != r.departments;
    let moved_from = (c.department_ids() != r.department_ids()).then(|| c.department_ids());
    if departments_changed {
        change(
            &mut ch,
            "departments",
            memberships(&c.departments),
            memberships(&r.departments),
        );
    }
    let display_changed = !cur.link_identity && c.userid != r.userid;
    if display_changed {
        change(&mut ch, "userid", &c.userid, &r.userid);
    }

    // Status: WeCom's own disable wins; someone back in scope is enabled again unless
    // an admin disabled them.
    let status = match (wecom_disabled_reason(r.wecom_status), cur.status) {
        (Some(reason), UserStatus::Disabled) => (cur.disabled_reason != Some(reason)
            && cur.disabled_reason != Some(DisabledReason::Admin))
        .then_some((UserStatus::Disabled, Some(reason))),
        (Some(reason), _) => Some((UserStatus::Disabled, Some(reason))),
        (None, UserStatus::Disabled) => match cur.disabled_reason {
            Some(DisabledReason::Admin) => None,
            _ => Some((opts.new_user_status, None)),
        },
        (None, _) => None,
    };
    if let Some((s, reason)) = status {
        let show = |s: UserStatus, r: Option<DisabledReason>| match r {
            Some(r) => format!("{} ({})", s.as_str(), r.as_str()),
            None => s.as_str().to_string(),
        };
        change(
            &mut ch,
            "status",
            show(cur.status, cur.disabled_reason),
            show(s, reason),
        );
    }
    if ch.is_empty() && !cur.link_identity {
        return None;
    }
    Some(UserUpdate {
        user_id: cur.id,
        key: user_key(&r.userid),
        record: r,
        changes: ch,
        status,
        previous_status: cur.status,
        moved_from,
        departments_changed,
        link_identity: cur.link_identity,
        display_changed,
    })
}

/// Field changes of a department; `None` when it is unchanged and active.
pub fn diff_department(cur: &DeptRecord, active: bool, want: &DeptRecord) -> Option<DeptUpsert> {
    let mut r = want.clone();
    if r.name_withheld && !cur.name.is_empty() {
        r.name = cur.name.clone();
    }
    let mut ch = Vec::new();
    if cur.name != r.name {
        change(&mut ch, "name", &cur.name, &r.name);
    }
    if cur.name_en != r.name_en {
        change(&mut ch, "name_en", &cur.name_en, &r.name_en);
    }
    if cur.parent_id != r.parent_id {
        change(&mut ch, "parent_id", cur.parent_id, r.parent_id);
    }
    if cur.sort_order != r.sort_order {
        change(&mut ch, "order", cur.sort_order, r.sort_order);
    }
    if cur.leaders != r.leaders {
        change(&mut ch, "leaders", &cur.leaders, &r.leaders);
    }
    if ch.is_empty() && active {
        return None;
    }
    Some(DeptUpsert {
        record: r,
        added: !active,
        changes: ch,
    })
}

/// Changes of a tag; `None` when it is unchanged and active.
pub fn diff_tag(cur: &TagRecord, active: bool, want: &TagRecord) -> Option<TagUpsert> {
    let mut ch = Vec::new();
    if cur.name != want.name {
        change(&mut ch, "name", &cur.name, &want.name);
    }
    let members_changed = cur.users != want.users || cur.departments != want.departments;
    if cur.users != want.users {
        let added: Vec<_> = want.users.difference(&cur.users).cloned().collect();
        let removed: Vec<_> = cur.users.difference(&want.users).cloned().collect();
        change(
            &mut ch,
            "users",
            format!("-{}", removed.join(",")),
            format!("+{}", added.join(",")),
        );
    }
    if cur.departments != want.departments {
        let ids = |s: &BTreeSet<i64>| s.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        change(
            &mut ch,
            "departments",
            ids(&cur.departments),
            ids(&want.departments),
        );
    }
    if ch.is_empty() && active {
        return None;
    }
    Some(TagUpsert {
        record: want.clone(),
        added: !active,
        changes: ch,
        members_changed: members_changed || !active,
    })
}

// ---------------------------------------------------------------------------------------
// Guard

/// The mass-disable guard's verdict for one diff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardVerdict {
    pub active_users: usize,
    pub would_disable: usize,
    pub max_permille: i64,
    pub blocked: bool,
}

/// Blocks a diff that disables more than `max_permille` ‰ of the active users.
pub fn mass_disable_guard(
    active_users: usize,
    would_disable: usize,
    max_permille: i64,
) -> GuardVerdict {
    let limit = (max_permille.max(0) as u128) * (active_users as u128);
    GuardVerdict {
        active_users,
        would_disable,
        max_permille,
        blocked: would_disable > 0 && (would_disable as u128) * 1000 > limit,
    }
}

impl GuardVerdict {
    pub fn message_en(&self) -> String {
        format!(
            "This sync would disable {} of {} active users, more than the {}.{}% limit. Nothing was changed. Check the app's visible scope in WeCom; if the change is intended, confirm it (console button or --force).",
            self.would_disable,
            self.active_users,
            self.max_permille / 10,
            self.max_permille % 10
        )
    }
    pub fn message_zh(&self) -> String {
        format!(
            "本次同步将停用 {} 个有效用户（共 {} 个），超过 {}.{}% 的上限，已停止，未做任何修改。请检查企业微信中应用的可见范围；如确属预期，请确认后继续（管理后台按钮或 --force）。",
            self.would_disable,
            self.active_users,
            self.max_permille / 10,
            self.max_permille % 10
        )
    }
}

// ---------------------------------------------------------------------------------------
// Runs and their report

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Wizard,
    Console,
    Schedule,
    Callback,
    Cli,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Full,
    DryRun,
    Incremental,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Stopped by the mass-disable guard; nothing was applied.
    Blocked,
    /// The process stopped while it ran; nothing was applied.
    Interrupted,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(<$t>::$v),)*
                    _ => Err(format!(concat!("unknown ", stringify!($t), " {:?}"), s)),
                }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(Trigger { Wizard = "wizard", Console = "console", Schedule = "schedule", Callback = "callback", Cli = "cli" });
str_enum!(RunKind { Full = "full", DryRun = "dry_run", Incremental = "incremental" });
str_enum!(RunStatus { Running = "running", Succeeded = "succeeded", Failed = "failed", Blocked = "blocked", Interrupted = "interrupted" });

/// What a run found `running` by the next start left behind. A full sync records its end
/// in the transaction of its directory changes, so one still running applied nothing.
/// Only versions before that fix (issue 19) could leave one running after its apply had
/// committed: their apply transaction is the only writer of the phase `applying`, so that
/// phase on a running full sync means its changes are in.
pub fn interrupted_message(kind: RunKind, phase: &str, done: i64, total: i64) -> String {
    let stopped = "the process stopped while this run was in progress";
    match kind {
        RunKind::DryRun => format!("{stopped}; a dry run applies nothing"),
        RunKind::Full if phase == "applying" => format!(
            "{stopped}, right after its changes were applied and before they were recorded (a version before the fix of issue 19): the directory has its changes, their counts are not known"
        ),
        RunKind::Full => format!("{stopped}, before it applied anything: nothing was applied"),
        RunKind::Incremental if total > 0 => format!(
            "{stopped}: {done} of {total} callbacks were handled (counted above) and what they changed is kept; the others stay pending for the next run"
        ),
        RunKind::Incremental if phase == "applying" => format!(
            "{stopped}: the changes of the callbacks it handled were applied and are kept; the callbacks not yet handled stay pending for the next run"
        ),
        RunKind::Incremental => format!(
            "{stopped}, before it applied anything: nothing was applied; its callbacks stay pending for the next run"
        ),
    }
}

/// The lower bound of WeCom calls for a full sync of this scope (wecom-api.md §6):
/// `1 gettoken + 1 agent/get + [D>0] department/list + D user/list + 1 tag/list + T tag/get + U user/get`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallBound {
    pub departments: u64,
    pub tags: u64,
    /// In-scope members in no visible department.
    pub loose_users: u64,
    /// Counting gettoken (a cold token cache).
    pub with_token: bool,
}

impl CallBound {
    pub fn c_min(&self) -> u64 {
        u64::from(self.with_token)
            + 1
            + u64::from(self.departments > 0)
            + self.departments
            + 1
            + self.tags
            + self.loose_users
    }
}

/// A sample entry of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSample {
    pub userid: String,
    pub name: String,
    /// Status after the run, or the reason for a disable.
    pub note: String,
    pub changes: Vec<FieldChange>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeptSample {
    pub id: i64,
    pub name: String,
    /// added | updated | removed
    pub change: String,
    pub changes: Vec<FieldChange>,
}

/// What a diff does, as shown to an admin: full counts, samples capped at `cap` each.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSummary {
    pub counts: DiffCounts,
    pub added: Vec<UserSample>,
    pub updated: Vec<UserSample>,
    pub moved: Vec<UserSample>,
    pub disabled: Vec<UserSample>,
    pub departments: Vec<DeptSample>,
    pub tags: Vec<DeptSample>,
    pub possible_renames: Vec<(String, String, String)>,
    /// Some lists were cut at the cap.
    pub truncated: bool,
}

impl DirectoryDiff {
    pub fn summary(&self, cap: usize) -> DiffSummary {
        let mut truncated = false;
        let mut take = |n: usize| {
            if n > cap {
                truncated = true;
            }
            n.min(cap)
        };
        let added = self.users_added[..take(self.users_added.len())]
            .iter()
            .map(|u| UserSample {
                userid: u.record.userid.clone(),
                name: u.record.name.clone(),
                note: match u.disabled_reason {
                    Some(r) => format!("disabled ({})", r.as_str()),
                    None => u.status.as_str().into(),
                },
                changes: Vec::new(),
            })
            .collect();
        let sample = |u: &UserUpdate| UserSample {
            userid: u.record.userid.clone(),
            name: u.record.name.clone(),
            note: String::new(),
            changes: u.changes.clone(),
        };
        let updated = self.users_updated[..take(self.users_updated.len())]
            .iter()
            .map(sample)
            .collect();
        let moved_all: Vec<_> = self
            .users_updated
            .iter()
            .filter(|u| u.moved_from.is_some())
            .collect();
        let moved = moved_all[..take(moved_all.len())]
            .iter()
            .map(|u| sample(u))
            .collect();
        let disabled = self.users_disabled[..take(self.users_disabled.len())]
            .iter()
            .map(|d| UserSample {
                userid: d.userid.clone(),
                name: d.name.clone(),
                note: d.reason.as_str().into(),
                changes: Vec::new(),
            })
            .collect();
        let mut departments: Vec<DeptSample> = self
            .departments_upsert
            .iter()
            .map(|d| DeptSample {
                id: d.record.id,
                name: d.record.name.clone(),
                change: if d.added { "added" } else { "updated" }.into(),
                changes: d.changes.clone(),
            })
            .chain(self.departments_removed.iter().map(|d| DeptSample {
                id: d.id,
                name: d.name.clone(),
                change: "removed".into(),
                changes: Vec::new(),
            }))
            .collect();
        departments.truncate(take(departments.len()));
        let mut tags: Vec<DeptSample> = self
            .tags_upsert
            .iter()
            .map(|t| DeptSample {
                id: t.record.id,
                name: t.record.name.clone(),
                change: if t.added { "added" } else { "updated" }.into(),
                changes: t.changes.clone(),
            })
            .chain(self.tags_removed.iter().map(|(id, name)| DeptSample {
                id: *id,
                name: name.clone(),
                change: "removed".into(),
                changes: Vec::new(),
            }))
            .collect();
        tags.truncate(take(tags.len()));
        DiffSummary {
            counts: self.counts(),
            added,
            updated,
            moved,
            disabled,
            departments,
            tags,
            possible_renames: self.possible_renames.iter().take(cap).cloned().collect(),
            truncated,
        }
    }
}

/// A field WeCom withheld from some or all members, and what the bridge did instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithheldField {
    pub field: String,
    /// How many of `total` records lacked it.
    pub count: u64,
    pub total: u64,
    pub note_en: String,
    pub note_zh: String,
}

/// Per-endpoint API calls of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCalls {
    pub calls: u64,
    pub retries: u64,
    pub errors: u64,
    /// Waits for WeCom's rate limit (pacing, or after a 45009) and their total length.
    #[serde(default)]
    pub rate_waits: u64,
    #[serde(default)]
    pub rate_wait_ms: u64,
}

/// Who the switch from a third-party app could not re-link, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlinked {
    pub user_id: i64,
    pub open_userid: String,
    pub name: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelinkReport {
    pub imported: usize,
    pub relinked: usize,
    pub unlinked: Vec<Unlinked>,
    pub conversion_calls: usize,
}

/// Everything recorded about a run, as JSON in the run record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub diff: DiffSummary,
    pub withheld: Vec<WithheldField>,
    pub api_calls: BTreeMap<String, EndpointCalls>,
    pub bound: Option<CallBound>,
    pub guard: Option<GuardVerdict>,
    pub relink: Option<RelinkReport>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    pub fetch_ms: u64,
    pub diff_ms: u64,
    pub apply_ms: u64,
    pub members: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_runs_say_what_they_left() {
        let m = |k, phase, done, total| interrupted_message(k, phase, done, total);
        assert!(m(RunKind::Full, "fetch", 0, 0).ends_with("nothing was applied"));
        assert!(m(RunKind::DryRun, "diff", 0, 0).contains("applies nothing"));
        // Only a version before the fix left a full sync running after its apply.
        let legacy = m(RunKind::Full, "applying", 0, 0);
        assert!(legacy.contains("the directory has its changes"), "{legacy}");
        assert!(!legacy.contains("nothing was applied"));
        let inc = m(RunKind::Incremental, "callbacks", 3, 10);
        assert!(inc.contains("3 of 10 callbacks were handled"), "{inc}");
        assert!(m(RunKind::Incremental, "", 0, 4).contains("stay pending"));
    }

    fn rec(userid: &str, name: &str, depts: &[i64]) -> UserRecord {
        let mut r = UserRecord {
            userid: userid.into(),
            name: name.into(),
            wecom_status: 1,
            departments: depts
                .iter()
                .map(|&d| Membership {
                    department_id: d,
                    sort_order: 0,
                    is_leader: false,
                })
                .collect(),
            ..Default::default()
        };
        r.normalize();
        r
    }

    fn cur(id: i64, r: UserRecord, status: UserStatus) -> CurrentUser {
        CurrentUser {
            id,
            key: Some(user_key(&r.userid)),
            record: r,
            status,
            disabled_reason: (status == UserStatus::Disabled).then_some(DisabledReason::LeftScope),
            imported: false,
            link_identity: false,
        }
    }

    fn dept(id: i64, parent: i64, name: &str) -> DeptRecord {
        DeptRecord {
            id,
            parent_id: parent,
            name: name.into(),
            name_en: String::new(),
            sort_order: 0,
            leaders: String::new(),
            name_withheld: false,
        }
    }

    const OPTS: DiffOptions = DiffOptions {
        new_user_status: UserStatus::Unauthorized,
    };

    fn desired(users: Vec<UserRecord>) -> DesiredDirectory {
        DesiredDirectory {
            users: users
                .into_iter()
                .map(|u| (user_key(&u.userid), u))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn identical_directories_give_an_empty_diff() {
        let a = rec("ZhangSan", "张三", &[2, 3]);
        let mut current = CurrentDirectory::default();
        current
            .users
            .push(cur(7, a.clone(), UserStatus::Authorized));
        current.departments.insert(
            2,
            CurrentDept {
                record: dept(2, 1, "研发"),
                active: true,
            },
        );
        let mut want = desired(vec![a]);
        want.departments.insert(2, dept(2, 1, "研发"));
        let d = diff_full(want.clone(), &current, OPTS);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn added_updated_moved_and_disabled() {
        let mut current = CurrentDirectory::default();
        current
            .users
            .push(cur(1, rec("a", "A", &[2]), UserStatus::Authorized));
        current
            .users
            .push(cur(2, rec("b", "B", &[2]), UserStatus::Unauthorized));
        current
            .users
            .push(cur(3, rec("c", "C", &[3]), UserStatus::Authorized));
        let mut b2 = rec("b", "B", &[3]);
        b2.position = "经理".into();
        let want = desired(vec![rec("a", "A2", &[2]), b2, rec("d", "D", &[2])]);
        let d = diff_full(want.clone(), &current, OPTS);
        let c = d.counts();
        assert_eq!(
            (
                c.users_added,
                c.users_updated,
                c.users_moved,
                c.users_disabled
            ),
            (1, 2, 1, 1)
        );
        assert_eq!(d.users_added[0].status, UserStatus::Unauthorized);
        let a = &d.users_updated[0];
        assert_eq!(a.user_id, 1);
        assert_eq!(
            a.changes,
            vec![FieldChange {
                field: "name".into(),
                old: "A".into(),
                new: "A2".into()
            }]
        );
        let b = &d.users_updated[1];
        assert_eq!(b.moved_from, Some(vec![2]));
        assert!(b
            .changes
            .iter()
            .any(|c| c.field == "position" && c.new == "经理"));
        assert_eq!(d.users_disabled[0].user_id, 3);
        assert_eq!(d.users_disabled[0].reason, DisabledReason::LeftScope);
        assert!(d.users_disabled[0].clear_memberships);
        assert_eq!(d.active_disabled(), 1);
    }

    #[test]
    fn withheld_fields_never_erase_stored_ones() {
        let mut stored = rec("a", "张三", &[2]);
        stored.mobile = Some("13800000000".into());
        stored.email = Some("a@example.com".into());
        let mut current = CurrentDirectory::default();
        current.users.push(cur(1, stored, UserStatus::Authorized));
        let mut want = rec("a", "a", &[2]);
        want.name_withheld = true;
        let d = diff_full(desired(vec![want]), &current, OPTS);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn name_fallbacks() {
        assert_eq!(
            member_name("张三", "zs", "zhangsan"),
            ("张三".into(), false)
        );
        assert_eq!(member_name("", "zs", "zhangsan"), ("zs".into(), true));
        assert_eq!(member_name(" ", "", "zhangsan"), ("zhangsan".into(), true));
        assert_eq!(department_name("", 7), ("7".into(), true));
        assert_eq!(department_name("研发", 7), ("研发".into(), false));
    }

    #[test]
    fn wecom_status_drives_account_status() {
        let mut current = CurrentDirectory::default();
        current
            .users
            .push(cur(1, rec("a", "A", &[2]), UserStatus::Authorized));
        current
            .users
            .push(cur(2, rec("b", "B", &[2]), UserStatus::Disabled));
        let mut admin_disabled = cur(3, rec("c", "C", &[2]), UserStatus::Disabled);
        admin_disabled.disabled_reason = Some(DisabledReason::Admin);
        current.users.push(admin_disabled);
        let mut a = rec("a", "A", &[2]);
        a.wecom_status = wecom_status::DISABLED;
        let mut n = rec("n", "N", &[2]);
        n.wecom_status = wecom_status::DISABLED;
        let want = desired(vec![a, rec("b", "B", &[2]), rec("c", "C", &[2]), n]);
        let d = diff_full(want.clone(), &current, OPTS);
        let a = d.users_updated.iter().find(|u| u.user_id == 1).unwrap();
        assert_eq!(
            a.status,
            Some((UserStatus::Disabled, Some(DisabledReason::WecomDisabled)))
        );
        // Back in scope: enabled again with the policy's status.
        let b = d.users_updated.iter().find(|u| u.user_id == 2).unwrap();
        assert_eq!(b.status, Some((UserStatus::Unauthorized, None)));
        // An admin's disable is never undone by a sync.
        assert!(d.users_updated.iter().all(|u| u.user_id != 3));
        assert_eq!(d.users_added[0].status, UserStatus::Disabled);
        let c = d.counts();
        assert_eq!((c.users_reenabled, c.users_disabled), (1, 1));
        assert_eq!(d.active_disabled(), 1);
    }

    #[test]
    fn already_disabled_users_are_not_disabled_again() {
        let mut current = CurrentDirectory::default();
        current
            .users
            .push(cur(1, rec("a", "A", &[2]), UserStatus::Disabled));
        let d = diff_full(desired(vec![]), &current, OPTS);
        assert!(d.is_empty());
    }

    #[test]
    fn departments_and_tags() {
        let mut current = CurrentDirectory::default();
        current.departments.insert(
            2,
            CurrentDept {
                record: dept(2, 1, "研发"),
                active: true,
            },
        );
        current.departments.insert(
            3,
            CurrentDept {
                record: dept(3, 2, "后端"),
                active: true,
            },
        );
        current.departments.insert(
            4,
            CurrentDept {
                record: dept(4, 1, "旧"),
                active: false,
            },
        );
        current.tags.insert(
            1,
            CurrentTag {
                record: TagRecord {
                    id: 1,
                    name: "项目A".into(),
                    users: ["a".to_string()].into(),
                    departments: [5].into(),
                },
                active: true,
            },
        );
        let mut want = DesiredDirectory::default();
        want.departments.insert(2, dept(2, 1, "研发中心"));
        want.departments.insert(4, dept(4, 1, "旧"));
        let mut withheld = dept(9, 1, "9");
        withheld.name_withheld = true;
        want.departments.insert(9, withheld);
        want.tags.insert(
            1,
            TagRecord {
                id: 1,
                name: "项目A".into(),
                users: ["a".to_string(), "b".to_string()].into(),
                departments: [5].into(),
            },
        );
        let d = diff_full(want.clone(), &current, OPTS);
        let c = d.counts();
        assert_eq!(
            (
                c.departments_added,
                c.departments_updated,
                c.departments_removed
            ),
            (2, 1, 1)
        );
        assert_eq!(d.departments_removed[0].id, 3);
        assert_eq!(c.tags_updated, 1);
        assert!(d.tags_upsert[0].members_changed);
        assert_eq!(d.tags_upsert[0].changes[0].new, "+b");
    }

    #[test]
    fn imported_users_without_identity_are_replaced() {
        let mut current = CurrentDirectory::default();
        let mut imported = cur(1, rec("", "woAbc", &[]), UserStatus::Authorized);
        imported.key = None;
        imported.imported = true;
        current.users.push(imported);
        let mut relinked = cur(2, rec("", "woDef", &[]), UserStatus::Authorized);
        relinked.key = Some("lisi".into());
        relinked.imported = true;
        relinked.link_identity = true;
        current.users.push(relinked);
        let d = diff_full(desired(vec![rec("LiSi", "李四", &[3])]), &current, OPTS);
        assert_eq!(d.users_disabled.len(), 1);
        assert_eq!(d.users_disabled[0].user_id, 1);
        let u = &d.users_updated[0];
        assert_eq!((u.user_id, u.link_identity), (2, true));
        assert_eq!(u.record.name, "李四");
        assert!(d.users_added.is_empty());
        assert_eq!(d.counts().identities_linked, 1);
    }

    #[test]
    fn possible_renames_are_reported_not_merged() {
        let mut current = CurrentDirectory::default();
        current
            .users
            .push(cur(1, rec("lisi", "李四", &[2]), UserStatus::Authorized));
        let d = diff_full(desired(vec![rec("li.si", "李四", &[2])]), &current, OPTS);
        assert_eq!(d.users_added.len(), 1);
        assert_eq!(d.users_disabled.len(), 1);
        assert_eq!(
            d.possible_renames,
            vec![("lisi".into(), "li.si".into(), "李四".into())]
        );
    }

    #[test]
    fn guard_limits() {
        assert!(!mass_disable_guard(10, 2, 200).blocked);
        assert!(mass_disable_guard(10, 3, 200).blocked);
        assert!(!mass_disable_guard(0, 0, 200).blocked);
        assert!(mass_disable_guard(0, 1, 200).blocked);
        assert!(mass_disable_guard(100_000, 20_001, 200).blocked);
        assert!(!mass_disable_guard(100_000, 20_000, 200).blocked);
        assert!(mass_disable_guard(5, 1, 0).blocked);
        assert!(!mass_disable_guard(5, 5, 1000).blocked);
        let v = mass_disable_guard(10, 3, 200);
        assert!(v.message_en().contains("3 of 10"), "{}", v.message_en());
        assert!(v.message_en().contains("20.0%"));
    }

    #[test]
    fn call_bound_matches_the_worked_example() {
        let b = CallBound {
            departments: 5000,
            tags: 200,
            loose_users: 0,
            with_token: true,
        };
        assert_eq!(b.c_min(), 5204);
        let warm = CallBound {
            with_token: false,
            ..b
        };
        assert_eq!(warm.c_min(), 5203);
        let none = CallBound {
            departments: 0,
            tags: 2,
            loose_users: 1,
            with_token: true,
        };
        // gettoken, agent/get, no department/list, tag/list, 2 tag/get, 1 user/get
        assert_eq!(none.c_min(), 6);
    }

    #[test]
    fn summary_caps_samples() {
        let current = CurrentDirectory::default();
        let users: Vec<_> = (0..10).map(|i| rec(&format!("u{i}"), "x", &[1])).collect();
        let d = diff_full(desired(users), &current, OPTS);
        let s = d.summary(3);
        assert_eq!(s.counts.users_added, 10);
        assert_eq!(s.added.len(), 3);
        assert!(s.truncated);
    }

    #[test]
    fn policy_validation_and_enums() {
        assert!(DirectoryPolicy::default().validate().is_ok());
        let bad = DirectoryPolicy {
            max_disable_permille: 1001,
            ..Default::default()
        };
        assert_eq!(bad.validate(), Err(PolicyError::Permille));
        for t in [
            Trigger::Wizard,
            Trigger::Console,
            Trigger::Schedule,
            Trigger::Callback,
            Trigger::Cli,
        ] {
            assert_eq!(t.as_str().parse::<Trigger>().unwrap(), t);
        }
        assert!("x".parse::<RunStatus>().is_err());
    }
}
