//! Secrets and passwords, in one place: random tokens, SHA-256 and constant-time
//! comparison, Argon2id password hashing, one-time passwords, and the throttle of
//! password sign-ins (issue 19 item 2, issue 13 item 2).
//!
//! Argon2 is deliberately slow (tens of milliseconds of a core, 19 MiB): every hash
//! and verify runs on the blocking pool behind one process-wide semaphore with as many
//! permits as the machine has cores, so a flood of sign-ins queues instead of taking
//! every core from the rest of the server.

use crate::domain::throttle::{self, ThrottleKey};
use crate::store::{Store, StoreError};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// 32 random bytes, base64url (43 characters).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Lower-case hex SHA-256 of a string (stored instead of tokens and session ids).
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Equal strings, compared in time independent of where they differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A readable one-time password: 4 groups of 4 unambiguous characters.
pub fn one_time_password() -> String {
    const CHARS: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let mut out = String::new();
    for g in 0..4 {
        if g > 0 {
            out.push('-');
        }
        for _ in 0..4 {
            out.push(CHARS[(rng.next_u32() as usize) % CHARS.len()] as char);
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("argon2: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

// ---------------------------------------------------------------------------------------
// Argon2 behind a semaphore

/// Runs blocking work on tokio's blocking pool, at most `permits` at a time.
#[derive(Clone, Debug)]
pub struct Limiter {
    permits: Arc<Semaphore>,
    size: usize,
}

impl Limiter {
    pub fn new(permits: usize) -> Self {
        let size = permits.max(1);
        Limiter {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// As many permits as the machine has cores (at least one).
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn permits(&self) -> usize {
        self.size
    }

    /// Waits for a permit, then runs `f` on the blocking pool.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CredentialsError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| CredentialsError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| CredentialsError::Hash(e.to_string()))
    }
}

/// The process's argon2 limiter: every password hash and check goes through it.
pub fn argon2_limiter() -> &'static Limiter {
    static LIMITER: LazyLock<Limiter> = LazyLock::new(Limiter::per_core);
    &LIMITER
}

/// Argon2id hash (PHC string) of `password`.
pub async fn hash_password(password: String) -> Result<String, CredentialsError> {
    argon2_limiter()
        .run(move || {
            use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
            let salt = SaltString::generate(&mut OsRng);
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| CredentialsError::Hash(e.to_string()))
        })
        .await?
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub async fn verify_password(password: String, hash: String) -> bool {
    argon2_limiter()
        .run(move || {
            use argon2::password_hash::{PasswordHash, PasswordVerifier};
            PasswordHash::new(&hash)
                .map(|h| {
                    argon2::Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// Sign-in throttling

/// A password check refused without running: some key is locked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
}

/// A key a failure locked out (to audit: one entry per lockout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockout {
    pub key: ThrottleKey,
    pub failures: i64,
    pub lock_ms: i64,
}

/// The keys of a password attempt: the client's IP (when known) and the account.
pub fn throttle_keys(ip: Option<&str>, tenant_id: i64, username: &str) -> Vec<ThrottleKey> {
    let mut keys = Vec::with_capacity(2);
    if let Some(ip) = ip {
        keys.push(ThrottleKey::Ip(ip.to_string()));
    }
    keys.push(ThrottleKey::Account {
        tenant_id,
        username: username.to_string(),
    });
    keys
}

/// Before any password is checked: refused while any of `keys` is locked at `now`.
pub async fn throttle_check(
    store: &Store,
    keys: &[ThrottleKey],
    now: i64,
) -> Result<Result<(), Throttled>, CredentialsError> {
    let stored: Vec<String> = keys.iter().map(ThrottleKey::stored).collect();
    let until = store.login_locked_until(&stored).await?;
    Ok(if until > now {
        Err(Throttled {
            retry_after_secs: throttle::retry_after_secs(until, now),
        })
    } else {
        Ok(())
    })
}

/// After a wrong password: counts it for every key, locks those past the free
/// failures, and returns the lockouts this failure started, and the `Retry-After`
/// if a key is now locked.
pub async fn throttle_failure(
    store: &Store,
    keys: &[ThrottleKey],
    now: i64,
) -> Result<(Vec<Lockout>, Option<Throttled>), CredentialsError> {
    let mut started = Vec::new();
    let mut longest = 0i64;
    for key in keys {
        let stored = key.stored();
        let failures = store
            .login_failure(&stored, now, now - throttle::FORGET_AFTER_MS)
            .await?;
        if let Some(lock_ms) = throttle::lock_after(failures) {
            longest = longest.max(lock_ms);
            if store.login_lock(&stored, now, now + lock_ms).await? {
                started.push(Lockout {
                    key: key.clone(),
                    failures,
                    lock_ms,
                });
            }
        }
    }
    let throttled = (longest > 0).then(|| Throttled {
        retry_after_secs: throttle::retry_after_secs(now + longest, now),
    });
    Ok((started, throttled))
}

/// After the right password: the account's count starts again (the IP's does not, or
/// one valid account would let its owner try others' passwords without limit).
pub async fn throttle_success(store: &Store, keys: &[ThrottleKey]) -> Result<(), StoreError> {
    for key in keys {
        if matches!(key, ThrottleKey::Account { .. }) {
            store.login_success(&key.stored()).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A flood of concurrent jobs never runs more than `permits` at once (and does use
    /// them all: the limit is not a lock).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn limiter_caps_concurrent_runs() {
        for permits in [1usize, 2, 3] {
            let limiter = Limiter::new(permits);
            let running = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            let jobs: Vec<_> = (0..24)
                .map(|_| {
                    let (l, running, peak) = (limiter.clone(), running.clone(), peak.clone());
                    tokio::spawn(async move {
                        l.run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(15));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                        .unwrap()
                    })
                })
                .collect();
            for j in jobs {
                j.await.unwrap();
            }
            assert_eq!(peak.load(Ordering::SeqCst), permits, "{permits} permits");
        }
        assert_eq!(Limiter::new(0).permits(), 1);
        assert!(argon2_limiter().permits() >= 1);
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), h.clone()).await);
        assert!(!verify_password("wrong".into(), h).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn helpers() {
        assert_eq!(random_token().len(), 43);
        assert_ne!(random_token(), random_token());
        assert!(ct_eq("abc", "abc") && !ct_eq("abc", "abd") && !ct_eq("abc", "ab"));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let p = one_time_password();
        assert_eq!(p.len(), 19);
        assert_eq!(p.split('-').count(), 4);
    }
}
