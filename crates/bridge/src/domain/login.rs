//! Sign-in rules without I/O: identity sources and the login configuration, the
//! trusted-domain pre-check, the outcome of a WeCom sign-in, member-session
//! cookies (signed claims, idle and absolute lifetimes) and the revocation log reader.

use crate::domain::user::{DisabledReason, User, UserStatus};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

// ---------------------------------------------------------------------------------------
// Login configuration

/// A way to sign in. New sources are new variants (and rows); nothing else changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentitySource {
    /// WeCom: silent in-client authorization, or QR / web login in a browser.
    Wecom,
    /// Username and password (the console's admin accounts).
    Password,
}

impl IdentitySource {
    pub const ALL: [IdentitySource; 2] = [IdentitySource::Wecom, IdentitySource::Password];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySource::Wecom => "wecom",
            IdentitySource::Password => "password",
        }
    }

    /// Before an admin saves the configuration: password only; the admin ticks WeCom in
    /// step 5 of the guide.
    pub fn default_enabled(self) -> bool {
        match self {
            IdentitySource::Wecom => false,
            IdentitySource::Password => true,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            IdentitySource::Wecom => "企业微信",
            IdentitySource::Password => "账号密码（管理员账号）",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            IdentitySource::Wecom => "WeCom",
            IdentitySource::Password => "Username and password (admin accounts)",
        }
    }
}

impl FromStr for IdentitySource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        IdentitySource::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown identity source {s:?}"))
    }
}

/// What a login configuration applies to: the workbench now, single apps later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoginTarget {
    Workbench,
    App(i64),
}

impl LoginTarget {
    pub fn key(self) -> String {
        match self {
            LoginTarget::Workbench => "workbench".into(),
            LoginTarget::App(id) => format!("app:{id}"),
        }
    }
}

/// Which identity sources are on for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginConfig {
    /// Every known source, in `IdentitySource::ALL` order.
    pub sources: Vec<(IdentitySource, bool)>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            sources: IdentitySource::ALL
                .iter()
                .map(|s| (*s, s.default_enabled()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginConfigError {
    #[error("turn on at least one identity source, or nobody can sign in")]
    NoneEnabled,
}

impl LoginConfig {
    /// The stored rows over the defaults (unknown source names are ignored: a newer
    /// instance may have written them).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a str, bool)>) -> Self {
        let mut c = LoginConfig::default();
        for (name, on) in rows {
            if let Ok(src) = name.parse::<IdentitySource>() {
                c.set(src, on);
            }
        }
        c
    }

    pub fn is_enabled(&self, s: IdentitySource) -> bool {
        self.sources.iter().any(|(x, on)| *x == s && *on)
    }

    pub fn set(&mut self, s: IdentitySource, on: bool) {
        for (x, v) in &mut self.sources {
            if *x == s {
                *v = on;
            }
        }
    }

    pub fn enabled(&self) -> impl Iterator<Item = IdentitySource> + '_ {
        self.sources.iter().filter(|(_, on)| *on).map(|(s, _)| *s)
    }

    pub fn validate(&self) -> Result<(), LoginConfigError> {
        if self.enabled().next().is_none() {
            return Err(LoginConfigError::NoneEnabled);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Trusted-domain pre-check (FAQ "redirect uri需使用应用可信域名")

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainProblem {
    /// The page was opened on another host than the one the bridge sends to WeCom as
    /// `redirect_uri`: the browser's cookies would not reach the callback.
    RequestHostDiffers {
        request_host: String,
        redirect_host: String,
    },
    /// WeCom's trusted domain (agent/get `redirect_domain`) is not exactly the
    /// `redirect_uri`'s host[:port]: WeCom would show its error page.
    TrustedDomainDiffers { trusted: String, needed: String },
}

/// Checks a `redirect_uri` before sending a member to WeCom. `trusted_domain` is the
/// last agent/get snapshot's `redirect_domain` (None when unknown: nothing to compare).
pub fn check_redirect_domain(
    request_host: &str,
    redirect_uri: &str,
    trusted_domain: Option<&str>,
) -> Result<(), DomainProblem> {
    let redirect_host = wecom::oauth::redirect_host_port(redirect_uri).unwrap_or_default();
    if !request_host.eq_ignore_ascii_case(&redirect_host) {
        return Err(DomainProblem::RequestHostDiffers {
            request_host: request_host.to_ascii_lowercase(),
            redirect_host,
        });
    }
    if let Some(t) = trusted_domain {
        if !wecom::oauth::domain_matches(t, redirect_uri) {
            return Err(DomainProblem::TrustedDomainDiffers {
                trusted: t.trim().to_string(),
                needed: redirect_host,
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Outcome of a WeCom sign-in

/// Who WeCom says signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WecomIdentity {
    Member {
        userid: String,
    },
    /// Not a member of the corp (auth/getuserinfo answered an openid).
    Outsider {
        openid: String,
    },
}

/// The checks of the callback, in the order the issue fixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignInOutcome {
    /// An outsider, or a userid the synced directory does not have.
    NotInDirectory {
        outsider: bool,
    },
    /// In the directory, but not (yet) authorized by an admin.
    Unauthorized {
        user_id: i64,
    },
    Disabled {
        user_id: i64,
        reason: Option<DisabledReason>,
    },
    SignedIn {
        user_id: i64,
    },
}

pub fn decide(identity: &WecomIdentity, user: Option<&User>) -> SignInOutcome {
    let user = match (identity, user) {
        (WecomIdentity::Outsider { .. }, _) => {
            return SignInOutcome::NotInDirectory { outsider: true }
        }
        (WecomIdentity::Member { .. }, None) => {
            return SignInOutcome::NotInDirectory { outsider: false }
        }
        (WecomIdentity::Member { .. }, Some(u)) => u,
    };
    match user.status {
        UserStatus::Unauthorized => SignInOutcome::Unauthorized { user_id: user.id },
        UserStatus::Disabled => SignInOutcome::Disabled {
            user_id: user.id,
            reason: user.disabled_reason,
        },
        UserStatus::Authorized => SignInOutcome::SignedIn { user_id: user.id },
    }
}

/// The guide's message for a member outside the authorized range, verbatim.
pub const UNAUTHORIZED_ZH: &str =
    "抱歉，您未在授权范围内，因此无法使用，如需使用请联系企业管理员授权";
pub const UNAUTHORIZED_EN: &str = "Sorry, you are not within the authorized range and cannot use this. To use it, ask your organisation's administrator to authorize you.";

// ---------------------------------------------------------------------------------------
// Member-session cookies

/// What a member-session cookie carries, signed with the instance-shared session key.
/// The server-side row (by SHA-256 of `sid`) is what an admin lists and revokes;
/// revocations reach every instance through the revocation log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionClaims {
    /// The random session id (base64url), as the cookie carries it.
    pub sid: String,
    pub tenant_id: i64,
    pub user_id: i64,
    pub created_at: i64,
    /// When the cookie was last re-issued (drives the idle timeout).
    pub seen_at: i64,
}

type HmacSha256 = Hmac<Sha256>;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl SessionClaims {
    fn payload(&self) -> String {
        format!(
            "v1.{}.{}.{}.{}.{}",
            self.sid, self.tenant_id, self.user_id, self.created_at, self.seen_at
        )
    }

    /// `payload.mac`, cookie-safe (base64url and digits).
    pub fn sign(&self, key: &[u8]) -> String {
        let payload = self.payload();
        let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
        mac.update(payload.as_bytes());
        format!("{payload}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// The claims of a cookie whose MAC checks out (compared in constant time).
    pub fn verify(key: &[u8], cookie: &str) -> Option<SessionClaims> {
        let (payload, mac_b64) = cookie.rsplit_once('.')?;
        let tag = B64.decode(mac_b64).ok()?;
        let mut mac = HmacSha256::new_from_slice(key).ok()?;
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).ok()?;
        let mut it = payload.split('.');
        if it.next()? != "v1" {
            return None;
        }
        let c = SessionClaims {
            sid: it.next()?.to_string(),
            tenant_id: it.next()?.parse().ok()?,
            user_id: it.next()?.parse().ok()?,
            created_at: it.next()?.parse().ok()?,
            seen_at: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(c)
    }
}

/// Member-session lifetimes, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    pub idle_ms: i64,
    pub max_ms: i64,
    /// Re-issue the cookie (and touch the stored row) at most this often.
    pub refresh_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    Valid { refresh: bool },
    Expired,
}

/// Reads the workbench session timeout an admin typed, in minutes: blank is the instance
/// default (`None`); otherwise 5 minutes to the absolute session lifetime.
pub fn parse_idle_minutes(input: &str, max_secs: u64) -> Result<Option<i64>, String> {
    let t = input.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let max_min = (max_secs / 60).max(5) as i64;
    match t.parse::<i64>() {
        Ok(m) if (5..=max_min).contains(&m) => Ok(Some(m * 60)),
        _ => Err(format!(
            "the session timeout must be a whole number of minutes from 5 to {max_min}, or blank for the default"
        )),
    }
}

impl SessionLimits {
    /// These limits with a tenant's own idle timeout (never past the absolute lifetime).
    pub fn with_idle_secs(self, idle_secs: Option<i64>) -> SessionLimits {
        match idle_secs {
            Some(s) if s > 0 => {
                let idle_ms = (s * 1000).min(self.max_ms);
                SessionLimits {
                    idle_ms,
                    refresh_ms: (idle_ms / 4).clamp(1, 60_000),
                    ..self
                }
            }
            _ => self,
        }
    }
}

pub fn freshness(c: &SessionClaims, now: i64, l: &SessionLimits) -> Freshness {
    if now - c.created_at >= l.max_ms || now - c.seen_at >= l.idle_ms || c.seen_at > now + 60_000 {
        return Freshness::Expired;
    }
    Freshness::Valid {
        refresh: now - c.seen_at >= l.refresh_ms,
    }
}

// ---------------------------------------------------------------------------------------
// Revocation log reader

/// One row of the revocation log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub id: i64,
    pub id_hash: String,
    pub at: i64,
}

/// The revoked session hashes one instance knows, and how far it has read the log.
///
/// Log ids are assigned at insert but become visible at commit, so on PostgreSQL a
/// smaller id can appear after a larger one. The reader keeps a watermark below which
/// every id has been seen, re-reads everything above it, and only steps over a hole
/// that stayed open for `gap_grace_ms` (a rolled-back transaction leaves one forever).
#[derive(Debug, Default)]
pub struct RevocationLog {
    revoked: HashMap<String, i64>,
    watermark: i64,
    above: BTreeSet<i64>,
    gap_since: Option<i64>,
    started: bool,
}

impl RevocationLog {
    /// Read the log from after this id.
    pub fn read_from(&self) -> i64 {
        self.watermark
    }

    pub fn is_revoked(&self, id_hash: &str) -> bool {
        self.revoked.contains_key(id_hash)
    }

    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }

    /// Applies the rows read (every row with id > `read_from()`, in any order).
    pub fn apply(&mut self, rows: &[Revocation], now: i64, gap_grace_ms: i64) {
        if !self.started {
            // The first rows ever read start the sequence: the log is pruned from
            // below (never its newest row), so older ids are gone, not pending.
            if let Some(min) = rows.iter().map(|r| r.id).min() {
                self.watermark = min - 1;
                self.started = true;
            }
        }
        for r in rows {
            self.revoked.entry(r.id_hash.clone()).or_insert(r.at);
            if r.id > self.watermark {
                self.above.insert(r.id);
            }
        }
        self.advance();
        if self.above.is_empty() {
            self.gap_since = None;
        } else {
            let since = *self.gap_since.get_or_insert(now);
            if now - since >= gap_grace_ms {
                // Long-open hole: a rolled-back insert. Step over it.
                if let Some(first) = self.above.first() {
                    self.watermark = first - 1;
                }
                self.advance();
                self.gap_since = (!self.above.is_empty()).then_some(now);
            }
        }
    }

    fn advance(&mut self) {
        while self.above.remove(&(self.watermark + 1)) {
            self.watermark += 1;
        }
    }

    /// Forgets revocations older than `before` (their cookies have expired anyway).
    pub fn prune(&mut self, before: i64) {
        self.revoked.retain(|_, at| *at >= before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(status: UserStatus) -> User {
        User {
            id: 7,
            tenant_id: 1,
            name: "张三".into(),
            status,
            disabled_reason: (status == UserStatus::Disabled).then_some(DisabledReason::Admin),
            position: String::new(),
            alias: String::new(),
            telephone: String::new(),
            mobile: None,
            email: None,
            main_department: None,
            wecom_status: Some(1),
            created_at: 0,
            updated_at: 0,
            last_login_at: None,
        }
    }

    #[test]
    fn outcomes_in_order() {
        let m = WecomIdentity::Member {
            userid: "zhangsan".into(),
        };
        let o = WecomIdentity::Outsider {
            openid: "o1".into(),
        };
        // An outsider never maps to a user, even if one were passed.
        assert_eq!(
            decide(&o, Some(&user(UserStatus::Authorized))),
            SignInOutcome::NotInDirectory { outsider: true }
        );
        assert_eq!(
            decide(&m, None),
            SignInOutcome::NotInDirectory { outsider: false }
        );
        assert_eq!(
            decide(&m, Some(&user(UserStatus::Unauthorized))),
            SignInOutcome::Unauthorized { user_id: 7 }
        );
        assert_eq!(
            decide(&m, Some(&user(UserStatus::Disabled))),
            SignInOutcome::Disabled {
                user_id: 7,
                reason: Some(DisabledReason::Admin)
            }
        );
        assert_eq!(
            decide(&m, Some(&user(UserStatus::Authorized))),
            SignInOutcome::SignedIn { user_id: 7 }
        );
    }

    #[test]
    fn login_config_rows_and_validation() {
        let c = LoginConfig::default();
        assert!(!c.is_enabled(IdentitySource::Wecom));
        assert!(c.is_enabled(IdentitySource::Password));
        let c = LoginConfig::from_rows([("wecom", true), ("password", false), ("ldap", true)]);
        assert!(c.is_enabled(IdentitySource::Wecom) && !c.is_enabled(IdentitySource::Password));
        assert_eq!(c.enabled().collect::<Vec<_>>(), vec![IdentitySource::Wecom]);
        let none = LoginConfig::from_rows([("wecom", false), ("password", false)]);
        assert_eq!(none.validate(), Err(LoginConfigError::NoneEnabled));
        assert_eq!(LoginTarget::App(3).key(), "app:3");
        assert!("nope".parse::<IdentitySource>().is_err());
    }

    #[test]
    fn domain_precheck() {
        let uri = "http://acme.localhost:8080/auth/wecom/callback";
        assert_eq!(
            check_redirect_domain("acme.localhost:8080", uri, None),
            Ok(())
        );
        assert_eq!(
            check_redirect_domain("ACME.localhost:8080", uri, Some("acme.localhost:8080")),
            Ok(())
        );
        assert!(matches!(
            check_redirect_domain("acme.localhost:9090", uri, None),
            Err(DomainProblem::RequestHostDiffers { .. })
        ));
        assert_eq!(
            check_redirect_domain("acme.localhost:8080", uri, Some("acme.localhost")),
            Err(DomainProblem::TrustedDomainDiffers {
                trusted: "acme.localhost".into(),
                needed: "acme.localhost:8080".into()
            })
        );
        assert!(check_redirect_domain("acme.localhost:8080", uri, Some("")).is_err());
    }

    fn claims() -> SessionClaims {
        SessionClaims {
            sid: "abc_-XYZ".into(),
            tenant_id: 1,
            user_id: 42,
            created_at: 1_000,
            seen_at: 2_000,
        }
    }

    #[test]
    fn cookies_verify_and_reject_tampering() {
        let key = [7u8; 32];
        let c = claims();
        let s = c.sign(&key);
        assert_eq!(SessionClaims::verify(&key, &s), Some(c.clone()));
        assert_eq!(SessionClaims::verify(&[8u8; 32], &s), None);
        let forged = s.replacen(".42.", ".43.", 1);
        assert_ne!(forged, s);
        assert_eq!(SessionClaims::verify(&key, &forged), None);
        assert_eq!(SessionClaims::verify(&key, "garbage"), None);
        assert_eq!(SessionClaims::verify(&key, ""), None);
        let truncated = &s[..s.len() - 2];
        assert_eq!(SessionClaims::verify(&key, truncated), None);
    }

    #[test]
    fn lifetimes() {
        let l = SessionLimits {
            idle_ms: 10_000,
            max_ms: 100_000,
            refresh_ms: 1_000,
        };
        let c = claims();
        assert_eq!(
            freshness(&c, 2_500, &l),
            Freshness::Valid { refresh: false }
        );
        assert_eq!(freshness(&c, 3_000, &l), Freshness::Valid { refresh: true });
        assert_eq!(freshness(&c, 12_000, &l), Freshness::Expired);
        let active = SessionClaims {
            seen_at: 100_500,
            ..c.clone()
        };
        assert_eq!(freshness(&active, 101_000, &l), Freshness::Expired);
        assert_eq!(
            freshness(&active, 100_900, &l),
            Freshness::Valid { refresh: false }
        );
    }

    fn rev(id: i64, h: &str) -> Revocation {
        Revocation {
            id,
            id_hash: h.into(),
            at: 1,
        }
    }

    #[test]
    fn revocation_log_waits_for_holes_then_steps_over() {
        let mut log = RevocationLog::default();
        log.apply(&[], 0, 100);
        assert_eq!(log.read_from(), 0);
        // First rows start the sequence, wherever it is.
        log.apply(&[rev(5, "a"), rev(6, "b")], 0, 100);
        assert_eq!(log.read_from(), 6);
        assert!(log.is_revoked("a") && log.is_revoked("b") && !log.is_revoked("c"));
        // 8 is visible before 7 commits: the watermark waits at 6.
        log.apply(&[rev(8, "d")], 10, 100);
        assert!(log.is_revoked("d"));
        assert_eq!(log.read_from(), 6);
        // 7 commits: everything up to 8 is accounted for.
        log.apply(&[rev(7, "c"), rev(8, "d")], 20, 100);
        assert_eq!(log.read_from(), 8);
        assert!(log.is_revoked("c"));
        // 9 never commits (rolled back): after the grace the reader steps over it.
        log.apply(&[rev(10, "e")], 30, 100);
        assert_eq!(log.read_from(), 8);
        log.apply(&[rev(10, "e")], 129, 100);
        assert_eq!(log.read_from(), 8);
        log.apply(&[rev(10, "e")], 130, 100);
        assert_eq!(log.read_from(), 10);
        log.prune(2);
        assert!(log.is_empty());
    }
}
