//! Member sign-in end to end over HTTP against wecom-sim, on SQLite and (with
//! TEST_DATABASE_URL) PostgreSQL: silent in-client login, QR login, state and code
//! misuse, open-redirect attempts, every outcome page, the login configuration taking
//! effect at once on a second instance, session expiry, revocation and disabling.

mod common;

use bridge::domain::tenant::Edition;
use bridge::domain::user::{DisabledReason, UserStatus};
use bridge::store::WecomUserSeed;
use bridge::testing::database_urls;
use bridge::ServerHandle;
use common::*;
use serde_json::json;
use std::time::Duration;
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET, OUTSIDER_OPENID};

const WXWORK_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light";
const CHROME_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";
const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47 NetType/WIFI Language/zh_CN";

/// A member's browser: its own cookies, a User-Agent, the tenant's Host.
struct MemberBrowser {
    b: Browser,
    ua: &'static str,
    http: reqwest::Client,
}

impl MemberBrowser {
    fn new(addr: std::net::SocketAddr, host: &str, ua: &'static str) -> Self {
        MemberBrowser {
            b: Browser::new(addr, host),
            ua,
            http: no_redirects(),
        }
    }
    async fn get(&self, path: &str) -> Page {
        self.b
            .send(
                self.http
                    .get(self.b.url(path))
                    .header("user-agent", self.ua),
            )
            .await
    }
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.b
            .send(
                self.http
                    .post(self.b.url(path))
                    .header("user-agent", self.ua)
                    .form(form),
            )
            .await
    }
    fn cookie(&self, name: &str) -> Option<String> {
        self.b
            .cookie_header()
            .split("; ")
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// One GET with a given Cookie header (a cookie replayed on another instance).
async fn get_with_cookies(
    addr: std::net::SocketAddr,
    host: &str,
    cookies: &str,
    path: &str,
) -> u16 {
    no_redirects()
        .get(format!("http://{addr}{path}"))
        .header("host", host)
        .header("cookie", cookies)
        .header("user-agent", WXWORK_UA)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Appends `k=v` to a URL's query (dropping `#wechat_redirect`, as a browser would
/// keep it client-side).
fn with_param(url: &str, k: &str, v: &str) -> String {
    let base = url.split('#').next().unwrap();
    format!("{base}&{k}={v}")
}

/// A page of wecom-sim, fetched as the member's client would.
async fn sim_get(url: &str, ua: &str) -> Page {
    let r = no_redirects()
        .get(url)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    Page {
        status: r.status().as_u16(),
        location: r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string()),
        body: r.text().await.unwrap(),
    }
}

/// The path and query of a URL on the tenant's domain.
fn local_path(env_domain: &str, url: &str) -> String {
    let prefix = format!("http://{env_domain}");
    url.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not on {env_domain}"))
        .to_string()
}

struct Setup {
    env: Env,
    tenant_id: i64,
    csrf: String,
    zhangsan: i64,
    lisi: i64,
    wangwu: i64,
}

fn seed(
    userid: &str,
    name: &str,
    status: UserStatus,
    deps: &[(i64, &str, i64)],
    tags: &[(i64, &str)],
) -> WecomUserSeed {
    WecomUserSeed {
        userid: userid.into(),
        name: name.into(),
        status,
        position: "工程师".into(),
        departments: deps
            .iter()
            .map(|(i, n, p)| (*i, n.to_string(), *p))
            .collect(),
        tags: tags.iter().map(|(i, n)| (*i, n.to_string())).collect(),
    }
}

/// Both servers, the admin signed in, credentials saved, WeCom ticked in the login
/// configuration, and a small directory: 张三 authorized, 李四 not authorized, 王五
/// disabled by an admin (zhoujiu, in WeCom but out of scope, is not in the directory).
async fn setup(db: &str) -> Setup {
    let env = start(db, Edition::Professional).await;
    let csrf = env.admin_login().await;
    let r = env
        .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    set_login_config(&env.browser, &csrf, true, true).await;
    let store = &env.bridge.state.store;
    let tenant_id = store.tenant_by_slug("default").await.unwrap().unwrap().id;
    let zhangsan = store
        .upsert_wecom_user(
            tenant_id,
            CORPID,
            &seed(
                "zhangsan",
                "张三",
                UserStatus::Authorized,
                &[(2, "研发中心", 1), (3, "后端组", 2)],
                &[(1, "项目A")],
            ),
        )
        .await
        .unwrap();
    let lisi = store
        .upsert_wecom_user(
            tenant_id,
            CORPID,
            &seed(
                "lisi",
                "李四",
                UserStatus::Unauthorized,
                &[(3, "后端组", 2)],
                &[],
            ),
        )
        .await
        .unwrap();
    let wangwu = store
        .upsert_wecom_user(
            tenant_id,
            CORPID,
            &seed(
                "wangwu",
                "王五",
                UserStatus::Authorized,
                &[(4, "市场部", 1)],
                &[(1, "项目A")],
            ),
        )
        .await
        .unwrap();
    store
        .set_users_status(
            tenant_id,
            &[wangwu],
            UserStatus::Disabled,
            Some(DisabledReason::Admin),
        )
        .await
        .unwrap();
    Setup {
        env,
        tenant_id,
        csrf,
        zhangsan,
        lisi,
        wangwu,
    }
}

async fn set_login_config(admin: &Browser, csrf: &str, wecom: bool, password: bool) -> Page {
    let mut form = vec![("csrf", csrf)];
    if wecom {
        form.push(("wecom", "on"));
    }
    if password {
        form.push(("password", "on"));
    }
    let r = admin.post("/console/settings/login", &form).await;
    if wecom || password {
        assert_eq!(r.status, 303, "{}", r.body);
    }
    r
}

impl Setup {
    fn member(&self, ua: &'static str) -> MemberBrowser {
        MemberBrowser::new(self.env.bridge.addr, &self.env.domain, ua)
    }

    /// Another bridge instance on the same database (and instance key).
    async fn second_instance(
        &self,
        tweak: impl FnOnce(&mut bridge::config::Config),
    ) -> ServerHandle {
        let mut cfg = config(
            &self.env.sim,
            &self.env.data_dir,
            &self.env.database_url,
            &self.env.domain,
            Edition::Professional,
        );
        tweak(&mut cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        bridge::launch(cfg, listener).await.unwrap()
    }

    /// Starts at `start` (a bridge path), follows the bridge's redirect to wecom-sim,
    /// picks `who` there (`sim_userid=…`, `sim_openid=…` or `sim_action=deny`) and
    /// returns the callback URL's path the sim redirects to.
    async fn through_wecom(&self, m: &MemberBrowser, start: &str, who: (&str, &str)) -> String {
        let p = m.get(start).await;
        assert_eq!(p.status, 303, "{start}: {}", p.body);
        let to_wecom = p.location.unwrap();
        assert!(to_wecom.starts_with(&self.env.sim.base_url), "{to_wecom}");
        let r = sim_get(&with_param(&to_wecom, who.0, who.1), m.ua).await;
        assert_eq!(r.status, 302, "sim: {}", r.body);
        local_path(&self.env.domain, &r.location.unwrap())
    }

    /// A complete silent in-client sign-in; returns the callback's answer.
    async fn sign_in(&self, m: &MemberBrowser, userid: &str) -> Page {
        let cb = self
            .through_wecom(m, "/wecom/home", ("sim_userid", userid))
            .await;
        m.get(&cb).await
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        self.env
            .bridge
            .state
            .store
            .list_audit(self.tenant_id, 200, None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.actor, e.action))
            .collect()
    }
}

fn outcome(p: &Page) -> &str {
    let needle = "data-outcome=\"";
    let Some(i) = p.body.find(needle) else {
        return "";
    };
    let rest = &p.body[i + needle.len()..];
    &rest[..rest.find('"').unwrap()]
}

#[tokio::test]
async fn silent_in_client_login_lands_on_the_workbench() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let m = s.member(WXWORK_UA);
        // Not signed in: the workbench sends to /login, keeping the return path.
        let p = m.get("/").await;
        assert_eq!(
            (p.status, p.location.as_deref()),
            (303, Some("/login?next=%2F"))
        );

        // The home page goes straight to WeCom's in-client authorize URL, whose
        // redirect_uri is built from the tenant's configured domain.
        let p = m.get("/wecom/home").await;
        assert_eq!(p.status, 303);
        let loc = p.location.clone().unwrap();
        let expected_redirect = format!(
            "redirect_uri=http%3A%2F%2F{}%2Fauth%2Fwecom%2Fcallback",
            s.env.domain.replace(':', "%3A")
        );
        assert!(
            loc.contains("/connect/oauth2/authorize?appid=wwtestcorp00000001"),
            "{loc}"
        );
        assert!(loc.contains(&expected_redirect), "{loc}");
        assert!(
            loc.contains("scope=snsapi_base")
                && loc.contains("agentid=1000002")
                && loc.ends_with("#wechat_redirect")
        );
        let binding = m.cookie("wb_oauth").expect("binding cookie");
        assert!(binding.len() > 43, "{binding}");

        let r = sim_get(&with_param(&loc, "sim_userid", "zhangsan"), WXWORK_UA).await;
        assert_eq!(r.status, 302, "{}", r.body);
        let cb = local_path(&s.env.domain, r.location.as_deref().unwrap());
        assert!(cb.starts_with("/auth/wecom/callback?code="));
        let done = m.get(&cb).await;
        assert_eq!(
            (done.status, done.location.as_deref()),
            (303, Some("/")),
            "{}",
            done.body
        );
        let session = m.cookie("wb_session").expect("session cookie");
        assert!(!session.is_empty());

        let home = m.get("/").await;
        assert_eq!(home.status, 200, "{}", home.body);
        assert!(
            home.body.contains("data-testid=\"member-name\">张三<"),
            "{}",
            home.body
        );
        assert!(home.body.contains("研发中心"), "main department shown");
        assert!(home.body.contains("action=\"/logout\""));

        // Only the SHA-256 of the session id is stored; last login is recorded; audited.
        let store = &s.env.bridge.state.store;
        let sessions = store
            .list_user_sessions(s.tenant_id, s.zhangsan)
            .await
            .unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].via, "wecom_client");
        assert_eq!(sessions[0].id_hash.len(), 64);
        assert!(!session.contains(&sessions[0].id_hash));
        let user = store
            .user_by_id(s.tenant_id, s.zhangsan)
            .await
            .unwrap()
            .unwrap();
        assert!(user.last_login_at.is_some());
        assert!(s
            .audit_actions()
            .await
            .contains(&("wecom:zhangsan".into(), "member.login".into())));

        // Signed in already: /login and /wecom/home go straight to the return path.
        let p = m.get("/wecom/home").await;
        assert_eq!(p.location.as_deref(), Some("/"));
    }
}

#[tokio::test]
async fn session_cookie_attributes() {
    let s = setup(&bridge::testing::sqlite_url()).await;
    let m = s.member(WXWORK_UA);
    let cb = s
        .through_wecom(&m, "/wecom/home", ("sim_userid", "zhangsan"))
        .await;
    let r = no_redirects()
        .get(m.b.url(&cb))
        .header("host", &s.env.domain)
        .header("cookie", m.b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let c = set
        .iter()
        .find(|c| c.starts_with("wb_session="))
        .expect("session cookie");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"),
        "{c}"
    );
    // http:// in the tests' public URL pattern: not Secure (https would be).
    assert!(!c.contains("Secure"), "{c}");
    let timing = r.headers().get("server-timing").unwrap().to_str().unwrap();
    assert!(
        timing.starts_with("app;dur=") && timing.contains("wecom;dur="),
        "{timing}"
    );
}

#[tokio::test]
async fn qr_login_in_a_browser() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let m = s.member(CHROME_UA);
        let p = m.get("/login?next=%2Fapps%3Fx%3D1").await;
        assert_eq!(p.status, 200);
        assert!(
            p.body.contains("data-source=\"wecom\"") && p.body.contains("data-source=\"password\"")
        );
        assert!(
            p.body.contains("/login/wecom?next=%2Fapps%3Fx%3D1"),
            "{}",
            p.body
        );
        let first = m.get("/login/wecom?next=%2Fapps%3Fx%3D1").await;
        let loc = first.location.clone().unwrap();
        assert!(
            loc.contains("/wwlogin/sso/login?login_type=CorpApp"),
            "{loc}"
        );
        let r = sim_get(&with_param(&loc, "sim_userid", "zhangsan"), CHROME_UA).await;
        assert_eq!(r.status, 302, "{}", r.body);
        let done = m
            .get(&local_path(&s.env.domain, &r.location.unwrap()))
            .await;
        assert_eq!(done.location.as_deref(), Some("/apps?x=1"), "{}", done.body);
        assert_eq!(m.get("/").await.status, 200);
        let sessions = s
            .env
            .bridge
            .state
            .store
            .list_user_sessions(s.tenant_id, s.zhangsan)
            .await
            .unwrap();
        assert_eq!(sessions[0].via, "wecom_qr");

        // Consumer WeChat cannot sign in in-client: QR is offered, with a note.
        let w = s.member(WECHAT_UA);
        let p = w.get("/wecom/home").await;
        assert_eq!(p.status, 200);
        assert!(
            p.body.contains("data-client=\"wechat\"") && p.body.contains("data-source=\"wecom\"")
        );
    }
}

#[tokio::test]
async fn missing_tampered_foreign_and_replayed_state() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let m = s.member(WXWORK_UA);
        let cb = s
            .through_wecom(&m, "/wecom/home", ("sim_userid", "zhangsan"))
            .await;
        let (code, state) = {
            let q = cb.split_once('?').unwrap().1;
            let mut code = String::new();
            let mut state = String::new();
            for kv in q.split('&') {
                if let Some(v) = kv.strip_prefix("code=") {
                    code = v.into();
                }
                if let Some(v) = kv.strip_prefix("state=") {
                    state = v.into();
                }
            }
            (code, state)
        };
        // Missing state.
        let p = m.get(&format!("/auth/wecom/callback?code={code}")).await;
        assert_eq!((p.status, outcome(&p)), (400, "state_missing"));
        // Tampered state.
        let mut bad = state.clone();
        bad.replace_range(0..1, if bad.starts_with('A') { "B" } else { "A" });
        let p = m
            .get(&format!("/auth/wecom/callback?code={code}&state={bad}"))
            .await;
        assert_eq!((p.status, outcome(&p)), (400, "state_invalid"));
        assert!(
            m.cookie("wb_session").is_none(),
            "no session on a bad state"
        );
        // Another browser (no binding cookie, or a different one) with the right state.
        let thief = s.member(WXWORK_UA);
        let p = thief.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_missing"),
            "{}",
            p.body
        );
        // That attempt used nothing up (issue 19 item 7): the owner still finishes,
        // and then the state is spent.
        let p = m.get(&cb).await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert!(m.cookie("wb_session").is_some());
        let p = m.get(&cb).await;
        assert_eq!((p.status, outcome(&p)), (400, "state_invalid"));
        m.b.clear_cookies();

        // A state started in browser A, finished in browser B with its own binding.
        let cb2 = s
            .through_wecom(&m, "/wecom/home", ("sim_userid", "zhangsan"))
            .await;
        let other = s.member(WXWORK_UA);
        other.get("/login/wecom").await; // gets its own binding cookie
        assert!(other.cookie("wb_oauth").is_some());
        let p = other.get(&cb2).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_foreign"),
            "{}",
            p.body
        );
        assert!(other.cookie("wb_session").is_none());

        // Replayed: a finished sign-in's callback URL, opened again.
        let cb3 = s
            .through_wecom(&m, "/wecom/home", ("sim_userid", "zhangsan"))
            .await;
        assert_eq!(m.get(&cb3).await.status, 303);
        let p = m.get(&cb3).await;
        assert_eq!((p.status, outcome(&p)), (400, "state_invalid"));
    }
}

#[tokio::test]
async fn replayed_code_is_explained() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let m = s.member(WXWORK_UA);
        let cb = s
            .through_wecom(&m, "/wecom/home", ("sim_userid", "zhangsan"))
            .await;
        let code = cb
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(m.get(&cb).await.status, 303);
        // A fresh state from this browser, with the spent code (a refresh, or two
        // servers redeeming it): WeCom answers 40029.
        let cb2 = s
            .through_wecom(&m, "/login/wecom", ("sim_userid", "zhangsan"))
            .await;
        let state2 = cb2.split("state=").nth(1).unwrap().to_string();
        let p = m
            .get(&format!("/auth/wecom/callback?code={code}&state={state2}"))
            .await;
        assert_eq!((p.status, outcome(&p)), (400, "code_invalid"), "{}", p.body);
        assert!(p.body.contains("errcode 40029"));
    }
}

#[tokio::test]
async fn return_paths_cannot_leave_the_tenant() {
    for db in database_urls().await {
        let s = setup(&db).await;
        for (next, expect) in [
            ("%2F%2Fevil.com", "/"),
            ("https%3A%2F%2Fevil.com%2F", "/"),
            ("%2F%5Cevil.com", "/"),
            ("%2F%09%2Fevil.com", "/"),
            ("%2Fx%0D%0ASet-Cookie%3A%20a%3Db", "/"),
            ("evil.com", "/"),
            ("%2Fapps%2F1%3Ftab%3Dx", "/apps/1?tab=x"),
        ] {
            let m = s.member(CHROME_UA);
            let cb = s
                .through_wecom(
                    &m,
                    &format!("/login/wecom?next={next}"),
                    ("sim_userid", "zhangsan"),
                )
                .await;
            let p = m.get(&cb).await;
            assert_eq!(p.status, 303, "{next}: {}", p.body);
            assert_eq!(p.location.as_deref(), Some(expect), "{next}");
        }
        // Signed in, /login?next= must not bounce elsewhere either.
        let m = s.member(WXWORK_UA);
        s.sign_in(&m, "zhangsan").await;
        let p = m.get("/login?next=%2F%2Fevil.com").await;
        assert_eq!(p.location.as_deref(), Some("/"));
    }
}

#[tokio::test]
async fn each_outcome_has_its_own_page() {
    for db in database_urls().await {
        let s = setup(&db).await;
        // An outsider (openid, no userid).
        let m = s.member(WXWORK_UA);
        let cb = s
            .through_wecom(&m, "/wecom/home", ("sim_openid", OUTSIDER_OPENID))
            .await;
        let p = m.get(&cb).await;
        assert_eq!((p.status, outcome(&p)), (403, "not_in_directory"));
        assert!(
            p.body.contains("可见范围")
                && p.body.contains("visible scope")
                && p.body.contains("/console/sync")
        );
        // A member of the corp the directory does not have (out of the app's scope; the
        // in-client flow issues a code anyway).
        let cb = s
            .through_wecom(&m, "/wecom/home", ("sim_userid", "zhoujiu"))
            .await;
        let p = m.get(&cb).await;
        assert_eq!((p.status, outcome(&p)), (403, "not_in_directory"));
        assert!(p.body.contains("zhoujiu"));
        // Not authorized: the guide's message verbatim, and where admins authorize.
        let cb = s
            .through_wecom(&m, "/wecom/home", ("sim_userid", "lisi"))
            .await;
        let p = m.get(&cb).await;
        assert_eq!((p.status, outcome(&p)), (403, "unauthorized"));
        assert!(p
            .body
            .contains("抱歉，您未在授权范围内，因此无法使用，如需使用请联系企业管理员授权"));
        assert!(p.body.contains("not within the authorized range"));
        // Whom to ask (with the account to name) and a way to try again; no admin
        // instructions or console link on a member's page.
        assert!(p.body.contains("data-testid=\"ask\""), "{}", p.body);
        assert!(p.body.contains("企业微信管理员") && p.body.contains("lisi"));
        assert!(p.body.contains("data-testid=\"try-again\""));
        assert!(!p.body.contains("href=\"/console"), "{}", p.body);
        assert!(!p.body.contains("admin-hint") && !p.body.contains("管理员："));
        // Disabled.
        let cb = s
            .through_wecom(&m, "/wecom/home", ("sim_userid", "wangwu"))
            .await;
        let p = m.get(&cb).await;
        assert_eq!((p.status, outcome(&p)), (403, "disabled"));
        assert!(p.body.contains("账号已停用") && p.body.contains("Account disabled"));
        // Declined in WeCom.
        let cb = s
            .through_wecom(&m, "/login/wecom", ("sim_action", "deny"))
            .await;
        let p = m.get(&cb).await;
        assert_eq!((p.status, outcome(&p)), (400, "cancelled"));
        // None of them got a session; each denial is audited.
        assert!(m.cookie("wb_session").is_none());
        let store = &s.env.bridge.state.store;
        assert!(store
            .list_user_sessions(s.tenant_id, s.lisi)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .list_user_sessions(s.tenant_id, s.wangwu)
            .await
            .unwrap()
            .is_empty());
        let audit = s.audit_actions().await;
        for who in [
            "wecom:outsider",
            "wecom:zhoujiu",
            "wecom:lisi",
            "wecom:wangwu",
        ] {
            assert!(
                audit.contains(&(who.into(), "member.login_denied".into())),
                "{who}"
            );
        }
    }
}

#[tokio::test]
async fn trusted_domain_and_host_mismatches_are_explained_before_wecom() {
    for db in database_urls().await {
        let s = setup(&db).await;
        // WeCom's trusted domain changes; the wizard's step 3 (or doctor) refreshes the
        // agent/get snapshot the bridge compares against.
        s.env
            .patch_main_app(json!({"redirect_domain": "oa.other.example.com"}))
            .await;
        let step3 = s.env.browser.get("/console/setup/3").await;
        assert!(step3.body.contains("domain-warning"));
        let m = s.member(WXWORK_UA);
        let p = m.get("/wecom/home").await;
        assert_eq!(
            (p.status, outcome(&p)),
            (409, "trusted_domain_mismatch"),
            "{}",
            p.body
        );
        assert!(p.location.is_none(), "not sent into WeCom's error page");
        assert!(p.body.contains("redirect uri需使用应用可信域名"));
        assert!(p.body.contains("oa.other.example.com") && p.body.contains(&s.env.domain));
        // QR login uses the web-login callback domain (not in agent/get): still offered.
        let b = s.member(CHROME_UA);
        assert_eq!(b.get("/login/wecom").await.status, 303);
        s.env
            .patch_main_app(json!({"redirect_domain": s.env.domain}))
            .await;
        s.env.browser.get("/console/setup/3").await;
        assert_eq!(m.get("/wecom/home").await.status, 303);

        // An instance whose public URL puts the callback on another host than the one
        // the member opened: explained instead of a WeCom error page.
        let other = s
            .second_instance(|c| c.public_url_pattern = "http://sso.{domain}".into())
            .await;
        let m2 = MemberBrowser::new(other.addr, &s.env.domain, WXWORK_UA);
        let p = m2.get("/wecom/home").await;
        assert_eq!(
            (p.status, outcome(&p)),
            (409, "host_mismatch"),
            "{}",
            p.body
        );
        assert!(p.body.contains(&format!("sso.{}", s.env.domain)));
        other.stop().await;
    }
}

#[tokio::test]
async fn login_config_changes_apply_at_once_on_every_instance() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let b = s.second_instance(|_| {}).await;
        let on_b = MemberBrowser::new(b.addr, &s.env.domain, WXWORK_UA);
        // A sign-in is in flight on instance B when the admin turns WeCom off on A.
        let cb = s
            .through_wecom(&on_b, "/wecom/home", ("sim_userid", "zhangsan"))
            .await;
        set_login_config(&s.env.browser, &s.csrf, false, true).await;
        let p = on_b.get(&cb).await;
        assert_eq!((p.status, outcome(&p)), (403, "wecom_off"), "{}", p.body);
        // The next request on B: no redirect into WeCom, the login page says so.
        let p = on_b.get("/wecom/home").await;
        assert_eq!(p.status, 200, "{:?}", p.location);
        assert!(
            p.body.contains("data-testid=\"wecom-off\"")
                && !p.body.contains("data-source=\"wecom\"")
        );
        assert_eq!(on_b.get("/login/wecom").await.status, 403);
        // Nobody at all is refused, and changes nothing.
        let r = set_login_config(&s.env.browser, &s.csrf, false, false).await;
        assert_eq!(r.status, 400);
        assert_eq!(on_b.get("/wecom/home").await.status, 200);
        // Back on: B redirects to WeCom at once, and a sign-in through B works;
        // its session is valid on A too (one shared signing key).
        set_login_config(&s.env.browser, &s.csrf, true, true).await;
        let p = s.sign_in(&on_b, "zhangsan").await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(on_b.get("/").await.status, 200);
        let jar = on_b.b.cookie_header();
        assert_eq!(
            get_with_cookies(s.env.bridge.addr, &s.env.domain, &jar, "/").await,
            200
        );
        let audit = s.audit_actions().await;
        assert!(
            audit
                .iter()
                .filter(|(_, a)| a == "login_config.changed")
                .count()
                >= 3
        );
        b.stop().await;
    }
}

#[tokio::test]
async fn sessions_expire_idle_and_absolute() {
    for db in database_urls().await {
        let s = setup(&db).await;
        // Time is the instance's clock, moved forward instead of waited for.
        // Idle: 2 s without a request ends it.
        let idle = s
            .second_instance(|c| {
                c.member_session_idle_secs = 2;
                c.member_session_max_secs = 60;
            })
            .await;
        let m = MemberBrowser::new(idle.addr, &s.env.domain, WXWORK_UA);
        assert_eq!(s.sign_in(&m, "zhangsan").await.status, 303);
        assert_eq!(m.get("/").await.status, 200);
        idle.state.clock.advance(Duration::from_millis(2200));
        let p = m.get("/").await;
        assert_eq!(p.location.as_deref(), Some("/login?next=%2F"));
        idle.stop().await;

        // Absolute: 5 s however active.
        let max = s
            .second_instance(|c| {
                c.member_session_idle_secs = 60;
                c.member_session_max_secs = 5;
            })
            .await;
        let m = MemberBrowser::new(max.addr, &s.env.domain, WXWORK_UA);
        assert_eq!(s.sign_in(&m, "zhangsan").await.status, 303);
        // Active every 0.5 s, yet over 5.2 s after the sign-in.
        for _ in 0..3 {
            assert_eq!(m.get("/").await.status, 200);
            max.state.clock.advance(Duration::from_millis(500));
        }
        max.state.clock.advance(Duration::from_millis(5200 - 1500));
        assert_eq!(m.get("/").await.status, 303);
        max.stop().await;
    }
}

#[tokio::test]
async fn logout_and_revocation_end_sessions_everywhere() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let b = s
            .second_instance(|c| c.member_session_revocation_poll_ms = 100)
            .await;
        // Logout: the cookie, kept by a thief, no longer works on either instance.
        let m = s.member(WXWORK_UA);
        assert_eq!(s.sign_in(&m, "zhangsan").await.status, 303);
        let jar = m.b.cookie_header();
        let (a_addr, b_addr) = (s.env.bridge.addr, b.addr);
        assert_eq!(
            get_with_cookies(b_addr, &s.env.domain, &jar, "/").await,
            200
        );
        let p = m.post("/logout", &[]).await;
        assert_eq!((p.status, p.location.as_deref()), (303, Some("/login")));
        assert!(m.cookie("wb_session").is_none());
        assert_eq!(
            get_with_cookies(a_addr, &s.env.domain, &jar, "/").await,
            303,
            "ended at once on the instance that ended it"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            get_with_cookies(b_addr, &s.env.domain, &jar, "/").await,
            303,
            "and within the poll interval on the other"
        );
        assert!(s
            .audit_actions()
            .await
            .contains(&(format!("user:{}", s.zhangsan), "member.logout".into())));

        // Revocation from the Users page.
        let m = s.member(WXWORK_UA);
        assert_eq!(s.sign_in(&m, "zhangsan").await.status, 303);
        let detail = s
            .env
            .browser
            .get(&format!("/console/users/{}", s.zhangsan))
            .await;
        let hash = {
            let i = detail
                .body
                .find("data-session=\"")
                .expect("a session listed")
                + 14;
            detail.body[i..i + 64].to_string()
        };
        let r = s
            .env
            .browser
            .post(
                &format!("/console/users/{}/sessions/revoke", s.zhangsan),
                &[("csrf", &s.csrf), ("session", &hash)],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(m.get("/").await.status, 303);
        assert!(s
            .audit_actions()
            .await
            .contains(&("admin:admin".into(), "member.session_revoked".into())));
        // Another user's session cannot be named through this user.
        let r = s
            .env
            .browser
            .post(
                &format!("/console/users/{}/sessions/revoke", s.lisi),
                &[("csrf", &s.csrf), ("session", &hash)],
            )
            .await;
        assert_eq!(r.status, 404);
        b.stop().await;
    }
}

#[tokio::test]
async fn disabled_or_unauthorized_user_loses_an_open_session() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let b = s
            .second_instance(|c| c.member_session_revocation_poll_ms = 100)
            .await;
        // Disabled from the Users page, with its confirmation step.
        let m = s.member(WXWORK_UA);
        assert_eq!(s.sign_in(&m, "zhangsan").await.status, 303);
        let uid = format!("u{}", s.zhangsan);
        let confirm = s
            .env
            .browser
            .post(
                "/console/users",
                &[("csrf", &s.csrf), ("action", "disable"), (&uid, "on")],
            )
            .await;
        assert_eq!(confirm.status, 200);
        assert!(confirm.body.contains("data-testid=\"confirm\"") && confirm.body.contains("张三"));
        assert_eq!(
            m.get("/").await.status,
            200,
            "nothing happens before confirming"
        );
        let r = s
            .env
            .browser
            .post(
                "/console/users",
                &[
                    ("csrf", &s.csrf),
                    ("action", "disable"),
                    (&uid, "on"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(m.get("/").await.status, 303, "the open session ended");
        let cb = s
            .through_wecom(&m, "/wecom/home", ("sim_userid", "zhangsan"))
            .await;
        assert_eq!(outcome(&m.get(&cb).await), "disabled");
        assert!(s
            .audit_actions()
            .await
            .contains(&("admin:admin".into(), "user.disabled".into())));

        // Authorized again, signed in on instance B; then a status change through the
        // store (as directory sync makes it) reaches B within its poll interval.
        let r = s
            .env
            .browser
            .post(
                "/console/users",
                &[
                    ("csrf", &s.csrf),
                    ("action", "authorize"),
                    (&uid, "on"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status, 303);
        let on_b = MemberBrowser::new(b.addr, &s.env.domain, WXWORK_UA);
        assert_eq!(s.sign_in(&on_b, "zhangsan").await.status, 303);
        assert_eq!(on_b.get("/").await.status, 200);
        s.env
            .bridge
            .state
            .store
            .set_users_status(s.tenant_id, &[s.zhangsan], UserStatus::Unauthorized, None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            on_b.get("/").await.status,
            303,
            "unauthorized: session ended by the trigger"
        );
        let cb = s
            .through_wecom(&on_b, "/wecom/home", ("sim_userid", "zhangsan"))
            .await;
        assert_eq!(outcome(&on_b.get(&cb).await), "unauthorized");
        b.stop().await;
    }
}

#[tokio::test]
async fn users_page_filters_and_shows_a_user() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let m = s.member(WXWORK_UA);
        assert_eq!(s.sign_in(&m, "zhangsan").await.status, 303);
        let a = &s.env.browser;
        let all = a.get("/console/users").await;
        assert_eq!(all.status, 200);
        for n in ["张三", "李四", "王五", "/console/sync"] {
            assert!(all.body.contains(n), "{n}");
        }
        let rows = |p: &Page| p.body.matches("<tr data-userid=").count();
        assert_eq!(rows(&all), 3);
        let p = a.get("/console/users?status=unauthorized").await;
        assert_eq!(rows(&p), 1);
        assert!(p.body.contains("data-userid=\"lisi\""));
        let p = a.get("/console/users?department=4").await;
        assert_eq!(rows(&p), 1);
        assert!(p.body.contains("data-userid=\"wangwu\""));
        let p = a.get("/console/users?tag=1").await;
        assert_eq!(rows(&p), 2);
        let p = a.get("/console/users?q=zhang").await;
        assert_eq!(rows(&p), 1);
        let d = a.get(&format!("/console/users/{}", s.zhangsan)).await;
        assert_eq!(d.status, 200);
        for n in [
            "zhangsan",
            "wwtestcorp00000001",
            "研发中心",
            "后端组",
            "项目A",
            "企业微信客户端",
            "data-session=",
        ] {
            assert!(d.body.contains(n), "{n}");
        }
        assert!(!d.body.contains("从未登录"), "last login shown");
        // Bulk authorize of two users at once.
        let (u1, u2) = (format!("u{}", s.lisi), format!("u{}", s.wangwu));
        let r = a
            .post(
                "/console/users",
                &[
                    ("csrf", &s.csrf),
                    ("action", "authorize"),
                    (&u1, "on"),
                    (&u2, "on"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(
            r.location.as_deref(),
            Some("/console/users?done=authorize:2")
        );
        let p = a.get("/console/users?status=authorized").await;
        assert_eq!(rows(&p), 3);
        let audit = s.audit_actions().await;
        assert_eq!(
            audit.iter().filter(|(_, x)| x == "user.authorized").count(),
            2
        );
        // Nothing ticked: back to the same filtered list, saying what to do.
        let r = a
            .post(
                "/console/users",
                &[
                    ("csrf", &s.csrf),
                    ("action", "disable"),
                    ("f_status", "authorized"),
                ],
            )
            .await;
        assert_eq!(
            r.location.as_deref(),
            Some("/console/users?status=authorized&notice=none")
        );
        let p = a.get(r.location.as_deref().unwrap()).await;
        assert!(p.body.contains("data-testid=\"notice\""), "{}", p.body);
        // Everyone matching the filter (研发中心's direct members): counted first, then
        // applied to exactly them, and the filter is kept.
        let dept2 = [
            ("csrf", s.csrf.as_str()),
            ("action", "unauthorize"),
            ("scope", "filter"),
            ("f_department", "2"),
        ];
        let listed = rows(&a.get("/console/users?department=2").await);
        assert!(listed >= 1);
        let c = a.post("/console/users", &dept2).await;
        assert_eq!(c.status, 200, "{}", c.body);
        assert!(
            c.body.contains(&format!("data-count=\"{listed}\""))
                && c.body.contains("confirm-filter"),
            "{}",
            c.body
        );
        let mut confirmed = dept2.to_vec();
        confirmed.push(("confirm", "yes"));
        let r = a.post("/console/users", &confirmed).await;
        let done = r.location.unwrap();
        assert!(
            done.starts_with("/console/users?department=2&done=unauthorize:"),
            "{done}"
        );
        let p = a.get("/console/users?department=2&status=authorized").await;
        assert_eq!(rows(&p), 0, "all of 研发中心 unauthorized");
        // Put back as it was.
        let r = a
            .post(
                "/console/users",
                &[
                    ("csrf", s.csrf.as_str()),
                    ("action", "authorize"),
                    ("scope", "filter"),
                    ("f_department", "2"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status, 303);
        // Without the console CSRF token nothing changes.
        let r = a
            .post(
                "/console/users",
                &[("action", "disable"), (&u1, "on"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status, 403);
        // Members are not admins.
        let p = m.get("/console/users").await;
        assert_eq!(p.status, 303);
    }
}

// ---------------------------------------------------------------------------------------
// The sign-in `state`, stateless and MAC'd (issue 19 items 6, 7, 8)

/// The value of query parameter `name` in `url`.
fn param(url: &str, name: &str) -> String {
    let q = url.split('#').next().unwrap().split_once('?').unwrap().1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .to_string()
}

/// `url` with query parameter `name` set to `value` (the fragment kept).
fn replace_param(url: &str, name: &str, value: &str) -> String {
    let (url, frag) = url.split_once('#').unwrap_or((url, ""));
    let (base, q) = url.split_once('?').unwrap();
    let q: Vec<String> = q
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => kv.to_string(),
        })
        .collect();
    let frag = if frag.is_empty() {
        String::new()
    } else {
        format!("#{frag}")
    };
    format!("{base}?{}{frag}", q.join("&"))
}

/// Rows in every table of the store (the migrations' own bookkeeping excluded).
async fn row_counts(store: &bridge::store::Store) -> std::collections::BTreeMap<String, i64> {
    use bridge::store::Store;
    use sqlx::Row;
    let mut out = std::collections::BTreeMap::new();
    match store {
        Store::Sqlite(p) => {
            let names: Vec<String> = sqlx::query(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
            )
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
            for n in names {
                let q = format!("SELECT COUNT(*) FROM \"{n}\"");
                let c: i64 = sqlx::query(sqlx::AssertSqlSafe(q))
                    .fetch_one(p)
                    .await
                    .unwrap()
                    .get(0);
                out.insert(n, c);
            }
        }
        Store::Postgres(p) => {
            let names: Vec<String> = sqlx::query(
                "SELECT table_name::TEXT FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                 AND table_name <> '_sqlx_migrations'",
            )
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
            for n in names {
                let q = format!("SELECT COUNT(*) FROM \"{n}\"");
                let c: i64 = sqlx::query(sqlx::AssertSqlSafe(q))
                    .fetch_one(p)
                    .await
                    .unwrap()
                    .get(0);
                out.insert(n, c);
            }
        }
    }
    out
}

/// Item 6: a binding cookie planted in the victim's browser (from a sibling subdomain)
/// is never adopted. The attacker starts a sign-in with the planted value in its own
/// browser, signs in at WeCom as itself and sends the victim the callback URL: the
/// victim's browser, carrying the planted value, is refused and gets no session.
#[tokio::test]
async fn planted_binding_cookie_is_refused() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let planted = "A".repeat(43);
        let attacker = s.member(WXWORK_UA);
        attacker.b.set_cookie("wb_oauth", &planted);
        let cb = s
            .through_wecom(&attacker, "/login/wecom", ("sim_userid", "zhangsan"))
            .await;
        let issued = attacker.cookie("wb_oauth").unwrap();
        assert_ne!(issued, planted, "a fresh binding replaces the planted one");
        assert!(!issued.starts_with(&planted));

        let victim = s.member(WXWORK_UA);
        victim.b.set_cookie("wb_oauth", &planted);
        let p = victim.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_foreign"),
            "{}",
            p.body
        );
        assert!(victim.cookie("wb_session").is_none());
        assert!(!s
            .audit_actions()
            .await
            .iter()
            .any(|(_, a)| a == "member.login"));
    }
}

/// Item 7: a callback URL opened by another browser (none, or another binding) is
/// refused before anything is consumed: its owner still finishes. After that, a replay
/// is refused on this instance and on a second one.
#[tokio::test]
async fn callback_opened_elsewhere_leaves_the_state_to_its_owner() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let victim = s.member(WXWORK_UA);
        let cb = s
            .through_wecom(&victim, "/wecom/home", ("sim_userid", "zhangsan"))
            .await;
        let binding = victim.cookie("wb_oauth").unwrap();

        let no_cookie = s.member(WXWORK_UA);
        let p = no_cookie.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_missing"),
            "{}",
            p.body
        );
        let own_binding = s.member(WXWORK_UA);
        assert_eq!(own_binding.get("/login/wecom").await.status, 303);
        let p = own_binding.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_foreign"),
            "{}",
            p.body
        );
        let b = s.second_instance(|_| {}).await;
        let elsewhere = MemberBrowser::new(b.addr, &s.env.domain, WXWORK_UA);
        let p = elsewhere.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_missing"),
            "{}",
            p.body
        );
        for m in [&no_cookie, &own_binding, &elsewhere] {
            assert!(m.cookie("wb_session").is_none());
        }

        // The owner completes.
        let p = victim.get(&cb).await;
        assert_eq!(
            (p.status, p.location.as_deref()),
            (303, Some("/")),
            "{}",
            p.body
        );
        assert!(victim.cookie("wb_session").is_some());

        // Replays after success, with the right binding: here and on instance B.
        let p = victim.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_invalid"),
            "{}",
            p.body
        );
        let copy = MemberBrowser::new(b.addr, &s.env.domain, WXWORK_UA);
        copy.b.set_cookie("wb_oauth", &binding);
        let p = copy.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_invalid"),
            "{}",
            p.body
        );
        assert!(copy.cookie("wb_session").is_none());
        let sessions = s
            .env
            .bridge
            .state
            .store
            .list_user_sessions(s.tenant_id, s.zhangsan)
            .await
            .unwrap();
        assert_eq!(sessions.len(), 1);
        b.stop().await;
    }
}

/// Item 8: starting a sign-in writes nothing (it used to store a row per anonymous
/// request); only a redeemed state leaves a row, with its expiry.
#[tokio::test]
async fn starting_a_sign_in_writes_no_rows() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let store = &s.env.bridge.state.store;
        let before = row_counts(store).await;
        for i in 0..25 {
            let m = s.member(if i % 2 == 0 { WXWORK_UA } else { CHROME_UA });
            assert_eq!(m.get("/login/wecom?next=%2Fapps").await.status, 303);
            let home = m.get("/wecom/home").await.status;
            assert_eq!(home, if i % 2 == 0 { 303 } else { 200 });
        }
        assert_eq!(row_counts(store).await, before);

        let m = s.member(WXWORK_UA);
        assert_eq!(s.sign_in(&m, "zhangsan").await.status, 303);
        let after = row_counts(store).await;
        assert_eq!(after["login_state_redemptions"], 1);
    }
}

/// Items 6-8: a state is checked by its MAC and its age. Built with the instance's key
/// and this browser's binding it works (the control); the same issued 10 minutes ago,
/// altered by one character, or signed with another key is refused.
#[tokio::test]
async fn forged_tampered_and_expired_states_are_refused() {
    use bridge::domain::oauth_state::{binding_hash, OAuthState};
    for db in database_urls().await {
        let s = setup(&db).await;
        let key = bridge::auth::state_key(&s.env.bridge.state);
        let now = bridge::domain::now_ms();
        async fn m_start(m: &MemberBrowser) -> String {
            let p = m.get("/wecom/home").await;
            assert_eq!(p.status, 303);
            p.location.unwrap()
        }
        // Sends `m` through WeCom with `state` in place of the bridge's own.
        async fn with_state(
            domain: &str,
            m: &MemberBrowser,
            to_wecom: &str,
            state: String,
        ) -> String {
            let to_wecom = replace_param(to_wecom, "state", &state);
            let r = sim_get(&with_param(&to_wecom, "sim_userid", "zhangsan"), m.ua).await;
            assert_eq!(r.status, 302, "{}", r.body);
            local_path(domain, &r.location.unwrap())
        }
        let claims = |m: &MemberBrowser, issued_at: i64| OAuthState {
            tenant_id: s.tenant_id,
            agentid: MAIN_AGENTID,
            flow: bridge::auth::Via::Client,
            issued_at,
            nonce: rand::random(),
            binding: binding_hash(&m.cookie("wb_oauth").unwrap()),
        };

        // Control: a state made with the instance's key is taken as the bridge's own.
        let m = s.member(WXWORK_UA);
        let loc = m_start(&m).await;
        let good = claims(&m, now).encode(&key);
        let cb = with_state(&s.env.domain, &m, &loc, good).await;
        let p = m.get(&cb).await;
        assert_eq!(p.status, 303, "{}", p.body);

        // Expired: issued 10 minutes (and a second) ago.
        let m = s.member(WXWORK_UA);
        let loc = m_start(&m).await;
        let old = claims(&m, now - 10 * 60 * 1000 - 1000).encode(&key);
        let cb = with_state(&s.env.domain, &m, &loc, old).await;
        let p = m.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_invalid"),
            "{}",
            p.body
        );
        // Issued in the future (beyond the skew allowance).
        let m = s.member(WXWORK_UA);
        let loc = m_start(&m).await;
        let future = claims(&m, now + 5 * 60 * 1000).encode(&key);
        let cb = with_state(&s.env.domain, &m, &loc, future).await;
        let p = m.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_invalid"),
            "{}",
            p.body
        );
        // Another key (another deployment, or a guess).
        let m = s.member(WXWORK_UA);
        let loc = m_start(&m).await;
        let foreign = claims(&m, now).encode(&[1u8; 32]);
        let cb = with_state(&s.env.domain, &m, &loc, foreign).await;
        let p = m.get(&cb).await;
        assert_eq!(
            (p.status, outcome(&p)),
            (400, "state_invalid"),
            "{}",
            p.body
        );

        // The bridge's own state with one character changed: refused, and the
        // untouched state still works afterwards (a refusal consumes nothing).
        let m = s.member(WXWORK_UA);
        let cb = s
            .through_wecom(&m, "/wecom/home", ("sim_userid", "zhangsan"))
            .await;
        let state = param(&cb, "state");
        assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()));
        for i in [0, state.len() / 2, state.len() - 1] {
            let mut bad = state.clone().into_bytes();
            bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
            let bad = String::from_utf8(bad).unwrap();
            let p = m.get(&replace_param(&cb, "state", &bad)).await;
            assert_eq!(
                (p.status, outcome(&p)),
                (400, "state_invalid"),
                "{i}: {}",
                p.body
            );
        }
        let p = m.get(&cb).await;
        assert_eq!(p.status, 303, "{}", p.body);
    }
}

/// Item 6: under https the binding is a `__Host-` cookie (Secure, Path=/, no Domain, so
/// no sibling subdomain can set it), and the plain name is not read there.
#[tokio::test]
async fn https_binding_cookie_is_host_prefixed() {
    let s = setup(&bridge::testing::sqlite_url()).await;
    let b = s
        .second_instance(|c| c.public_url_pattern = "https://{domain}".into())
        .await;
    let r = no_redirects()
        .get(format!("http://{}/wecom/home", b.addr))
        .header("host", &s.env.domain)
        .header("user-agent", WXWORK_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let c = set
        .iter()
        .find(|c| c.starts_with("__Host-wb_oauth="))
        .unwrap_or_else(|| panic!("{set:?}"));
    assert!(
        c.contains("; Secure") && c.contains("; Path=/") && !c.contains("Domain"),
        "{c}"
    );
    assert!(!set.iter().any(|c| c.starts_with("wb_oauth=")), "{set:?}");
    let binding = c
        .strip_prefix("__Host-wb_oauth=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let to_wecom = r.headers()["location"].to_str().unwrap().to_string();
    let sim = sim_get(&with_param(&to_wecom, "sim_userid", "zhangsan"), WXWORK_UA).await;
    let loc = sim.location.unwrap();
    let cb = &loc[loc.find("/auth/").unwrap()..];
    let callback = |cookie: String| {
        no_redirects()
            .get(format!("http://{}{cb}", b.addr))
            .header("host", &s.env.domain)
            .header("user-agent", WXWORK_UA)
            .header("cookie", cookie)
            .send()
    };
    // The right value under the plain name: not read.
    let r = callback(format!("wb_oauth={binding}")).await.unwrap();
    assert_eq!(r.status(), 400);
    // Under its own name: signed in.
    let r = callback(format!("__Host-wb_oauth={binding}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    b.stop().await;
}

/// Issue 17, "Tables → Users": columns sort both ways (and say so to screen readers),
/// the department column says how someone without a synced department is in scope (by
/// tag, or by name), statuses are a coloured badge with words, phone cards label their
/// cells, the export is the filter's CSV in the page's order, and an empty list tells "no
/// match" from "no users yet".
#[tokio::test]
async fn users_table_sorts_says_how_in_scope_and_exports() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let store = &s.env.bridge.state.store;
        for (userid, name, tags) in [
            ("zhaoliu", "赵六", vec![(1, "项目A")]),
            ("sunqi", "孙七", vec![]),
        ] {
            store
                .upsert_wecom_user(
                    s.tenant_id,
                    CORPID,
                    &seed(userid, name, UserStatus::Unauthorized, &[], &tags),
                )
                .await
                .unwrap();
        }
        let a = &s.env.browser;
        let order = |p: &Page| -> Vec<String> {
            p.body
                .split("<tr data-userid=\"")
                .skip(1)
                .map(|r| r.split('"').next().unwrap().to_string())
                .collect()
        };
        let by_name = a.get("/console/users").await;
        let names = order(&by_name);
        assert_eq!(names.len(), 5);
        assert!(by_name.body.contains("aria-sort=\"ascending\""));
        // The name header now sorts the other way; the list reverses.
        assert!(by_name.body.contains("href=\"/console/users?sort=-name\""));
        let desc = a.get("/console/users?sort=-name").await;
        let mut reversed = names.clone();
        reversed.reverse();
        assert_eq!(order(&desc), reversed);
        assert!(desc.body.contains("aria-sort=\"descending\""));
        // By status: authorized, disabled, unauthorized (the stored words' order), and
        // the sort stays with a filter and across the bulk form.
        let st = order(&a.get("/console/users?sort=status").await);
        assert_eq!(st[0], "zhangsan");
        assert_eq!(st[1], "wangwu");
        let filtered = a.get("/console/users?tag=1&sort=-name").await;
        assert_eq!(order(&filtered), ["zhaoliu", "wangwu", "zhangsan"]);
        assert!(filtered.body.contains("name=\"f_sort\" value=\"-name\""));
        // Last sign-in: the member who signed in first, never-signed-in after.
        let m = s.member(WXWORK_UA);
        assert_eq!(s.sign_in(&m, "zhangsan").await.status, 303);
        assert_eq!(
            order(&a.get("/console/users?sort=-login").await)[0],
            "zhangsan"
        );
        assert_eq!(
            order(&a.get("/console/users?sort=login").await)[0],
            "zhangsan"
        );
        assert_eq!(order(&a.get("/console/users?sort=nonsense").await), names);

        // How in scope, status in words and colour, labelled cells for phones.
        let p = a.get("/console/users").await.body;
        let row = |userid: &str| {
            let start = p.find(&format!("<tr data-userid=\"{userid}\"")).unwrap();
            p[start..start + p[start..].find("</tr>").unwrap()].to_string()
        };
        assert!(row("zhaoliu").contains("data-scope=\"tag\""));
        assert!(row("zhaoliu").contains("标签：项目A"), "{}", row("zhaoliu"));
        assert!(row("sunqi").contains("data-scope=\"member\""));
        assert!(row("sunqi").contains("按成员加入可见范围"));
        assert!(row("lisi").contains("data-scope=\"department\""));
        assert!(row("lisi").contains("后端组"));
        assert!(row("lisi").contains("<span class=\"badge user-unauthorized\">未授权</span>"));
        assert!(row("lisi").contains("data-label=\"状态\""));
        let css = a.get("/static/console.css").await.body;
        assert!(css.contains("td[data-label]::before"));

        // Export: the filter's people, in the page's order, with a header.
        assert!(filtered
            .body
            .contains("href=\"/console/users/export.csv?tag=1&#38;sort=-name\""));
        let csv = a.get("/console/users/export.csv?tag=1&sort=-name").await;
        assert_eq!(csv.status, 200);
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(
            lines[0],
            "id,userid,name,status,scope,position,mobile,email,last_sign_in"
        );
        let ids: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split(',').nth(1).unwrap())
            .collect();
        assert_eq!(ids, ["zhaoliu", "wangwu", "zhangsan"]);
        assert!(lines[1].contains(",标签：项目A,"), "{}", lines[1]);
        let all = a.get("/console/users/export.csv").await.body;
        assert_eq!(all.lines().count(), 6);

        // Empty lists: no match (with the way back) differs from no users at all.
        let none = a.get("/console/users?q=nobody-at-all").await.body;
        assert!(none.contains("data-empty=\"no-match\""));
        assert!(none.contains("没有符合筛选条件的用户"));
        assert!(!none.contains("还没有用户"));
        s.env.bridge.stop().await;
    }
}
