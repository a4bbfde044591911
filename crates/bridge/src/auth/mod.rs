//! Member sign-in: the WeCom OAuth flow (in-client and QR / web login), its `state`,
//! the callback's checks, and member sessions.
//!
//! - `state` is stateless and MAC'd (`domain::oauth_state`): starting a sign-in writes
//!   nothing. Each sign-in sets a fresh random binding cookie (with the return path);
//!   the state carries its hash. The callback checks the tag, the age and the binding
//!   before it consumes anything, then records the state's id as redeemed, so a state
//!   works once, on whichever instance receives the callback, and only in the browser
//!   that started it.
//! - A session is a row in `user_sessions` (SHA-256 of a random id) and a cookie carrying
//!   (id, tenant, user, created, last seen) signed with a key shared through the store.
//!   Checking it costs an HMAC and a hash-set look-up, no database round trip: ended
//!   sessions (logout, revocation, a user losing authorization — a trigger logs every
//!   deleted session row) reach each instance through the revocation log, read at most
//!   `member_session_revocation_poll_ms` apart, and at once on the instance that ended them.

use crate::app::{AppState, OpenedIntegration};
use crate::domain::audit::NewAudit;
use crate::domain::console_values::OAUTH_CALLBACK_PATH;
use crate::domain::login::{
    self, DomainProblem, Freshness, RevocationLog, SessionClaims, SessionLimits, SignInOutcome,
    WecomIdentity,
};
use crate::domain::now_ms;
use crate::domain::oauth_state::{self, BindingError, OAuthState};
use crate::domain::return_path;
use crate::domain::tenant::Tenant;
use crate::domain::user::DisabledReason;
use crate::store::{NewUserSession, StoreError};
use rand::RngCore;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub mod consent;

/// The member-session cookie.
pub const SESSION_COOKIE: &str = "wb_session";
/// Binds a sign-in in progress to the browser that started it (plain HTTP).
pub const BINDING_COOKIE: &str = "wb_oauth";
/// The same under HTTPS: a `__Host-` cookie cannot be set by a sibling subdomain.
pub const BINDING_COOKIE_HTTPS: &str = "__Host-wb_oauth";
/// How long a sign-in may take between leaving for WeCom and coming back.
pub const STATE_TTL_MS: i64 = oauth_state::TTL_MS;
/// `Sealer::derive_key` purpose of the state's MAC key.
const STATE_KEY_PURPOSE: &str = "member-oauth-state";
/// A hole in the revocation log is waited for this long before it is stepped over.
const GAP_GRACE_MS: i64 = 10 * 60 * 1000;
/// The member-session key's seal context (also the start-up key check's, in `app`).
pub(crate) const SEAL_CONTEXT: &str = "member-session-key";

/// Defined once, in `credentials`; re-exported for the callers of the member sign-in
/// and the OIDC provider.
pub use crate::credentials::{random_token, sha256_hex};

/// Why a sign-in did not produce a session. Each variant is its own page.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the sign-in came back without its state (or this browser's cookie)")]
    StateMissing,
    #[error("the sign-in state is unknown, expired or already used")]
    StateInvalid,
    #[error("the sign-in was started in another browser or for another organisation")]
    StateForeign,
    #[error("sign-in was cancelled in WeCom")]
    Cancelled,
    #[error("WeCom sign-in is turned off for the workbench")]
    SourceOff,
    #[error("the WeCom integration is not set up")]
    NotConfigured,
    #[error("the redirect URI does not match the trusted domain: {0:?}")]
    Domain(DomainProblem),
    #[error("WeCom refused the sign-in code: {}", .0.title_en)]
    Code(wecom::Explanation),
    #[error("WeCom: {}", .0.title_en)]
    Wecom(wecom::Explanation),
    #[error("not in this organisation's directory")]
    NotInDirectory {
        outsider: bool,
        userid: Option<String>,
    },
    #[error("not authorized")]
    Unauthorized { userid: String },
    #[error("account disabled")]
    Disabled {
        userid: String,
        reason: Option<DisabledReason>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// How the member reached WeCom.
pub use oauth_state::Flow as Via;

/// The callback URL WeCom redirects to: always from the tenant's configured domain,
/// never from the request's Host.
pub fn redirect_uri(st: &AppState, tenant: &Tenant) -> Option<String> {
    tenant
        .domain
        .as_ref()
        .map(|d| format!("{}{OAUTH_CALLBACK_PATH}", st.cfg.base_url_for(d)))
}

/// The trusted domain WeCom reported at the last agent/get, if known.
pub fn snapshot_trusted_domain(agent_json: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(agent_json?).ok()?;
    v.get("redirect_domain")?.as_str().map(str::to_string)
}

pub fn secure_cookies(st: &AppState) -> bool {
    st.cfg.https()
}

/// The binding cookie's name: `__Host-wb_oauth` when the public URL is https (only
/// that name is read there), `wb_oauth` otherwise.
pub fn binding_cookie_name(st: &AppState) -> &'static str {
    if secure_cookies(st) {
        BINDING_COOKIE_HTTPS
    } else {
        BINDING_COOKIE
    }
}

/// The key of the sign-in state's MAC, derived from the instance key (the same on every
/// instance sharing it).
pub fn state_key(st: &AppState) -> [u8; 32] {
    st.sealer.derive_key(STATE_KEY_PURPOSE)
}

/// Loads and opens the WeCom app a sign-in goes through: the tenant's main app, or
/// (`agentid`) a model app's own app, bound to a catalogue app (issue 14).
pub async fn integration(
    st: &AppState,
    tenant: &Tenant,
    agentid: Option<u32>,
) -> Result<(OpenedIntegration, Option<String>), LoginError> {
    let rec = match agentid {
        None => st.store.main_integration(tenant.id).await?,
        Some(a) => st.store.integration(tenant.id, i64::from(a)).await?,
    }
    .ok_or(LoginError::NotConfigured)?;
    let opened = st
        .open_integration(&rec)
        .map_err(|e| LoginError::Internal(e.to_string()))?;
    Ok((opened, rec.agent_json))
}

/// Where to send the member, and the binding cookie (`Set-Cookie` value) to set.
pub struct Begin {
    pub location: String,
    pub binding_cookie: String,
}

/// Starts a WeCom sign-in: checks the domains, makes a fresh binding (cookie) and a
/// MAC'd state bound to it, builds WeCom's URL. Writes nothing. `agentid` names a model
/// app's own WeCom app (its home page); `None` is the main app.
pub async fn begin_wecom(
    st: &AppState,
    tenant: &Tenant,
    agentid: Option<u32>,
    request_host: &str,
    via: Via,
    return_to: &str,
    lang: wecom::oauth::Lang,
) -> Result<Begin, LoginError> {
    let (opened, agent_json) = integration(st, tenant, agentid).await?;
    let redirect = redirect_uri(st, tenant).ok_or(LoginError::NotConfigured)?;
    // agent/get reports the trusted domain only, which governs the in-client flow;
    // the web-login callback domain is not readable through the API.
    let trusted = match via {
        Via::Client => snapshot_trusted_domain(agent_json.as_deref()),
        Via::Qr => None,
    };
    login::check_redirect_domain(request_host, &redirect, trusted.as_deref())
        .map_err(LoginError::Domain)?;
    let return_to = return_path::or(return_to, return_path::MEMBER_DEFAULT);
    // A fresh binding for every sign-in, whatever the browser sent: a value planted
    // in the browser beforehand is never reused. The last sign-in started in a browser
    // is the one it can finish.
    let mut secret = [0u8; 32];
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let binding = oauth_state::binding_cookie(&secret, return_to);
    let state = OAuthState {
        tenant_id: tenant.id,
        agentid: opened.agentid,
        flow: via,
        issued_at: now_ms(),
        nonce,
        binding: oauth_state::binding_hash(&binding),
    }
    .encode(&state_key(st));
    let binding_cookie = crate::web::cookies::set(
        binding_cookie_name(st),
        &binding,
        Some((STATE_TTL_MS / 1000) as u64),
        secure_cookies(st),
    );
    let hosts = st.cfg.oauth_hosts();
    let scope = consent::scope(st, tenant, agentid, via).await?;
    let location = match via {
        Via::Client => wecom::oauth::authorize_url(
            &hosts,
            &opened.corpid,
            opened.agentid,
            &redirect,
            scope,
            &state,
        ),
        Via::Qr => wecom::oauth::web_login_url(
            &hosts,
            &opened.corpid,
            opened.agentid,
            &redirect,
            &state,
            lang,
        ),
    };
    Ok(Begin {
        location,
        binding_cookie,
    })
}

/// The callback's query, as WeCom sends it (unknown parameters ignored).
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
}

/// A successful sign-in.
pub struct SignedIn {
    pub return_to: String,
    pub session_cookie: String,
    pub user_id: i64,
}

/// What the callback cost, for the `Server-Timing` header: WeCom's share is measured
/// so the handler's own time can be told apart from it.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallbackTiming {
    pub wecom: Duration,
}

pub struct RequestInfo<'a> {
    pub binding: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// The callback: state, then the code, then the directory checks in the order.
pub async fn finish_wecom(
    st: &AppState,
    sessions: &MemberSessions,
    tenant: &Tenant,
    q: &CallbackQuery,
    req: &RequestInfo<'_>,
    timing: &mut CallbackTiming,
) -> Result<SignedIn, LoginError> {
    let state = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(LoginError::StateMissing)?;
    // Everything that can be checked without the database first: the tag, the age,
    // then the tenant and this browser's binding. A callback URL opened elsewhere
    // fails here and consumes nothing, so its owner can still finish.
    let now = now_ms();
    let claims = OAuthState::decode(&state_key(st), state.as_bytes())
        .and_then(|c| c.check_time(now).map(|_| c))
        .map_err(|_| LoginError::StateInvalid)?;
    claims
        .check_binding(tenant.id, req.binding)
        .map_err(|e| match e {
            BindingError::Missing => LoginError::StateMissing,
            BindingError::OtherTenant | BindingError::OtherBrowser => LoginError::StateForeign,
        })?;
    let return_to = req
        .binding
        .and_then(oauth_state::return_path_of)
        .and_then(|p| return_path::check(&p).map(str::to_string))
        .unwrap_or_else(|| return_path::MEMBER_DEFAULT.to_string());
    let via = claims.flow.as_str();
    let state_id = claims.id();
    // Then consume it (once, on any instance). The three are independent: one round
    // trip of latency instead of three.
    let (redeemed, config, integ) = tokio::join!(
        st.store
            .redeem_login_state(&state_id, claims.redeemable_until(), now),
        st.store
            .login_config(tenant.id, login::LoginTarget::Workbench),
        // The app the state was issued for: its code is exchanged with that app's token
        // (another app's would be refused, 50001).
        integration(st, tenant, Some(claims.agentid)),
    );
    if !redeemed? {
        return Err(LoginError::StateInvalid);
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or(LoginError::Cancelled)?;
    if !config?.is_enabled(login::IdentitySource::Wecom) {
        return Err(LoginError::SourceOff);
    }
    // The WeCom app was replaced or unbound meanwhile: its code cannot be exchanged.
    let (opened, _) = integ.map_err(|e| match e {
        LoginError::NotConfigured => LoginError::StateInvalid,
        e => e,
    })?;
    let client = st
        .wecom
        .get(&opened.corpid, &opened.secret)
        .map_err(|e| LoginError::Wecom(e.explain()))?;
    let t = Instant::now();
    let info = client.auth_getuserinfo(code).await;
    timing.wecom = t.elapsed();
    let mut user_ticket = None;
    let identity = match info {
        Ok(wecom::types::UserInfo::Member {
            userid,
            user_ticket: t,
        }) => {
            user_ticket = t;
            WecomIdentity::Member { userid }
        }
        Ok(wecom::types::UserInfo::NonMember { openid, .. }) => WecomIdentity::Outsider { openid },
        Err(e) => {
            return Err(match e.api().map(|a| a.errcode) {
                Some(40029) => LoginError::Code(e.explain()),
                _ => LoginError::Wecom(e.explain()),
            })
        }
    };
    let user = match &identity {
        WecomIdentity::Member { userid } => {
            st.store
                .user_by_wecom_userid(tenant.id, &opened.corpid, userid)
                .await?
        }
        WecomIdentity::Outsider { .. } => None,
    };
    let outcome = login::decide(&identity, user.as_ref());
    let (actor, userid) = match &identity {
        WecomIdentity::Member { userid } => (format!("wecom:{userid}"), Some(userid.clone())),
        WecomIdentity::Outsider { .. } => ("wecom:outsider".to_string(), None),
    };
    let denied = |why: &str| NewAudit {
        tenant_id: tenant.id,
        actor: actor.clone(),
        action: "member.login_denied",
        detail: why.to_string(),
        ip: req.ip.map(str::to_string),
    };
    match outcome {
        SignInOutcome::NotInDirectory { outsider } => {
            st.store.audit(&denied("not in the directory")).await?;
            Err(LoginError::NotInDirectory { outsider, userid })
        }
        SignInOutcome::Unauthorized { .. } => {
            st.store.audit(&denied("not authorized")).await?;
            Err(LoginError::Unauthorized {
                userid: userid.unwrap_or_default(),
            })
        }
        SignInOutcome::Disabled { reason, .. } => {
            st.store.audit(&denied("account disabled")).await?;
            Err(LoginError::Disabled {
                userid: userid.unwrap_or_default(),
                reason,
            })
        }
        SignInOutcome::SignedIn { user_id } => {
            // Only a consenting in-client sign-in carries a ticket (QR login never does).
            if let (Some(ticket), Some(userid)) = (user_ticket.as_deref(), userid.as_deref()) {
                let t = Instant::now();
                let member = consent::Member {
                    user_id,
                    userid,
                    actor: &actor,
                    ip: req.ip,
                };
                consent::fill(st, tenant, &client, ticket, &member).await;
                timing.wecom += t.elapsed();
            }
            let session_cookie = sessions
                .create(
                    st,
                    tenant.id,
                    user_id,
                    via,
                    req,
                    NewAudit {
                        tenant_id: tenant.id,
                        actor,
                        action: "member.login",
                        detail: format!("signed in via {via}"),
                        ip: req.ip.map(str::to_string),
                    },
                )
                .await?;
            Ok(SignedIn {
                return_to,
                session_cookie,
                user_id,
            })
        }
    }
}

/// A valid member session.
#[derive(Clone, Debug)]
pub struct CheckedSession {
    pub claims: SessionClaims,
    pub id_hash: String,
    /// A re-issued cookie (`Set-Cookie` value) when the last one is getting old.
    pub refresh: Option<String>,
}

/// Member sessions of one instance: the signing key (from the store, shared by every
/// instance) and this instance's copy of the revocation log.
pub struct MemberSessions {
    key: tokio::sync::OnceCell<[u8; 32]>,
    log: RwLock<RevocationLog>,
    last_poll: AtomicI64,
    last_prune: AtomicI64,
    poll_lock: tokio::sync::Mutex<()>,
    limits: SessionLimits,
    poll_ms: i64,
    secure: bool,
}

impl MemberSessions {
    pub fn new(cfg: &crate::config::Config) -> Arc<Self> {
        let idle_ms = cfg.member_session_idle_secs as i64 * 1000;
        Arc::new(MemberSessions {
            key: tokio::sync::OnceCell::new(),
            log: RwLock::new(RevocationLog::default()),
            last_poll: AtomicI64::new(i64::MIN / 2),
            last_prune: AtomicI64::new(0),
            poll_lock: tokio::sync::Mutex::new(()),
            limits: SessionLimits {
                idle_ms,
                max_ms: cfg.member_session_max_secs as i64 * 1000,
                // Re-issue at most once a minute, and well within the idle window.
                refresh_ms: (idle_ms / 4).clamp(1, 60_000),
            },
            poll_ms: cfg.member_session_revocation_poll_ms as i64,
            secure: cfg.https(),
        })
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    async fn key(&self, st: &AppState) -> Result<&[u8; 32], LoginError> {
        self.key
            .get_or_try_init(|| async {
                let sealed = st
                    .store
                    .session_key_sealed(|| {
                        let mut k = [0u8; 32];
                        rand::rngs::OsRng.fill_bytes(&mut k);
                        st.sealer.seal(SEAL_CONTEXT, &k)
                    })
                    .await?;
                let raw = st
                    .sealer
                    .open(SEAL_CONTEXT, &sealed)
                    .map_err(|e| LoginError::Internal(format!("session key: {e}")))?;
                <[u8; 32]>::try_from(raw.as_slice())
                    .map_err(|_| LoginError::Internal("session key: wrong length".into()))
            })
            .await
    }

    fn cookie(&self, value: &str) -> String {
        crate::web::cookies::set(
            SESSION_COOKIE,
            value,
            Some((self.limits.max_ms / 1000) as u64),
            self.secure,
        )
    }

    pub fn clear_cookie(&self) -> String {
        crate::web::cookies::clear(SESSION_COOKIE, self.secure)
    }

    /// Creates the session row (with last login and the audit entry) and returns the
    /// `Set-Cookie` value.
    async fn create(
        &self,
        st: &AppState,
        tenant_id: i64,
        user_id: i64,
        via: &str,
        req: &RequestInfo<'_>,
        audit: NewAudit,
    ) -> Result<String, LoginError> {
        let key = self.key(st).await?;
        let sid = random_token();
        // The state's clock: session lifetimes are what tests move instead of sleeping.
        let now = st.clock.now_ms();
        let id_hash = sha256_hex(&sid);
        st.store
            .start_user_session(
                &NewUserSession {
                    id_hash: &id_hash,
                    tenant_id,
                    user_id,
                    via,
                    now,
                    ip: req.ip,
                    user_agent: req.user_agent.map(|u| truncate(u, 512)),
                },
                &audit,
            )
            .await?;
        let claims = SessionClaims {
            sid,
            tenant_id,
            user_id,
            created_at: now,
            seen_at: now,
        };
        Ok(self.cookie(&claims.sign(key)))
    }

    /// Checks a session cookie for `tenant_id` at `now`. No database round trip unless
    /// the revocation log is due for a read or the cookie is due for re-issue.
    pub async fn check(
        &self,
        st: &AppState,
        tenant: &Tenant,
        cookie: Option<&str>,
        now: i64,
    ) -> Result<Option<CheckedSession>, LoginError> {
        let tenant_id = tenant.id;
        let Some(cookie) = cookie else {
            return Ok(None);
        };
        let key = self.key(st).await?;
        let Some(claims) = SessionClaims::verify(key, cookie) else {
            return Ok(None);
        };
        if claims.tenant_id != tenant_id {
            return Ok(None);
        }
        let limits = self.limits.with_idle_secs(tenant.member_session_idle_secs);
        let refresh = match login::freshness(&claims, now, &limits) {
            Freshness::Expired => return Ok(None),
            Freshness::Valid { refresh } => refresh,
        };
        self.poll_if_due(st, now).await?;
        let id_hash = sha256_hex(&claims.sid);
        if self
            .log
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_revoked(&id_hash)
        {
            return Ok(None);
        }
        let refresh = if refresh {
            // Past the revocation check, the stored row must still exist: a session
            // pruned or ended before this instance's log window does not come back.
            if !st.store.user_session_exists(&id_hash).await? {
                return Ok(None);
            }
            st.store.touch_user_session(&id_hash, now).await?;
            let renewed = SessionClaims {
                seen_at: now,
                ..claims.clone()
            };
            Some(self.cookie(&renewed.sign(key)))
        } else {
            None
        };
        Ok(Some(CheckedSession {
            claims,
            id_hash,
            refresh,
        }))
    }

    async fn poll_if_due(&self, st: &AppState, now: i64) -> Result<(), LoginError> {
        if now - self.last_poll.load(Ordering::Acquire) < self.poll_ms {
            return Ok(());
        }
        let _g = self.poll_lock.lock().await;
        if now - self.last_poll.load(Ordering::Acquire) < self.poll_ms {
            return Ok(());
        }
        self.poll(st).await
    }

    /// Reads the revocation log now (after ending sessions on this instance, so they
    /// stop working here at once).
    pub async fn poll(&self, st: &AppState) -> Result<(), LoginError> {
        let started = now_ms();
        let mut from = self
            .log
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .read_from();
        let mut rows = Vec::new();
        const PAGE: i64 = 5000;
        loop {
            let page = st.store.revocations_after(from, PAGE).await?;
            let n = page.len() as i64;
            if let Some(last) = page.last() {
                from = last.id;
            }
            rows.extend(page);
            if n < PAGE {
                break;
            }
        }
        {
            let mut log = self.log.write().unwrap_or_else(|e| e.into_inner());
            log.apply(&rows, started, GAP_GRACE_MS);
            // Cookies older than the absolute lifetime are refused anyway; the margin
            // covers clock skew between the database and this instance.
            log.prune(started - self.limits.max_ms - 5 * 60_000);
        }
        self.last_poll.store(started, Ordering::Release);
        if started - self.last_prune.load(Ordering::Relaxed) > 10 * 60_000 {
            self.last_prune.store(started, Ordering::Relaxed);
            st.store
                .prune_member_sessions(
                    started - self.limits.max_ms,
                    started - self.limits.max_ms - 10 * 60_000,
                )
                .await?;
        }
        Ok(())
    }

    /// Ends one session (logout or revocation) and makes it stop here at once.
    pub async fn end(
        &self,
        st: &AppState,
        tenant_id: i64,
        id_hash: &str,
    ) -> Result<bool, LoginError> {
        let ended = st.store.delete_user_session(tenant_id, id_hash).await?;
        self.poll(st).await?;
        Ok(ended)
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
