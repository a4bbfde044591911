//! `/oidc/authorize`: the authorization code flow.
//!
//! 1. The client and the redirect URI are checked first: an unknown client or a redirect
//!    URI not registered exactly gets an error page, never a redirect.
//! 2. Then the request (response_type, scope, PKCE, prompt, max_age); its problems go
//!    back to the client with `state` and `iss` (RFC 9207).
//! 3. The member: the existing session, or WeCom sign-in (silent in the WeCom client, QR
//!    in a browser) that returns here through the one return-path check; `prompt=none`
//!    without a usable session answers `login_required`.
//! 4. The account-status gate and the access policy of the client's app; then a code.

use super::*;
use crate::auth::{self, LoginError, MemberSessions};
use crate::domain::login::{IdentitySource, LoginTarget};
use crate::domain::oidc::{
    self as rules, AuthorizeParams, AuthorizeProblem, Client, Prompt, SessionDecision, SessionView,
    CODE_TTL_MS,
};
use crate::domain::user::UserStatus;
use crate::store::OidcCode;
use crate::web::cookies;
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::tenant::CurrentTenant;
use axum::extract::{Query, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

/// Set on the way back from a sign-in that `prompt=login` or `max_age` forced: a session
/// started at or after this instant (ms) satisfies them. A client setting it itself gains
/// nothing: it can only ask for less than `prompt=login` would.
const SIGNED_IN_AFTER: &str = "signed_in_after";

#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuthorizeQuery {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub signed_in_after: Option<i64>,
}

impl AuthorizeQuery {
    /// This request as a local path, for coming back after sign-in.
    fn return_path(&self, drop_prompt: bool, signed_in_after: Option<i64>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        let mut add = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                s.append_pair(k, v);
            }
        };
        add("client_id", &self.client_id);
        add("redirect_uri", &self.redirect_uri);
        add("response_type", &self.response_type);
        add("scope", &self.scope);
        add("state", &self.state);
        add("nonce", &self.nonce);
        add("code_challenge", &self.code_challenge);
        add("code_challenge_method", &self.code_challenge_method);
        if !drop_prompt {
            add("prompt", &self.prompt);
        }
        add("max_age", &self.max_age);
        add("login_hint", &self.login_hint);
        if let Some(t) = signed_in_after.or(self.signed_in_after) {
            s.append_pair(SIGNED_IN_AFTER, &t.to_string());
        }
        format!("{AUTHORIZE_PATH}?{}", s.finish())
    }
}

pub async fn handler_get(
    st: State<AppState>,
    l: Lang,
    t: CurrentTenant,
    sessions: Extension<Arc<MemberSessions>>,
    provider: Extension<Arc<Provider>>,
    headers: HeaderMap,
    q: Result<Query<AuthorizeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let Query(q) = q?;
    authorize(st, l, t, sessions, provider, headers, q).await
}

/// OIDC core §3.1.2.1: authorize also accepts a form POST.
pub async fn handler_post(
    st: State<AppState>,
    l: Lang,
    t: CurrentTenant,
    sessions: Extension<Arc<MemberSessions>>,
    provider: Extension<Arc<Provider>>,
    headers: HeaderMap,
    f: Result<Form<AuthorizeQuery>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let Form(q) = f?;
    authorize(st, l, t, sessions, provider, headers, q).await
}

/// The redirect back to the client, with `iss` (RFC 9207) and the client's `state`.
fn to_client(
    redirect_uri: &str,
    issuer: &str,
    state: Option<&str>,
    params: &[(&str, &str)],
) -> Response {
    let mut u = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        // Registered URIs were checked at registration; a broken one is a page, not a redirect.
        Err(_) => {
            return WebError::BadRequest("the client's redirect URI is invalid".into())
                .into_response()
        }
    };
    {
        let mut qp = u.query_pairs_mut();
        for (k, v) in params {
            qp.append_pair(k, v);
        }
        if let Some(s) = state {
            qp.append_pair("state", s);
        }
        qp.append_pair("iss", issuer);
    }
    let mut resp = Redirect::to(u.as_str()).into_response();
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn error_to_client(
    client_redirect: &str,
    issuer: &str,
    state: Option<&str>,
    p: &AuthorizeProblem,
) -> Response {
    to_client(
        client_redirect,
        issuer,
        state,
        &[("error", p.error), ("error_description", &p.description)],
    )
}

/// The client and redirect URI, or the error page (never a redirect).
async fn client_and_redirect(
    st: &AppState,
    tenant_id: i64,
    q: &AuthorizeQuery,
) -> Result<(Client, String), WebError> {
    let client_id = q
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| WebError::BadRequest("The sign-in request has no client_id.".into()))?;
    let client = st
        .store
        .oidc_client(tenant_id, client_id)
        .await?
        .ok_or_else(|| {
            WebError::BadRequest(format!(
                "The application {client_id:?} is not registered with this organisation."
            ))
        })?;
    let redirect = q.redirect_uri.as_deref().unwrap_or("");
    if redirect.contains('#') || !client.has_redirect_uri(redirect) {
        return Err(WebError::BadRequest(format!(
            "The redirect URI {redirect:?} is not registered for the application {:?}; the sign-in was stopped.",
            client.name
        )));
    }
    Ok((client, redirect.to_string()))
}

async fn authorize(
    State(st): State<AppState>,
    l: Lang,
    CurrentTenant(t): CurrentTenant,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    Extension(provider): Extension<Arc<Provider>>,
    headers: HeaderMap,
    q: AuthorizeQuery,
) -> Result<Response, WebError> {
    let (client, redirect) = client_and_redirect(&st, t.id, &q).await?;
    let iss = issuer(&st, &t)?;
    let state = q.state.as_deref();
    let params = AuthorizeParams {
        response_type: q.response_type.as_deref(),
        scope: q.scope.as_deref(),
        code_challenge: q.code_challenge.as_deref(),
        code_challenge_method: q.code_challenge_method.as_deref(),
        prompt: q.prompt.as_deref(),
        max_age: q.max_age.as_deref(),
        request: q.request.as_deref(),
        request_uri: q.request_uri.as_deref(),
    };
    let req = match rules::validate_request(client.kind, &params) {
        Ok(r) => r,
        Err(p) => return Ok(error_to_client(&redirect, &iss, state, &p)),
    };
    let now = now_ms(&st);
    let cookie = cookies::get(&headers, auth::SESSION_COOKIE);
    let session = sessions.check(&st, &t, cookie.as_deref(), now).await?;
    // The WeCom userid is needed only to compare with login_hint.
    let hint = q.login_hint.as_deref().filter(|h| !h.is_empty());
    let session_userid = match (&session, hint) {
        (Some(s), Some(_)) => st
            .store
            .user_extras(t.id, s.claims.user_id)
            .await?
            .identities
            .into_iter()
            .find(|i| i.kind == "wecom")
            .map(|i| i.display_id),
        _ => None,
    };
    let view = session.as_ref().map(|s| SessionView {
        auth_time: s.claims.created_at,
        userid: session_userid.as_deref(),
    });
    match rules::session_decision(&req, hint, view.as_ref(), q.signed_in_after, now) {
        SessionDecision::LoginRequired => {
            let p = AuthorizeProblem {
                error: "login_required",
                description: "the member must sign in".into(),
            };
            return Ok(error_to_client(&redirect, &iss, state, &p));
        }
        SessionDecision::SignIn => {
            let forced = req.prompt == Some(Prompt::Login) || req.max_age_secs.is_some();
            let back = q.return_path(req.prompt == Some(Prompt::Login), forced.then_some(now));
            return sign_in(&st, &t, &headers, &back, l).await;
        }
        SessionDecision::Use => {}
    }
    let session = session.ok_or_else(|| WebError::Internal("session vanished".into()))?;
    let user_id = session.claims.user_id;
    let user = st.store.user_by_id(t.id, user_id).await?;
    let refused = match &user {
        Some(u) if u.status == UserStatus::Authorized => {
            if access::app_admits(&st, &client, u).await? {
                None
            } else {
                Some((
                    "access_denied",
                    LoginError::Unauthorized {
                        userid: u.name.clone(),
                    },
                ))
            }
        }
        Some(u) if u.status == UserStatus::Disabled => Some((
            "access_denied",
            LoginError::Disabled {
                userid: u.name.clone(),
                reason: u.disabled_reason,
            },
        )),
        Some(u) => Some((
            "access_denied",
            LoginError::Unauthorized {
                userid: u.name.clone(),
            },
        )),
        None => Some((
            "access_denied",
            LoginError::NotInDirectory {
                outsider: false,
                userid: None,
            },
        )),
    };
    if let Some((error, page)) = refused {
        if req.prompt == Some(Prompt::None) {
            let p = AuthorizeProblem {
                error,
                description: "the member may not use this application".into(),
            };
            return Ok(error_to_client(&redirect, &iss, state, &p));
        }
        return Err(page.into());
    }
    let code = auth::random_token();
    st.store
        .insert_oidc_code(&OidcCode {
            code_hash: auth::sha256_hex(&code),
            tenant_id: t.id,
            client_id: client.client_id.clone(),
            user_id,
            redirect_uri: redirect.clone(),
            scope: req.scopes.to_scope_string(),
            nonce: q.nonce.clone().filter(|n| !n.is_empty()),
            code_challenge: req.code_challenge.clone(),
            auth_time: session.claims.created_at,
            locale: l.html_lang().to_string(),
            expires_at: now + CODE_TTL_MS,
        })
        .await?;
    provider.prune_if_due(&st, now).await?;
    let mut resp = to_client(&redirect, &iss, state, &[("code", &code)]);
    if let Some(c) = session.refresh.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// Sends the member to WeCom (or to `/login` when WeCom sign-in is off), returning to
/// `back` through the one return-path check.
async fn sign_in(
    st: &AppState,
    t: &Tenant,
    headers: &HeaderMap,
    back: &str,
    l: Lang,
) -> Result<Response, WebError> {
    // The one return-path check; a request too long to come back to is refused here
    // rather than landing the member somewhere else after sign-in.
    if crate::domain::return_path::check(back).is_none() {
        return Err(WebError::BadRequest(
            "The sign-in request is too long to return to; the application should send a shorter state or nonce.".into(),
        ));
    }
    let config = st.store.login_config(t.id, LoginTarget::Workbench).await?;
    if !config.is_enabled(IdentitySource::Wecom) {
        return Ok(Redirect::to(&crate::web::login::login_path(back)).into_response());
    }
    let ua = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let via = match wecom::ua::detect(ua) {
        wecom::ua::ClientKind::WeCom => auth::Via::Client,
        _ => auth::Via::Qr,
    };
    crate::web::login::start(st, t, None, headers, via, back, l).await
}
