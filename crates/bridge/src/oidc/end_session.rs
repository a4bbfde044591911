//! `/oidc/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). The
//! `id_token_hint` must be an ID token this tenant signed (it may have expired); the
//! member session of its subject ends; `post_logout_redirect_uri` must be registered
//! exactly for the hint's client, or there is no redirect at all.

use super::*;
use crate::auth::{self, MemberSessions};
use crate::web::cookies;
use crate::web::error::WebError;
use crate::web::tenant::CurrentTenant;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct EndSessionQuery {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
}

/// Without a hint, nothing proves the request comes from the member's app: ask them.
const CONFIRM: &str = r#"<!doctype html><html lang="zh-CN"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>退出登录 Sign out</title><link rel="stylesheet" href="/static/console.css"><main class="login"><h1>退出登录？ Sign out?</h1><p>应用请求退出您的登录。An application asks to sign you out.</p><form method="post" action="/logout"><button type="submit" class="primary" data-testid="confirm-logout">退出 Sign out</button></form></main></html>"#;

async fn end_session(
    st: &AppState,
    t: &Tenant,
    sessions: &MemberSessions,
    headers: &HeaderMap,
    q: EndSessionQuery,
) -> Result<Response, WebError> {
    let Some(hint) = q.id_token_hint.as_deref().filter(|h| !h.is_empty()) else {
        if q.post_logout_redirect_uri.is_some() {
            return Err(WebError::BadRequest(
                "post_logout_redirect_uri needs an id_token_hint".into(),
            ));
        }
        let mut r = Html(CONFIRM).into_response();
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(r);
    };
    let claims = keys::verify(st, t.id, hint)
        .await
        .map_err(|_| WebError::BadRequest("the id_token_hint was not issued here".into()))?;
    let iss = issuer(st, t)?;
    if claims["iss"].as_str() != Some(iss.as_str()) {
        return Err(WebError::BadRequest(
            "the id_token_hint was issued by another issuer".into(),
        ));
    }
    let aud = claims["aud"].as_str().unwrap_or_default().to_string();
    if q.client_id.as_deref().is_some_and(|c| c != aud) {
        return Err(WebError::BadRequest(
            "client_id differs from the id_token_hint's audience".into(),
        ));
    }
    let target = match q.post_logout_redirect_uri.as_deref() {
        None => None,
        Some(uri) => {
            let client = st.store.oidc_client(t.id, &aud).await?.ok_or_else(|| {
                WebError::BadRequest("the id_token_hint's client is not registered".into())
            })?;
            if !client.has_post_logout_uri(uri) {
                return Err(WebError::BadRequest(format!(
                    "{uri:?} is not a registered post-logout redirect URI of {:?}",
                    client.name
                )));
            }
            Some(uri.to_string())
        }
    };
    // End the member's session if it is the hint's subject.
    let cookie = cookies::get(headers, auth::SESSION_COOKIE);
    let now = now_ms(st);
    let mut ended = false;
    if let Some(s) = sessions.check(st, t, cookie.as_deref(), now).await? {
        if claims["sub"].as_str() == Some(s.claims.user_id.to_string().as_str()) {
            sessions.end(st, t.id, &s.id_hash).await?;
            ended = true;
        }
    }
    let mut resp = match target {
        Some(uri) => {
            let mut u = url::Url::parse(&uri)
                .map_err(|_| WebError::BadRequest("invalid post-logout redirect URI".into()))?;
            if let Some(state) = &q.state {
                u.query_pairs_mut().append_pair("state", state);
            }
            Redirect::to(u.as_str()).into_response()
        }
        None => Redirect::to("/login").into_response(),
    };
    if ended {
        if let Ok(v) = HeaderValue::from_str(&sessions.clear_cookie()) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub async fn handler_get(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    headers: HeaderMap,
    q: Result<Query<EndSessionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let Query(q) = q?;
    end_session(&st, &t, &sessions, &headers, q).await
}

pub async fn handler_post(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    headers: HeaderMap,
    f: Result<Form<EndSessionQuery>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let Form(q) = f?;
    end_session(&st, &t, &sessions, &headers, q).await
}
