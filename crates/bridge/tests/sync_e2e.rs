//! Directory sync end to end against wecom-sim over HTTP, on SQLite and (with
//! TEST_DATABASE_URL) PostgreSQL: scopes, withheld fields, leavers, moves, deleted
//! departments, faults half-way, the mass-disable guard, dry runs, run records.
//!
//! The fixture's main app sees department 2 (so 2 and 3), tag 1 (member wangwu and
//! department 5) and member qianba: zhangsan, lisi, sunqi (disabled in WeCom), zhaoliu,
//! wangwu and qianba; not zhoujiu.

mod common;
mod sync_support;

use bridge::domain::directory::{CurrentDirectory, RunKind, RunStatus, Trigger};
use bridge::domain::user::{DisabledReason, UserStatus};
use bridge::sync::{run_full, RunOutcome, SyncOptions};
use bridge::testing::database_urls;
use serde_json::json;
use sync_support::*;
use wecom_sim::fixtures::MAIN_AGENTID;

/// First attempts of an endpoint. Retries are reported apart (§6): a test's simulator
/// may reuse the port of an earlier one whose token is still cached, costing one
/// refresh-and-retry.
fn calls(o: &RunOutcome, endpoint: &str) -> u64 {
    o.report
        .api_calls
        .get(endpoint)
        .map(|e| e.calls - e.retries)
        .unwrap_or(0)
}

fn total_calls(o: &RunOutcome) -> u64 {
    o.report
        .api_calls
        .values()
        .map(|e| e.calls - e.retries)
        .sum()
}

#[tokio::test]
async fn mixed_scope_full_sync_then_no_change_resync_writes_nothing() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let o = t.sync().await;
        assert_eq!(
            t.userids().await,
            ["lisi", "qianba", "wangwu", "zhangsan", "zhaoliu"]
        );
        // Disabled in WeCom (status 2): synced, but cannot sign in.
        assert_eq!(
            t.user("sunqi").await.map(|u| (u.0, u.1)),
            Some((UserStatus::Disabled, Some(DisabledReason::WecomDisabled)))
        );
        assert_eq!(t.user("zhoujiu").await, None, "outside the scope");
        let (status, _, _) = t.user("zhangsan").await.unwrap();
        assert_eq!(status, UserStatus::Unauthorized, "the default policy");
        // Department 2 and its subtree, plus the tag's department 5.
        assert_eq!(t.active_departments().await, [2, 3, 5]);
        let dir = t.dir().await;
        let zs = dir
            .users
            .iter()
            .find(|u| u.key.as_deref() == Some("zhangsan"))
            .unwrap();
        assert_eq!(zs.record.name, "张三");
        assert_eq!(
            zs.record
                .departments
                .iter()
                .map(|m| (m.department_id, m.is_leader))
                .collect::<Vec<_>>(),
            [(2, true), (3, false)]
        );
        let tag1 = &dir.tags[&1].record;
        assert_eq!(tag1.users.iter().collect::<Vec<_>>(), ["wangwu"]);
        assert_eq!(tag1.departments.iter().collect::<Vec<_>>(), [&5]);

        // The cheapest plan: D = 3, T = 2, U = 2 (qianba by name, wangwu by tag).
        let b = o.report.bound.unwrap();
        assert_eq!((b.departments, b.tags, b.loose_users), (3, 2, 2));
        assert_eq!(
            [
                calls(&o, "agent/get"),
                calls(&o, "department/list"),
                calls(&o, "user/list"),
                calls(&o, "tag/list"),
                calls(&o, "tag/get"),
                calls(&o, "user/get")
            ],
            [1, 1, 3, 1, 2, 2]
        );
        assert!(total_calls(&o) <= b.c_min(), "{:?}", o.report.api_calls);
        // A post-2022 app gets no mobile/email: reported, not guessed.
        assert!(o
            .report
            .withheld
            .iter()
            .any(|w| w.field == "mobile" && w.count == 6));

        assert_eq!(o.report.members_unchanged, 0, "nothing was stored");
        // PostgreSQL writes new members' rows during the fetch, in the apply's
        // transaction (issue 20); SQLite writes them in the apply.
        let pg = t.st().store.engine() == "postgres";
        assert_eq!(o.report.written_ahead, if pg { 6 } else { 0 });

        let before = t.snapshot().await;
        let again = t.sync().await;
        assert_eq!(again.report.diff.counts, Default::default());
        // Every answer matched the stored record: none was held whole (issue 20).
        assert_eq!(
            (again.report.members, again.report.members_unchanged),
            (o.report.members, o.report.members)
        );
        assert_eq!(
            t.snapshot().await,
            before,
            "a no-change re-sync writes nothing"
        );

        let runs = t
            .st()
            .store
            .list_sync_runs(t.tenant.id, None, 10)
            .await
            .unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].users_added, 6);
        assert!(runs.iter().all(|r| r.trigger == Trigger::Console
            && r.kind == RunKind::Full
            && r.status == RunStatus::Succeeded
            && r.api_calls > 0
            && r.finished_at.is_some()));
        assert!(runs[0].api_calls_json.contains("user/list"));
        let audit = t
            .st()
            .store
            .list_audit(t.tenant.id, 20, None)
            .await
            .unwrap();
        assert!(audit.iter().any(|a| a.action == "directory.sync"));
    }
}

#[tokio::test]
async fn scope_by_members_only_skips_department_calls() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.scope(json!({"users": ["lisi", "qianba"]})).await;
        let o = t.sync().await;
        assert_eq!(t.userids().await, ["lisi", "qianba"]);
        assert_eq!(t.active_departments().await, Vec::<i64>::new());
        assert_eq!(calls(&o, "department/list"), 0, "{:?}", o.report.api_calls);
        assert_eq!(calls(&o, "user/list"), 0);
        assert_eq!(calls(&o, "user/get"), 2);
        assert_eq!(
            total_calls(&o),
            o.report.bound.unwrap().c_min(),
            "{:?}",
            o.report.api_calls
        );
    }
}

#[tokio::test]
async fn scope_by_department_brings_its_subtree() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.scope(json!({"parties": [4]})).await;
        t.sync().await;
        assert_eq!(t.active_departments().await, [4, 5]);
        assert_eq!(t.userids().await, ["wangwu", "zhaoliu"]);
    }
}

#[tokio::test]
async fn scope_by_tags_brings_members_and_departments() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.scope(json!({"tags": [1]})).await;
        let o = t.sync().await;
        assert_eq!(t.active_departments().await, [5]);
        assert_eq!(t.userids().await, ["wangwu", "zhaoliu"]);
        let b = o.report.bound.unwrap();
        assert_eq!((b.departments, b.loose_users), (1, 1));
        assert_eq!(total_calls(&o), b.c_min());
    }
}

#[tokio::test]
async fn withheld_fields_keep_what_was_stored() {
    for db in database_urls().await {
        let t = setup(&db).await;
        // An app created before 2022-06-20 reads mobile and email.
        t.sim(
            "PATCH",
            &format!("/apps/{MAIN_AGENTID}"),
            json!({"post_2022": false}),
        )
        .await;
        let o = t.sync().await;
        assert!(o.report.withheld.iter().all(|w| w.field != "mobile"));
        let mobile = |d: &CurrentDirectory| {
            d.users
                .iter()
                .find(|u| u.key.as_deref() == Some("lisi"))
                .and_then(|u| u.record.mobile.clone())
        };
        let m = mobile(&t.dir().await);
        assert!(m.as_deref().is_some_and(|m| m.starts_with("138")), "{m:?}");
        // A new app withholds them: the report says so, the stored values stay.
        t.sim(
            "PATCH",
            &format!("/apps/{MAIN_AGENTID}"),
            json!({"post_2022": true}),
        )
        .await;
        let o = t.sync().await;
        let w = o
            .report
            .withheld
            .iter()
            .find(|w| w.field == "mobile")
            .unwrap();
        assert_eq!((w.count, w.total), (6, 6));
        assert_eq!(o.report.diff.counts, Default::default());
        assert_eq!(mobile(&t.dir().await), m);
    }
}

#[tokio::test]
async fn leaver_mover_and_deleted_department() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        let lisi = t.user("lisi").await.unwrap().2;
        add_session(&t.st().store, t.tenant.id, lisi, "s-lisi").await;
        t.sim("DELETE", "/members/lisi", json!({})).await;
        t.sim(
            "PATCH",
            "/members/zhangsan",
            json!({"departments": [{"id": 3, "leader": true}]}),
        )
        .await;
        t.sim("PATCH", "/members/zhaoliu", json!({"departments": [2]}))
            .await;
        t.sim("DELETE", "/departments/5", json!({})).await;
        let o = t.sync().await;
        let c = o.report.diff.counts;
        assert_eq!(
            (c.users_disabled, c.users_moved, c.departments_removed),
            (1, 2, 1)
        );
        // The two movers were compared whole, everyone else by fingerprint.
        assert_eq!(o.report.members_unchanged, o.report.members - 2);
        let (s, r, id) = t.user("lisi").await.unwrap();
        assert_eq!(
            (s, r, id),
            (UserStatus::Disabled, Some(DisabledReason::LeftScope), lisi)
        );
        assert!(
            !t.snapshot().await.contains("s-lisi"),
            "the leaver's session ended"
        );
        assert_eq!(t.active_departments().await, [2, 3]);
        let dir = t.dir().await;
        let zs = dir
            .users
            .iter()
            .find(|u| u.key.as_deref() == Some("zhangsan"))
            .unwrap();
        assert_eq!(
            zs.record
                .departments
                .iter()
                .map(|m| (m.department_id, m.is_leader))
                .collect::<Vec<_>>(),
            [(3, true)]
        );
        assert!(o.report.diff.moved.iter().any(|m| m.userid == "zhaoliu"
            && m.changes
                .iter()
                .any(|c| c.field == "departments" && c.old == "5*" && c.new == "2")));
        // The leaver is still there (business data keeps pointing at it), without memberships.
        let l = dir.users.iter().find(|u| u.id == lisi).unwrap();
        assert!(l.record.departments.is_empty());
    }
}

#[tokio::test]
async fn wecom_error_half_way_changes_nothing() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        t.sim("PATCH", "/members/zhangsan", json!({"position": "总监"}))
            .await;
        t.sim("DELETE", "/members/lisi", json!({})).await;
        // A new member: on PostgreSQL its rows are written during the fetch, in a
        // transaction the failure rolls back.
        t.sim(
            "POST",
            "/members",
            json!({"userid": "newbie", "name": "新人", "departments": [3]}),
        )
        .await;
        let before = t.snapshot().await;
        // user/get is the last step of the fetch: everything before it succeeded.
        t.env
            .sim_admin(
                "POST",
                "/faults",
                json!({"path": "user/get", "errcode": 48002, "count": 1}),
            )
            .await;
        let o = run_full(
            t.st(),
            &t.tenant,
            SyncOptions::new(Trigger::Console, "admin:test"),
        )
        .await;
        assert!(o.is_err());
        assert_eq!(t.snapshot().await, before);
        // This test's run (the console's): the background task may have started another.
        let runs = t
            .st()
            .store
            .list_sync_runs(t.tenant.id, None, 10)
            .await
            .unwrap();
        let run = runs
            .iter()
            .find(|r| r.trigger == Trigger::Console)
            .expect("the console's run");
        assert_eq!(run.status, RunStatus::Failed);
        assert!(
            run.error.as_deref().unwrap_or("").contains("48002"),
            "{:?}",
            run.error
        );
        assert!(
            run.api_calls_json.contains("\"errors\":1"),
            "{}",
            run.api_calls_json
        );
        // The next run catches up.
        let o = t.sync().await;
        assert_eq!(
            (
                o.report.diff.counts.users_added,
                o.report.diff.counts.users_updated,
                o.report.diff.counts.users_disabled
            ),
            (1, 1, 1)
        );
        assert!(t.user("newbie").await.is_some());
    }
}

#[tokio::test]
async fn mass_disable_guard_stops_until_confirmed() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        // Dropping department 2 from the scope would disable zhangsan and lisi: 2 of 5.
        t.scope(json!({"users": ["qianba"], "tags": [1]})).await;
        let before = t.snapshot().await;
        let o = t.sync_with(false, false).await;
        assert_eq!(o.status, RunStatus::Blocked);
        let g = o.report.guard.unwrap();
        assert_eq!((g.active_users, g.would_disable, g.blocked), (5, 2, true));
        assert!(o
            .message
            .as_deref()
            .unwrap()
            .contains("2 of 5 active users"));
        assert_eq!(t.snapshot().await, before, "nothing applied");
        let run = &t
            .st()
            .store
            .list_sync_runs(t.tenant.id, None, 1)
            .await
            .unwrap()[0];
        assert_eq!(run.status, RunStatus::Blocked);
        assert!(run.error.as_deref().unwrap().contains("limit"));

        let o = t.sync_with(false, true).await;
        assert_eq!(o.status, RunStatus::Succeeded);
        assert_eq!(t.userids().await, ["qianba", "wangwu", "zhaoliu"]);
        assert_eq!(
            t.user("zhangsan").await.map(|u| (u.0, u.1)),
            Some((UserStatus::Disabled, Some(DisabledReason::LeftScope)))
        );
        // Back in scope: enabled again with the policy's status, same internal id.
        let id = t.user("zhangsan").await.unwrap().2;
        t.scope(json!({"parties": [2], "users": ["qianba"], "tags": [1]}))
            .await;
        let o = t.sync().await;
        assert_eq!(o.report.diff.counts.users_reenabled, 2);
        assert_eq!(
            t.user("zhangsan").await.unwrap(),
            (UserStatus::Unauthorized, None, id)
        );
    }
}

#[tokio::test]
async fn dry_run_shows_the_diff_and_applies_nothing() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let empty = t.snapshot().await;
        let o = t.sync_with(true, false).await;
        assert_eq!(o.status, RunStatus::Succeeded);
        assert_eq!(o.report.diff.counts.users_added, 6);
        assert_eq!(t.snapshot().await, empty);
        t.sync().await;
        t.sim(
            "PATCH",
            "/members/lisi",
            json!({"position": "架构师", "departments": [2]}),
        )
        .await;
        t.sim("DELETE", "/members/qianba", json!({})).await;
        let before = t.snapshot().await;
        let o = t.sync_with(true, false).await;
        let d = &o.report.diff;
        assert_eq!(
            (
                d.counts.users_updated,
                d.counts.users_moved,
                d.counts.users_disabled
            ),
            (1, 1, 1)
        );
        let lisi = &d.updated[0];
        assert_eq!(lisi.userid, "lisi");
        assert!(lisi
            .changes
            .iter()
            .any(|c| c.field == "position" && c.old == "工程师" && c.new == "架构师"));
        assert!(lisi
            .changes
            .iter()
            .any(|c| c.field == "departments" && c.old == "3" && c.new == "2"));
        assert_eq!(d.disabled[0].userid, "qianba");
        assert_eq!(t.snapshot().await, before);
        let run = &t
            .st()
            .store
            .list_sync_runs(t.tenant.id, None, 1)
            .await
            .unwrap()[0];
        assert_eq!(run.kind, RunKind::DryRun);
    }
}

#[tokio::test]
async fn policy_decides_new_users_status() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let mut p = t.st().store.directory_policy(t.tenant.id).await.unwrap();
        p.new_user_status = UserStatus::Authorized;
        t.st()
            .store
            .put_directory_policy(t.tenant.id, &p, None)
            .await
            .unwrap();
        t.sync().await;
        assert_eq!(t.user("lisi").await.unwrap().0, UserStatus::Authorized);
    }
}

#[tokio::test]
async fn two_syncs_never_overlap() {
    for db in database_urls().await {
        let t = setup(&db).await;
        // Slow the sim down so the first run is still going.
        t.env
            .sim_admin(
                "POST",
                "/latencies",
                json!({"path": "user/list", "ms": 300}),
            )
            .await;
        let first =
            bridge::sync::start_full(t.st(), &t.tenant, SyncOptions::new(Trigger::Console, "a"))
                .await
                .unwrap();
        let second =
            bridge::sync::start_full(t.st(), &t.tenant, SyncOptions::new(Trigger::Cli, "b")).await;
        assert!(matches!(second, Err(bridge::sync::SyncError::Busy)));
        let o = first.execute(t.st()).await.unwrap();
        assert_eq!(o.status, RunStatus::Succeeded);
        // Free again.
        t.sync().await;
    }
}

/// A re-sync writes a changed tag's added and removed members only (issue 18: a 1%
/// change used to rewrite every link of each changed tag); the links stay exactly WeCom's,
/// through additions, removals, a removed tag and its return.
#[tokio::test]
async fn tag_member_changes_keep_the_links_exact() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        let links = || async {
            dump(
                &t.st().store,
                "SELECT t.tag_id, i.external_id FROM tag_users t
                 JOIN user_identities i ON i.user_id = t.user_id ORDER BY t.tag_id, i.external_id",
            )
            .await
        };
        assert_eq!(links().await, "Some(1)|Some(\"wangwu\")");
        t.sim(
            "PATCH",
            "/tags/1",
            json!({"add_users": ["zhangsan", "lisi"], "remove_users": ["wangwu"]}),
        )
        .await;
        let o = t.sync().await;
        assert_eq!(o.report.diff.counts.tags_updated, 1);
        assert_eq!(
            links().await,
            "Some(1)|Some(\"lisi\")\nSome(1)|Some(\"zhangsan\")"
        );
        // Removed, then back with other members: written whole.
        t.sim("DELETE", "/tags/1", json!({})).await;
        // (Its department 5 leaves the scope with it: the guard is confirmed.)
        t.sync_with(false, true).await;
        assert_eq!(links().await, "");
        t.sim(
            "POST",
            "/tags",
            json!({"id": 1, "name": "项目A", "users": ["qianba", "lisi"], "parties": [5]}),
        )
        .await;
        t.scope(json!({"parties": [2], "users": ["qianba"], "tags": [1]}))
            .await;
        let o = t.sync().await;
        assert_eq!(
            o.report.diff.counts.tags_updated + o.report.diff.counts.tags_added,
            1
        );
        assert_eq!(
            links().await,
            "Some(1)|Some(\"lisi\")\nSome(1)|Some(\"qianba\")"
        );
    }
}

/// A run cut short by a crash, with no later run to end its record (nothing pending, no
/// reconcile due): the background round ends it once the tenant's lock is free.
#[tokio::test]
async fn a_run_left_running_by_a_crash_is_ended_without_a_next_run() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let store = &t.st().store;
        let run = store
            .create_sync_run(&bridge::store::NewSyncRun {
                tenant_id: t.tenant.id,
                trigger: Trigger::Callback,
                kind: RunKind::Incremental,
                actor: "wecom".into(),
                forced: false,
            })
            .await
            .unwrap();
        // While a run holds the lock, its record is left alone.
        let held = bridge::sync::lock::acquire(store, t.tenant.id, false)
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        let status = |runs: Vec<bridge::store::SyncRun>| {
            runs.into_iter().find(|r| r.id == run).map(|r| r.status)
        };
        let runs = store.list_sync_runs(t.tenant.id, None, 10).await.unwrap();
        assert_eq!(status(runs), Some(RunStatus::Running));
        held.release().await;
        let started = std::time::Instant::now();
        loop {
            let runs = store.list_sync_runs(t.tenant.id, None, 10).await.unwrap();
            match status(runs) {
                Some(RunStatus::Running) => {}
                other => {
                    assert_eq!(other, Some(RunStatus::Interrupted));
                    break;
                }
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "still running"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
