//! Incremental sync: WeCom's encrypted change_contact callbacks (sent by wecom-sim for
//! its admin edits) applied as small diffs, duplicates and bad signatures, a reconcile
//! when an event cannot be applied, the periodic reconcile; SQLite and PostgreSQL.

mod common;
mod sync_support;

use bridge::domain::directory::{RunKind, Trigger};
use bridge::domain::user::{DisabledReason, UserStatus};
use bridge::testing::database_urls;
use serde_json::json;
use sync_support::*;

#[tokio::test]
async fn user_events_create_update_rename_move_disable_delete() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        t.enable_callbacks().await;

        t.sim(
            "POST",
            "/members",
            json!({"userid": "newbie", "name": "新人", "departments": [3]}),
        )
        .await;
        t.flush().await;
        let took = eventually!(t.user("newbie").await.is_some(), "create_user not applied");
        assert!(
            took.as_millis() < 1000,
            "applied within a second, took {took:?}"
        );
        assert_eq!(t.user("newbie").await.unwrap().0, UserStatus::Unauthorized);

        t.sim("PATCH", "/members/lisi", json!({"position": "架构师"}))
            .await;
        t.flush().await;
        eventually!(
            t.dir()
                .await
                .users
                .iter()
                .any(|u| u.key.as_deref() == Some("lisi") && u.record.position == "架构师"),
            "update_user not applied"
        );

        // A userid change keeps the same internal user.
        let lisi = t.user("lisi").await.unwrap().2;
        t.sim("PATCH", "/members/lisi", json!({"new_userid": "li.si"}))
            .await;
        t.flush().await;
        eventually!(t.user("li.si").await.is_some(), "userid change not applied");
        assert_eq!(t.user("li.si").await.unwrap().2, lisi);
        assert_eq!(t.user("lisi").await, None);
        let by_login = t
            .st()
            .store
            .user_by_wecom_userid(t.tenant.id, wecom_sim::fixtures::CORPID, "LI.SI")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_login.id, lisi);

        t.sim("PATCH", "/members/zhangsan", json!({"departments": [3]}))
            .await;
        t.flush().await;
        eventually!(
            t.dir()
                .await
                .users
                .iter()
                .any(|u| u.key.as_deref() == Some("zhangsan")
                    && u.record
                        .departments
                        .iter()
                        .map(|m| m.department_id)
                        .collect::<Vec<_>>()
                        == [3]),
            "move not applied"
        );

        t.sim("PATCH", "/members/zhaoliu", json!({"status": 2}))
            .await;
        t.flush().await;
        eventually!(
            t.user("zhaoliu").await.map(|u| u.1) == Some(Some(DisabledReason::WecomDisabled)),
            "disabled in WeCom not applied"
        );

        let newbie = t.user("newbie").await.unwrap().2;
        add_session(&t.st().store, t.tenant.id, newbie, "s-newbie").await;
        t.sim("DELETE", "/members/newbie", json!({})).await;
        t.flush().await;
        eventually!(
            t.user("newbie").await
                == Some((
                    UserStatus::Disabled,
                    Some(DisabledReason::LeftWecom),
                    newbie
                )),
            "delete_user not applied"
        );
        assert!(
            !t.snapshot().await.contains("s-newbie"),
            "the session ended"
        );

        // Moved to a department outside the scope: user/get says 60011.
        t.sim("PATCH", "/members/li.si", json!({"departments": [6]}))
            .await;
        t.flush().await;
        eventually!(
            t.user("li.si").await.map(|u| u.1) == Some(Some(DisabledReason::LeftScope)),
            "leaving the scope not applied"
        );

        let runs = t
            .st()
            .store
            .list_sync_runs(t.tenant.id, Some(RunKind::Incremental), 50)
            .await
            .unwrap();
        assert!(!runs.is_empty());
        assert!(runs.iter().all(|r| r.trigger == Trigger::Callback));
        assert!(runs.iter().any(|r| r.api_calls_json.contains("user/get")));
        let cbs = t.st().store.list_callbacks(t.tenant.id).await.unwrap();
        assert!(cbs.iter().all(|c| c.1 == "applied"), "{cbs:?}");
        // A full sync agrees with what the callbacks did.
        t.settle().await;
        let o = t.sync().await;
        assert_eq!(
            o.report.diff.counts,
            Default::default(),
            "{:?}",
            o.report.diff
        );
    }
}

#[tokio::test]
async fn party_and_tag_events() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        t.enable_callbacks().await;

        t.sim(
            "POST",
            "/departments",
            json!({"id": 7, "name": "研发二组", "parentid": 2}),
        )
        .await;
        t.flush().await;
        eventually!(
            t.active_departments().await.contains(&7),
            "create_party not applied"
        );

        t.sim("PATCH", "/departments/7", json!({"name": "平台组"}))
            .await;
        t.flush().await;
        eventually!(
            t.dir()
                .await
                .departments
                .get(&7)
                .is_some_and(|d| d.record.name == "平台组"),
            "update_party not applied"
        );

        t.sim("DELETE", "/departments/7", json!({})).await;
        t.flush().await;
        eventually!(
            !t.active_departments().await.contains(&7),
            "delete_party not applied"
        );

        // zhoujiu joins tag 1, which is in the app's scope: into the directory.
        t.sim("PATCH", "/tags/1", json!({"add_users": ["zhoujiu"]}))
            .await;
        t.flush().await;
        eventually!(
            t.user("zhoujiu").await.is_some(),
            "update_tag (add) not applied"
        );
        eventually!(
            t.dir().await.tags[&1].record.users.contains("zhoujiu"),
            "tag members not updated"
        );
        t.sim("PATCH", "/tags/1", json!({"remove_users": ["zhoujiu"]}))
            .await;
        t.flush().await;
        eventually!(
            t.user("zhoujiu").await.map(|u| u.1) == Some(Some(DisabledReason::LeftScope)),
            "update_tag (remove) not applied"
        );
        assert!(!t.dir().await.tags[&1].record.users.contains("zhoujiu"));
        let cbs = t.st().store.list_callbacks(t.tenant.id).await.unwrap();
        for kind in ["create_party", "update_party", "delete_party", "update_tag"] {
            assert!(
                cbs.iter().any(|c| c.0 == kind && c.1 == "applied"),
                "{kind}: {cbs:?}"
            );
        }
        t.settle().await;
        let o = t.sync().await;
        assert_eq!(
            o.report.diff.counts,
            Default::default(),
            "{:?}",
            o.report.diff
        );
    }
}

#[tokio::test]
async fn bad_signature_is_rejected_and_changes_nothing() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        t.enable_callbacks().await;
        let before = t.snapshot().await;

        // Forged by hand: right shape, wrong signature.
        let rec = t
            .st()
            .store
            .main_integration(t.tenant.id)
            .await
            .unwrap()
            .unwrap();
        let o = t.st().open_integration(&rec).unwrap();
        let crypt = wecom::crypto::MsgCrypt::new(&o.callback_token, &o.callback_aes_key, &o.corpid)
            .unwrap();
        let xml = "<xml><ToUserName><![CDATA[x]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[lisi]]></UserID></xml>";
        // Signed now: a timestamp outside the bridge's ±1 day window is refused (issue 19).
        let ts = (bridge::domain::now_ms() / 1000).to_string();
        let msg = crypt.encrypt_message(xml, &ts, "nonce123");
        let body = msg.envelope_xml(&o.corpid, "1000002");
        let bad = t
            .env
            .browser
            .send(
                reqwest::Client::new()
                    .post(t.env.browser.url(&format!("/wecom/callback?msg_signature=0000000000000000000000000000000000000000&timestamp={ts}&nonce=nonce123")))
                    .body(body.clone()),
            )
            .await;
        assert_eq!(bad.status, 403, "{}", bad.body);
        // The same message correctly signed is accepted (and proves the forgery was the only problem).
        let good = t
            .env
            .browser
            .send(
                reqwest::Client::new()
                    .post(t.env.browser.url(&format!(
                        "/wecom/callback?msg_signature={}&timestamp={ts}&nonce=nonce123",
                        msg.msg_signature
                    )))
                    .body(body),
            )
            .await;
        assert_eq!(good.status, 200);
        assert_eq!(good.body, "");
        eventually!(
            t.st()
                .store
                .list_callbacks(t.tenant.id)
                .await
                .unwrap()
                .len()
                == 1,
            "the good one is stored"
        );
        // lisi is still in WeCom: the re-read keeps them.
        eventually!(
            t.st().store.list_callbacks(t.tenant.id).await.unwrap()[0].1 == "applied",
            "applied"
        );
        assert_eq!(t.snapshot().await, before);

        // WeCom-side faults: a bad signature and a wrong receive id are refused.
        t.env
            .sim_admin("POST", "/callback_faults", json!({"kind": "bad_signature"}))
            .await;
        t.sim("PATCH", "/members/zhangsan", json!({"position": "经理"}))
            .await;
        let d = t.flush().await;
        let statuses: Vec<i64> = d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["fault"] == "bad_signature")
            .filter_map(|x| x["status"].as_i64())
            .collect();
        assert!(
            !statuses.is_empty() && statuses.iter().all(|s| *s == 403),
            "{d}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            t.snapshot().await,
            before,
            "a refused callback changes nothing"
        );
        assert_eq!(
            t.st()
                .store
                .list_callbacks(t.tenant.id)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn duplicates_are_applied_once() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        t.enable_callbacks().await;
        t.env
            .sim_admin("PATCH", "/settings", json!({"duplicate": true}))
            .await;
        t.sim("PATCH", "/members/lisi", json!({"alias": "li4"}))
            .await;
        let d = t.flush().await;
        let sent = d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["status"] == 200)
            .count();
        assert!(sent >= 2, "the sim sent it twice: {d}");
        eventually!(
            t.dir()
                .await
                .users
                .iter()
                .any(|u| u.key.as_deref() == Some("lisi") && u.record.alias == "li4"),
            "not applied"
        );
        assert_eq!(
            t.st()
                .store
                .list_callbacks(t.tenant.id)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn an_event_that_cannot_be_applied_triggers_a_reconcile() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        t.enable_callbacks().await;
        t.env
            .sim_admin(
                "POST",
                "/faults",
                json!({"path": "user/get", "errcode": 48002, "count": 1}),
            )
            .await;
        t.sim("PATCH", "/members/lisi", json!({"position": "架构师"}))
            .await;
        t.flush().await;
        eventually!(
            t.st()
                .store
                .list_sync_runs(t.tenant.id, Some(RunKind::Full), 5)
                .await
                .unwrap()
                .iter()
                .any(|r| r.trigger == Trigger::Callback && r.finished_at.is_some()),
            "no reconcile"
        );
        eventually!(
            t.dir()
                .await
                .users
                .iter()
                .any(|u| u.key.as_deref() == Some("lisi") && u.record.position == "架构师"),
            "the reconcile did not catch up"
        );
        let cbs = t.st().store.list_callbacks(t.tenant.id).await.unwrap();
        assert_eq!(cbs[0].1, "failed");
    }
}

#[tokio::test]
async fn periodic_reconcile_finds_scope_changes() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        // A scope change sends no callback (§17 #47); the schedule finds it. One second
        // here (the console allows no less than a minute).
        let mut p = t.st().store.directory_policy(t.tenant.id).await.unwrap();
        p.reconcile_interval_secs = 1;
        t.st()
            .store
            .put_directory_policy(t.tenant.id, &p, None)
            .await
            .unwrap();
        t.scope(json!({"parties": [2], "users": ["qianba", "zhoujiu"], "tags": [1]}))
            .await;
        eventually!(t.user("zhoujiu").await.is_some(), "no scheduled reconcile");
        let runs = t
            .st()
            .store
            .list_sync_runs(t.tenant.id, Some(RunKind::Full), 5)
            .await
            .unwrap();
        assert!(runs.iter().any(|r| r.trigger == Trigger::Schedule));
    }
}

/// A burst of 100 callbacks (issue 19) wakes one worker for the tenant, which applies
/// them all. It used to spawn a task per callback, each holding a pooled connection
/// while it waited for the tenant's lock: on PostgreSQL a burst emptied the pool (16)
/// and every other query of the server waited out the 10 s acquire timeout. A probe
/// query runs throughout; its slowest answer must stay far below that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_callbacks_is_applied_by_one_worker_without_emptying_the_pool() {
    use std::time::{Duration, Instant};
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sync().await;
        t.sim("PATCH", "/members/lisi", json!({"alias": "burst"}))
            .await;
        let st = t.st().clone();
        let tenant_id = t.tenant.id;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let probe = tokio::spawn({
            let (st, stop) = (st.clone(), stop.clone());
            async move {
                let mut worst = Duration::ZERO;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let t0 = Instant::now();
                    st.store.tenant_by_id(tenant_id).await.unwrap();
                    worst = worst.max(t0.elapsed());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                worst
            }
        });
        let started = Instant::now();
        let received = futures::future::join_all((0..100).map(|i| {
            let st = st.clone();
            async move {
                let xml = format!("<xml><ToUserName><![CDATA[x]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[lisi]]></UserID></xml>", 1_700_000_000 + i);
                bridge::sync::incremental::receive(&st, tenant_id, &xml).await
            }
        }))
        .await;
        assert!(
            received
                .iter()
                .all(|r| matches!(r, Ok(bridge::sync::incremental::Received::Queued))),
            "{received:?}"
        );
        loop {
            let cbs = st.store.list_callbacks(tenant_id).await.unwrap();
            if cbs.iter().all(|c| c.1 != "pending") {
                assert_eq!(cbs.len(), 100);
                assert!(cbs.iter().all(|c| c.1 == "applied"), "{cbs:?}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} callbacks still pending after 60 s",
                cbs.iter().filter(|c| c.1 == "pending").count()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let worst = probe.await.unwrap();
        eprintln!(
            "{}: 100 callbacks applied in {:.2} s; slowest probe query {} ms",
            st.store.engine(),
            took.as_secs_f64(),
            worst.as_millis()
        );
        assert!(
            worst < Duration::from_secs(2),
            "a query waited {worst:?} during the burst"
        );
        assert!(t
            .dir()
            .await
            .users
            .iter()
            .any(|u| u.key.as_deref() == Some("lisi") && u.record.alias == "burst"));
        t.settle().await;
        eventually!(st.callback_workers.running() == 0, "a worker is left");
        let runs = st
            .store
            .list_sync_runs(tenant_id, Some(RunKind::Incremental), 1000)
            .await
            .unwrap();
        assert!(runs.iter().all(|r| r.finished_at.is_some()), "{runs:?}");
        let handled: i64 = runs.iter().map(|r| r.progress_done).sum();
        assert_eq!(handled, 100, "each callback counted once in a run");
    }
}
