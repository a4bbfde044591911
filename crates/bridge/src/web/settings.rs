//! Console → Time zone: the zone every time in the console is shown in (a per-tenant
//! setting, Asia/Shanghai until the admin picks another). Any IANA zone is accepted;
//! the change is audited.

use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::web::admin_session::{Admin, AdminForm};
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::pages::{render, Nav};
use crate::web::time::{Clock, COMMON_ZONES};
use crate::web::ClientIp;
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub const TIME_ZONE_PATH: &str = "/console/settings/time-zone";

#[derive(Template)]
#[template(path = "time_zone.html")]
pub struct TimeZonePage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub current: String,
    pub now: String,
    pub common: Vec<&'static str>,
    pub others: Vec<String>,
    pub error: Option<String>,
    pub saved: bool,
}

fn page(l: Lang, admin: &Admin, error: Option<String>, saved: bool) -> Response {
    let clock = Clock::of(&admin.tenant);
    let mut others: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_string())
        .filter(|n| !COMMON_ZONES.contains(&n.as_str()))
        .collect();
    others.sort();
    let bad = error.is_some();
    let mut r = render(&TimeZonePage {
        l,
        nav: Some(admin.nav("time_zone")),
        csrf: admin.csrf().to_string(),
        current: clock.name().to_string(),
        now: clock.show(crate::domain::now_ms()),
        common: COMMON_ZONES.to_vec(),
        others,
        error,
        saved,
    });
    if bad {
        *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    r
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn time_zone_page(
    l: Lang,
    admin: Admin,
    q: axum::extract::Query<SavedQuery>,
) -> Response {
    page(l, &admin, None, q.saved.is_some())
}

#[derive(Deserialize)]
pub struct TimeZoneForm {
    #[serde(default)]
    time_zone: String,
}

pub async fn save_time_zone(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<TimeZoneForm>,
) -> Result<Response, WebError> {
    let Some(clock) = Clock::named(&f.form.time_zone) else {
        let msg = l
            .t(
                &format!(
                    "“{}” 不是有效的时区名称（例如 Asia/Shanghai）。",
                    f.form.time_zone.trim()
                ),
                &format!(
                    "“{}” is not a time zone name (e.g. Asia/Shanghai).",
                    f.form.time_zone.trim()
                ),
            )
            .to_string();
        return Ok(page(l, &f.admin, Some(msg), false));
    };
    let t = &f.admin.tenant;
    if clock.name() != t.time_zone {
        st.store.set_tenant_time_zone(t.id, clock.name()).await?;
        st.store
            .audit(&NewAudit {
                tenant_id: t.id,
                actor: f.admin.actor(),
                action: "tenant.time_zone_changed",
                detail: format!("{} → {}", t.time_zone, clock.name()),
                ip,
            })
            .await?;
    }
    Ok(Redirect::to(&format!("{TIME_ZONE_PATH}?saved=1")).into_response())
}
