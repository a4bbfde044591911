//! Every handler error is a `WebError`, mapped to an HTTP response here and only here:
//! an HTML page for people, or `{"error": {"code", "message"}}` for JSON clients. The
//! services' errors (sign-in, sync, set-up, app binding, admin, OIDC) get their status
//! here too; a sign-in problem's page itself is drawn by `web::outcome::problem_page`.

use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("no tenant is configured for the host {0:?}")]
    UnknownHost(String),
    #[error("sign-in required")]
    LoginRequired { next: String },
    #[error("see {0}")]
    Redirect(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the form expired or was not sent by this console; reload the page and try again")]
    Csrf,
    #[error("{0}")]
    Conflict(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A member sign-in that did not produce a session: its own page per cause.
    #[error("sign-in: {0}")]
    Login(#[from] crate::auth::LoginError),
    #[error("internal error: {0}")]
    Internal(String),
    /// No credentials, or unusable ones (the API's bearer keys).
    #[error("{0}")]
    Unauthenticated(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) | WebError::UnknownHost(_) => StatusCode::NOT_FOUND,
            WebError::LoginRequired { .. } | WebError::Redirect(_) => StatusCode::SEE_OTHER,
            WebError::Forbidden(_) | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            WebError::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
            WebError::Store(_) | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Login(e) => login_status(e),
            WebError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            WebError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Stable machine-readable code for JSON bodies.
    pub fn code(&self) -> &'static str {
        match self {
            WebError::BadRequest(_) => "bad_request",
            WebError::NotFound(_) => "not_found",
            WebError::UnknownHost(_) => "unknown_host",
            WebError::LoginRequired { .. } => "login_required",
            WebError::Redirect(_) => "redirect",
            WebError::Forbidden(_) => "forbidden",
            WebError::Csrf => "csrf",
            WebError::Conflict(_) => "conflict",
            WebError::Store(StoreError::NotFound(_)) => "not_found",
            WebError::Store(StoreError::Conflict(_)) => "conflict",
            WebError::Store(_) | WebError::Internal(_) => "internal",
            WebError::Login(_) => "login",
            WebError::Unauthenticated(_) => "unauthenticated",
            WebError::TooManyRequests { .. } => "rate_limited",
        }
    }

    /// What a person reads on the error page: Chinese and English, and the error's own
    /// text as the detail where the words are generic.
    fn in_words(&self, msg: &str) -> (String, String, Option<String>) {
        let fixed = |zh: &str, en: &str| (zh.to_string(), en.to_string(), None);
        match self {
            WebError::NotFound(what) => (
                "您要找的页面不存在，或链接已失效。".into(),
                "The page you asked for does not exist, or the link is out of date.".into(),
                Some(what.clone()),
            ),
            WebError::UnknownHost(host) => (
                format!("没有组织使用域名 {host}。请检查地址，或联系平台运营方。"),
                format!("No organisation uses the domain {host}. Check the address, or ask the platform operator."),
                None,
            ),
            WebError::Csrf => fixed(
                "表单已过期，或不是从本后台提交的。请刷新页面后重试。",
                "The form expired or was not sent by this console. Reload the page and try again.",
            ),
            WebError::TooManyRequests { retry_after_secs } => (
                format!("请求过于频繁，请 {retry_after_secs} 秒后重试。"),
                format!("Too many requests; try again in {retry_after_secs} s."),
                None,
            ),
            WebError::Store(StoreError::NotFound(_) | StoreError::Conflict(_)) | WebError::Conflict(_) => (
                "该操作与当前状态冲突，请刷新页面后重试。".into(),
                "This conflicts with the current state. Reload the page and try again.".into(),
                Some(msg.to_string()),
            ),
            WebError::Store(_) | WebError::Internal(_) => fixed(
                "服务器内部错误，详情见服务器日志。请稍后重试。",
                "Internal error; the details are in the server log. Try again later.",
            ),
            WebError::Forbidden(_) => (
                "您没有权限执行此操作。".into(),
                "You are not allowed to do this.".into(),
                Some(msg.to_string()),
            ),
            _ => (
                "请求无法完成。".into(),
                "The request could not be completed.".into(),
                Some(msg.to_string()),
            ),
        }
    }

    fn public_message(&self) -> String {
        match self {
            // Internal details go to the log, not to the browser.
            WebError::Store(StoreError::NotFound(_) | StoreError::Conflict(_)) => self.to_string(),
            WebError::Store(_) | WebError::Internal(_) => {
                "internal error; the details are in the server log".into()
            }
            _ => self.to_string(),
        }
    }

    /// The JSON form, for API routes.
    pub fn into_json(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body =
            serde_json::json!({"error": {"code": self.code(), "message": self.public_message()}});
        let mut resp = (self.status(), axum::Json(body)).into_response();
        if let WebError::TooManyRequests { retry_after_secs } = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        resp
    }
}

impl From<crate::credentials::CredentialsError> for WebError {
    fn from(e: crate::credentials::CredentialsError) -> Self {
        match e {
            crate::credentials::CredentialsError::Store(s) => WebError::Store(s),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<crate::credentials::Throttled> for WebError {
    fn from(t: crate::credentials::Throttled) -> Self {
        WebError::TooManyRequests {
            retry_after_secs: t.retry_after_secs,
        }
    }
}

impl WebError {
    /// The RFC 9457 `application/problem+json` form, for the admin API: `type` (a URN
    /// naming the code), `title`, `status`, `detail`, and the console's `code`.
    pub fn into_problem(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "API request failed");
        }
        let code = self.code();
        let body = serde_json::json!({
            "type": format!("urn:wecom-bridge:problem:{code}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.public_message(),
            "code": code,
        });
        let mut resp = (status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            WebError::Unauthenticated(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"api\""),
                );
            }
            WebError::TooManyRequests { retry_after_secs } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        resp
    }
}

/// An admin API error: a [`WebError`] rendered as problem+json.
#[derive(Debug)]
pub struct Problem(pub WebError);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.0.into_problem()
    }
}

macro_rules! problem_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Problem {
            fn from(e: $t) -> Self {
                Problem(WebError::from(e))
            }
        }
    )*};
}
problem_from!(
    WebError,
    StoreError,
    crate::admin::AdminError,
    crate::sync::SyncError,
    axum::extract::rejection::JsonRejection,
    axum::extract::rejection::QueryRejection
);

impl From<crate::admin::AdminError> for WebError {
    fn from(e: crate::admin::AdminError) -> Self {
        use crate::admin::AdminError as E;
        match e {
            E::Invalid(m) => WebError::BadRequest(m),
            E::NotFound(m) => WebError::NotFound(m),
            E::Unauthenticated(m) => WebError::Unauthenticated(m.to_string()),
            E::ReadOnly => WebError::Forbidden(e.to_string()),
            E::RateLimited { retry_after_secs } => WebError::TooManyRequests { retry_after_secs },
            E::Store(s) => WebError::Store(s),
            E::Internal(m) => WebError::Internal(m),
        }
    }
}

impl From<crate::admin::account::AccountError> for WebError {
    fn from(e: crate::admin::account::AccountError) -> Self {
        use crate::admin::account::AccountError as E;
        match e {
            E::Throttled(t) => t.into(),
            E::Credentials(c) => c.into(),
            E::Store(s) => WebError::Store(s),
            E::Internal(m) => WebError::Internal(m),
            other => WebError::BadRequest(other.to_string()),
        }
    }
}

/// An admin's own sign-in or password form refused: the status and the words shown on
/// the form again. `None`: not the typist's doing (a lockout, the store), the page of
/// `WebError` answers instead.
pub fn account_refusal(
    e: &crate::admin::account::AccountError,
    l: crate::web::i18n::Lang,
) -> Option<(StatusCode, String)> {
    use crate::admin::account::AccountError as E;
    let (status, zh, en) = match e {
        E::WrongCredentials => (
            StatusCode::UNAUTHORIZED,
            "用户名或密码错误。",
            "Wrong username or password.",
        ),
        E::CurrentPasswordWrong => (
            StatusCode::BAD_REQUEST,
            "当前密码不正确。",
            "The current password is wrong.",
        ),
        E::TooShort => (
            StatusCode::BAD_REQUEST,
            "密码至少 12 个字符。",
            "The password needs at least 12 characters.",
        ),
        E::Mismatch => (
            StatusCode::BAD_REQUEST,
            "两次输入不一致。",
            "The two entries differ.",
        ),
        E::Unchanged => (
            StatusCode::BAD_REQUEST,
            "新密码不能与当前密码（或一次性密码）相同。",
            "The new password must differ from the current (or one-time) password.",
        ),
        E::Throttled(_) | E::Credentials(_) | E::Store(_) | E::Internal(_) => return None,
    };
    Some((status, l.t(zh, en).to_string()))
}

impl From<crate::admin::policy::SavePolicyError> for WebError {
    fn from(e: crate::admin::policy::SavePolicyError) -> Self {
        match e {
            crate::admin::policy::SavePolicyError::Store(s) => WebError::Store(s),
            other => WebError::BadRequest(other.to_string()),
        }
    }
}

/// The sync policy form refused (400): the field it is about, if one, and the words
/// shown beside it. `None`: not the form's fault (the store), `WebError` answers.
pub fn policy_refusal(
    e: &crate::admin::policy::SavePolicyError,
    l: crate::web::i18n::Lang,
) -> Option<(Option<&'static str>, String)> {
    use crate::admin::policy::SavePolicyError as E;
    use crate::domain::directory::PolicyError as P;
    let zh = l.is_zh();
    let pick = |z: String, e: String| if zh { z } else { e };
    Some(match e {
        E::Unreadable { field } => (
            Some(*field),
            match *field {
                "new_user_status" => pick(
                    "请选择新同步用户的状态。".into(),
                    "Choose the status of newly synced users.".into(),
                ),
                "max_disable_percent" => pick(
                    "请填写 0 到 100 之间的数字，例如 5 或 2.5。".into(),
                    "Enter a number from 0 to 100, such as 5 or 2.5.".into(),
                ),
                _ => pick(
                    "请填写整数分钟，例如 60；0 为关闭。".into(),
                    "Enter whole minutes, such as 60; 0 turns it off.".into(),
                ),
            },
        ),
        E::Invalid(P::NewUserStatus) => (
            Some("new_user_status"),
            pick(
                "新同步的用户只能是“已授权”或“未授权”，不能是“已停用”。".into(),
                e.to_string(),
            ),
        ),
        E::Invalid(P::Permille) => (
            Some("max_disable_percent"),
            pick(
                "停用比例须在 0 到 100% 之间。".into(),
                "The mass-disable limit must be between 0 and 100 %.".into(),
            ),
        ),
        E::Invalid(P::Interval) => (
            Some("reconcile_minutes"),
            pick(
                "定期核对间隔至少 1 分钟，或填 0 关闭。".into(),
                "Reconcile at least 1 minute apart, or enter 0 to turn it off.".into(),
            ),
        ),
        // WeCom's hourly limit per API: a reconcile too often would use it all up.
        E::TooFrequent { cost: c, .. } => {
            let min = c.min_interval_secs() / 60;
            (
                Some("reconcile_minutes"),
                pick(
                    format!(
                        "定期核对太频繁：一次完整核对要调用 {} {} 次，企业微信每个接口每小时最多 150,000 次（还要留一半给回调和登录）。请设为至少 {min} 分钟，或 0 关闭。",
                        c.busiest, c.busiest_calls
                    ),
                    format!(
                        "Reconciling that often would exceed WeCom's limit: one full reconcile calls {} {} times, and WeCom allows 150,000 calls an hour per API (half is kept for callbacks and sign-ins). Set at least {min} minutes, or 0 to turn it off.",
                        c.busiest, c.busiest_calls
                    ),
                ),
            )
        }
        E::Store(_) => return None,
    })
}

impl From<axum::extract::rejection::FormRejection> for WebError {
    fn from(r: axum::extract::rejection::FormRejection) -> Self {
        WebError::BadRequest(format!("invalid form: {}", r.body_text()))
    }
}

impl From<axum::extract::rejection::QueryRejection> for WebError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        WebError::BadRequest(format!("invalid query: {}", r.body_text()))
    }
}

impl From<axum::extract::rejection::JsonRejection> for WebError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        WebError::BadRequest(format!("invalid JSON: {}", r.body_text()))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::LoginRequired { next } = &self {
            let to = format!(
                "/console/login?next={}",
                percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
            );
            return Redirect::to(&to).into_response();
        }
        if let WebError::Redirect(to) = &self {
            return Redirect::to(to).into_response();
        }
        if let WebError::Login(e) = &self {
            let mut resp = crate::web::outcome::problem_page(e);
            *resp.status_mut() = login_status(e);
            return resp;
        }
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let msg = self.public_message();
        let (zh, en, detail) = self.in_words(&msg);
        let html = crate::web::pages::error_page(status, &zh, &en, detail.as_deref());
        let mut resp = (status, html).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        if let WebError::TooManyRequests { retry_after_secs } = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        resp
    }
}

/// The HTTP status of each sign-in problem.
pub fn login_status(e: &crate::auth::LoginError) -> StatusCode {
    use crate::auth::LoginError;
    match e {
        LoginError::StateMissing
        | LoginError::StateInvalid
        | LoginError::StateForeign
        | LoginError::Cancelled
        | LoginError::Code(_) => StatusCode::BAD_REQUEST,
        LoginError::SourceOff
        | LoginError::NotInDirectory { .. }
        | LoginError::Unauthorized { .. }
        | LoginError::Disabled { .. } => StatusCode::FORBIDDEN,
        LoginError::NotConfigured | LoginError::Domain(_) => StatusCode::CONFLICT,
        LoginError::Wecom(_) => StatusCode::BAD_GATEWAY,
        LoginError::Store(_) | LoginError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<crate::sync::SyncError> for WebError {
    fn from(e: crate::sync::SyncError) -> Self {
        use crate::sync::SyncError;
        match e {
            SyncError::Busy => WebError::Conflict(e.to_string()),
            SyncError::NotConfigured => WebError::BadRequest(e.to_string()),
            SyncError::Store(s) => WebError::Store(s),
            other => WebError::Internal(other.explain().0),
        }
    }
}

/// The status of a refused set-up step 2 (the page shows the fields or WeCom's answer);
/// `None`: not the admin's input, a plain error through `From<SetupError>`.
pub fn setup_refusal(e: &crate::setup::SetupError) -> Option<StatusCode> {
    use crate::setup::SetupError as E;
    match e {
        E::Edition(_) => Some(StatusCode::FORBIDDEN),
        E::Fields(_) | E::Wecom(_) | E::VerifyFileName(_) => Some(StatusCode::BAD_REQUEST),
        E::NoVerifyFile(_) => Some(StatusCode::NOT_FOUND),
        E::Store(_) | E::Seal(_) => None,
    }
}

impl From<crate::setup::SetupError> for WebError {
    fn from(e: crate::setup::SetupError) -> Self {
        use crate::setup::SetupError as E;
        match e {
            E::Store(s) => WebError::Store(s),
            E::Seal(s) => WebError::Internal(s.to_string()),
            E::Edition(_) => WebError::Forbidden(e.to_string()),
            E::NoVerifyFile(_) => WebError::NotFound(e.to_string()),
            e => WebError::BadRequest(e.to_string()),
        }
    }
}

/// An OAuth 2.0 error (RFC 6749 §5.2, RFC 6750 §3) as the token, userinfo and revocation
/// endpoints answer it: JSON `{"error", "error_description"}`, never cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    pub status: StatusCode,
    /// `WWW-Authenticate` for 401 answers (Basic for client authentication, Bearer for
    /// access tokens).
    pub www_authenticate: Option<String>,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" | "invalid_token" => StatusCode::UNAUTHORIZED,
            "insufficient_scope" => StatusCode::FORBIDDEN,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError {
            error,
            description: description.into(),
            status,
            www_authenticate: None,
        }
    }
}

impl From<crate::oidc::OidcError> for OAuthError {
    fn from(e: crate::oidc::OidcError) -> Self {
        use crate::oidc::OidcError as E;
        match e {
            E::InvalidRequest(d) => OAuthError::new("invalid_request", d),
            E::InvalidClient { description, basic } => {
                let mut o = OAuthError::new("invalid_client", description);
                if basic {
                    o.www_authenticate = Some("Basic realm=\"oidc\"".into());
                }
                o
            }
            E::InvalidGrant(d) => OAuthError::new("invalid_grant", d),
            E::UnsupportedGrantType(d) => OAuthError::new("unsupported_grant_type", d),
            E::UnsupportedTokenType(d) => OAuthError::new("unsupported_token_type", d),
            E::InvalidToken(d) => {
                let mut o = OAuthError::new("invalid_token", d.clone());
                o.www_authenticate = Some(format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    d.replace(['"', '\\'], "")
                ));
                o
            }
            E::Store(_) | E::Internal(_) => {
                tracing::error!(error = %e, "OIDC request failed");
                OAuthError::new("server_error", "internal error; see the server log")
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.error, "error_description": self.description});
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(v) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

impl From<crate::oidc::OidcError> for WebError {
    fn from(e: crate::oidc::OidcError) -> Self {
        use crate::oidc::OidcError as E;
        match e {
            E::Store(s) => WebError::Store(s),
            E::Internal(m) => WebError::Internal(m),
            other => WebError::BadRequest(other.to_string()),
        }
    }
}

/// A refused binding of an app to its own WeCom app, as the status and the message shown
/// above the binding form (the admin can act on it). `None`: not the admin's input; it
/// goes through `From<BindError> for WebError`.
pub fn bind_refusal(
    e: &crate::app_binding::BindError,
    l: crate::web::i18n::Lang,
) -> Option<(StatusCode, String)> {
    use crate::app_binding::BindError as E;
    let zh = l.is_zh();
    let pick = |z: String, e: String| if zh { z } else { e };
    Some(match e {
        E::NotConfigured => (
            StatusCode::CONFLICT,
            pick(
                "请先在设置向导中配置企业微信主应用（工作台），再绑定模型应用自己的企业微信应用。".into(),
                "Set up the main WeCom app (the workbench) in Setup first, then bind a model app's own WeCom app.".into(),
            ),
        ),
        E::Fields(f) => (
            StatusCode::BAD_REQUEST,
            f.0.values()
                .map(|(z, e)| pick(z.clone(), e.clone()))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        E::IsMainApp(a) => (
            StatusCode::BAD_REQUEST,
            pick(
                format!("AgentId {a} 是工作台主应用；请为模型应用在企业微信中另建一个自建应用，再填它的 AgentId。"),
                e.to_string(),
            ),
        ),
        E::Conflict(what) => (
            StatusCode::CONFLICT,
            pick(format!("无法绑定：{what}。一个企业微信应用只能绑定一个模型应用。"), format!("Cannot bind: {what}. A WeCom app can be bound to one model app only.")),
        ),
        E::Wecom(w) => {
            let x = w.explain();
            (
                StatusCode::BAD_GATEWAY,
                pick(
                    format!("企业微信拒绝了该应用：{}。{}", x.title_zh, x.fix_zh),
                    format!("WeCom refused the app: {}. {}", x.title_en, x.fix_en),
                ),
            )
        }
        E::OutsideMainScope {
            agent_name,
            outsiders,
        } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            pick(
                format!("未绑定「{agent_name}」：{}", outsiders.message_zh()),
                format!("{agent_name} was not bound: {}", outsiders.message_en()),
            ),
        ),
        E::AppNotFound(_) | E::Store(_) | E::Seal(_) => return None,
    })
}

impl From<crate::app_binding::BindError> for WebError {
    fn from(e: crate::app_binding::BindError) -> Self {
        use crate::app_binding::BindError as E;
        match e {
            E::AppNotFound(id) => WebError::NotFound(format!("app #{id}")),
            E::Store(s) => WebError::Store(s),
            E::Seal(s) => WebError::Internal(s.to_string()),
            e => WebError::BadRequest(e.to_string()),
        }
    }
}
