//! Console admin sign-in: server-side sessions (random id in an HttpOnly cookie, only
//! its SHA-256 stored), idle and absolute timeouts, and CSRF tokens bound to the session.

use crate::app::AppState;
use crate::credentials::{ct_eq, sha256_hex};
use crate::store::AdminSession;
use crate::web::cookies;
use crate::web::error::WebError;
use crate::web::tenant::CurrentTenant;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub const SESSION_COOKIE: &str = "wb_admin";
/// Double-submit cookie protecting the sign-in form, before any session exists.
pub const LOGIN_CSRF_COOKIE: &str = "wb_login_csrf";

/// A signed-in console admin of the current tenant.
#[derive(Clone, Debug)]
pub struct Admin {
    pub session: AdminSession,
    pub id_hash: String,
    pub tenant: crate::domain::tenant::Tenant,
}

impl Admin {
    /// The console's navigation bar for this admin, with `active` highlighted: the one
    /// place it is built.
    pub fn nav(&self, active: &'static str) -> crate::web::pages::Nav {
        crate::web::pages::Nav {
            tenant_name: self.tenant.name.clone(),
            username: self.session.username.clone(),
            csrf: self.csrf().to_string(),
            active,
        }
    }
    pub fn actor(&self) -> String {
        format!("admin:{}", self.session.username)
    }
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }
    pub fn check_csrf(&self, token: &str) -> Result<(), WebError> {
        if ct_eq(token, &self.session.csrf) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, WebError> {
        let CurrentTenant(tenant) = CurrentTenant::from_request_parts(parts, st).await?;
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/console".into());
        let login = || WebError::LoginRequired { next: next.clone() };
        let raw = cookies::get(&parts.headers, SESSION_COOKIE).ok_or_else(login)?;
        let id_hash = sha256_hex(&raw);
        let session = st.store.admin_session(&id_hash).await?.ok_or_else(login)?;
        let now = st.clock.now_ms();
        let idle = st.cfg.admin_session_idle_secs as i64 * 1000;
        let max = st.cfg.admin_session_max_secs as i64 * 1000;
        // A session is valid only on the tenant it was created for. Sent to another
        // tenant's host it is refused but kept: that host must not end it.
        if session.tenant_id != tenant.id {
            return Err(login());
        }
        if now - session.last_seen_at > idle || now - session.created_at > max {
            st.store.delete_admin_session(&id_hash, None).await?;
            return Err(login());
        }
        // The one-time password must be replaced before anything else.
        let path = parts.uri.path();
        if session.must_change_password && path != "/console/password" && path != "/console/logout"
        {
            return Err(WebError::Redirect("/console/password".into()));
        }
        // Write at most once a minute: a page load should not always be a write.
        if now - session.last_seen_at > 60_000 {
            st.store.touch_admin_session(&id_hash, now).await?;
        }
        Ok(Admin {
            session,
            id_hash,
            tenant,
        })
    }
}

#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    inner: T,
}

/// A form posted by a signed-in admin, with its CSRF token already checked. Every
/// console form goes through this extractor, so none can forget the check.
pub struct AdminForm<T> {
    pub admin: Admin,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for AdminForm<T> {
    type Rejection = WebError;
    async fn from_request(req: Request, st: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, st).await?;
        let req = Request::from_parts(parts, body);
        let axum::Form(w) = axum::Form::<WithCsrf<T>>::from_request(req, st).await?;
        admin.check_csrf(&w.csrf)?;
        Ok(AdminForm {
            admin,
            form: w.inner,
        })
    }
}
