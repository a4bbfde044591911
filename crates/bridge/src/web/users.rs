//! Console → Users: search and filter the directory by department, tag and status;
//! authorize, unauthorize or disable one or many users (after a confirmation page);
//! a user's WeCom identity, departments, tags, last login and sessions (revoke).
//! Every change is audited.

use crate::admin::{self, Selection, StatusAction, StatusOrder};
use crate::app::AppState;
use crate::auth::MemberSessions;
use crate::domain::audit::NewAudit;
use crate::domain::user::{User, UserStatus};
use crate::store::{UserExtras, UserFilter, UserSessionRecord, UserSort};
use crate::web::admin_session::{Admin, AdminForm};
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::pages::{render, Nav};
use crate::web::time::Clock;
use crate::web::ClientIp;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

type Result<T> = std::result::Result<T, WebError>;

const PAGE: i64 = 50;

fn nav(a: &Admin) -> Nav {
    a.nav("users")
}

pub fn status_label(l: Lang, s: UserStatus) -> &'static str {
    crate::web::labels::user_status(l, s)
}

/// A bulk action on users, as the console shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action(pub StatusAction);

impl Action {
    pub fn as_str(self) -> &'static str {
        self.0.as_str()
    }
    pub fn label(self, l: &Lang) -> &'static str {
        match self.0 {
            StatusAction::Authorize => l.t("授权", "Authorize"),
            StatusAction::Unauthorize => l.t("取消授权", "Unauthorize"),
            StatusAction::Disable => l.t("停用", "Disable"),
        }
    }
}

pub struct Row {
    pub user: User,
    pub userid: String,
    /// How the person is in the app's visible scope: their department's name, else the
    /// tags that bring them in, else added by name.
    pub scope: Scope,
}

pub enum Scope {
    Department(String),
    Tags(Vec<String>),
    ByName,
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub rows: Vec<Row>,
    pub total: i64,
    pub q: String,
    pub status: String,
    pub department: i64,
    pub tag: i64,
    pub offset: i64,
    pub departments: Vec<(i64, String)>,
    pub tags: Vec<(i64, String)>,
    pub done: Option<String>,
    /// Why the last bulk action did nothing (e.g. no user was ticked).
    pub notice: Option<String>,
    pub clock: Clock,
    pub sort: UserSort,
    /// Whether the tenant has any user at all (the empty list's words differ).
    pub any_user: bool,
    /// How many members have each private field, and from where (issue 20).
    pub coverage: Vec<crate::domain::consent::FieldCoverage>,
}

impl UsersPage {
    /// `?done=authorize:3` (after a bulk action) in words: "已授权 3 人".
    fn done_message(&self, d: &str) -> String {
        let (action, n) = d.split_once(':').unwrap_or((d, ""));
        let n: i64 = n.parse().unwrap_or(0);
        let l = self.l;
        match action {
            "authorize" => l
                .t(&format!("已授权 {n} 人。"), &format!("{n} authorized."))
                .to_string(),
            "unauthorize" => l
                .t(
                    &format!("已取消 {n} 人的授权。"),
                    &format!("{n} unauthorized."),
                )
                .to_string(),
            "disable" => l
                .t(&format!("已停用 {n} 人。"), &format!("{n} disabled."))
                .to_string(),
            _ => l.t("已完成。", "Done.").to_string(),
        }
    }
    fn label(&self, s: &UserStatus) -> &'static str {
        status_label(self.l, *s)
    }
    fn time(&self, ms: &Option<i64>) -> String {
        self.clock.show_opt(*ms)
    }
    fn filter(&self) -> FilterFields {
        FilterFields {
            q: self.q.clone(),
            status: self.status.clone(),
            department: self.department,
            tag: self.tag,
            sort: self.sort,
        }
    }
    fn page_link(&self, offset: i64) -> String {
        format!("{}offset={offset}", self.filter().list_url())
    }
    /// The link a column's header sorts by: this column, the other way round if it is
    /// the current order.
    fn sort_link(&self, column: &str) -> String {
        let (first, second) = match column {
            "status" => (UserSort::Status, UserSort::StatusDesc),
            "login" => (UserSort::LastLogin, UserSort::LastLoginOldest),
            _ => (UserSort::Name, UserSort::NameDesc),
        };
        let mut f = self.filter();
        f.sort = if self.sort == first { second } else { first };
        let url = f.list_url();
        url.trim_end_matches(['&', '?']).to_string()
    }
    /// `aria-sort` of a column's header.
    fn aria_sort(&self, column: &str) -> &'static str {
        match (column, self.sort) {
            ("name", UserSort::Name) | ("status", UserSort::Status) => "ascending",
            ("login", UserSort::LastLoginOldest) => "ascending",
            ("name", UserSort::NameDesc) | ("status", UserSort::StatusDesc) => "descending",
            ("login", UserSort::LastLogin) => "descending",
            _ => "none",
        }
    }
    fn scope(&self, s: &Scope) -> String {
        scope_words(self.l, s)
    }
    /// The export of this filter, in this order.
    fn export_link(&self) -> String {
        let url = self.filter().list_url();
        let query = url
            .trim_start_matches("/console/users?")
            .trim_end_matches('&');
        if query.is_empty() {
            "/console/users/export.csv".into()
        } else {
            format!("/console/users/export.csv?{query}")
        }
    }
    fn next_link(&self) -> Option<String> {
        (self.offset + PAGE < self.total).then(|| self.page_link(self.offset + PAGE))
    }
    fn prev_link(&self) -> Option<String> {
        (self.offset > 0).then(|| self.page_link((self.offset - PAGE).max(0)))
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    department: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

fn id_param(v: &Option<String>) -> i64 {
    v.as_deref()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub async fn list(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(q) = q?;
    let t = admin.tenant.id;
    let fields = q.fields();
    let offset = q.offset.unwrap_or(0).max(0);
    let filter = UserFilter {
        offset,
        ..fields.user_filter()
    };
    let (users, total) = st.store.list_users(t, &filter).await?;
    let any_user = total > 0
        || st
            .store
            .list_users(
                t,
                &UserFilter {
                    limit: 1,
                    ..Default::default()
                },
            )
            .await?
            .1
            > 0;
    let (departments, tags) = st.store.directory_choices(t).await?;
    let rows = rows_of(&st, t, users, &departments).await?;
    let (status, department, tag) = (filter.status, fields.department, fields.tag);
    Ok(render(&UsersPage {
        l,
        csrf: admin.csrf().to_string(),
        nav: Some(nav(&admin)),
        rows,
        total,
        q: q.q,
        status: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        department,
        tag,
        offset,
        departments,
        tags,
        done: q.done,
        notice: match q.notice.as_deref() {
            Some("none") => Some(
                l.t(
                    "没有选中任何用户：先勾选用户，或使用“对筛选出的全部用户”。",
                    "No user was ticked: tick users first, or use “everyone matching this filter”.",
                )
                .to_string(),
            ),
            _ => None,
        },
        clock: Clock::of(&admin.tenant),
        sort: fields.sort,
        any_user,
        coverage: st.store.field_coverage(t).await?,
    }))
}

impl ListQuery {
    fn fields(&self) -> FilterFields {
        FilterFields {
            q: self.q.clone(),
            status: self
                .status
                .parse::<UserStatus>()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            department: id_param(&self.department),
            tag: id_param(&self.tag),
            sort: UserSort::parse(&self.sort).unwrap_or_default(),
        }
    }
}

/// The page's rows: each user's WeCom userid and how they are in scope.
async fn rows_of(
    st: &AppState,
    tenant_id: i64,
    users: Vec<User>,
    departments: &[(i64, String)],
) -> Result<Vec<Row>> {
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let lo = ids.iter().copied().min().unwrap_or(0);
    let hi = ids.iter().copied().max().unwrap_or(-1);
    let userids = st.store.wecom_userids_between(tenant_id, lo, hi).await?;
    let mut tags = st.store.tag_names_of(tenant_id, &ids).await?;
    let dep_names: HashMap<i64, &String> = departments.iter().map(|(i, n)| (*i, n)).collect();
    Ok(users
        .into_iter()
        .map(|u| Row {
            userid: userids.get(&u.id).cloned().unwrap_or_default(),
            scope: match u.main_department.and_then(|d| dep_names.get(&d)) {
                Some(n) => Scope::Department(n.to_string()),
                None => match tags.remove(&u.id) {
                    Some(t) if !t.is_empty() => Scope::Tags(t),
                    _ => Scope::ByName,
                },
            },
            user: u,
        })
        .collect())
}

/// The columns of the users' export, in this order.
const EXPORT_HEADER: &str = "id,userid,name,status,scope,position,mobile,email,last_sign_in";

/// `GET /console/users/export.csv`: everyone matching the page's filter, in its order
/// (at most 100,000), times in the tenant's zone.
pub async fn export(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    q: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    use crate::admin::export::csv_field;
    let Query(q) = q?;
    let t = &admin.tenant;
    let clock = Clock::of(t);
    let (departments, _) = st.store.directory_choices(t.id).await?;
    let mut filter = UserFilter {
        limit: 500,
        ..q.fields().user_filter()
    };
    let mut out = format!("{EXPORT_HEADER}\r\n");
    let mut written = 0usize;
    loop {
        let (users, _) = st.store.list_users(t.id, &filter).await?;
        let n = users.len();
        for r in rows_of(&st, t.id, users, &departments).await? {
            let scope = scope_words(l, &r.scope);
            let line = [
                r.user.id.to_string(),
                csv_field(&r.userid),
                csv_field(&r.user.name),
                status_label(l, r.user.status).to_string(),
                csv_field(&scope),
                csv_field(&r.user.position),
                csv_field(r.user.mobile.as_deref().unwrap_or("")),
                csv_field(r.user.email.as_deref().unwrap_or("")),
                r.user
                    .last_login_at
                    .map(|ms| clock.show(ms))
                    .unwrap_or_default(),
            ]
            .join(",");
            out.push_str(&line);
            out.push_str("\r\n");
            written += 1;
        }
        if n < filter.limit as usize || written >= crate::admin::export::EXPORT_MAX {
            break;
        }
        filter.offset += n as i64;
    }
    let name = format!("users-{}.csv", t.slug);
    Ok(crate::web::pages::csv_response(&name, out))
}

/// How a person is in scope, in words.
pub fn scope_words(l: Lang, s: &Scope) -> String {
    match s {
        Scope::Department(n) => n.clone(),
        Scope::Tags(t) => format!("{}{}", l.t("标签：", "tag: "), t.join(l.t("、", ", "))),
        Scope::ByName => l.t("按成员加入可见范围", "in scope by name").to_string(),
    }
}

#[derive(Template)]
#[template(path = "users_confirm.html")]
pub struct ConfirmPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub action: Action,
    /// The users the action is for (the first [`CONFIRM_SHOWN`] are listed).
    pub users: Vec<User>,
    /// Set when the action is for everyone matching the Users page's filter.
    pub filter: Option<FilterFields>,
}

/// Users listed by name on the confirmation page; the rest are counted.
pub const CONFIRM_SHOWN: usize = 100;

impl ConfirmPage {
    fn shown(&self) -> &[User] {
        &self.users[..self.users.len().min(CONFIRM_SHOWN)]
    }
    fn more(&self) -> usize {
        self.users.len().saturating_sub(CONFIRM_SHOWN)
    }
}

/// The Users page's filter, carried through the confirmation as hidden fields.
#[derive(Clone, Debug, Default)]
pub struct FilterFields {
    pub q: String,
    pub status: String,
    pub department: i64,
    pub tag: i64,
    pub sort: UserSort,
}

impl FilterFields {
    fn of(f: &HashMap<String, String>) -> Self {
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        FilterFields {
            q: get("f_q"),
            status: get("f_status"),
            department: get("f_department").trim().parse().unwrap_or(0),
            tag: get("f_tag").trim().parse().unwrap_or(0),
            sort: UserSort::parse(&get("f_sort")).unwrap_or_default(),
        }
    }
    fn user_filter(&self) -> UserFilter {
        UserFilter {
            query: Some(self.q.clone()).filter(|s| !s.trim().is_empty()),
            status: self.status.parse::<UserStatus>().ok(),
            department_id: (self.department > 0).then_some(self.department),
            tag_id: (self.tag > 0).then_some(self.tag),
            sort: self.sort,
            limit: PAGE,
            offset: 0,
        }
    }
    /// `/console/users?` with the filter (none: the plain list), ready for one more
    /// parameter.
    fn list_url(&self) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut q = Vec::new();
        if !self.q.is_empty() {
            q.push(format!("q={}", enc(&self.q)));
        }
        if !self.status.is_empty() {
            q.push(format!("status={}", enc(&self.status)));
        }
        if self.department > 0 {
            q.push(format!("department={}", self.department));
        }
        if self.tag > 0 {
            q.push(format!("tag={}", self.tag));
        }
        if self.sort != UserSort::default() {
            q.push(format!("sort={}", self.sort.as_str()));
        }
        q.push(String::new());
        format!("/console/users?{}", q.join("&"))
    }
}

/// The bulk form: `action`; `scope=filter` for everyone matching the page's filter
/// (`f_q`, `f_status`, `f_department`, `f_tag`), else one `u<id>=on` per ticked user;
/// `confirm=yes` once confirmed. Parsed here, done by `admin::change_status`.
#[derive(Deserialize)]
pub struct BulkForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    scope: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

pub async fn bulk(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    f: AdminForm<BulkForm>,
) -> Result<Response> {
    let t = f.admin.tenant.id;
    let action = StatusAction::parse(&f.form.action)
        .map(Action)
        .ok_or_else(|| WebError::BadRequest(format!("unknown action {:?}", f.form.action)))?;
    let fields = FilterFields::of(&f.form.rest);
    let ids: Vec<i64> = f
        .form
        .rest
        .keys()
        .filter_map(|k| k.strip_prefix('u')?.parse().ok())
        .collect();
    let by_filter = f.form.scope == "filter";
    if !by_filter && ids.is_empty() {
        // Back to the same filtered list, saying what to do.
        return Ok(Redirect::to(&format!("{}notice=none", fields.list_url())).into_response());
    }
    let selection = if by_filter {
        Selection::Page(fields.user_filter())
    } else {
        Selection::Ids(&ids)
    };
    if f.form.confirm != "yes" {
        let users = admin::select_users(&st, t, &selection).await?;
        return Ok(render(&ConfirmPage {
            l,
            nav: Some(nav(&f.admin)),
            csrf: f.admin.csrf().to_string(),
            action,
            users,
            filter: by_filter.then_some(fields),
        }));
    }
    let r = admin::change_status(
        &st,
        &sessions,
        t,
        StatusOrder {
            selection,
            action: action.0,
            dry_run: false,
        },
        &f.admin.actor(),
        ip,
    )
    .await?;
    Ok(Redirect::to(&format!(
        "{}done={}:{}",
        fields.list_url(),
        action.as_str(),
        r.changing.len()
    ))
    .into_response())
}

#[derive(Template)]
#[template(path = "users_detail.html")]
pub struct DetailPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub user: User,
    pub extras: UserExtras,
    pub sessions: Vec<UserSessionRecord>,
    pub revoked: bool,
    pub clock: Clock,
    /// Local notes (the bridge's own), and the outcome of saving them.
    pub notes: String,
    pub notes_saved: bool,
    pub notes_error: Option<String>,
    /// Private fields with their value, source and date (issue 20).
    pub fields: Vec<(
        crate::domain::consent::PrivateField,
        Option<crate::domain::consent::Effective>,
    )>,
}

impl DetailPage {
    fn source(&self, e: &crate::domain::consent::Effective) -> String {
        use crate::domain::consent::FieldSource;
        match (e.source, e.recorded_at) {
            (FieldSource::WecomConsent, Some(at)) => self
                .l
                .t(
                    &format!("成员授权（{}）", self.clock.show(at)),
                    &format!("member's consent ({})", self.clock.show(at)),
                )
                .to_string(),
            (FieldSource::WecomConsent, None) => self.l.t("成员授权", "member's consent").into(),
            (FieldSource::WecomDirectory, _) => self
                .l
                .t("企业微信通讯录同步", "WeCom directory sync")
                .into(),
        }
    }

    fn label(&self) -> &'static str {
        status_label(self.l, self.user.status)
    }
    fn time(&self, ms: &i64) -> String {
        self.clock.show(*ms)
    }
    fn last_login(&self) -> String {
        self.user
            .last_login_at
            .map(|m| self.clock.show(m))
            .unwrap_or_else(|| self.l.t("从未登录", "Never").into())
    }
    fn via(&self, v: &str) -> &'static str {
        match v {
            "wecom_client" => self.l.t("企业微信客户端", "WeCom client"),
            "wecom_qr" => self.l.t("企业微信扫码", "WeCom QR code"),
            _ => self.l.t("其他", "Other"),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    #[serde(default)]
    revoked: Option<String>,
    #[serde(default)]
    notes: Option<String>,
}

pub async fn detail(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    Path(id): Path<String>,
    q: Query<DetailQuery>,
) -> Result<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| WebError::NotFound(format!("user {id:?}")))?;
    let mut page = detail_page(&st, l, &admin, id).await?;
    page.revoked = q.revoked.is_some();
    page.notes_saved = q.notes.as_deref() == Some("saved");
    Ok(render(&page))
}

async fn detail_page(st: &AppState, l: Lang, admin: &Admin, id: i64) -> Result<DetailPage> {
    let t = admin.tenant.id;
    let user = st
        .store
        .user_by_id(t, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("user {id}")))?;
    let extras = st.store.user_extras(t, id).await?;
    let sessions = st.store.list_user_sessions(t, id).await?;
    let consented = st.store.consented_fields(t, id).await?;
    let fields = crate::domain::consent::member_fields(
        user.mobile.as_deref(),
        user.email.as_deref(),
        &consented,
    );
    let notes = st.store.user_notes(t, id).await?.unwrap_or_default();
    Ok(DetailPage {
        l,
        nav: Some(nav(admin)),
        csrf: admin.csrf().to_string(),
        user,
        extras,
        sessions,
        revoked: false,
        clock: Clock::of(&admin.tenant),
        fields,
        notes,
        notes_saved: false,
        notes_error: None,
    })
}

#[derive(Deserialize)]
pub struct NotesForm {
    #[serde(default)]
    notes: String,
}

/// `POST /console/users/{id}/notes`: the person's local notes (the bridge owns them; a
/// sync never changes them), audited. Too long: the page again with the text kept.
pub async fn save_notes(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    f: AdminForm<NotesForm>,
) -> Result<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| WebError::NotFound(format!("user {id:?}")))?;
    let notes = match crate::domain::user::check_notes(&f.form.notes) {
        Ok(n) => n,
        Err(_) => {
            let mut page = detail_page(&st, l, &f.admin, id).await?;
            page.notes = f.form.notes.clone();
            page.notes_error = Some(
                l.t(
                    &format!(
                        "备注最多 {} 个字符。未保存。",
                        crate::domain::user::MAX_NOTES
                    ),
                    &format!(
                        "Notes are at most {} characters. Nothing was saved.",
                        crate::domain::user::MAX_NOTES
                    ),
                )
                .to_string(),
            );
            return Ok((axum::http::StatusCode::BAD_REQUEST, render(&page)).into_response());
        }
    };
    let audit = NewAudit {
        tenant_id: f.admin.tenant.id,
        actor: f.admin.actor(),
        action: "user.notes",
        detail: format!("user #{id}"),
        ip,
    };
    if !st
        .store
        .set_user_notes(f.admin.tenant.id, id, &notes, &audit)
        .await?
    {
        return Err(WebError::NotFound(format!("user {id}")));
    }
    Ok(Redirect::to(&format!("/console/users/{id}?notes=saved")).into_response())
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    session: String,
}

pub async fn revoke_session(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Extension(sessions): Extension<Arc<MemberSessions>>,
    Path(id): Path<String>,
    f: AdminForm<RevokeForm>,
) -> Result<Response> {
    let t = f.admin.tenant.id;
    let id: i64 = id
        .parse()
        .map_err(|_| WebError::NotFound(format!("user {id:?}")))?;
    // Only a session of this user on this tenant can be named.
    let owned = st
        .store
        .list_user_sessions(t, id)
        .await?
        .into_iter()
        .any(|s| s.id_hash == f.form.session);
    if !owned || !sessions.end(&st, t, &f.form.session).await? {
        return Err(WebError::NotFound("that session".into()));
    }
    st.store
        .audit(&NewAudit {
            tenant_id: t,
            actor: f.admin.actor(),
            action: "member.session_revoked",
            detail: format!(
                "user {id}, session {}…",
                &f.form.session[..12.min(f.form.session.len())]
            ),
            ip,
        })
        .await?;
    Ok(Redirect::to(&format!("/console/users/{id}?revoked=1")).into_response())
}
