//! Admin API keys: a scope, a token shown once (only its SHA-256 is kept), revocation,
//! and a per-key token bucket for rate limits.

use serde::{Deserialize, Serialize};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// GET only.
    Read,
    /// Everything the API offers.
    ReadWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::ReadWrite => "read_write",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "read_write" => Some(Scope::ReadWrite),
            _ => None,
        }
    }
    pub fn can_write(self) -> bool {
        self == Scope::ReadWrite
    }
}

/// Every token starts with this, so a leaked one is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "wbk_";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    /// The token's first 12 characters (`wbk_` and 8 more), shown in the console.
    pub prefix: String,
    pub scope: Scope,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    pub fn active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A key's name: 1..=100 characters after trimming.
pub fn check_name(name: &str) -> Result<String, String> {
    let n = name.trim();
    if n.is_empty() {
        return Err("name the key (e.g. what script uses it)".into());
    }
    if n.chars().count() > 100 {
        return Err("the name is longer than 100 characters".into());
    }
    Ok(n.to_string())
}

/// A token bucket: `burst` requests at once, refilled at `per_sec`.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    at_ms: i64,
}

impl Bucket {
    pub fn full(burst: u32, now_ms: i64) -> Self {
        Bucket {
            tokens: burst as f64,
            at_ms: now_ms,
        }
    }

    /// Takes one token; `Err(ms until one is available)` when empty.
    pub fn take(&mut self, burst: u32, per_sec: f64, now_ms: i64) -> Result<(), u64> {
        let elapsed = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * per_sec).min(burst as f64);
        self.at_ms = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if per_sec <= 0.0 {
            Err(60_000)
        } else {
            Err((((1.0 - self.tokens) / per_sec) * 1000.0).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_and_refills() {
        let mut b = Bucket::full(3, 0);
        for _ in 0..3 {
            b.take(3, 2.0, 0).unwrap();
        }
        assert_eq!(b.take(3, 2.0, 0), Err(500));
        assert_eq!(b.take(3, 2.0, 250), Err(250));
        b.take(3, 2.0, 500).unwrap();
        // Never more than the burst, however long it rested.
        let mut b = Bucket::full(2, 0);
        b.take(2, 1.0, 3_600_000).unwrap();
        b.take(2, 1.0, 3_600_000).unwrap();
        assert!(b.take(2, 1.0, 3_600_000).is_err());
    }

    #[test]
    fn scopes_and_names() {
        assert_eq!(Scope::parse("read"), Some(Scope::Read));
        assert_eq!(Scope::parse("admin"), None);
        assert!(!Scope::Read.can_write() && Scope::ReadWrite.can_write());
        assert!(check_name("  ").is_err());
        assert_eq!(check_name(" ci ").unwrap(), "ci");
        assert!(check_name(&"x".repeat(101)).is_err());
    }
}
