//! The app catalogue end to end over HTTP against wecom-sim, on SQLite and (with
//! TEST_DATABASE_URL) PostgreSQL: the console's app pages, each policy kind on the
//! workbench and on open, forward auth's answers, and an OIDC client following its app.

mod common;

use bridge::domain::tenant::Edition;
use bridge::domain::user::UserStatus;
use bridge::store::WecomUserSeed;
use bridge::testing::database_urls;
use common::*;
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};

const WXWORK_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn seed(
    userid: &str,
    name: &str,
    deps: &[(i64, &str, i64)],
    tags: &[(i64, &str)],
) -> WecomUserSeed {
    WecomUserSeed {
        userid: userid.into(),
        name: name.into(),
        status: UserStatus::Authorized,
        position: String::new(),
        departments: deps
            .iter()
            .map(|(i, n, p)| (*i, n.to_string(), *p))
            .collect(),
        tags: tags.iter().map(|(i, n)| (*i, n.to_string())).collect(),
    }
}

struct Setup {
    env: Env,
    tenant_id: i64,
    csrf: String,
    zhangsan: i64,
    lisi: i64,
}

/// Credentials saved, WeCom sign-in on; 张三 in 研发中心(2)/后端组(3) with tag 项目A(1),
/// 李四 in 市场部(4) only.
async fn setup(db: &str) -> Setup {
    let env = start(db, Edition::Professional).await;
    let csrf = env.admin_login().await;
    let r = env
        .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = env
        .browser
        .post(
            "/console/settings/login",
            &[("csrf", &csrf), ("wecom", "on")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let store = &env.bridge.state.store;
    let tenant_id = store.tenant_by_slug("default").await.unwrap().unwrap().id;
    let zhangsan = store
        .upsert_wecom_user(
            tenant_id,
            CORPID,
            &seed(
                "zhangsan",
                "张三",
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
            &seed("lisi", "李四", &[(4, "市场部", 1)], &[]),
        )
        .await
        .unwrap();
    Setup {
        env,
        tenant_id,
        csrf,
        zhangsan,
        lisi,
    }
}

fn testid_count(body: &str, id: &str) -> usize {
    body.matches(&format!("data-testid=\"{id}\"")).count()
}

fn tiles(body: &str) -> Vec<String> {
    body.split("data-testid=\"app-tile\" data-slug=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

impl Setup {
    /// A member's browser, signed in inside WeCom as `userid`.
    async fn member(&self, userid: &str) -> Browser {
        let b = Browser::new(self.env.bridge.addr, &self.env.domain);
        self.in_wecom(&b, "/wecom/home", userid).await;
        let home = b.get("/").await;
        assert_eq!(home.status, 200, "{userid} signed in: {}", home.body);
        b
    }

    /// Opens `path` inside the WeCom client as `userid`, following the bridge's local
    /// redirects and WeCom's authorization; returns the first answer that goes elsewhere
    /// (or is not a redirect), and the authorize URLs WeCom was asked for.
    async fn in_wecom(&self, b: &Browser, path: &str, userid: &str) -> (Page, Vec<String>) {
        let http = no_redirects();
        let mut asked = Vec::new();
        let mut p = b
            .send(http.get(b.url(path)).header("user-agent", WXWORK_UA))
            .await;
        for _ in 0..6 {
            let Some(loc) = p.location.clone() else { break };
            if loc.starts_with(&self.env.sim.base_url) {
                asked.push(loc.clone());
                let r = http
                    .get(format!(
                        "{}&sim_userid={userid}",
                        loc.split('#').next().unwrap()
                    ))
                    .header("user-agent", WXWORK_UA)
                    .send()
                    .await
                    .unwrap();
                let cb = r.headers()["location"].to_str().unwrap().to_string();
                let local = cb
                    .strip_prefix(&format!("http://{}", self.env.domain))
                    .unwrap()
                    .to_string();
                p = b
                    .send(http.get(b.url(&local)).header("user-agent", WXWORK_UA))
                    .await;
            } else if loc.starts_with('/') && loc != "/" {
                p = b
                    .send(http.get(b.url(&loc)).header("user-agent", WXWORK_UA))
                    .await;
            } else {
                break;
            }
        }
        (p, asked)
    }

    async fn add_app(&self, fields: &[(&str, &str)]) -> Page {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.env.browser.post("/console/apps", &form).await
    }

    async fn app_id(&self, slug: &str) -> i64 {
        self.env
            .bridge
            .state
            .store
            .app_by_slug(self.tenant_id, slug)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("app {slug} saved"))
            .id
    }

    async fn verify(
        &self,
        b: Option<&Browser>,
        app: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let url = format!("http://{}/auth/verify?app={app}", self.env.bridge.addr);
        let mut req = no_redirects()
            .get(url)
            .header("host", &self.env.domain)
            .header("x-forwarded-uri", "/apps/hello/report?x=1");
        if let Some(b) = b {
            req = req.header("cookie", b.cookie_header());
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }
}

#[tokio::test]
async fn the_console_creates_edits_and_deletes_apps_with_clear_errors() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let empty = s.env.browser.get("/console/apps").await;
        assert_eq!(empty.status, 200);
        assert_eq!(testid_count(&empty.body, "no-apps"), 1);

        // Every bad field is named, and nothing is saved.
        for (fields, says) in [
            (
                vec![("slug", "Bad Slug"), ("name_zh", "看板"), ("url", "/x")],
                "short name",
            ),
            (
                vec![("slug", "board"), ("name_zh", ""), ("url", "/x")],
                "Chinese name",
            ),
            (
                vec![
                    ("slug", "board"),
                    ("name_zh", "看板"),
                    ("url", "//evil.example"),
                ],
                "address",
            ),
            (
                vec![
                    ("slug", "board"),
                    ("name_zh", "看板"),
                    ("url", "/x"),
                    ("access", "chosen"),
                ],
                "at least one",
            ),
            (
                vec![
                    ("slug", "board"),
                    ("name_zh", "看板"),
                    ("url", "/x"),
                    ("access", "chosen"),
                    ("members", "zhangsan, nobody"),
                ],
                "nobody",
            ),
        ] {
            let r = s.add_app(&fields).await;
            assert_eq!(r.status, 400, "{fields:?}");
            assert!(r.body.contains(says), "{says}: {}", r.body);
        }
        assert!(s
            .env
            .bridge
            .state
            .store
            .list_apps(s.tenant_id)
            .await
            .unwrap()
            .is_empty());

        let r = s
            .add_app(&[
                ("slug", "board"),
                ("name_zh", "数据看板"),
                ("name_en", "Dashboard"),
                ("url", "https://bi.example.com/"),
                ("category", "数据"),
                ("icon", "chart"),
                ("enabled", "on"),
                ("access", "everyone"),
            ])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let dup = s
            .add_app(&[("slug", "board"), ("name_zh", "另一个"), ("url", "/y")])
            .await;
        assert_eq!(dup.status, 400);
        assert!(dup.body.contains("already used"), "{}", dup.body);

        let id = s.app_id("board").await;
        let page = s.env.browser.get(&format!("/console/apps/{id}")).await;
        assert!(
            page.body.contains("/auth/verify?app=board"),
            "{}",
            page.body
        );
        let r = s
            .env
            .browser
            .post(
                &format!("/console/apps/{id}"),
                &[
                    ("csrf", &s.csrf),
                    ("slug", "board"),
                    ("name_zh", "数据看板"),
                    ("url", "https://bi.example.com/"),
                    ("access", "chosen"),
                    ("members", "lisi"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let app = s
            .env
            .bridge
            .state
            .store
            .app_by_slug(s.tenant_id, "board")
            .await
            .unwrap()
            .unwrap();
        assert!(!app.enabled, "an unticked box disables the app");
        assert_eq!(
            app.access,
            bridge::domain::apps::Access::Chosen(bridge::domain::apps::Chosen {
                users: vec![s.lisi],
                ..Default::default()
            })
        );
        // A form without its CSRF token changes nothing.
        let r = s
            .env
            .browser
            .post(&format!("/console/apps/{id}/delete"), &[("csrf", "forged")])
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        let r = s
            .env
            .browser
            .post(&format!("/console/apps/{id}/delete"), &[("csrf", &s.csrf)])
            .await;
        assert_eq!(r.status, 303);
        assert!(s
            .env
            .bridge
            .state
            .store
            .app_by_slug(s.tenant_id, "board")
            .await
            .unwrap()
            .is_none());
        let audit = s
            .env
            .bridge
            .state
            .store
            .list_audit(s.tenant_id, 50, None)
            .await
            .unwrap();
        for action in ["app.created", "app.updated", "app.deleted"] {
            assert!(audit.iter().any(|e| e.action == action), "{action} audited");
        }
    }
}

#[tokio::test]
async fn each_policy_kind_decides_the_workbench_and_every_open() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let mut n = 0;
        for (slug, access) in [
            ("everyone", vec![("access", "everyone")]),
            // 研发中心 (2) takes in its sub-department 后端组 (3).
            ("by-department", vec![("access", "chosen"), ("d2", "on")]),
            ("by-tag", vec![("access", "chosen"), ("t1", "on")]),
            ("by-member", vec![("access", "chosen"), ("members", "lisi")]),
        ] {
            n += 1;
            let pos = n.to_string();
            let mut f = vec![
                ("slug", slug),
                ("name_zh", slug),
                ("url", "https://apps.example.com/"),
                ("enabled", "on"),
                ("contact", "IT 服务台 8000"),
                ("position", pos.as_str()),
            ];
            f.extend(access);
            let r = s.add_app(&f).await;
            assert_eq!(r.status, 303, "{slug}: {}", r.body);
        }
        let zhang = s.member("zhangsan").await;
        let li = s.member("lisi").await;
        assert_eq!(
            tiles(&zhang.get("/").await.body),
            ["everyone", "by-department", "by-tag"]
        );
        assert_eq!(tiles(&li.get("/").await.body), ["everyone", "by-member"]);

        // Opening is checked too, whatever the workbench showed.
        let r = zhang.get("/apps/by-tag/open").await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.location.as_deref(), Some("https://apps.example.com/"));
        let r = zhang.get("/apps/by-member/open").await;
        assert_eq!(r.status, 403);
        assert!(
            r.body.contains("by-member") && r.body.contains("IT 服务台 8000"),
            "{}",
            r.body
        );
        assert!(
            !r.body.contains("href=\"/console"),
            "the refusal does not speak to admins"
        );
        let r = li.get("/apps/by-department/open?lang=en").await;
        assert_eq!(r.status, 403);
        assert!(r.body.contains("You may not open"), "{}", r.body);
        // Not signed in: sign in first, then come back to the open.
        let anon = Browser::new(s.env.bridge.addr, &s.env.domain);
        let r = anon.get("/apps/everyone/open").await;
        assert_eq!(r.status, 303);
        assert!(r
            .location
            .unwrap()
            .starts_with("/login?next=%2Fapps%2Feveryone%2Fopen"));
        let _ = s.zhangsan;
    }
}

#[tokio::test]
async fn frequently_used_apps_and_search_follow_the_members_own_opens() {
    for db in database_urls().await {
        let s = setup(&db).await;
        for i in 0..11 {
            let slug = format!("app-{i:02}");
            let name = format!("应用{i:02}");
            let r = s
                .add_app(&[
                    ("slug", &slug),
                    ("name_zh", &name),
                    ("url", "https://apps.example.com/"),
                    ("enabled", "on"),
                    ("category", if i % 2 == 0 { "办公" } else { "" }),
                ])
                .await;
            assert_eq!(r.status, 303, "{}", r.body);
        }
        let zhang = s.member("zhangsan").await;
        let home = zhang.get("/").await.body;
        assert_eq!(testid_count(&home, "frequent"), 0, "nothing opened yet");
        assert_eq!(
            testid_count(&home, "app-search"),
            1,
            "11 apps: a search box"
        );
        for (slug, times) in [("app-03", 3), ("app-07", 1), ("app-05", 2)] {
            for _ in 0..times {
                assert_eq!(zhang.get(&format!("/apps/{slug}/open")).await.status, 303);
            }
        }
        let home = zhang.get("/").await.body;
        let frequent = &home[home.find("data-testid=\"frequent\"").unwrap()..];
        let frequent = &frequent[..frequent.find("</section>").unwrap()];
        assert_eq!(tiles(frequent), ["app-03", "app-05", "app-07"]);
        // Another member's opens are their own.
        let li = s.member("lisi").await;
        assert_eq!(testid_count(&li.get("/").await.body, "frequent"), 0);
        let found = zhang.get("/?q=%E5%BA%94%E7%94%A809").await.body;
        assert_eq!(tiles(&found), ["app-09"]);
    }
}

#[tokio::test]
async fn forward_auth_answers_200_401_a_redirect_a_refusal_and_revocation() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let r = s
            .add_app(&[
                ("slug", "hello"),
                ("name_zh", "你好应用"),
                ("url", "/apps/hello/"),
                ("enabled", "on"),
                ("access", "chosen"),
                ("t1", "on"),
            ])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let zhang = s.member("zhangsan").await;
        let li = s.member("lisi").await;

        let ok = s.verify(Some(&zhang), "hello", &[]).await;
        assert_eq!(ok.status(), 200);
        let h = ok.headers();
        assert_eq!(h["remote-user"], "zhangsan");
        assert_eq!(h["remote-name"].as_bytes(), "张三".as_bytes());
        assert_eq!(
            h["remote-groups"].as_bytes(),
            "研发中心,后端组,项目A".as_bytes()
        );
        assert!(h.get("remote-email").is_none(), "no email known");

        // No session: 401 (nginx), or with rd a redirect through sign-in back to the page.
        let r = s.verify(None, "hello", &[]).await;
        assert_eq!(r.status(), 401);
        let r = s
            .verify(
                None,
                "hello",
                &[("accept", "text/html,application/xhtml+xml")],
            )
            .await;
        assert_eq!(r.status(), 401, "no rd: still 401");
        let url = format!("http://{}/auth/verify?app=hello&rd=1", s.env.bridge.addr);
        let r = no_redirects()
            .get(url)
            .header("host", &s.env.domain)
            .header("accept", "text/html")
            .header("x-forwarded-uri", "/apps/hello/report?x=1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let to = r.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(to, "/apps/hello/open?path=%2Fapps%2Fhello%2Freport%3Fx%3D1");
        // After sign-in the open lands on that very page.
        let landed = zhang.get(&to).await;
        assert_eq!(landed.location.as_deref(), Some("/apps/hello/report?x=1"));

        // Signed in, but the policy refuses: 403 with the page naming the app.
        let r = s.verify(Some(&li), "hello", &[]).await;
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("你好应用"));

        // Misconfigured proxies get told.
        assert_eq!(s.verify(Some(&zhang), "nope", &[]).await.status(), 404);
        let r = no_redirects()
            .get(format!("http://{}/auth/verify", s.env.bridge.addr))
            .header("host", &s.env.domain)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);

        // The admin revokes 张三's session: the next check refuses at once.
        let sessions = s
            .env
            .bridge
            .state
            .store
            .list_user_sessions(s.tenant_id, s.zhangsan)
            .await
            .unwrap();
        assert_eq!(sessions.len(), 1);
        let r = s
            .env
            .browser
            .post(
                &format!("/console/users/{}/sessions/revoke", s.zhangsan),
                &[("csrf", &s.csrf), ("session", &sessions[0].id_hash)],
            )
            .await;
        assert!(r.status == 303 || r.status == 200, "{}", r.body);
        assert_eq!(s.verify(Some(&zhang), "hello", &[]).await.status(), 401);
    }
}

#[tokio::test]
async fn an_oidc_client_of_an_app_admits_only_whom_the_app_admits() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let r = s
            .add_app(&[
                ("slug", "wiki"),
                ("name_zh", "知识库"),
                ("url", "https://wiki.example.com/"),
                ("enabled", "on"),
                ("access", "chosen"),
                ("members", "lisi"),
            ])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let app_id = s.app_id("wiki").await;
        let st = &s.env.bridge.state;
        let client = bridge::domain::oidc::Client {
            app_id: Some(app_id),
            ..test_client(s.tenant_id)
        };
        let zhang = st
            .store
            .user_by_id(s.tenant_id, s.zhangsan)
            .await
            .unwrap()
            .unwrap();
        let li = st
            .store
            .user_by_id(s.tenant_id, s.lisi)
            .await
            .unwrap()
            .unwrap();
        assert!(!bridge::oidc::access::app_admits(st, &client, &zhang)
            .await
            .unwrap());
        assert!(bridge::oidc::access::app_admits(st, &client, &li)
            .await
            .unwrap());
        let unlinked = test_client(s.tenant_id);
        assert!(bridge::oidc::access::app_admits(st, &unlinked, &zhang)
            .await
            .unwrap());
    }
}

fn test_client(tenant_id: i64) -> bridge::domain::oidc::Client {
    bridge::domain::oidc::Client {
        client_id: "c".into(),
        tenant_id,
        app_id: None,
        name: "c".into(),
        kind: bridge::domain::oidc::ClientKind::Confidential,
        secret_hash: None,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        id_token_alg: bridge::domain::oidc::SigningAlg::Rs256,
        synthesize_email: false,
        email_domain: String::new(),
        groups_full_path: false,
        created_at: 0,
        updated_at: 0,
    }
}

async fn get_path(
    at: std::net::SocketAddr,
    path: &str,
    cookie: Option<String>,
) -> reqwest::Response {
    let mut req = no_redirects().get(format!("http://{at}{path}"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_demos_sample_app_shows_who_arrived_through_forward_auth_and_oidc() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sample = listener.local_addr().unwrap();
        let url = format!("http://acme.localhost:{}/", sample.port());
        let r = s
            .add_app(&[
                ("slug", bridge::sample_app::SLUG),
                ("name_zh", "你好应用"),
                ("url", &url),
                ("enabled", "on"),
            ])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let app_id = s.app_id(bridge::sample_app::SLUG).await;
        let oidc = bridge::sample_app::register_oidc_client(
            &s.env.bridge.state,
            s.tenant_id,
            app_id,
            &url,
        )
        .await
        .unwrap();
        let task = bridge::sample_app::spawn(
            listener,
            s.env.bridge.addr,
            s.env.domain.clone(),
            Some(oidc),
        );
        let zhang = s.member("zhangsan").await;
        let get = |cookie: Option<String>| {
            let mut req = no_redirects()
                .get(format!("http://{sample}/reports?week=1"))
                .header("accept", "text/html");
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            req.send()
        };
        let r = get(Some(zhang.cookie_header())).await.unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(body.contains("data-testid=\"sample-name\">张三<"), "{body}");
        assert!(body.contains("<li>项目A</li>"), "{body}");
        // No session: to sign-in on the bridge's origin, coming back to the same page.
        let r = get(None).await.unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(
            r.headers()["location"].to_str().unwrap(),
            format!(
                "http://{}/apps/hello/open?path=%2Freports%3Fweek%3D1",
                s.env.domain
            )
        );
        let back = zhang
            .get("/apps/hello/open?path=%2Freports%3Fweek%3D1")
            .await;
        assert_eq!(
            back.location.as_deref(),
            Some(format!("{url}reports?week=1").as_str())
        );

        // The same app as an OpenID Connect client: code flow with PKCE through the bridge.
        let r = get_path(sample, "/oidc/login", None).await;
        assert_eq!(r.status(), 302);
        let authorize = r.headers()["location"].to_str().unwrap().to_string();
        let local = authorize
            .strip_prefix(&format!("http://{}", s.env.domain))
            .expect("to the bridge's authorize endpoint");
        let p = zhang.get(local).await;
        let cb = p
            .location
            .expect("a signed-in member goes straight back with a code");
        assert!(cb.starts_with(&format!("{url}oidc/callback?")), "{cb}");
        let cb_path = cb
            .strip_prefix(url.trim_end_matches('/'))
            .unwrap()
            .to_string();
        let r = get_path(sample, &cb_path, None).await;
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(body.contains("data-claim=\"name\">张三<"), "{body}");
        assert!(
            body.contains("data-userinfo=\"preferred_username\">zhangsan<"),
            "{body}"
        );
        assert!(
            body.contains(&format!("data-claim=\"sub\">{}<", s.zhangsan)),
            "{body}"
        );
        // The callback works once: a replayed one is refused.
        let r = get_path(sample, &cb_path, None).await;
        assert_eq!(r.status(), 400);
        task.abort();
    }
}

#[tokio::test]
async fn the_workbench_session_timeout_is_the_admins_choice() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let zhang = s.member("zhangsan").await;
        let cookie = zhang
            .cookie_header()
            .split("; ")
            .find_map(|c| c.strip_prefix("wb_session=").map(str::to_string))
            .expect("a session cookie");
        async fn save(s: &Setup, minutes: &str) -> Page {
            s.env
                .browser
                .post(
                    "/console/settings/login",
                    &[
                        ("csrf", &s.csrf),
                        ("wecom", "on"),
                        ("session_idle_minutes", minutes),
                    ],
                )
                .await
        }
        let r = save(&s, "3").await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains("from 5 to"), "{}", r.body);
        assert_eq!(save(&s, "10").await.status, 303);
        let st = &s.env.bridge.state;
        let tenant = st.store.tenant_by_slug("default").await.unwrap().unwrap();
        assert_eq!(tenant.member_session_idle_secs, Some(600));
        let audit = st.store.list_audit(s.tenant_id, 20, None).await.unwrap();
        assert!(audit
            .iter()
            .any(|e| e.action == "login_config.session_timeout" && e.detail.contains("10 min")));

        // The same cookie, checked 9 and 11 idle minutes on.
        let sessions = bridge::auth::MemberSessions::new(&st.cfg);
        let now = bridge::domain::now_ms();
        let at = |min: i64| now + min * 60_000;
        assert!(sessions
            .check(st, &tenant, Some(&cookie), at(9))
            .await
            .unwrap()
            .is_some());
        assert!(sessions
            .check(st, &tenant, Some(&cookie), at(11))
            .await
            .unwrap()
            .is_none());
        // Blank: the instance default (2 h) again.
        assert_eq!(save(&s, "").await.status, 303);
        let tenant = st.store.tenant_by_slug("default").await.unwrap().unwrap();
        assert_eq!(tenant.member_session_idle_secs, None);
        assert!(sessions
            .check(st, &tenant, Some(&cookie), at(11))
            .await
            .unwrap()
            .is_some());
    }
}

/// An app bound to its own WeCom app (数据看板's role in the demo; here the test org's
/// 报销, agentid 1000003, scope 后端组): bound from the console with the values to paste,
/// refusals shown on the page, its home page signing members in through its own agentid,
/// an outsider of the main scope refused at the door after the app's scope drifts, the
/// policy on top, and unbinding or deleting the app removing its sealed Secret.
#[tokio::test]
async fn an_apps_own_wecom_app_is_bound_in_the_console_and_signs_members_in() {
    use wecom_sim::fixtures::{SECOND_AGENTID, SECOND_SECRET};
    for db in database_urls().await {
        let s = setup(&db).await;
        let env = &s.env;
        let r = s
            .add_app(&[
                ("name_zh", "报销"),
                ("slug", "expense"),
                ("url", "https://expense.example.com/"),
                ("access", "everyone"),
                ("enabled", "on"),
            ])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let id = s.app_id("expense").await;
        let page = env.browser.get(&format!("/console/apps/{id}")).await;
        assert_eq!(testid_count(&page.body, "bind-form"), 1);
        assert_eq!(testid_count(&page.body, "bound"), 0);
        let home_url = format!("http://{}/apps/expense", env.domain);
        assert!(page.body.contains(&home_url), "the home page to paste");
        let bind = |agentid: String, secret: &'static str| {
            let csrf = s.csrf.clone();
            async move {
                env.browser
                    .post(
                        &format!("/console/apps/{id}/wecom"),
                        &[
                            ("csrf", csrf.as_str()),
                            ("agentid", &agentid),
                            ("secret", secret),
                        ],
                    )
                    .await
            }
        };

        // Refusals: each on the page, nothing stored, the Secret never sent back.
        let r = bind(SECOND_AGENTID.to_string(), "not-the-secret").await;
        assert_eq!(r.status, 502, "{}", r.body);
        assert_eq!(testid_count(&r.body, "bind-error"), 1);
        assert!(!r.body.contains("not-the-secret"));
        let r = bind("abc".into(), SECOND_SECRET).await;
        assert_eq!(r.status, 400, "{}", r.body);
        let r = bind(MAIN_AGENTID.to_string(), MAIN_SECRET).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("AgentId 1000002"), "{}", r.body);
        env.sim_admin(
            "POST",
            &format!("/corps/{CORPID}/apps"),
            serde_json::json!({"agentid": 1000010, "name": "太宽的应用",
                   "secret": "test-secret-too-wide-000000000000000000001",
                   "trusted_ips": ["127.0.0.1"], "scope": {"parties": [6]}}),
        )
        .await;
        let r = bind(
            "1000010".into(),
            "test-secret-too-wide-000000000000000000001",
        )
        .await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(
            r.body.contains("太宽的应用") && r.body.contains("财务部"),
            "the refusal names the app and its outsider: {}",
            r.body
        );
        let st = &env.bridge.state;
        assert_eq!(st.store.integrations(s.tenant_id).await.unwrap().len(), 1);

        // Accepted.
        let r = bind(SECOND_AGENTID.to_string(), SECOND_SECRET).await;
        assert_eq!(r.status, 303, "{}", r.body);
        let page = env.browser.get(&format!("/console/apps/{id}")).await;
        assert_eq!(testid_count(&page.body, "bound"), 1, "{}", page.body);
        assert!(page.body.contains("AgentId <code>1000003</code>"));

        // 张三 (后端组) opens the app from its own entry in WeCom: signed in through
        // agentid 1000003 (the code is exchanged with that app's token, or WeCom would
        // answer 50001), landing in the app.
        let zhang = Browser::new(env.bridge.addr, &env.domain);
        let (p, asked) = s.in_wecom(&zhang, "/apps/expense", "zhangsan").await;
        assert_eq!(asked.len(), 1, "one WeCom round trip: {asked:?}");
        assert!(asked[0].contains("agentid=1000003"), "{}", asked[0]);
        assert_eq!(
            p.location.as_deref(),
            Some("https://expense.example.com/"),
            "{}",
            p.body
        );
        // Signed in: the next open goes straight on, with no WeCom round trip.
        let (p, asked) = s.in_wecom(&zhang, "/apps/expense", "zhangsan").await;
        assert!(asked.is_empty());
        assert_eq!(p.location.as_deref(), Some("https://expense.example.com/"));

        // The app's scope drifts in WeCom to 财务部 (outside the main scope): 周九 gets a
        // WeCom code through the app, but is not in the directory, so stays outside.
        env.sim_admin(
            "PUT",
            &format!("/corps/{CORPID}/apps/{SECOND_AGENTID}/scope"),
            serde_json::json!({"parties": [3, 6]}),
        )
        .await;
        let zhou = Browser::new(env.bridge.addr, &env.domain);
        let (p, asked) = s.in_wecom(&zhou, "/apps/expense", "zhoujiu").await;
        assert_eq!(asked.len(), 1);
        assert_eq!(
            p.status, 403,
            "refused at the door: {:?} {}",
            p.location, p.body
        );
        assert!(
            zhou.get("/").await.location.is_some(),
            "no session for 周九"
        );

        // The policy applies on top: only 市场部 now.
        let r = env
            .browser
            .post(
                &format!("/console/apps/{id}"),
                &[
                    ("csrf", s.csrf.as_str()),
                    ("name_zh", "报销"),
                    ("slug", "expense"),
                    ("url", "https://expense.example.com/"),
                    ("access", "chosen"),
                    ("d4", "on"),
                    ("enabled", "on"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let zhang2 = Browser::new(env.bridge.addr, &env.domain);
        let (p, _) = s.in_wecom(&zhang2, "/apps/expense", "zhangsan").await;
        assert_eq!(p.status, 403, "the policy refuses 张三: {:?}", p.location);
        assert!(p.body.contains("报销"), "the refusal names the app");

        // Unbinding: the Secret goes; the home page signs in through the workbench.
        let r = env
            .browser
            .post(
                &format!("/console/apps/{id}/wecom/unbind"),
                &[("csrf", s.csrf.as_str())],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(st.store.integrations(s.tenant_id).await.unwrap().len(), 1);
        let anon = Browser::new(env.bridge.addr, &env.domain);
        let p = anon.get("/apps/expense").await;
        assert_eq!(
            p.location.as_deref(),
            Some("/login?next=%2Fapps%2Fexpense%2Fopen")
        );

        // Deleting a bound app deletes its WeCom app's sealed Secret too.
        let r = bind(SECOND_AGENTID.to_string(), SECOND_SECRET).await;
        // The scope drifted above: binding again is refused, naming 财务部.
        assert_eq!(r.status, 422, "{}", r.body);
        env.sim_admin(
            "PUT",
            &format!("/corps/{CORPID}/apps/{SECOND_AGENTID}/scope"),
            serde_json::json!({"parties": [3]}),
        )
        .await;
        assert_eq!(
            bind(SECOND_AGENTID.to_string(), SECOND_SECRET).await.status,
            303
        );
        assert_eq!(st.store.integrations(s.tenant_id).await.unwrap().len(), 2);
        let r = env
            .browser
            .post(
                &format!("/console/apps/{id}/delete"),
                &[("csrf", s.csrf.as_str())],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let left = st.store.integrations(s.tenant_id).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].agentid, i64::from(MAIN_AGENTID));
    }
}
