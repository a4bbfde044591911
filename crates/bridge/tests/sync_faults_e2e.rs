//! The fault matrix of a full sync (issue 19), on SQLite and (with TEST_DATABASE_URL)
//! PostgreSQL: WeCom busy (-1), the wrong-secret IP ban (45009 at gettoken), an invalid
//! or expired token (40014/42001), a slow WeCom (5 s, past the client's timeout), a
//! connection refused and a truncated JSON answer, each in the middle of a sync. Each
//! ends after a bounded number of retries with a clear run record, and a failed run
//! changes nothing in the directory. (45009 mid-run, which waits and resumes, is in
//! sync_rate_limit_e2e.)
//!
//! Waits for retries go through the simulator's clock ([`T::paced`]), so no test sleeps
//! for a backoff.

mod common;
mod sync_support;

use bridge::app::AppState;
use bridge::domain::directory::{EndpointCalls, RunStatus, Trigger};
use bridge::store::SyncRun;
use bridge::sync::{run_full, spawn_full, SyncOptions};
use bridge::testing::database_urls;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync_support::*;
use wecom::RateLimits;

/// Departments the main app sees (2, 3 and the tag's 5): user/list calls of one sync.
const D: u64 = 3;

/// A synced tenant with two changes waiting in WeCom (one update, one leaver), and the
/// directory as it is before any of them is applied.
async fn synced_with_pending_changes(db: &str) -> (T, String) {
    let t = setup(db).await;
    t.sync().await;
    t.sim("PATCH", "/members/zhangsan", json!({"position": "总监"}))
        .await;
    t.sim("DELETE", "/members/lisi", json!({})).await;
    let before = t.snapshot().await;
    (t, before)
}

async fn fault(t: &T, body: serde_json::Value) {
    t.env.sim_admin("POST", "/faults", body).await;
}

async fn last_run(t: &T) -> SyncRun {
    t.st()
        .store
        .list_sync_runs(t.tenant.id, None, 1)
        .await
        .unwrap()
        .remove(0)
}

fn calls_of(run: &SyncRun, endpoint: &str) -> EndpointCalls {
    let m: std::collections::BTreeMap<String, EndpointCalls> =
        serde_json::from_str(&run.api_calls_json).unwrap();
    m.get(endpoint).copied().unwrap_or_default()
}

/// A sync on `st` that must fail: the run record says so with `expect` in its error,
/// and the directory is exactly as before.
async fn fails_cleanly(t: &T, st: &AppState, before: &str, expect: &str) -> SyncRun {
    let r = run_full(st, &t.tenant, SyncOptions::new(Trigger::Console, "t")).await;
    assert!(r.is_err(), "the sync should fail");
    let run = last_run(t).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.clone().unwrap_or_default();
    assert!(err.contains(expect), "{err}");
    assert_eq!(
        t.snapshot().await,
        before,
        "a failed run changed the directory"
    );
    run
}

/// The next sync applies exactly the two pending changes.
async fn catches_up(t: &T) {
    t.env.sim_admin("DELETE", "/faults", json!({})).await;
    t.env.sim_admin("DELETE", "/latencies", json!({})).await;
    let o = t.sync().await;
    let c = o.report.diff.counts;
    assert_eq!((c.users_updated, c.users_disabled), (1, 1));
}

#[tokio::test]
async fn wecom_busy_is_retried_a_bounded_number_of_times() {
    for db in database_urls().await {
        let (t, before) = synced_with_pending_changes(&db).await;
        let (st, _clock) = t.paced(RateLimits::WECOM);
        // Busy for good: every call gives up after 1 + 3 attempts.
        fault(
            &t,
            json!({"path": "user/list", "errcode": -1, "count": 1000}),
        )
        .await;
        let run = fails_cleanly(&t, &st, &before, "WeCom is busy").await;
        let ul = calls_of(&run, "user/list");
        assert!(ul.calls <= 4 * D && ul.calls >= 4, "{ul:?}");
        // A call still in flight when the run gave up has no answer counted.
        assert!(ul.errors >= 4 && ul.errors <= ul.calls, "{ul:?}");
        assert!(run.error.unwrap().contains("errcode -1"));

        // Busy twice: the retries absorb it and the run succeeds.
        t.env.sim_admin("DELETE", "/faults", json!({})).await;
        fault(&t, json!({"path": "user/list", "errcode": -1, "count": 2})).await;
        let o = run_full(&st, &t.tenant, SyncOptions::new(Trigger::Console, "t"))
            .await
            .unwrap();
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        let ul = o.report.api_calls["user/list"];
        assert_eq!((ul.calls, ul.retries, ul.errors), (D + 2, 2, 2));
        let c = o.report.diff.counts;
        assert_eq!((c.users_updated, c.users_disabled), (1, 1));
    }
}

#[tokio::test]
async fn the_wrong_secret_ip_ban_ends_the_run_at_once() {
    for db in database_urls().await {
        let (t, before) = synced_with_pending_changes(&db).await;
        let (st, clock) = t.paced(RateLimits::WECOM);
        // The cached token dies: the sync must fetch one, and gettoken answers 45009.
        t.sim("POST", "/tokens/invalidate", json!({})).await;
        fault(
            &t,
            json!({"path": "gettoken", "errcode": 45009, "count": 1}),
        )
        .await;
        let started = Instant::now();
        let run = fails_cleanly(&t, &st, &before, "1 hour").await;
        assert!(run.error.as_deref().unwrap().contains("45009"));
        assert_eq!(
            calls_of(&run, "gettoken").calls,
            1,
            "never retried into a ban"
        );
        assert_eq!(clock.slept_ms(), 0, "no waiting for an hour");
        assert!(started.elapsed() < Duration::from_secs(10));
        catches_up(&t).await;
    }
}

#[tokio::test]
async fn an_invalid_or_expired_token_is_refreshed_once() {
    for db in database_urls().await {
        let (t, _) = synced_with_pending_changes(&db).await;
        let (st, _clock) = t.paced(RateLimits::WECOM);
        for code in [40014, 42001] {
            let gettoken = t.env.sim.sim.world().counters.get("gettoken").copied();
            fault(
                &t,
                json!({"path": "user/list", "errcode": code, "count": 1}),
            )
            .await;
            let o = run_full(&st, &t.tenant, SyncOptions::new(Trigger::Console, "t"))
                .await
                .unwrap();
            assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
            let ul = o.report.api_calls["user/list"];
            assert_eq!((ul.retries, ul.errors), (1, 1), "{code}");
            assert_eq!(o.report.api_calls["gettoken"].calls, 1, "{code}");
            assert_eq!(
                t.env.sim.sim.world().counters.get("gettoken").copied(),
                gettoken.map(|n| n + 1).or(Some(1))
            );
            if code == 40014 {
                let c = o.report.diff.counts;
                assert_eq!((c.users_updated, c.users_disabled), (1, 1));
            }
        }
        // Refused again after the refresh: no second refresh, the run fails.
        t.sim("PATCH", "/members/zhangsan", json!({"position": "经理"}))
            .await;
        let before = t.snapshot().await;
        fault(
            &t,
            json!({"path": "user/list", "errcode": 40014, "count": 1000}),
        )
        .await;
        let run = fails_cleanly(&t, &st, &before, "40014").await;
        let ul = calls_of(&run, "user/list");
        assert!(ul.calls <= 2 * D && ul.calls >= 2, "{ul:?}");
    }
}

#[tokio::test]
async fn a_slow_wecom_times_out_after_bounded_retries() {
    for db in database_urls().await {
        let (t, before) = synced_with_pending_changes(&db).await;
        let (mut st, _clock) = t.paced(RateLimits::WECOM);
        let mut cfg = (*st.cfg).clone();
        cfg.wecom_timeout_ms = 1_000;
        st.cfg = Arc::new(cfg);
        t.env
            .sim_admin(
                "POST",
                "/latencies",
                json!({"path": "user/list", "ms": 5000}),
            )
            .await;
        let started = Instant::now();
        let run = fails_cleanly(&t, &st, &before, "WeCom could not be reached").await;
        assert!(
            run.error.as_deref().unwrap().contains("timed out"),
            "{:?}",
            run.error
        );
        let ul = calls_of(&run, "user/list");
        assert!(ul.calls <= 4 * D && ul.calls >= 4, "{ul:?}");
        // Four attempts of one second each, not four of five.
        assert!(started.elapsed() < Duration::from_secs(15));
        catches_up(&t).await;
    }
}

/// A TCP relay to the simulator that can be unplugged: open connections are cut and
/// the port closes, so new connections are refused.
struct Relay {
    base: String,
    plug: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn relay(to: std::net::SocketAddr) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/cgi-bin/", listener.local_addr().unwrap());
    let (plug, unplugged) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let mut stop = unplugged.clone();
            tokio::select! {
                _ = stop.changed() => break,
                a = listener.accept() => {
                    let Ok((mut inbound, _)) = a else { break };
                    let mut stop = unplugged.clone();
                    conns.spawn(async move {
                        let Ok(mut out) = tokio::net::TcpStream::connect(to).await else { return };
                        tokio::select! {
                            _ = stop.changed() => {}
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        }
                    });
                }
            }
        }
        // Dropping the listener closes the port; aborting the relays cuts the connections.
        drop(listener);
        conns.shutdown().await;
    });
    Relay { base, plug, task }
}

#[tokio::test]
async fn a_connection_refused_mid_sync_fails_cleanly() {
    for db in database_urls().await {
        let (t, before) = synced_with_pending_changes(&db).await;
        let (st, _clock) = t.paced(RateLimits::WECOM);
        let r = relay(t.env.sim.addr).await;
        let mut st = st.clone();
        st.wecom = bridge::app::WecomClients::new(r.base.clone(), st.wecom.token_cache())
            .with_pacer(st.wecom.pacer());
        // user/list answers slowly, so the run is surely in the middle when WeCom goes.
        t.env
            .sim_admin(
                "POST",
                "/latencies",
                json!({"path": "user/list", "ms": 400}),
            )
            .await;
        let seen = |t: &T| {
            t.env
                .sim
                .sim
                .world()
                .counters
                .get("user/list")
                .copied()
                .unwrap_or(0)
        };
        let earlier = seen(&t);
        let id = spawn_full(&st, &t.tenant, SyncOptions::new(Trigger::Console, "t"))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen(&t) == earlier {
            assert!(Instant::now() < deadline, "user/list never reached");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = r.plug.send(true);
        r.task.await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let run = loop {
            let run = t
                .st()
                .store
                .sync_run(t.tenant.id, id)
                .await
                .unwrap()
                .unwrap();
            if run.status != RunStatus::Running {
                break run;
            }
            assert!(Instant::now() < deadline, "the run never ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(run.status, RunStatus::Failed);
        let err = run.error.clone().unwrap_or_default();
        assert!(err.contains("WeCom could not be reached"), "{err}");
        let ul = calls_of(&run, "user/list");
        assert!(ul.calls <= 4 * D, "{ul:?}");
        assert!(ul.retries >= 1, "{ul:?}");
        t.settle().await;
        assert_eq!(t.snapshot().await, before);
        catches_up(&t).await;
    }
}

#[tokio::test]
async fn a_truncated_answer_mid_sync_fails_cleanly() {
    for db in database_urls().await {
        let (t, before) = synced_with_pending_changes(&db).await;
        let (st, _clock) = t.paced(RateLimits::WECOM);
        fault(
            &t,
            json!({"path": "user/list", "kind": "truncated_json", "count": 1}),
        )
        .await;
        let run = fails_cleanly(
            &t,
            &st,
            &before,
            "WeCom sent an answer the bridge does not understand",
        )
        .await;
        assert!(run.error.as_deref().unwrap().contains("user/list"));
        let ul = calls_of(&run, "user/list");
        assert_eq!(ul.errors, 1, "{ul:?}");
        assert_eq!(ul.retries, 0, "a garbled answer is not retried");
        assert!(t.env.sim.sim.world().faults.is_empty());
        catches_up(&t).await;
    }
}
