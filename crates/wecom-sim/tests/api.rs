//! The simulator over real HTTP: every `/cgi-bin` endpoint of the read side, the shared
//! checks (envelope, tokens, methods, callers, trusted IP, faults, rate limits) and the
//! admin API. Each test starts its own simulator on port 0, so they run in parallel.

use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use wecom_sim::{Scenario, Sim, SimHandle};

const CORP: &str = "wwTestCorp0000001";
/// 1000002: scope = department 2 (研发) and its subtree; post-2022; trusts 127.0.0.1.
const MAIN: &str = "main-secret";
/// 1000003: scope = tag 1 (member wujiu + department 6); created before 2022.
const OLD_TAG: &str = "old-tag-secret";
/// 1000004: scope = heqiang by name + department 4 + tag 2 (lisi, heqiang); pre-2022.
const MIXED: &str = "mixed-secret";
/// 1000005: scope = Zhangsan and loner by name only; pre-2022.
const USERS_ONLY: &str = "users-only-secret";
/// 1000006: disabled.
const CLOSED: &str = "closed-secret";
/// 1000007: the whole company; pre-2022 (sees sensitive fields).
const ALL_OLD: &str = "all-old-secret";
/// 1000008: no scope at all.
const EMPTY: &str = "empty-secret";
const SYNC: &str = "sync-secret";

/// The test org:
/// ```text
/// 1 测试科技
/// ├── 2 研发 (leader lisi)        lisi
/// │   ├── 3 后端 (leader Zhangsan) Zhangsan
/// │   │   └── 8 数据             zhaoliu
/// │   └── 4 前端                 wangwu
/// ├── 5 市场 (leader heqiang)     heqiang, Zhangsan (second department)
/// │   └── 6 华南                 sunqi
/// └── 7 行政                     wujiu, zhouba (disabled)
/// loner: no department
/// ```
const ORG: &str = r#"
[settings]
trust_client_ip_header = "x-client-ip"

[[corp]]
corpid = "wwTestCorp0000001"
name = "测试科技"
contact_sync_secret = "sync-secret"

[[corp.department]]
id = 1
name = "测试科技"
parentid = 0
order = 100000000

[[corp.department]]
id = 2
name = "研发"
name_en = "RD"
parentid = 1
order = 99999000
leaders = ["lisi"]

[[corp.department]]
id = 3
name = "后端"
parentid = 2
leaders = ["Zhangsan"]

[[corp.department]]
id = 4
name = "前端"
parentid = 2

[[corp.department]]
id = 5
name = "市场"
parentid = 1
leaders = ["heqiang"]

[[corp.department]]
id = 6
name = "华南"
parentid = 5

[[corp.department]]
id = 7
name = "行政"
parentid = 1

[[corp.department]]
id = 8
name = "数据"
parentid = 3

[[corp.member]]
userid = "Zhangsan"
name = "张三"
departments = [{ id = 3, order = 10, leader = true }, { id = 5, order = 0 }]
main_department = 3
position = "后端组长"
mobile = "13800000000"
gender = 1
email = "zhangsan@example.com"
biz_mail = "zhangsan@corp.example.com"
avatar = "https://wework.qpic.cn/wwhead/zs/0"
telephone = "020-123456"
alias = "jackzhang"
address = "广州市海珠区"
qr_code = "https://open.work.weixin.qq.com/wwopen/userQRCode?vcode=zs"
external_position = "技术负责人"
direct_leader = ["lisi"]
extattr = [{ name = "工号", text = "A001" }, { name = "主页", web_url = "https://zs.example.com", web_title = "张三" }]
external_profile = { external_corp_name = "测试科技", external_attr = [] }

[[corp.member]]
userid = "lisi"
name = "李四"
departments = [{ id = 2, leader = true }]
direct_leader = ["heqiang"]

[[corp.member]]
userid = "wangwu"
name = "王五"
departments = [{ id = 4 }]

[[corp.member]]
userid = "zhaoliu"
name = "赵六"
departments = [{ id = 8 }]

[[corp.member]]
userid = "heqiang"
name = "何强"
departments = [{ id = 5, leader = true }]

[[corp.member]]
userid = "sunqi"
name = "孙七"
departments = [{ id = 6 }]

[[corp.member]]
userid = "wujiu"
name = "吴九"
departments = [{ id = 7 }]

[[corp.member]]
userid = "zhouba"
name = "周八"
departments = [{ id = 7 }]
status = 2

[[corp.member]]
userid = "loner"
name = "独行"

[[corp.tag]]
id = 1
name = "项目A"
users = ["wujiu"]
parties = [6]

[[corp.tag]]
id = 2
name = "管理层"
users = ["lisi", "heqiang"]

[[corp.tag]]
id = 3
name = "空"

[[corp.app]]
agentid = 1000002
name = "工作台"
secret = "main-secret"
post_2022 = true
trusted_ips = ["127.0.0.1"]
redirect_domain = "oa.example.com:8080"
home_url = "https://oa.example.com:8080/home"
[corp.app.scope]
parties = [2]

[[corp.app]]
agentid = 1000003
name = "旧应用"
secret = "old-tag-secret"
post_2022 = false
[corp.app.scope]
tags = [1]

[[corp.app]]
agentid = 1000004
name = "混合"
secret = "mixed-secret"
post_2022 = false
[corp.app.scope]
users = ["HeQiang"]
parties = [4]
tags = [2]

[[corp.app]]
agentid = 1000005
name = "个人"
secret = "users-only-secret"
post_2022 = false
[corp.app.scope]
users = ["zhangsan", "loner"]

[[corp.app]]
agentid = 1000006
name = "停用"
secret = "closed-secret"
post_2022 = false
close = true

[[corp.app]]
agentid = 1000007
name = "全员"
secret = "all-old-secret"
post_2022 = false
[corp.app.scope]
parties = [1]

[[corp.app]]
agentid = 1000008
name = "空"
secret = "empty-secret"
post_2022 = false

[[corp.provider_app]]
agentid = 2000001
provider_id = "prov-a"
kind = "third_party"
[corp.provider_app.scope]
parties = [2]

[[corp.provider_app]]
agentid = 2000002
provider_id = "prov-b"
kind = "dai_kai_fa"
[corp.provider_app.scope]
users = ["sunqi"]
"#;

struct T {
    h: SimHandle,
    http: reqwest::Client,
}

async fn start_with(scenario: Scenario) -> T {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let h = wecom_sim::launch(Sim::from_scenario(scenario), listener)
        .await
        .expect("launch");
    wecom_sim::install_crypto_provider();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    T { h, http }
}

async fn start() -> T {
    let sc: Scenario = toml::from_str(ORG).expect("test org parses");
    sc.validate().expect("test org is consistent");
    start_with(sc).await
}

impl T {
    fn api(&self, path: &str) -> String {
        format!("{}/cgi-bin/{path}", self.h.base_url)
    }

    async fn json(resp: reqwest::Response) -> Value {
        let text = resp.text().await.expect("body");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
    }

    async fn raw_get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        Self::json(
            self.http
                .get(self.api(path))
                .query(query)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    async fn token(&self, secret: &str) -> String {
        let v = self
            .raw_get("gettoken", &[("corpid", CORP), ("corpsecret", secret)])
            .await;
        assert_eq!(v["errcode"], 0, "gettoken: {v}");
        v["access_token"].as_str().expect("token").to_string()
    }

    /// GET `path` with the token of `secret`.
    async fn get(&self, secret: &str, path: &str, query: &[(&str, &str)]) -> Value {
        let token = self.token(secret).await;
        self.get_tok(&token, path, query).await
    }

    async fn get_tok(&self, token: &str, path: &str, query: &[(&str, &str)]) -> Value {
        let mut q = vec![("access_token", token)];
        q.extend_from_slice(query);
        self.raw_get(path, &q).await
    }

    async fn get_from(&self, ip: &str, token: &str, path: &str) -> Value {
        Self::json(
            self.http
                .get(self.api(path))
                .query(&[("access_token", token)])
                .header("x-client-ip", ip)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    async fn post_tok(&self, token: &str, path: &str, body: &Value) -> Value {
        Self::json(
            self.http
                .post(self.api(path))
                .query(&[("access_token", token)])
                .json(body)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/sim/admin{path}", self.h.base_url);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    async fn admin_ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (s, v) = self.admin(method, path, Some(body)).await;
        assert!((200..300).contains(&s), "admin {path}: {s} {v}");
        v
    }

    async fn settings(&self, patch: Value) {
        self.admin_ok(Method::PATCH, "/settings", patch).await;
    }

    async fn advance(&self, secs: u64) {
        self.admin_ok(Method::POST, "/clock/advance", json!({ "secs": secs }))
            .await;
    }

    async fn provider_token(&self, agentid: u32) -> String {
        let v = self
            .admin_ok(
                Method::POST,
                &format!("/corps/{CORP}/provider_apps/{agentid}/token"),
                json!({}),
            )
            .await;
        v["access_token"].as_str().expect("token").to_string()
    }
}

fn ids(v: &Value, list: &str, field: &str) -> Vec<Value> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {v}"))
        .iter()
        .map(|x| x[field].clone())
        .collect()
}

fn errcode(v: &Value) -> i64 {
    v["errcode"]
        .as_i64()
        .unwrap_or_else(|| panic!("no errcode: {v}"))
}

// ---------------------------------------------------------------------------------------
// Envelope, paths, methods, JSON

#[tokio::test]
async fn envelope_headers_suffix_and_unknown_path() {
    let t = start().await;
    let tok = t.token(MAIN).await;
    let resp = t
        .http
        .get(t.api("agent/list"))
        .query(&[("access_token", tok.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["error-code"], "0");
    assert_eq!(resp.headers()["error-msg"], "ok");
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["errcode"].clone(), v["errmsg"].clone()),
        (json!(0), json!("ok"))
    );

    // Errors: HTTP 200, the code in a header, the full suffix in errmsg.
    let resp = t
        .http
        .get(t.api("user/get"))
        .query(&[("access_token", tok.as_str()), ("userid", "nobody")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["error-code"], "60111");
    let v: Value = resp.json().await.unwrap();
    let msg = v["errmsg"].as_str().unwrap();
    assert!(msg.starts_with("userid not found, hint: ["), "{msg}");
    assert!(
        msg.ends_with(
            "from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e=60111"
        ),
        "{msg}"
    );
    let hint = msg
        .split("hint: [")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap();
    assert_eq!(hint.len(), 25);
    assert!(hint.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        v["department"],
        json!([]),
        "user/get keeps department in failures"
    );

    // Unknown path: 404 with an empty body.
    let resp = t.http.get(t.api("no/such/api")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn wrong_method_and_bad_json() {
    let t = start().await;
    let sync = t.token(SYNC).await;
    // user/list_id is POST-only.
    let v = t.get_tok(&sync, "user/list_id", &[]).await;
    assert_eq!(errcode(&v), 40058);
    assert_eq!(v["dept_user"], json!([]));
    // user/get is GET-only.
    let v = t.post_tok(&sync, "user/get?userid=lisi", &json!({})).await;
    assert_eq!(errcode(&v), 40058);

    let resp = t
        .http
        .post(t.api("user/list_id"))
        .query(&[("access_token", sync.as_str())])
        .body("{not json")
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(errcode(&v), 40058);
    assert!(v["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter, Warning: wrong json format., hint: ["));
}

// ---------------------------------------------------------------------------------------
// Tokens

#[tokio::test]
async fn token_reuse_remaining_expiry_and_invalidation() {
    let t = start().await;
    let q = [("corpid", CORP), ("corpsecret", MAIN)];
    let a = t.raw_get("gettoken", &q).await;
    assert_eq!(a["expires_in"], 7200);
    let tok = a["access_token"].as_str().unwrap().to_string();
    assert_eq!(tok.len(), 128);
    assert!(tok
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));

    // Same token while valid, with the remaining lifetime; corpid is case-insensitive.
    t.advance(100).await;
    let b = t
        .raw_get(
            "gettoken",
            &[("corpid", &CORP.to_ascii_lowercase()), ("corpsecret", MAIN)],
        )
        .await;
    assert_eq!(b["access_token"], tok.as_str());
    assert_eq!(b["expires_in"], 7100);

    // Expired: 42001 on use, then a fresh token.
    t.advance(7100).await;
    let v = t.get_tok(&tok, "agent/list", &[]).await;
    assert_eq!(errcode(&v), 42001);
    let fresh = t.token(MAIN).await;
    assert_ne!(fresh, tok);

    // Invalidated through the admin API: 40014, then another token.
    let (s, v) = t
        .admin(
            Method::POST,
            &format!("/corps/{CORP}/tokens/invalidate"),
            Some(json!({ "agentid": 1000002 })),
        )
        .await;
    assert_eq!((s, v["revoked"].clone()), (200, json!(1)));
    assert_eq!(errcode(&t.get_tok(&fresh, "agent/list", &[]).await), 40014);
    let third = t.token(MAIN).await;
    assert_ne!(third, fresh);
    assert_eq!(errcode(&t.get_tok(&third, "agent/list", &[]).await), 0);

    // One token by value; unknown and missing tokens.
    t.admin_ok(
        Method::POST,
        &format!("/corps/{CORP}/tokens/invalidate"),
        json!({ "access_token": third }),
    )
    .await;
    assert_eq!(errcode(&t.get_tok(&third, "agent/list", &[]).await), 40014);
    assert_eq!(errcode(&t.get_tok("bogus", "agent/list", &[]).await), 40014);
    assert_eq!(errcode(&t.raw_get("agent/list", &[]).await), 41001);
}

#[tokio::test]
async fn gettoken_errors_and_wrong_secret_ban() {
    let t = start().await;
    let get = |q: Vec<(&'static str, &'static str)>| {
        let t = &t;
        async move { errcode(&t.raw_get("gettoken", &q).await) }
    };
    assert_eq!(get(vec![("corpid", CORP)]).await, 41004);
    assert_eq!(get(vec![("corpsecret", MAIN)]).await, 41002);
    assert_eq!(
        get(vec![("corpid", "wwnosuchcorp"), ("corpsecret", MAIN)]).await,
        40013
    );
    assert_eq!(
        get(vec![("corpid", CORP), ("corpsecret", "nope")]).await,
        40001
    );
    assert_eq!(
        get(vec![("corpid", CORP), ("corpsecret", CLOSED)]).await,
        40001
    );

    // Wrong secrets from one IP: past the limit the IP is banned for an hour (45009),
    // right secret or not; other IPs are unaffected.
    t.settings(json!({ "wrong_secret_per_hour": 3 })).await;
    let from = |ip: &'static str, secret: &'static str| {
        let t = &t;
        async move {
            let v: Value = t
                .http
                .get(t.api("gettoken"))
                .query(&[("corpid", CORP), ("corpsecret", secret)])
                .header("x-client-ip", ip)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            errcode(&v)
        }
    };
    for _ in 0..3 {
        assert_eq!(from("198.51.100.7", "wrong").await, 40001);
    }
    assert_eq!(from("198.51.100.7", "wrong").await, 45009);
    assert_eq!(from("198.51.100.7", MAIN).await, 45009);
    assert_eq!(from("198.51.100.8", MAIN).await, 0);
    t.advance(3601).await;
    assert_eq!(from("198.51.100.7", MAIN).await, 0);
}

#[tokio::test]
async fn disabled_app_and_secret_reset() {
    let t = start().await;
    let old_tok = t.token(ALL_OLD).await;
    let path = format!("/corps/{CORP}/apps/1000007");

    // Secret reset: the old secret gets 40001, issued tokens live on by default.
    let app = t
        .admin_ok(Method::PATCH, &path, json!({ "reset_secret": true }))
        .await;
    let new_secret = app["secret"].as_str().unwrap().to_string();
    assert_eq!(new_secret.len(), 43);
    let v = t
        .raw_get("gettoken", &[("corpid", CORP), ("corpsecret", ALL_OLD)])
        .await;
    assert_eq!(errcode(&v), 40001);
    assert_eq!(errcode(&t.get_tok(&old_tok, "agent/list", &[]).await), 0);
    let second = t.token(&new_secret).await;
    assert_eq!(second, old_tok, "the live token of the app is reused");

    // With secret_reset_revokes_tokens, a reset kills them at once.
    t.settings(json!({ "secret_reset_revokes_tokens": true }))
        .await;
    t.admin_ok(Method::PATCH, &path, json!({ "secret": "set-by-test" }))
        .await;
    assert_eq!(
        errcode(&t.get_tok(&old_tok, "agent/list", &[]).await),
        40014
    );

    // Disabling: gettoken 40001, older tokens 50003.
    let tok = t.token("set-by-test").await;
    t.admin_ok(Method::PATCH, &path, json!({ "close": 1 }))
        .await;
    assert_eq!(errcode(&t.get_tok(&tok, "agent/list", &[]).await), 50003);
    let v = t
        .raw_get(
            "gettoken",
            &[("corpid", CORP), ("corpsecret", "set-by-test")],
        )
        .await;
    assert_eq!(errcode(&v), 40001);
    t.admin_ok(Method::PATCH, &path, json!({ "close": false }))
        .await;
    assert_eq!(errcode(&t.get_tok(&tok, "agent/list", &[]).await), 0);
}

// ---------------------------------------------------------------------------------------
// Callers, trusted IP, faults, limits

#[tokio::test]
async fn caller_rights_48002() {
    let t = start().await;
    let sync = t.token(SYNC).await;
    let app = t.token(MAIN).await;
    let prov = t.provider_token(2000001).await;
    for path in ["agent/get", "agent/list", "get_jsapi_ticket", "ticket/get"] {
        let v = t
            .get_tok(
                &sync,
                path,
                &[("agentid", "1000002"), ("type", "agent_config")],
            )
            .await;
        assert_eq!(errcode(&v), 48002, "{path} with the contact-sync token");
    }
    let v = t.post_tok(&app, "user/list_id", &json!({})).await;
    assert_eq!(errcode(&v), 48002);
    let v = t.post_tok(&prov, "user/list_id", &json!({})).await;
    assert_eq!(errcode(&v), 48002);
    let body = json!({"open_userid_list": [], "source_agentid": 2000001});
    for tok in [&sync, &prov] {
        let v = t.post_tok(tok, "batch/openuserid_to_userid", &body).await;
        assert_eq!(errcode(&v), 48002);
        assert_eq!(v["userid_list"], json!([]));
    }
    let body = json!({"userid_list": ["lisi"]});
    for tok in [&sync, &app] {
        let v = t.post_tok(tok, "batch/userid_to_openuserid", &body).await;
        assert_eq!(errcode(&v), 48002);
    }
    // Every caller may read the IP lists.
    for tok in [&sync, &app, &prov] {
        assert_eq!(errcode(&t.get_tok(tok, "getcallbackip", &[]).await), 0);
    }
}

#[tokio::test]
async fn trusted_ip_60020() {
    let t = start().await;
    // gettoken itself is never IP-checked; the next call is.
    let v: Value = t
        .http
        .get(t.api("gettoken"))
        .query(&[("corpid", CORP), ("corpsecret", MAIN)])
        .header("x-client-ip", "203.0.113.25")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tok = v["access_token"].as_str().unwrap().to_string();
    let v = t.get_from("203.0.113.25", &tok, "agent/list").await;
    assert_eq!(errcode(&v), 60020);
    assert!(v["errmsg"]
        .as_str()
        .unwrap()
        .contains("not allow to access from your ip, hint: ["));
    assert!(v["errmsg"]
        .as_str()
        .unwrap()
        .contains("from ip: 203.0.113.25, more info"));
    // IP-list endpoints fail too, keeping their default field.
    let v = t.get_from("203.0.113.25", &tok, "get_api_domain_ip").await;
    assert_eq!((errcode(&v), v["ip_list"].clone()), (60020, json!([])));
    // A pre-2022 app with an empty list is not checked.
    let old = t.token(ALL_OLD).await;
    assert_eq!(
        errcode(&t.get_from("203.0.113.25", &old, "agent/list").await),
        0
    );

    // Trusting the IP through the admin API lets it in.
    let app = t
        .admin_ok(
            Method::PATCH,
            &format!("/corps/{CORP}/apps/1000002"),
            json!({ "trusted_ips": ["127.0.0.1", "203.0.113.25"] }),
        )
        .await;
    assert_eq!(app["trusted_ips"], json!(["127.0.0.1", "203.0.113.25"]));
    assert_eq!(
        errcode(&t.get_from("203.0.113.25", &tok, "agent/list").await),
        0
    );

    // With trusted_ip_delay_secs, a new entry only works after the delay.
    t.settings(json!({ "trusted_ip_delay_secs": 60 })).await;
    t.admin_ok(
        Method::PATCH,
        &format!("/corps/{CORP}/apps/1000002"),
        json!({ "trusted_ips": ["127.0.0.1", "203.0.113.25", "2001:db8::1"] }),
    )
    .await;
    assert_eq!(
        errcode(&t.get_from("2001:db8::1", &tok, "agent/list").await),
        60020
    );
    t.advance(61).await;
    assert_eq!(
        errcode(&t.get_from("2001:db8::1", &tok, "agent/list").await),
        0
    );
}

#[tokio::test]
async fn injected_faults_and_latency() {
    let t = start().await;
    let tok = t.token(MAIN).await;
    let (s, v) = t
        .admin(
            Method::POST,
            "/faults",
            Some(json!({"path": "/cgi-bin/user/get", "errcode": -1, "count": 2})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(v["faults"][0]["path"], "user/get");
    let q = [("userid", "lisi")];
    assert_eq!(errcode(&t.get_tok(&tok, "user/get", &q).await), -1);
    let v = t.get_tok(&tok, "user/get", &q).await;
    assert!(v["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("system busy, hint: ["));
    assert_eq!(errcode(&t.get_tok(&tok, "user/get", &q).await), 0);

    // "*" hits any API; a corp filter limits it to that corp.
    t.admin_ok(
        Method::POST,
        "/faults",
        json!({"path": "*", "errcode": 45033, "corp": CORP.to_ascii_uppercase()}),
    )
    .await;
    assert_eq!(errcode(&t.get_tok(&tok, "agent/list", &[]).await), 45033);
    assert_eq!(errcode(&t.get_tok(&tok, "agent/list", &[]).await), 0);

    // Faults can be listed and cleared before they fire.
    t.admin_ok(
        Method::POST,
        "/faults",
        json!({"path": "tag/list", "errcode": 45009, "count": 5}),
    )
    .await;
    let (_, v) = t.admin(Method::DELETE, "/faults", None).await;
    assert_eq!(v["faults"], json!([]));
    assert_eq!(errcode(&t.get_tok(&tok, "tag/list", &[]).await), 0);

    t.admin_ok(
        Method::POST,
        "/latencies",
        json!({"path": "agent/list", "ms": 300}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(errcode(&t.get_tok(&tok, "agent/list", &[]).await), 0);
    assert!(started.elapsed() >= Duration::from_millis(300));
    t.admin(Method::DELETE, "/latencies", None).await;
    let started = Instant::now();
    t.get_tok(&tok, "agent/list", &[]).await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn rate_limit_45009_with_tightened_limit() {
    let t = start().await;
    t.settings(json!({ "per_corp_api_per_min": 3 })).await;
    let tok = t.token(MAIN).await;
    for _ in 0..3 {
        assert_eq!(errcode(&t.get_tok(&tok, "agent/list", &[]).await), 0);
    }
    let v = t.get_tok(&tok, "agent/list", &[]).await;
    assert_eq!(errcode(&v), 45009);
    assert!(v["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("api freq out of limit"));
    // The limit is per API.
    assert_eq!(
        errcode(
            &t.get_tok(&tok, "agent/get", &[("agentid", "1000002")])
                .await
        ),
        0
    );
    // The block lasts the window; the sim clock clears it.
    t.advance(30).await;
    assert_eq!(errcode(&t.get_tok(&tok, "agent/list", &[]).await), 45009);
    t.advance(31).await;
    assert_eq!(errcode(&t.get_tok(&tok, "agent/list", &[]).await), 0);

    // Counters saw every call, and reset.
    let (_, c) = t.admin(Method::GET, "/counters", None).await;
    assert_eq!(c["counters"]["agent/list"], 6);
    assert_eq!(c["counters"]["gettoken"], 1);
    assert_eq!(c["total"], 8);
    let (_, c) = t.admin(Method::DELETE, "/counters", None).await;
    assert_eq!(c["total"], 0);
}

// ---------------------------------------------------------------------------------------
// agent/get, agent/list

#[tokio::test]
async fn agent_get_and_list() {
    let t = start().await;
    let tok = t.token(MIXED).await;
    let v = t
        .get_tok(&tok, "agent/get", &[("agentid", "1000004")])
        .await;
    assert_eq!(errcode(&v), 0);
    assert_eq!(v["agentid"], 1000004);
    assert_eq!(v["name"], "混合");
    // Scope users answer in stored spelling.
    assert_eq!(
        v["allow_userinfos"],
        json!({"user": [{"userid": "heqiang"}]})
    );
    assert_eq!(v["allow_partys"], json!({"partyid": [4]}));
    assert_eq!(v["allow_tags"], json!({"tagid": [2]}));
    assert_eq!(v["close"], 0);
    for k in [
        "square_logo_url",
        "description",
        "redirect_domain",
        "home_url",
        "report_location_flag",
        "isreportenter",
    ] {
        assert!(v.get(k).is_some(), "agent/get lacks {k}");
    }
    // agent/get does not report the web-login domain or trusted IPs.
    assert!(v.get("web_login_domain").is_none() && v.get("trusted_ips").is_none());

    let v = t.get(MAIN, "agent/get", &[("agentid", "1000002")]).await;
    assert_eq!(v["redirect_domain"], "oa.example.com:8080");
    assert_eq!(v["home_url"], "https://oa.example.com:8080/home");

    // allow_* always present, empty when unset.
    let v = t.get(EMPTY, "agent/get", &[("agentid", "1000008")]).await;
    assert_eq!(v["allow_userinfos"], json!({"user": []}));
    assert_eq!(v["allow_partys"], json!({"partyid": []}));
    assert_eq!(v["allow_tags"], json!({"tagid": []}));

    // Another app of the corp: 301002; unknown or not an int: 40056.
    let cases = [
        ("1000002", 301002),
        ("2000001", 301002),
        ("999", 40056),
        ("abc", 40056),
        ("", 40056),
    ];
    for (agentid, code) in cases {
        let v = t.get_tok(&tok, "agent/get", &[("agentid", agentid)]).await;
        assert_eq!(errcode(&v), code, "agentid {agentid:?}");
    }
    assert!(t.get_tok(&tok, "agent/get", &[]).await["errcode"] == 40056);

    let v = t.get_tok(&tok, "agent/list", &[]).await;
    assert_eq!(
        v["agentlist"],
        json!([{"agentid": 1000004, "name": "混合", "square_logo_url": ""}])
    );

    // A provider token reads its own agent.
    let prov = t.provider_token(2000001).await;
    let v = t
        .get_tok(&prov, "agent/get", &[("agentid", "2000001")])
        .await;
    assert_eq!(v["allow_partys"], json!({"partyid": [2]}));
}

// ---------------------------------------------------------------------------------------
// Scope: departments, tags, individual users, mixed

#[tokio::test]
async fn scope_by_department_subtree() {
    let t = start().await;
    let tok = t.token(MAIN).await;
    let v = t.get_tok(&tok, "department/list", &[]).await;
    assert_eq!(errcode(&v), 0);
    // Parents before children; the top department keeps its real (invisible) parent.
    assert_eq!(
        ids(&v, "department", "id"),
        [json!(2), json!(3), json!(8), json!(4)]
    );
    assert_eq!(
        v["department"][0],
        json!({"id": 2, "name": "研发", "name_en": "RD", "department_leader": ["lisi"],
               "parentid": 1, "order": 99999000})
    );
    assert_eq!(v["department"][1]["department_leader"], json!(["Zhangsan"]));

    let v = t.get_tok(&tok, "department/list", &[("id", "3")]).await;
    assert_eq!(ids(&v, "department", "id"), [json!(3), json!(8)]);
    let v = t
        .get_tok(&tok, "department/simplelist", &[("id", "2")])
        .await;
    assert_eq!(
        v["department_id"],
        json!([{"id": 2, "parentid": 1, "order": 99999000}, {"id": 3, "parentid": 2, "order": 0},
               {"id": 8, "parentid": 3, "order": 0}, {"id": 4, "parentid": 2, "order": 0}])
    );
    for (path, default) in [
        ("department/list", "department"),
        ("department/simplelist", "department_id"),
    ] {
        let v = t.get_tok(&tok, path, &[("id", "5")]).await;
        assert_eq!((errcode(&v), v[default].clone()), (60011, json!([])));
        assert_eq!(
            errcode(&t.get_tok(&tok, path, &[("id", "99")]).await),
            60003
        );
        assert_eq!(errcode(&t.get_tok(&tok, path, &[("id", "x")]).await), 60123);
    }

    let v = t.get_tok(&tok, "department/get", &[("id", "3")]).await;
    assert_eq!(v["department"]["id"], 3);
    assert_eq!(v["department"]["parentid"], 2);
    assert_eq!(
        errcode(&t.get_tok(&tok, "department/get", &[("id", "5")]).await),
        60011
    );
    assert_eq!(
        errcode(&t.get_tok(&tok, "department/get", &[("id", "99")]).await),
        60003
    );
    assert_eq!(
        errcode(&t.get_tok(&tok, "department/get", &[]).await),
        40063
    );

    let v = t
        .get_tok(&tok, "user/list", &[("department_id", "3")])
        .await;
    assert_eq!(ids(&v, "userlist", "userid"), [json!("Zhangsan")]);
    let v = t
        .get_tok(&tok, "user/simplelist", &[("department_id", "2")])
        .await;
    assert_eq!(
        v["userlist"],
        json!([{"userid": "lisi", "name": "李四", "department": [2]}])
    );
    let v = t
        .get_tok(&tok, "user/list", &[("department_id", "5")])
        .await;
    assert_eq!((errcode(&v), v["userlist"].clone()), (60011, json!([])));

    // user/get: visible departments only, leaders in scope only.
    let v = t.get_tok(&tok, "user/get", &[("userid", "zhangsan")]).await;
    assert_eq!(v["userid"], "Zhangsan", "stored spelling");
    assert_eq!(v["department"], json!([3]));
    assert_eq!(v["order"], json!([10]));
    assert_eq!(v["is_leader_in_dept"], json!([1]));
    assert_eq!(v["main_department"], 3);
    assert_eq!(v["direct_leader"], json!(["lisi"]));
    let v = t.get_tok(&tok, "user/get", &[("userid", "LISI")]).await;
    assert_eq!(v["userid"], "lisi");
    assert_eq!(v["direct_leader"], json!([]), "heqiang is out of scope");

    // Out of scope 60011; unknown 60111; missing 41009; malformed 40003.
    let cases = [
        ("heqiang", 60011),
        ("loner", 60011),
        ("nobody", 60111),
        ("", 41009),
        ("bad userid!", 40003),
    ];
    for (u, code) in cases {
        let v = t.get_tok(&tok, "user/get", &[("userid", u)]).await;
        assert_eq!(errcode(&v), code, "user/get {u:?}");
    }
}

#[tokio::test]
async fn scope_by_tag_brings_members_and_department_subtrees() {
    let t = start().await;
    let tok = t.token(OLD_TAG).await;
    let v = t.get_tok(&tok, "department/list", &[]).await;
    assert_eq!(ids(&v, "department", "id"), [json!(6)]);
    assert_eq!(v["department"][0]["parentid"], 5);
    // A tag member brings no department: department [] and no main_department.
    let v = t.get_tok(&tok, "user/get", &[("userid", "wujiu")]).await;
    assert_eq!(errcode(&v), 0);
    assert_eq!(v["department"], json!([]));
    assert_eq!(v["order"], json!([]));
    assert!(v.get("main_department").is_none());
    let v = t.get_tok(&tok, "user/get", &[("userid", "sunqi")]).await;
    assert_eq!(v["department"], json!([6]));
    assert_eq!(v["main_department"], 6);
    let v = t
        .get_tok(&tok, "user/list", &[("department_id", "6")])
        .await;
    assert_eq!(ids(&v, "userlist", "userid"), [json!("sunqi")]);
    assert_eq!(
        errcode(
            &t.get_tok(&tok, "user/list", &[("department_id", "7")])
                .await
        ),
        60011
    );
    assert_eq!(
        errcode(&t.get_tok(&tok, "user/get", &[("userid", "zhouba")]).await),
        60011
    );

    // tag/list: all tags; tag/get: any tag, members and departments cut to the scope.
    let v = t.get_tok(&tok, "tag/list", &[]).await;
    assert_eq!(
        v["taglist"],
        json!([{"tagid": 1, "tagname": "项目A"}, {"tagid": 2, "tagname": "管理层"},
               {"tagid": 3, "tagname": "空"}])
    );
    let v = t.get_tok(&tok, "tag/get", &[("tagid", "1")]).await;
    assert_eq!(
        (
            v["tagname"].clone(),
            v["userlist"].clone(),
            v["partylist"].clone()
        ),
        (
            json!("项目A"),
            json!([{"userid": "wujiu", "name": "吴九"}]),
            json!([6])
        )
    );
    let v = t.get_tok(&tok, "tag/get", &[("tagid", "2")]).await;
    assert_eq!(
        (errcode(&v), v["userlist"].clone(), v["partylist"].clone()),
        (0, json!([]), json!([]))
    );
    for (q, code) in [("99", 40068), ("x", 40068), ("", 40063)] {
        let v = t.get_tok(&tok, "tag/get", &[("tagid", q)]).await;
        assert_eq!(errcode(&v), code, "tagid {q:?}");
        assert_eq!(
            (v["userlist"].clone(), v["partylist"].clone()),
            (json!([]), json!([]))
        );
    }
}

#[tokio::test]
async fn mixed_scope_users_departments_and_tags() {
    let t = start().await;
    let tok = t.token(MIXED).await;
    let v = t.get_tok(&tok, "department/list", &[]).await;
    assert_eq!(ids(&v, "department", "id"), [json!(4)]);
    assert_eq!(v["department"][0]["parentid"], 2);
    // heqiang is scoped by name (configured as "HeQiang") and by tag; his department is not.
    let v = t.get_tok(&tok, "user/get", &[("userid", "heqiang")]).await;
    assert_eq!((errcode(&v), v["department"].clone()), (0, json!([])));
    // lisi comes through tag 2; his direct leader heqiang is in scope.
    let v = t.get_tok(&tok, "user/get", &[("userid", "lisi")]).await;
    assert_eq!(v["direct_leader"], json!(["heqiang"]));
    assert_eq!(v["department"], json!([]));
    let v = t.get_tok(&tok, "user/get", &[("userid", "wangwu")]).await;
    assert_eq!(v["department"], json!([4]));
    assert_eq!(
        errcode(&t.get_tok(&tok, "user/get", &[("userid", "zhangsan")]).await),
        60011
    );
    let v = t.get_tok(&tok, "tag/get", &[("tagid", "2")]).await;
    assert_eq!(
        ids(&v, "userlist", "userid"),
        [json!("heqiang"), json!("lisi")]
    );

    // Users only: no department at all, leaders filtered.
    let tok = t.token(USERS_ONLY).await;
    let v = t.get_tok(&tok, "department/list", &[]).await;
    assert_eq!((errcode(&v), v["department"].clone()), (0, json!([])));
    let v = t.get_tok(&tok, "user/get", &[("userid", "ZHANGSAN")]).await;
    assert_eq!(v["department"], json!([]));
    assert_eq!(v["direct_leader"], json!([]));
    assert!(v.get("main_department").is_none());
    let v = t.get_tok(&tok, "user/get", &[("userid", "loner")]).await;
    assert_eq!(errcode(&v), 0);

    // Contact-sync sees everything, the whole tree from the root.
    let sync = t.token(SYNC).await;
    let v = t.get_tok(&sync, "department/simplelist", &[]).await;
    assert_eq!(
        ids(&v, "department_id", "id"),
        [1, 2, 3, 8, 4, 5, 6, 7].map(|i| json!(i))
    );
    let v = t
        .get_tok(&sync, "user/get", &[("userid", "zhangsan")])
        .await;
    assert_eq!(v["department"], json!([3, 5]));
    assert_eq!(v["order"], json!([10, 0]));
    assert_eq!(v["is_leader_in_dept"], json!([1, 0]));
}

// ---------------------------------------------------------------------------------------
// Member objects: withheld fields, formats

#[tokio::test]
async fn restricted_fields_for_post_2022_apps() {
    let t = start().await;
    let sensitive = [
        "mobile",
        "email",
        "biz_mail",
        "avatar",
        "thumb_avatar",
        "address",
        "qr_code",
    ];
    let v = t.get(MAIN, "user/get", &[("userid", "zhangsan")]).await;
    for f in sensitive {
        assert!(v.get(f).is_none(), "{f} must be withheld: {v}");
    }
    assert_eq!(v["gender"], "0");
    // Not cut: the rest of §5.7.
    assert_eq!(v["name"], "张三");
    assert_eq!(v["position"], "后端组长");
    assert_eq!(v["telephone"], "020-123456");
    assert_eq!(v["alias"], "jackzhang");
    assert_eq!(v["status"], 1);
    assert_eq!(v["external_position"], "技术负责人");
    assert_eq!(v["external_profile"]["external_corp_name"], "测试科技");
    assert_eq!(
        v["extattr"],
        json!({"attrs": [
            {"type": 0, "name": "工号", "text": {"value": "A001"}},
            {"type": 1, "name": "主页", "web": {"url": "https://zs.example.com", "title": "张三"}},
        ]})
    );
    // The same cut in user/list.
    let v = t.get(MAIN, "user/list", &[("department_id", "3")]).await;
    assert!(v["userlist"][0].get("mobile").is_none());
    assert_eq!(v["userlist"][0]["gender"], "0");

    // A pre-2022 app sees everything; gender is a string; thumb_avatar from avatar.
    let v = t.get(ALL_OLD, "user/get", &[("userid", "zhangsan")]).await;
    assert_eq!(v["gender"], "1");
    assert_eq!(v["mobile"], "13800000000");
    assert_eq!(v["email"], "zhangsan@example.com");
    assert_eq!(v["biz_mail"], "zhangsan@corp.example.com");
    assert_eq!(v["avatar"], "https://wework.qpic.cn/wwhead/zs/0");
    assert_eq!(v["thumb_avatar"], "https://wework.qpic.cn/wwhead/zs/100");
    assert_eq!(v["address"], "广州市海珠区");
    assert!(v["qr_code"].as_str().unwrap().contains("vcode=zs"));
    let v = t.get(ALL_OLD, "user/get", &[("userid", "zhouba")]).await;
    assert_eq!(v["status"], 2);
    assert_eq!(v["gender"], "0");

    // withheld_as_empty: keys present, empty.
    t.settings(json!({ "withheld_as_empty": true })).await;
    let v = t.get(MAIN, "user/get", &[("userid", "zhangsan")]).await;
    for f in sensitive {
        assert_eq!(v[f], "", "{f}");
    }
    assert_eq!(v["gender"], "0");

    // Turning post_2022 off through the admin API restores the fields.
    t.admin_ok(
        Method::PATCH,
        &format!("/corps/{CORP}/apps/1000002"),
        json!({ "post_2022": false }),
    )
    .await;
    let v = t.get(MAIN, "user/get", &[("userid", "zhangsan")]).await;
    assert_eq!(v["mobile"], "13800000000");
}

#[tokio::test]
async fn user_lists_parameters_fetch_child_and_45029() {
    let t = start().await;
    let tok = t.token(ALL_OLD).await;
    for path in ["user/list", "user/simplelist"] {
        let v = t.get_tok(&tok, path, &[]).await;
        assert_eq!((errcode(&v), v["userlist"].clone()), (40063, json!([])));
        assert_eq!(
            errcode(&t.get_tok(&tok, path, &[("department_id", "x")]).await),
            60123
        );
        assert_eq!(
            errcode(&t.get_tok(&tok, path, &[("department_id", "99")]).await),
            60003
        );
    }
    // fetch_child is accepted and ignored: direct members only.
    let q = [
        ("department_id", "2"),
        ("fetch_child", "1"),
        ("status", "0"),
    ];
    let v = t.get_tok(&tok, "user/simplelist", &q).await;
    assert_eq!(ids(&v, "userlist", "userid"), [json!("lisi")]);
    // … unless honour_fetch_child is on; each member once.
    t.settings(json!({ "honour_fetch_child": true })).await;
    let v = t.get_tok(&tok, "user/simplelist", &q).await;
    let mut got: Vec<String> = ids(&v, "userlist", "userid")
        .into_iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, ["Zhangsan", "lisi", "wangwu", "zhaoliu"]);
    let v = t
        .get_tok(
            &tok,
            "user/simplelist",
            &[("department_id", "1"), ("fetch_child", "1")],
        )
        .await;
    assert_eq!(v["userlist"].as_array().unwrap().len(), 8, "Zhangsan once");
    // A member in two departments shows both (visible) departments in simplelist.
    let v = t
        .get_tok(&tok, "user/simplelist", &[("department_id", "5")])
        .await;
    assert_eq!(
        v["userlist"],
        json!([{"userid": "heqiang", "name": "何强", "department": [5]},
               {"userid": "Zhangsan", "name": "张三", "department": [3, 5]}])
    );

    t.settings(json!({ "max_list_members": 1 })).await;
    let v = t
        .get_tok(&tok, "user/list", &[("department_id", "7")])
        .await;
    assert_eq!((errcode(&v), v["userlist"].clone()), (45029, json!([])));
    assert_eq!(
        errcode(
            &t.get_tok(&tok, "user/list", &[("department_id", "4")])
                .await
        ),
        0
    );
}

// ---------------------------------------------------------------------------------------
// user/list_id

async fn list_id(t: &T, tok: &str, body: Value) -> Value {
    t.post_tok(tok, "user/list_id", &body).await
}

fn rows(v: &Value) -> Vec<(String, u64)> {
    v["dept_user"]
        .as_array()
        .unwrap_or_else(|| panic!("no dept_user: {v}"))
        .iter()
        .map(|r| {
            (
                r["userid"].as_str().unwrap().to_string(),
                r["department"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn user_list_id_keyset_paging() {
    let t = start().await;
    let sync = t.token(SYNC).await;
    let all: Vec<(String, u64)> = [
        ("heqiang", 5),
        ("lisi", 2),
        ("sunqi", 6),
        ("wangwu", 4),
        ("wujiu", 7),
        ("Zhangsan", 3),
        ("Zhangsan", 5),
        ("zhaoliu", 8),
        ("zhouba", 7),
    ]
    .iter()
    .map(|(u, d)| (u.to_string(), *d))
    .collect();

    // One page with the default limit; the last page has an empty next_cursor.
    let v = list_id(&t, &sync, json!({})).await;
    assert_eq!(errcode(&v), 0);
    assert_eq!(rows(&v), all);
    assert_eq!(v["next_cursor"], "");

    // Pages of 2, then 3 (an exact multiple ends without an empty extra page).
    for limit in [2usize, 3, 4] {
        let mut got = Vec::new();
        let mut cursor = String::new();
        let mut pages = 0;
        loop {
            let v = list_id(&t, &sync, json!({"cursor": cursor, "limit": limit})).await;
            assert_eq!(errcode(&v), 0, "{v}");
            pages += 1;
            got.extend(rows(&v));
            cursor = v["next_cursor"].as_str().unwrap().to_string();
            if cursor.is_empty() {
                break;
            }
        }
        assert_eq!(got, all, "limit {limit}");
        assert_eq!(pages, all.len().div_ceil(limit));
    }

    // The cursor names the last row, so pages stay consistent while the org changes.
    let v = list_id(&t, &sync, json!({"limit": 3})).await;
    assert_eq!(rows(&v).last().unwrap().0, "sunqi");
    let cursor = v["next_cursor"].as_str().unwrap().to_string();
    let member = |u: &str, d: u32| json!({"userid": u, "name": u, "departments": [d]});
    t.admin_ok(
        Method::DELETE,
        &format!("/corps/{CORP}/members/sunqi"),
        json!({}),
    )
    .await;
    t.admin_ok(
        Method::POST,
        &format!("/corps/{CORP}/members"),
        member("aaron", 7),
    )
    .await;
    t.admin_ok(
        Method::POST,
        &format!("/corps/{CORP}/members"),
        member("zz.top", 7),
    )
    .await;
    let v = list_id(&t, &sync, json!({"cursor": cursor})).await;
    let mut expect: Vec<(String, u64)> = all[3..].to_vec();
    expect.push(("zz.top".into(), 7));
    assert_eq!(rows(&v), expect);

    // Parameter errors.
    for limit in [json!(0), json!(10001), json!("10"), json!(-1), json!(1.5)] {
        let v = list_id(&t, &sync, json!({ "limit": limit })).await;
        assert_eq!(
            (errcode(&v), v["dept_user"].clone()),
            (40058, json!([])),
            "{limit}"
        );
    }
    assert_eq!(errcode(&list_id(&t, &sync, json!([1, 2])).await), 40058);
    assert_eq!(
        errcode(&list_id(&t, &sync, json!({"limit": 10000})).await),
        0
    );
    for cursor in [json!("aGVsbG8"), json!("%%%"), json!(12)] {
        let v = list_id(&t, &sync, json!({ "cursor": cursor })).await;
        assert_eq!(errcode(&v), 50100, "{cursor}");
    }

    // omit_last_cursor drops the key on the last page.
    t.settings(json!({ "omit_last_cursor": true })).await;
    let v = list_id(&t, &sync, json!({})).await;
    assert!(v.get("next_cursor").is_none());
    let v = list_id(&t, &sync, json!({"limit": 1})).await;
    assert!(!v["next_cursor"].as_str().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// ID conversion

#[tokio::test]
async fn openuserid_conversion_both_ways() {
    let t = start().await;
    let prov = t.provider_token(2000001).await;
    let corp_lower = CORP.to_ascii_lowercase();
    let open = |u: &str| wecom_sim::model::open_userid("prov-a", &corp_lower, u);

    // userid → open_userid, for the provider's scope (department 2's subtree).
    let v = t
        .post_tok(
            &prov,
            "batch/userid_to_openuserid",
            &json!({"userid_list": ["zhangsan", "sunqi", "nobody"]}),
        )
        .await;
    assert_eq!(errcode(&v), 0);
    let zs = open("zhangsan");
    assert!(zs.starts_with("wo") && zs.len() == 32);
    assert_eq!(
        v["open_userid_list"],
        json!([{"userid": "Zhangsan", "open_userid": zs}])
    );
    assert_eq!(v["invalid_userid_list"], json!(["sunqi", "nobody"]));
    // The provider sees open_userid in member objects too.
    let v = t
        .get_tok(&prov, "user/get", &[("userid", "zhangsan")])
        .await;
    assert_eq!(v["open_userid"], zs.as_str());

    // open_userid → userid with the self-built token: members in both scopes only.
    let main = t.token(MAIN).await;
    let list = json!([
        zs,
        open("wangwu"),
        open("sunqi"),
        "woMalformed",
        open("heqiang")
    ]);
    for source in [json!(2000001), json!("2000001")] {
        let v = t
            .post_tok(
                &main,
                "batch/openuserid_to_userid",
                &json!({"open_userid_list": list, "source_agentid": source}),
            )
            .await;
        assert_eq!(errcode(&v), 0, "{v}");
        assert_eq!(
            v["userid_list"],
            json!([{"open_userid": zs, "userid": "Zhangsan"},
                   {"open_userid": open("wangwu"), "userid": "wangwu"}])
        );
        assert_eq!(
            v["invalid_open_userid_list"],
            json!([open("sunqi"), "woMalformed", open("heqiang")])
        );
    }
    // Out of the self-built app's scope (USERS_ONLY has Zhangsan but not wangwu).
    let users_only = t.token(USERS_ONLY).await;
    let v = t
        .post_tok(
            &users_only,
            "batch/openuserid_to_userid",
            &json!({"open_userid_list": [zs, open("wangwu")], "source_agentid": 2000001}),
        )
        .await;
    assert_eq!(ids(&v, "userid_list", "userid"), [json!("Zhangsan")]);

    // Errors: unknown or non-provider source_agentid, too many ids, a bad list.
    let bad = [
        (
            json!({"open_userid_list": [zs], "source_agentid": 999}),
            40056,
        ),
        (
            json!({"open_userid_list": [zs], "source_agentid": 1000003}),
            40056,
        ),
        (
            json!({"open_userid_list": [zs], "source_agentid": "abc"}),
            40056,
        ),
        (json!({"open_userid_list": [zs]}), 40056),
        (
            json!({"open_userid_list": vec![zs.clone(); 1001], "source_agentid": 2000001}),
            40058,
        ),
        (
            json!({"open_userid_list": "x", "source_agentid": 2000001}),
            40058,
        ),
        (json!({"source_agentid": 2000001}), 40058),
    ];
    for (body, code) in bad {
        let v = t.post_tok(&main, "batch/openuserid_to_userid", &body).await;
        assert_eq!(errcode(&v), code, "{body}");
        assert_eq!(v["invalid_open_userid_list"], json!([]));
    }
    let v = t
        .post_tok(
            &main,
            "batch/openuserid_to_userid",
            &json!({"open_userid_list": vec![zs.clone(); 1000], "source_agentid": 2000001}),
        )
        .await;
    assert_eq!(v["userid_list"].as_array().unwrap().len(), 1000);

    // Removing the provider app makes its agentid unknown and kills its tokens.
    t.admin_ok(
        Method::DELETE,
        &format!("/corps/{CORP}/provider_apps/2000001"),
        json!({}),
    )
    .await;
    let v = t
        .post_tok(
            &main,
            "batch/openuserid_to_userid",
            &json!({"open_userid_list": [zs], "source_agentid": 2000001}),
        )
        .await;
    assert_eq!(errcode(&v), 40056);
    let v = t
        .post_tok(
            &prov,
            "batch/userid_to_openuserid",
            &json!({"userid_list": []}),
        )
        .await;
    assert_eq!(errcode(&v), 40014);
}

// ---------------------------------------------------------------------------------------
// Network and JS-SDK tickets

#[tokio::test]
async fn ip_list_endpoints() {
    let t = start().await;
    let tok = t.token(MAIN).await;
    for path in ["get_api_domain_ip", "getcallbackip"] {
        let v = t.get_tok(&tok, path, &[]).await;
        assert_eq!(v["ip_list"], json!(["127.0.0.1"]), "{path}");
    }
    t.settings(json!({
        "api_domain_ips": ["182.254.11.176", "182.254.78.66"],
        "callback_ips": ["101.226.103.*", "101.226.62.0/24"],
    }))
    .await;
    let v = t.get_tok(&tok, "get_api_domain_ip", &[]).await;
    assert_eq!(v["ip_list"], json!(["182.254.11.176", "182.254.78.66"]));
    let v = t.get_tok(&tok, "getcallbackip", &[]).await;
    assert_eq!(v["ip_list"], json!(["101.226.103.*", "101.226.62.0/24"]));
    t.advance(7300).await;
    let v = t.get_tok(&tok, "getcallbackip", &[]).await;
    assert_eq!((errcode(&v), v["ip_list"].clone()), (42001, json!([])));
}

#[tokio::test]
async fn jsapi_tickets_reuse_and_limits() {
    let t = start().await;
    let tok = t.token(MAIN).await;
    let a = t.get_tok(&tok, "get_jsapi_ticket", &[]).await;
    assert_eq!((errcode(&a), a["expires_in"].clone()), (0, json!(7200)));
    let ticket = a["ticket"].as_str().unwrap().to_string();
    t.advance(200).await;
    let b = t.get_tok(&tok, "get_jsapi_ticket", &[]).await;
    assert_eq!(b["ticket"], ticket.as_str());
    assert_eq!(b["expires_in"], 7000);
    // The corp ticket is shared by the corp's apps.
    let other = t.get(ALL_OLD, "get_jsapi_ticket", &[]).await;
    assert_eq!(other["ticket"], ticket.as_str());

    // The app ticket needs type=agent_config and is per app.
    for q in [vec![], vec![("type", "jsapi")]] {
        let v = t.get_tok(&tok, "ticket/get", &q).await;
        assert_eq!(errcode(&v), 40058);
    }
    let app = t
        .get_tok(&tok, "ticket/get", &[("type", "agent_config")])
        .await;
    assert_eq!(app["expires_in"], 7200);
    assert_ne!(app["ticket"], ticket.as_str());
    let app_other = t
        .get(ALL_OLD, "ticket/get", &[("type", "agent_config")])
        .await;
    assert_ne!(app_other["ticket"], app["ticket"]);

    // After expiry: a new ticket.
    t.advance(7001).await;
    let tok = t.token(MAIN).await;
    let c = t.get_tok(&tok, "get_jsapi_ticket", &[]).await;
    assert_ne!(c["ticket"], ticket.as_str());

    // 100/hour per app (tightened here to 2): 45009 beyond, for the hour.
    t.settings(json!({"jsapi_app_tickets_per_hour": 2})).await;
    let q = [("type", "agent_config")];
    assert_eq!(errcode(&t.get_tok(&tok, "ticket/get", &q).await), 0);
    assert_eq!(errcode(&t.get_tok(&tok, "ticket/get", &q).await), 0);
    assert_eq!(errcode(&t.get_tok(&tok, "ticket/get", &q).await), 45009);
    t.advance(3601).await;
    let tok = t.token(MAIN).await;
    assert_eq!(errcode(&t.get_tok(&tok, "ticket/get", &q).await), 0);
    // 400/hour per corp for the corp ticket (tightened to 1).
    t.settings(json!({"jsapi_corp_tickets_per_hour": 1})).await;
    assert_eq!(errcode(&t.get_tok(&tok, "get_jsapi_ticket", &[]).await), 0);
    assert_eq!(
        errcode(&t.get(ALL_OLD, "get_jsapi_ticket", &[]).await),
        45009
    );
}

// ---------------------------------------------------------------------------------------
// Admin API

#[tokio::test]
async fn admin_directory_edits_show_through_the_api() {
    let t = start().await;
    let main = t.token(MAIN).await;
    let c = format!("/corps/{}", CORP.to_ascii_uppercase());

    let (s, d) = t
        .admin(
            Method::POST,
            &format!("{c}/departments"),
            Some(json!({"id": 20, "name": "测试组", "parentid": 4, "order": 5})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(d["parentid"], 4);
    let v = t.get_tok(&main, "department/list", &[("id", "4")]).await;
    assert_eq!(ids(&v, "department", "id"), [json!(4), json!(20)]);

    let (s, m) = t
        .admin(
            Method::POST,
            &format!("{c}/members"),
            Some(json!({"userid": "Tester", "name": "测试员", "departments": [20, {"id": 7, "leader": true}],
                        "direct_leader": ["WANGWU"], "gender": 2, "mobile": "13900000000"})),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["main_department"], 20);
    assert_eq!(m["direct_leader"], json!(["wangwu"]));
    let v = t.get_tok(&main, "user/get", &[("userid", "tester")]).await;
    assert_eq!(v["department"], json!([20]), "department 7 is out of scope");
    assert_eq!(v["direct_leader"], json!(["wangwu"]));

    // Rename through new_userid.
    let m = t
        .admin_ok(
            Method::PATCH,
            &format!("{c}/members/tester"),
            json!({"new_userid": "tester2", "position": "QA"}),
        )
        .await;
    assert_eq!(
        (m["userid"].clone(), m["position"].clone()),
        (json!("tester2"), json!("QA"))
    );
    assert_eq!(
        errcode(&t.get_tok(&main, "user/get", &[("userid", "Tester")]).await),
        60111
    );
    let v = t.get_tok(&main, "user/get", &[("userid", "tester2")]).await;
    assert_eq!(v["position"], "QA");

    // Moving the member out of the scope: 60011.
    t.admin_ok(
        Method::PATCH,
        &format!("{c}/members/tester2"),
        json!({"departments": [7], "main_department": 7}),
    )
    .await;
    assert_eq!(
        errcode(&t.get_tok(&main, "user/get", &[("userid", "tester2")]).await),
        60011
    );

    // Tags: create with a department, edit membership.
    t.admin_ok(
        Method::POST,
        &format!("{c}/tags"),
        json!({"id": 9, "name": "新标签", "users": ["lisi"], "parties": [6]}),
    )
    .await;
    let tag = t
        .admin_ok(
            Method::PATCH,
            &format!("{c}/tags/9"),
            json!({"add_users": ["ZHAOLIU", "tester2"], "remove_users": ["lisi"], "add_parties": [3],
                   "remove_parties": [6]}),
        )
        .await;
    assert_eq!(tag["users"], json!(["tester2", "zhaoliu"]));
    assert_eq!(tag["parties"], json!([3]));
    let v = t.get_tok(&main, "tag/get", &[("tagid", "9")]).await;
    assert_eq!(
        (
            v["tagname"].clone(),
            v["userlist"].clone(),
            v["partylist"].clone()
        ),
        (
            json!("新标签"),
            json!([{"userid": "zhaoliu", "name": "赵六"}]),
            json!([3])
        )
    );

    // Scope change: the app now sees tag 9's members too.
    let app = t
        .admin_ok(
            Method::PUT,
            &format!("{c}/apps/1000002/scope"),
            json!({"parties": [2], "tags": [9], "users": ["LONER"]}),
        )
        .await;
    assert_eq!(app["scope"]["users"], json!(["loner"]));
    let v = t.get_tok(&main, "user/get", &[("userid", "tester2")]).await;
    assert_eq!((errcode(&v), v["department"].clone()), (0, json!([])));
    let v = t
        .get_tok(&main, "agent/get", &[("agentid", "1000002")])
        .await;
    assert_eq!(v["allow_tags"], json!({"tagid": [9]}));
    assert_eq!(v["allow_userinfos"], json!({"user": [{"userid": "loner"}]}));

    // Department edits: rename and move.
    let d = t
        .admin_ok(
            Method::PATCH,
            &format!("{c}/departments/20"),
            json!({"name": "质量组", "parentid": 3}),
        )
        .await;
    assert_eq!(
        (d["name"].clone(), d["parentid"].clone()),
        (json!("质量组"), json!(3))
    );
    let v = t.get_tok(&main, "department/get", &[("id", "20")]).await;
    assert_eq!(v["department"]["name"], "质量组");

    // Deletions.
    t.admin_ok(Method::DELETE, &format!("{c}/members/tester2"), json!({}))
        .await;
    assert_eq!(
        errcode(&t.get_tok(&main, "user/get", &[("userid", "tester2")]).await),
        60111
    );
    t.admin_ok(Method::DELETE, &format!("{c}/departments/20"), json!({}))
        .await;
    assert_eq!(
        errcode(&t.get_tok(&main, "department/get", &[("id", "20")]).await),
        60003
    );
    t.admin_ok(Method::DELETE, &format!("{c}/tags/9"), json!({}))
        .await;
    assert_eq!(
        errcode(&t.get_tok(&main, "tag/get", &[("tagid", "9")]).await),
        40068
    );
    // The deleted tag left the app's scope.
    let v = t
        .get_tok(&main, "agent/get", &[("agentid", "1000002")])
        .await;
    assert_eq!(v["allow_tags"], json!({"tagid": []}));

    // Deleting a leader removes them from direct_leader lists.
    t.admin_ok(Method::DELETE, &format!("{c}/members/lisi"), json!({}))
        .await;
    let (_, m) = t
        .admin(Method::GET, &format!("{c}/members/zhangsan"), None)
        .await;
    assert_eq!(m["direct_leader"], json!([]));
}

#[tokio::test]
async fn admin_apps_outsiders_and_provider_apps() {
    let t = start().await;
    let c = format!("/corps/{CORP}");
    let (s, app) = t
        .admin(
            Method::POST,
            &format!("{c}/apps"),
            Some(
                json!({"agentid": 1000020, "name": "新应用", "secret": "new-app-secret",
                        "trusted_ips": ["127.0.0.1"], "scope": {"parties": [5]},
                        "redirect_domain": "new.example.com"}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{app}");
    assert_eq!(app["post_2022"], true);
    let v = t.get("new-app-secret", "department/list", &[]).await;
    assert_eq!(ids(&v, "department", "id"), [json!(5), json!(6)]);
    let (s, app) = t
        .admin(Method::GET, &format!("{c}/apps/1000020"), None)
        .await;
    assert_eq!(
        (s, app["redirect_domain"].clone()),
        (200, json!("new.example.com"))
    );

    let app = t
        .admin_ok(
            Method::PATCH,
            &format!("{c}/apps/1000020"),
            json!({"web_login_domain": "login.example.com:8443", "home_url": "https://new.example.com/",
                   "name": "改名", "description": "d", "isreportenter": 1}),
        )
        .await;
    assert_eq!(app["web_login_domain"], "login.example.com:8443");
    let v = t
        .get("new-app-secret", "agent/get", &[("agentid", "1000020")])
        .await;
    assert_eq!(
        (v["name"].clone(), v["isreportenter"].clone()),
        (json!("改名"), json!(1))
    );

    // Deleting the app kills its tokens.
    let tok = t.token("new-app-secret").await;
    t.admin_ok(Method::DELETE, &format!("{c}/apps/1000020"), json!({}))
        .await;
    assert_eq!(errcode(&t.get_tok(&tok, "agent/list", &[]).await), 40014);

    // Outsiders.
    let (s, v) = t
        .admin(
            Method::POST,
            &format!("{c}/outsiders"),
            Some(json!({"openid": "oOutsider1"})),
        )
        .await;
    assert_eq!((s, v["outsiders"].clone()), (201, json!(["oOutsider1"])));
    let (s, _) = t
        .admin(
            Method::POST,
            &format!("{c}/outsiders"),
            Some(json!({"openid": "oOutsider1"})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, v) = t
        .admin(Method::DELETE, &format!("{c}/outsiders/oOutsider1"), None)
        .await;
    assert_eq!((s, v["outsiders"].clone()), (200, json!([])));

    // Provider apps: add, scope, token (reused like gettoken).
    let (s, p) = t
        .admin(
            Method::POST,
            &format!("{c}/provider_apps"),
            Some(json!({"agentid": 2000009, "provider_id": "prov-z", "kind": "third_party"})),
        )
        .await;
    assert_eq!((s, p["scope"]["parties"].clone()), (201, json!([])));
    let p = t
        .admin_ok(
            Method::PUT,
            &format!("{c}/provider_apps/2000009/scope"),
            json!({"users": ["SUNQI"]}),
        )
        .await;
    assert_eq!(p["scope"]["users"], json!(["sunqi"]));
    let a = t.provider_token(2000009).await;
    let b = t.provider_token(2000009).await;
    assert_eq!(a, b);
    let v = t.get_tok(&a, "user/get", &[("userid", "sunqi")]).await;
    assert_eq!(errcode(&v), 0);
    assert_eq!(
        v["open_userid"],
        wecom_sim::model::open_userid("prov-z", &CORP.to_ascii_lowercase(), "sunqi")
    );
    assert!(v.get("mobile").is_none());
    assert_eq!(
        errcode(&t.get_tok(&a, "user/get", &[("userid", "lisi")]).await),
        60011
    );
    // Provider apps see no tags of their own.
    let v = t.get_tok(&a, "tag/list", &[]).await;
    assert_eq!(v["taglist"], json!([]));

    // Overview.
    let (_, corps) = t.admin(Method::GET, "/corps", None).await;
    assert_eq!(corps[0]["corpid"], CORP);
    assert_eq!(corps[0]["contact_sync_secret"], SYNC);
    assert!(corps[0]["provider_apps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["agentid"] == 2000009 && p["kind"] == "third_party"));
}

/// A receiver that answers WeCom's URL check (and 200 to events), like the bridge does.
async fn callback_receiver(token: &'static str, key: &'static str) -> String {
    use axum::extract::RawQuery;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let crypt = wecom::crypto::MsgCrypt::new(token, key, CORP).unwrap();
    let crypt = std::sync::Arc::new(crypt);
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::get(move |RawQuery(q): RawQuery| {
            let crypt = crypt.clone();
            async move {
                let q: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                        .into_owned()
                        .collect();
                let get = |k: &str| q.get(k).cloned().unwrap_or_default();
                crypt
                    .verify_url(
                        &get("msg_signature"),
                        &get("timestamp"),
                        &get("nonce"),
                        &get("echostr"),
                    )
                    .unwrap_or_else(|_| "bad".into())
            }
        })
        .post(|| async { "" }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/cb")
}

#[tokio::test]
async fn admin_callback_config_is_verified_and_events_flow() {
    let t = start().await;
    let path = format!("/corps/{CORP}/apps/1000002");
    let key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    let url = callback_receiver("QDG6eK", key).await;

    // A URL that fails the handshake is refused (422) and nothing is saved.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/cb", dead.local_addr().unwrap());
    drop(dead);
    let (s, v) = t
        .admin(
            Method::PATCH,
            &path,
            Some(
                json!({"callback": {"url": dead_url, "token": "QDG6eK", "encoding_aes_key": key},
                        "name": "不会保存"}),
            ),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("verification failed"));
    // Wrong token: the receiver answers something else than the plaintext.
    let (s, _) = t
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"callback": {"url": url, "token": "WrongToken", "encoding_aes_key": key}})),
        )
        .await;
    assert_eq!(s, 422);
    let (_, app) = t.admin(Method::GET, &path, None).await;
    assert!(app.get("callback").is_none());
    assert_eq!(app["name"], "工作台");

    // A correct receiver passes; the config is saved.
    let app = t
        .admin_ok(
            Method::PATCH,
            &path,
            json!({"callback": {"url": url, "token": "QDG6eK", "encoding_aes_key": key}}),
        )
        .await;
    assert_eq!(app["callback"]["url"], url.as_str());

    // A directory edit in scope is delivered to it.
    t.admin_ok(
        Method::POST,
        &format!("/corps/{CORP}/members"),
        json!({"userid": "newbie", "name": "新人", "departments": [4]}),
    )
    .await;
    let (_, v) = t.admin(Method::POST, "/deliveries/flush", None).await;
    assert_eq!(v["pending"], 0);
    let deliveries = v["deliveries"].as_array().unwrap();
    assert!(
        deliveries.iter().any(|d| d["change_type"] == "create_user"
            && d["status"] == 200
            && d["agentid"] == 1000002),
        "{v}"
    );
    let (_, v) = t.admin(Method::DELETE, "/deliveries", None).await;
    assert_eq!(v["deliveries"], json!([]));

    // Clearing the callback with null needs no handshake.
    let app = t
        .admin_ok(Method::PATCH, &path, json!({ "callback": null }))
        .await;
    assert!(app.get("callback").is_none());
}

#[tokio::test]
async fn admin_bad_inputs_get_4xx_and_change_nothing() {
    let t = start().await;
    let (_, before) = t.admin(Method::GET, "/scenario", None).await;
    let c = format!("/corps/{CORP}");
    let dept = format!("{c}/departments");
    let members = format!("{c}/members");
    let app = format!("{c}/apps/1000002");
    // (method, path, body, expected status)
    #[rustfmt::skip]
    let cases: Vec<(Method, String, Option<Value>, u16)> = vec![
        // Unknown corp, object or path; wrong method.
        (Method::POST, "/corps/wwnope/departments".into(), Some(json!({"id": 30, "name": "x", "parentid": 1})), 404),
        (Method::PATCH, format!("{dept}/99"), Some(json!({"name": "x"})), 404),
        (Method::GET, format!("{members}/nobody"), None, 404),
        (Method::GET, "/no/such/thing".into(), None, 404),
        (Method::PUT, "/settings".into(), Some(json!({})), 405),
        // Departments.
        (Method::POST, dept.clone(), Some(json!({"id": 30, "name": "x", "parentid": 99})), 400),
        (Method::POST, dept.clone(), Some(json!({"id": 2, "name": "x", "parentid": 1})), 409),
        (Method::POST, dept.clone(), Some(json!({"id": 30, "name": "", "parentid": 1})), 400),
        (Method::POST, dept.clone(), Some(json!({"id": 30, "name": "x", "parentid": 0})), 400),
        (Method::POST, dept.clone(), Some(json!({"id": 30, "name": "x", "parentid": 1, "colour": 1})), 400),
        (Method::POST, dept.clone(), Some(json!({"id": "30", "name": "x", "parentid": 1})), 400),
        (Method::POST, dept.clone(), Some(json!({"id": 30, "name": "x", "parentid": 1, "leaders": ["nobody"]})), 400),
        (Method::PATCH, format!("{dept}/2"), Some(json!({"parentid": 8})), 400),
        (Method::PATCH, format!("{dept}/abc"), Some(json!({"name": "x"})), 400),
        (Method::DELETE, format!("{dept}/7"), None, 409),
        (Method::DELETE, format!("{dept}/2"), None, 409),
        // Members.
        (Method::POST, members.clone(), Some(json!({"userid": "ZHANGSAN", "name": "x"})), 409),
        (Method::POST, members.clone(), Some(json!({"userid": "bad id", "name": "x"})), 400),
        (Method::POST, members.clone(), Some(json!({"userid": "x", "name": "x", "departments": [99]})), 400),
        (Method::POST, members.clone(), Some(json!({"userid": "x", "name": "x", "departments": [2, 2]})), 400),
        (Method::POST, members.clone(), Some(json!({"userid": "x", "name": "x", "departments": [2], "main_department": 3})), 400),
        (Method::POST, members.clone(), Some(json!({"userid": "x", "name": "x", "status": 3})), 400),
        (Method::POST, members.clone(), Some(json!({"userid": "x", "name": "x", "direct_leader": ["nobody"]})), 400),
        (Method::POST, members.clone(), Some(json!({"userid": "x", "name": "x", "mobil": "1"})), 400),
        (Method::PATCH, format!("{members}/lisi"), Some(json!({"userid": "lisi2"})), 400),
        (Method::PATCH, format!("{members}/lisi"), Some(json!({"new_userid": "WANGWU"})), 409),
        (Method::PATCH, format!("{members}/lisi"), Some(json!({"new_userid": "bad id"})), 400),
        (Method::PATCH, format!("{members}/lisi"), Some(json!({"gender": "male"})), 400),
        (Method::DELETE, format!("{members}/nobody"), None, 404),
        // Tags.
        (Method::POST, format!("{c}/tags"), Some(json!({"id": 1, "name": "dup"})), 409),
        (Method::POST, format!("{c}/tags"), Some(json!({"id": 10, "name": "项目A"})), 409),
        (Method::POST, format!("{c}/tags"), Some(json!({"id": 10, "name": "t", "users": ["nobody"]})), 400),
        (Method::PATCH, format!("{c}/tags/1"), Some(json!({"add_parties": [99]})), 400),
        (Method::DELETE, format!("{c}/tags/99"), None, 404),
        // Apps and scopes.
        (Method::PATCH, app.clone(), Some(json!({"redirect_domain": "https://oa.example.com"})), 400),
        (Method::PATCH, app.clone(), Some(json!({"redirect_domain": "oa.example.com/cb"})), 400),
        (Method::PATCH, app.clone(), Some(json!({"trusted_ips": ["10.0.0.0/8"]})), 400),
        (Method::PATCH, app.clone(), Some(json!({"home_url": "oa.example.com"})), 400),
        (Method::PATCH, app.clone(), Some(json!({"secret": "old-tag-secret"})), 409),
        (Method::PATCH, app.clone(), Some(json!({"secret": "s", "reset_secret": true})), 400),
        (Method::PATCH, app.clone(), Some(json!({"close": 2})), 400),
        (Method::PATCH, app.clone(), Some(json!({"privateinfo_fields": ["name"]})), 400),
        (Method::PATCH, app.clone(), Some(json!({"callback": {"url": "ftp://x", "token": "abc", "encoding_aes_key": "k"}})), 400),
        (Method::PATCH, app.clone(), Some(json!({"callback": {"url": "http://127.0.0.1:9/cb", "token": "abc",
            "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}})), 422),
        (Method::PATCH, app.clone(), Some(json!({"agentid": 5})), 400),
        (Method::PATCH, format!("{c}/apps/999"), Some(json!({"name": "x"})), 404),
        (Method::POST, format!("{c}/apps"), Some(json!({"agentid": 1000003, "name": "x", "secret": "zzz"})), 409),
        (Method::POST, format!("{c}/apps"), Some(json!({"agentid": 1000099, "name": "x", "secret": "main-secret"})), 409),
        (Method::POST, format!("{c}/apps"), Some(json!({"agentid": 1000099, "name": "x", "secret": "sync-secret"})), 409),
        (Method::POST, format!("{c}/apps"), Some(json!({"agentid": 1000099, "name": "x"})), 400),
        (Method::PUT, format!("{app}/scope"), Some(json!({"tags": [99]})), 400),
        (Method::PUT, format!("{app}/scope"), Some(json!({"users": ["nobody"]})), 400),
        (Method::PUT, format!("{app}/scope"), Some(json!({"parties": [99]})), 400),
        (Method::PUT, format!("{app}/scope"), Some(json!({"partys": [2]})), 400),
        (Method::POST, format!("{c}/outsiders"), Some(json!({"openid": ""})), 400),
        (Method::POST, format!("{c}/provider_apps"), Some(json!({"agentid": 1000002, "provider_id": "p", "kind": "third_party"})), 409),
        (Method::POST, format!("{c}/provider_apps"), Some(json!({"agentid": 2000050, "provider_id": "p", "kind": "fourth_party"})), 400),
        (Method::POST, format!("{c}/provider_apps/1000002/token"), None, 404),
        (Method::POST, format!("{c}/tokens/invalidate"), Some(json!({"agentid": 5})), 404),
        (Method::POST, format!("{c}/tokens/invalidate"), Some(json!({"agentid": 1000002, "contact_sync": true})), 400),
        // Runtime knobs.
        (Method::PATCH, "/settings".into(), Some(json!({"no_such_knob": 1})), 400),
        (Method::PATCH, "/settings".into(), Some(json!({"per_corp_api_per_min": "lots"})), 400),
        (Method::PATCH, "/settings".into(), Some(json!([1, 2])), 400),
        (Method::POST, "/clock/advance".into(), Some(json!({"secs": -5})), 400),
        (Method::POST, "/clock/advance".into(), Some(json!({"secs": 5, "ms": 5})), 400),
        (Method::POST, "/clock/advance".into(), Some(json!({})), 400),
        (Method::POST, "/faults".into(), Some(json!({"path": "user/get", "errcode": 0})), 400),
        (Method::POST, "/faults".into(), Some(json!({"path": "", "errcode": -1})), 400),
        (Method::POST, "/faults".into(), Some(json!({"path": "user/get", "errcode": -1, "count": 0})), 400),
        (Method::POST, "/faults".into(), Some(json!({"path": "user/get", "errcode": -1, "corp": "wwnope"})), 404),
        (Method::POST, "/latencies".into(), Some(json!({"path": "*", "ms": 10_000_000})), 400),
        (Method::POST, "/callback_faults".into(), Some(json!({"kind": "gremlins"})), 400),
        (Method::GET, "/scenario?format=yaml".into(), None, 400),
    ];
    for (method, path, body, want) in cases {
        let (s, v) = t.admin(method.clone(), &path, body.clone()).await;
        assert_eq!(s, want, "{method} {path} {body:?} → {v}");
        if want != 405 {
            assert!(
                v["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{method} {path}: no error message in {v}"
            );
        }
    }
    // Malformed JSON bodies.
    for body in ["{", "null", "\"x\""] {
        let resp = t
            .http
            .post(format!("{}/sim/admin{dept}", t.h.base_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"].is_string());
    }

    let (_, after) = t.admin(Method::GET, "/scenario", None).await;
    assert_eq!(before, after, "refused admin calls changed the world");
    let (_, faults) = t.admin(Method::GET, "/faults", None).await;
    assert_eq!(faults["faults"], json!([]));
    let (_, clock) = t.admin(Method::GET, "/clock", None).await;
    assert_eq!(clock["offset_ms"], 0);
}

#[tokio::test]
async fn scenario_dump_round_trips() {
    let t = start().await;
    t.admin_ok(
        Method::POST,
        &format!("/corps/{CORP}/members"),
        json!({"userid": "extra", "name": "额外", "departments": [3]}),
    )
    .await;
    t.settings(json!({"per_corp_api_per_min": 77})).await;
    let (s, dump) = t.admin(Method::GET, "/scenario", None).await;
    assert_eq!(s, 200);
    let sc: Scenario = serde_json::from_value(dump).expect("the dump is a scenario");
    sc.validate().expect("and a consistent one");
    assert_eq!(sc.settings.per_corp_api_per_min, 77);
    let t2 = start_with(sc).await;
    for path in ["department/list", "tag/list"] {
        assert_eq!(
            t.get(ALL_OLD, path, &[]).await,
            t2.get(ALL_OLD, path, &[]).await
        );
    }
    let q = [("department_id", "3")];
    assert_eq!(
        t.get(MAIN, "user/list", &q).await,
        t2.get(MAIN, "user/list", &q).await
    );
    let q = [("tagid", "1")];
    assert_eq!(
        t.get(OLD_TAG, "tag/get", &q).await,
        t2.get(OLD_TAG, "tag/get", &q).await
    );

    let resp = t
        .http
        .get(format!("{}/sim/admin/scenario?format=toml", t.h.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let sc: Scenario = toml::from_str(&text).expect("the TOML dump parses");
    assert_eq!(sc.corps[0].members.len(), 10);
}

#[tokio::test]
async fn acme_example_loads_and_serves() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme.toml");
    let sc = Scenario::load(&path).expect("examples/acme.toml loads");
    let corp = &sc.corps[0];
    assert_eq!(corp.name, "示例科技");
    assert_eq!(corp.departments.len(), 12);
    assert_eq!(corp.members.len(), 25);
    assert!(corp.members.iter().any(|m| m.status == 2));
    assert!(corp.members.iter().any(|m| m.status == 4));
    assert!(
        corp.members
            .iter()
            .filter(|m| m.departments.len() == 2)
            .count()
            >= 3
    );
    assert!(corp.tags.iter().any(|t| !t.parties.is_empty()));
    assert_eq!(corp.provider_apps.len(), 1);
    assert_eq!(corp.outsiders.len(), 1);
    let corpid = corp.corpid.clone();
    let main_secret = corp
        .apps
        .iter()
        .find(|a| a.agentid == 1000002)
        .map(|a| a.secret.clone())
        .expect("app 1000002");
    assert!(corp.apps.iter().all(|a| a.post_2022));

    let t = start_with(sc).await;
    let v = t
        .raw_get(
            "gettoken",
            &[("corpid", &corpid), ("corpsecret", &main_secret)],
        )
        .await;
    let tok = v["access_token"].as_str().unwrap().to_string();
    let v = t.get_tok(&tok, "department/list", &[]).await;
    // 研发中心 and its subtree, then 产品部 (tag 项目A's department 5 is already inside).
    assert_eq!(
        ids(&v, "department", "id"),
        [2, 3, 5, 4, 6].map(|i| json!(i))
    );
    // 马亮 comes through the tag, 唐莉 by name: neither brings a department.
    for u in ["maliang", "tangli"] {
        let v = t.get_tok(&tok, "user/get", &[("userid", u)]).await;
        assert_eq!(
            (errcode(&v), v["department"].clone()),
            (0, json!([])),
            "{u}"
        );
    }
    let v = t.get_tok(&tok, "user/get", &[("userid", "guoxia")]).await;
    assert_eq!(errcode(&v), 60011);
    let v = t.get_tok(&tok, "user/get", &[("userid", "wufang")]).await;
    assert_eq!(v["department"], json!([5, 6]));
}

// ---------------------------------------------------------------------------------------
