//! OAuth pages: in-client authorize, web login and legacy qrConnect (wecom-api.md §9,
//! simulator rules of §9.6 and §17 #26–#34).
//!
//! Everything WeCom would show to the member is an HTML page answered with HTTP 200; error
//! pages carry WeCom's text and `<meta name="wecom-sim-error" content="<kind>">` so tests
//! can tell them apart. Who signs in is chosen on a picker page, or for automation with
//! `sim_userid`, `sim_openid` or `sim_action=deny` in the query.

use crate::model::{self, status};
use crate::world::{CodeInfo, World};
use crate::Sim;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::RngCore;
use std::fmt::Write as _;

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/connect/oauth2/authorize", get(authorize))
        .route("/wwlogin/sso/login", get(web_login))
        .route("/wwopen/sso/qrConnect", get(qr_connect))
}

/// The three sign-in entry points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// §9.1, inside the WeCom client.
    InClient,
    /// §9.2, `wwlogin/sso/login`.
    WebLogin,
    /// §9.2, legacy `wwopen/sso/qrConnect`.
    QrConnect,
}

impl Flow {
    fn web(self) -> bool {
        self != Flow::InClient
    }
}

async fn authorize(State(sim): State<Sim>, headers: HeaderMap, uri: Uri) -> Response {
    handle(&sim, Flow::InClient, &headers, &uri)
}

async fn web_login(State(sim): State<Sim>, headers: HeaderMap, uri: Uri) -> Response {
    handle(&sim, Flow::WebLogin, &headers, &uri)
}

async fn qr_connect(State(sim): State<Sim>, headers: HeaderMap, uri: Uri) -> Response {
    handle(&sim, Flow::QrConnect, &headers, &uri)
}

/// Query parameters as raw bytes: `state` must come back byte for byte.
struct Params(Vec<(String, Vec<u8>)>);

impl Params {
    fn parse(query: Option<&str>) -> Self {
        let decode = |s: &str| -> Vec<u8> {
            let plus = s.replace('+', " ");
            percent_decode(plus.as_bytes()).collect()
        };
        Params(
            query
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (String::from_utf8_lossy(&decode(k)).into_owned(), decode(v))
                })
                .collect(),
        )
    }

    fn raw(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// A non-empty parameter as text.
    fn get(&self, name: &str) -> Option<String> {
        self.raw(name)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// What went wrong, as the `wecom-sim-error` kind and the page text.
struct PageErr {
    kind: &'static str,
    text: &'static str,
    detail: String,
}

impl PageErr {
    fn new(kind: &'static str, text: &'static str) -> Self {
        PageErr {
            kind,
            text,
            detail: String::new(),
        }
    }
    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// A parameter error: qrConnect shows "该链接无法访问" for all of them (§9.2), the other
/// flows a more specific line (WeCom's where known, else the sim's).
fn param_err(flow: Flow, kind: &'static str, in_client_text: &'static str) -> PageErr {
    let text = if flow.web() {
        "该链接无法访问"
    } else {
        in_client_text
    };
    PageErr::new(kind, text)
}

/// A validated sign-in request.
struct Request<'a> {
    flow: Flow,
    corp_key: String,
    agentid: Option<u32>,
    /// `snsapi_base`, `snsapi_privateinfo`, or `web_login`.
    scope: &'static str,
    redirect_uri: String,
    redirect_host: String,
    state: &'a [u8],
}

fn handle(sim: &Sim, flow: Flow, headers: &HeaderMap, uri: &Uri) -> Response {
    let params = Params::parse(uri.query());
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut w = sim.world();
    let req = match validate(&mut w, flow, &params, ua) {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    if params.get("sim_action").as_deref() == Some("deny") {
        return redirect(&req.redirect_uri, None, req.state);
    }
    let who = if let Some(userid) = params.get("sim_userid") {
        Who::Member(userid)
    } else if let Some(openid) = params.get("sim_openid") {
        Who::Outsider(openid)
    } else {
        return picker(&mut w, &req, &params);
    };
    match sign_in(&mut w, &req, who) {
        Ok(code) => redirect(&req.redirect_uri, Some(&code), req.state),
        Err(e) => error_page(&e),
    }
}

/// Checks in the order a member would meet them: client, corp and app, scope, redirect
/// domain, state.
fn validate<'a>(
    w: &mut World,
    flow: Flow,
    params: &'a Params,
    ua: &str,
) -> Result<Request<'a>, PageErr> {
    if flow == Flow::InClient
        && w.settings.require_wxwork_ua
        && !ua.to_ascii_lowercase().contains("wxwork")
    {
        return Err(PageErr::new("not_in_client", "请在企业微信客户端打开链接"));
    }
    if flow == Flow::WebLogin {
        match params.get("login_type").as_deref() {
            None | Some("CorpApp") => {}
            Some(other) => {
                return Err(param_err(flow, "bad_login_type", "")
                    .detail(format!("login_type={other}：模拟器只支持 CorpApp")))
            }
        }
    }
    let appid = params.get("appid").unwrap_or_default();
    let corp_key = appid.to_ascii_lowercase();
    let Some(corp) = w.corps.get(&corp_key) else {
        return Err(param_err(flow, "bad_appid", "appid参数错误")
            .detail(format!("appid（企业ID）无效：{appid:?}")));
    };

    let agentid = match params.get("agentid") {
        None if flow.web() => {
            return Err(
                param_err(flow, "bad_agentid", "agentid参数错误").detail("网页登录必须带 agentid")
            )
        }
        None => None,
        Some(a) => match a
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|id| corp.apps.contains_key(id))
        {
            Some(id) => Some(id),
            None => {
                return Err(param_err(flow, "bad_agentid", "agentid参数错误")
                    .detail(format!("企业没有 agentid 为 {a:?} 的应用")))
            }
        },
    };
    if let Some(app) = agentid.and_then(|id| corp.apps.get(&id)) {
        if app.close {
            return Err(PageErr::new("app_disabled", "该应用已停用"));
        }
    }

    let scope = if flow.web() {
        "web_login"
    } else {
        match params.get("scope").as_deref() {
            // snsapi_userinfo is from old revisions of the doc: treated as silent.
            None | Some("snsapi_base") | Some("snsapi_userinfo") => "snsapi_base",
            Some("snsapi_privateinfo") => "snsapi_privateinfo",
            Some(other) => {
                return Err(
                    param_err(flow, "bad_scope", "scope参数错误").detail(format!("scope={other}"))
                )
            }
        }
    };
    if scope == "snsapi_privateinfo" && agentid.is_none() {
        return Err(PageErr::new(
            "privateinfo_without_agentid",
            "参数错误：snsapi_privateinfo 需要 agentid",
        ));
    }

    let redirect_uri = params.get("redirect_uri").unwrap_or_default();
    let Some(host) = redirect_authority(&redirect_uri) else {
        return Err(
            param_err(flow, "bad_redirect_uri", "redirect_uri参数错误").detail(format!(
                "redirect_uri 不是有效的 http(s) 地址：{redirect_uri:?}"
            )),
        );
    };
    let domain_of = |a: &model::App| {
        if flow.web() {
            a.web_login_domain.clone()
        } else {
            a.redirect_domain.clone()
        }
    };
    let allowed: Vec<String> = match agentid {
        Some(id) => corp.apps.get(&id).map(domain_of).into_iter().collect(),
        // Without agentid any of the corp's app domains will do (§9.6).
        None => corp.apps.values().map(domain_of).collect(),
    };
    if !allowed
        .iter()
        .any(|d| !d.trim().is_empty() && d.trim().eq_ignore_ascii_case(&host))
    {
        let configured = if allowed.iter().all(|d| d.trim().is_empty()) {
            "（未配置）".to_string()
        } else {
            allowed.join("、")
        };
        let (kind, text) = match flow {
            Flow::InClient => ("redirect_domain_mismatch", "redirect_uri需使用应用可信域名"),
            Flow::WebLogin => (
                "web_login_domain_mismatch",
                "redirect_uri 与配置的授权完成回调域名不一致",
            ),
            Flow::QrConnect => ("web_login_domain_mismatch", "该链接无法访问"),
        };
        return Err(PageErr::new(kind, text).detail(format!(
            "redirect_uri 的域名为 {host}，应用配置的域名为 {configured}"
        )));
    }

    let state = params.raw("state").unwrap_or_default();
    let bad_charset = w.settings.strict_state && !state.iter().all(|b| b.is_ascii_alphanumeric());
    if state.len() > 128 || bad_charset {
        return Err(PageErr::new("bad_state", "state参数错误")
            .detail("state 最长 128 字节，只能包含 a-z、A-Z、0-9"));
    }
    Ok(Request {
        flow,
        corp_key,
        agentid,
        scope,
        redirect_uri,
        redirect_host: host,
        state,
    })
}

/// The literal `host[:port]` of an http(s) URL, host lower-cased; `:443` is kept.
/// None when the URL is invalid or the literal authority disagrees with what a browser
/// would visit (e.g. `https://a.com\@b.com`), so no redirect can escape the check.
fn redirect_authority(uri: &str) -> Option<String> {
    let parsed = url::Url::parse(uri).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let rest = uri.split_once("://")?.1;
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return None;
    }
    let literal = authority.to_ascii_lowercase();
    let (host, port) = match literal.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (h.to_string(), Some(p)),
        _ => (literal.clone(), None),
    };
    let same_host = parsed
        .host_str()
        .is_some_and(|h| h.eq_ignore_ascii_case(&host));
    let same_port = match port {
        None => true,
        Some(p) => p.parse::<u16>().ok() == parsed.port_or_known_default(),
    };
    (same_host && same_port).then_some(literal)
}

enum Who {
    Member(String),
    Outsider(String),
}

/// Issues a code for `who`, or the page saying why not.
fn sign_in(w: &mut World, req: &Request, who: Who) -> Result<String, PageErr> {
    let now = w.now_ms();
    let deny_out_of_scope = w.settings.web_login_out_of_scope_deny;
    let corp = w
        .corps
        .get_mut(&req.corp_key)
        .ok_or_else(|| PageErr::new("bad_appid", "该链接无法访问"))?;
    let (userid, openid) = match who {
        Who::Member(userid) => {
            let m = corp.member(&userid).ok_or_else(|| {
                PageErr::new("unknown_user", "该成员不存在")
                    .detail(format!("企业中没有 userid 为 {userid:?} 的成员"))
            })?;
            if m.status != status::ACTIVE {
                let text = match m.status {
                    status::DISABLED => "该帐号已被停用，无法登录",
                    status::UNACTIVATED => "该帐号尚未激活，无法登录",
                    _ => "该帐号已离职，无法登录",
                };
                return Err(PageErr::new("member_inactive", text));
            }
            (Some(model::key(&m.userid)), None)
        }
        Who::Outsider(openid) => {
            if openid.len() > 64 {
                return Err(PageErr::new("unknown_user", "该成员不存在").detail("openid 过长"));
            }
            (None, Some(openid))
        }
    };
    // Web/QR login refuses whoever is outside the app's scope (§17 #33); in the client a
    // code is issued whatever the scope, and the exchange tells the app (§9.4).
    if req.flow.web() && deny_out_of_scope {
        let in_scope = match (&userid, req.agentid) {
            (Some(k), Some(agentid)) => corp.scope_of(agentid).has_user(k),
            _ => false,
        };
        if !in_scope {
            return Err(PageErr::new("no_permission", "你没有该应用的访问权限"));
        }
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let code = URL_SAFE_NO_PAD.encode(bytes);
    // Expired codes are swept now and then so the map stays small.
    if w.codes.len() >= 4096 && w.codes.len() & 4095 == 0 {
        let ttl = w.settings.code_ttl_secs * 1000;
        w.codes.retain(|_, c| c.issued_ms + ttl > now);
    }
    w.codes.insert(
        code.clone(),
        CodeInfo {
            corp: req.corp_key.clone(),
            agentid: req.agentid,
            redirect_host: req.redirect_host.clone(),
            scope: req.scope.to_string(),
            web_login: req.flow.web(),
            userid,
            openid,
            issued_ms: now,
        },
    );
    Ok(code)
}

/// Query-value encoding: everything but unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// 302 to `redirect_uri` with `code` (unless refused) and `state` appended to its query,
/// before any fragment.
fn redirect(redirect_uri: &str, code: Option<&str>, state: &[u8]) -> Response {
    let (base, fragment) = match redirect_uri.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (redirect_uri, None),
    };
    let mut target = base.to_string();
    if !target.contains('?') {
        target.push('?');
    } else if !target.ends_with('?') && !target.ends_with('&') {
        target.push('&');
    }
    if let Some(code) = code {
        let _ = write!(target, "code={}&", utf8_percent_encode(code, QUERY_VALUE));
    }
    target.push_str("state=");
    target.extend(percent_encoding::percent_encode(state, QUERY_VALUE).map(|s| s.to_string()));
    if let Some(f) = fragment {
        target.push('#');
        target.push_str(f);
    }
    // A Location header takes visible ASCII only: encode anything else the URI carried.
    let location: String = target
        .bytes()
        .map(|b| {
            if (0x21..0x7f).contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    match HeaderValue::from_str(&location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(&PageErr::new("bad_redirect_uri", "redirect_uri参数错误")),
    }
}

pub(crate) fn html_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,'PingFang SC','Microsoft YaHei',sans-serif;background:#f2f3f5;color:#1f2329;-webkit-text-size-adjust:100%}\
.wrap{max-width:480px;margin:0 auto;padding:24px 16px}\
.card{background:#fff;border-radius:12px;padding:24px 20px;box-shadow:0 1px 3px rgba(0,0,0,.06)}\
.brand{display:flex;align-items:center;gap:8px;color:#0082ef;font-weight:600;margin-bottom:16px}\
.logo{width:28px;height:28px;border-radius:8px;background:#0082ef;color:#fff;display:flex;align-items:center;justify-content:center;font-size:16px}\
h1{font-size:18px;margin:0 0 6px}\
.sub{color:#646a73;font-size:14px;margin:0 0 16px}\
.icon{width:56px;height:56px;border-radius:50%;background:#fff1f0;color:#f54a45;font-size:32px;line-height:56px;text-align:center;margin:8px auto 16px}\
.msg{text-align:center;font-size:17px;margin:0 0 8px}\
.detail{text-align:center;color:#8f959e;font-size:13px;margin:0;word-break:break-all}\
.consent{background:#f5f8ff;border-radius:8px;padding:12px;font-size:14px;color:#3b4350;margin-bottom:16px}\
.list{list-style:none;margin:0;padding:0}\
.list li{border-top:1px solid #eff0f1}\
.who{width:100%;display:flex;align-items:center;gap:12px;background:none;border:0;padding:12px 4px;text-align:left;font-size:16px;color:inherit;cursor:pointer}\
.who:hover{background:#f5f6f7}\
.avatar{flex:none;width:36px;height:36px;border-radius:8px;background:#4e83fd;color:#fff;display:flex;align-items:center;justify-content:center;font-size:15px}\
.avatar.out{background:#8f959e}\
.meta{display:block;color:#8f959e;font-size:12px;margin-top:2px}\
.row{display:flex;gap:8px;margin-bottom:12px}\
input[type=text]{flex:1;min-width:0;border:1px solid #d0d3d6;border-radius:8px;padding:9px 10px;font-size:15px}\
.btn{border:0;border-radius:8px;padding:9px 14px;font-size:15px;background:#0082ef;color:#fff;cursor:pointer}\
.btn.ghost{background:#fff;color:#646a73;border:1px solid #d0d3d6;width:100%;margin-top:16px}\
.note{color:#8f959e;font-size:12px;text-align:center;margin-top:16px}";

pub(crate) fn page(title: &str, error_kind: Option<&str>, body: &str) -> String {
    let meta = error_kind
        .map(|k| format!("<meta name=\"wecom-sim-error\" content=\"{}\">", esc(k)))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{meta}\
<title>{}</title><style>{STYLE}</style></head><body><div class=\"wrap\">{body}</div></body></html>",
        esc(title)
    )
}

fn error_page(e: &PageErr) -> Response {
    let detail = if e.detail.is_empty() {
        String::new()
    } else {
        format!("<p class=\"detail\">{}</p>", esc(&e.detail))
    };
    let body = format!(
        "<div class=\"card\"><div class=\"brand\"><span class=\"logo\">企</span>企业微信</div>\
<div class=\"icon\">!</div><p class=\"msg\">{}</p>{detail}</div>",
        esc(e.text)
    );
    html_response(page("企业微信", Some(e.kind), &body))
}

/// At most this many members on one picker page; the search box narrows the list.
const PICKER_LIMIT: usize = 50;

/// The sign-in picker: active members (searchable), outsiders and a refusal button. The
/// form submits back to the same URL with `sim_userid`, `sim_openid` or `sim_action`.
fn picker(w: &mut World, req: &Request, params: &Params) -> Response {
    let Some(corp) = w.corps.get_mut(&req.corp_key) else {
        return error_page(&PageErr::new("bad_appid", "该链接无法访问"));
    };
    let app_name = req
        .agentid
        .and_then(|id| corp.apps.get(&id))
        .map(|a| a.name.clone())
        .unwrap_or_else(|| corp.name.clone());
    let scope = req.agentid.map(|id| corp.scope_of(id));
    let query = params.get("sim_q").unwrap_or_default();
    let q = query.to_lowercase();

    // Original parameters, minus the picker's own, ride along as hidden fields.
    let mut hidden = String::new();
    for (k, v) in &params.0 {
        if k.starts_with("sim_") {
            continue;
        }
        let _ = write!(
            hidden,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(k),
            esc(&String::from_utf8_lossy(v))
        );
    }

    let mut items = String::new();
    let mut shown = 0;
    let mut more = false;
    for m in corp.members.values().filter(|m| m.status == status::ACTIVE) {
        if !q.is_empty()
            && !m.userid.to_lowercase().contains(&q)
            && !m.name.to_lowercase().contains(&q)
        {
            continue;
        }
        if shown == PICKER_LIMIT {
            more = true;
            break;
        }
        shown += 1;
        let initial: String = m.name.chars().last().map(String::from).unwrap_or_default();
        let dept = m
            .main_department
            .and_then(|d| corp.departments.get(&d))
            .map(|d| d.name.as_str())
            .unwrap_or("");
        let out_of_scope = scope
            .as_ref()
            .is_some_and(|s| !s.has_user(&model::key(&m.userid)));
        let mut meta = format!("{} · {}", m.userid, dept);
        if !m.position.is_empty() {
            let _ = write!(meta, " · {}", m.position);
        }
        if out_of_scope {
            meta.push_str(" · 不在应用可见范围");
        }
        let _ = write!(
            items,
            "<li><button class=\"who\" name=\"sim_userid\" value=\"{}\"><span class=\"avatar\">{}</span><span>{}<span class=\"meta\">{}</span></span></button></li>",
            esc(&m.userid),
            esc(&initial),
            esc(&m.name),
            esc(&meta)
        );
    }
    if shown == 0 {
        items.push_str(
            "<li><p class=\"sub\" style=\"padding:12px 4px;margin:0\">没有匹配的成员</p></li>",
        );
    }
    let mut outsiders: Vec<String> = corp.outsiders.clone();
    if outsiders.is_empty() {
        outsiders.push(format!("o{}", crate::world::random_alnum(27)));
    }
    for openid in &outsiders {
        let _ = write!(
            items,
            "<li><button class=\"who\" name=\"sim_openid\" value=\"{}\"><span class=\"avatar out\">外</span><span>企业外部人员<span class=\"meta\">openid {}</span></span></button></li>",
            esc(openid),
            esc(openid)
        );
    }

    let (title, sub) = match req.flow {
        Flow::InClient => (
            "选择登录身份",
            format!("以企业微信成员身份进入「{}」", app_name),
        ),
        Flow::WebLogin | Flow::QrConnect => (
            "企业微信登录",
            format!("选择扫码的成员以登录「{}」", app_name),
        ),
    };
    let consent = if req.scope == "snsapi_privateinfo" {
        let fields = req
            .agentid
            .and_then(|id| corp.apps.get(&id))
            .map(|a| {
                a.privateinfo_fields
                    .iter()
                    .map(|f| field_label(f))
                    .collect::<Vec<_>>()
                    .join("、")
            })
            .unwrap_or_default();
        format!(
            "<div class=\"consent\">「{}」申请获取你的以下信息：{}。选择成员即表示同意授权。</div>",
            esc(&app_name),
            esc(&fields)
        )
    } else {
        String::new()
    };
    let more_note = if more {
        format!("<p class=\"note\">只显示前 {PICKER_LIMIT} 位成员，请输入姓名或帐号搜索</p>")
    } else {
        String::new()
    };
    let body = format!(
        "<div class=\"card\"><div class=\"brand\"><span class=\"logo\">企</span>企业微信 · 模拟器</div>\
<h1>{}</h1><p class=\"sub\">{}</p>{consent}\
<form method=\"get\">{hidden}<div class=\"row\"><input type=\"text\" name=\"sim_q\" value=\"{}\" placeholder=\"搜索姓名或帐号\"><button class=\"btn\" type=\"submit\">搜索</button></div></form>\
<form method=\"get\">{hidden}<ul class=\"list\">{items}</ul>{more_note}\
<button class=\"btn ghost\" name=\"sim_action\" value=\"deny\">拒绝</button></form>\
<p class=\"note\">这是 wecom-sim 模拟的企业微信登录页</p></div>",
        esc(title),
        esc(&sub),
        esc(&query),
    );
    html_response(page(title, None, &body))
}

fn field_label(field: &str) -> &str {
    match field {
        "mobile" => "手机号",
        "email" => "邮箱",
        "biz_mail" => "企业邮箱",
        "avatar" => "头像",
        "gender" => "性别",
        "qr_code" => "个人二维码",
        "address" => "地址",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_is_literal() {
        assert_eq!(
            redirect_authority("https://OA.Example.com/cb?x=1").as_deref(),
            Some("oa.example.com")
        );
        assert_eq!(
            redirect_authority("https://oa.example.com:443/cb").as_deref(),
            Some("oa.example.com:443")
        );
        assert_eq!(
            redirect_authority("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        // `\` ends the authority for browsers: the host is a.com.
        assert_eq!(
            redirect_authority("https://a.com\\@b.com/").as_deref(),
            Some("a.com")
        );
        assert_eq!(redirect_authority("https://u@b.com/"), None);
        assert_eq!(redirect_authority("ftp://b.com/"), None);
        assert_eq!(redirect_authority("/relative"), None);
    }

    #[test]
    fn raw_params_keep_bytes() {
        let p = Params::parse(Some("state=a%2Bb+c%FF&x=&redirect_uri=https%3A%2F%2Fh%2Fp"));
        assert_eq!(p.raw("state"), Some(&b"a+b c\xff"[..]));
        assert_eq!(p.get("x"), None);
        assert_eq!(p.get("redirect_uri").as_deref(), Some("https://h/p"));
    }
}
