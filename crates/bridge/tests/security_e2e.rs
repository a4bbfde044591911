//! Issue 19's review findings, each as an attack over HTTP (or on disk) that failed
//! before the fix, on SQLite and (with TEST_DATABASE_URL) PostgreSQL.

mod common;

use bridge::domain::tenant::Edition;
use bridge::testing::database_urls;
use common::*;

/// Signs in at `/console/login` with `next` and returns the answer.
async fn login_with_next(env: &Env, user: &str, password: &str, next: &str) -> Page {
    let page = env.browser.get("/console/login").await;
    let csrf = page.hidden("csrf").unwrap();
    env.browser
        .post(
            "/console/login",
            &[
                ("csrf", &csrf),
                ("username", user),
                ("password", password),
                ("next", next),
            ],
        )
        .await
}

/// Item 1: the console's `next` goes through the one return-path check: a TAB or a
/// vertical tab no longer turns into `//evil.example` (or a 500 after the cookie).
#[tokio::test]
async fn admin_next_cannot_leave_the_origin() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        env.admin_login().await;
        for next in [
            "/\t/evil.example/x",
            "/\u{b}/evil.example/x",
            "/\u{c}/evil.example/x",
            "//evil.example/x",
            "/\\evil.example/x",
            "https://evil.example/x",
        ] {
            env.browser.clear_cookies();
            let r = login_with_next(&env, "admin", NEW_PASSWORD, next).await;
            assert_eq!(
                (r.status, r.location.as_deref()),
                (303, Some("/console")),
                "{next:?}: {}",
                r.body
            );
        }
        env.browser.clear_cookies();
        let r = login_with_next(&env, "admin", NEW_PASSWORD, "/console/audit?before=9").await;
        assert_eq!(r.location.as_deref(), Some("/console/audit?before=9"));
        env.bridge.stop().await;
    }
}

/// Item 9: the data directory, the database and the instance key are private.
#[cfg(unix)]
#[tokio::test]
async fn data_dir_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let sim = wecom_sim::launch(
        wecom_sim::Sim::from_scenario(wecom_sim::fixtures::small_org()),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let parent = std::env::temp_dir().join(format!("bridge-perm-{}", rand::random::<u64>()));
    let data_dir = parent.join("data");
    // The embedded database: no database_url, so it lives in the data directory.
    let cfg = config(&sim, &data_dir, "", "acme.localhost", Edition::Professional);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bridge = bridge::launch(cfg, listener).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&data_dir.join("bridge.db")), 0o600);
    assert_eq!(mode(&data_dir.join("instance.key")), 0o600);
    for side in ["bridge.db-wal", "bridge.db-shm"] {
        let p = data_dir.join(side);
        if p.exists() {
            assert_eq!(mode(&p) & 0o077, 0, "{side}");
        }
    }
    bridge.stop().await;
    std::fs::remove_dir_all(parent).ok();
}

/// Item 10: a 5,000-character username typed on the public sign-in page is capped in
/// the audit log; the audit table wraps long values.
#[tokio::test]
async fn audit_actor_is_capped() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        env.admin_login().await;
        let anon = bridge_browser(&env);
        let long = "x".repeat(5000);
        let r = login_with_next_on(&anon, &long, "wrong password", "/console").await;
        assert_eq!(r.status, 401);
        let t = env
            .bridge
            .state
            .store
            .tenant_by_slug("default")
            .await
            .unwrap()
            .unwrap();
        let entries = env
            .bridge
            .state
            .store
            .list_audit(t.id, 10, None)
            .await
            .unwrap();
        let failed = entries
            .iter()
            .find(|e| e.action == "admin.login_failed")
            .expect("the failed sign-in is audited");
        assert!(
            failed.actor.starts_with("anonymous:xxx"),
            "{}",
            failed.actor
        );
        assert!(
            failed.actor.chars().count() <= 100,
            "{}",
            failed.actor.len()
        );
        let page = env.browser.get("/console/audit").await;
        assert!(page.body.contains("<table class=\"audit\">"));
        assert!(!page.body.contains(&"x".repeat(200)));
        let css = env.browser.get("/static/console.css").await;
        assert!(css.body.contains("table.audit td { overflow-wrap:anywhere"));
        env.bridge.stop().await;
    }
}

/// Item 12: neither the configuration nor the first-start bootstrap print secrets.
#[tokio::test]
async fn debug_output_has_no_secrets() {
    let env = start(&bridge::testing::sqlite_url(), Edition::Professional).await;
    let b = env.bridge.bootstrap.clone().unwrap();
    let shown = format!("{b:?}");
    assert!(!shown.contains(&b.one_time_password), "{shown}");
    assert!(shown.contains("redacted") && shown.contains(&b.username));
    let mut cfg = (*env.bridge.state.cfg).clone();
    cfg.instance_key = "c2VjcmV0LWluc3RhbmNlLWtleS1ieXRlcy0xMjM0NTY=".into();
    assert!(!format!("{cfg:?}").contains("c2VjcmV0"));
    env.bridge.stop().await;
}

fn bridge_browser(env: &Env) -> Browser {
    Browser::new(env.bridge.addr, &env.domain)
}

async fn login_with_next_on(b: &Browser, user: &str, password: &str, next: &str) -> Page {
    let page = b.get("/console/login").await;
    let csrf = page.hidden("csrf").unwrap();
    b.post(
        "/console/login",
        &[
            ("csrf", &csrf),
            ("username", user),
            ("password", password),
            ("next", next),
        ],
    )
    .await
}

/// Item 4: changing the password needs the current one, and the one-time password
/// cannot become the permanent one.
#[tokio::test]
async fn password_change_needs_the_current_password() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let b = env.bridge.bootstrap.clone().unwrap();
        let r = env.browser.login(&b.username, &b.one_time_password).await;
        assert_eq!(r.location.as_deref(), Some("/console/password"));
        let csrf = env
            .browser
            .get("/console/password")
            .await
            .hidden("csrf")
            .unwrap();
        let post = |current: &'static str, new: &'static str| {
            let csrf = csrf.clone();
            let b = &env.browser;
            async move {
                b.post(
                    "/console/password",
                    &[
                        ("csrf", &csrf),
                        ("current", current),
                        ("password", new),
                        ("confirm", new),
                    ],
                )
                .await
            }
        };
        // No current password, or a wrong one: refused.
        assert_eq!(post("", NEW_PASSWORD).await.status, 400);
        assert_eq!(post("not-the-password", NEW_PASSWORD).await.status, 400);
        // The one-time password as the new one: refused.
        let otp: &'static str = Box::leak(b.one_time_password.clone().into_boxed_str());
        let r = post(otp, otp).await;
        assert_eq!(r.status, 400, "{}", r.body);
        // Right current password, a new one: accepted.
        let r = post(otp, NEW_PASSWORD).await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(env.browser.login("admin", NEW_PASSWORD).await.status, 303);
        // Signed in with a real password, the same rule: current first.
        let csrf = env.browser.get("/console").await.hidden("csrf").unwrap();
        let r = env
            .browser
            .post(
                "/console/password",
                &[
                    ("csrf", &csrf),
                    ("password", "another long password"),
                    ("confirm", "another long password"),
                ],
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            env.browser.get("/console").await.status,
            200,
            "still signed in"
        );
        env.bridge.stop().await;
    }
}

/// Item 5: security headers on every response; `no-store` on console pages; HSTS only
/// when the public URL is https.
#[tokio::test]
async fn every_response_has_security_headers() {
    let env = start(&bridge::testing::sqlite_url(), Edition::Professional).await;
    env.admin_login().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, console) in [
        ("/console", true),
        ("/console/audit", true),
        ("/console/login", true),
        ("/login", false),
        ("/static/console.css", false),
        ("/no-such-page", false),
    ] {
        let r = http
            .get(env.browser.url(path))
            .header("host", &env.domain)
            .header("cookie", env.browser.cookie_header())
            .send()
            .await
            .unwrap();
        let h = r.headers();
        let get = |k: &str| h.get(k).map(|v| v.to_str().unwrap().to_string());
        let csp = get("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(get("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(
            get("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert!(get("referrer-policy").is_some(), "{path}");
        assert_eq!(get("strict-transport-security"), None, "http: no HSTS");
        if console {
            assert_eq!(get("cache-control").as_deref(), Some("no-store"), "{path}");
        }
    }
    // No template carries inline script or style that the CSP would block.
    for path in [
        "/console",
        "/console/audit",
        "/console/users",
        "/console/sync",
        "/login",
    ] {
        let body = env.browser.get(path).await.body;
        assert!(
            !body.contains("<script>") && !body.contains("<style"),
            "{path}"
        );
        assert!(!body.contains(" style=\""), "{path}");
    }
    env.bridge.stop().await;

    // Served over https: HSTS.
    let sim = wecom_sim::launch(
        wecom_sim::Sim::from_scenario(wecom_sim::fixtures::small_org()),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("bridge-hsts-{}", rand::random::<u64>()));
    let mut cfg = config(
        &sim,
        &dir,
        &bridge::testing::sqlite_url(),
        "acme.localhost",
        Edition::Professional,
    );
    cfg.public_url_pattern = "https://{domain}".into();
    let bridge = bridge::launch(
        cfg,
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let r = http
        .get(format!("http://{}/console/login", bridge.addr))
        .header("host", "acme.localhost")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("strict-transport-security").is_some());
    bridge.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

/// Item 11: two Host headers are refused; an admin cookie sent to another tenant's host
/// is refused without ending the session; tenant domains differing only by port are
/// refused.
#[tokio::test]
async fn hosts_and_tenant_boundaries() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        env.admin_login().await;
        // Duplicate Host headers: 400, whichever comes first.
        let mut stream = tokio::net::TcpStream::connect(env.bridge.addr)
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!(
            "GET /console/login HTTP/1.1\r\nHost: {}\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            env.domain
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

        let store = &env.bridge.state.store;
        let other = bridge::operator::create_tenant(
            store,
            "other",
            "Other",
            Edition::Professional,
            Some("other.localhost"),
        )
        .await
        .unwrap();
        let replayed = env.browser.with_cookies_for("other.localhost");
        assert_eq!(replayed.get("/console").await.status, 303);
        assert_eq!(
            env.browser.get("/console").await.status,
            200,
            "session kept"
        );
        // Same host, another port: refused (cookies ignore ports), on create and on change.
        let same_host = env.domain.split(':').next().unwrap().to_string();
        let clash = bridge::operator::create_tenant(
            store,
            "clash",
            "Clash",
            Edition::Professional,
            Some(&format!("{same_host}:1")),
        )
        .await;
        assert!(clash.is_err(), "a tenant on {same_host}:1");
        assert!(clash.err().unwrap().to_string().contains("only by port"));
        let moved = bridge::operator::set_domain(store, "other", &format!("{same_host}:2")).await;
        assert!(moved.is_err());
        bridge::operator::set_domain(store, "other", "other2.localhost")
            .await
            .unwrap();
        assert_eq!(other.tenant.slug, "other");
        env.bridge.stop().await;
    }
}

/// Item 13: a correctly signed callback older than a day is refused and logged; one in
/// the window is accepted, and its re-delivery stays a single stored callback.
#[tokio::test]
async fn stale_callbacks_are_refused_duplicates_idempotent() {
    use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let csrf = env.admin_login().await;
        let r = env
            .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let st = &env.bridge.state;
        let t = st.store.tenant_by_slug("default").await.unwrap().unwrap();
        let o = st
            .open_integration(&st.store.main_integration(t.id).await.unwrap().unwrap())
            .unwrap();
        let crypt = wecom::crypto::MsgCrypt::new(&o.callback_token, &o.callback_aes_key, &o.corpid)
            .unwrap();
        let xml = "<xml><ToUserName><![CDATA[x]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[nobody]]></UserID></xml>";
        let now = bridge::domain::now_ms() / 1000;
        let send = |ts: i64| {
            let msg = crypt.encrypt_message(xml, &ts.to_string(), "nonce123");
            let body = msg.envelope_xml(&o.corpid, "1000002");
            let url = env.browser.url(&format!(
                "/wecom/callback?msg_signature={}&timestamp={ts}&nonce=nonce123",
                msg.msg_signature
            ));
            env.browser
                .send(reqwest::Client::new().post(url).body(body))
        };
        let old = send(now - 2 * 24 * 3600).await;
        assert_eq!(old.status, 403, "{}", old.body);
        assert!(old.body.contains("timestamp"));
        let future = send(now + 2 * 24 * 3600).await;
        assert_eq!(future.status, 403);
        assert!(st.store.list_callbacks(t.id).await.unwrap().is_empty());
        // Within the window (an hour late is fine), twice: one stored callback.
        assert_eq!(send(now - 3600).await.status, 200);
        assert_eq!(send(now - 3600).await.status, 200);
        assert_eq!(st.store.list_callbacks(t.id).await.unwrap().len(), 1);
        env.bridge.stop().await;
    }
}

/// Item 3: half a request head is cut off after the header-read timeout, a stalled body
/// after the request timeout (408), with both set low here.
#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = wecom_sim::launch(
        wecom_sim::Sim::from_scenario(wecom_sim::fixtures::small_org()),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("bridge-slow-{}", rand::random::<u64>()));
    let mut cfg = config(
        &sim,
        &dir,
        &bridge::testing::sqlite_url(),
        "acme.localhost",
        Edition::Professional,
    );
    cfg.header_read_timeout_ms = 300;
    cfg.request_timeout_ms = 600;
    let bridge = bridge::launch(
        cfg,
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    // Half the headers, then silence: the server closes the connection.
    let started = std::time::Instant::now();
    let mut s = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
    s.write_all(b"GET /console/login HTTP/1.1\r\nHost: acme.localhost\r\nX-Half: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was still open after 10 s");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(250),
        "{waited:?}"
    );
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    // A complete head announcing a body that never comes: 408.
    let mut s = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
    s.write_all(
        b"POST /console/login HTTP/1.1\r\nHost: acme.localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncsrf=",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the stalled body was still held after 10 s");
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    bridge.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

/// One sign-in attempt at `/console/login` by `b`: the status, `Retry-After`, and
/// whether an admin session cookie was set.
async fn attempt(b: &Browser, user: &str, password: &str) -> (u16, Option<String>, bool) {
    attempt_from(b, user, password, None).await
}

/// [`attempt`] through a proxy that forwards `forwarded_for`.
async fn attempt_from(
    b: &Browser,
    user: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (u16, Option<String>, bool) {
    let csrf = b.get("/console/login").await.hidden("csrf").unwrap();
    let mut req = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(b.url("/console/login"));
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    let r = req
        .header("host", &b.host)
        .header("cookie", b.cookie_header())
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", user),
            ("password", password),
            ("next", "/console"),
        ])
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("wb_admin="));
    (r.status().as_u16(), retry, session)
}

async fn audit_of(env: &Env, action: &str) -> Vec<String> {
    let st = &env.bridge.state;
    let t = st.store.tenant_by_slug("default").await.unwrap().unwrap();
    st.store
        .list_audit(t.id, 200, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.detail)
        .collect()
}

/// Item 2: five wrong passwords lock the account and the IP out (429 + Retry-After),
/// the right password too while locked, each lockout audited once; the lock doubles
/// with each further failure; once it ends the right password works and the account's
/// count starts again. Time moves on the app's clock, no sleeping.
#[tokio::test]
async fn admin_sign_in_backs_off_after_wrong_passwords() {
    use bridge::domain::throttle::ThrottleKey;
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        env.admin_login().await;
        let clock = env.bridge.state.clock.clone();
        let b = bridge_browser(&env);
        for i in 1..=4 {
            let r = attempt(&b, "admin", "wrong password").await;
            assert_eq!(r, (401, None, false), "attempt {i}");
        }
        let r = attempt(&b, "admin", "wrong password").await;
        assert_eq!(r, (429, Some("1".into()), false), "the fifth failure locks");
        // Locked: the right password is refused too, and nothing more is audited.
        let r = attempt(&b, "admin", NEW_PASSWORD).await;
        assert_eq!((r.0, r.2), (429, false));
        assert_eq!(r.1.as_deref(), Some("1"));
        let locked = audit_of(&env, "admin.login_locked").await;
        assert_eq!(locked.len(), 2, "{locked:?}");
        assert!(locked
            .iter()
            .any(|d| d.starts_with("IP 127.0.0.1 locked for 1 s after 5")));
        assert!(locked
            .iter()
            .any(|d| d.starts_with("the account locked for 1 s after 5")));
        assert_eq!(audit_of(&env, "admin.login_failed").await.len(), 5);

        // The lock ends; one more failure locks for twice as long.
        clock.advance(std::time::Duration::from_millis(1000));
        let r = attempt(&b, "admin", "wrong password").await;
        assert_eq!(r, (429, Some("2".into()), false));
        clock.advance(std::time::Duration::from_millis(1000));
        assert_eq!(attempt(&b, "admin", NEW_PASSWORD).await.0, 429);
        assert_eq!(audit_of(&env, "admin.login_locked").await.len(), 4);
        clock.advance(std::time::Duration::from_millis(1000));
        let r = attempt(&b, "admin", NEW_PASSWORD).await;
        assert_eq!(
            r,
            (303, None, true),
            "the right password works once the lock ends"
        );
        // The account's count starts again; the IP's does not.
        let store = &env.bridge.state.store;
        let t = store.tenant_by_slug("default").await.unwrap().unwrap();
        let account = ThrottleKey::Account {
            tenant_id: t.id,
            username: "admin".into(),
        };
        assert_eq!(
            store.login_throttle_state(&account.stored()).await.unwrap(),
            None
        );
        let ip = ThrottleKey::Ip("127.0.0.1".into());
        assert_eq!(
            store
                .login_throttle_state(&ip.stored())
                .await
                .unwrap()
                .map(|s| s.0),
            Some(6)
        );
        env.bridge.stop().await;
    }
}

/// Item 2: usernames that do not exist are counted too (per IP), and a locked IP is
/// refused even the right password of a real account.
#[tokio::test]
async fn unknown_usernames_are_throttled_per_ip() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        env.admin_login().await;
        let b = bridge_browser(&env);
        for i in 1..=4 {
            let r = attempt(&b, &format!("nobody{i}"), "guess").await;
            assert_eq!(r.0, 401, "attempt {i}");
        }
        let r = attempt(&b, "nobody5", "guess").await;
        assert_eq!((r.0, r.1.as_deref()), (429, Some("1")));
        assert_eq!(attempt(&b, "admin", NEW_PASSWORD).await.0, 429);
        let locked = audit_of(&env, "admin.login_locked").await;
        assert_eq!(locked.len(), 1, "{locked:?}");
        assert!(locked[0].starts_with("IP 127.0.0.1 locked"), "{locked:?}");
        env.bridge
            .state
            .clock
            .advance(std::time::Duration::from_secs(1));
        assert_eq!(attempt(&b, "admin", NEW_PASSWORD).await.0, 303);
        env.bridge.stop().await;
    }
}

/// Item 2: guessing the current password on the password page (a borrowed session)
/// is throttled like signing in.
#[tokio::test]
async fn current_password_guesses_are_throttled() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let csrf = env.admin_login().await;
        let guess = |n: usize| {
            let csrf = csrf.clone();
            let b = &env.browser;
            async move {
                b.post(
                    "/console/password",
                    &[
                        ("csrf", csrf.as_str()),
                        ("current", &format!("guess {n}")),
                        ("password", "another long password"),
                        ("confirm", "another long password"),
                    ],
                )
                .await
                .status
            }
        };
        for n in 1..=4 {
            assert_eq!(guess(n).await, 400, "guess {n}");
        }
        assert_eq!(guess(5).await, 429);
        assert_eq!(guess(6).await, 429);
        assert_eq!(audit_of(&env, "admin.login_locked").await.len(), 2);
        env.bridge.stop().await;
    }
}

/// Item 2 behind a reverse proxy: with the proxy listed in `trusted_proxies`, each
/// client is counted by the address the proxy forwarded (one client locked out does
/// not lock out the others); a client-chosen `X-Forwarded-For` prefix changes nothing.
/// Without the setting the header is ignored.
#[tokio::test]
async fn throttling_behind_a_trusted_proxy_counts_each_client() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        env.admin_login().await;
        let mut cfg = config(
            &env.sim,
            &env.data_dir,
            &env.database_url,
            &env.domain,
            Edition::Professional,
        );
        cfg.trusted_proxies = vec!["127.0.0.1".into()];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxied = bridge::launch(cfg, listener).await.unwrap();
        let b = Browser::new(proxied.addr, &env.domain);
        for i in 1..=5 {
            // The client prepends addresses of its own: only the proxy's entry counts.
            let f = format!("198.51.100.{i}, 203.0.113.5");
            let r = attempt_from(&b, &format!("nobody{i}"), "guess", Some(&f)).await;
            assert_eq!(r.0, if i < 5 { 401 } else { 429 }, "attempt {i}");
        }
        assert_eq!(
            attempt_from(&b, "admin", NEW_PASSWORD, Some("203.0.113.5"))
                .await
                .0,
            429
        );
        // Another client behind the same proxy signs in.
        let r = attempt_from(&b, "admin", NEW_PASSWORD, Some("203.0.113.6")).await;
        assert_eq!(r.0, 303);
        let locked = audit_of(&env, "admin.login_locked").await;
        assert!(
            locked.len() == 1 && locked[0].starts_with("IP 203.0.113.5 locked"),
            "{locked:?}"
        );
        // The instance without the setting: the header is the client's word, ignored.
        let direct = bridge_browser(&env);
        for i in 1..=4 {
            let f = format!("192.0.2.{i}");
            let r = attempt_from(&direct, &format!("other{i}"), "guess", Some(&f)).await;
            assert_eq!(r.0, 401, "attempt {i}");
        }
        let r = attempt_from(&direct, "other5", "guess", Some("192.0.2.99")).await;
        assert_eq!(r.0, 429, "counted as one client, 127.0.0.1");
        proxied.stop().await;
        env.bridge.stop().await;
    }
}

/// Console sessions end after 30 idle minutes and after 12 hours whatever the use, on the
/// app's clock: moved forward here, never slept on. The ended session is deleted, so
/// going back in time (or another request) cannot revive it.
#[tokio::test]
async fn console_sessions_expire_idle_and_absolute() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        env.admin_login().await;
        let clock = env.bridge.state.clock.clone();
        let minutes = |m: u64| std::time::Duration::from_secs(m * 60);
        let open = |path: &'static str| {
            let b = &env.browser;
            async move { b.get(path).await }
        };
        assert_eq!(open("/console/audit").await.status, 200);

        // 29 idle minutes: still signed in (and the request counts as use).
        clock.advance(minutes(29));
        assert_eq!(open("/console/audit").await.status, 200);
        // 31 more idle minutes: signed out, sent to the sign-in page with the way back.
        clock.advance(minutes(31));
        let r = open("/console/audit").await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(
            r.location.as_deref(),
            Some("/console/login?next=%2Fconsole%2Faudit")
        );

        // Used every 20 minutes, a session still ends 12 hours after it began.
        env.browser.clear_cookies();
        let r = login_with_next(&env, "admin", NEW_PASSWORD, "/console").await;
        assert_eq!(r.status, 303, "{}", r.body);
        for _ in 0..35 {
            clock.advance(minutes(20));
            assert_eq!(open("/console/audit").await.status, 200);
        }
        clock.advance(minutes(21));
        assert_eq!(
            open("/console/audit").await.status,
            303,
            "12 h after sign-in, even in use"
        );
        env.bridge.stop().await;
    }
}
