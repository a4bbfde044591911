//! System settings → Workbench settings → Login configuration: which identity sources
//! sign members in to the workbench (the guide's step 5). Saved to the database and read
//! on every sign-in, so a change applies on the next request on every instance.

use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::domain::login::{IdentitySource, LoginConfig, LoginConfigError, LoginTarget};
use crate::web::admin_session::{Admin, AdminForm};
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::pages::{render, Nav};
use crate::web::ClientIp;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub const PATH: &str = "/console/settings/login";

#[derive(Template)]
#[template(path = "login_config.html")]
pub struct LoginConfigPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub sources: Vec<(IdentitySource, bool)>,
    pub integration_ready: bool,
    pub error: Option<String>,
    pub saved: bool,
    /// The workbench session timeout in minutes as shown ("" = default), and the default.
    pub idle_minutes: String,
    pub default_idle_minutes: u64,
    /// In-client sign-in asks for the withheld fields (issue 20).
    pub consent_fields: bool,
}

fn nav(a: &Admin) -> Nav {
    a.nav("login_config")
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn page(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    q: axum::extract::Query<SavedQuery>,
) -> Result<Response, WebError> {
    let config = st
        .store
        .login_config(admin.tenant.id, LoginTarget::Workbench)
        .await?;
    let integration_ready = st.store.main_integration(admin.tenant.id).await?.is_some();
    Ok(render(&LoginConfigPage {
        l,
        csrf: admin.csrf().to_string(),
        nav: Some(nav(&admin)),
        sources: config.sources,
        integration_ready,
        error: None,
        saved: q.saved.is_some(),
        idle_minutes: idle_minutes_of(&admin.tenant),
        default_idle_minutes: st.cfg.member_session_idle_secs / 60,
        consent_fields: st.store.consent_enabled(admin.tenant.id).await?,
    }))
}

/// Checkboxes: present = on.
#[derive(Deserialize)]
pub struct ConfigForm {
    #[serde(default)]
    wecom: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// Minutes; blank: the instance default; absent (an older form): unchanged.
    #[serde(default)]
    session_idle_minutes: Option<String>,
    #[serde(default)]
    consent_fields: Option<String>,
}

fn idle_minutes_of(t: &crate::domain::tenant::Tenant) -> String {
    t.member_session_idle_secs
        .map(|s| (s / 60).to_string())
        .unwrap_or_default()
}

pub async fn save(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<ConfigForm>,
) -> Result<Response, WebError> {
    let mut config = LoginConfig::default();
    config.set(IdentitySource::Wecom, f.form.wecom.is_some());
    config.set(IdentitySource::Password, f.form.password.is_some());
    let t = &f.admin.tenant;
    let idle = match f.form.session_idle_minutes.as_deref() {
        None => Ok(t.member_session_idle_secs),
        Some(m) => crate::domain::login::parse_idle_minutes(m, st.cfg.member_session_max_secs),
    };
    let problem = match (&idle, config.validate()) {
        (_, Err(LoginConfigError::NoneEnabled)) => Some(
            l.t(
                "请至少开启一种登录方式，否则没有人能登录。",
                "Turn on at least one identity source, or nobody can sign in.",
            )
            .to_string(),
        ),
        (Err(e), _) => Some(e.clone()),
        _ => None,
    };
    if let Some(problem) = problem {
        let integration_ready = st.store.main_integration(t.id).await?.is_some();
        let mut resp = render(&LoginConfigPage {
            l,
            csrf: f.admin.csrf().to_string(),
            nav: Some(nav(&f.admin)),
            sources: config.sources,
            integration_ready,
            error: Some(problem),
            saved: false,
            idle_minutes: f.form.session_idle_minutes.clone().unwrap_or_default(),
            default_idle_minutes: st.cfg.member_session_idle_secs / 60,
            consent_fields: f.form.consent_fields.is_some(),
        });
        *resp.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(resp);
    }
    crate::admin::set_login_config(&st, t.id, &config.sources, &f.admin.actor(), ip.clone())
        .await?;
    crate::auth::consent::set_enabled(
        &st,
        t,
        f.form.consent_fields.is_some(),
        &f.admin.actor(),
        ip.clone(),
    )
    .await?;
    let idle = idle.unwrap_or(t.member_session_idle_secs);
    if idle != t.member_session_idle_secs {
        let show = |v: Option<i64>| match v {
            Some(s) => format!("{} min", s / 60),
            None => "default".to_string(),
        };
        st.store
            .set_member_session_idle(
                t.id,
                idle,
                &NewAudit {
                    tenant_id: t.id,
                    actor: f.admin.actor(),
                    action: "login_config.session_timeout",
                    detail: format!(
                        "workbench session timeout: {} → {}",
                        show(t.member_session_idle_secs),
                        show(idle)
                    ),
                    ip,
                },
            )
            .await?;
    }
    Ok(Redirect::to(&format!("{PATH}?saved=1")).into_response())
}
