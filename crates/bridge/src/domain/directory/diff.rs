//! The diff between the desired and the current directory, field by field, and the
//! mass-disable guard.

use super::*;
use crate::domain::user::{DisabledReason, UserStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

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
    /// Boxed, as in [`DesiredDirectory`], so that it moves from there as a pointer.
    pub record: Box<UserRecord>,
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
    /// The member keys to link and to unlink, when the tag's stored members are known
    /// (an active tag): a 1% change writes 1% of the links. `None`: write all of
    /// `record.users` (a new or reactivated tag has no links stored).
    pub users_delta: Option<(Vec<String>, Vec<String>)>,
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
    /// Members WeCom answered as the store held them when the fetch began, whose stored
    /// record changed before the diff (a sign-in filled a withheld field): left as they
    /// are; the next sync compares them again.
    pub changed_during_fetch: usize,
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
            // Set aside as unchanged: its record is the stored one, unless that changed
            // since; only a status rule may still apply (an admin's change meanwhile).
            None if desired.unchanged.contains_key(key) => {
                seen.insert(key);
                if desired.unchanged[key] != super::fingerprint(&cur.record) {
                    diff.changed_during_fetch += 1;
                } else if let Some(u) = diff_user(cur, &cur.record, opts) {
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
    // Folded in as they were loaded: only their status changes are left.
    diff.users_updated
        .extend(current.folded.updates.iter().cloned());
    let mut added: Vec<_> = Vec::with_capacity(desired.users.len().saturating_sub(seen.len()));
    added.extend(
        desired
            .users
            .into_iter()
            .filter(|(k, _)| !seen.contains(k.as_str()))
            .map(|(k, r)| new_user(k, r, opts)),
    );
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
                users_delta: None,
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
pub fn new_user(key: UserKey, record: impl Into<Box<UserRecord>>, opts: DiffOptions) -> NewUser {
    let record = record.into();
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

/// The account status a member's WeCom status implies, when it differs from the stored
/// one: WeCom's own disable wins; someone back in scope is enabled again unless an admin
/// disabled them.
pub(super) fn status_change(
    wecom_status: i64,
    status: UserStatus,
    reason: Option<DisabledReason>,
    opts: DiffOptions,
) -> Option<(UserStatus, Option<DisabledReason>)> {
    match (wecom_disabled_reason(wecom_status), status) {
        (Some(want), UserStatus::Disabled) => (reason != Some(want)
            && reason != Some(DisabledReason::Admin))
        .then_some((UserStatus::Disabled, Some(want))),
        (Some(want), _) => Some((UserStatus::Disabled, Some(want))),
        (None, UserStatus::Disabled) => match reason {
            Some(DisabledReason::Admin) => None,
            _ => Some((opts.new_user_status, None)),
        },
        (None, _) => None,
    }
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

    let status = status_change(r.wecom_status, cur.status, cur.disabled_reason, opts);
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
    let added: Vec<_> = want.users.difference(&cur.users).cloned().collect();
    let removed: Vec<_> = cur.users.difference(&want.users).cloned().collect();
    if cur.users != want.users {
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
        // An inactive tag's links were deleted when it was removed.
        users_delta: active.then_some((added, removed)),
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
