//! How far a tenant's set-up has come: which of the wizard's six steps are done, from
//! facts the console gathers (no I/O here). The overview's next-step card and the
//! wizard's step ticks read the same answer, so they never disagree.

use crate::domain::doctor::{Check, Status};
use serde::{Deserialize, Serialize};

/// The checks that the WeCom admin console's values decide (step 3): the app's secret
/// and IP allow-list, its trusted domain and its home page.
const STEP_3_CHECKS: [&str; 4] = ["secret", "trusted_ip", "trusted_domain", "home_url"];

/// Doctor's last run as kept for the overview: each check's verdict, and the worst
/// finding's words.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorSummary {
    /// When it ran (Unix ms).
    pub at: i64,
    pub checks: Vec<(String, Status)>,
    pub worst: Option<Finding>,
}

/// One check's result in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub status: Status,
    pub title_zh: String,
    pub title_en: String,
    pub fix_zh: String,
    pub fix_en: String,
}

impl DoctorSummary {
    pub fn of(at: i64, checks: &[Check]) -> Self {
        DoctorSummary {
            at,
            checks: checks
                .iter()
                .map(|c| (c.id.to_string(), c.status))
                .collect(),
            worst: worst(checks).map(|c| Finding {
                status: c.status,
                title_zh: c.title_zh.to_string(),
                title_en: c.title_en.to_string(),
                fix_zh: c.fix_zh.clone(),
                fix_en: c.fix_en.clone(),
            }),
        }
    }
}

/// What the console knows about the tenant's set-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetupFacts {
    /// The edition allows the WeCom integration.
    pub edition_ok: bool,
    /// CorpID, AgentId and Secret are saved (checked live when saved).
    pub configured: bool,
    /// Doctor's checks, if it was run (`None`: never, step 3 counts as not done).
    pub doctor: Option<Vec<(String, Status)>>,
    /// A full sync has succeeded.
    pub synced: bool,
    /// WeCom is ticked in the workbench's login configuration.
    pub wecom_login_on: bool,
    /// A member has signed in (so the app opens in WeCom).
    pub member_signed_in: bool,
}

/// Steps 1 to 6, done or not (index 0 is step 1).
pub fn done_steps(f: &SetupFacts) -> [bool; 6] {
    // Step 3 is done when none of the checks its values decide fails (a warning, such as
    // a callback URL WeCom has not verified yet, does not hold the set-up back).
    let step3 = f.configured
        && f.doctor.as_ref().is_some_and(|checks| {
            checks
                .iter()
                .filter(|(id, _)| STEP_3_CHECKS.contains(&id.as_str()))
                .all(|(_, s)| *s != Status::Fail && *s != Status::Skipped)
        });
    [
        f.edition_ok,
        f.edition_ok && f.configured,
        f.edition_ok && step3,
        f.synced,
        f.wecom_login_on,
        f.member_signed_in,
    ]
}

/// The first step not done, or `None` when the set-up is complete.
pub fn next_step(done: &[bool; 6]) -> Option<u8> {
    done.iter().position(|d| !d).map(|i| i as u8 + 1)
}

/// Doctor's worst finding: the first failure, else the first warning.
pub fn worst(checks: &[Check]) -> Option<&Check> {
    checks
        .iter()
        .find(|c| c.status == Status::Fail)
        .or_else(|| checks.iter().find(|c| c.status == Status::Warn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(fail: &[&str], warn: &[&str]) -> Vec<(String, Status)> {
        [
            "secret",
            "trusted_ip",
            "agent",
            "trusted_domain",
            "home_url",
            "callback",
        ]
        .iter()
        .map(|id| {
            let s = if fail.contains(id) {
                Status::Fail
            } else if warn.contains(id) {
                Status::Warn
            } else {
                Status::Pass
            };
            (id.to_string(), s)
        })
        .collect()
    }

    #[test]
    fn steps_follow_the_facts() {
        let mut f = SetupFacts::default();
        assert_eq!(next_step(&done_steps(&f)), Some(1));
        f.edition_ok = true;
        assert_eq!(next_step(&done_steps(&f)), Some(2));
        f.configured = true;
        assert_eq!(next_step(&done_steps(&f)), Some(3), "doctor not run");
        f.doctor = Some(checks(&["trusted_domain"], &[]));
        assert_eq!(
            next_step(&done_steps(&f)),
            Some(3),
            "a step-3 value is wrong"
        );
        // The demo's case: only the callback URL is unverified, a warning.
        f.doctor = Some(checks(&[], &["callback"]));
        assert_eq!(next_step(&done_steps(&f)), Some(4));
        // A failure outside step 3's values does not reopen it.
        f.doctor = Some(checks(&["callback"], &[]));
        assert_eq!(next_step(&done_steps(&f)), Some(4));
        f.synced = true;
        f.wecom_login_on = true;
        assert_eq!(next_step(&done_steps(&f)), Some(6));
        f.member_signed_in = true;
        assert_eq!(next_step(&done_steps(&f)), None);
        // A later step done while an earlier one is not: the earlier one is next.
        f.configured = false;
        let d = done_steps(&f);
        assert_eq!(d, [true, false, false, true, true, true]);
        assert_eq!(next_step(&d), Some(2));
    }
}
