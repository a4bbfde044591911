//! OAuth sign-in and change_contact callbacks over real HTTP (wecom-api.md §9, §12, §13).
//!
//! The org is mutated straight through `sim.world()` with the same
//! snapshot → mutate → emit → kick sequence the admin API uses.

use reqwest::redirect::Policy;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use wecom::crypto::MsgCrypt;
use wecom::event::{parse_event, ContactChange, EventKind};
use wecom_sim::callbacks::{self, CallbackFault, Change, FaultKind};
use wecom_sim::model::{status, CallbackConfig, Corp, Department, Member, Scope, Tag};
use wecom_sim::{launch, App, Settings, Sim, SimHandle};

const CORP: &str = "ww0123456789abcdef";
const CORP2: &str = "wwfedcba9876543210";
const UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh";
const BROWSER_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15";
// Test vector A of §14: any valid pair will do.
const TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
const KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

const MAIN: u32 = 1_000_002;
const OTHER: u32 = 1_000_003;
const MARKET: u32 = 1_000_005;

// ---------------------------------------------------------------------------------------
// Fixtures

fn dept(id: u32, name: &str, parentid: u32) -> Department {
    Department {
        id,
        name: name.into(),
        name_en: String::new(),
        parentid,
        order: 0,
        leaders: vec![],
    }
}

fn member(userid: &str, name: &str, depts: &[u32], st: u8) -> Member {
    let mut m = Member::new(userid, name, depts);
    m.status = st;
    m.mobile = format!("1380000{:04}", userid.len());
    m.email = format!("{userid}@example.com");
    m.gender = 1;
    m.avatar = format!("https://wework.qpic.cn/wwhead/{userid}/0");
    m.address = "广州市海珠区新港中路".into();
    m.position = "工程师".into();
    m
}

fn app(agentid: u32, secret: &str, parties: &[u32], domain: &str, web: &str) -> App {
    let mut a = App::new(agentid, &format!("应用{agentid}"), secret);
    a.scope = Scope {
        users: vec![],
        parties: parties.to_vec(),
        tags: vec![],
    };
    a.redirect_domain = domain.into();
    a.web_login_domain = web.into();
    a.trusted_ips = vec!["127.0.0.1".into()];
    a
}

/// 1 测试公司 ─ 2 研发中心 ─ 3 后端组
///            └ 4 市场部
/// MAIN sees 研发 (2, 3); OTHER and the detail app see everything; MARKET sees 市场部.
fn org() -> Corp {
    let mut c = Corp::new(CORP, "测试公司");
    for d in [
        dept(1, "测试公司", 0),
        dept(2, "研发中心", 1),
        dept(3, "后端组", 2),
        dept(4, "市场部", 1),
    ] {
        c.departments.insert(d.id, d);
    }
    for m in [
        member("zhangsan", "张三", &[3], status::ACTIVE),
        member("lisi", "李四", &[4], status::ACTIVE),
        member("wangwu", "王五", &[2], status::DISABLED),
        member("zhaoliu", "赵六", &[3], status::UNACTIVATED),
    ] {
        c.members.insert(m.userid.clone(), m);
    }
    let mut main = app(
        MAIN,
        "secret-main",
        &[2],
        "app.example.com",
        "login.example.com:8443",
    );
    main.post_2022 = true;
    let mut other = app(
        OTHER,
        "secret-other",
        &[1],
        "other.example.com",
        "other.example.com",
    );
    other.post_2022 = false;
    other.privateinfo_fields = vec!["mobile".into()];
    let market = app(MARKET, "secret-market", &[4], "market.example.com", "");
    for a in [main, other, market] {
        c.apps.insert(a.agentid, a);
    }
    c.outsiders = vec!["oOutsider0000000000000000001".into()];
    c
}

fn second_corp() -> Corp {
    let mut c = Corp::new(CORP2, "另一家公司");
    c.departments.insert(1, dept(1, "另一家公司", 0));
    let m = member("zhangsan", "张三", &[1], status::ACTIVE);
    c.members.insert(m.userid.clone(), m);
    let a = app(
        MAIN,
        "secret-corp2",
        &[1],
        "app.example.com",
        "app.example.com",
    );
    c.apps.insert(a.agentid, a);
    c
}

struct Env {
    h: SimHandle,
    http: reqwest::Client,
}

impl Env {
    async fn start(settings: Settings) -> Env {
        let sim = Sim::new(settings);
        {
            let mut w = sim.world();
            w.add_corp(org());
            w.add_corp(second_corp());
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let h = launch(sim, listener).await.expect("launch");
        wecom_sim::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .build()
            .expect("client");
        Env { h, http }
    }

    fn sim(&self) -> &Sim {
        &self.h.sim
    }

    async fn page(&self, path: &str, params: &[(&str, &str)], ua: &str) -> reqwest::Response {
        let mut url = url::Url::parse(&format!("{}{path}", self.h.base_url)).expect("url");
        url.query_pairs_mut().extend_pairs(params);
        self.http
            .get(url)
            .header("user-agent", ua)
            .send()
            .await
            .expect("request")
    }

    /// In-client authorize as `userid` with the given extra parameters.
    async fn authorize(&self, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut params = vec![
            ("appid", CORP),
            ("redirect_uri", "https://app.example.com/cb?from=wecom"),
            ("response_type", "code"),
            ("scope", "snsapi_base"),
            ("agentid", "1000002"),
            ("state", "s1"),
        ];
        for &(k, v) in extra {
            params.retain(|&(pk, _)| pk != k);
            params.push((k, v));
        }
        self.page("/connect/oauth2/authorize", &params, UA).await
    }

    async fn web_login(&self, path: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut params = vec![
            ("login_type", "CorpApp"),
            ("appid", CORP),
            ("agentid", "1000002"),
            ("redirect_uri", "https://login.example.com:8443/sso/cb"),
            ("state", "w1"),
        ];
        for &(k, v) in extra {
            params.retain(|&(pk, _)| pk != k);
            params.push((k, v));
        }
        self.page(path, &params, BROWSER_UA).await
    }

    async fn token(&self, corp: &str, secret: &str) -> String {
        let v = self
            .get("gettoken", &[("corpid", corp), ("corpsecret", secret)])
            .await;
        v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("gettoken failed: {v}"))
            .to_string()
    }

    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let mut url = url::Url::parse(&format!("{}{path}", self.h.api_base())).expect("url");
        url.query_pairs_mut().extend_pairs(params);
        self.http
            .get(url)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    async fn userinfo(&self, token: &str, code: &str) -> Value {
        self.get(
            "auth/getuserinfo",
            &[("access_token", token), ("code", code)],
        )
        .await
    }

    async fn userdetail(&self, token: &str, ticket: &str) -> Value {
        self.http
            .post(format!(
                "{}auth/getuserdetail?access_token={token}",
                self.h.api_base()
            ))
            .body(json!({ "user_ticket": ticket }).to_string())
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    fn advance(&self, secs: i64) {
        self.sim().world().clock_offset_ms += secs * 1000;
    }
}

fn location(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 302, "expected a redirect");
    resp.headers()["location"]
        .to_str()
        .expect("ascii location")
        .to_string()
}

fn query_of(loc: &str) -> HashMap<String, String> {
    url::Url::parse(loc)
        .expect("absolute location")
        .query_pairs()
        .into_owned()
        .collect()
}

/// A successful sign-in: the code from the redirect.
fn code_of(resp: &reqwest::Response) -> String {
    let q = query_of(&location(resp));
    let code = q.get("code").cloned().expect("code in the redirect");
    assert_eq!(code.len(), 43);
    assert!(code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    code
}

/// The error kind and body of an error page.
async fn error_page(resp: reqwest::Response) -> (String, String) {
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    let body = resp.text().await.expect("body");
    let marker = "<meta name=\"wecom-sim-error\" content=\"";
    let kind = body
        .split(marker)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("not an error page: {body}"))
        .to_string();
    (kind, body)
}

fn errcode(v: &Value) -> i64 {
    v["errcode"].as_i64().unwrap_or(-999)
}

// ---------------------------------------------------------------------------------------
// OAuth

#[tokio::test]
async fn in_client_sign_in_issues_a_single_use_code() {
    let env = Env::start(Settings::default()).await;
    let resp = env.authorize(&[("sim_userid", "ZhangSan")]).await;
    let loc = location(&resp);
    assert!(
        loc.starts_with("https://app.example.com/cb?from=wecom&code="),
        "{loc}"
    );
    assert!(loc.ends_with("&state=s1"), "{loc}");
    let code = code_of(&resp);

    let token = env.token(CORP, "secret-main").await;
    let v = env.userinfo(&token, &code).await;
    assert_eq!(errcode(&v), 0, "{v}");
    assert_eq!(v["userid"], "zhangsan");
    assert!(v.get("user_ticket").is_none(), "snsapi_base has no ticket");
    // Used once: gone.
    assert_eq!(errcode(&env.userinfo(&token, &code).await), 40029);
    assert_eq!(errcode(&env.userinfo(&token, "nonsense").await), 40029);
}

#[tokio::test]
async fn in_client_requires_the_wxwork_user_agent() {
    let env = Env::start(Settings::default()).await;
    let params = [
        ("appid", CORP),
        ("redirect_uri", "https://app.example.com/cb"),
        ("scope", "snsapi_base"),
        ("agentid", "1000002"),
        ("sim_userid", "zhangsan"),
    ];
    let resp = env
        .page("/connect/oauth2/authorize", &params, BROWSER_UA)
        .await;
    let (kind, body) = error_page(resp).await;
    assert_eq!(kind, "not_in_client");
    assert!(body.contains("请在企业微信客户端打开链接"));

    env.sim().world().settings.require_wxwork_ua = false;
    let resp = env
        .page("/connect/oauth2/authorize", &params, BROWSER_UA)
        .await;
    code_of(&resp);
}

#[tokio::test]
async fn in_client_redirect_must_be_on_the_trusted_domain() {
    let env = Env::start(Settings::default()).await;
    for bad in [
        "https://evil.example.com/cb",
        "https://app.example.com:443/cb",
        "https://sub.app.example.com/cb",
        "https://login.example.com:8443/cb",
    ] {
        let resp = env
            .authorize(&[("redirect_uri", bad), ("sim_userid", "zhangsan")])
            .await;
        let (kind, body) = error_page(resp).await;
        assert_eq!(kind, "redirect_domain_mismatch", "{bad}");
        assert!(body.contains("redirect_uri需使用应用可信域名"));
    }
    // Host case does not matter.
    let resp = env
        .authorize(&[
            ("redirect_uri", "https://APP.Example.com/x"),
            ("sim_userid", "zhangsan"),
        ])
        .await;
    code_of(&resp);
    // Without agentid any app's trusted domain of the corp will do.
    let resp = env
        .authorize(&[
            ("agentid", ""),
            ("redirect_uri", "https://other.example.com/cb"),
            ("sim_userid", "zhangsan"),
        ])
        .await;
    let code = code_of(&resp);
    // …but the exchange checks the token's app: MAIN's domain is not other.example.com.
    let main = env.token(CORP, "secret-main").await;
    assert_eq!(errcode(&env.userinfo(&main, &code).await), 50001);
    let other = env.token(CORP, "secret-other").await;
    assert_eq!(env.userinfo(&other, &code).await["userid"], "zhangsan");
}

#[tokio::test]
async fn web_login_uses_the_callback_domain() {
    let env = Env::start(Settings::default()).await;
    let resp = env
        .web_login(
            "/wwlogin/sso/login",
            &[
                ("redirect_uri", "https://login.example.com/sso/cb"),
                ("sim_userid", "zhangsan"),
            ],
        )
        .await;
    let (kind, body) = error_page(resp).await;
    assert_eq!(kind, "web_login_domain_mismatch");
    assert!(body.contains("redirect_uri 与配置的授权完成回调域名不一致"));
    // The trusted domain is not the web-login domain.
    let resp = env
        .web_login(
            "/wwlogin/sso/login",
            &[
                ("redirect_uri", "https://app.example.com/cb"),
                ("sim_userid", "zhangsan"),
            ],
        )
        .await;
    assert_eq!(error_page(resp).await.0, "web_login_domain_mismatch");
    // Legacy qrConnect shows its generic page.
    let resp = env
        .web_login(
            "/wwopen/sso/qrConnect",
            &[
                ("redirect_uri", "https://login.example.com/sso/cb"),
                ("sim_userid", "zhangsan"),
            ],
        )
        .await;
    let (kind, body) = error_page(resp).await;
    assert_eq!(kind, "web_login_domain_mismatch");
    assert!(body.contains("该链接无法访问"));

    // No wxwork UA needed; the redirect carries only code and state.
    for path in ["/wwlogin/sso/login", "/wwopen/sso/qrConnect"] {
        let resp = env.web_login(path, &[("sim_userid", "zhangsan")]).await;
        let loc = location(&resp);
        let q = query_of(&loc);
        assert_eq!(q.len(), 2, "{loc}");
        assert_eq!(q["state"], "w1");
        let code = code_of(&resp);
        let token = env.token(CORP, "secret-main").await;
        // A web-login code is checked against the web-login domain, not the trusted one.
        assert_eq!(env.userinfo(&token, &code).await["userid"], "zhangsan");
    }
}

#[tokio::test]
async fn web_login_refuses_members_outside_the_scope() {
    let env = Env::start(Settings::default()).await;
    let resp = env
        .web_login("/wwlogin/sso/login", &[("sim_userid", "lisi")])
        .await;
    let (kind, body) = error_page(resp).await;
    assert_eq!(kind, "no_permission");
    assert!(body.contains("你没有该应用的访问权限"));
    let resp = env
        .web_login(
            "/wwlogin/sso/login",
            &[("sim_openid", "oOutsider0000000000000000001")],
        )
        .await;
    assert_eq!(error_page(resp).await.0, "no_permission");

    // In the client a code is issued whatever the scope; userid comes back anyway.
    let resp = env
        .authorize(&[("sim_userid", "lisi"), ("scope", "snsapi_privateinfo")])
        .await;
    let code = code_of(&resp);
    let token = env.token(CORP, "secret-main").await;
    let v = env.userinfo(&token, &code).await;
    assert_eq!(v["userid"], "lisi");
    assert!(v.get("user_ticket").is_none(), "out of scope: no ticket");

    env.sim().world().settings.web_login_out_of_scope_deny = false;
    let resp = env
        .web_login("/wwlogin/sso/login", &[("sim_userid", "lisi")])
        .await;
    code_of(&resp);
}

#[tokio::test]
async fn state_is_echoed_byte_for_byte_and_limited_to_128_bytes() {
    let env = Env::start(Settings::default()).await;
    let odd = "a b+c/é&=%中#?";
    let resp = env
        .authorize(&[("state", odd), ("sim_userid", "zhangsan")])
        .await;
    let loc = location(&resp);
    assert_eq!(query_of(&loc)["state"], odd, "{loc}");
    assert_eq!(query_of(&loc)["from"], "wecom");

    let max = "x".repeat(128);
    let resp = env
        .authorize(&[("state", &max), ("sim_userid", "zhangsan")])
        .await;
    assert_eq!(query_of(&location(&resp))["state"], max);
    let resp = env
        .authorize(&[("state", &"x".repeat(129)), ("sim_userid", "zhangsan")])
        .await;
    let (kind, body) = error_page(resp).await;
    assert_eq!(kind, "bad_state");
    assert!(body.contains("state参数错误"));

    // A fragment on the redirect stays after the appended query.
    let resp = env
        .authorize(&[
            ("redirect_uri", "https://app.example.com/#/home"),
            ("sim_userid", "zhangsan"),
        ])
        .await;
    let loc = location(&resp);
    assert!(loc.starts_with("https://app.example.com/?code="), "{loc}");
    assert!(loc.ends_with("&state=s1#/home"), "{loc}");
}

#[tokio::test]
async fn refusal_redirects_with_state_only() {
    let env = Env::start(Settings::default()).await;
    let resp = env.authorize(&[("sim_action", "deny")]).await;
    assert_eq!(
        location(&resp),
        "https://app.example.com/cb?from=wecom&state=s1"
    );
    let resp = env
        .web_login("/wwlogin/sso/login", &[("sim_action", "deny")])
        .await;
    assert_eq!(
        location(&resp),
        "https://login.example.com:8443/sso/cb?state=w1"
    );
}

#[tokio::test]
async fn inactive_members_cannot_sign_in() {
    let env = Env::start(Settings::default()).await;
    for who in ["wangwu", "zhaoliu"] {
        let resp = env.authorize(&[("sim_userid", who)]).await;
        assert_eq!(error_page(resp).await.0, "member_inactive", "{who}");
    }
    let resp = env.authorize(&[("sim_userid", "nobody")]).await;
    assert_eq!(error_page(resp).await.0, "unknown_user");
}

#[tokio::test]
async fn parameter_errors_have_their_pages() {
    let env = Env::start(Settings::default()).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("appid", "wwnosuchcorp00000")], "bad_appid"),
        (&[("agentid", "42")], "bad_agentid"),
        (&[("agentid", "abc")], "bad_agentid"),
        (&[("scope", "snsapi_everything")], "bad_scope"),
        (&[("redirect_uri", "/relative")], "bad_redirect_uri"),
        // Browsers read `\` as `/`: the host is evil.com, not app.example.com.
        (
            &[("redirect_uri", "https://evil.com\\@app.example.com/")],
            "redirect_domain_mismatch",
        ),
        (
            &[("redirect_uri", "https://u@app.example.com/")],
            "bad_redirect_uri",
        ),
        (
            &[("agentid", ""), ("scope", "snsapi_privateinfo")],
            "privateinfo_without_agentid",
        ),
    ];
    for (params, want) in cases {
        let mut p = params.to_vec();
        p.push(("sim_userid", "zhangsan"));
        let (kind, body) = error_page(env.authorize(&p).await).await;
        assert_eq!(&kind, want, "{params:?}");
        if *want == "privateinfo_without_agentid" {
            assert!(body.contains("snsapi_privateinfo 需要 agentid"));
        }
    }
    let resp = env
        .web_login("/wwopen/sso/qrConnect", &[("agentid", "")])
        .await;
    let (kind, body) = error_page(resp).await;
    assert_eq!(kind, "bad_agentid");
    assert!(body.contains("该链接无法访问"));
}

#[tokio::test]
async fn failed_exchanges_do_not_consume_the_code() {
    let env = Env::start(Settings::default()).await;
    let code = code_of(&env.authorize(&[("sim_userid", "zhangsan")]).await);
    let other = env.token(CORP, "secret-other").await;
    let foreign = env.token(CORP2, "secret-corp2").await;
    let main = env.token(CORP, "secret-main").await;
    // Another app of the corp: 50001; another corp: 40029. Neither consumes the code.
    assert_eq!(errcode(&env.userinfo(&other, &code).await), 50001);
    assert_eq!(errcode(&env.userinfo(&foreign, &code).await), 40029);
    assert_eq!(env.userinfo(&main, &code).await["userid"], "zhangsan");
    assert_eq!(errcode(&env.userinfo(&main, &code).await), 40029);

    // A code bound to MAIN's domain but redeemed after the domain changed: 50001.
    let code = code_of(&env.authorize(&[("sim_userid", "zhangsan")]).await);
    env.sim()
        .world()
        .corp_mut(CORP)
        .and_then(|c| c.apps.get_mut(&MAIN))
        .expect("app")
        .redirect_domain = "moved.example.com".into();
    assert_eq!(errcode(&env.userinfo(&main, &code).await), 50001);
}

#[tokio::test]
async fn codes_expire_after_five_minutes_of_sim_time() {
    let env = Env::start(Settings::default()).await;
    let main = env.token(CORP, "secret-main").await;
    let code = code_of(&env.authorize(&[("sim_userid", "zhangsan")]).await);
    env.advance(295);
    assert_eq!(env.userinfo(&main, &code).await["userid"], "zhangsan");
    let code = code_of(&env.authorize(&[("sim_userid", "zhangsan")]).await);
    env.advance(301);
    // The token lives 7200 s, so only the code is stale.
    assert_eq!(errcode(&env.userinfo(&main, &code).await), 40029);
}

#[tokio::test]
async fn outsiders_get_an_openid() {
    let env = Env::start(Settings::default()).await;
    let openid = "oOutsider0000000000000000001";
    let main = env.token(CORP, "secret-main").await;
    let code = code_of(&env.authorize(&[("sim_openid", openid)]).await);
    let v = env.userinfo(&main, &code).await;
    assert_eq!(v["openid"], openid);
    assert!(v.get("userid").is_none());

    let code = code_of(&env.authorize(&[("sim_openid", openid)]).await);
    let v = env
        .get(
            "user/getuserinfo",
            &[("access_token", &main), ("code", &code)],
        )
        .await;
    assert_eq!(v["OpenId"], openid);
    assert!(v.get("openid").is_none());
}

#[tokio::test]
async fn privateinfo_gives_a_user_ticket_for_getuserdetail() {
    let env = Env::start(Settings::default()).await;
    let main = env.token(CORP, "secret-main").await;
    let code = code_of(
        &env.authorize(&[("sim_userid", "zhangsan"), ("scope", "snsapi_privateinfo")])
            .await,
    );
    let v = env.userinfo(&main, &code).await;
    assert_eq!(v["userid"], "zhangsan");
    let ticket = v["user_ticket"].as_str().expect("user_ticket").to_string();

    let d = env.userdetail(&main, &ticket).await;
    assert_eq!(errcode(&d), 0, "{d}");
    assert_eq!(d["userid"], "zhangsan");
    assert_eq!(d["gender"], "1", "gender is a string");
    assert_eq!(d["mobile"], "13800000008");
    assert_eq!(d["email"], "zhangsan@example.com");
    assert_eq!(d["address"], "广州市海珠区新港中路");
    assert!(d.get("name").is_none());
    // The ticket is reusable while valid, but only by its own app.
    assert_eq!(errcode(&env.userdetail(&main, &ticket).await), 0);
    let other = env.token(CORP, "secret-other").await;
    assert_eq!(errcode(&env.userdetail(&other, &ticket).await), 40029);
    assert_eq!(errcode(&env.userdetail(&main, "bogus").await), 40029);

    // Only the ticked fields: OTHER ticked mobile only, so gender is "0".
    let resp = env
        .page(
            "/connect/oauth2/authorize",
            &[
                ("appid", CORP),
                ("redirect_uri", "https://other.example.com/cb"),
                ("scope", "snsapi_privateinfo"),
                ("agentid", "1000003"),
                ("sim_userid", "lisi"),
            ],
            UA,
        )
        .await;
    let v = env.userinfo(&other, &code_of(&resp)).await;
    let d = env
        .userdetail(&other, v["user_ticket"].as_str().expect("ticket"))
        .await;
    assert_eq!(d["userid"], "lisi");
    assert_eq!(d["gender"], "0");
    assert_eq!(d["mobile"], "13800000004");
    assert!(d.get("email").is_none() && d.get("avatar").is_none());

    // 1800 s later the ticket is gone.
    env.advance(1801);
    assert_eq!(errcode(&env.userdetail(&main, &ticket).await), 40029);
}

#[tokio::test]
async fn legacy_getuserinfo_uses_pascal_case() {
    let env = Env::start(Settings::default()).await;
    let main = env.token(CORP, "secret-main").await;
    let code = code_of(
        &env.authorize(&[("sim_userid", "zhangsan"), ("scope", "snsapi_privateinfo")])
            .await,
    );
    let v = env
        .get(
            "user/getuserinfo",
            &[("access_token", &main), ("code", &code)],
        )
        .await;
    assert_eq!(errcode(&v), 0, "{v}");
    assert_eq!(v["UserId"], "zhangsan");
    assert!(v.get("DeviceId").is_some());
    assert!(v.get("userid").is_none());
    assert!(v["user_ticket"].is_string());
    assert_eq!(v["expires_in"], 1800);
}

#[tokio::test]
async fn picker_lists_active_members_and_an_outsider() {
    let env = Env::start(Settings::default()).await;
    let resp = env.authorize(&[("scope", "snsapi_privateinfo")]).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.expect("body");
    assert!(!body.contains("wecom-sim-error"));
    assert!(body.contains("张三") && body.contains("李四"));
    assert!(!body.contains("王五"), "disabled members are not offered");
    assert!(body.contains("name=\"sim_userid\" value=\"zhangsan\""));
    assert!(body.contains("name=\"sim_openid\" value=\"oOutsider0000000000000000001\""));
    assert!(body.contains("name=\"sim_action\" value=\"deny\""));
    // The original parameters ride along in the form.
    assert!(body.contains("name=\"redirect_uri\" value=\"https://app.example.com/cb?from=wecom\""));
    assert!(body.contains("申请获取你的以下信息"));
    // Search narrows the list.
    let body = env
        .authorize(&[("sim_q", "李")])
        .await
        .text()
        .await
        .expect("body");
    assert!(body.contains("李四") && !body.contains("张三"));
}

// ---------------------------------------------------------------------------------------
// Callbacks: a receiver that decrypts with wecom::crypto and records what it got

#[derive(Clone, Copy, Debug)]
struct Reply {
    status: u16,
    delay_ms: u64,
}

#[derive(Clone, Debug)]
enum VerifyReply {
    Echo,
    EchoWithNewline,
    Body(String),
    Status(u16),
    Delay(u64),
}

#[derive(Clone, Debug)]
struct Post {
    agentid: u32,
    query: HashMap<String, String>,
    content_type: String,
    body: String,
    /// The decrypted XML, or the SDK error code.
    plain: Result<String, i32>,
}

#[derive(Default)]
struct RecvState {
    posts: Vec<Post>,
    replies: VecDeque<Reply>,
    verify: VecDeque<VerifyReply>,
    raw_verify_queries: Vec<String>,
}

#[derive(Clone)]
struct Receiver {
    state: Arc<Mutex<RecvState>>,
    crypt: MsgCrypt,
    base: String,
}

impl Receiver {
    async fn start() -> Receiver {
        use axum::routing::get;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let r = Receiver {
            state: Arc::default(),
            crypt: MsgCrypt::new(TOKEN, KEY, CORP).expect("crypt"),
            base,
        };
        let app = axum::Router::new()
            .route("/cb/{agentid}", get(verify_handler).post(post_handler))
            .with_state(r.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        r
    }

    fn url(&self, agentid: u32) -> String {
        format!("{}/cb/{agentid}", self.base)
    }

    fn posts(&self) -> Vec<Post> {
        self.state.lock().expect("lock").posts.clone()
    }

    /// Decrypted events per app, in arrival order.
    fn events(&self, agentid: u32) -> Vec<String> {
        self.posts()
            .into_iter()
            .filter(|p| p.agentid == agentid)
            .map(|p| p.plain.expect("decrypts"))
            .collect()
    }

    fn reply(&self, status: u16, delay_ms: u64) {
        self.state
            .lock()
            .expect("lock")
            .replies
            .push_back(Reply { status, delay_ms });
    }
}

fn query_map(q: Option<String>) -> HashMap<String, String> {
    // Percent-decoding only matters for `+`, which WeCom sends as %2B.
    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

async fn verify_handler(
    axum::extract::State(r): axum::extract::State<Receiver>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let behaviour = {
        let mut s = r.state.lock().expect("lock");
        s.raw_verify_queries.push(q.clone().unwrap_or_default());
        s.verify.pop_front().unwrap_or(VerifyReply::Echo)
    };
    let p = query_map(q);
    let arg = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let plain = match r.crypt.verify_url(
        arg("msg_signature"),
        arg("timestamp"),
        arg("nonce"),
        arg("echostr"),
    ) {
        Ok(p) => p,
        Err(e) => return (axum::http::StatusCode::FORBIDDEN, e.to_string()).into_response(),
    };
    match behaviour {
        VerifyReply::Echo => plain.into_response(),
        VerifyReply::EchoWithNewline => format!("{plain}\n").into_response(),
        VerifyReply::Body(b) => b.into_response(),
        VerifyReply::Status(s) => {
            (axum::http::StatusCode::from_u16(s).expect("status"), plain).into_response()
        }
        VerifyReply::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            plain.into_response()
        }
    }
}

async fn post_handler(
    axum::extract::State(r): axum::extract::State<Receiver>,
    axum::extract::Path(agentid): axum::extract::Path<u32>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    let query = query_map(q);
    let arg = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    let plain = r
        .crypt
        .decrypt_message(arg("msg_signature"), arg("timestamp"), arg("nonce"), &body)
        .map_err(|e| e.code());
    let reply = {
        let mut s = r.state.lock().expect("lock");
        s.posts.push(Post {
            agentid,
            query: query.clone(),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            body,
            plain,
        });
        s.replies.pop_front().unwrap_or(Reply {
            status: 200,
            delay_ms: 0,
        })
    };
    if reply.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(reply.delay_ms)).await;
    }
    axum::http::StatusCode::from_u16(reply.status).expect("status")
}

/// A sim whose MAIN (研发, post-2022), OTHER (whole org, legacy) and MARKET (市场部,
/// post-2022) apps post to the receiver.
async fn callback_env(settings: Settings) -> (Env, Receiver) {
    let env = Env::start(settings).await;
    let rx = Receiver::start().await;
    {
        let mut w = env.sim().world();
        let c = w.corp_mut(CORP).expect("corp");
        for agentid in [MAIN, OTHER, MARKET] {
            c.app_mut(agentid).expect("app").callback = Some(CallbackConfig {
                url: rx.url(agentid),
                token: TOKEN.into(),
                encoding_aes_key: KEY.into(),
            });
        }
    }
    (env, rx)
}

/// The admin API's sequence: snapshot scopes, mutate, emit, release the lock, kick.
fn mutate(sim: &Sim, f: impl FnOnce(&mut Corp) -> Change) {
    {
        let mut w = sim.world();
        let before = callbacks::snapshot_scopes(&mut w, CORP);
        let change = f(w.corp_mut(CORP).expect("corp"));
        callbacks::emit(&mut w, CORP, change, before);
    }
    sim.kick_outbox();
}

async fn flush(sim: &Sim) {
    tokio::time::timeout(Duration::from_secs(20), callbacks::flush(sim))
        .await
        .expect("callbacks delivered in time");
}

fn change_type(xml: &str) -> String {
    xml.split("<ChangeType><![CDATA[")
        .nth(1)
        .and_then(|r| r.split("]]>").next())
        .unwrap_or("")
        .to_string()
}

fn upsert_user(c: &mut Corp, m: Member) -> Change {
    let before = c.member(&m.userid).cloned();
    c.upsert_member(m.clone());
    Change::User {
        before,
        after: Some(m),
    }
}

async fn verify_with(rx: &Receiver, sim: &Sim, reply: VerifyReply) -> Result<(), String> {
    rx.state.lock().expect("lock").verify.push_back(reply);
    callbacks::verify_url(sim, CORP, &rx.url(MAIN), TOKEN, KEY).await
}

#[tokio::test]
async fn verify_url_passes_only_on_the_exact_plaintext_in_time() {
    let settings = Settings {
        verify_timeout_ms: 300,
        ..Settings::default()
    };
    let (env, rx) = callback_env(settings).await;
    let sim = env.sim();
    // Repeated so that echostrs with `+` and `/` go through (they must be %2B / %2F).
    for _ in 0..8 {
        callbacks::verify_url(sim, CORP, &rx.url(MAIN), TOKEN, KEY)
            .await
            .expect("verification passes");
    }
    for q in &rx.state.lock().expect("lock").raw_verify_queries {
        assert!(!q.contains('+') && !q.contains('/'), "{q}");
    }
    for reply in [
        VerifyReply::Body("\"123\"".into()),
        VerifyReply::Status(500),
        // A trailing newline is not the plaintext.
        VerifyReply::EchoWithNewline,
    ] {
        let r = verify_with(&rx, sim, reply.clone()).await;
        assert!(r.is_err(), "{reply:?} must fail");
    }
    let slow = verify_with(&rx, sim, VerifyReply::Delay(600)).await;
    assert!(
        slow.as_ref().is_err_and(|e| e.contains("300 ms")),
        "{slow:?}"
    );
    assert!(verify_with(&rx, sim, VerifyReply::Echo).await.is_ok());
    // Wrong token at the receiver's side: its signature check fails → 403.
    assert!(
        callbacks::verify_url(sim, CORP, &rx.url(MAIN), "another-token", KEY)
            .await
            .is_err()
    );
    assert!(
        callbacks::verify_url(sim, CORP, &rx.url(MAIN), TOKEN, "short")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn user_events_reach_apps_by_scope_before_and_after() {
    let (env, rx) = callback_env(Settings::default()).await;
    let sim = env.sim();

    // 1. Created in 后端组 (3): MAIN and OTHER see it, MARKET does not.
    let mut m = member("newbie", "新人", &[3], status::ACTIVE);
    m.direct_leader = vec!["zhangsan".into()];
    mutate(sim, |c| upsert_user(c, m.clone()));
    // 2. New position.
    m.position = "高级工程师".into();
    mutate(sim, |c| upsert_user(c, m.clone()));
    // 3. Moved to 市场部 (4): leaves MAIN's scope, enters MARKET's.
    m.departments = Member::new("x", "x", &[4]).departments;
    m.main_department = Some(4);
    mutate(sim, |c| upsert_user(c, m.clone()));
    // 4. Deleted.
    mutate(sim, |c| {
        let before = c.remove_member("newbie");
        Change::User {
            before,
            after: None,
        }
    });
    flush(sim).await;

    let main = rx.events(MAIN);
    let kinds: Vec<String> = main.iter().map(|x| change_type(x)).collect();
    assert_eq!(kinds, ["create_user", "update_user", "update_user"]);
    // post-2022 profile: no sensitive fields.
    assert!(main[0].contains("<Name><![CDATA[新人]]></Name>"));
    assert!(main[0].contains("<Department><![CDATA[3]]></Department>"));
    assert!(main[0].contains("<DirectLeader><![CDATA[zhangsan]]></DirectLeader>"));
    for absent in [
        "<Mobile>",
        "<Gender>",
        "<Email>",
        "<Avatar>",
        "<Address>",
        "<BizMail>",
    ] {
        assert!(!main[0].contains(absent), "{absent} in {}", main[0]);
    }
    // Only the changed field.
    assert!(main[1].contains("<Position><![CDATA[高级工程师]]></Position>"));
    assert!(!main[1].contains("<Name>") && !main[1].contains("<Department>"));
    // Leaving the scope: update_user with no visible department.
    assert!(main[2].contains("<Department><![CDATA[]]></Department>"));
    assert!(!main[2].contains("<Position>"));

    let other = rx.events(OTHER);
    let kinds: Vec<String> = other.iter().map(|x| change_type(x)).collect();
    assert_eq!(
        kinds,
        ["create_user", "update_user", "update_user", "delete_user"]
    );
    // Legacy profile: sensitive fields included.
    assert!(other[0].contains("<Mobile><![CDATA[13800000006]]></Mobile>"));
    assert!(other[0].contains("<Gender>1</Gender>"));
    assert!(other[0].contains("<Email><![CDATA[newbie@example.com]]></Email>"));
    assert!(other[2].contains("<Department><![CDATA[4]]></Department>"));
    assert!(other[2].contains("<MainDepartment>4</MainDepartment>"));

    let market = rx.events(MARKET);
    let kinds: Vec<String> = market.iter().map(|x| change_type(x)).collect();
    assert_eq!(
        kinds,
        ["update_user", "delete_user"],
        "entered, then deleted"
    );
    assert!(market[0].contains("<Department><![CDATA[4]]></Department>"));

    // Every payload parses with the client's parser.
    for xml in main.iter().chain(&other).chain(&market) {
        let ev = parse_event(xml).expect("parses");
        assert_eq!(ev.to_user_name, CORP);
        assert_eq!(ev.from_user_name, "sys");
        assert!(matches!(ev.kind, EventKind::ChangeContact(_)));
    }
    // Every attempt is recorded, all delivered at once.
    let w = sim.world();
    assert_eq!(w.deliveries.len(), 9);
    assert!(w
        .deliveries
        .iter()
        .all(|d| d.status == Some(200) && d.attempt == 1));
}

#[tokio::test]
async fn scope_exit_can_be_a_delete_and_renames_carry_new_userid() {
    let settings = Settings {
        scope_exit_event: "delete_user".into(),
        ..Settings::default()
    };
    let (env, rx) = callback_env(settings).await;
    let sim = env.sim();
    mutate(sim, |c| {
        let before = c.member("zhangsan").cloned();
        c.rename_member("zhangsan", "zhang.san");
        Change::User {
            before,
            after: c.member("zhang.san").cloned(),
        }
    });
    mutate(sim, |c| {
        let mut m = c.member("zhang.san").cloned().expect("member");
        m.departments = Member::new("x", "x", &[4]).departments;
        m.main_department = Some(4);
        upsert_user(c, m)
    });
    flush(sim).await;
    let main = rx.events(MAIN);
    assert_eq!(main.len(), 2);
    let ev = parse_event(&main[0]).expect("parses");
    match ev.kind {
        EventKind::ChangeContact(ContactChange::UpdateUser(u)) => {
            assert_eq!(u.user_id, "zhangsan");
            assert_eq!(u.new_user_id.as_deref(), Some("zhang.san"));
            assert_eq!(u.name, None, "nothing else changed");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(change_type(&main[1]), "delete_user");
    assert!(main[1].contains("<UserID><![CDATA[zhang.san]]></UserID>"));
    // OTHER still sees the member: a plain department update.
    let other = rx.events(OTHER);
    assert_eq!(change_type(&other[1]), "update_user");
}

#[tokio::test]
async fn party_and_tag_events() {
    let (env, rx) = callback_env(Settings::default()).await;
    let sim = env.sim();
    mutate(sim, |c| {
        let d = dept(5, "前端组", 2);
        c.upsert_department(d.clone());
        Change::Party {
            before: None,
            after: Some(d),
        }
    });
    mutate(sim, |c| {
        let before = c.departments.get(&5).cloned();
        let mut d = before.clone().expect("dept");
        d.name = "大前端组".into();
        d.order = 5;
        c.upsert_department(d.clone());
        Change::Party {
            before,
            after: Some(d),
        }
    });
    mutate(sim, |c| {
        let before = c.remove_department(5);
        Change::Party {
            before,
            after: None,
        }
    });
    mutate(sim, |c| {
        let before = Tag {
            id: 7,
            name: "项目A".into(),
            users: ["wangwu".to_string()].into(),
            parties: Default::default(),
        };
        c.upsert_tag(before.clone());
        let mut after = before.clone();
        after.users.insert("zhangsan".into());
        after.users.insert("lisi".into());
        after.parties.insert(4);
        c.upsert_tag(after.clone());
        Change::Tag {
            before: Some(before),
            after: Some(after),
        }
    });
    flush(sim).await;

    let main = rx.events(MAIN);
    let kinds: Vec<String> = main.iter().map(|x| change_type(x)).collect();
    assert_eq!(
        kinds,
        ["create_party", "update_party", "delete_party", "update_tag"]
    );
    assert!(main[0].contains(
        "<Id>5</Id><Name><![CDATA[前端组]]></Name><ParentId>2</ParentId><Order>0</Order>"
    ));
    assert!(main[1].ends_with("<Id>5</Id><Name><![CDATA[大前端组]]></Name></xml>"));
    // MAIN sees only the member and department of the tag inside its scope.
    assert!(main[3]
        .ends_with("<TagId>7</TagId><AddUserItems><![CDATA[zhangsan]]></AddUserItems></xml>"));
    let other = rx.events(OTHER);
    assert_eq!(other.len(), 4);
    assert!(other[3].contains("<AddUserItems><![CDATA[lisi,zhangsan]]></AddUserItems>"));
    assert!(other[3].contains("<AddPartyItems><![CDATA[4]]></AddPartyItems>"));
    assert!(!other[3].contains("DelUserItems") && !other[3].contains("DelPartyItems"));
    let market = rx.events(MARKET);
    assert_eq!(market.len(), 1, "{market:?}");
    assert!(market[0].contains(
        "<AddUserItems><![CDATA[lisi]]></AddUserItems><AddPartyItems><![CDATA[4]]></AddPartyItems>"
    ));
    match parse_event(&other[3]).expect("parses").kind {
        EventKind::ChangeContact(ContactChange::UpdateTag(t)) => {
            assert_eq!(t.tag_id, 7);
            assert_eq!(t.add_user_items, ["lisi", "zhangsan"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn requests_are_signed_wrapped_and_deterministic_with_fixed_random() {
    let settings = Settings {
        fixed_random: "0123456789abcdef".into(),
        ..Settings::default()
    };
    let (env, rx) = callback_env(settings).await;
    let sim = env.sim();
    env.advance(1000);
    let expected_ts = sim.world().now_secs();
    mutate(sim, |c| {
        let before = c.remove_member("zhangsan");
        Change::User {
            before,
            after: None,
        }
    });
    flush(sim).await;
    let post = rx
        .posts()
        .into_iter()
        .find(|p| p.agentid == MAIN)
        .expect("delivered");
    let plain = post.plain.clone().expect("decrypts");
    assert_eq!(post.content_type, "text/xml");
    let encrypt = rx.crypt.encrypt_with_random(&plain, b"0123456789abcdef");
    assert_eq!(
        post.body,
        format!(
            "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[{MAIN}]]></AgentID></xml>"
        )
    );
    let ts: u64 = post.query["timestamp"].parse().expect("timestamp");
    assert!(ts.abs_diff(expected_ts) <= 2, "sim clock, not wall clock");
    let nonce = &post.query["nonce"];
    assert_eq!(nonce.len(), 16);
    assert!(nonce.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        plain,
        format!(
            "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID></xml>"
        )
    );
}

#[tokio::test]
async fn failed_deliveries_are_retried_identically() {
    let settings = Settings {
        delivery_timeout_ms: 300,
        ..Settings::default()
    };
    let (env, rx) = callback_env(settings).await;
    let sim = env.sim();
    // MAIN's event: 500, timeout, then 200. OTHER's and MARKET's: at once.
    rx.reply(500, 0);
    rx.reply(200, 800);
    mutate(sim, |c| {
        let mut m = c.member("zhangsan").cloned().expect("m");
        m.alias = "zs".into();
        upsert_user(c, m)
    });
    flush(sim).await;
    let posts: Vec<Post> = rx
        .posts()
        .into_iter()
        .filter(|p| p.agentid == MAIN)
        .collect();
    assert_eq!(posts.len(), 3);
    assert!(posts
        .iter()
        .all(|p| p.query == posts[0].query && p.body == posts[0].body));
    let attempts: Vec<(u32, Option<u16>)> = sim
        .world()
        .deliveries
        .iter()
        .filter(|d| d.agentid == MAIN)
        .map(|d| (d.attempt, d.status))
        .collect();
    assert_eq!(attempts, [(1, Some(500)), (2, None), (3, Some(200))]);

    // Never 200: 1 + `retries` attempts, then the event is given up.
    {
        let mut w = sim.world();
        w.deliveries.clear();
        w.settings.retries = 2;
        w.settings.retry_resign = true;
    }
    for _ in 0..3 {
        rx.reply(503, 0);
    }
    mutate(sim, |c| {
        let mut m = c.member("zhangsan").cloned().expect("m");
        m.alias = "zs2".into();
        upsert_user(c, m)
    });
    flush(sim).await;
    let main: Vec<_> = sim
        .world()
        .deliveries
        .iter()
        .filter(|d| d.agentid == MAIN)
        .cloned()
        .collect();
    assert_eq!(main.len(), 3);
    assert!(main.iter().all(|d| d.status == Some(503)));
    // retry_resign: fresh nonce (and signature) on each retry, same plaintext.
    let posts: Vec<Post> = rx
        .posts()
        .into_iter()
        .filter(|p| p.agentid == MAIN)
        .skip(3)
        .collect();
    assert_eq!(posts.len(), 3);
    assert_ne!(posts[0].query["nonce"], posts[1].query["nonce"]);
    assert_eq!(posts[0].plain, posts[2].plain);
}

#[tokio::test]
async fn events_arrive_in_commit_order_and_can_be_shuffled_or_duplicated() {
    let (env, rx) = callback_env(Settings::default()).await;
    let sim = env.sim();
    let rename_all = |sim: &Sim, tag: &str| {
        for i in 0..12 {
            let alias = format!("{tag}{i}");
            mutate(sim, |c| {
                let mut m = c.member("lisi").cloned().expect("m");
                m.alias = alias;
                upsert_user(c, m)
            });
        }
    };
    // Queue all before the worker runs: hold the lock for the whole burst.
    rename_all(sim, "a");
    flush(sim).await;
    let aliases = |rx: &Receiver| -> Vec<String> {
        rx.events(MARKET)
            .iter()
            .map(|x| {
                x.split("<Alias><![CDATA[")
                    .nth(1)
                    .and_then(|r| r.split("]]>").next())
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    };
    let want: Vec<String> = (0..12).map(|i| format!("a{i}")).collect();
    assert_eq!(aliases(&rx), want);

    sim.world().settings.duplicate = true;
    mutate(sim, |c| {
        let mut m = c.member("lisi").cloned().expect("m");
        m.alias = "dup".into();
        upsert_user(c, m)
    });
    flush(sim).await;
    let posts: Vec<Post> = rx
        .posts()
        .into_iter()
        .filter(|p| p.agentid == MARKET)
        .collect();
    let (a, b) = (&posts[posts.len() - 2], &posts[posts.len() - 1]);
    assert_eq!(
        (&a.query, &a.body),
        (&b.query, &b.body),
        "same request twice"
    );

    {
        let mut w = sim.world();
        w.settings.duplicate = false;
        w.settings.shuffle = true;
    }
    let before = aliases(&rx).len();
    {
        // One lock for the burst so the worker finds all of them queued.
        let mut w = sim.world();
        for i in 0..12 {
            let snapshot = callbacks::snapshot_scopes(&mut w, CORP);
            let c = w.corp_mut(CORP).expect("corp");
            let mut m = c.member("lisi").cloned().expect("m");
            m.alias = format!("s{i}");
            let change = upsert_user(c, m);
            callbacks::emit(&mut w, CORP, change, snapshot);
        }
    }
    sim.kick_outbox();
    flush(sim).await;
    let mut got: Vec<String> = aliases(&rx)[before..].to_vec();
    let arrival = got.clone();
    got.sort();
    let mut want: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    want.sort();
    assert_eq!(got, want, "every event once");
    let in_order: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    // 12! orders: a shuffle that keeps commit order is vanishingly unlikely.
    assert_ne!(arrival, in_order);
}

#[tokio::test]
async fn injected_faults_break_exactly_one_delivery_each() {
    let (env, rx) = callback_env(Settings::default()).await;
    let sim = env.sim();
    let kinds = [
        (FaultKind::BadSignature, Some(-40001)),
        (FaultKind::WrongReceiveId, Some(-40005)),
        (FaultKind::TruncatedBase64, Some(-40010)),
        (FaultKind::PaddingZero, Some(-40008)),
        (FaultKind::Padding33, Some(-40008)),
        (FaultKind::Drop, None),
    ];
    for (kind, _) in kinds {
        callbacks::push_fault(
            &mut sim.world(),
            CallbackFault {
                kind,
                agentid: Some(MARKET),
                corp: None,
            },
        );
        mutate(sim, |c| {
            let mut m = c.member("lisi").cloned().expect("m");
            m.alias = format!("{kind:?}");
            upsert_user(c, m)
        });
    }
    // And one clean event after them.
    mutate(sim, |c| {
        let mut m = c.member("lisi").cloned().expect("m");
        m.alias = "clean".into();
        upsert_user(c, m)
    });
    flush(sim).await;
    let posts: Vec<Post> = rx
        .posts()
        .into_iter()
        .filter(|p| p.agentid == MARKET)
        .collect();
    let expected: Vec<Result<(), i32>> = kinds
        .iter()
        .filter_map(|(_, code)| code.map(Err))
        .chain([Ok(())])
        .collect();
    let got: Vec<Result<(), i32>> = posts.iter().map(|p| p.plain.clone().map(|_| ())).collect();
    assert_eq!(got, expected);
    assert!(posts
        .last()
        .and_then(|p| p.plain.as_ref().ok())
        .is_some_and(|x| x.contains("clean")));
    // OTHER (no fault filter match) got all seven intact.
    assert_eq!(rx.events(OTHER).len(), 7);
    let w = sim.world();
    let dropped: Vec<_> = w
        .deliveries
        .iter()
        .filter(|d| d.fault.as_deref() == Some("drop"))
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].attempt, 0);
    assert!(w.callback_faults.is_empty());
}

/// The front page (`/`) lists the companies, their apps' home pages and their members,
/// with the admin API: the demo's banner points at it (it answered 404 before).
#[tokio::test]
async fn the_front_page_lists_companies_apps_and_members() {
    let sim = Sim::from_scenario(wecom_sim::fixtures::acme_example());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let h = launch(sim, listener).await.expect("launch");
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/", h.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let w = h.sim.world();
    let corp = w.corps.values().next().expect("the example has a company");
    assert!(body.contains(&corp.corpid), "{body}");
    for app in corp.apps.values() {
        assert!(body.contains(&format!("AgentId {}", app.agentid)), "{body}");
        if !app.home_url.is_empty() {
            assert!(
                body.contains(&format!("href=\"{}\"", app.home_url)),
                "{body}"
            );
        }
    }
    let first = corp.members.values().next().unwrap();
    assert!(body.contains(&first.userid));
    assert!(body.contains("href=\"/sim/admin/corps\""));
    assert!(
        body.contains("wxwork/"),
        "says how to sign in as the WeCom client"
    );
}
