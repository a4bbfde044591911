//! What one full reconcile costs against WeCom's rate limits (wecom-api.md §16: per corp
//! and per API, 10,000 calls a minute and 150,000 an hour), from the calls the last full
//! sync made. The busiest API sets both the shortest possible run and how often a
//! reconcile may run without using up the hour's budget.

use super::EndpointCalls;
use std::collections::BTreeMap;

/// Calls a minute one API may take, per corp.
pub const PER_MINUTE: u64 = 10_000;
/// Calls an hour one API may take, per corp.
pub const PER_HOUR: u64 = 150_000;

/// One full reconcile's cost, as the last full sync measured it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileCost {
    /// Every call of the run.
    pub calls: u64,
    /// The API called most, and how often.
    pub busiest: String,
    pub busiest_calls: u64,
}

impl ReconcileCost {
    /// From a run's calls by endpoint; `None` when it made none (nothing measured yet).
    pub fn of(calls: &BTreeMap<String, EndpointCalls>) -> Option<Self> {
        let (busiest, most) = calls.iter().max_by_key(|(_, c)| c.calls)?;
        if most.calls == 0 {
            return None;
        }
        Some(ReconcileCost {
            calls: calls.values().map(|c| c.calls).sum(),
            busiest: busiest.clone(),
            busiest_calls: most.calls,
        })
    }

    /// The shortest a run can take under the per-minute limit, in whole minutes (≥ 1).
    pub fn floor_minutes(&self) -> u64 {
        self.busiest_calls.div_ceil(PER_MINUTE).max(1)
    }

    /// The share (‰) of the busiest API's hourly budget that reconciling every
    /// `interval_secs` uses; `None` when reconciling is off.
    pub fn hourly_permille(&self, interval_secs: i64) -> Option<u64> {
        if interval_secs <= 0 {
            return None;
        }
        let per_hour = self.busiest_calls as u128 * 3600 / interval_secs as u128;
        Some((per_hour * 1000 / PER_HOUR as u128) as u64)
    }

    /// The shortest interval (seconds, a whole number of minutes) whose reconciles stay
    /// within the busiest API's hourly budget, leaving half of it for callbacks, sign-ins
    /// and admins' own syncs.
    pub fn min_interval_secs(&self) -> i64 {
        let secs = (self.busiest_calls as u128 * 3600).div_ceil(PER_HOUR as u128 / 2);
        (secs.div_ceil(60) * 60).max(60) as i64
    }

    /// Whether reconciling every `interval_secs` stays within the budget above.
    pub fn allows(&self, interval_secs: i64) -> bool {
        interval_secs <= 0 || interval_secs >= self.min_interval_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(v: &[(&str, u64)]) -> BTreeMap<String, EndpointCalls> {
        v.iter()
            .map(|(k, n)| {
                (
                    k.to_string(),
                    EndpointCalls {
                        calls: *n,
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_small_org_may_reconcile_every_minute() {
        let c = ReconcileCost::of(&calls(&[("department/list", 1), ("user/list", 40)])).unwrap();
        assert_eq!(
            (c.calls, c.busiest.as_str(), c.busiest_calls),
            (41, "user/list", 40)
        );
        assert_eq!(c.floor_minutes(), 1);
        assert_eq!(c.min_interval_secs(), 60);
        assert_eq!(c.hourly_permille(3600), Some(0));
        assert!(c.allows(60) && c.allows(0));
    }

    #[test]
    fn a_million_member_org_is_bound_by_the_hour() {
        // 50,000 departments: one user/list call each (the 1M-member org).
        let c =
            ReconcileCost::of(&calls(&[("department/list", 1), ("user/list", 50_000)])).unwrap();
        assert_eq!(c.floor_minutes(), 5);
        // 50,000 calls in half of 150,000 an hour: at most one run every 40 minutes.
        assert_eq!(c.min_interval_secs(), 40 * 60);
        assert!(!c.allows(30 * 60));
        assert!(c.allows(40 * 60) && c.allows(0));
        assert_eq!(c.hourly_permille(3600), Some(333));
        assert_eq!(c.hourly_permille(0), None);
    }

    #[test]
    fn nothing_measured_yet() {
        assert_eq!(ReconcileCost::of(&BTreeMap::new()), None);
        assert_eq!(ReconcileCost::of(&calls(&[("user/list", 0)])), None);
    }
}
