//! Apps over HTTP: the console's catalogue pages, a member opening an app
//! (`/apps/{slug}/open`), icons, and forward auth (`/auth/verify`) for reverse proxies.
//! Handlers parse, call `crate::apps`, render.

use crate::app::AppState;
use crate::apps::{self, Actor, AppsError, Gate, Verdict};
use crate::auth::{MemberSessions, SESSION_COOKIE};
use crate::domain::apps::{Access, App, AppDraft, Chosen, BUILTIN_ICONS};
use crate::web::admin_session::{Admin, AdminForm};
use crate::web::cookies;
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::login::Member;
use crate::web::pages::{render, Nav};
use crate::web::tenant::CurrentTenant;
use crate::web::ClientIp;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

pub const PATH: &str = "/console/apps";

fn nav(admin: &Admin) -> Option<Nav> {
    Some(admin.nav("apps"))
}

fn gate_of(g: &Extension<Arc<Gate>>) -> &Gate {
    g.0.as_ref()
}

#[derive(Template)]
#[template(path = "apps.html")]
pub struct AppsPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub apps: Vec<App>,
}

pub async fn list(State(st): State<AppState>, l: Lang, admin: Admin) -> Result<Response, WebError> {
    let apps = st.store.list_apps(admin.tenant.id).await?;
    Ok(render(&AppsPage {
        l,
        nav: nav(&admin),
        csrf: admin.csrf().to_string(),
        apps,
    }))
}

/// A directory choice on the edit page: (id, name, ticked).
pub type Choice = (i64, String, bool);

#[derive(Template)]
#[template(path = "app_edit.html")]
pub struct EditPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    /// None: a new app.
    pub id: Option<i64>,
    pub d: AppDraft,
    pub everyone: bool,
    pub departments: Vec<Choice>,
    pub tags: Vec<Choice>,
    pub members: String,
    pub icons: &'static [&'static str],
    pub uploaded_icon: bool,
    pub forward_auth_url: String,
    pub error: Option<String>,
    /// The app's own WeCom app, if bound.
    pub wecom: Option<crate::app_binding::Binding>,
    /// What to paste into that WeCom app's settings: its home page and trusted domain.
    pub home_url: String,
    pub trusted_domain: String,
    pub bind: BindView,
}

/// The binding form's state after a refused attempt: the message and the AgentId as typed
/// (the Secret is never sent back).
#[derive(Default)]
pub struct BindView {
    pub error: Option<(StatusCode, String)>,
    pub agentid: String,
}

impl BindView {
    pub fn message(&self) -> Option<&str> {
        self.error.as_ref().map(|(_, m)| m.as_str())
    }
}

fn draft_of(a: &App) -> AppDraft {
    AppDraft::from(a)
}

async fn edit_page(
    st: &AppState,
    l: Lang,
    admin: &Admin,
    id: Option<i64>,
    d: AppDraft,
    members: Option<String>,
    error: Option<String>,
) -> Result<Response, WebError> {
    edit_page_with(st, l, admin, id, d, members, error, BindView::default()).await
}

/// The edit page, with the binding form's state (`web::app_binding`).
#[allow(clippy::too_many_arguments)]
pub async fn edit_page_with(
    st: &AppState,
    l: Lang,
    admin: &Admin,
    id: Option<i64>,
    d: AppDraft,
    members: Option<String>,
    error: Option<String>,
    bind: BindView,
) -> Result<Response, WebError> {
    let t = admin.tenant.id;
    let wecom = match id {
        Some(id) => crate::app_binding::binding_of(st, t, id).await?,
        None => None,
    };
    let (deps, tags) = st.store.directory_choices(t).await?;
    let empty = Chosen::default();
    let chosen = match &d.access {
        Access::Everyone => &empty,
        Access::Chosen(c) => c,
    };
    let members = match members {
        Some(m) => m,
        None => {
            let names = st.store.wecom_userids_of(t, &chosen.users).await?;
            chosen
                .users
                .iter()
                .map(|u| names.get(u).cloned().unwrap_or_else(|| format!("#{u}")))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let tick = |v: Vec<(i64, String)>, on: &[i64]| -> Vec<Choice> {
        v.into_iter()
            .map(|(i, n)| (i, n, on.contains(&i)))
            .collect()
    };
    let base = admin
        .tenant
        .domain
        .as_deref()
        .map(|dom| st.cfg.base_url_for(dom))
        .unwrap_or_default();
    let page = EditPage {
        l,
        nav: nav(admin),
        csrf: admin.csrf().to_string(),
        id,
        everyone: matches!(d.access, Access::Everyone),
        departments: tick(deps, &chosen.departments),
        tags: tick(tags, &chosen.tags),
        members,
        icons: BUILTIN_ICONS,
        uploaded_icon: d.icon == "uploaded",
        forward_auth_url: format!("{base}/auth/verify?app={}", d.slug),
        home_url: format!("{base}/apps/{}", d.slug),
        trusted_domain: admin.tenant.domain.clone().unwrap_or_default(),
        wecom,
        d,
        error: error.clone(),
        bind,
    };
    let mut r = render(&page);
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    } else if let Some((status, _)) = &page.bind.error {
        *r.status_mut() = *status;
    }
    Ok(r)
}

pub async fn new_page(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
) -> Result<Response, WebError> {
    let d = AppDraft {
        enabled: true,
        icon: "app".into(),
        ..Default::default()
    };
    edit_page(&st, l, &admin, None, d, None, None).await
}

pub async fn edit(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let app = st
        .store
        .app_by_id(admin.tenant.id, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("app #{id}")))?;
    edit_page(&st, l, &admin, Some(id), draft_of(&app), None, None).await
}

/// The edit form: the fields, `access=everyone|chosen`, one `d<id>=on` per ticked
/// department, `t<id>=on` per tag, and members as WeCom userids separated by commas,
/// spaces or new lines.
#[derive(Deserialize)]
pub struct AppForm {
    #[serde(flatten)]
    fields: HashMap<String, String>,
}

impl AppForm {
    fn get(&self, k: &str) -> String {
        self.fields.get(k).cloned().unwrap_or_default()
    }
    fn ids(&self, prefix: char) -> Vec<i64> {
        self.fields
            .keys()
            .filter_map(|k| k.strip_prefix(prefix)?.parse().ok())
            .collect()
    }
}

/// Reads the form into a draft; members are looked up by userid, and unknown ones are
/// named in the error.
async fn read_form(st: &AppState, tenant_id: i64, f: &AppForm) -> Result<AppDraft, String> {
    let access = if f.get("access") == "chosen" {
        let typed: Vec<String> = f
            .get("members")
            .split(|c: char| c == ',' || c == '，' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let found = st
            .store
            .users_by_wecom_userids(tenant_id, &typed)
            .await
            .map_err(|e| e.to_string())?;
        let unknown: Vec<&String> = typed
            .iter()
            .filter(|u| !found.iter().any(|(f, _)| f == *u))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "not in the directory: {}",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Access::Chosen(Chosen {
            departments: f.ids('d'),
            tags: f.ids('t'),
            users: found.into_iter().map(|(_, id)| id).collect(),
        })
    } else {
        Access::Everyone
    };
    Ok(draft_of_form(f, access))
}

async fn save(
    st: &AppState,
    l: Lang,
    gate: &Gate,
    ip: Option<String>,
    f: AdminForm<AppForm>,
    id: Option<i64>,
) -> Result<Response, WebError> {
    let admin = &f.admin;
    let actor = admin.actor();
    let by = Actor {
        tenant_id: admin.tenant.id,
        name: &actor,
        ip,
    };
    let members = f.form.get("members");
    let d = match read_form(st, admin.tenant.id, &f.form).await {
        Ok(d) => d,
        Err(e) => {
            // Keep what was ticked; the members stay as typed in their box.
            let ticked = Access::Chosen(Chosen {
                departments: f.form.ids('d'),
                tags: f.form.ids('t'),
                users: vec![],
            });
            let d = draft_of_form(&f.form, ticked);
            return edit_page(st, l, admin, id, d, Some(members), Some(e)).await;
        }
    };
    let result = match id {
        None => apps::create(st, gate, &by, d.clone()).await.map(|_| ()),
        Some(id) => apps::update(st, gate, &by, id, d.clone()).await,
    };
    match result {
        Ok(()) => Ok(Redirect::to(PATH).into_response()),
        Err(AppsError::Invalid(p)) => {
            edit_page(st, l, admin, id, d, Some(members), Some(p.to_string())).await
        }
        Err(AppsError::NotFound(what)) => Err(WebError::NotFound(format!("app {what}"))),
        Err(AppsError::Store(e)) => Err(e.into()),
    }
}

/// The form's fields as typed, with `access` as read (or as far as it could be read).
fn draft_of_form(f: &AppForm, access: Access) -> AppDraft {
    AppDraft {
        slug: f.get("slug"),
        name_zh: f.get("name_zh"),
        name_en: f.get("name_en"),
        icon: f.get("icon"),
        category: f.get("category"),
        description: f.get("description"),
        position: f.get("position").trim().parse().unwrap_or(0),
        enabled: f.fields.contains_key("enabled"),
        url: f.get("url"),
        access,
        contact: f.get("contact"),
    }
}

pub async fn create(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    gate: Extension<Arc<Gate>>,
    f: AdminForm<AppForm>,
) -> Result<Response, WebError> {
    save(&st, l, gate_of(&gate), ip, f, None).await
}

pub async fn update(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    gate: Extension<Arc<Gate>>,
    Path(id): Path<i64>,
    f: AdminForm<AppForm>,
) -> Result<Response, WebError> {
    save(&st, l, gate_of(&gate), ip, f, Some(id)).await
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn delete(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    gate: Extension<Arc<Gate>>,
    Path(id): Path<i64>,
    f: AdminForm<Empty>,
) -> Result<Response, WebError> {
    let actor = f.admin.actor();
    let by = Actor {
        tenant_id: f.admin.tenant.id,
        name: &actor,
        ip,
    };
    match apps::delete(&st, gate_of(&gate), &by, id).await {
        Ok(()) => Ok(Redirect::to(PATH).into_response()),
        Err(AppsError::NotFound(w)) => Err(WebError::NotFound(format!("app {w}"))),
        Err(AppsError::Invalid(p)) => Err(WebError::BadRequest(p.to_string())),
        Err(AppsError::Store(e)) => Err(e.into()),
    }
}

/// The icon upload: the file's bytes, base64 in a form field (the page reads the chosen
/// file in console.js), so the upload shares the console's CSRF-checked form path.
#[derive(Deserialize)]
pub struct IconForm {
    #[serde(default)]
    data: String,
}

pub async fn upload_icon(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    gate: Extension<Arc<Gate>>,
    Path(id): Path<i64>,
    f: AdminForm<IconForm>,
) -> Result<Response, WebError> {
    use base64::Engine as _;
    let data = f.form.data.trim();
    let data = data.split_once(";base64,").map(|x| x.1).unwrap_or(data);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| {
            WebError::BadRequest("the icon upload was not readable; choose the file again".into())
        })?;
    let actor = f.admin.actor();
    let by = Actor {
        tenant_id: f.admin.tenant.id,
        name: &actor,
        ip,
    };
    match apps::set_icon(&st, gate_of(&gate), &by, id, &bytes).await {
        Ok(()) => Ok(Redirect::to(&format!("{PATH}/{id}")).into_response()),
        Err(AppsError::Invalid(p)) => {
            let app = st
                .store
                .app_by_id(f.admin.tenant.id, id)
                .await?
                .ok_or_else(|| WebError::NotFound(format!("app #{id}")))?;
            edit_page(
                &st,
                l,
                &f.admin,
                Some(id),
                draft_of(&app),
                None,
                Some(p.to_string()),
            )
            .await
        }
        Err(AppsError::NotFound(w)) => Err(WebError::NotFound(format!("app {w}"))),
        Err(AppsError::Store(e)) => Err(e.into()),
    }
}

/// A built-in icon.
pub async fn builtin_icon(Path(file): Path<String>) -> Result<Response, WebError> {
    let name = file.strip_suffix(".svg").unwrap_or("");
    let svg = builtin_svg(name).ok_or_else(|| WebError::NotFound(format!("icon {file}")))?;
    Ok((
        [
            (CONTENT_TYPE, "image/svg+xml"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        svg,
    )
        .into_response())
}

/// The built-in icons: one glyph each on a coloured square.
fn builtin_svg(name: &str) -> Option<String> {
    let (colour, glyph) = match name {
        "app" => ("#2f6fed", "M14 14h8v8h-8zM26 14h8v8h-8zM14 26h8v8h-8zM26 26h8v8h-8z"),
        "chart" => ("#0e9f6e", "M14 34V24h5v10zM22 34V14h5v20zM30 34v-14h5v14z"),
        "doc" => ("#6b7280", "M16 12h12l6 6v18H16zM20 22h10v2H20zM20 27h10v2H20z"),
        "form" => ("#7c3aed", "M14 14h20v4H14zM14 22h20v4H14zM14 30h12v4H14z"),
        "people" => ("#d97706", "M19 22a4 4 0 1 1 0-8 4 4 0 0 1 0 8zM12 34c0-5 3-8 7-8s7 3 7 8zM29 22a3 3 0 1 1 0-6 3 3 0 0 1 0 6zM28 34c0-3-1-5-2-6 5 0 9 2 9 6z"),
        "calendar" => ("#dc2626", "M14 16h20v18H14zM14 16v5h20v-5zM18 12h2v6h-2zM28 12h2v6h-2z"),
        "money" => ("#059669", "M12 18h24v14H12zM24 21a4 4 0 1 0 0 8 4 4 0 0 0 0-8z"),
        "box" => ("#92400e", "M24 12l11 6v12l-11 6-11-6V18zM24 24v12M13 18l11 6 11-6"),
        "chat" => ("#0891b2", "M12 14h24v14H22l-6 6v-6h-4z"),
        "gear" => ("#475569", "M24 18a6 6 0 1 0 0 12 6 6 0 0 0 0-12zM22 10h4v5h-4zM22 33h4v5h-4zM10 22h5v4h-5zM33 22h5v4h-5z"),
        _ => return None,
    };
    Some(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48"><rect width="48" height="48" rx="10" fill="{colour}"/><path d="{glyph}" fill="#fff" stroke="#fff" stroke-width="0.5"/></svg>"##
    ))
}

/// An uploaded icon, sandboxed: even an SVG opened directly runs nothing.
pub async fn uploaded_icon(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let (kind, bytes) = st
        .store
        .app_icon(t.id, &slug)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("icon of {slug}")))?;
    Ok((
        [
            (CONTENT_TYPE, kind.content_type()),
            (CACHE_CONTROL, "private, max-age=300"),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "app_denied.html")]
pub struct DeniedPage {
    pub l: Lang,
    pub tenant_name: String,
    pub app_name: String,
    pub contact: String,
}

fn denied(l: Lang, tenant_name: &str, app: &App) -> Response {
    let zh = l.is_zh();
    let mut r = render(&DeniedPage {
        l,
        tenant_name: tenant_name.to_string(),
        app_name: app.name(zh).to_string(),
        contact: app.contact.clone(),
    });
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Deserialize, Default)]
pub struct OpenQuery {
    #[serde(default)]
    path: String,
}

/// A member opens an app (workbench tile, the app's own WeCom entry, or back from
/// forward auth's sign-in): the policy is checked, the open counted, and the member sent
/// on. `path` is the page of the app to land on, checked by the one return-path check.
pub async fn open(
    State(st): State<AppState>,
    l: Lang,
    gate: Extension<Arc<Gate>>,
    m: Member,
    Path(slug): Path<String>,
    Query(q): Query<OpenQuery>,
) -> Result<Response, WebError> {
    let now = st.clock.now_ms();
    let app = gate_of(&gate)
        .app(&st, m.tenant.id, &slug, now)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("app {slug}")))?;
    let card = gate_of(&gate)
        .card(&st, m.tenant.id, m.user.id, now)
        .await?
        .ok_or_else(|| WebError::Forbidden("not in the directory".into()))?;
    if !apps::admits(&app, &card) {
        return Ok(denied(l, &m.tenant.name, &app));
    }
    st.store
        .record_app_open(m.tenant.id, app.id, m.user.id)
        .await?;
    let path = crate::domain::return_path::or(&q.path, "");
    let mut r = Redirect::to(&app.open_url(path)).into_response();
    if let Some(c) = m
        .session
        .refresh
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        r.headers_mut().append(SET_COOKIE, c);
    }
    Ok(r)
}

/// `GET /apps/{slug}`: the app's home page, to paste into its own WeCom app's settings
/// (and a plain link to the app). A member with a session goes straight on. Otherwise
/// sign-in goes through the app's own WeCom app when one is bound (silently inside WeCom,
/// by QR code in a browser), else through the workbench's sign-in page. Either way the
/// member lands on `/apps/{slug}/open`, where account status and the app's policy apply:
/// someone in the WeCom app's scope but outside the directory is refused at the door.
pub async fn home(
    State(st): State<AppState>,
    l: Lang,
    CurrentTenant(t): CurrentTenant,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    gate: Extension<Arc<Gate>>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let now = st.clock.now_ms();
    let app = gate_of(&gate)
        .app(&st, t.id, &slug, now)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("app {slug}")))?;
    let open = format!(
        "/apps/{}/open",
        utf8_percent_encode(&app.slug, NON_ALPHANUMERIC)
    );
    let cookie = cookies::get(&headers, SESSION_COOKIE);
    if sessions
        .check(&st, &t, cookie.as_deref(), now)
        .await?
        .is_some()
    {
        return Ok(Redirect::to(&open).into_response());
    }
    let bound = crate::app_binding::binding_of(&st, t.id, app.id).await?;
    let Some(b) = bound else {
        return Ok(Redirect::to(&crate::web::login::login_path(&open)).into_response());
    };
    crate::web::login::start_wecom(&st, &t, Some(b.agentid), &headers, &open, l).await
}

#[derive(Deserialize, Default)]
pub struct VerifyQuery {
    #[serde(default)]
    app: String,
    /// Present (any value): answer a browser without a session with a redirect to
    /// sign-in (Traefik, Caddy); absent: 401 (nginx `auth_request` takes only 2xx/401/403).
    #[serde(default)]
    rd: Option<String>,
}

/// Forward auth: `GET /auth/verify?app={slug}` for nginx `auth_request`, Traefik
/// `forwardAuth` and Caddy `forward_auth`. The original request's cookies and its
/// `X-Forwarded-Uri` (or nginx's `X-Original-URI`) come from the proxy.
pub async fn verify(
    State(st): State<AppState>,
    l: Lang,
    CurrentTenant(t): CurrentTenant,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    gate: Extension<Arc<Gate>>,
    headers: HeaderMap,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, WebError> {
    if q.app.is_empty() {
        return Err(WebError::BadRequest(
            "forward auth needs the app: /auth/verify?app={short name}".into(),
        ));
    }
    let now = st.clock.now_ms();
    let cookie = cookies::get(&headers, SESSION_COOKIE);
    let session = sessions.check(&st, &t, cookie.as_deref(), now).await?;
    let verdict = apps::verify(
        &st,
        gate_of(&gate),
        t.id,
        &q.app,
        session.as_ref().map(|s| s.claims.user_id),
        now,
    )
    .await?;
    let mut r = match verdict {
        Verdict::Allow(card) => {
            let mut r = StatusCode::OK.into_response();
            let h = r.headers_mut();
            put(h, "remote-user", &card.username);
            put(h, "remote-name", &card.user.name);
            if let Some(e) = card.email.as_deref() {
                put(h, "remote-email", e);
            }
            let groups: Vec<String> = card.groups.iter().map(|g| g.replace(',', " ")).collect();
            put(h, "remote-groups", &groups.join(","));
            if let Some(c) = session
                .and_then(|s| s.refresh)
                .and_then(|c| HeaderValue::from_str(&c).ok())
            {
                h.append(SET_COOKIE, c);
            }
            r
        }
        Verdict::SignIn => {
            let uri = headers
                .get("x-forwarded-uri")
                .or_else(|| headers.get("x-original-uri"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("/");
            let to = format!(
                "/apps/{}/open?path={}",
                utf8_percent_encode(&q.app, NON_ALPHANUMERIC),
                utf8_percent_encode(crate::domain::return_path::or(uri, "/"), NON_ALPHANUMERIC)
            );
            if q.rd.is_some() && wants_html(&headers) {
                let mut r = StatusCode::FOUND.into_response();
                r.headers_mut().insert(
                    LOCATION,
                    HeaderValue::from_str(&to).map_err(|e| WebError::Internal(e.to_string()))?,
                );
                r
            } else {
                let mut r = (StatusCode::UNAUTHORIZED, "sign-in required").into_response();
                // Where a proxy (nginx `error_page 401`) can send the browser.
                if let Ok(v) = HeaderValue::from_str(&to) {
                    r.headers_mut()
                        .insert(HeaderName::from_static("x-sign-in"), v);
                }
                r
            }
        }
        Verdict::Refused(app) => denied(l, &t.name, &app),
        Verdict::UnknownApp(slug) => {
            return Err(WebError::NotFound(format!(
                "app {slug:?} in this organisation's catalogue (check the proxy's auth URL)"
            )))
        }
    };
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

fn wants_html(h: &HeaderMap) -> bool {
    h.get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Sets an identity header; names outside visible ASCII travel as UTF-8 bytes, which
/// nginx, Traefik and Caddy pass through unchanged.
fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    let clean: String = value.chars().filter(|c| !c.is_control()).collect();
    if let Ok(v) = HeaderValue::from_bytes(clean.as_bytes()) {
        h.insert(HeaderName::from_static(name), v);
    }
}
