//! The admin's journey through the set-up wizard (steps 1–3) and doctor, end to end
//! over HTTP against wecom-sim, on SQLite and (with TEST_DATABASE_URL) PostgreSQL.

mod common;

use bridge::domain::doctor::Status;
use bridge::domain::tenant::Edition;
use bridge::testing::database_urls;
use common::*;
use serde_json::json;
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET, SECOND_AGENTID};

#[tokio::test]
async fn professional_tenant_completes_steps_1_to_3() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let csrf = env.admin_login().await;
        let p1 = env.browser.get("/console/setup/1").await;
        assert!(
            p1.body.contains("data-testid=\"edition-ok\""),
            "{}",
            p1.body
        );

        let r = env
            .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
            .await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (303, Some("/console/setup/3")),
            "{}",
            r.body
        );

        let p3 = env.browser.get("/console/setup/3").await;
        let home = format!("http://{}/wecom/home", env.domain);
        for expected in [
            home.as_str(),
            env.domain.as_str(),
            "127.0.0.1",
            &format!("http://{}/wecom/callback", env.domain),
        ] {
            assert!(p3.body.contains(expected), "step 3 lacks {expected}");
        }
        // The scope by name: department 研发中心, tag 项目A, member 钱八.
        for name in ["研发中心", "项目A", "钱八"] {
            assert!(p3.body.contains(name), "scope lacks {name}");
        }
        assert!(
            !p3.body.contains("data-testid=\"domain-warning\""),
            "domains match"
        );
        assert!(p3.body.contains("class=\"copy\""), "copy buttons");
        assert!(
            !p3.body.contains(MAIN_SECRET),
            "the secret never goes back to the browser"
        );

        let t = env
            .bridge
            .state
            .store
            .tenant_by_slug("default")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t.integration_mode.as_str(), "self_built");
        let audit = env
            .bridge
            .state
            .store
            .list_audit(t.id, 50, None)
            .await
            .unwrap();
        assert!(audit
            .iter()
            .any(|e| e.action == "wecom.credentials.saved" && e.actor == "admin:admin"));
        let checks = bridge::doctor::run(&env.bridge.state, &t).await.unwrap();
        assert!(bridge::domain::doctor::all_passed(&checks), "{checks:#?}");
    }
}

#[tokio::test]
async fn basic_tenant_is_refused_and_nothing_is_saved() {
    for db in database_urls().await {
        let env = start(&db, Edition::Basic).await;
        let csrf = env.admin_login().await;
        let p1 = env.browser.get("/console/setup/1").await;
        assert!(p1.body.contains("data-testid=\"edition-refused\""));
        assert!(
            p1.body.contains("专业版") && p1.body.contains("基础版"),
            "names both editions"
        );
        let en = env.browser.get("/console/setup/1?lang=en").await;
        assert!(en.body.contains("Professional") && en.body.contains("Basic"));
        let r = env
            .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
            .await;
        assert_eq!(r.status, 403);
        let t = env
            .bridge
            .state
            .store
            .tenant_by_slug("default")
            .await
            .unwrap()
            .unwrap();
        assert!(env
            .bridge
            .state
            .store
            .main_integration(t.id)
            .await
            .unwrap()
            .is_none());
        // The operator upgrades: the same form now works.
        bridge::operator::set_edition(&env.bridge.state.store, "default", Edition::Professional)
            .await
            .unwrap();
        let r = env
            .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
            .await;
        assert_eq!(r.status, 303);
    }
}

#[tokio::test]
async fn wrong_secret_is_explained_and_the_form_keeps_what_was_typed() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let csrf = env.admin_login().await;
        let r = env
            .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), "wrong-secret")
            .await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains("data-testid=\"wecom-error\""));
        assert!(
            r.body.contains("Secret 不正确") && r.body.contains("errcode 40001"),
            "{}",
            r.body
        );
        // WeCom's long hint number is there for support, behind a "details" toggle.
        let hint = r.body.find("hint ").expect("the hint is kept");
        let details = r
            .body
            .find("data-testid=\"wecom-hint\"")
            .expect("a details toggle");
        assert!(r.body[..details].ends_with("<details class=\"small muted\" "));
        assert!(details < hint && hint < details + r.body[details..].find("</details>").unwrap());
        assert!(
            r.body.contains(&format!("value=\"{CORPID}\""))
                && r.body.contains(&format!("value=\"{MAIN_AGENTID}\""))
        );
        assert!(
            !r.body.contains("wrong-secret"),
            "the secret is not echoed back"
        );
        let t = env
            .bridge
            .state
            .store
            .tenant_by_slug("default")
            .await
            .unwrap()
            .unwrap();
        assert!(env
            .bridge
            .state
            .store
            .main_integration(t.id)
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn wrong_agentid_and_malformed_fields() {
    let db = bridge::testing::sqlite_url();
    let env = start(&db, Edition::Professional).await;
    let csrf = env.admin_login().await;
    // The AgentId of another app of the corp: 301002.
    let r = env
        .save_credentials(&csrf, CORPID, &SECOND_AGENTID.to_string(), MAIN_SECRET)
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("AgentId 与 Secret 不属于同一个应用"),
        "{}",
        r.body
    );
    // An AgentId that exists nowhere: 40056.
    let r = env
        .save_credentials(&csrf, CORPID, "4242", MAIN_SECRET)
        .await;
    assert!(r.body.contains("AgentId 不正确"));
    // Field checks before any WeCom call.
    let r = env.save_credentials(&csrf, "not a corp", "abc", "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body.matches("class=\"field-error\"").count(),
        3,
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"not a corp\"") && r.body.contains("value=\"abc\""));
}

#[tokio::test]
async fn untrusted_ip_is_explained_in_the_wizard_and_by_doctor() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let csrf = env.admin_login().await;
        env.patch_main_app(json!({"trusted_ips": ["203.0.113.7"]}))
            .await;
        let r = env
            .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
            .await;
        assert_eq!(r.status, 400);
        assert!(
            r.body.contains("企业可信IP") && r.body.contains("127.0.0.1"),
            "{}",
            r.body
        );

        // Saved while trusted, then the IP list changes: doctor names the IP to add.
        env.patch_main_app(json!({"trusted_ips": ["127.0.0.1"]}))
            .await;
        assert_eq!(
            env.save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
                .await
                .status,
            303
        );
        env.patch_main_app(json!({"trusted_ips": ["203.0.113.7"]}))
            .await;
        let page = env.browser.get("/console/doctor").await;
        assert!(
            page.body
                .contains("企业微信拒绝了来自 127.0.0.1 的调用（60020）"),
            "{}",
            page.body
        );
        let page = env.browser.get("/console/doctor?lang=en").await;
        assert!(
            page.body
                .contains("WeCom refused calls from 127.0.0.1 (60020)"),
            "{}",
            page.body
        );
        env.browser.get("/console?lang=zh").await;
        let t = env
            .bridge
            .state
            .store
            .tenant_by_slug("default")
            .await
            .unwrap()
            .unwrap();
        let checks = bridge::doctor::run(&env.bridge.state, &t).await.unwrap();
        let ip = checks.iter().find(|c| c.id == "trusted_ip").unwrap();
        assert_eq!(ip.status, Status::Fail);
        assert!(ip.fix_en.contains("127.0.0.1"));
    }
}

#[tokio::test]
async fn wrong_trusted_domain_is_explained_in_the_wizard_and_by_doctor() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let csrf = env.admin_login().await;
        env.patch_main_app(json!({"redirect_domain": "oa.other.example.com"}))
            .await;
        assert_eq!(
            env.save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
                .await
                .status,
            303
        );
        let p3 = env.browser.get("/console/setup/3").await;
        assert!(p3.body.contains("data-testid=\"domain-warning\""));
        assert!(
            p3.body.contains("redirect uri需使用应用可信域名")
                && p3.body.contains("oa.other.example.com")
        );
        // The warning sits on the row it is about, right under the trusted domain's value.
        let row = p3.body.find("<tr data-key=\"trusted_domain\"").unwrap();
        let warning = p3.body.find("data-warning-for=\"trusted_domain\"").unwrap();
        let next_row = p3.body[row + 1..].find("<tr data-key=").unwrap() + row + 1;
        assert!(row < warning && warning < next_row, "{}", p3.body);
        let doctor = env.browser.get("/console/doctor?lang=en").await;
        assert!(
            doctor
                .body
                .contains("data-check=\"trusted_domain\" class=\"status-fail\""),
            "{}",
            doctor.body
        );
        assert!(doctor.body.contains("oa.other.example.com"));
    }
}

#[tokio::test]
async fn empty_scope_is_warned() {
    let env = start(&bridge::testing::sqlite_url(), Edition::Professional).await;
    let csrf = env.admin_login().await;
    env.sim_admin(
        "PUT",
        &format!("/corps/{CORPID}/apps/{MAIN_AGENTID}/scope"),
        json!({}),
    )
    .await;
    assert_eq!(
        env.save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
            .await
            .status,
        303
    );
    let p3 = env.browser.get("/console/setup/3").await;
    assert!(p3.body.contains("data-testid=\"scope-empty\""));
}

#[tokio::test]
async fn the_secret_is_unreadable_at_rest() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let csrf = env.admin_login().await;
        assert_eq!(
            env.save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
                .await
                .status,
            303
        );
        let t = env
            .bridge
            .state
            .store
            .tenant_by_slug("default")
            .await
            .unwrap()
            .unwrap();
        let rec = env
            .bridge
            .state
            .store
            .main_integration(t.id)
            .await
            .unwrap()
            .unwrap();
        let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(&rec.secret_sealed, MAIN_SECRET.as_bytes()));
        let opened = env.bridge.state.open_integration(&rec).unwrap();
        assert_eq!(opened.secret, MAIN_SECRET);
        for sealed in [&rec.callback_token_sealed, &rec.callback_aes_key_sealed] {
            assert!(
                !contains(sealed, opened.callback_token.as_bytes())
                    && !contains(sealed, opened.callback_aes_key.as_bytes())
            );
        }
        if db.starts_with("sqlite") {
            env.bridge.state.store.close().await;
            let path = db
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap();
            let mut bytes = std::fs::read(path).unwrap();
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                bytes.extend(wal);
            }
            assert!(
                contains(&bytes, CORPID.as_bytes()),
                "the file is the database"
            );
            assert!(
                !contains(&bytes, MAIN_SECRET.as_bytes()),
                "secret readable in the SQLite file"
            );
        }
    }
}

#[tokio::test]
async fn wecom_verifies_the_callback_url_and_doctor_sees_it() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let csrf = env.admin_login().await;
        assert_eq!(
            env.save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
                .await
                .status,
            303
        );
        let t = env
            .bridge
            .state
            .store
            .tenant_by_slug("default")
            .await
            .unwrap()
            .unwrap();
        let rec = env
            .bridge
            .state
            .store
            .main_integration(t.id)
            .await
            .unwrap()
            .unwrap();
        let opened = env.bridge.state.open_integration(&rec).unwrap();
        // The admin pastes the wizard's URL/Token/EncodingAESKey into WeCom, which verifies it.
        env.sim_admin(
            "PATCH",
            &format!("/corps/{CORPID}/apps/{MAIN_AGENTID}"),
            json!({"callback": {"url": format!("http://{}/wecom/callback", env.domain),
                                 "token": opened.callback_token, "encoding_aes_key": opened.callback_aes_key}}),
        )
        .await;
        let rec = env
            .bridge
            .state
            .store
            .main_integration(t.id)
            .await
            .unwrap()
            .unwrap();
        assert!(rec.callback_verified_at.is_some());
        // A wrong key is refused by the bridge, so WeCom refuses to save it.
        let url = format!(
            "{}/sim/admin/corps/{CORPID}/apps/{MAIN_AGENTID}",
            env.sim.base_url
        );
        let bad = reqwest::Client::new()
            .patch(url)
            .json(&json!({"callback": {"url": format!("http://{}/wecom/callback", env.domain),
                                        "token": "wrongtoken", "encoding_aes_key": wecom::crypto::generate_encoding_aes_key()}}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422);
    }
}

// Multi-threaded: the simulator keeps serving while this thread waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_cli_exit_codes() {
    let db = bridge::testing::sqlite_url();
    let env = start(&db, Edition::Professional).await;
    let csrf = env.admin_login().await;
    assert_eq!(
        env.save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
            .await
            .status,
        303
    );
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wecom-bridge"))
            .args(["doctor", "--tenant", "default"])
            .env("WECOM_BRIDGE_DATABASE_URL", &db)
            .env("WECOM_BRIDGE_DATA_DIR", &env.data_dir)
            .env("WECOM_BRIDGE_WECOM_API_BASE", env.sim.api_base())
            .env("WECOM_BRIDGE_PUBLIC_URL_PATTERN", "http://{domain}")
            .output()
            .unwrap()
    };
    let ok = run();
    let out = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{out}");
    assert!(out.contains("[PASS] Secret is right"));
    env.patch_main_app(json!({"redirect_domain": "wrong.example.com"}))
        .await;
    let bad = run();
    let out = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(
        out.contains("[FAIL] Trusted domain matches") && out.contains("wrong.example.com"),
        "{out}"
    );
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_wecom-bridge"))
        .args(["doctor", "--tenant", "nope"])
        .env("WECOM_BRIDGE_DATABASE_URL", &db)
        .env("WECOM_BRIDGE_DATA_DIR", &env.data_dir)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no tenant named \"nope\""));
}

#[tokio::test]
async fn verification_file_is_served_at_the_domain_root() {
    let env = start(&bridge::testing::sqlite_url(), Edition::Professional).await;
    let csrf = env.admin_login().await;
    let r = env
        .browser
        .post(
            "/console/setup/verify-file",
            &[
                ("csrf", &csrf),
                ("filename", "WW_verify_YpAqDE4xoAPsmGSK.txt"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let f = env.browser.get("/WW_verify_YpAqDE4xoAPsmGSK.txt").await;
    assert_eq!((f.status, f.body.as_str()), (200, "YpAqDE4xoAPsmGSK"));
    let bad = env
        .browser
        .post(
            "/console/setup/verify-file",
            &[("csrf", &csrf), ("filename", "../../etc/passwd")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("value=\"../../etc/passwd\""),
        "keeps what was typed"
    );
    assert_eq!(env.browser.get("/WW_verify_other.txt").await.status, 404);
    let del = env
        .browser
        .post(
            "/console/setup/verify-file/delete",
            &[
                ("csrf", &csrf),
                ("filename", "WW_verify_YpAqDE4xoAPsmGSK.txt"),
            ],
        )
        .await;
    assert_eq!(del.status, 303);
    assert_eq!(
        env.browser
            .get("/WW_verify_YpAqDE4xoAPsmGSK.txt")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let env = start(&bridge::testing::sqlite_url(), Edition::Professional).await;
    let csrf = env.admin_login().await;
    let store = &env.bridge.state.store;
    let t = store.tenant_by_slug("default").await.unwrap().unwrap();
    let audit_before = store.list_audit(t.id, 100, None).await.unwrap().len();

    // No CSRF token, or another one: refused.
    let r = env
        .browser
        .post(
            "/console/setup/2",
            &[
                ("corpid", CORPID),
                ("agentid", "1000002"),
                ("secret", MAIN_SECRET),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = env
        .browser
        .post(
            "/console/setup/2",
            &[
                ("csrf", "forged"),
                ("corpid", CORPID),
                ("agentid", "1000002"),
                ("secret", MAIN_SECRET),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    // Not a form at all.
    let r = env
        .browser
        .send(
            reqwest::Client::new()
                .post(env.browser.url("/console/setup/2"))
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Oversized body.
    let big = "x".repeat(300 * 1024);
    let r = env
        .browser
        .post("/console/setup/2", &[("csrf", &csrf), ("corpid", &big)])
        .await;
    assert_eq!(r.status, 413);
    // Unknown step, unknown tenant host, no session.
    assert_eq!(env.browser.get("/console/setup/9").await.status, 404);
    let stranger = Browser::new(env.bridge.addr, "nobody.example.com");
    let r = stranger.get("/console").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("nobody.example.com"));
    let anon = Browser::new(env.bridge.addr, &env.domain);
    let r = anon.get("/console/setup/2").await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some("/console/login?next=%2Fconsole%2Fsetup%2F2"))
    );
    // A login form without its CSRF cookie.
    let r = anon
        .post(
            "/console/login",
            &[
                ("csrf", "x"),
                ("username", "admin"),
                ("password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    // Wrong password: 401, audited, no session.
    let r = anon.login("admin", "wrong password").await;
    assert_eq!(r.status, 401);
    assert!(anon.get("/console").await.status == 303);

    assert!(
        store.main_integration(t.id).await.unwrap().is_none(),
        "nothing saved"
    );
    let audit_after = store.list_audit(t.id, 100, None).await.unwrap();
    assert_eq!(audit_after.len(), audit_before + 1);
    assert_eq!(audit_after[0].action, "admin.login_failed");
    let _ = csrf;
}

#[tokio::test]
async fn sessions_are_bound_to_their_tenant_and_end_on_logout() {
    let env = start(&bridge::testing::sqlite_url(), Edition::Professional).await;
    env.admin_login().await;
    // Another tenant on another domain: the cookie is worthless there.
    let other = bridge::operator::create_tenant(
        &env.bridge.state.store,
        "other",
        "Other",
        Edition::Professional,
        Some("other.localhost"),
    )
    .await
    .unwrap();
    assert_eq!(env.browser.get("/console").await.status, 200);
    let replayed = env.browser.with_cookies_for("other.localhost");
    let r = replayed.get("/console").await;
    assert_eq!(r.status, 303, "a session is valid only on its own tenant");
    // Refused there without ending it (issue 19 item 11: another tenant's host must not
    // be able to sign an admin out); it still works on its own tenant.
    assert_eq!(env.browser.get("/console").await.status, 200);
    assert_eq!(other.username, "admin");

    let r = env.browser.login("admin", NEW_PASSWORD).await;
    assert_eq!(r.status, 303);
    let csrf = env.browser.get("/console").await.hidden("csrf").unwrap();
    let r = env
        .browser
        .post("/console/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(env.browser.get("/console").await.status, 303, "signed out");
}

#[tokio::test]
async fn the_language_choice_sticks() {
    let env = start(&bridge::testing::sqlite_url(), Edition::Professional).await;
    env.admin_login().await;
    assert!(env
        .browser
        .get("/console/setup/1")
        .await
        .body
        .contains("检查版本"));
    assert!(env
        .browser
        .get("/console/setup/1?lang=en")
        .await
        .body
        .contains("Edition check"));
    let next = env.browser.get("/console/setup/2").await;
    assert!(
        next.body.contains("Verify and save"),
        "English without ?lang="
    );
    assert!(env
        .browser
        .get("/console?lang=zh")
        .await
        .body
        .contains("概览"));
    assert!(env
        .browser
        .get("/console/setup/1")
        .await
        .body
        .contains("检查版本"));
}

#[test]
fn log_level_variable_is_not_a_setting() {
    std::env::set_var("WECOM_BRIDGE_LOG", "debug");
    assert!(bridge::config::Config::load(None).is_ok());
}
