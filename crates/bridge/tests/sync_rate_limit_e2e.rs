//! WeCom's rate limits (wecom-api.md §16) against a full sync, on SQLite and (with
//! TEST_DATABASE_URL) PostgreSQL. The simulator's per-corp, per-API limit is turned down
//! and the client paces itself under the same numbers on the simulator's own clock
//! ([`SimClock`]): a wait moves that clock instead of sleeping, so a sync that needs four
//! minute windows takes milliseconds.

mod common;
mod sync_support;

use bridge::domain::directory::{RunStatus, Trigger};
use bridge::store::StoreCallBudget;
use bridge::sync::{run_full, spawn_full, RunOutcome, SyncOptions};
use bridge::testing::{database_urls, stores};
use serde_json::json;
use std::time::{Duration, Instant};
use sync_support::*;
use wecom::pace::{CallBudget, Lease, RateLimits};

fn ep(o: &RunOutcome, endpoint: &str) -> bridge::domain::directory::EndpointCalls {
    o.report
        .api_calls
        .get(endpoint)
        .copied()
        .unwrap_or_default()
}

/// 25 more departments under department 2 (in the main app's scope): 28 user/list calls.
async fn grow(t: &T) {
    for i in 0..25 {
        t.sim(
            "POST",
            "/departments",
            json!({"id": 100 + i, "name": format!("小组{i}"), "parentid": 2}),
        )
        .await;
    }
}

#[tokio::test]
async fn an_org_bigger_than_the_minute_limit_syncs_without_a_45009() {
    for db in database_urls().await {
        let t = setup(&db).await;
        grow(&t).await;
        t.env
            .sim_admin("PATCH", "/settings", json!({"per_corp_api_per_min": 10}))
            .await;
        let limits = RateLimits {
            per_min: 10,
            per_hour: 150_000,
        };
        let (st, clock) = t.paced(limits);
        let o = run_full(&st, &t.tenant, SyncOptions::new(Trigger::Console, "t"))
            .await
            .unwrap();
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        let ul = ep(&o, "user/list");
        // 28 departments at 10 a minute (the whole minute limit, counted 3 s longer
        // than WeCom counts it): 10 + 10 + 8, at least two waits, no 45009. Concurrent
        // calls that reach a closed window together each count a wait, so on a loaded
        // machine the count can exceed two; the minutes slept below pin the pacing itself.
        assert_eq!((ul.calls, ul.retries, ul.errors), (28, 0, 0), "{ul:?}");
        assert!(ul.rate_waits >= 2, "{ul:?}");
        assert!(ul.rate_wait_ms >= 2 * 50_000, "{ul:?}");
        // 2, 3 and the 25 new ones, and the tag's department 5.
        assert_eq!(t.active_departments().await.len(), 28);
        let minutes = clock.slept_ms() / 60_000;
        assert!((2..=3).contains(&minutes), "slept {} ms", clock.slept_ms());

        // A second sync right after the first finds the minute spent: it waits, it
        // does not fail.
        let again = run_full(&st, &t.tenant, SyncOptions::new(Trigger::Console, "t"))
            .await
            .unwrap();
        assert_eq!(again.status, RunStatus::Succeeded, "{:?}", again.message);
        let ul = ep(&again, "user/list");
        assert_eq!((ul.calls, ul.errors), (28, 0), "{ul:?}");
        assert!(ul.rate_waits >= 3, "{ul:?}");
        let runs = t
            .st()
            .store
            .list_sync_runs(t.tenant.id, None, 10)
            .await
            .unwrap();
        assert_eq!(runs.len(), 2);
        assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded));
        let sim_counters = t.env.sim_admin("GET", "/counters", json!({})).await;
        assert_eq!(sim_counters["counters"]["user/list"], 56);
    }
}

#[tokio::test]
async fn a_45009_mid_run_waits_for_the_window_and_resumes() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let (st, clock) = t.paced(RateLimits::WECOM);
        t.env
            .sim_admin(
                "POST",
                "/faults",
                json!({"path": "user/list", "errcode": 45009, "count": 1}),
            )
            .await;
        let started = Instant::now();
        let o = run_full(&st, &t.tenant, SyncOptions::new(Trigger::Console, "t"))
            .await
            .unwrap();
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        let ul = ep(&o, "user/list");
        assert_eq!((ul.retries, ul.errors), (1, 1), "{ul:?}");
        // The minute window and the guard, on the simulator's clock only.
        assert!(ul.rate_wait_ms >= 60_000, "{ul:?}");
        assert!(clock.slept_ms() >= 60_000);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(
            t.userids().await,
            ["lisi", "qianba", "wangwu", "zhangsan", "zhaoliu"]
        );
        // The block is in the store, for every instance.
        let blocks = dump(
            &t.st().store,
            "SELECT budget_key FROM wecom_call_blocks ORDER BY budget_key",
        )
        .await;
        assert!(blocks.contains("/user/list"), "{blocks}");
    }
}

#[tokio::test]
async fn a_waiting_run_says_so_in_its_progress() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let csrf = t.env.admin_login().await;
        assert!(!csrf.is_empty());
        let (st, clock) = t.paced(RateLimits::WECOM);
        clock.hold();
        t.env
            .sim_admin(
                "POST",
                "/faults",
                json!({"path": "user/list", "errcode": 45009, "count": 1}),
            )
            .await;
        let id = spawn_full(&st, &t.tenant, SyncOptions::new(Trigger::Console, "t"))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let secs = loop {
            let r = t
                .st()
                .store
                .sync_run(t.tenant.id, id)
                .await
                .unwrap()
                .unwrap();
            if let Some(s) = r.rate_wait_secs {
                break s;
            }
            assert!(Instant::now() < deadline, "the run never reported a wait");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The block: the minute window and the pacer's 3 s guard.
        assert!((55..=63).contains(&secs), "{secs}");
        let p = t
            .env
            .browser
            .get(&format!("/console/sync/runs/{id}/progress"))
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
        let note = v["note"].as_str().unwrap_or_default();
        assert!(
            note.contains(&format!("{secs}")) || note.contains(&format!("{}", secs - 1)),
            "{v}"
        );
        assert!(
            note.contains("WeCom's rate limit") || note.contains("频率限制"),
            "{v}"
        );
        let page = t.env.browser.get(&format!("/console/sync/runs/{id}")).await;
        assert!(
            page.body.contains("data-testid=\"rate-wait\""),
            "{}",
            page.body
        );
        assert!(page.body.contains(note), "{}", page.body);

        clock.release();
        let deadline = Instant::now() + Duration::from_secs(20);
        let r = loop {
            let r = t
                .st()
                .store
                .sync_run(t.tenant.id, id)
                .await
                .unwrap()
                .unwrap();
            if r.status != RunStatus::Running {
                break r;
            }
            assert!(Instant::now() < deadline, "the run never finished");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.error);
        assert_eq!(r.rate_wait_secs, None);
        t.settle().await;
    }
}

#[tokio::test]
async fn the_budget_is_one_for_every_instance() {
    let limits = RateLimits {
        per_min: 10,
        per_hour: 20,
    };
    for store in stores().await {
        // Two instances' budgets over one database.
        let a = StoreCallBudget::new(store.clone());
        let b = StoreCallBudget::new(store.clone());
        let t0 = 1_800_000_000_000u64;
        assert_eq!(
            a.take("corp/user/list", 5, t0, limits).await,
            Ok(Lease::Granted(5))
        );
        assert_eq!(
            b.take("corp/user/list", 9, t0, limits).await,
            Ok(Lease::Granted(5))
        );
        // Spent for the minute: the next call waits until the first second stops counting
        // (60 s and the 3 s guard).
        let wait = b.take("corp/user/list", 1, t0 + 1_500, limits).await;
        assert_eq!(wait, Ok(Lease::WaitUntil(t0 + 63_000)));
        // Another API of the same corp has its own budget.
        assert_eq!(
            a.take("corp/tag/get", 1, t0, limits).await,
            Ok(Lease::Granted(1))
        );
        // Unspent calls given back are free again.
        a.give_back("corp/user/list", 3, t0).await;
        assert_eq!(
            b.take("corp/user/list", 9, t0 + 1_500, limits).await,
            Ok(Lease::Granted(3))
        );
        // A minute and the guard after the last grant (t0 + 1 s) the minute is free, but
        // the hour (19 with its margin, 10 spent) has 9 left; then it is spent until the
        // first second stops counting in the hour.
        assert_eq!(
            a.take("corp/user/list", 50, t0 + 64_000, limits).await,
            Ok(Lease::Granted(9))
        );
        assert_eq!(
            a.take("corp/user/list", 1, t0 + 126_000, limits).await,
            Ok(Lease::WaitUntil(t0 + 3_603_000))
        );
        // A 45009 seen by one instance stops the other; a later block wins.
        a.block("corp/tag/get", t0 + 30_000).await;
        b.block("corp/tag/get", t0 + 20_000).await;
        assert_eq!(
            b.take("corp/tag/get", 1, t0 + 10_000, limits).await,
            Ok(Lease::WaitUntil(t0 + 30_000))
        );
        assert_eq!(
            b.take("corp/tag/get", 1, t0 + 30_000, limits).await,
            Ok(Lease::Granted(1))
        );
        store.close().await;
    }
}
