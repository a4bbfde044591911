//! The pages a member sees when sign-in ends somewhere other than the app: each sign-in
//! problem explained in Chinese and English, with what the member and the admin should do.
//! A leaf: `web::error` sets the status (its table) on what this draws.

use crate::auth::LoginError;
use crate::domain::login::{self, DomainProblem};
use crate::domain::user::DisabledReason;
use crate::web::pages::render;
use askama::Template;
use axum::http::header::CACHE_CONTROL;
use axum::http::HeaderValue;
use axum::response::Response;

#[derive(Template)]
#[template(path = "login_outcome.html")]
pub struct OutcomePage {
    /// Stable name of the outcome (`data-outcome`), for people reading logs and for tests.
    pub kind: &'static str,
    pub title_zh: String,
    pub title_en: String,
    pub body_zh: String,
    pub body_en: String,
    /// What the organisation's admin should do.
    pub admin_zh: String,
    pub admin_en: String,
    pub admin_link: Option<String>,
    /// WeCom's own error text this page explains, if any.
    pub faq: Option<&'static str>,
    pub code: Option<i64>,
    pub retry: bool,
    /// Whom the member should ask, and what to tell them (Chinese, English).
    pub ask: Option<(String, String)>,
    /// A "try again" button (after someone else fixed it) instead of "sign in again".
    pub try_again: bool,
}

impl OutcomePage {
    fn new(kind: &'static str, title: (&str, &str), body: (&str, &str)) -> Self {
        OutcomePage {
            kind,
            title_zh: title.0.into(),
            title_en: title.1.into(),
            body_zh: body.0.into(),
            body_en: body.1.into(),
            admin_zh: String::new(),
            admin_en: String::new(),
            admin_link: None,
            faq: None,
            code: None,
            retry: true,
            ask: None,
            try_again: false,
        }
    }
    fn admin(mut self, zh: impl Into<String>, en: impl Into<String>) -> Self {
        self.admin_zh = zh.into();
        self.admin_en = en.into();
        self
    }
}

fn users_link(userid: &str, status: &str) -> String {
    format!(
        "/console/users?status={status}&q={}",
        percent_encoding::utf8_percent_encode(userid, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// The page of a sign-in problem, in Chinese and English, with what to do.
pub fn problem_page(e: &LoginError) -> Response {
    let page = match e {
        LoginError::StateMissing => OutcomePage::new(
            "state_missing",
            ("登录信息不完整", "The sign-in is incomplete"),
            (
                "返回的登录请求缺少 state 参数，或本浏览器没有保存登录所需的 Cookie。请允许 Cookie 后重新登录。",
                "The sign-in came back without its state parameter, or this browser did not keep the sign-in cookie. Allow cookies and sign in again.",
            ),
        ),
        LoginError::StateInvalid => OutcomePage::new(
            "state_invalid",
            ("登录链接已失效", "This sign-in link is no longer valid"),
            (
                "该登录请求已使用过、已过期（超过 10 分钟）或被修改。请重新登录。",
                "This sign-in was already used, has expired (after 10 minutes) or was altered. Sign in again.",
            ),
        ),
        LoginError::StateForeign => OutcomePage::new(
            "state_foreign",
            ("登录请求与本浏览器不匹配", "This sign-in belongs to another browser"),
            (
                "该登录是在另一个浏览器（或另一个组织）中发起的，为保护您的账号已拒绝。请在本浏览器中重新登录。",
                "This sign-in was started in another browser (or for another organisation) and was refused to protect your account. Sign in again here.",
            ),
        ),
        LoginError::Cancelled => OutcomePage::new(
            "cancelled",
            ("已取消登录", "Sign-in cancelled"),
            ("您在企业微信中取消了授权。", "You declined the authorization in WeCom."),
        ),
        LoginError::SourceOff => OutcomePage::new(
            "wecom_off",
            ("企业微信登录未开启", "WeCom sign-in is turned off"),
            (
                "本工作台当前不允许使用企业微信登录。",
                "This workbench does not currently allow signing in with WeCom.",
            ),
        )
        .admin(
            "管理员：在 管理后台 → 系统设置 → 工作台设置 → 登录配置 中勾选“企业微信”。",
            "Admins: tick “WeCom” under Admin console → System settings → Workbench settings → Login configuration.",
        )
        .with_link("/console/settings/login"),
        LoginError::NotConfigured => OutcomePage::new(
            "not_configured",
            ("企业微信集成尚未设置", "The WeCom integration is not set up"),
            ("暂时无法使用企业微信登录。", "Signing in with WeCom is not available yet."),
        )
        .admin(
            "管理员：在 管理后台 → 企业微信集成 中完成第 1–3 步。",
            "Admins: complete steps 1–3 under Admin console → WeCom integration.",
        )
        .with_link("/console/setup"),
        LoginError::Domain(p) => domain_page(p),
        LoginError::Code(x) => {
            let mut p = OutcomePage::new(
                "code_invalid",
                (&x.title_zh, &x.title_en),
                (
                    "企业微信的登录 code 只能使用一次，且 5 分钟内有效（刷新页面或重复打开回调链接会再次使用它）。请重新登录。",
                    "WeCom's sign-in code works once, within 5 minutes (reloading the page or reopening the callback link reuses it). Sign in again.",
                ),
            )
            .admin(x.fix_zh.clone(), x.fix_en.clone());
            p.code = x.code;
            p
        }
        LoginError::Wecom(x) => {
            let mut p = OutcomePage::new(
                "wecom_error",
                (&x.title_zh, &x.title_en),
                (
                    "企业微信拒绝了本次登录。",
                    "WeCom refused this sign-in.",
                ),
            )
            .admin(x.fix_zh.clone(), x.fix_en.clone());
            p.code = x.code;
            if x.code == Some(50001) {
                p.faq = Some("redirect uri需使用应用可信域名");
            }
            p
        }
        LoginError::NotInDirectory { outsider, userid } => {
            let who = userid.clone().unwrap_or_default();
            let (bz, be) = if *outsider {
                (
                    "您不是本企业的成员（企业微信识别为企业外部人员），因此不在本组织的通讯录中。".to_string(),
                    "You are not a member of this organisation (WeCom identified you as an outside contact), so you are not in its directory.".to_string(),
                )
            } else {
                (
                    format!("您的企业微信账号（{who}）不在本组织已同步的通讯录中。"),
                    format!("Your WeCom account ({who}) is not in this organisation's synced directory."),
                )
            };
            let mut p = OutcomePage::new(
                "not_in_directory",
                ("您不在本组织的通讯录中", "You are not in this organisation's directory"),
                (&bz, &be),
            )
            .admin(
                "管理员：检查企业微信管理后台 应用管理 → 该应用 → 可见范围 是否包含该成员；然后在 管理后台 → 用户 → 从企业微信同步 中同步通讯录。",
                "Admins: check that the app's visible scope (WeCom admin console → App Management → the app → Visible scope) includes this member, then sync the directory (Admin console → Users → Sync from WeCom).",
            )
            .with_link("/console/sync");
            p.retry = false;
            p
        }
        // The member sees the FAQ's words, whom to ask and a way to try again: no admin
        // instructions or console link (they cannot use it; the console has the help).
        LoginError::Unauthorized { userid } => {
            let mut p = OutcomePage::new(
                "unauthorized",
                ("未授权", "Not authorized"),
                (login::UNAUTHORIZED_ZH, login::UNAUTHORIZED_EN),
            );
            p.ask = Some(if userid.is_empty() {
                (
                    "请联系贵单位的企业微信管理员为您授权。".to_string(),
                    "Ask your organisation's WeCom administrator to authorize you.".to_string(),
                )
            } else {
                (
                    format!("请联系贵单位的企业微信管理员为您授权，并告诉他们您的企业微信账号：{userid}。"),
                    format!("Ask your organisation's WeCom administrator to authorize you, and tell them your WeCom account: {userid}."),
                )
            });
            p.retry = false;
            p.try_again = true;
            p
        }
        LoginError::Disabled { userid, reason } => {
            let (rz, re) = match reason {
                Some(DisabledReason::LeftScope) => (
                    "您已不在该应用的可见范围内。",
                    "You are no longer in the app's visible scope.",
                ),
                Some(DisabledReason::LeftWecom) => (
                    "您的企业微信账号已被删除。",
                    "Your WeCom account was deleted.",
                ),
                Some(DisabledReason::WecomDisabled) => (
                    "您的企业微信账号已被禁用。",
                    "Your WeCom account is disabled in WeCom.",
                ),
                Some(DisabledReason::Admin) | None => (
                    "管理员停用了您的账号。",
                    "An administrator disabled your account.",
                ),
            };
            let mut p = OutcomePage::new(
                "disabled",
                ("账号已停用", "Account disabled"),
                (
                    &format!("您的账号已停用，无法登录。{rz}"),
                    &format!("Your account is disabled and cannot sign in. {re}"),
                ),
            )
            .admin(
                format!("管理员：如需恢复，请在 管理后台 → 用户 中找到 {userid} 并重新授权。"),
                format!("Admins: to restore access, find {userid} under Admin console → Users and authorize them again."),
            )
            .with_link(&users_link(userid, "disabled"));
            p.retry = false;
            p
        }
        LoginError::Store(_) | LoginError::Internal(_) => {
            tracing::error!(error = %e, "sign-in failed");
            OutcomePage::new(
                "internal",
                ("登录失败", "Sign-in failed"),
                (
                    "服务器内部错误，详情见服务器日志。请稍后重试。",
                    "Internal error; the details are in the server log. Try again later.",
                ),
            )
        }
    };
    let mut resp = render(&page);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

impl OutcomePage {
    fn with_link(mut self, href: &str) -> Self {
        self.admin_link = Some(href.to_string());
        self
    }
}

/// The guide's FAQ "redirect uri需使用应用可信域名", explained before WeCom would show it.
fn domain_page(p: &DomainProblem) -> OutcomePage {
    let mut page = match p {
        DomainProblem::TrustedDomainDiffers { trusted, needed } => {
            let shown = if trusted.is_empty() { "—" } else { trusted };
            OutcomePage::new(
                "trusted_domain_mismatch",
                ("企业微信可信域名与本服务域名不一致", "WeCom's trusted domain differs from this service's domain"),
                (
                    &format!("企业微信会显示“redirect uri需使用应用可信域名”：应用的可信域名是 {shown}，而登录回调地址的域名是 {needed}，两者必须完全一致（包括端口）。"),
                    &format!("WeCom would show “redirect uri需使用应用可信域名” (the redirect URI must use the app's trusted domain): the app's trusted domain is {shown}, but the sign-in callback is on {needed}. They must match exactly, port included."),
                ),
            )
            .admin(
                format!("管理员：在企业微信管理后台 应用管理 → 该应用 → 网页授权及JS-SDK → 可信域名 中填写 {needed}（不带 http://，有端口时带端口），保存后在本服务的 诊断 页面重新检查。"),
                format!("Admins: in the WeCom admin console, set App Management → the app → Web authorization and JS-SDK → Trusted domain to {needed} (no http://; the port only if it is part of the domain), then re-run Doctor here."),
            )
            .with_link("/console/doctor")
        }
        DomainProblem::RequestHostDiffers {
            request_host,
            redirect_host,
        } => OutcomePage::new(
            "host_mismatch",
            ("请通过组织的正式域名访问", "Open the workbench on the organisation's own domain"),
            (
                &format!("您通过 {request_host} 打开了本页，但企业微信登录只能回到 {redirect_host}（企业微信会显示“redirect uri需使用应用可信域名”，且登录 Cookie 无法跨域名）。请改用 {redirect_host} 打开。"),
                &format!("You opened this page on {request_host}, but WeCom sign-in can only return to {redirect_host} (WeCom would show “redirect uri需使用应用可信域名”, and sign-in cookies do not cross domains). Open it on {redirect_host} instead."),
            ),
        )
        .admin(
            format!("管理员：应用主页和所有入口链接都应使用 {redirect_host}；如需更换域名，请联系平台运营方修改租户域名，并同步修改企业微信中的可信域名。"),
            format!("Admins: the app home page and every link must use {redirect_host}; to change the domain, ask the platform operator to change the tenant's domain and update WeCom's trusted domain to match."),
        ),
    };
    page.faq = Some("redirect uri需使用应用可信域名");
    page.retry = false;
    page
}
