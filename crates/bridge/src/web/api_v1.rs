//! The admin JSON API, `/api/v1` on a tenant's host: bearer API keys (read or
//! read_write), a token bucket per key, RFC 9457 problem bodies, and an OpenAPI 3
//! document generated from these handlers (`/api/v1/openapi.json`): a route is
//! registered together with its documentation, so neither can go without the other.
//! Handlers parse, call the store or `crate::admin`, and render JSON.

use crate::admin::{self, RateLimiter, StatusAction};
use crate::app::AppState;
use crate::domain::api_key::ApiKey;
use crate::domain::directory::{RunKind, RunStatus, Trigger};
use crate::domain::login::{IdentitySource, LoginTarget};
use crate::domain::tenant::Tenant;
use crate::store::{AuditQuery, SyncRun, UserCursorQuery};
use crate::sync::SyncOptions;
use crate::web::error::{Problem, WebError};
use crate::web::tenant::CurrentTenant;
use crate::web::ClientIp;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub const PREFIX: &str = "/api/v1";
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

type ApiResult<T> = Result<T, Problem>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wecom-bridge admin API",
        version = "1",
        description = "Per tenant, on the tenant's host. Authenticate with `Authorization: Bearer <key>` (keys are created in the console under API keys; read keys may only GET). Errors are RFC 9457 application/problem+json with a stable `code`. Rate limits are per key and per instance (429 with Retry-After)."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "sync"), (name = "users"), (name = "login"), (name = "apps"), (name = "audit"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes and their OpenAPI document, built together.
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sync_start, sync_history))
        .routes(routes!(sync_run))
        .routes(routes!(users_list))
        .routes(routes!(user_one))
        .routes(routes!(users_status))
        .routes(routes!(login_config_get, login_config_put))
        .routes(routes!(apps_list))
        .routes(routes!(audit_list))
        .routes(routes!(audit_csv))
        .split_for_parts()
}

/// The OpenAPI document (built once).
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| parts().1)
}

pub fn router(st: &AppState) -> Router<AppState> {
    parts()
        .0
        .route(OPENAPI_PATH, axum::routing::get(openapi_json))
        .route(
            "/api/v1/{*rest}",
            axum::routing::any(|| async { Problem(WebError::NotFound("this API route".into())) }),
        )
        .layer(Extension(Arc::new(RateLimiter::new(
            st.cfg.api_rate_burst,
            st.cfg.api_rate_per_minute,
        ))))
}

async fn openapi_json() -> Response {
    Json(openapi()).into_response()
}

/// The API key of the request, checked: live, of this host's tenant, within its rate,
/// and allowed to write if the method writes.
pub struct ApiCaller {
    pub key: ApiKey,
    pub tenant: Tenant,
}

impl ApiCaller {
    fn actor(&self) -> String {
        admin::key_actor(&self.key)
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Problem> {
        let CurrentTenant(tenant) = CurrentTenant::from_request_parts(parts, st).await?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let key = admin::authenticate(st, tenant.id, token).await?;
        if let Some(l) = parts.extensions.get::<Arc<RateLimiter>>() {
            l.check(key.id, crate::domain::now_ms())?;
        }
        let reads = matches!(parts.method, Method::GET | Method::HEAD);
        if !reads && !key.scope.can_write() {
            return Err(admin::AdminError::ReadOnly.into());
        }
        Ok(ApiCaller { key, tenant })
    }
}

fn json_body<T>(b: Result<Json<T>, axum::extract::rejection::JsonRejection>) -> ApiResult<T> {
    b.map(|Json(v)| v).map_err(Problem::from)
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v).map_err(Problem::from)
}

// ----- sync -----

/// A directory sync run.
#[derive(Serialize, ToSchema)]
pub struct RunDto {
    pub id: i64,
    /// full | dry_run | incremental
    pub kind: String,
    /// wizard | console | schedule | callback | cli | api
    pub trigger: String,
    /// running | succeeded | failed | blocked | interrupted
    pub status: String,
    pub phase: String,
    pub progress_done: i64,
    pub progress_total: i64,
    pub percent: i64,
    /// Seconds left of a wait for WeCom's rate limit, while the run waits.
    pub rate_wait_secs: Option<i64>,
    pub users_added: i64,
    pub users_updated: i64,
    pub users_disabled: i64,
    pub users_moved: i64,
    pub api_calls: i64,
    /// Why it failed, or why the mass-disable guard blocked it.
    pub error: Option<String>,
    /// Applied although the mass-disable guard objected.
    pub forced: bool,
    pub actor: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

fn run_dto(r: &SyncRun) -> RunDto {
    RunDto {
        id: r.id,
        kind: r.kind.as_str().into(),
        trigger: r.trigger.as_str().into(),
        status: r.status.as_str().into(),
        phase: r.phase.clone(),
        progress_done: r.progress_done,
        progress_total: r.progress_total,
        percent: if r.progress_total <= 0 {
            0
        } else {
            (r.progress_done * 100 / r.progress_total).clamp(0, 100)
        },
        rate_wait_secs: r.rate_wait_secs.filter(|_| r.status == RunStatus::Running),
        users_added: r.users_added,
        users_updated: r.users_updated,
        users_disabled: r.users_disabled,
        users_moved: r.users_moved,
        api_calls: r.api_calls,
        error: r.error.clone(),
        forced: r.forced,
        actor: r.actor.clone(),
        started_at: r.started_at,
        finished_at: r.finished_at,
    }
}

#[derive(Deserialize, ToSchema, Default)]
pub struct SyncRequest {
    /// Compute and record the diff, apply nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Apply even if more users would be disabled than the tenant's mass-disable limit
    /// allows (the console's confirmation of a blocked run).
    #[serde(default)]
    pub confirm_mass_disable: bool,
}

/// Start a full sync or a dry run in the background.
#[utoipa::path(post, path = "/api/v1/sync/runs", tag = "sync",
    request_body = SyncRequest,
    responses(
        (status = 202, description = "Started; follow it at /api/v1/sync/runs/{id}", body = RunDto),
        (status = 409, description = "A sync of this tenant is already running", content_type = "application/problem+json"),
        (status = 400, description = "The WeCom integration is not set up", content_type = "application/problem+json"),
    ))]
async fn sync_start(
    State(st): State<AppState>,
    c: ApiCaller,
    body: Result<Json<SyncRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let req = json_body(body)?;
    let mut opts = SyncOptions::new(Trigger::Api, c.actor());
    opts.dry_run = req.dry_run;
    opts.force = req.confirm_mass_disable;
    opts.concurrency = st.cfg.sync_concurrency;
    let id = crate::sync::spawn_full(&st, &c.tenant, opts).await?;
    let run = st
        .store
        .sync_run(c.tenant.id, id)
        .await?
        .ok_or_else(|| WebError::Internal(format!("run {id} vanished")))?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("{PREFIX}/sync/runs/{id}"))],
        Json(run_dto(&run)),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// At most this many runs, newest first (1-100, default 20).
    pub limit: Option<i64>,
    /// Only runs of this kind: full, dry_run or incremental.
    pub kind: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunDto>,
}

/// Sync run history, newest first.
#[utoipa::path(get, path = "/api/v1/sync/runs", tag = "sync", params(HistoryQuery),
    responses((status = 200, body = RunList)))]
async fn sync_history(
    State(st): State<AppState>,
    c: ApiCaller,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<RunList>> {
    let q = query(q)?;
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some(k) => Some(
            k.parse::<RunKind>()
                .map_err(|_| WebError::BadRequest(format!("unknown run kind {k:?}")))?,
        ),
    };
    let runs = st
        .store
        .list_sync_runs(c.tenant.id, kind, q.limit.unwrap_or(20).clamp(1, 100))
        .await?;
    Ok(Json(RunList {
        runs: runs.iter().map(run_dto).collect(),
    }))
}

/// One run with its progress.
#[utoipa::path(get, path = "/api/v1/sync/runs/{id}", tag = "sync",
    params(("id" = i64, Path, description = "Run id")),
    responses((status = 200, body = RunDto), (status = 404, content_type = "application/problem+json")))]
async fn sync_run(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Json<RunDto>> {
    let r = st
        .store
        .sync_run(c.tenant.id, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("sync run {id}")))?;
    Ok(Json(run_dto(&r)))
}

// ----- users -----

#[derive(Serialize, ToSchema)]
pub struct UserDto {
    pub id: i64,
    pub name: String,
    /// authorized | unauthorized | disabled
    pub status: String,
    pub disabled_reason: Option<String>,
    pub position: String,
    pub alias: String,
    pub email: Option<String>,
    pub main_department: Option<i64>,
    pub last_login_at: Option<i64>,
    pub updated_at: i64,
}

fn user_dto(u: &crate::domain::user::User) -> UserDto {
    UserDto {
        id: u.id,
        name: u.name.clone(),
        status: u.status.as_str().into(),
        disabled_reason: u.disabled_reason.map(|r| r.as_str().to_string()),
        position: u.position.clone(),
        alias: u.alias.clone(),
        email: u.email.clone(),
        main_department: u.main_department,
        last_login_at: u.last_login_at,
        updated_at: u.updated_at,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// authorized, unauthorized or disabled.
    pub status: Option<String>,
    /// Members of this department or of any department below it.
    pub department: Option<i64>,
    /// Members with this tag.
    pub tag: Option<i64>,
    /// Substring of name, alias, position or WeCom userid (case-insensitive).
    pub search: Option<String>,
    /// Page size, 1-500 (default 100).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn parse_cursor(c: Option<&str>) -> ApiResult<i64> {
    match c.filter(|c| !c.is_empty()) {
        None => Ok(0),
        Some(c) => c
            .strip_prefix("u")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| WebError::BadRequest(format!("invalid cursor {c:?}")).into()),
    }
}

/// Users, by id, a page at a time.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UsersQuery),
    responses((status = 200, body = UserPage), (status = 400, content_type = "application/problem+json")))]
async fn users_list(
    State(st): State<AppState>,
    c: ApiCaller,
    q: Result<Query<UsersQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<UserPage>> {
    let q = query(q)?;
    let status = parse_status(q.status.as_deref())?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let users = st
        .store
        .users_by_cursor(
            c.tenant.id,
            &UserCursorQuery {
                search: q.search,
                status,
                department_subtree: q.department.filter(|d| *d > 0),
                tag_id: q.tag.filter(|t| *t > 0),
                after_id: parse_cursor(q.cursor.as_deref())?,
                limit: limit + 1,
            },
        )
        .await?;
    let more = users.len() as i64 > limit;
    let page: Vec<_> = users.iter().take(limit as usize).collect();
    Ok(Json(UserPage {
        next_cursor: more
            .then(|| page.last().map(|u| format!("u{}", u.id)))
            .flatten(),
        users: page.into_iter().map(user_dto).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct NamedRef {
    pub id: i64,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct IdentityDto {
    /// `wecom`
    pub kind: String,
    pub corpid: String,
    /// The userid as WeCom spells it.
    pub userid: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserDto,
    /// Main department first.
    pub departments: Vec<NamedRef>,
    pub tags: Vec<NamedRef>,
    pub identities: Vec<IdentityDto>,
}

/// One user with departments, tags and identities.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserDetail), (status = 404, content_type = "application/problem+json")))]
async fn user_one(
    State(st): State<AppState>,
    c: ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Json<UserDetail>> {
    let u = st
        .store
        .user_by_id(c.tenant.id, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("user {id}")))?;
    let x = st.store.user_extras(c.tenant.id, id).await?;
    let named = |v: Vec<(i64, String)>| {
        v.into_iter()
            .map(|(id, name)| NamedRef { id, name })
            .collect()
    };
    Ok(Json(UserDetail {
        user: user_dto(&u),
        departments: named(x.departments),
        tags: named(x.tags),
        identities: x
            .identities
            .into_iter()
            .map(|i| IdentityDto {
                kind: i.kind,
                corpid: i.corpid,
                userid: i.display_id,
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct StatusRequest {
    /// authorize | unauthorize | disable
    pub action: String,
    /// At most 500 user ids. Give these or `filter`, not both.
    #[serde(default)]
    pub user_ids: Vec<i64>,
    /// Everyone matching this filter (at most 100,000 users). Count first with `dry_run`.
    #[serde(default)]
    pub filter: Option<StatusFilter>,
    /// Count only: nothing changes.
    #[serde(default)]
    pub dry_run: bool,
}

/// The users list's filters, all optional; an empty filter means every user.
#[derive(Deserialize, ToSchema, Default)]
pub struct StatusFilter {
    /// authorized, unauthorized or disabled.
    pub status: Option<String>,
    /// Members of this department or of any department below it.
    pub department: Option<i64>,
    /// Members with this tag.
    pub tag: Option<i64>,
    /// Substring of name, alias, position or WeCom userid (case-insensitive).
    pub search: Option<String>,
}

fn parse_status(s: Option<&str>) -> Result<Option<crate::domain::user::UserStatus>, WebError> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| WebError::BadRequest(format!("unknown status {s:?}"))),
    }
}

#[derive(Serialize, ToSchema)]
pub struct StatusResult {
    /// Users named.
    pub matched: usize,
    /// Users whose status changes (or, dry, would change).
    pub changing: usize,
    pub changing_ids: Vec<i64>,
    /// False for a dry run.
    pub applied: bool,
}

/// Authorize, unauthorize or disable users by id or by filter; `dry_run` counts first.
#[utoipa::path(post, path = "/api/v1/users/status", tag = "users", request_body = StatusRequest,
    responses((status = 200, body = StatusResult),
        (status = 400, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", content_type = "application/problem+json"),
        (status = 404, description = "An unknown user id", content_type = "application/problem+json")))]
async fn users_status(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Extension(sessions): Extension<Arc<crate::auth::MemberSessions>>,
    c: ApiCaller,
    body: Result<Json<StatusRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<StatusResult>> {
    let req = json_body(body)?;
    let action = StatusAction::parse(&req.action).ok_or_else(|| {
        WebError::BadRequest(format!(
            "unknown action {:?}: authorize, unauthorize or disable",
            req.action
        ))
    })?;
    let selection = match (&req.filter, req.user_ids.is_empty()) {
        (Some(f), true) => admin::Selection::Filter(UserCursorQuery {
            search: f.search.clone(),
            status: parse_status(f.status.as_deref())?,
            department_subtree: f.department.filter(|d| *d > 0),
            tag_id: f.tag.filter(|t| *t > 0),
            ..Default::default()
        }),
        (None, _) => admin::Selection::Ids(&req.user_ids),
        (Some(_), false) => {
            return Err(WebError::BadRequest("give user_ids or filter, not both".into()).into())
        }
    };
    let r = admin::change_status(
        &st,
        &sessions,
        c.tenant.id,
        admin::StatusOrder {
            selection,
            action,
            dry_run: req.dry_run,
        },
        &c.actor(),
        ip,
    )
    .await?;
    Ok(Json(StatusResult {
        matched: r.matched,
        changing: r.changing.len(),
        changing_ids: r.changing,
        applied: r.applied,
    }))
}

// ----- login configuration -----

/// Which identity sources sign members in to the workbench.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LoginConfigDto {
    pub wecom: Option<bool>,
    pub password: Option<bool>,
    /// In-client sign-in asks members to share the fields WeCom withholds from the
    /// directory (mobile, email, corporate email, avatar, gender); they see WeCom's
    /// consent page, and the WeCom app needs the privilege (issue 20).
    pub consent_fields: Option<bool>,
}

fn login_dto(c: &crate::domain::login::LoginConfig, consent: bool) -> LoginConfigDto {
    LoginConfigDto {
        wecom: Some(c.is_enabled(IdentitySource::Wecom)),
        password: Some(c.is_enabled(IdentitySource::Password)),
        consent_fields: Some(consent),
    }
}

/// The workbench's login configuration.
#[utoipa::path(get, path = "/api/v1/login-config", tag = "login",
    responses((status = 200, body = LoginConfigDto)))]
async fn login_config_get(
    State(st): State<AppState>,
    c: ApiCaller,
) -> ApiResult<Json<LoginConfigDto>> {
    let cfg = st
        .store
        .login_config(c.tenant.id, LoginTarget::Workbench)
        .await?;
    let consent = st.store.consent_enabled(c.tenant.id).await?;
    Ok(Json(login_dto(&cfg, consent)))
}

/// Change it; absent fields stay as they are; at least one source must stay on.
#[utoipa::path(put, path = "/api/v1/login-config", tag = "login", request_body = LoginConfigDto,
    responses((status = 200, body = LoginConfigDto), (status = 400, content_type = "application/problem+json")))]
async fn login_config_put(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    c: ApiCaller,
    body: Result<Json<LoginConfigDto>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<LoginConfigDto>> {
    let req = json_body(body)?;
    let mut sources = Vec::new();
    if let Some(on) = req.wecom {
        sources.push((IdentitySource::Wecom, on));
    }
    if let Some(on) = req.password {
        sources.push((IdentitySource::Password, on));
    }
    let cfg = admin::set_login_config(&st, c.tenant.id, &sources, &c.actor(), ip.clone()).await?;
    if let Some(on) = req.consent_fields {
        crate::auth::consent::set_enabled(&st, &c.tenant, on, &c.actor(), ip).await?;
    }
    let consent = st.store.consent_enabled(c.tenant.id).await?;
    Ok(Json(login_dto(&cfg, consent)))
}

// ----- apps -----

#[derive(Serialize, ToSchema)]
pub struct AppDto {
    pub id: i64,
    pub slug: String,
    pub name_zh: String,
    pub name_en: String,
    pub category: String,
    pub description: String,
    pub position: i64,
    pub enabled: bool,
    pub url: String,
    pub contact: String,
}

#[derive(Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<AppDto>,
}

/// The app catalogue.
#[utoipa::path(get, path = "/api/v1/apps", tag = "apps", responses((status = 200, body = AppList)))]
async fn apps_list(State(st): State<AppState>, c: ApiCaller) -> ApiResult<Json<AppList>> {
    let apps = st.store.list_apps(c.tenant.id).await?;
    Ok(Json(AppList {
        apps: apps
            .into_iter()
            .map(|a| AppDto {
                id: a.id,
                slug: a.slug,
                name_zh: a.name_zh,
                name_en: a.name_en,
                category: a.category,
                description: a.description,
                position: a.position,
                enabled: a.enabled,
                url: a.url,
                contact: a.contact,
            })
            .collect(),
    }))
}

// ----- audit -----

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Exact actor, e.g. `admin:admin` or `api-key:3:ci`.
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `.` (`user.`).
    pub action: Option<String>,
    /// From this instant (Unix ms, inclusive).
    pub from: Option<i64>,
    /// Until this instant (Unix ms, exclusive).
    pub to: Option<i64>,
    /// Page size, 1-1000 (default 100; the CSV export takes up to 10,000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditDto {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub ip: Option<String>,
    /// Unix milliseconds.
    pub at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditDto>,
    pub next_cursor: Option<String>,
}

fn audit_query(q: &AuditParams, max: i64) -> ApiResult<AuditQuery> {
    let before_id = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            c.strip_prefix("a")
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| WebError::BadRequest(format!("invalid cursor {c:?}")))?,
        ),
    };
    Ok(AuditQuery {
        actor: q.actor.clone().filter(|s| !s.is_empty()),
        action: q.action.clone().filter(|s| !s.is_empty()),
        from_ms: q.from,
        to_ms: q.to,
        before_id,
        limit: q.limit.unwrap_or(100).clamp(1, max),
        actors: Vec::new(),
    })
}

/// Audit entries, newest first, filtered by actor, action and time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage)))]
async fn audit_list(
    State(st): State<AppState>,
    c: ApiCaller,
    q: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let q = query(q)?;
    let mut aq = audit_query(&q, 1000)?;
    let limit = aq.limit;
    aq.limit += 1;
    let rows = st.store.audit_by_filter(c.tenant.id, &aq).await?;
    let more = rows.len() as i64 > limit;
    let page: Vec<_> = rows.into_iter().take(limit as usize).collect();
    Ok(Json(AuditPage {
        next_cursor: more
            .then(|| page.last().map(|e| format!("a{}", e.id)))
            .flatten(),
        entries: page
            .into_iter()
            .map(|e| AuditDto {
                id: e.id,
                actor: e.actor,
                action: e.action,
                detail: e.detail,
                ip: e.ip,
                at: e.at,
            })
            .collect(),
    }))
}

/// The same filter as CSV (id, at in RFC 3339 UTC, actor, action, detail, ip).
#[utoipa::path(get, path = "/api/v1/audit.csv", tag = "audit", params(AuditParams),
    responses((status = 200, content_type = "text/csv", body = String)))]
async fn audit_csv(
    State(st): State<AppState>,
    c: ApiCaller,
    q: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let q = query(q)?;
    let mut aq = audit_query(&q, 10_000)?;
    if q.limit.is_none() {
        aq.limit = 10_000;
    }
    let rows = st.store.audit_by_filter(c.tenant.id, &aq).await?;
    let out = admin::export::audit_csv(&rows);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}
