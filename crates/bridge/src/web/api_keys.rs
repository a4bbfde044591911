//! Console → API keys: create (read or read_write; the token is shown once, only its
//! SHA-256 is stored), list with last use, revoke. Every change is audited.

use crate::app::AppState;
use crate::domain::api_key::{ApiKey, Scope};
use crate::web::admin_session::{Admin, AdminForm};
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::pages::{render, Nav};
use crate::web::time::Clock;
use crate::web::ClientIp;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub const PATH: &str = "/console/api-keys";

#[derive(Template)]
#[template(path = "api_keys.html")]
pub struct KeysPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub keys: Vec<ApiKey>,
    /// (name, token) just created: shown once.
    pub shown: Option<(String, String)>,
    pub error: Option<String>,
    pub clock: Clock,
}

impl KeysPage {
    fn time(&self, ms: &Option<i64>) -> String {
        self.clock.show_opt(*ms)
    }
    fn created(&self, ms: &i64) -> String {
        self.clock.show(*ms)
    }
}

async fn page(
    st: &AppState,
    l: Lang,
    admin: &Admin,
    shown: Option<(String, String)>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let keys = st.store.list_api_keys(admin.tenant.id).await?;
    let bad = error.is_some();
    let mut r = render(&KeysPage {
        l,
        nav: Some(admin.nav("api_keys")),
        csrf: admin.csrf().to_string(),
        keys,
        shown,
        error,
        clock: Clock::of(&admin.tenant),
    });
    if bad {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

pub async fn list(State(st): State<AppState>, l: Lang, admin: Admin) -> Result<Response, WebError> {
    page(&st, l, &admin, None, None).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
}

pub async fn create(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<KeyForm>,
) -> Result<Response, WebError> {
    let Some(scope) = Scope::parse(&f.form.scope) else {
        return page(
            &st,
            l,
            &f.admin,
            None,
            Some(format!(
                "choose a scope: read or read_write, not {:?}",
                f.form.scope
            )),
        )
        .await;
    };
    match crate::admin::create_key(
        &st,
        f.admin.tenant.id,
        &f.form.name,
        scope,
        &f.admin.actor(),
        ip,
    )
    .await
    {
        Ok(c) => page(&st, l, &f.admin, Some((c.key.name, c.token)), None).await,
        Err(crate::admin::AdminError::Invalid(m)) => page(&st, l, &f.admin, None, Some(m)).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn revoke(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
    f: AdminForm<Empty>,
) -> Result<Response, WebError> {
    crate::admin::revoke_key(&st, f.admin.tenant.id, id, &f.admin.actor(), ip).await?;
    Ok(Redirect::to(PATH).into_response())
}
