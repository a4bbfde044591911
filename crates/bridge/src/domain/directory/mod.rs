//! The directory as sync sees it: the *desired* directory built from WeCom's answers, the
//! *current* one loaded from the store, and the diff between them (with field-level
//! changes), the mass-disable guard and the report types of a run. No I/O here.
//!
//! Users are matched by their WeCom userid, lower-cased ([`UserKey`]): WeCom compares
//! userids without case, and the store keeps the spelling separately.

use crate::domain::user::{DisabledReason, UserStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod baseline;
mod budget;
mod diff;
pub mod import;
pub mod matching;
mod run;
#[cfg(test)]
mod tests;

pub use baseline::{fingerprint, key_print, Baseline, Folded};
pub use budget::ReconcileCost;
pub use diff::*;
pub use run::*;

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

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
///
/// Users are boxed: a table entry is a key and a pointer, and a new user's record moves
/// into the diff as a pointer. Inline, a million members' records sat twice in memory
/// while the diff was made, once in this map's table and once in the diff's list
/// (issue 20: a 1,000,000-member sync under 1 GB).
#[derive(Clone, Debug, Default)]
pub struct DesiredDirectory {
    pub departments: BTreeMap<i64, DeptRecord>,
    pub users: HashMap<UserKey, Box<UserRecord>>,
    pub tags: BTreeMap<i64, TagRecord>,
    /// Members whose answer changes nothing, by key: the fingerprint of the stored record
    /// they matched ([`Baseline`]). Not in `users`.
    pub unchanged: HashMap<UserKey, u64>,
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
    /// Without the members folded in ([`Folded`]).
    pub users: Vec<CurrentUser>,
    pub tags: HashMap<i64, CurrentTag>,
    pub folded: Folded,
}

impl CurrentDirectory {
    /// Users that may sign in or be authorized: everyone not disabled.
    pub fn active_users(&self) -> usize {
        self.users
            .iter()
            .filter(|u| u.status != UserStatus::Disabled)
            .count()
            + self.folded.active
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
