//! Password sign-in throttling (issue 19 item 2), as rules without I/O: who is counted
//! (a client IP, an account), how many failures are free, and how long each failure
//! after that locks the key out.
//!
//! Each key has a failure count and a `locked_until` instant. After [`FREE_FAILURES`]
//! failures in a row, each further failure locks the key for [`BASE_LOCK_MS`], doubling
//! per failure up to [`MAX_LOCK_MS`]. While a key is locked, attempts are refused
//! (429 with `Retry-After`) before any password is hashed, and they do not count. A
//! success clears the account's count; counts older than [`FORGET_AFTER_MS`] are
//! forgotten.

/// Failures in a row before the first lockout.
pub const FREE_FAILURES: i64 = 5;
/// The first lockout.
pub const BASE_LOCK_MS: i64 = 1000;
/// The longest lockout.
pub const MAX_LOCK_MS: i64 = 15 * 60 * 1000;
/// A count whose last failure is this old starts again from zero.
pub const FORGET_AFTER_MS: i64 = 60 * 60 * 1000;

/// What is counted: the client's IP, and the account (tenant and username) it tried.
/// Usernames that do not exist are counted like the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThrottleKey {
    Ip(String),
    Account { tenant_id: i64, username: String },
}

impl ThrottleKey {
    /// The stored key: bounded length whatever was typed (the username is hashed), and
    /// case-insensitive for the username, so `Admin` and `admin` share a count.
    pub fn stored(&self) -> String {
        use sha2::{Digest, Sha256};
        match self {
            ThrottleKey::Ip(ip) => format!("ip:{}", ip.chars().take(64).collect::<String>()),
            ThrottleKey::Account {
                tenant_id,
                username,
            } => format!(
                "account:{tenant_id}:{}",
                hex::encode(Sha256::digest(username.to_lowercase().as_bytes()))
            ),
        }
    }

    /// For the audit log.
    pub fn describe(&self) -> String {
        match self {
            ThrottleKey::Ip(ip) => format!("IP {ip}"),
            ThrottleKey::Account { .. } => "the account".into(),
        }
    }
}

/// How long the `failures`-th failure in a row locks the key out, if at all.
pub fn lock_after(failures: i64) -> Option<i64> {
    if failures < FREE_FAILURES {
        return None;
    }
    let doublings = (failures - FREE_FAILURES).min(32) as u32;
    Some(
        BASE_LOCK_MS
            .saturating_mul(1i64 << doublings)
            .min(MAX_LOCK_MS),
    )
}

/// Whole seconds to announce in `Retry-After` for a lock ending at `locked_until`
/// (rounded up, at least 1).
pub fn retry_after_secs(locked_until: i64, now: i64) -> u64 {
    let ms = locked_until.saturating_sub(now).max(1);
    ((ms + 999) / 1000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_failures_then_doubling_up_to_the_cap() {
        for n in 0..FREE_FAILURES {
            assert_eq!(lock_after(n), None, "{n}");
        }
        assert_eq!(lock_after(5), Some(1000));
        assert_eq!(lock_after(6), Some(2000));
        assert_eq!(lock_after(7), Some(4000));
        assert_eq!(lock_after(14), Some(512_000));
        assert_eq!(lock_after(15), Some(MAX_LOCK_MS));
        assert_eq!(lock_after(1_000_000), Some(MAX_LOCK_MS));
        assert_eq!(lock_after(i64::MAX), Some(MAX_LOCK_MS));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(1000, 0), 1);
        assert_eq!(retry_after_secs(1001, 0), 2);
        assert_eq!(retry_after_secs(5, 5), 1);
        assert_eq!(retry_after_secs(0, 5), 1);
    }

    #[test]
    fn keys_are_bounded_and_case_insensitive() {
        let a = ThrottleKey::Account {
            tenant_id: 1,
            username: "Admin".into(),
        };
        let b = ThrottleKey::Account {
            tenant_id: 1,
            username: "x".repeat(5000),
        };
        let c = ThrottleKey::Account {
            tenant_id: 2,
            username: "admin".into(),
        };
        assert_eq!(
            a.stored(),
            ThrottleKey::Account {
                tenant_id: 1,
                username: "admin".into()
            }
            .stored()
        );
        assert!(b.stored().len() < 100);
        assert_ne!(a.stored(), c.stored());
        assert_eq!(ThrottleKey::Ip("127.0.0.1".into()).stored(), "ip:127.0.0.1");
    }
}
