//! Console pages: sign-in, overview, the WeCom set-up wizard, doctor.
//! Handlers are thin: they parse, call `setup`/`doctor`/the store, and render.

use crate::admin::account;
use crate::app::AppState;
use crate::credentials;
use crate::domain::console_values::{console_values, ConsoleInputs, HOME_PATH};
use crate::domain::directory::{RunKind, RunReport};
use crate::domain::integration::WecomCredentialsInput;
use crate::domain::return_path;
use crate::domain::setup_progress;
use crate::domain::tenant::{IntegrationMode, Tenant};
use crate::setup::{self, Actor, SetupError};
use crate::web::admin_session::{Admin, AdminForm, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::web::cookies;
use crate::web::error::{account_refusal, WebError};
use crate::web::i18n::Lang;
use crate::web::labels;
use crate::web::pages::*;
use crate::web::tenant::CurrentTenant;
use crate::web::time::Clock;
use crate::web::ClientIp;
use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;

type Result<T> = std::result::Result<T, WebError>;

fn nav(admin: &Admin, active: &'static str) -> Nav {
    admin.nav(active)
}

fn secure(st: &AppState) -> bool {
    st.cfg.https()
}

/// Only same-origin paths may follow a sign-in: the one check every flow uses.
pub fn safe_next(next: &str) -> &str {
    return_path::or(next, return_path::CONSOLE_DEFAULT)
}

pub async fn home(State(st): State<AppState>, l: Lang, admin: Admin) -> Result<Response> {
    let t = &admin.tenant;
    let clock = Clock::of(t);
    let mode_label = match t.integration_mode {
        IntegrationMode::None => l.t("未开启", "Not enabled"),
        IntegrationMode::ThirdParty => l.t("第三方应用（旧）", "Third-party app (earlier)"),
        IntegrationMode::SelfBuilt => l.t("自建应用", "Self-built app"),
    };
    let (facts, doctor) = crate::doctor::setup_facts(&st, t).await?;
    let done = setup_progress::done_steps(&facts);
    let next = setup_progress::next_step(&done);
    let (next_step, next_href) = next_words(l, next, doctor.as_ref());
    // What the last reconcile found that needs the admin (e.g. an app's scope widened in
    // WeCom), so it is seen without opening the run.
    let last = st
        .store
        .list_sync_runs(t.id, Some(RunKind::Full), 1)
        .await?
        .into_iter()
        .next();
    let sync_warnings = last
        .as_ref()
        .and_then(|r| r.report_json.as_deref())
        .and_then(|j| serde_json::from_str::<RunReport>(j).ok())
        .map(|r| r.warnings_in(l.is_zh()).to_vec())
        .unwrap_or_default();
    let next_sync = match crate::sync::background::next_reconcile_at(&st, t.id).await? {
        Some(at) if at <= st.clock.now_ms() => l.t("即将开始", "due now").to_string(),
        Some(at) => clock.show(at),
        None if facts.synced => l.t("已关闭", "off").to_string(),
        None => l.t("首次同步后开始", "after the first sync").to_string(),
    };
    let users = st
        .store
        .count_users_by_status(t.id)
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str(), labels::user_status(l, s), n))
        .collect();
    let today = clock.start_of_day(st.clock.now_ms());
    Ok(render(&HomePage {
        l,
        nav: Some(nav(&admin, "home")),
        tenant: t.clone(),
        mode_label: mode_label.into(),
        steps: STEPS
            .iter()
            .zip(done)
            .map(|(s, d)| (s.0, s.1, s.2, d))
            .collect(),
        next,
        next_step,
        next_href: next_href.into(),
        last_sync: last.as_ref().map(|r| {
            (
                clock.show(r.started_at),
                labels::run_status(l, r.status),
                r.status.as_str().to_string(),
                r.id,
            )
        }),
        next_sync,
        users,
        signed_in_today: st.store.count_signed_in_since(t.id, today).await?,
        doctor: doctor.map(|d| (clock.show(d.at), d.worst)),
        sync_warnings,
        sync_run_id: last.map(|r| r.id),
    }))
}

/// The overview's next-step card: what to do for the first step not done, and where.
fn next_words(
    l: Lang,
    next: Option<u8>,
    doctor: Option<&setup_progress::DoctorSummary>,
) -> (String, &'static str) {
    let (zh, en, href): (String, String, &'static str) = match next {
        Some(1) => (
            "当前版本不支持企业微信集成，请先升级版本。".into(),
            "This edition cannot use the WeCom integration; upgrade first.".into(),
            "/console/setup/1",
        ),
        Some(2) => (
            "填写企业微信自建应用的 CorpID、AgentId 和 Secret。".into(),
            "Enter the WeCom self-built app's CorpID, AgentId and Secret.".into(),
            "/console/setup/2",
        ),
        Some(3) => match doctor.and_then(|d| d.worst.as_ref()) {
            Some(w) if doctor.is_some() => (
                format!("诊断发现问题：{}。{}", w.title_zh, w.fix_zh),
                format!("Doctor found a problem: {}. {}", w.title_en, w.fix_en),
                "/console/doctor",
            ),
            _ => (
                "把向导给出的配置填到企业微信管理后台，然后运行诊断。".into(),
                "Enter the wizard's values in the WeCom admin console, then run Doctor.".into(),
                "/console/setup/3",
            ),
        },
        Some(4) => (
            "从企业微信同步通讯录（可先预览）。".into(),
            "Sync the directory from WeCom (preview it first if you like).".into(),
            "/console/sync?from=wizard",
        ),
        Some(5) => (
            "在登录配置中勾选“企业微信”，成员即可用企业微信登录。".into(),
            "Tick “WeCom” in the login configuration so members can sign in with WeCom.".into(),
            "/console/settings/login",
        ),
        Some(_) => (
            "在企业微信中打开应用：填好应用主页后，成员在工作台点开即可登录。".into(),
            "Open the app in WeCom: with its home page set, members tap it in Workplace and are signed in.".into(),
            "/console/setup/6",
        ),
        None => (
            "设置已完成：成员可以在企业微信中打开工作台。".into(),
            "Set-up is complete: members open the workbench from WeCom.".into(),
            "/console/doctor",
        ),
    };
    (if l.is_zh() { zh } else { en }, href)
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

pub async fn login_page(
    State(st): State<AppState>,
    l: Lang,
    CurrentTenant(t): CurrentTenant,
    Query(q): Query<NextQuery>,
) -> Response {
    login_form(&st, l, &t, safe_next(&q.next), "", None)
}

fn login_form(
    st: &AppState,
    l: Lang,
    t: &Tenant,
    next: &str,
    username: &str,
    error: Option<String>,
) -> Response {
    let csrf = credentials::random_token();
    let page = LoginPage {
        l,
        nav: None,
        tenant_name: t.name.clone(),
        csrf: csrf.clone(),
        next: next.to_string(),
        username: username.to_string(),
        error,
    };
    let cookie = cookies::set(LOGIN_CSRF_COOKIE, &csrf, Some(3600), secure(st));
    ([(SET_COOKIE, cookie)], render(&page)).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn login(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    CurrentTenant(t): CurrentTenant,
    headers: axum::http::HeaderMap,
    form: std::result::Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response> {
    let axum::Form(f) = form?;
    let cookie = cookies::get(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if f.csrf.is_empty() || !credentials::ct_eq(&cookie, &f.csrf) {
        return Err(WebError::Csrf);
    }
    let username = f.username.trim();
    let by = account::Caller {
        tenant_id: t.id,
        ip: ip.as_deref(),
    };
    let signed_in = match account::sign_in(&st, by, username, &f.password).await {
        Ok(s) => s,
        Err(e) => {
            let Some((status, msg)) = account_refusal(&e, l) else {
                return Err(e.into());
            };
            let mut resp = login_form(&st, l, &t, safe_next(&f.next), username, Some(msg));
            *resp.status_mut() = status;
            return Ok(resp);
        }
    };
    let to = if signed_in.must_change_password {
        "/console/password"
    } else {
        safe_next(&f.next)
    };
    let set = cookies::set(SESSION_COOKIE, &signed_in.token, None, secure(&st));
    let clear = cookies::clear(LOGIN_CSRF_COOKIE, secure(&st));
    Ok((
        AppendHeaders([(SET_COOKIE, set), (SET_COOKIE, clear)]),
        Redirect::to(to),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    f: AdminForm<Empty>,
) -> Result<Response> {
    let by = account::Caller {
        tenant_id: f.admin.tenant.id,
        ip: ip.as_deref(),
    };
    account::sign_out(&st, by, &f.admin.actor(), &f.admin.id_hash).await?;
    let clear = cookies::clear(SESSION_COOKIE, secure(&st));
    Ok(([(SET_COOKIE, clear)], Redirect::to("/console/login")).into_response())
}

pub async fn password_page(l: Lang, admin: Admin) -> Response {
    let first = admin.session.must_change_password;
    render(&PasswordPage {
        l,
        nav: (!first).then(|| nav(&admin, "password")),
        csrf: admin.csrf().to_string(),
        error: None,
        first,
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn change_password(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<PasswordForm>,
) -> Result<Response> {
    let by = account::Caller {
        tenant_id: f.admin.tenant.id,
        ip: ip.as_deref(),
    };
    let typed = account::NewPassword {
        current: &f.form.current,
        password: &f.form.password,
        confirm: &f.form.confirm,
    };
    let s = &f.admin.session;
    let changed =
        account::change_password(&st, by, s.admin_id, &s.username, &f.admin.actor(), typed).await;
    match changed {
        // Every session of this admin has ended, this one too: sign in with the new password.
        Ok(()) => {
            let clear = cookies::clear(SESSION_COOKIE, secure(&st));
            Ok(([(SET_COOKIE, clear)], Redirect::to("/console/login")).into_response())
        }
        Err(e) => {
            let Some((status, msg)) = account_refusal(&e, l) else {
                return Err(e.into());
            };
            let first = s.must_change_password;
            let mut resp = render(&PasswordPage {
                l,
                nav: (!first).then(|| nav(&f.admin, "password")),
                csrf: f.admin.csrf().to_string(),
                error: Some(msg),
                first,
            });
            *resp.status_mut() = status;
            Ok(resp)
        }
    }
}

pub async fn setup_index() -> Redirect {
    Redirect::to("/console/setup/1")
}

pub async fn setup_step(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    Path(step): Path<String>,
) -> Result<Response> {
    let step: u8 = step
        .parse()
        .ok()
        .filter(|s| (1..=6).contains(s))
        .ok_or_else(|| WebError::NotFound(format!("set-up step {step:?}")))?;
    let page = setup_page(&st, l, &admin, step).await?;
    Ok(render(&page))
}

async fn setup_page(st: &AppState, l: Lang, admin: &Admin, step: u8) -> Result<SetupPage> {
    let t = &admin.tenant;
    let mut p = SetupPage::new(
        l,
        nav(admin, "setup"),
        step,
        t.clone(),
        admin.csrf().to_string(),
    );
    if let Err(e) = t.edition.check_wecom_allowed() {
        p.edition_refusal = Some(match l {
            Lang::Zh => format!(
                "企业微信集成需要{}或更高版本，当前租户为{}。",
                e.required.label_zh(),
                e.current.label_zh()
            ),
            Lang::En => e.to_string(),
        });
    }
    p.done = setup_progress::done_steps(&crate::doctor::setup_facts(st, t).await?.0);
    let rec = st.store.main_integration(t.id).await?;
    if let Some(r) = &rec {
        p.form_corpid = r.corpid.clone();
        p.form_agentid = r.agentid.to_string();
        p.has_secret = true;
    }
    p.home_url = t
        .domain
        .as_ref()
        .map(|d| format!("{}{HOME_PATH}", st.cfg.base_url_for(d)));
    if step == 3 {
        fill_step3(st, &mut p, t, rec.as_ref()).await?;
    }
    Ok(p)
}

async fn fill_step3(
    st: &AppState,
    p: &mut SetupPage,
    t: &Tenant,
    rec: Option<&crate::store::IntegrationRecord>,
) -> Result<()> {
    let l = p.l;
    p.verify_files = st.store.list_verify_files(t.id).await?;
    let (Some(domain), Some(rec)) = (t.domain.as_ref(), rec) else {
        p.hint3 = if t.domain.is_none() {
            l.t(
                "该租户还没有自定义域名，请联系平台运营方设置。",
                "This tenant has no custom domain yet; ask the platform operator to set one.",
            )
        } else {
            l.t("请先完成第 2 步。", "Complete step 2 first.")
        }
        .into();
        return Ok(());
    };
    let opened = st
        .open_integration(rec)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    p.values = console_values(&ConsoleInputs {
        base_url: &st.cfg.base_url_for(domain),
        domain,
        egress_ips: &st.cfg.egress_ips,
        callback_token: &opened.callback_token,
        callback_aes_key: &opened.callback_aes_key,
    });
    // The scope as WeCom reports it now (a live agent/get, then names).
    let client = st.wecom.get(&opened.corpid, &opened.secret);
    match client {
        Ok(c) => match c.agent_get(opened.agentid).await {
            Ok(agent) => {
                if let Ok(json) = serde_json::to_string(&agent) {
                    st.store
                        .set_agent_snapshot(t.id, rec.agentid, &json)
                        .await?;
                }
                let base = st.cfg.base_url_for(domain);
                p.domain_warnings = setup::domain_warnings(
                    l.is_zh(),
                    &agent,
                    domain,
                    &format!("{base}{HOME_PATH}"),
                );
                p.scope = Some(setup::describe_scope(&c, &agent).await);
            }
            Err(e) => {
                let x = e.explain();
                p.scope_error = Some(format!(
                    "{} — {}",
                    l.t(&x.title_zh, &x.title_en),
                    l.t(&x.fix_zh, &x.fix_en)
                ));
            }
        },
        Err(e) => p.scope_error = Some(e.to_string()),
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct CredForm {
    #[serde(default)]
    corpid: String,
    #[serde(default)]
    agentid: String,
    #[serde(default)]
    secret: String,
}

/// Only step 2 takes a form.
pub async fn setup_post(
    st: State<AppState>,
    l: Lang,
    ip: ClientIp,
    Path(step): Path<String>,
    f: AdminForm<CredForm>,
) -> Result<Response> {
    if step != "2" {
        return Err(WebError::NotFound(format!(
            "a form for set-up step {step:?}"
        )));
    }
    save_credentials(st, l, ip, f).await
}

async fn save_credentials(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<CredForm>,
) -> Result<Response> {
    let admin = f.admin;
    let input = WecomCredentialsInput {
        corpid: f.form.corpid,
        agentid: f.form.agentid,
        secret: f.form.secret,
    };
    let actor = Actor {
        name: admin.actor(),
        ip,
    };
    match setup::save_credentials(&st, &admin.tenant, &input, &actor).await {
        Ok(_) => Ok(Redirect::to("/console/setup/3").into_response()),
        Err(e) => {
            let mut p = setup_page(&st, l, &admin, 2).await?;
            // Keep what was typed (never the secret) and say what is wrong beside it.
            p.form_corpid = input.corpid.clone();
            p.form_agentid = input.agentid.clone();
            let Some(status) = crate::web::error::setup_refusal(&e) else {
                return Err(e.into());
            };
            match e {
                SetupError::Fields(fe) => p.field_errors = fe,
                SetupError::Wecom(w) => {
                    p.wecom_hint = w.api().and_then(|a| a.hint()).map(str::to_string);
                    p.wecom_error = Some(w.explain());
                }
                _ => {}
            }
            let mut resp = render(&p);
            *resp.status_mut() = status;
            Ok(resp)
        }
    }
}

#[derive(Deserialize)]
pub struct VerifyFileForm {
    #[serde(default)]
    filename: String,
}

pub async fn add_verify_file(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<VerifyFileForm>,
) -> Result<Response> {
    let name = f.form.filename.trim();
    let by = Actor {
        name: f.admin.actor(),
        ip,
    };
    match setup::add_verify_file(&st, f.admin.tenant.id, name, &by).await {
        Ok(()) => Ok(Redirect::to("/console/setup/3").into_response()),
        Err(SetupError::VerifyFileName(_)) => {
            let mut p = setup_page(&st, l, &f.admin, 3).await?;
            p.verify_input = name.to_string();
            p.verify_error = Some(
                l.t(
                    "文件名应形如 WW_verify_xxxxxxxxxxxxxxxx.txt（企业微信后台下载的文件名）。",
                    "The file name should look like WW_verify_xxxxxxxxxxxxxxxx.txt (the file WeCom's console gives you).",
                )
                .into(),
            );
            let mut resp = render(&p);
            *resp.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_verify_file(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    f: AdminForm<VerifyFileForm>,
) -> Result<Response> {
    let by = Actor {
        name: f.admin.actor(),
        ip,
    };
    setup::delete_verify_file(&st, f.admin.tenant.id, f.form.filename.trim(), &by).await?;
    Ok(Redirect::to("/console/setup/3").into_response())
}

pub async fn doctor_page(State(st): State<AppState>, l: Lang, admin: Admin) -> Result<Response> {
    let checks = crate::doctor::run(&st, &admin.tenant).await?;
    Ok(render(&DoctorPage {
        l,
        nav: Some(nav(&admin, "doctor")),
        checks,
        clock: Clock::of(&admin.tenant),
    }))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next("/console/setup/2"), "/console/setup/2");
        assert_eq!(safe_next("/redirect?u=http://x"), "/redirect?u=http://x");
        for bad in [
            "//evil.com",
            "https://evil.com",
            "/\\evil.com",
            "evil",
            "/x\r\nSet-Cookie: a=b",
            "/\t/evil.example/x",
            "/\u{b}/evil.example/x",
        ] {
            assert_eq!(safe_next(bad), "/console", "{bad}");
        }
    }
}
