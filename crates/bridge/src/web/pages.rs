//! The console's page models (askama templates under `templates/`).

use crate::domain::audit::AuditEntry;
use crate::domain::console_values::ConsoleValue;
use crate::domain::doctor::{Check, Status};
use crate::domain::integration::FieldErrors;
use crate::domain::tenant::Tenant;
use crate::setup::ScopeView;
use crate::web::i18n::Lang;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// What the layout needs to draw the navigation for a signed-in admin.
pub struct Nav {
    pub tenant_name: String,
    pub username: String,
    pub csrf: String,
    pub active: &'static str,
}

pub fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// An error page, in both languages (it is drawn where the request's language is not at
/// hand), with the way back to the workbench and the console.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    code: u16,
    title_zh: &'static str,
    title_en: &'static str,
    body_zh: &'a str,
    body_en: &'a str,
    /// The technical detail (English), when it adds to the body.
    detail: Option<&'a str>,
}

/// The title of an error page by status, in Chinese and English.
fn error_title(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("请求有误", "Bad request"),
        401 => ("需要登录", "Sign-in required"),
        403 => ("无权访问", "Forbidden"),
        404 => ("找不到此页面", "Page not found"),
        408 => ("请求超时", "Request timed out"),
        409 => ("操作冲突", "Conflict"),
        413 => ("提交的内容过大", "Too large"),
        429 => ("请求过于频繁", "Too many requests"),
        500..=599 => ("服务器出错", "Server error"),
        _ => ("出错了", "Something went wrong"),
    }
}

/// `zh` / `en`: what happened, in words; `detail`: the error's own (English) text.
pub fn error_page(status: StatusCode, zh: &str, en: &str, detail: Option<&str>) -> String {
    let (title_zh, title_en) = error_title(status);
    ErrorPage {
        code: status.as_u16(),
        title_zh,
        title_en,
        body_zh: zh,
        body_en: en,
        detail: detail.filter(|d| *d != en),
    }
    .render()
    .unwrap_or_else(|_| en.to_string())
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub tenant_name: String,
    pub csrf: String,
    pub next: String,
    pub username: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub error: Option<String>,
    /// The first sign-in's forced change (no navigation until it is done).
    pub first: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub tenant: Tenant,
    pub mode_label: String,
    /// The wizard's steps with whether each is done.
    pub steps: Vec<(u8, &'static str, &'static str, bool)>,
    /// The first step not done (`None`: the set-up is complete), what to do, and where.
    pub next: Option<u8>,
    pub next_step: String,
    pub next_href: String,
    /// The last full sync: when, its status in words and as stored, its run.
    pub last_sync: Option<(String, &'static str, String, i64)>,
    /// When the next scheduled reconcile is due, in words ("off" when it is off).
    pub next_sync: String,
    /// (status as stored, in words, how many).
    pub users: Vec<(&'static str, &'static str, i64)>,
    pub signed_in_today: i64,
    /// Doctor's last run: when, and its worst finding (None: all passed).
    pub doctor: Option<(String, Option<crate::domain::setup_progress::Finding>)>,
    /// The last full sync's warnings (a bound app's widened scope among them), and its run.
    pub sync_warnings: Vec<String>,
    pub sync_run_id: Option<i64>,
}

impl HomePage {
    fn is_next(&self, step: &u8) -> bool {
        self.next == Some(*step)
    }
}

/// The wizard's steps: number, Chinese and English titles.
pub const STEPS: [(u8, &str, &str); 6] = [
    (1, "检查版本", "Edition"),
    (2, "应用信息", "App details"),
    (3, "企业微信后台配置", "WeCom console values"),
    (4, "同步通讯录", "Sync the directory"),
    (5, "登录配置", "Login configuration"),
    (6, "在企业微信中打开", "Open in WeCom"),
];

#[derive(Template)]
#[template(path = "setup.html")]
pub struct SetupPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub steps: &'static [(u8, &'static str, &'static str)],
    pub step: u8,
    /// Which steps are done (index 0 is step 1), for the ticks in the step pills.
    pub done: [bool; 6],
    pub tenant: Tenant,
    pub csrf: String,
    pub edition_refusal: Option<String>,
    // step 2
    pub form_corpid: String,
    pub form_agentid: String,
    pub has_secret: bool,
    pub field_errors: FieldErrors,
    pub wecom_error: Option<wecom::Explanation>,
    pub wecom_hint: Option<String>,
    pub saved: bool,
    // step 3
    pub values: Vec<ConsoleValue>,
    pub hint3: String,
    pub scope: Option<ScopeView>,
    pub scope_error: Option<String>,
    /// WeCom's trusted domain or home page disagree with this tenant's.
    /// (the step-3 row's key it is about, the warning)
    pub domain_warnings: Vec<(&'static str, String)>,
    pub verify_files: Vec<(String, String)>,
    pub verify_error: Option<String>,
    pub verify_input: String,
    // step 6
    pub home_url: Option<String>,
}

impl SetupPage {
    /// The domain warnings about the step-3 row `key`.
    fn warnings_for(&self, key: &str) -> Vec<&str> {
        self.domain_warnings
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, w)| w.as_str())
            .collect()
    }

    fn is_done(&self, step: &u8) -> bool {
        self.done
            .get(usize::from(*step).wrapping_sub(1))
            .copied()
            .unwrap_or(false)
    }

    pub fn new(l: Lang, nav: Nav, step: u8, tenant: Tenant, csrf: String) -> Self {
        SetupPage {
            l,
            nav: Some(nav),
            steps: &STEPS,
            step,
            done: [false; 6],
            tenant,
            csrf,
            edition_refusal: None,
            form_corpid: String::new(),
            form_agentid: String::new(),
            has_secret: false,
            field_errors: FieldErrors::default(),
            wecom_error: None,
            wecom_hint: None,
            saved: false,
            values: Vec::new(),
            hint3: String::new(),
            scope: None,
            scope_error: None,
            domain_warnings: Vec::new(),
            verify_files: Vec::new(),
            verify_error: None,
            verify_input: String::new(),
            home_url: None,
        }
    }

    fn field_error(&self, field: &str) -> Option<&str> {
        self.field_errors
            .get(field)
            .map(|(zh, en)| self.l.t(zh.as_str(), en.as_str()))
    }
}

#[derive(Template)]
#[template(path = "doctor.html")]
pub struct DoctorPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub checks: Vec<Check>,
    pub clock: crate::web::time::Clock,
}

impl DoctorPage {
    /// The evidence in the page's language, up to WeCom's `hint: […]` and what follows
    /// it (kept for support, behind a details toggle), with its instant in the zone.
    fn evidence(&self, c: &Check) -> String {
        let text = self.l.t(&c.evidence_zh, &c.evidence);
        let (main, _) = split_hint(text);
        match c.at {
            Some(ms) => format!("{main} {}", self.clock.show(ms)),
            None => main.to_string(),
        }
    }
    fn evidence_more(&self, c: &Check) -> Option<String> {
        split_hint(self.l.t(&c.evidence_zh, &c.evidence))
            .1
            .map(str::to_string)
    }
    fn status_class(&self, c: &Check) -> &'static str {
        match c.status {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
        }
    }
    fn status_label(&self, c: &Check) -> &'static str {
        match c.status {
            Status::Pass => self.l.t("通过", "Pass"),
            Status::Warn => self.l.t("注意", "Warning"),
            Status::Fail => self.l.t("失败", "Fail"),
            Status::Skipped => self.l.t("未检查", "Not checked"),
        }
    }
}

/// An audit entry as a person reads it; the stored values stay in data attributes.
pub struct AuditRow {
    pub at: i64,
    pub when: String,
    pub actor: String,
    pub who: String,
    pub action: String,
    pub what: String,
    pub detail: String,
    pub ip: Option<String>,
}

impl AuditRow {
    pub fn new(
        l: Lang,
        clock: &crate::web::time::Clock,
        people: &crate::web::labels::People,
        e: AuditEntry,
    ) -> AuditRow {
        use crate::web::labels;
        AuditRow {
            at: e.at,
            when: clock.show(e.at),
            who: labels::actor(l, &e.actor, people),
            what: labels::audit_action(l, &e.action),
            detail: labels::audit_detail(l, &e.detail),
            actor: e.actor,
            action: e.action,
            ip: e.ip,
        }
    }
}

/// WeCom's errmsg `…, hint: [1796…], from ip: …, more info at …` as the message and
/// the support details.
pub fn split_hint(text: &str) -> (&str, Option<&str>) {
    match text.find(", hint: [") {
        Some(i) => (&text[..i], Some(&text[i + 2..])),
        None => (text, None),
    }
}

/// Civil date from Unix ms (Howard Hinnant's days-from-civil inverse), to avoid a date crate.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn wecom_hints_are_split_off() {
        let (m, more) = super::split_hint(
            "invalid credential, hint: [1796000000000123], from ip: 1.2.3.4, more info at x",
        );
        assert_eq!(m, "invalid credential");
        assert_eq!(
            more,
            Some("hint: [1796000000000123], from ip: 1.2.3.4, more info at x")
        );
        assert_eq!(super::split_hint("ok"), ("ok", None));
    }

    #[test]
    fn utc_format() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            super::format_utc(1_732_435_200_123),
            "2024-11-24 08:00:00 UTC"
        );
    }
}

/// `value` as HTML with a line-break opportunity (`<wbr>`) after each `/`, `.`, `?`, `&`,
/// `=` and `_`: a long URL or key wraps between its parts, not inside a word
/// (`…/callback`, never `…/callbac k`). Use with `|safe`: the text itself is escaped here.
pub fn wbr(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 4);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
        if matches!(c, '/' | '.' | '?' | '&' | '=' | '_') {
            out.push_str("<wbr>");
        }
    }
    out
}

#[cfg(test)]
mod wbr_tests {
    #[test]
    fn breaks_between_parts_and_escapes() {
        assert_eq!(
            super::wbr("https://a.b/wecom/callback?x=1&y=<2>"),
            "https:/<wbr>/<wbr>a.<wbr>b/<wbr>wecom/<wbr>callback?<wbr>x=<wbr>1&amp;<wbr>y=<wbr>&lt;2&gt;"
        );
    }
}

/// A CSV file to download: `name` as the attachment's file name, never cached (it holds
/// the tenant's people or its audit log).
pub fn csv_response(name: &str, body: String) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}
