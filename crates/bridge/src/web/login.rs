//! Member sign-in pages: `/login` (the enabled identity sources), `/wecom/home` (the
//! app's home page in WeCom: straight into silent in-client sign-in), `/login/wecom`
//! (starts WeCom sign-in), the OAuth callback, logout, and one page per outcome.
//! The decisions live in `auth` and `domain::login`; these handlers parse and render.

use crate::app::AppState;
use crate::auth::{self, CallbackQuery, LoginError, MemberSessions, RequestInfo, Via};
use crate::domain::audit::NewAudit;
use crate::domain::login::{IdentitySource, LoginTarget};
use crate::domain::return_path;
use crate::domain::user::{User, UserStatus};
use crate::web::cookies;
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::pages::render;
use crate::web::tenant::CurrentTenant;
use crate::web::ClientIp;
use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;
use wecom::ua::ClientKind;

type Result<T> = std::result::Result<T, WebError>;

/// `/login?next=…` with only a local path kept.
pub fn login_path(next: &str) -> String {
    let next = return_path::or(next, return_path::MEMBER_DEFAULT);
    format!(
        "/login?next={}",
        percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// A signed-in member of the current tenant.
pub struct Member {
    pub user: User,
    pub tenant: crate::domain::tenant::Tenant,
    pub session: auth::CheckedSession,
}

impl FromRequestParts<AppState> for Member {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self> {
        let CurrentTenant(tenant) = CurrentTenant::from_request_parts(parts, st).await?;
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let sessions = sessions_of(parts)?;
        let cookie = cookies::get(&parts.headers, auth::SESSION_COOKIE);
        let checked = sessions
            .check(st, &tenant, cookie.as_deref(), st.clock.now_ms())
            .await?
            .ok_or_else(|| WebError::Redirect(login_path(&next)))?;
        let user = st
            .store
            .user_by_id(tenant.id, checked.claims.user_id)
            .await?
            .filter(|u| u.status == UserStatus::Authorized)
            .ok_or_else(|| WebError::Redirect(login_path(&next)))?;
        Ok(Member {
            user,
            tenant,
            session: checked,
        })
    }
}

fn sessions_of(parts: &Parts) -> Result<Arc<MemberSessions>> {
    parts
        .extensions
        .get::<Arc<MemberSessions>>()
        .cloned()
        .ok_or_else(|| WebError::Internal("member sessions are not wired into the router".into()))
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Template)]
#[template(path = "login_member.html")]
pub struct LoginMemberPage {
    pub l: Lang,
    pub tenant_name: String,
    pub next: String,
    pub wecom: bool,
    pub password: bool,
    pub client: &'static str,
    /// The WeCom client opened the page but WeCom sign-in is off.
    pub wecom_off_in_client: bool,
}

impl LoginMemberPage {
    fn next_enc(&self) -> String {
        percent_encoding::utf8_percent_encode(&self.next, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
    }
}

fn user_agent(headers: &HeaderMap) -> &str {
    headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `GET /login`: straight to WeCom inside the client (when WeCom is on), otherwise the
/// enabled sources, QR login first.
pub async fn login_page(
    State(st): State<AppState>,
    l: Lang,
    CurrentTenant(t): CurrentTenant,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    headers: HeaderMap,
    q: std::result::Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(q) = q?;
    let next = return_path::or(&q.next, return_path::MEMBER_DEFAULT).to_string();
    // Already signed in: no second round trip through WeCom.
    let cookie = cookies::get(&headers, auth::SESSION_COOKIE);
    if sessions
        .check(&st, &t, cookie.as_deref(), st.clock.now_ms())
        .await?
        .is_some()
    {
        return Ok(Redirect::to(&next).into_response());
    }
    // Read on every request: a change applies at once on every instance.
    let config = st.store.login_config(t.id, LoginTarget::Workbench).await?;
    let kind = wecom::ua::detect(user_agent(&headers));
    let wecom_on = config.is_enabled(IdentitySource::Wecom);
    if kind == ClientKind::WeCom && wecom_on {
        return start(&st, &t, None, &headers, Via::Client, &next, l).await;
    }
    let page = LoginMemberPage {
        l,
        tenant_name: t.name.clone(),
        next,
        wecom: wecom_on,
        password: config.is_enabled(IdentitySource::Password),
        client: match kind {
            ClientKind::WeCom => "wecom",
            ClientKind::WeChat => "wechat",
            ClientKind::Browser => "browser",
        },
        wecom_off_in_client: kind == ClientKind::WeCom && !wecom_on,
    };
    let mut resp = render(&page);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /wecom/home`: the app's home page in the WeCom workbench. Same as `/login`
/// (silent sign-in in the client), landing on the workbench.
pub async fn wecom_home(
    st: State<AppState>,
    l: Lang,
    t: CurrentTenant,
    sessions: Extension<Arc<MemberSessions>>,
    headers: HeaderMap,
    q: std::result::Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    login_page(st, l, t, sessions, headers, q).await
}

/// `GET /login/wecom`: starts WeCom sign-in (QR / web login in a browser, in-client
/// authorization inside WeCom).
pub async fn login_wecom(
    State(st): State<AppState>,
    l: Lang,
    CurrentTenant(t): CurrentTenant,
    headers: HeaderMap,
    q: std::result::Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(q) = q?;
    start_wecom(&st, &t, None, &headers, &q.next, l).await
}

/// Starts WeCom sign-in through the main app, or a model app's own (`agentid`): refused
/// when WeCom is not ticked in the login configuration; in-client authorization inside
/// WeCom, QR / web login in a browser.
pub async fn start_wecom(
    st: &AppState,
    t: &crate::domain::tenant::Tenant,
    agentid: Option<u32>,
    headers: &HeaderMap,
    next: &str,
    l: Lang,
) -> Result<Response> {
    let config = st.store.login_config(t.id, LoginTarget::Workbench).await?;
    if !config.is_enabled(IdentitySource::Wecom) {
        return Err(LoginError::SourceOff.into());
    }
    let via = match wecom::ua::detect(user_agent(headers)) {
        ClientKind::WeCom => Via::Client,
        _ => Via::Qr,
    };
    start(st, t, agentid, headers, via, next, l).await
}

/// Sends the member to WeCom (`via`) through the main app, or through a model app's own
/// WeCom app (`agentid`), to come back to `next` (checked by the one return-path check in
/// `auth::begin_wecom`).
pub async fn start(
    st: &AppState,
    t: &crate::domain::tenant::Tenant,
    agentid: Option<u32>,
    headers: &HeaderMap,
    via: Via,
    next: &str,
    l: Lang,
) -> Result<Response> {
    let host =
        crate::web::tenant::host_of(headers, &axum::http::Uri::default())?.unwrap_or_default();
    let lang = if l.is_zh() {
        wecom::oauth::Lang::Zh
    } else {
        wecom::oauth::Lang::En
    };
    let begin = auth::begin_wecom(st, t, agentid, &host, via, next, lang).await?;
    let mut resp = Redirect::to(&begin.location).into_response();
    if let Ok(v) = HeaderValue::from_str(&begin.binding_cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
    Ok(resp)
}

/// `GET /auth/wecom/callback?code=…&state=…`.
pub async fn callback(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    CurrentTenant(t): CurrentTenant,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    headers: HeaderMap,
    q: std::result::Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let started = Instant::now();
    let Query(q) = q?;
    let binding = cookies::get(&headers, auth::binding_cookie_name(&st));
    let ua = user_agent(&headers);
    let req = RequestInfo {
        binding: binding.as_deref(),
        ip: ip.as_deref(),
        user_agent: (!ua.is_empty()).then_some(ua),
    };
    let mut timing = auth::CallbackTiming::default();
    let result = auth::finish_wecom(&st, &sessions, &t, &q, &req, &mut timing).await;
    crate::ops::metrics::sign_in(&result);
    let mut resp = match result {
        Ok(done) => (
            AppendHeaders([(SET_COOKIE, done.session_cookie)]),
            Redirect::to(&done.return_to),
        )
            .into_response(),
        Err(e) => WebError::from(e).into_response(),
    };
    // The handler's own time and WeCom's share, so each can be watched (and benchmarked).
    let total = started.elapsed();
    let own = total.saturating_sub(timing.wecom);
    let value = format!(
        "app;dur={:.3}, wecom;dur={:.3}",
        own.as_secs_f64() * 1e3,
        timing.wecom.as_secs_f64() * 1e3
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `POST /logout`. SameSite=Lax keeps the session cookie off cross-site posts, so a
/// foreign page cannot sign a member out.
pub async fn logout(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    CurrentTenant(t): CurrentTenant,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    headers: HeaderMap,
) -> Result<Response> {
    let cookie = cookies::get(&headers, auth::SESSION_COOKIE);
    if let Some(s) = sessions
        .check(&st, &t, cookie.as_deref(), st.clock.now_ms())
        .await?
    {
        sessions.end(&st, t.id, &s.id_hash).await?;
        st.store
            .audit(&NewAudit {
                tenant_id: t.id,
                actor: format!("user:{}", s.claims.user_id),
                action: "member.logout",
                detail: String::new(),
                ip,
            })
            .await?;
    }
    Ok((
        [(SET_COOKIE, sessions.clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}
