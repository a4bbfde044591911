//! Sync runs: their kinds, triggers and statuses, and what a run's report records.

use super::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Wizard,
    Console,
    Schedule,
    Callback,
    Cli,
    /// The admin JSON API (`POST /api/v1/sync/runs`).
    Api,
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
    /// An admin cancelled it before it applied anything; nothing was applied.
    Cancelled,
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

str_enum!(Trigger { Wizard = "wizard", Console = "console", Schedule = "schedule", Callback = "callback", Cli = "cli", Api = "api" });
str_enum!(RunKind { Full = "full", DryRun = "dry_run", Incremental = "incremental" });
str_enum!(RunStatus { Running = "running", Succeeded = "succeeded", Failed = "failed", Blocked = "blocked", Interrupted = "interrupted", Cancelled = "cancelled" });

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

/// What a run took from an interrupted run's checkpoint instead of reading it from
/// WeCom again (issue 20).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumed {
    /// The runs whose reads were reused.
    pub from_runs: Vec<i64>,
    /// Departments whose members came from the checkpoint (user/list calls saved).
    pub departments: u64,
    /// Tags that came from the checkpoint (tag/get calls saved).
    pub tags: u64,
}

impl Resumed {
    /// (English, Chinese) for the report.
    pub fn note(&self) -> (String, String) {
        let runs = self
            .from_runs
            .iter()
            .map(|r| format!("#{r}"))
            .collect::<Vec<_>>()
            .join(", ");
        (
            format!(
                "resumed from run {runs}: {} departments and {} tags were not read again",
                self.departments, self.tags
            ),
            format!(
                "从同步 {runs} 的断点继续：{} 个部门和 {} 个标签未重新读取",
                self.departments, self.tags
            ),
        )
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
    /// Stored people without a WeCom identity, found by the tenant's match rule (issue 20).
    #[serde(default)]
    pub matching: Option<super::matching::MatchReport>,
    /// In English (the CLI, the API, logs); `warnings_zh` holds the same in Chinese.
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    #[serde(default)]
    pub warnings_zh: Vec<String>,
    #[serde(default)]
    pub errors_zh: Vec<String>,
    pub fetch_ms: u64,
    pub diff_ms: u64,
    pub apply_ms: u64,
    pub members: u64,
    /// Of `members`, those WeCom answered exactly as stored: compared by fingerprint, not
    /// held whole ([`super::Baseline`]).
    #[serde(default)]
    pub members_unchanged: u64,
    /// New members whose rows were written during the fetch, in the apply's transaction
    /// opened ahead (PostgreSQL), and committed with the rest.
    #[serde(default)]
    pub written_ahead: u64,
    /// How many members have each private field, by source, once applied (issue 20).
    #[serde(default)]
    pub coverage: Vec<crate::domain::consent::FieldCoverage>,
    /// Set when the run resumed an interrupted run's reads.
    #[serde(default)]
    pub resumed: Option<Resumed>,
}

impl RunReport {
    /// Records a warning in both languages.
    pub fn warn(&mut self, en: String, zh: String) {
        self.warnings.push(en);
        self.warnings_zh.push(zh);
    }

    /// Records an error in both languages.
    pub fn error(&mut self, en: String, zh: String) {
        self.errors.push(en);
        self.errors_zh.push(zh);
    }

    /// The warnings in the reader's language (a report written before they were kept in
    /// both has English only).
    pub fn warnings_in(&self, zh: bool) -> &[String] {
        if zh && self.warnings_zh.len() == self.warnings.len() {
            &self.warnings_zh
        } else {
            &self.warnings
        }
    }

    /// The errors in the reader's language, as [`RunReport::warnings_in`].
    pub fn errors_in(&self, zh: bool) -> &[String] {
        if zh && self.errors_zh.len() == self.errors.len() {
            &self.errors_zh
        } else {
            &self.errors
        }
    }
}

/// A run's phases in order, with the share of the whole run each ends at (in %): reading
/// each department's members is most of a full sync.
const PHASE_ENDS: [(&str, i64); 9] = [
    ("", 0),
    ("scope", 2),
    ("tags", 8),
    ("departments", 12),
    ("members", 85),
    ("loose_members", 90),
    ("diff", 92),
    ("relink", 95),
    ("applying", 100),
];

/// How far the whole run is (0–100), from its current phase and that phase's count: one
/// bar for the run, instead of one that starts again at 0 for each phase.
pub fn overall_percent(phase: &str, done: i64, total: i64) -> i64 {
    let Some(i) = PHASE_ENDS.iter().position(|(p, _)| *p == phase) else {
        return 0;
    };
    let start = if i == 0 { 0 } else { PHASE_ENDS[i - 1].1 };
    let end = PHASE_ENDS[i].1;
    let part = if total > 0 {
        done.clamp(0, total) * (end - start) / total
    } else {
        0
    };
    (start + part).clamp(0, 99)
}

/// The time left (ms) at this pace, once a tenth of the run is done (earlier guesses
/// swing too much to show).
pub fn estimate_left_ms(elapsed_ms: i64, percent: i64) -> Option<i64> {
    (percent >= 10 && elapsed_ms > 0).then(|| elapsed_ms * (100 - percent) / percent)
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn one_bar_for_the_whole_run() {
        assert_eq!(overall_percent("", 0, 0), 0);
        assert_eq!(overall_percent("scope", 1, 1), 2);
        assert_eq!(overall_percent("members", 0, 100), 12);
        assert_eq!(overall_percent("members", 50, 100), 48);
        assert_eq!(overall_percent("members", 100, 100), 85);
        assert_eq!(overall_percent("applying", 0, 1), 95);
        assert_eq!(
            overall_percent("applying", 1, 1),
            99,
            "100 only once finished"
        );
        assert_eq!(overall_percent("unknown", 5, 10), 0);
        // The bar never goes back as phases follow each other.
        let mut last = 0;
        for (p, _) in PHASE_ENDS {
            for d in 0..=4 {
                let now = overall_percent(p, d, 4);
                assert!(now >= last, "{p} {d}");
                last = now;
            }
        }
        assert_eq!(estimate_left_ms(30_000, 5), None);
        assert_eq!(estimate_left_ms(30_000, 25), Some(90_000));
    }
}
