//! Pacing under WeCom's per-corp, per-API limits (wecom-api.md §16): 10,000 calls a
//! minute **and** 150,000 an hour, in rolling windows. Crossing either gets 45009 and a
//! block as long as the window, so the client spends a budget instead of finding out.
//!
//! The budget lives behind [`CallBudget`] (in memory here; the bridge keeps it in its
//! database so every instance spends one budget). A caller leases a few calls at a time
//! ([`Pacer`]): each lease is recorded at the second it was taken, must be spent within
//! [`LEASE_TTL_MS`], and its unspent part is given back. Calls stop counting only
//! [`GUARD_SECS`] after their window ends, which covers the lease's lifetime, the
//! request's latency and a little clock skew between us and WeCom. The minute's count
//! may reach the limit; the hour's keeps a small margin under it
//! ([`RateLimits::effective`]).
//!
//! Time goes through [`Clock`], so tests move a clock instead of sleeping a minute.

use crate::stats::CallStats;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds a lease may be spent for after it was taken.
pub const LEASE_TTL_MS: u64 = 1_000;
/// Seconds a call keeps counting after its window (60 s or 3600 s) has passed: the
/// lease's lifetime ([`LEASE_TTL_MS`]) and up to 2 s of latency and clock skew, so every
/// call WeCom still counts is counted here too.
pub const GUARD_SECS: u64 = 3;
/// The most calls one lease takes (it grows from 1 while leases are used up).
pub const MAX_LEASE: u32 = 256;
/// How long the caller waits after a 45009: the minute window plus the guard.
pub const BLOCK_MS: u64 = (60 + GUARD_SECS) * 1000;

/// Wall time and sleeping, replaceable in tests.
pub trait Clock: Send + Sync + 'static {
    /// Unix milliseconds.
    fn now_ms(&self) -> u64;
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
}

/// The system clock and tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// WeCom's limits per corp and API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub per_min: u32,
    pub per_hour: u32,
}

impl RateLimits {
    /// WeCom's published numbers (§16).
    pub const WECOM: RateLimits = RateLimits {
        per_min: 10_000,
        per_hour: 150_000,
    };

    /// What the client allows itself: the whole minute limit, and 2% under the hour's
    /// (at least one call under it, at least one call an hour). 10,000/min and
    /// 147,000/hour at WeCom's numbers.
    ///
    /// WeCom refuses only calls that *exceed* a limit (§16), and here every call counts
    /// [`GUARD_SECS`] longer than WeCom counts it, so no 60 s of WeCom's window holds
    /// more calls than the count allowed. A margin under the minute limit would cost a
    /// whole window whenever a count is a multiple of the limit: the 50,000 user/list
    /// calls of a 50,000-department org take five minute windows at 10,000, six at
    /// 9,800 (issue 20). Tripping the hour costs an hour's block: it keeps its margin.
    pub fn effective(&self) -> (u64, u64) {
        let hour = u64::from(self.per_hour);
        (
            u64::from(self.per_min).max(1),
            hour.saturating_sub((hour / 50).max(1)).max(1),
        )
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::WECOM
    }
}

/// The answer to a lease request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// This many calls (≥ 1) may be made now; they count from the current second.
    Granted(u32),
    /// Nothing is left: ask again at this Unix millisecond.
    WaitUntil(u64),
}

/// The decision of one lease, from the calls recorded under a key: `buckets` are
/// (Unix second, calls) in any order, `blocked_until_ms` a 45009 block (0 = none).
/// Shared by every [`CallBudget`] so they all count the same way.
pub fn decide(
    buckets: &[(u64, u64)],
    blocked_until_ms: u64,
    now_ms: u64,
    want: u32,
    limits: RateLimits,
) -> Lease {
    if blocked_until_ms > now_ms {
        return Lease::WaitUntil(blocked_until_ms);
    }
    let now_s = now_ms / 1000;
    let (eff_min, eff_hour) = limits.effective();
    let mut sorted: Vec<(u64, u64)> = buckets.to_vec();
    sorted.sort_unstable();
    // A bucket counts in a window of `w` seconds until second `s + w + GUARD_SECS`.
    let live = |w: u64| {
        sorted
            .iter()
            .copied()
            .filter(move |(s, _)| s + w + GUARD_SECS > now_s)
    };
    let used_min: u64 = live(60).map(|(_, n)| n).sum();
    let used_hour: u64 = live(3600).map(|(_, n)| n).sum();
    let free = eff_min
        .saturating_sub(used_min)
        .min(eff_hour.saturating_sub(used_hour));
    if free > 0 {
        return Lease::Granted(free.min(u64::from(want.max(1))) as u32);
    }
    // When enough of the oldest calls stop counting for one call to fit in both windows.
    let until = |w: u64, used: u64, eff: u64| -> u64 {
        if used < eff {
            return now_ms;
        }
        let mut left = used;
        for (s, n) in live(w) {
            left -= n;
            if left < eff {
                return (s + w + GUARD_SECS) * 1000;
            }
        }
        now_ms
    };
    let t = until(60, used_min, eff_min).max(until(3600, used_hour, eff_hour));
    Lease::WaitUntil(t.max(now_ms + 1))
}

/// Where the calls of every (corp, API) are counted. Keys are opaque strings chosen by
/// the client (`corp/api`). Errors are reported as text; the pacer then falls back to
/// its own memory, since a budget problem must not stop WeCom calls.
pub trait CallBudget: Send + Sync + 'static {
    /// Takes up to `want` calls at `now_ms`, if the limits allow, or says when to ask again.
    fn take<'a>(
        &'a self,
        key: &'a str,
        want: u32,
        now_ms: u64,
        limits: RateLimits,
    ) -> BoxFuture<'a, Result<Lease, String>>;

    /// Gives back `n` unspent calls of a lease taken at `taken_ms`.
    fn give_back<'a>(&'a self, key: &'a str, n: u32, taken_ms: u64) -> BoxFuture<'a, ()>;

    /// WeCom answered 45009: no call under `key` before `until_ms` (a later block wins).
    fn block<'a>(&'a self, key: &'a str, until_ms: u64) -> BoxFuture<'a, ()>;
}

#[derive(Default)]
struct MemoryKey {
    buckets: HashMap<u64, u64>,
    blocked_until_ms: u64,
}

/// The in-process budget.
#[derive(Default)]
pub struct MemoryCallBudget {
    keys: Mutex<HashMap<String, MemoryKey>>,
}

impl MemoryCallBudget {
    pub fn new() -> Self {
        Self::default()
    }

    fn take_now(&self, key: &str, want: u32, now_ms: u64, limits: RateLimits) -> Lease {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let k = keys.entry(key.to_string()).or_default();
        let now_s = now_ms / 1000;
        k.buckets.retain(|s, _| s + 3600 + GUARD_SECS > now_s);
        let buckets: Vec<(u64, u64)> = k.buckets.iter().map(|(s, n)| (*s, *n)).collect();
        let lease = decide(&buckets, k.blocked_until_ms, now_ms, want, limits);
        if let Lease::Granted(n) = lease {
            *k.buckets.entry(now_s).or_default() += u64::from(n);
        }
        lease
    }
}

impl CallBudget for MemoryCallBudget {
    fn take<'a>(
        &'a self,
        key: &'a str,
        want: u32,
        now_ms: u64,
        limits: RateLimits,
    ) -> BoxFuture<'a, Result<Lease, String>> {
        let lease = self.take_now(key, want, now_ms, limits);
        Box::pin(async move { Ok(lease) })
    }

    fn give_back<'a>(&'a self, key: &'a str, n: u32, taken_ms: u64) -> BoxFuture<'a, ()> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = keys
            .get_mut(key)
            .and_then(|k| k.buckets.get_mut(&(taken_ms / 1000)))
        {
            *b = b.saturating_sub(u64::from(n));
        }
        Box::pin(async {})
    }

    fn block<'a>(&'a self, key: &'a str, until_ms: u64) -> BoxFuture<'a, ()> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let k = keys.entry(key.to_string()).or_default();
        k.blocked_until_ms = k.blocked_until_ms.max(until_ms);
        Box::pin(async {})
    }
}

/// This process's lease of one key.
#[derive(Default)]
struct Local {
    left: u32,
    spent: u32,
    taken_ms: u64,
    size: u32,
}

/// One key's lease and its calls in flight.
#[derive(Default)]
struct KeyState {
    lease: tokio::sync::Mutex<Local>,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl KeyState {
    /// Until no call of this key is in flight. A wait starts from here, so the calls
    /// leased before it have reached WeCom before the clock moves on (with a test clock
    /// that jumps, they would otherwise land in the next window).
    async fn drained(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// One call's place in the budget, held while the call is in flight.
pub struct Permit {
    key: Arc<KeyState>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.key.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.key.idle.notify_waiters();
        }
    }
}

/// Spends a [`CallBudget`] a lease at a time; one per process, shared by its clients.
pub struct Pacer {
    budget: Arc<dyn CallBudget>,
    fallback: MemoryCallBudget,
    clock: Arc<dyn Clock>,
    limits: RateLimits,
    keys: Mutex<HashMap<String, Arc<KeyState>>>,
}

/// A pacing wait longer than the caller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// When the next call would be allowed (Unix ms).
    pub until_ms: u64,
}

impl Pacer {
    pub fn new(budget: Arc<dyn CallBudget>, clock: Arc<dyn Clock>, limits: RateLimits) -> Self {
        Pacer {
            budget,
            fallback: MemoryCallBudget::new(),
            clock,
            limits,
            keys: Mutex::default(),
        }
    }

    /// An in-memory budget at WeCom's limits on the system clock.
    pub fn in_memory() -> Self {
        Pacer::new(
            Arc::new(MemoryCallBudget::new()),
            Arc::new(SystemClock),
            RateLimits::WECOM,
        )
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    fn key(&self, key: &str) -> Arc<KeyState> {
        let mut m = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }

    async fn take(&self, key: &str, want: u32, now: u64) -> Lease {
        match self.budget.take(key, want, now, self.limits).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "shared WeCom call budget unavailable; pacing in memory");
                self.fallback.take_now(key, want, now, self.limits)
            }
        }
    }

    /// Waits until one call under `key` is allowed and takes it; hold the permit while
    /// the call is in flight. Waits longer than `max_wait` in all are refused (the
    /// caller reports 45009 instead); each wait is announced in `stats` while it lasts
    /// and counted there for `endpoint`.
    pub async fn acquire(
        &self,
        key: &str,
        endpoint: &'static str,
        stats: &CallStats,
        max_wait: Duration,
        waited: &mut Duration,
    ) -> Result<Permit, TooLong> {
        let ks = self.key(key);
        let permit = || {
            ks.in_flight.fetch_add(1, Ordering::SeqCst);
            Permit { key: ks.clone() }
        };
        // Callers of one key queue here, so one of them leases (or waits) for all.
        let mut l = ks.lease.lock().await;
        loop {
            let now = self.clock.now_ms();
            if l.left > 0 && now < l.taken_ms + LEASE_TTL_MS {
                l.left -= 1;
                l.spent += 1;
                return Ok(permit());
            }
            if l.left > 0 {
                self.budget.give_back(key, l.left, l.taken_ms).await;
                self.fallback.give_back(key, l.left, l.taken_ms).await;
            }
            // Slow start: a lease used up asks for twice as many next time; one that
            // expired half-spent asks for what was spent.
            l.size = if l.left == 0 && l.spent >= l.size.max(1) {
                (l.size.max(1) * 2).min(MAX_LEASE)
            } else {
                l.spent.max(1)
            };
            l.left = 0;
            l.spent = 0;
            match self.take(key, l.size, now).await {
                Lease::Granted(n) => {
                    l.left = n - 1;
                    l.spent = 1;
                    l.taken_ms = now;
                    return Ok(permit());
                }
                Lease::WaitUntil(t) => {
                    let d = Duration::from_millis(t.saturating_sub(now));
                    if *waited + d > max_wait {
                        return Err(TooLong { until_ms: t });
                    }
                    tracing::info!(
                        endpoint,
                        wait_ms = d.as_millis() as u64,
                        "waiting for WeCom's rate limit"
                    );
                    stats.begin_wait(endpoint, t);
                    ks.drained().await;
                    let left = t.saturating_sub(self.clock.now_ms());
                    self.clock.sleep(Duration::from_millis(left)).await;
                    stats.end_wait(endpoint, d);
                    *waited += d;
                }
            }
        }
    }

    /// WeCom answered 45009 under `key`: every caller waits out the minute window.
    pub async fn blocked(&self, key: &str) {
        let until = self.clock.now_ms() + BLOCK_MS;
        self.budget.block(key, until).await;
        self.fallback.block(key, until).await;
        // This process's unspent lease is void.
        let ks = self.key(key);
        let mut l = ks.lease.lock().await;
        l.left = 0;
        l.spent = 0;
        l.size = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: RateLimits = RateLimits {
        per_min: 100,
        per_hour: 300,
    };

    #[test]
    fn the_whole_minute_and_a_margin_under_the_hour() {
        assert_eq!(RateLimits::WECOM.effective(), (10_000, 147_000));
        assert_eq!(L.effective(), (100, 294));
        assert_eq!(
            RateLimits {
                per_min: 10,
                per_hour: 1
            }
            .effective(),
            (10, 1)
        );
    }

    #[test]
    fn grants_up_to_the_minute_budget_then_waits_for_the_oldest_second() {
        let t0 = 1_000_000_000u64; // a whole second
        assert_eq!(decide(&[], 0, t0, 10, L), Lease::Granted(10));
        assert_eq!(decide(&[(1_000_000, 92)], 0, t0, 10, L), Lease::Granted(8));
        // 100 used since second 1,000,000: the next call waits until that second stops
        // counting, 60 s + the guard later.
        let full = [(1_000_000u64, 60u64), (1_000_010, 40)];
        assert_eq!(
            decide(&full, 0, t0 + 5_000, 1, L),
            Lease::WaitUntil((1_000_000 + 63) * 1000)
        );
        assert_eq!(
            decide(&full, 0, (1_000_000 + 62) * 1000 + 999, 1, L),
            Lease::WaitUntil((1_000_000 + 63) * 1000)
        );
        assert_eq!(
            decide(&full, 0, (1_000_000 + 63) * 1000, 80, L),
            Lease::Granted(60)
        );
    }

    #[test]
    fn the_hour_window_and_blocks() {
        let s0 = 2_000_000u64;
        // 294 calls over the last hour, at most 60 in any minute: the hour is spent.
        let b: Vec<(u64, u64)> = (0..5)
            .map(|i| (s0 + i * 600, 60 - 6 * (i == 4) as u64))
            .collect();
        let now = (s0 + 3000) * 1000;
        assert_eq!(
            decide(&b, 0, now, 1, L),
            Lease::WaitUntil((s0 + 3600 + GUARD_SECS) * 1000)
        );
        assert_eq!(decide(&[], now + 10, now, 1, L), Lease::WaitUntil(now + 10));
    }

    #[tokio::test]
    async fn memory_budget_counts_gives_back_and_blocks() {
        let m = MemoryCallBudget::new();
        let t = 5_000_000_000u64;
        assert_eq!(m.take("k", 200, t, L).await, Ok(Lease::Granted(100)));
        assert!(matches!(
            m.take("k", 1, t, L).await,
            Ok(Lease::WaitUntil(_))
        ));
        m.give_back("k", 8, t).await;
        assert_eq!(m.take("k", 200, t, L).await, Ok(Lease::Granted(8)));
        assert_eq!(m.take("other", 1, t, L).await, Ok(Lease::Granted(1)));
        m.block("other", t + 61_000).await;
        assert_eq!(
            m.take("other", 1, t, L).await,
            Ok(Lease::WaitUntil(t + 61_000))
        );
    }

    /// A clock that moves only when told to, or when something sleeps.
    #[derive(Default)]
    struct ManualClock(std::sync::atomic::AtomicU64);

    impl ManualClock {
        fn advance(&self, ms: u64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl Clock for Arc<ManualClock> {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
        fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
            self.advance(d.as_millis() as u64);
            Box::pin(async {})
        }
    }

    /// WeCom's side as §16 and the simulator count it, over calls in the order they
    /// arrive: per-second buckets, a rolling 60 s window, 45009 once the count
    /// *exceeds* `limit`. Returns the most calls any window held.
    fn wecom_window(mut arrivals_ms: Vec<u64>, limit: u64) -> Result<u64, String> {
        arrivals_ms.sort_unstable();
        let mut buckets: std::collections::VecDeque<(u64, u64)> = Default::default();
        let mut most = 0;
        for (i, at) in arrivals_ms.iter().enumerate() {
            let s = at / 1000;
            while buckets.front().is_some_and(|(b, _)| b + 60 <= s) {
                buckets.pop_front();
            }
            match buckets.back_mut() {
                Some((b, n)) if *b == s => *n += 1,
                _ => buckets.push_back((s, 1)),
            }
            let total: u64 = buckets.iter().map(|(_, n)| n).sum();
            if total > limit {
                return Err(format!(
                    "call {i} (at {at} ms) got 45009: {total} in the window"
                ));
            }
            most = most.max(total);
        }
        Ok(most)
    }

    /// The 50,000 user/list calls of a 50,000-department org (issue 20) at WeCom's real
    /// limits, each reaching WeCom up to 2 s late: never over 10,000 in any 60 s of
    /// WeCom's window, and done in five windows (four waits of 60 s + the guard), not
    /// six.
    #[tokio::test]
    async fn fifty_thousand_calls_take_five_minute_windows_without_a_45009() {
        let t0 = 1_700_000_000_000u64;
        let clock = Arc::new(ManualClock(t0.into()));
        let pacer = Pacer::new(
            Arc::new(MemoryCallBudget::new()),
            Arc::new(clock.clone()),
            RateLimits::WECOM,
        );
        let stats = CallStats::new();
        let mut arrivals = Vec::with_capacity(50_000);
        let mut waited = Duration::ZERO;
        for i in 0..50_000u64 {
            let permit = pacer
                .acquire(
                    "corp/user/list",
                    "user/list",
                    &stats,
                    Duration::from_secs(3600),
                    &mut waited,
                )
                .await
                .unwrap();
            // 4,000 calls a second; every third one reaches WeCom 1.9 s later than sent
            // (a lease may also be up to 1 s old when it is spent).
            arrivals.push(clock.now_ms() + if i % 3 == 0 { 1_900 } else { 5 });
            drop(permit);
            if i % 4 == 3 {
                clock.advance(1);
            }
        }
        let took = clock.now_ms() - t0;
        assert_eq!(wecom_window(arrivals, 10_000), Ok(10_000));
        // Four waits for the window: 4 × 63 s, plus 2.5 s to send the last 10,000.
        assert!(took >= 4 * 60_000, "{took} ms");
        assert!(took <= 4 * (60 + GUARD_SECS) * 1000 + 3_000, "{took} ms");
        let s = stats.snapshot();
        assert!(s["user/list"].rate_waits >= 4, "{:?}", s["user/list"]);
    }
}
