//! The OpenID Connect provider's rules, without HTTP or SQL: registered clients, what an
//! authorization request may ask for (scopes, PKCE, prompt, max_age), when the member
//! must sign in again, and how a presented refresh token is judged.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An authorization code lives this long.
pub const CODE_TTL_MS: i64 = 60_000;
/// Access tokens and ID tokens.
pub const ACCESS_TTL_MS: i64 = 10 * 60_000;
pub const ID_TOKEN_TTL_MS: i64 = 10 * 60_000;
/// A refresh token unused this long expires.
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3_600_000;
/// A rotated refresh token presented again within this window is a client retrying after
/// a lost response, not a replay.
pub const REFRESH_GRACE_MS: i64 = 10_000;
/// An active signing key older than this is rotated when next used.
pub const KEY_ROTATE_AFTER_MS: i64 = 90 * 24 * 3_600_000;
/// A retired key stays in the JWKS this long: every token it signed has expired by then
/// (with a margin for clock skew between instances and relying parties).
pub const RETIRED_KEY_PUBLISHED_MS: i64 = ID_TOKEN_TTL_MS + 5 * 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// Has a secret (a server-side app).
    Confidential,
    /// Cannot keep a secret (a SPA, a mobile app): PKCE S256 is required.
    Public,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Confidential => "confidential",
            ClientKind::Public => "public",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confidential" => Some(ClientKind::Confidential),
            "public" => Some(ClientKind::Public),
            _ => None,
        }
    }
}

/// The JWS algorithms the provider signs ID tokens with. Never `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    Rs256,
    Es256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::Rs256, SigningAlg::Es256];
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RS256" => Some(SigningAlg::Rs256),
            "ES256" => Some(SigningAlg::Es256),
            _ => None,
        }
    }
}

/// A relying party registered in the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub tenant_id: i64,
    /// The catalogue app the client belongs to; its access policy applies.
    pub app_id: Option<i64>,
    pub name: String,
    pub kind: ClientKind,
    /// SHA-256 (hex) of the secret; `None` for public clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub id_token_alg: SigningAlg,
    /// Opt-in: `userid@email_domain` with `email_verified=false` when WeCom gives no email.
    pub synthesize_email: bool,
    pub email_domain: String,
    /// `groups` carries departments as full paths (`研发中心/后端组`) instead of names.
    pub groups_full_path: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Client {
    /// Exact string comparison (RFC 9700 §4.1.3): no prefix, no normalisation.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == uri)
    }
    pub fn has_post_logout_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|u| u == uri)
    }
    /// Whether `secret` is this client's secret (constant time).
    pub fn secret_matches(&self, secret: &str) -> bool {
        match &self.secret_hash {
            Some(h) => {
                let got = hex::encode(Sha256::digest(secret.as_bytes()));
                got.as_bytes().ct_eq(h.as_bytes()).into()
            }
            None => false,
        }
    }
}

/// A client secret's stored form. Secrets are 256 random bits, so a plain SHA-256 resists
/// guessing as well as a slow hash would, and keeps the token endpoint fast.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks a redirect URI at registration: absolute, http(s), no fragment (RFC 6749 §3.1.2).
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URL"))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(format!(
            "{uri:?}: only http and https redirect URIs are accepted"
        ));
    }
    if uri.contains('#') {
        return Err(format!(
            "{uri:?}: a redirect URI must not contain a fragment"
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{uri:?} has no host"));
    }
    Ok(())
}

/// The scopes the provider understands; others are ignored (OIDC core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scopes {
    pub openid: bool,
    pub profile: bool,
    pub email: bool,
    /// OIDC Core §5.4: `phone_number`, `phone_number_verified`.
    pub phone: bool,
    pub groups: bool,
    pub offline_access: bool,
}

impl Scopes {
    pub const SUPPORTED: [&'static str; 6] = [
        "openid",
        "profile",
        "email",
        "phone",
        "groups",
        "offline_access",
    ];

    pub fn parse(s: &str) -> Scopes {
        let mut out = Scopes::default();
        for w in s.split_ascii_whitespace() {
            match w {
                "openid" => out.openid = true,
                "profile" => out.profile = true,
                "email" => out.email = true,
                "phone" => out.phone = true,
                "groups" => out.groups = true,
                "offline_access" => out.offline_access = true,
                _ => {}
            }
        }
        out
    }

    /// The granted scopes, space-separated in a fixed order.
    pub fn to_scope_string(self) -> String {
        let on = [
            self.openid,
            self.profile,
            self.email,
            self.phone,
            self.groups,
            self.offline_access,
        ];
        Self::SUPPORTED
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(s, _)| *s)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Ask nothing: without a usable session, answer `login_required`.
    None,
    /// Sign in again even with a session.
    Login,
}

/// An authorization-request problem that is sent back to the client's redirect URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizeProblem {
    /// RFC 6749 §4.1.2.1 / OIDC core §3.1.2.6 error code.
    pub error: &'static str,
    pub description: String,
}

fn problem(error: &'static str, description: impl Into<String>) -> AuthorizeProblem {
    AuthorizeProblem {
        error,
        description: description.into(),
    }
}

/// The parameters of `/authorize` after the client and redirect URI are known good.
#[derive(Clone, Debug, Default)]
pub struct AuthorizeParams<'a> {
    pub response_type: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub prompt: Option<&'a str>,
    pub max_age: Option<&'a str>,
    pub request: Option<&'a str>,
    pub request_uri: Option<&'a str>,
}

/// What a valid request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidRequest {
    pub scopes: Scopes,
    /// The S256 challenge, if the client sent one.
    pub code_challenge: Option<String>,
    pub prompt: Option<Prompt>,
    pub max_age_secs: Option<i64>,
}

/// Validates an authorization request for `kind` of client.
pub fn validate_request(
    kind: ClientKind,
    p: &AuthorizeParams<'_>,
) -> Result<ValidRequest, AuthorizeProblem> {
    if p.request.is_some() {
        return Err(problem(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if p.request_uri.is_some() {
        return Err(problem(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match p.response_type {
        Some("code") => {}
        None => return Err(problem("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(problem(
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
    }
    let scopes = Scopes::parse(p.scope.unwrap_or(""));
    if !scopes.openid {
        return Err(problem("invalid_scope", "the scope must include openid"));
    }
    let code_challenge = pkce_request(kind, p.code_challenge, p.code_challenge_method)?;
    let prompt = match p.prompt.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let words: Vec<&str> = s.split_ascii_whitespace().collect();
            if words.contains(&"none") && words.len() > 1 {
                return Err(problem(
                    "invalid_request",
                    "prompt=none cannot be combined with other values",
                ));
            }
            if words.contains(&"none") {
                Some(Prompt::None)
            } else if words.contains(&"login") {
                Some(Prompt::Login)
            } else {
                // consent / select_account: there is nothing to ask; treat as absent.
                None
            }
        }
    };
    let max_age_secs = match p.max_age.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| problem("invalid_request", "max_age must be a whole number"))?,
        ),
    };
    Ok(ValidRequest {
        scopes,
        code_challenge,
        prompt,
        max_age_secs,
    })
}

/// PKCE (RFC 7636): S256 only. A challenge without a method means `plain`, refused too.
fn pkce_request(
    kind: ClientKind,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, AuthorizeProblem> {
    let challenge = challenge.filter(|c| !c.is_empty());
    match (challenge, method.filter(|m| !m.is_empty())) {
        (None, None) if kind == ClientKind::Public => Err(problem(
            "invalid_request",
            "PKCE with code_challenge_method=S256 is required for public clients",
        )),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(problem(
            "invalid_request",
            "code_challenge_method without code_challenge",
        )),
        (Some(c), Some("S256")) => {
            let ok = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ok {
                Ok(Some(c.to_string()))
            } else {
                Err(problem(
                    "invalid_request",
                    "code_challenge must be the base64url SHA-256 of the verifier",
                ))
            }
        }
        (Some(_), _) => Err(problem(
            "invalid_request",
            "only code_challenge_method=S256 is accepted (plain is refused)",
        )),
    }
}

/// Whether `verifier` (RFC 7636 §4.1: 43–128 unreserved characters) matches `challenge`.
pub fn pkce_verifies(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// What to do with the member's session for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionDecision {
    /// Issue a code for the session's member.
    Use,
    /// Send the member through sign-in, then back to `/authorize`.
    SignIn,
    /// `prompt=none` and sign-in would be needed: `login_required` to the client.
    LoginRequired,
}

/// The member's current session, as `/authorize` sees it.
#[derive(Clone, Debug)]
pub struct SessionView<'a> {
    /// When the member signed in (ms).
    pub auth_time: i64,
    /// The member's WeCom userid, for `login_hint`.
    pub userid: Option<&'a str>,
}

/// Decides between using the session, signing in, and `login_required`.
/// `signed_in_after` is set on the return from a sign-in that `prompt=login` or `max_age`
/// forced: a session at least that recent satisfies them (no loop back to WeCom).
pub fn session_decision(
    req: &ValidRequest,
    login_hint: Option<&str>,
    session: Option<&SessionView<'_>>,
    signed_in_after: Option<i64>,
    now: i64,
) -> SessionDecision {
    let need = |_: ()| {
        if req.prompt == Some(Prompt::None) {
            SessionDecision::LoginRequired
        } else {
            SessionDecision::SignIn
        }
    };
    let Some(s) = session else {
        return need(());
    };
    let fresh = signed_in_after.is_some_and(|t| s.auth_time >= t);
    if req.prompt == Some(Prompt::Login) && !fresh {
        return SessionDecision::SignIn;
    }
    if let Some(max) = req.max_age_secs {
        if !fresh && now - s.auth_time > max.saturating_mul(1000) {
            return need(());
        }
    }
    if let (Some(hint), Some(uid)) = (login_hint.filter(|h| !h.is_empty()), s.userid) {
        if !hint.eq_ignore_ascii_case(uid) {
            return need(());
        }
    }
    SessionDecision::Use
}

/// How a presented refresh token is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// Not rotated yet: rotate it.
    First,
    /// Rotated moments ago: the client is retrying after losing the answer.
    Retry,
    /// Rotated earlier: someone replays an old token; revoke the whole grant.
    Replay,
}

pub fn judge_refresh(rotated_at: Option<i64>, now: i64) -> RefreshUse {
    match rotated_at {
        None => RefreshUse::First,
        Some(t) if now - t <= REFRESH_GRACE_MS => RefreshUse::Retry,
        Some(_) => RefreshUse::Replay,
    }
}

/// `at_hash` (OIDC core §3.1.3.6): the left half of the SHA-256 of the access token, for
/// both RS256 and ES256.
pub fn at_hash(access_token: &str) -> String {
    let d = Sha256::digest(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>(challenge: Option<&'a str>, method: Option<&'a str>) -> AuthorizeParams<'a> {
        AuthorizeParams {
            response_type: Some("code"),
            scope: Some("openid profile"),
            code_challenge: challenge,
            code_challenge_method: method,
            ..Default::default()
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn pkce_rules() {
        // RFC 7636 appendix B.
        assert!(pkce_verifies(
            CHALLENGE,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_verifies(
            CHALLENGE,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx"
        ));
        assert!(!pkce_verifies(CHALLENGE, "short"));
        let public = ClientKind::Public;
        assert_eq!(
            validate_request(public, &params(None, None))
                .unwrap_err()
                .error,
            "invalid_request"
        );
        assert!(validate_request(public, &params(Some(CHALLENGE), Some("plain"))).is_err());
        assert!(validate_request(public, &params(Some(CHALLENGE), None)).is_err());
        let ok = validate_request(public, &params(Some(CHALLENGE), Some("S256"))).unwrap();
        assert_eq!(ok.code_challenge.as_deref(), Some(CHALLENGE));
        let conf = validate_request(ClientKind::Confidential, &params(None, None)).unwrap();
        assert_eq!(conf.code_challenge, None);
    }

    #[test]
    fn scopes_and_response_type() {
        let mut p = params(None, None);
        p.scope = Some("profile");
        assert_eq!(
            validate_request(ClientKind::Confidential, &p)
                .unwrap_err()
                .error,
            "invalid_scope"
        );
        p.scope = Some("openid groups foo email");
        p.response_type = Some("token");
        assert_eq!(
            validate_request(ClientKind::Confidential, &p)
                .unwrap_err()
                .error,
            "unsupported_response_type"
        );
        assert_eq!(
            Scopes::parse("openid groups foo email").to_scope_string(),
            "openid email groups"
        );
    }

    #[test]
    fn sessions_prompt_and_max_age() {
        let base = validate_request(ClientKind::Confidential, &params(None, None)).unwrap();
        let s = SessionView {
            auth_time: 1_000,
            userid: Some("zhangsan"),
        };
        assert_eq!(
            session_decision(&base, None, None, None, 5_000),
            SessionDecision::SignIn
        );
        let none = ValidRequest {
            prompt: Some(Prompt::None),
            ..base.clone()
        };
        assert_eq!(
            session_decision(&none, None, None, None, 5_000),
            SessionDecision::LoginRequired
        );
        assert_eq!(
            session_decision(&none, None, Some(&s), None, 5_000),
            SessionDecision::Use
        );
        let login = ValidRequest {
            prompt: Some(Prompt::Login),
            ..base.clone()
        };
        assert_eq!(
            session_decision(&login, None, Some(&s), None, 5_000),
            SessionDecision::SignIn
        );
        assert_eq!(
            session_decision(&login, None, Some(&s), Some(900), 5_000),
            SessionDecision::Use
        );
        let max = ValidRequest {
            max_age_secs: Some(3),
            ..base.clone()
        };
        assert_eq!(
            session_decision(&max, None, Some(&s), None, 4_000),
            SessionDecision::Use
        );
        assert_eq!(
            session_decision(&max, None, Some(&s), None, 4_001),
            SessionDecision::SignIn
        );
        assert_eq!(
            session_decision(&base, Some("lisi"), Some(&s), None, 2_000),
            SessionDecision::SignIn
        );
        assert_eq!(
            session_decision(&base, Some("ZhangSan"), Some(&s), None, 2_000),
            SessionDecision::Use
        );
    }

    #[test]
    fn refresh_grace_and_redirects() {
        assert_eq!(judge_refresh(None, 10), RefreshUse::First);
        assert_eq!(judge_refresh(Some(0), REFRESH_GRACE_MS), RefreshUse::Retry);
        assert_eq!(
            judge_refresh(Some(0), REFRESH_GRACE_MS + 1),
            RefreshUse::Replay
        );
        assert!(validate_redirect_uri("https://app.example.com/cb").is_ok());
        assert!(validate_redirect_uri("https://app.example.com/cb#x").is_err());
        assert!(validate_redirect_uri("javascript:alert(1)").is_err());
        assert!(validate_redirect_uri("/relative").is_err());
    }
}
