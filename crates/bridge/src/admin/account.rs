//! A console admin's own account: sign in, sign out, change the password. No HTTP here:
//! the console's handlers parse the form, call these and render. Every password check
//! is throttled per client IP and per account, and each change commits with its audit
//! entry in one transaction.

use crate::app::AppState;
use crate::credentials::{self, CredentialsError, Throttled};
use crate::domain::audit::NewAudit;
use crate::domain::throttle::ThrottleKey;
use crate::store::StoreError;

/// A new password's shortest length, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Sign-in: no such admin, or the wrong password (never says which).
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("the current password is wrong")]
    CurrentPasswordWrong,
    #[error("the password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the two entries differ")]
    Mismatch,
    /// At first sign-in the current password is the one-time one: it must not stay.
    #[error("the new password must differ from the current (or one-time) password")]
    Unchanged,
    #[error("too many wrong passwords; retry in {} s", .0.retry_after_secs)]
    Throttled(Throttled),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

type Result<T> = std::result::Result<T, AccountError>;

/// Who is asking, for the audit log and the throttle.
pub struct Caller<'a> {
    pub tenant_id: i64,
    pub ip: Option<&'a str>,
}

/// A session just started: the raw token for the cookie (only its SHA-256 is stored).
pub struct SignedIn {
    pub token: String,
    /// The one-time password must be replaced before anything else.
    pub must_change_password: bool,
}

/// Checks the password and starts a session. A locked-out IP or account is refused
/// before argon2 runs; an unknown username costs one argon2 run too, so timing does not
/// reveal who exists.
pub async fn sign_in(
    st: &AppState,
    by: Caller<'_>,
    username: &str,
    password: &str,
) -> Result<SignedIn> {
    let keys = credentials::throttle_keys(by.ip, by.tenant_id, username);
    credentials::throttle_check(&st.store, &keys, st.clock.now_ms())
        .await?
        .map_err(AccountError::Throttled)?;
    let record = st.store.admin_by_username(by.tenant_id, username).await?;
    let ok = match &record {
        Some(r) => credentials::verify_password(password.into(), r.password_hash.clone()).await,
        None => {
            credentials::hash_password(password.into()).await?;
            false
        }
    };
    let Some(admin) = record.filter(|_| ok) else {
        let actor = format!("anonymous:{username}");
        audit(
            st,
            &by,
            &actor,
            "admin.login_failed",
            "wrong username or password",
        )
        .await?;
        failed(st, &by, &keys, &actor).await?;
        return Err(AccountError::WrongCredentials);
    };
    credentials::throttle_success(&st.store, &keys).await?;
    let token = credentials::random_token();
    let entry = entry(
        &by,
        &format!("admin:{}", admin.username),
        "admin.login",
        "signed in with password",
    );
    st.store
        .create_admin_session(
            &credentials::sha256_hex(&token),
            admin.id,
            by.tenant_id,
            &credentials::random_token(),
            st.clock.now_ms(),
            by.ip,
            Some(&entry),
        )
        .await?;
    Ok(SignedIn {
        token,
        must_change_password: admin.must_change_password,
    })
}

/// Ends the session whose cookie hashes to `id_hash`.
pub async fn sign_out(st: &AppState, by: Caller<'_>, actor: &str, id_hash: &str) -> Result<()> {
    let entry = entry(&by, actor, "admin.logout", "");
    st.store.delete_admin_session(id_hash, Some(&entry)).await?;
    Ok(())
}

/// The change-password form, as typed.
pub struct NewPassword<'a> {
    pub current: &'a str,
    pub password: &'a str,
    pub confirm: &'a str,
}

/// Sets a new password and ends every session of this admin, the caller's included.
/// The current password proves it is the admin at the keyboard, not a borrowed session;
/// guessing it is throttled like signing in.
pub async fn change_password(
    st: &AppState,
    by: Caller<'_>,
    admin_id: i64,
    username: &str,
    actor: &str,
    form: NewPassword<'_>,
) -> Result<()> {
    let record = st
        .store
        .admin_by_username(by.tenant_id, username)
        .await?
        .filter(|r| r.id == admin_id)
        .ok_or_else(|| AccountError::Internal("the signed-in admin has no account".into()))?;
    let keys = credentials::throttle_keys(by.ip, by.tenant_id, &record.username);
    credentials::throttle_check(&st.store, &keys, st.clock.now_ms())
        .await?
        .map_err(AccountError::Throttled)?;
    if !credentials::verify_password(form.current.into(), record.password_hash.clone()).await {
        failed(st, &by, &keys, actor).await?;
        return Err(AccountError::CurrentPasswordWrong);
    }
    credentials::throttle_success(&st.store, &keys).await?;
    if form.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::TooShort);
    }
    if form.password != form.confirm {
        return Err(AccountError::Mismatch);
    }
    if credentials::verify_password(form.password.into(), record.password_hash.clone()).await {
        return Err(AccountError::Unchanged);
    }
    let hash = credentials::hash_password(form.password.into()).await?;
    let entry = entry(&by, actor, "admin.password_changed", "");
    st.store
        .set_admin_password(record.id, &hash, false, Some(&entry))
        .await?;
    Ok(())
}

/// Counts a wrong password against `keys` and audits each lockout it starts (once per
/// lockout); refused with `Retry-After` if a key is now locked.
async fn failed(st: &AppState, by: &Caller<'_>, keys: &[ThrottleKey], actor: &str) -> Result<()> {
    let (lockouts, throttled) =
        credentials::throttle_failure(&st.store, keys, st.clock.now_ms()).await?;
    for lock in lockouts {
        let detail = format!(
            "{} locked for {} s after {} failed password attempts",
            lock.key.describe(),
            (lock.lock_ms + 999) / 1000,
            lock.failures
        );
        audit(st, by, actor, "admin.login_locked", &detail).await?;
    }
    match throttled {
        Some(t) => Err(AccountError::Throttled(t)),
        None => Ok(()),
    }
}

fn entry(by: &Caller<'_>, actor: &str, action: &'static str, detail: &str) -> NewAudit {
    NewAudit {
        tenant_id: by.tenant_id,
        actor: actor.to_string(),
        action,
        detail: detail.to_string(),
        ip: by.ip.map(str::to_string),
    }
}

async fn audit(
    st: &AppState,
    by: &Caller<'_>,
    actor: &str,
    action: &'static str,
    detail: &str,
) -> Result<()> {
    st.store.audit(&entry(by, actor, action, detail)).await?;
    Ok(())
}
