//! Setting aside, while the fetch runs, the members WeCom answers exactly as the store
//! holds them (issue 20: a 1,000,000-member re-sync under 1 GB).
//!
//! Before, the stored directory and WeCom's whole answer sat in memory together while the
//! diff was made, ≈ 600 B per member each. Now the stored users are read beside the fetch
//! into a [`Baseline`] of ≈ 80 B each (key, field hashes, status), and a member whose
//! answer changes nothing is kept as its key and the stored record's fingerprint. The
//! diff, made against the directory loaded again after the fetch, checks that
//! fingerprint as it reads each stored user: one still as matched is folded into the
//! diff there and then ([`Folded`]), so the directory held for the diff has only the
//! members that change. A record changed in between (a sign-in filling a withheld
//! field) is left as it is for the next sync to compare.
//!
//! Equal hashes stand for equal values: a changed member whose 64-bit hash equals its
//! stored one (a chance of 2⁻⁶⁴ each, ≈ 5 × 10⁻¹⁴ for a million) would look unchanged
//! until its next change.

use super::diff::{diff_user, status_change};
use super::*;
use crate::domain::user::{DisabledReason, UserStatus};
use std::hash::{DefaultHasher, Hash, Hasher};

fn hash(v: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// Hashes of what the diff compares (`name_withheld` is how a name came, not a value).
/// Mobile and email are apart: WeCom withholds them (`None`), and then the stored ones
/// stand, whatever they are.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Prints {
    rest: u64,
    mobile: u64,
    email: u64,
}

impl Prints {
    fn of(r: &UserRecord) -> Prints {
        Prints {
            rest: hash((
                (&r.userid, &r.name, &r.position, &r.alias, &r.telephone),
                (r.main_department, r.wecom_status, &r.direct_leader),
                (&r.extattr, &r.departments),
            )),
            mobile: hash(&r.mobile),
            email: hash(&r.email),
        }
    }

    fn whole(self) -> u64 {
        hash((self.rest, self.mobile, self.email))
    }
}

/// A stored record's fingerprint, as [`DesiredDirectory::unchanged`] keeps it. It is
/// compared within one run only, so the process's fixed hasher is enough.
pub fn fingerprint(r: &UserRecord) -> u64 {
    Prints::of(r).whole()
}

struct Stored {
    key: Box<str>,
    prints: Prints,
    status: UserStatus,
    reason: Option<DisabledReason>,
}

/// The stored members, for deciding which answers change nothing.
pub struct Baseline {
    /// Sorted by key once complete: a binary search finds a member.
    users: Vec<Stored>,
    opts: DiffOptions,
    /// Someone stored has no WeCom identity yet.
    unlinked: bool,
}

impl Baseline {
    pub fn new(opts: DiffOptions) -> Baseline {
        Baseline {
            users: Vec::new(),
            opts,
            unlinked: false,
        }
    }

    /// Takes in stored users, a slice at a time.
    pub fn add(&mut self, users: impl IntoIterator<Item = CurrentUser>) {
        for u in users {
            let Some(key) = u.key else {
                self.unlinked = true;
                continue;
            };
            self.users.push(Stored {
                key: key.into_boxed_str(),
                prints: Prints::of(&u.record),
                status: u.status,
                reason: u.disabled_reason,
            });
        }
    }

    /// `None` when some stored person has no WeCom identity yet: matching them (an import,
    /// the switch) looks at every member WeCom answers, so none may be set aside.
    pub fn finish(mut self) -> Option<Baseline> {
        if self.unlinked {
            return None;
        }
        self.users.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        self.users.shrink_to_fit();
        Some(self)
    }

    /// Whether the store held a member with this key when the fetch began: one it did not
    /// is new, and its row may be written ahead of the apply ([`NewUser::row_print`]).
    pub fn knows(&self, key: &str) -> bool {
        self.users.binary_search_by(|u| (*u.key).cmp(key)).is_ok()
    }

    /// The stored record's fingerprint when WeCom's answer for `key` changes nothing: no
    /// field, no membership, no status (what [`diff_user`] would find).
    pub fn unchanged(&self, key: &str, want: &UserRecord) -> Option<u64> {
        // A withheld name keeps the stored one: left to the whole comparison.
        if want.name_withheld {
            return None;
        }
        let i = self.users.binary_search_by(|u| (*u.key).cmp(key)).ok()?;
        let s = &self.users[i];
        let p = Prints::of(want);
        let same = p.rest == s.prints.rest
            && (want.mobile.is_none() || p.mobile == s.prints.mobile)
            && (want.email.is_none() || p.email == s.prints.email)
            && status_change(want.wecom_status, s.status, s.reason, self.opts).is_none();
        same.then(|| s.prints.whole())
    }
}

impl DesiredDirectory {
    /// Members held whole that `baseline` does not know: new to the store.
    pub fn unknown_to<'a>(
        &'a self,
        baseline: &'a Baseline,
    ) -> impl Iterator<Item = (&'a UserKey, &'a UserRecord)> + 'a {
        self.users
            .iter()
            .filter(|(k, _)| !baseline.knows(k))
            .map(|(k, r)| (k, &**r))
    }

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

impl NewUser {
    /// A hash of what a new member's rows hold (its `users` row, WeCom identity and
    /// memberships): rows written ahead, during the fetch, are kept by the apply only
    /// when the apply's own new user has the same print (and [`key_print`]).
    pub fn row_print(&self) -> u64 {
        // The whole new user: what its rows hold is made of nothing else.
        hash((&self.key, self.status, self.disabled_reason, &*self.record))
    }
}

/// A member key's hash, for finding rows written ahead without holding their keys.
pub fn key_print(key: &str) -> u64 {
    hash(key)
}

/// Stored members met again, when the directory is loaded for the diff, as WeCom's
/// answer matched them: what the diff needs of them, instead of the members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// Status changes they still need (an admin's change since the fetch began).
    pub updates: Vec<UserUpdate>,
    /// Not disabled: the mass-disable guard counts them.
    pub active: usize,
    pub members: usize,
}

impl DesiredDirectory {
    /// Folds in a stored user set aside as unchanged whose record is still the one WeCom's
    /// answer matched; `false` leaves it to the diff (not set aside, or changed since).
    pub fn fold(&self, cur: &CurrentUser, opts: DiffOptions, into: &mut Folded) -> bool {
        let Some(fp) = cur.key.as_deref().and_then(|k| self.unchanged.get(k)) else {
            return false;
        };
        if cur.link_identity || *fp != fingerprint(&cur.record) {
            return false;
        }
        into.active += usize::from(cur.status != UserStatus::Disabled);
        into.members += 1;
        into.updates.extend(diff_user(cur, &cur.record, opts));
        true
    }
}
