//! Admin operations behind the JSON API (and its keys): no HTTP here. Each change is
//! audited with the acting key (`api-key:<id>:<name>`) or admin.

pub mod account;
pub mod cli;
pub mod export;
pub mod import;
pub mod policy;

use crate::app::AppState;
use crate::domain::api_key::{check_name, ApiKey, Bucket, Scope, TOKEN_PREFIX};
use crate::domain::audit::NewAudit;
use crate::domain::login::{IdentitySource, LoginConfig, LoginConfigError, LoginTarget};
use crate::domain::user::{DisabledReason, User, UserStatus};
use crate::store::{StoreError, UserCursorQuery, UserFilter};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    /// No key, an unknown one, or a revoked one.
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("this API key is read-only; this call needs a read_write key")]
    ReadOnly,
    #[error("too many requests with this API key; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

type Result<T> = std::result::Result<T, AdminError>;

/// A key just created: its record and the token, shown once.
pub struct CreatedKey {
    pub key: ApiKey,
    pub token: String,
}

pub fn key_actor(k: &ApiKey) -> String {
    format!("api-key:{}:{}", k.id, k.name)
}

/// Creates a key; the token is `wbk_` and 43 characters of base64url (256 random bits).
pub async fn create_key(
    st: &AppState,
    tenant_id: i64,
    name: &str,
    scope: Scope,
    actor: &str,
    ip: Option<String>,
) -> Result<CreatedKey> {
    use base64::Engine as _;
    let name = check_name(name).map_err(AdminError::Invalid)?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    );
    let prefix: String = token.chars().take(12).collect();
    let hash = crate::auth::sha256_hex(&token);
    let id = st
        .store
        .create_api_key(tenant_id, &name, &prefix, &hash, scope, actor)
        .await?;
    st.store
        .audit(&NewAudit {
            tenant_id,
            actor: actor.to_string(),
            action: "api_key.created",
            detail: format!("key {id} {name:?} ({prefix}…), scope {}", scope.as_str()),
            ip,
        })
        .await?;
    let key = st
        .store
        .list_api_keys(tenant_id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| AdminError::Internal("the new key vanished".into()))?;
    Ok(CreatedKey { key, token })
}

pub async fn revoke_key(
    st: &AppState,
    tenant_id: i64,
    id: i64,
    actor: &str,
    ip: Option<String>,
) -> Result<ApiKey> {
    let k = st
        .store
        .revoke_api_key(tenant_id, id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("live API key {id}")))?;
    st.store
        .audit(&NewAudit {
            tenant_id,
            actor: actor.to_string(),
            action: "api_key.revoked",
            detail: format!("key {} {:?} ({}…)", k.id, k.name, k.prefix),
            ip,
        })
        .await?;
    Ok(k)
}

/// Rate limits per key, in this instance's memory: each instance allows the burst and
/// the rate on its own (N instances behind a balancer allow up to N times as much).
pub struct RateLimiter {
    burst: u32,
    per_sec: f64,
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl RateLimiter {
    pub fn new(burst: u32, per_minute: u32) -> Self {
        RateLimiter {
            burst: burst.max(1),
            per_sec: per_minute as f64 / 60.0,
            buckets: Mutex::default(),
        }
    }

    pub fn check(&self, key_id: i64, now_ms: i64) -> Result<()> {
        let mut m = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = m
            .entry(key_id)
            .or_insert_with(|| Bucket::full(self.burst, now_ms));
        b.take(self.burst, self.per_sec, now_ms)
            .map_err(|ms| AdminError::RateLimited {
                retry_after_secs: ms.div_ceil(1000).max(1),
            })
    }
}

/// The live key of `tenant_id` behind a bearer token, its use recorded.
pub async fn authenticate(st: &AppState, tenant_id: i64, token: Option<&str>) -> Result<ApiKey> {
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AdminError::Unauthenticated(
            "send an API key as `Authorization: Bearer <key>` (create one in the console under API keys)",
        ))?;
    let hash = crate::auth::sha256_hex(token);
    let key = st
        .store
        .api_key_by_hash(&hash)
        .await?
        .filter(|k| k.tenant_id == tenant_id)
        .ok_or(AdminError::Unauthenticated(
            "unknown API key for this organisation",
        ))?;
    if !key.active() {
        return Err(AdminError::Unauthenticated("this API key was revoked"));
    }
    let now = crate::domain::now_ms();
    if key.last_used_at.is_none_or(|t| t < now - 60_000) {
        st.store.touch_api_key(key.id, now).await?;
    }
    Ok(key)
}

/// A status change for some users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusAction {
    Authorize,
    Unauthorize,
    Disable,
}

impl StatusAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Unauthorize => "unauthorize",
            Self::Disable => "disable",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorize" => Some(Self::Authorize),
            "unauthorize" => Some(Self::Unauthorize),
            "disable" => Some(Self::Disable),
            _ => None,
        }
    }
    fn target(self) -> (UserStatus, Option<DisabledReason>, &'static str) {
        match self {
            Self::Authorize => (UserStatus::Authorized, None, "user.authorized"),
            Self::Unauthorize => (UserStatus::Unauthorized, None, "user.unauthorized"),
            Self::Disable => (
                UserStatus::Disabled,
                Some(DisabledReason::Admin),
                "user.disabled",
            ),
        }
    }
}

/// What a status change did (or, dry, would do).
pub struct StatusChange {
    pub matched: usize,
    /// Users whose status differs from the target: changed, or would be.
    pub changing: Vec<i64>,
    pub applied: bool,
}

/// Whom a status change is for: users named by id (at most 500), or everyone matching a
/// filter (the Users page's or the API's; at most [`FILTER_LIMIT`]).
#[derive(Clone, Debug)]
pub enum Selection<'a> {
    Ids(&'a [i64]),
    /// The API's and the CLI's filter (a department with its subtree).
    Filter(UserCursorQuery),
    /// The console Users page's filter (a department's direct members), as listed there.
    Page(UserFilter),
}

/// Users one filtered status change may reach: beyond it, narrow the filter.
pub const FILTER_LIMIT: usize = 100_000;

/// A status change asked for: these users, this action, or only a count.
pub struct StatusOrder<'a> {
    pub selection: Selection<'a>,
    pub action: StatusAction,
    pub dry_run: bool,
}

/// The users a selection names, in id order. An unknown id is an error (nothing changes).
pub async fn select_users(
    st: &AppState,
    tenant_id: i64,
    selection: &Selection<'_>,
) -> Result<Vec<User>> {
    match selection {
        Selection::Ids(ids) => {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                return Err(AdminError::Invalid(
                    "no users named: give user ids, or a filter".into(),
                ));
            }
            if ids.len() > 500 {
                return Err(AdminError::Invalid(
                    "at most 500 user ids at a time; for more, use a filter".into(),
                ));
            }
            let users = st.store.users_by_ids(tenant_id, &ids).await?;
            if let Some(missing) = ids.iter().find(|id| !users.iter().any(|u| u.id == **id)) {
                return Err(AdminError::NotFound(format!("user {missing}")));
            }
            Ok(users)
        }
        Selection::Filter(q) => {
            let mut out = Vec::new();
            let mut q = q.clone();
            q.after_id = 0;
            q.limit = 1000;
            loop {
                let page = st.store.users_by_cursor(tenant_id, &q).await?;
                let Some(last) = page.last() else { break };
                q.after_id = last.id;
                out.extend(page);
                if out.len() > FILTER_LIMIT {
                    return Err(AdminError::Invalid(format!(
                        "the filter matches more than {FILTER_LIMIT} users; narrow it"
                    )));
                }
            }
            Ok(out)
        }
        Selection::Page(f) => {
            let mut f = f.clone();
            f.limit = 1000;
            f.offset = 0;
            let mut out = Vec::new();
            loop {
                let (page, total) = st.store.list_users(tenant_id, &f).await?;
                if total as usize > FILTER_LIMIT {
                    return Err(AdminError::Invalid(format!(
                        "the filter matches more than {FILTER_LIMIT} users; narrow it"
                    )));
                }
                let n = page.len() as i64;
                out.extend(page);
                if n < f.limit {
                    break;
                }
                f.offset += n;
            }
            out.sort_by_key(|u| u.id);
            out.dedup_by_key(|u| u.id);
            Ok(out)
        }
    }
}

/// Authorizes, unauthorizes or disables the users selected; a dry run only counts. The
/// change and one audit entry per changed user commit together, and this instance's
/// session cache drops the sessions that ended.
pub async fn change_status(
    st: &AppState,
    sessions: &crate::auth::MemberSessions,
    tenant_id: i64,
    order: StatusOrder<'_>,
    actor: &str,
    ip: Option<String>,
) -> Result<StatusChange> {
    let users = select_users(st, tenant_id, &order.selection).await?;
    let (status, reason, audit_action) = order.action.target();
    let changing: Vec<&User> = users.iter().filter(|u| u.status != status).collect();
    let out = StatusChange {
        matched: users.len(),
        changing: changing.iter().map(|u| u.id).collect(),
        applied: !order.dry_run,
    };
    if order.dry_run || users.is_empty() {
        return Ok(out);
    }
    let audits: Vec<NewAudit> = changing
        .iter()
        .map(|u| NewAudit {
            tenant_id,
            actor: actor.to_string(),
            action: audit_action,
            detail: format!(
                "user {} ({}): {} → {}",
                u.id,
                u.name,
                u.status.as_str(),
                status.as_str()
            ),
            ip: ip.clone(),
        })
        .collect();
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    st.store
        .set_users_status_audited(tenant_id, &ids, status, reason, &audits)
        .await?;
    // Unauthorized and disabled users lose their sessions (by trigger); make that take
    // effect on this instance now rather than at the next log read.
    sessions
        .poll(st)
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    Ok(out)
}

/// Sets the workbench's identity sources; at least one must stay on.
pub async fn set_login_config(
    st: &AppState,
    tenant_id: i64,
    sources: &[(IdentitySource, bool)],
    actor: &str,
    ip: Option<String>,
) -> Result<LoginConfig> {
    let before = st
        .store
        .login_config(tenant_id, LoginTarget::Workbench)
        .await?;
    let mut config = before.clone();
    for (s, on) in sources {
        config.set(*s, *on);
    }
    if let Err(LoginConfigError::NoneEnabled) = config.validate() {
        return Err(AdminError::Invalid(
            "turn on at least one identity source, or nobody can sign in".into(),
        ));
    }
    let describe = |c: &LoginConfig| {
        c.sources
            .iter()
            .map(|(s, on)| format!("{}={}", s.as_str(), if *on { "on" } else { "off" }))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let entry = NewAudit {
        tenant_id,
        actor: actor.to_string(),
        action: "login_config.changed",
        detail: format!("workbench: {} → {}", describe(&before), describe(&config)),
        ip,
    };
    st.store
        .set_login_config(
            tenant_id,
            LoginTarget::Workbench,
            &config,
            actor,
            Some(&entry),
        )
        .await?;
    Ok(config)
}
