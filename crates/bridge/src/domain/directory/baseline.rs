//! Setting aside, while the fetch runs, the members WeCom answers exactly as the store
//! holds them (issue 20: a 1,000,000-member re-sync under 1 GB).
//!
//! Before, the stored directory and WeCom's whole answer sat in memory together while the
//! diff was made, ≈ 600 B per member each. The stored directory is loaded beside the
//! fetch; a member whose answer changes nothing is kept as its key and a fingerprint of
//! the stored record it matched. The diff, made against the directory loaded again after
//! the fetch, checks that fingerprint: a record changed in between (a sign-in filling a
//! withheld field) is left as it is for the next sync to compare.

use super::diff::diff_user;
use super::*;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The stored members, for deciding which answers change nothing.
pub struct Baseline {
    /// Sorted by key: a binary search finds a member without an index beside the list.
    users: Vec<CurrentUser>,
    opts: DiffOptions,
}

impl Baseline {
    /// `None` when some stored person has no WeCom identity yet: matching them (an import,
    /// the switch) looks at every member WeCom answers, so none may be set aside.
    pub fn new(mut users: Vec<CurrentUser>, opts: DiffOptions) -> Option<Baseline> {
        if users.iter().any(|u| u.key.is_none()) {
            return None;
        }
        users.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Some(Baseline { users, opts })
    }

    /// The stored record's fingerprint when WeCom's answer for `key` changes nothing:
    /// no field, no membership, no status.
    pub fn unchanged(&self, key: &str, want: &UserRecord) -> Option<u64> {
        let i = self
            .users
            .binary_search_by(|u| u.key.as_deref().cmp(&Some(key)))
            .ok()?;
        let cur = &self.users[i];
        diff_user(cur, want, self.opts)
            .is_none()
            .then(|| fingerprint(&cur.record))
    }
}

/// A hash of every field of a record. It is compared within one run only, so the
/// process's fixed hasher is enough.
pub fn fingerprint(r: &UserRecord) -> u64 {
    let mut h = DefaultHasher::new();
    r.hash(&mut h);
    h.finish()
}

impl DesiredDirectory {
    /// Whether WeCom's answer has this member, whole or set aside as unchanged.
    pub fn has_user(&self, key: &str) -> bool {
        self.users.contains_key(key) || self.unchanged.contains_key(key)
    }

    /// Members in WeCom's answer.
    pub fn member_count(&self) -> usize {
        self.users.len() + self.unchanged.len()
    }

    /// Adds a member read from WeCom unless it is there already (a member of several
    /// departments is in several answers); only its fingerprint is kept when `baseline`
    /// finds it unchanged. Returns whether it was new.
    pub fn add_user(
        &mut self,
        key: UserKey,
        record: UserRecord,
        baseline: Option<&Baseline>,
    ) -> bool {
        if self.has_user(&key) {
            return false;
        }
        if let Some(fp) = baseline.and_then(|b| b.unchanged(&key, &record)) {
            self.unchanged.insert(key, fp);
        } else {
            self.users.insert(key, Box::new(record));
        }
        true
    }

    /// Sets aside the members already read that `baseline` finds unchanged (read
    /// before the stored directory was loaded).
    pub fn set_aside(&mut self, baseline: &Baseline) {
        let unchanged = &mut self.unchanged;
        self.users.retain(|k, r| match baseline.unchanged(k, r) {
            Some(fp) => {
                unchanged.insert(k.clone(), fp);
                false
            }
            None => true,
        });
        self.users.shrink_to_fit();
    }
}
