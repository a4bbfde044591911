//! The workbench portal at `/`: the signed-in member's name and department, the apps
//! their policies let them open (grouped by category), their frequently used apps, and a
//! search box once there are many. Not signed in → `/login`.

use crate::app::AppState;
use crate::apps::Gate;
use crate::domain::apps::{self as catalogue, Icon, SEARCH_FROM};
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::login::Member;
use crate::web::pages::render;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::HeaderValue;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use std::sync::Arc;

/// One tile of the portal.
pub struct AppTile {
    pub slug: String,
    pub name: String,
    pub icon_src: String,
}

#[derive(Template)]
#[template(path = "workbench.html")]
pub struct WorkbenchPage {
    pub l: Lang,
    pub tenant_name: String,
    pub name: String,
    pub department: Option<String>,
    pub position: String,
    pub show_search: bool,
    pub query: String,
    pub frequent: Vec<AppTile>,
    pub groups: Vec<(String, Vec<AppTile>)>,
}

#[derive(Deserialize, Default)]
pub struct HomeQuery {
    #[serde(default)]
    q: String,
}

fn tile(a: &catalogue::App, zh: bool) -> AppTile {
    AppTile {
        slug: a.slug.clone(),
        name: a.name(zh).to_string(),
        icon_src: match &a.icon {
            Icon::Builtin(n) => format!("/static/icons/{n}.svg"),
            Icon::Uploaded { .. } => format!("/apps/{}/icon", a.slug),
        },
    }
}

pub async fn home(
    State(st): State<AppState>,
    l: Lang,
    Extension(gate): Extension<Arc<Gate>>,
    Query(q): Query<HomeQuery>,
    m: Member,
) -> Result<Response, WebError> {
    let now = st.clock.now_ms();
    let t = m.tenant.id;
    let (extras, apps, card, opens) = tokio::join!(
        st.store.user_extras(t, m.user.id),
        gate.apps(&st, t, now),
        gate.card(&st, t, m.user.id, now),
        st.store.app_opens_of(t, m.user.id),
    );
    let (extras, apps, opens) = (extras?, apps?, opens?);
    let placement = card?.map(|c| c.placement.clone()).unwrap_or_default();
    let zh = l.is_zh();
    let all = catalogue::workbench(&apps, &placement, &opens, "");
    let may_open: usize = all.groups.iter().map(|g| g.1.len()).sum();
    let wb = catalogue::workbench(&apps, &placement, &opens, &q.q);
    let page = WorkbenchPage {
        l,
        tenant_name: m.tenant.name.clone(),
        name: m.user.name.clone(),
        department: extras.departments.first().map(|d| d.1.clone()),
        position: m.user.position.clone(),
        show_search: may_open >= SEARCH_FROM || !q.q.is_empty(),
        query: q.q.clone(),
        // Frequent apps are a shortcut; while searching, only matches show.
        frequent: if q.q.is_empty() {
            all.frequent.iter().map(|a| tile(a, zh)).collect()
        } else {
            vec![]
        },
        groups: wb
            .groups
            .iter()
            .map(|(c, v)| (c.clone(), v.iter().map(|a| tile(a, zh)).collect()))
            .collect(),
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
