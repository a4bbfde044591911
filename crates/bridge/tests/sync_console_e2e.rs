//! The console's Sync page and the `wecom-bridge sync` command, end to end: wizard step 4
//! links to the page, a dry run and a sync from the page with the progress endpoint, the
//! guard's confirmation button, the history; the CLI with its exit codes.

mod common;
mod sync_support;

use bridge::domain::directory::{RunKind, RunStatus, Trigger};
use bridge::testing::database_urls;
use serde_json::json;
use sync_support::*;

async fn wait_run(t: &T, location: &str) -> serde_json::Value {
    loop {
        let p = t.env.browser.get(&format!("{location}/progress")).await;
        assert_eq!(p.status, 200, "{}", p.body);
        let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
        if v["finished"] == true {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sync_page_dry_run_sync_and_confirmation() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let csrf = t.env.admin_login().await;
        let step4 = t.env.browser.get("/console/setup/4").await;
        assert!(
            step4.body.contains("href=\"/console/sync?from=wizard\""),
            "{}",
            step4.body
        );
        let page = t.env.browser.get("/console/sync?from=wizard").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("data-testid=\"dry-run\""));
        assert!(page.body.contains("name=\"trigger\" value=\"wizard\""));

        // Forms need the console's CSRF token.
        let r = t
            .env
            .browser
            .post("/console/sync/run", &[("dry_run", "1")])
            .await;
        assert_eq!(r.status, 403);

        let r = t
            .env
            .browser
            .post(
                "/console/sync/run",
                &[("csrf", &csrf), ("dry_run", "1"), ("trigger", "wizard")],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let run = r.location.unwrap();
        assert!(run.starts_with("/console/sync/runs/"));
        let done = wait_run(&t, &run).await;
        assert_eq!(done["status"], "succeeded");
        let report = t.env.browser.get(&run).await;
        assert!(
            report.body.contains("nothing was changed") || report.body.contains("未做任何修改")
        );
        assert!(report.body.contains("data-testid=\"api-calls\""));
        assert!(report.body.contains("<code>user/list</code>"));
        assert!(
            report.body.contains("data-testid=\"withheld\""),
            "post-2022 app: mobile withheld"
        );
        assert!(report.body.contains("<code>zhangsan</code>"));
        assert!(t.userids().await.is_empty(), "a dry run applies nothing");
        // Not a dead end: its page offers to apply the changes (a real sync, same trigger),
        // and the history marks its counts as a preview.
        assert!(
            report.body.contains("data-testid=\"apply-changes\""),
            "{}",
            report.body
        );
        assert!(report.body.contains("name=\"trigger\" value=\"wizard\""));
        let history = t.env.browser.get("/console/sync").await;
        assert_eq!(
            history.body.matches("data-testid=\"dry-counts\"").count(),
            1
        );

        let r = t
            .env
            .browser
            .post("/console/sync/run", &[("csrf", &csrf)])
            .await;
        let run = r.location.unwrap();
        assert_eq!(wait_run(&t, &run).await["status"], "succeeded");
        assert_eq!(t.userids().await.len(), 5);
        let real = t.env.browser.get(&run).await;
        assert!(
            !real.body.contains("apply-changes"),
            "a real run offers nothing to apply"
        );

        // The guard stops a sync that would disable 2 of 5; the page offers the confirmation.
        t.scope(json!({"users": ["qianba"], "tags": [1]})).await;
        let r = t
            .env
            .browser
            .post("/console/sync/run", &[("csrf", &csrf)])
            .await;
        let run = r.location.unwrap();
        assert_eq!(wait_run(&t, &run).await["status"], "blocked");
        let page = t.env.browser.get(&run).await;
        assert!(
            page.body.contains("data-testid=\"confirm-sync\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("name=\"force\" value=\"1\""));
        assert_eq!(t.userids().await.len(), 5);
        let r = t
            .env
            .browser
            .post("/console/sync/run", &[("csrf", &csrf), ("force", "1")])
            .await;
        let run = r.location.unwrap();
        assert_eq!(wait_run(&t, &run).await["status"], "succeeded");
        assert_eq!(t.userids().await.len(), 3);

        let history = t.env.browser.get("/console/sync").await;
        assert_eq!(history.body.matches("data-status=").count(), 4);
        let runs = t
            .st()
            .store
            .list_sync_runs(t.tenant.id, None, 10)
            .await
            .unwrap();
        assert_eq!(runs.last().unwrap().trigger, Trigger::Wizard);
        assert_eq!(runs.last().unwrap().kind, RunKind::DryRun);
        assert!(runs[0].forced);

        // The policy form.
        let r = t
            .env
            .browser
            .post(
                "/console/sync/policy",
                &[
                    ("csrf", &csrf),
                    ("new_user_status", "authorized"),
                    ("max_disable_percent", "5"),
                    ("reconcile_minutes", "30"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let p = t.st().store.directory_policy(t.tenant.id).await.unwrap();
        assert_eq!(
            (p.max_disable_permille, p.reconcile_interval_secs),
            (50, 1800)
        );
        let r = t
            .env
            .browser
            .post(
                "/console/sync/policy",
                &[
                    ("csrf", &csrf),
                    ("new_user_status", "disabled"),
                    ("max_disable_percent", "5"),
                    ("reconcile_minutes", "30"),
                ],
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(
            r.body
                .contains(r#"<select name="new_user_status" aria-invalid="true""#),
            "the refused field is marked: {}",
            r.body
        );
        // A value that is not a number: refused by name, and what was typed stays.
        let r = t
            .env
            .browser
            .post(
                "/console/sync/policy",
                &[
                    ("csrf", &csrf),
                    ("new_user_status", "authorized"),
                    ("max_disable_percent", "five"),
                    ("reconcile_minutes", "45"),
                ],
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            r.body.contains(r#"value="five" aria-invalid="true""#),
            "{}",
            r.body
        );
        assert!(
            r.body.contains(r#"value="45""#),
            "the other fields keep their values"
        );
        assert!(r.body.contains("0 到 100") || r.body.contains("from 0 to 100"));
        let p = t.st().store.directory_policy(t.tenant.id).await.unwrap();
        assert_eq!(
            (p.max_disable_permille, p.reconcile_interval_secs),
            (50, 1800),
            "a refused form changes nothing"
        );
    }
}

// The CLI is another process talking to the in-process simulator: keep a runtime
// thread free for the simulator while the test waits for the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sync_dry_run_guard_and_force() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let (db_url, data_dir, api) = (
            t.env.database_url.clone(),
            t.env.data_dir.clone(),
            t.env.sim.api_base(),
        );
        let cli = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let (db_url, data_dir, api) = (db_url.clone(), data_dir.clone(), api.clone());
            async move {
                tokio::task::spawn_blocking(move || {
                    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wecom-bridge"))
                        .args(&args)
                        .env("WECOM_BRIDGE_DATABASE_URL", db_url)
                        .env("WECOM_BRIDGE_DATA_DIR", data_dir)
                        .env("WECOM_BRIDGE_WECOM_API_BASE", api)
                        .output()
                        .unwrap();
                    (
                        out.status.code(),
                        String::from_utf8_lossy(&out.stdout).to_string(),
                        String::from_utf8_lossy(&out.stderr).to_string(),
                    )
                })
                .await
                .unwrap()
            }
        };
        let (code, out, err) = cli(&["sync", "--tenant", "default", "--dry-run"]).await;
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("dry run"), "{out}");
        assert!(out.contains("users added                   6"), "{out}");
        assert!(out.contains("lower bound C_min"), "{out}");
        let (code, out, _) = cli(&["sync", "--tenant", "default"]).await;
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(t.userids().await.len(), 5);
        t.scope(json!({"users": ["qianba"], "tags": [1]})).await;
        let (code, out, _) = cli(&["sync", "--tenant", "default"]).await;
        assert_eq!(code, Some(3), "{out}");
        assert!(out.contains("would disable 2 of 5"), "{out}");
        let (code, out, _) = cli(&["sync", "--tenant", "default", "--force"]).await;
        assert_eq!(code, Some(0), "{out}");
        let runs = t
            .st()
            .store
            .list_sync_runs(t.tenant.id, None, 10)
            .await
            .unwrap();
        assert!(runs.iter().all(|r| r.trigger == Trigger::Cli));
        assert_eq!(runs[1].status, RunStatus::Blocked);
        let (code, _, err) = cli(&["sync", "--tenant", "nope"]).await;
        assert_eq!(code, Some(2), "{err}");
    }
}

/// The policy form shows what one full reconcile costs (from the last full sync's calls)
/// and refuses an interval that would use up WeCom's hourly budget for the busiest API.
#[tokio::test]
async fn the_policy_shows_a_reconciles_cost_and_refuses_an_interval_over_the_hourly_limit() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let csrf = t.env.admin_login().await;
        let page = t.env.browser.get("/console/sync").await;
        assert!(
            !page.body.contains("reconcile-cost"),
            "nothing measured yet"
        );
        // 1,300 more departments in the app's scope: about one user/list call each.
        for i in 0..1300u32 {
            t.sim(
                "POST",
                "/departments",
                json!({"id": 10_000 + i, "name": format!("小组{i}"), "parentid": 3}),
            )
            .await;
        }
        let o = t.sync().await;
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        let user_list = o.report.api_calls["user/list"].calls;
        assert!(user_list > 1250, "{user_list}");
        let page = t.env.browser.get("/console/sync").await;
        let attr = |name: &str| -> i64 {
            let (_, rest) = page.body.split_once(&format!("{name}=\"")).unwrap();
            rest[..rest.find('"').unwrap()].parse().unwrap()
        };
        let total: u64 = o.report.api_calls.values().map(|c| c.calls).sum();
        assert_eq!(attr("data-calls"), total as i64);
        // Half of 150,000 calls an hour for user/list: at least user_list * 3600 / 75,000 s.
        let min = attr("data-min-interval");
        assert_eq!(min, (user_list * 3600).div_ceil(75_000).div_ceil(60) as i64);
        assert!(min >= 2);
        let save = |minutes: String| {
            let csrf = csrf.clone();
            let t = &t;
            async move {
                t.env
                    .browser
                    .post(
                        "/console/sync/policy",
                        &[
                            ("csrf", csrf.as_str()),
                            ("new_user_status", "unauthorized"),
                            ("max_disable_percent", "20"),
                            ("reconcile_minutes", minutes.as_str()),
                        ],
                    )
                    .await
            }
        };
        let r = save((min - 1).to_string()).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            r.body.contains(&format!(
                r#"name="reconcile_minutes" inputmode="numeric" value="{}" aria-invalid="true""#,
                min - 1
            )),
            "the interval typed stays, marked: {}",
            r.body
        );
        assert!(
            r.body.contains(&format!("{min}")),
            "names the shortest interval"
        );
        let r = save(min.to_string()).await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(save("0".into()).await.status, 303, "off is always allowed");
    }
}

/// Issue 17, "Progress": a running sync can be cancelled from its page. It stops before
/// it applies anything (the directory stays as it was), reads "cancelled" with who asked,
/// is audited, and the next sync runs normally. A finished run cannot be cancelled.
#[tokio::test]
async fn a_running_sync_is_cancelled_and_changes_nothing() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let csrf = t.env.admin_login().await;
        let b = &t.env.browser;
        // WeCom answers slowly, so the run is still reading when the admin cancels.
        t.env
            .sim_admin(
                "POST",
                "/latencies",
                json!({"path": "user/list", "ms": 400}),
            )
            .await;
        let r = b.post("/console/sync/run", &[("csrf", &csrf)]).await;
        let run = r.location.unwrap();
        let page = b.get(&run).await;
        assert!(
            page.body.contains("data-testid=\"cancel-sync\""),
            "{}",
            page.body
        );
        let r = b.post(&format!("{run}/cancel"), &[("csrf", &csrf)]).await;
        assert_eq!((r.status, r.location.as_deref()), (303, Some(run.as_str())));
        let done = tokio::time::timeout(std::time::Duration::from_secs(30), wait_run(&t, &run))
            .await
            .expect("the run stops");
        assert_eq!(done["status"], "cancelled", "{done}");
        let st = t.st();
        let (_, users) = st
            .store
            .list_users(t.tenant.id, &Default::default())
            .await
            .unwrap();
        assert_eq!(users, 0, "nothing was applied");
        let page = b.get(&run).await.body;
        assert!(page.contains("已取消"), "{page}");
        assert!(page.contains("未做任何修改"));
        let audit = st.store.list_audit(t.tenant.id, 50, None).await.unwrap();
        assert!(audit.iter().any(|e| e.action == "directory.sync.cancel"));

        // The lock is free again: the next sync runs to the end; cancelling it afterwards
        // changes nothing, and an unknown run is a 404.
        t.env.sim_admin("DELETE", "/latencies", json!({})).await;
        let r = b.post("/console/sync/run", &[("csrf", &csrf)]).await;
        let next = r.location.unwrap();
        assert_eq!(wait_run(&t, &next).await["status"], "succeeded");
        assert_eq!(
            b.post(&format!("{next}/cancel"), &[("csrf", &csrf)])
                .await
                .status,
            303
        );
        assert_eq!(wait_run(&t, &next).await["status"], "succeeded");
        let missing = b
            .post("/console/sync/runs/999999/cancel", &[("csrf", &csrf)])
            .await;
        assert_eq!(missing.status, 404);
        let forged = b.post(&format!("{next}/cancel"), &[("csrf", "nope")]).await;
        assert_eq!(forged.status, 403);
        t.env.bridge.stop().await;
    }
}
