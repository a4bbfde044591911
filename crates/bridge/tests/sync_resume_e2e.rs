//! Resumable full syncs (issue 20), on SQLite and (with TEST_DATABASE_URL) PostgreSQL.
//! The simulator's per-minute limit is turned down below what one sync needs and the
//! bridge may not wait for it, so the run stops half way on a 45009 (as it would on a
//! WeCom outage). The next run, once the window has passed, reads from WeCom only the
//! departments the first did not save, and ends with the same directory as a run that
//! was never interrupted. Waits move the simulator's clock ([`T::paced`]); nothing sleeps.

mod common;
mod sync_support;

use bridge::app::AppState;
use bridge::domain::directory::{RunStatus, Trigger};
use bridge::sync::{run_full, RunOutcome, SyncOptions};
use bridge::testing::{database_urls, postgres_url, sqlite_url};
use serde_json::json;
use std::sync::Arc;
use sync_support::*;
use wecom::pace::RateLimits;

fn user_list_calls(o: &RunOutcome) -> u64 {
    o.report
        .api_calls
        .get("user/list")
        .map(|e| e.calls)
        .unwrap_or_default()
}

/// Departments read: user/list calls less those refused by the rate limit and retried.
fn user_list_reads(o: &RunOutcome) -> u64 {
    o.report
        .api_calls
        .get("user/list")
        .map(|e| e.calls - e.retries)
        .unwrap_or_default()
}

/// 25 more departments with a member each under department 2: 28 user/list calls.
async fn grow(t: &T) {
    for i in 0..25 {
        t.sim(
            "POST",
            "/departments",
            json!({"id": 100 + i, "name": format!("小组{i}"), "parentid": 2}),
        )
        .await;
        t.sim(
            "POST",
            "/members",
            json!({"userid": format!("member{i}"), "name": format!("成员{i}"), "departments": [100 + i]}),
        )
        .await;
    }
}

/// The grown org with the simulator's minute limit at 12 (a sync needs 28 user/list
/// calls), and two states of the bridge paced on the simulator's clock for WeCom's real
/// limits: one that waits for a window, and one that may not wait, so the lowered limit
/// stops its run with 45009 part way through the departments.
async fn limited(db: &str) -> (T, AppState, AppState) {
    let t = setup(db).await;
    grow(&t).await;
    t.env
        .sim_admin("PATCH", "/settings", json!({"per_corp_api_per_min": 12}))
        .await;
    let (paced, _) = t.paced(RateLimits {
        per_min: 10_000,
        per_hour: 150_000,
    });
    let mut cfg = (*paced.cfg).clone();
    cfg.sync_max_rate_wait_secs = 0;
    let mut impatient = paced.clone();
    impatient.cfg = Arc::new(cfg);
    (t, paced, impatient)
}

/// The directory without internal ids or times: equal for equal directories.
async fn directory(t: &T) -> String {
    let mut out = Vec::new();
    for sql in [
        "SELECT i.external_id, u.name, u.status, u.disabled_reason, u.position, u.main_department, u.wecom_status
         FROM users u JOIN user_identities i ON i.user_id = u.id ORDER BY i.external_id",
        "SELECT i.external_id, m.department_id, m.sort_order, m.is_leader FROM user_departments m
         JOIN user_identities i ON i.user_id = m.user_id ORDER BY i.external_id, m.department_id",
        "SELECT id, parent_id, name, active FROM departments ORDER BY id",
        "SELECT id, name, active FROM tags ORDER BY id",
        "SELECT t.tag_id, i.external_id FROM tag_users t JOIN user_identities i ON i.user_id = t.user_id
         ORDER BY t.tag_id, i.external_id",
    ] {
        out.push(dump(&t.st().store, sql).await);
    }
    out.join("\n")
}

#[tokio::test]
async fn a_run_stopped_half_way_resumes_from_its_checkpoint_and_ends_the_same() {
    for db in database_urls().await {
        // The reference: the same org synced in one go.
        let reference = {
            let fresh = if db.starts_with("sqlite") {
                sqlite_url()
            } else {
                postgres_url().await.unwrap()
            };
            let r = setup(&fresh).await;
            grow(&r).await;
            let o = r.sync().await;
            assert_eq!(o.status, RunStatus::Succeeded);
            assert_eq!(user_list_calls(&o), 28);
            assert!(o.report.resumed.is_none());
            directory(&r).await
        };

        let (t, paced, impatient) = limited(&db).await;
        let before = directory(&t).await;
        let first = run_full(
            &impatient,
            &t.tenant,
            SyncOptions::new(Trigger::Console, "t"),
        )
        .await;
        assert!(first.is_err(), "the first run should stop on the limit");
        assert_eq!(
            directory(&t).await,
            before,
            "a stopped run changed the directory"
        );
        let runs = t
            .st()
            .store
            .list_sync_runs(t.tenant.id, None, 10)
            .await
            .unwrap();
        let stopped = runs.iter().find(|r| r.trigger == Trigger::Console).unwrap();
        assert_eq!(stopped.status, RunStatus::Failed);
        assert!(
            stopped.error.as_deref().unwrap_or("").contains("45009"),
            "{:?}",
            stopped.error
        );
        let saved = t
            .st()
            .store
            .checkpoint_index(t.tenant.id, 0)
            .await
            .unwrap()
            .iter()
            .filter(|(k, _, run)| k == "dept_members" && *run == stopped.id)
            .count() as u64;
        assert!((4..28).contains(&saved), "saved {saved} of 28 departments");
        // The console says the next run resumes, and until when.
        t.env.admin_login().await;
        let page = t.env.browser.get("/console/sync?lang=en").await;
        assert!(
            page.body.contains(&format!(
                "The last sync stopped after reading {saved} departments and"
            )),
            "{}",
            page.body
        );

        // Another stopped run saved a department that is out of scope now: not used, so
        // the report does not name that run.
        let other = t
            .st()
            .store
            .create_sync_run(&bridge::store::NewSyncRun {
                tenant_id: t.tenant.id,
                trigger: Trigger::Cli,
                kind: bridge::domain::directory::RunKind::Full,
                actor: "t".into(),
                forced: false,
            })
            .await
            .unwrap();
        t.st()
            .store
            .put_checkpoints(
                t.tenant.id,
                &[bridge::store::CheckpointItem {
                    kind: "dept_members",
                    item_id: 987_654,
                    run_id: other,
                    read_at: t.st().clock.now_ms(),
                    body: "[]".into(),
                }],
            )
            .await
            .unwrap();

        // The window passes (no real time: the simulator's clock moves), WeCom answers
        // again at its usual limit, and the next run reads only what was not saved.
        t.env
            .sim_admin(
                "PATCH",
                "/settings",
                json!({"per_corp_api_per_min": 10_000}),
            )
            .await;
        t.env
            .sim_admin("POST", "/clock/advance", json!({"secs": 61}))
            .await;
        let second = t.sync_on(&paced).await;
        assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.message);
        let resumed = second.report.resumed.clone().expect("the run resumed");
        assert_eq!(resumed.from_runs, vec![stopped.id]);
        assert_eq!(resumed.departments, saved);
        assert_eq!(user_list_calls(&second), 28 - saved);
        assert_eq!(directory(&t).await, reference);
        assert!(second.report.bound.is_some_and(|b| b.departments == 28));

        // A succeeded run forgets the checkpoint: the next reads everything again.
        let page = t.env.browser.get("/console/sync?lang=en").await;
        assert!(!page.body.contains("data-testid=\"resumable\""));
        assert!(t
            .st()
            .store
            .checkpoint_index(t.tenant.id, 0)
            .await
            .unwrap()
            .is_empty());
        t.env
            .sim_admin("POST", "/clock/advance", json!({"secs": 61}))
            .await;
        let third = t.sync_on(&paced).await;
        assert_eq!(third.status, RunStatus::Succeeded, "{:?}", third.message);
        assert!(third.report.resumed.is_none());
        assert_eq!(user_list_calls(&third), 28);
        assert_eq!(directory(&t).await, reference);
    }
}

#[tokio::test]
async fn a_checkpoint_older_than_an_hour_or_overtaken_by_callbacks_is_not_reused() {
    for db in database_urls().await {
        let (t, paced, impatient) = limited(&db).await;
        assert!(run_full(
            &impatient,
            &t.tenant,
            SyncOptions::new(Trigger::Console, "t")
        )
        .await
        .is_err());
        let store = &t.st().store;
        let index = store.checkpoint_index(t.tenant.id, 0).await.unwrap();
        assert!(!index.is_empty());

        // An hour later WeCom's answers are read again: the checkpoint is too old.
        t.st().clock.advance(std::time::Duration::from_millis(
            bridge::sync::checkpoint::MAX_AGE_MS as u64 + 1,
        ));
        t.env
            .sim_admin("POST", "/clock/advance", json!({"secs": 3_601}))
            .await;
        let o = t.sync_on(&paced).await;
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        assert!(o.report.resumed.is_none());
        assert_eq!(user_list_reads(&o), 28);

        // Stopped again; then callbacks are applied meanwhile: the checkpoint is forgotten.
        t.env
            .sim_admin("PATCH", "/settings", json!({"per_corp_api_per_min": 12}))
            .await;
        t.env
            .sim_admin("POST", "/clock/advance", json!({"secs": 61}))
            .await;
        assert!(run_full(
            &impatient,
            &t.tenant,
            SyncOptions::new(Trigger::Console, "t")
        )
        .await
        .is_err());
        assert!(!store
            .checkpoint_index(t.tenant.id, 0)
            .await
            .unwrap()
            .is_empty());
        // Callbacks applied since: the checkpoint is forgotten. (Under the tenant's lock,
        // as a real run: a record running with the lock free is ended as a crash's.)
        let lock = bridge::sync::lock::acquire(store, t.tenant.id, true)
            .await
            .unwrap()
            .unwrap();
        let run = store
            .create_sync_run(&bridge::store::NewSyncRun {
                tenant_id: t.tenant.id,
                trigger: Trigger::Callback,
                kind: bridge::domain::directory::RunKind::Incremental,
                actor: "callback".into(),
                forced: false,
            })
            .await
            .unwrap();
        store
            .finish_sync_run(
                run,
                &bridge::store::SyncRunFinish {
                    status: RunStatus::Failed,
                    users_added: 0,
                    users_updated: 1,
                    users_disabled: 0,
                    users_moved: 0,
                    api_calls: 1,
                    api_calls_json: "{}".into(),
                    report_json: None,
                    error: Some("one callback failed".into()),
                },
            )
            .await
            .unwrap();
        lock.release().await;
        assert!(store
            .checkpoint_index(t.tenant.id, 0)
            .await
            .unwrap()
            .is_empty());
        t.env
            .sim_admin("POST", "/clock/advance", json!({"secs": 61}))
            .await;
        let o = t.sync_on(&paced).await;
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        assert!(o.report.resumed.is_none());
        assert_eq!(user_list_reads(&o), 28);
    }
}
