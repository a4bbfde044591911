//! The workbench portal at `/`: the signed-in member's name and department, the apps
//! they may open (the workbench itself until apps arrive), logout. Not signed in → `/login`.

use crate::app::AppState;
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::login::Member;
use crate::web::pages::render;
use askama::Template;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::HeaderValue;
use axum::response::Response;

/// One tile of the portal.
pub struct AppTile {
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub href: &'static str,
}

#[derive(Template)]
#[template(path = "workbench.html")]
pub struct WorkbenchPage {
    pub l: Lang,
    pub tenant_name: String,
    pub name: String,
    pub department: Option<String>,
    pub position: String,
    pub apps: Vec<AppTile>,
}

pub async fn home(State(st): State<AppState>, l: Lang, m: Member) -> Result<Response, WebError> {
    let extras = st.store.user_extras(m.tenant.id, m.user.id).await?;
    let page = WorkbenchPage {
        l,
        tenant_name: m.tenant.name.clone(),
        name: m.user.name.clone(),
        department: extras.departments.first().map(|d| d.1.clone()),
        position: m.user.position.clone(),
        apps: vec![AppTile {
            name_zh: "工作台",
            name_en: "Workbench",
            href: "/",
        }],
    };
    let mut resp = render(&page);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = m
        .session
        .refresh
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        resp.headers_mut().append(SET_COOKIE, c);
    }
    Ok(resp)
}
