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
