//! Sign-in performance with wecom-sim on the same machine:
//!
//! 1. full SSO round trips per second (`/wecom/home` → sim authorize → callback →
//!    workbench), one client and several concurrent ones;
//! 2. p50/p99 of the callback handler's own time, WeCom's share excluded (the handler
//!    reports both in `Server-Timing`), and the client-observed callback round trip
//!    minus WeCom's share (which adds HTTP and extractor overhead);
//! 3. the cost of a session check (`MemberSessions::check`) per request, including the
//!    periodic revocation-log reads, next to a plain indexed session-row look-up for
//!    comparison;
//! 4. forward auth: the verdict in-process (session check + the app's policy from the
//!    instance's caches, as `GET /auth/verify` runs it) and the whole HTTP request over
//!    loopback, one client, beside the session check.
//!
//! `cargo bench -p wecom-bridge --bench login` (SQLite; set TEST_DATABASE_URL to run on
//! PostgreSQL too). Wall-clock on a shared machine: compare runs, not absolutes.

#[path = "../tests/common/mod.rs"]
mod common;

use bridge::auth::MemberSessions;
use bridge::domain::tenant::Edition;
use bridge::domain::user::UserStatus;
use bridge::store::WecomUserSeed;
use common::*;
use std::time::{Duration, Instant};
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};

const UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1";
const ROUND_TRIPS: usize = 400;
const CONCURRENT_CLIENTS: usize = 8;
const CHECKS: usize = 200_000;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn cookie_of(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Server-Timing `app;dur=X, wecom;dur=Y` → (X, Y) in ms.
fn server_timing(resp: &reqwest::Response) -> (f64, f64) {
    let v = resp.headers()["server-timing"].to_str().unwrap();
    let mut out = (0.0, 0.0);
    for part in v.split(',') {
        let (name, dur) = part.trim().split_once(";dur=").unwrap();
        let d: f64 = dur.parse().unwrap();
        match name {
            "app" => out.0 = d,
            "wecom" => out.1 = d,
            _ => {}
        }
    }
    out
}

struct Sample {
    app_ms: f64,
    wecom_ms: f64,
    callback_rtt_ms: f64,
    session: String,
}

/// One complete silent in-client sign-in by a fresh browser.
async fn round_trip(http: &reqwest::Client, bridge: &str, host: &str) -> Sample {
    let r = http
        .get(format!("{bridge}/wecom/home"))
        .header("host", host)
        .header("user-agent", UA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let binding = cookie_of(&r, "wb_oauth").unwrap();
    let to_wecom = r.headers()["location"].to_str().unwrap().to_string();
    let sim_url = format!(
        "{}&sim_userid=zhangsan",
        to_wecom.split('#').next().unwrap()
    );
    let r = http
        .get(sim_url)
        .header("user-agent", UA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let cb = r.headers()["location"].to_str().unwrap();
    let path = &cb[cb.find("/auth/").unwrap()..];
    let t = Instant::now();
    let r = http
        .get(format!("{bridge}{path}"))
        .header("host", host)
        .header("user-agent", UA)
        .header("cookie", format!("wb_oauth={binding}"))
        .send()
        .await
        .unwrap();
    let rtt = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(r.status(), 303);
    let (app_ms, wecom_ms) = server_timing(&r);
    let session = cookie_of(&r, "wb_session").unwrap();
    let r = http
        .get(format!("{bridge}/"))
        .header("host", host)
        .header("user-agent", UA)
        .header("cookie", format!("wb_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    Sample {
        app_ms,
        wecom_ms,
        callback_rtt_ms: rtt,
        session,
    }
}

async fn run(db: &str) {
    let env = start(db, Edition::Professional).await;
    let csrf = env.admin_login().await;
    let r = env
        .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
        .await;
    assert_eq!(r.status, 303);
    let r = env
        .browser
        .post(
            "/console/settings/login",
            &[("csrf", &csrf), ("wecom", "on"), ("password", "on")],
        )
        .await;
    assert_eq!(r.status, 303);
    let st = &env.bridge.state;
    let tenant = st.store.tenant_by_slug("default").await.unwrap().unwrap();
    // For section 4: an app with a chosen-department policy, created before any request
    // fills the server's per-instance catalogue cache (a direct store write does not clear it).
    let draft = bridge::domain::apps::AppDraft {
        slug: "bench".into(),
        name_zh: "基准".into(),
        url: "/bench/".into(),
        enabled: true,
        access: bridge::domain::apps::Access::Chosen(bridge::domain::apps::Chosen {
            departments: vec![1],
            ..Default::default()
        }),
        ..Default::default()
    }
    .check()
    .unwrap();
    let audit = bridge::domain::audit::NewAudit {
        tenant_id: tenant.id,
        actor: "bench".into(),
        action: "app.created",
        detail: String::new(),
        ip: None,
    };
    st.store
        .insert_app(tenant.id, &draft, &audit)
        .await
        .unwrap();
    let uid = st
        .store
        .upsert_wecom_user(
            tenant.id,
            CORPID,
            &WecomUserSeed {
                userid: "zhangsan".into(),
                name: "张三".into(),
                status: UserStatus::Authorized,
                position: String::new(),
                departments: vec![(2, "研发中心".into(), 1)],
                tags: vec![],
            },
        )
        .await
        .unwrap();
    let bridge = format!("http://{}", env.bridge.addr);
    let host = env.domain.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    // Warm-up: token cache, connections, prepared statements.
    for _ in 0..30 {
        round_trip(&http, &bridge, &host).await;
    }

    // 1 + 2: sequential round trips.
    let t = Instant::now();
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        samples.push(round_trip(&http, &bridge, &host).await);
    }
    let seq_rate = ROUND_TRIPS as f64 / t.elapsed().as_secs_f64();
    let mut app: Vec<f64> = samples.iter().map(|s| s.app_ms).collect();
    let mut wecom: Vec<f64> = samples.iter().map(|s| s.wecom_ms).collect();
    let mut rtt_minus: Vec<f64> = samples
        .iter()
        .map(|s| s.callback_rtt_ms - s.wecom_ms)
        .collect();

    // Concurrent round trips.
    let t = Instant::now();
    let per = ROUND_TRIPS / CONCURRENT_CLIENTS;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT_CLIENTS {
        let (http, bridge, host) = (http.clone(), bridge.clone(), host.clone());
        tasks.push(tokio::spawn(async move {
            let mut v = Vec::with_capacity(per);
            for _ in 0..per {
                v.push(round_trip(&http, &bridge, &host).await.app_ms);
            }
            v
        }));
    }
    let mut app_conc = Vec::new();
    for t in tasks {
        app_conc.extend(t.await.unwrap());
    }
    let conc_rate = (per * CONCURRENT_CLIENTS) as f64 / t.elapsed().as_secs_f64();

    // 3: session checks, in-process (the same code the Member extractor runs).
    let cookie = samples.last().unwrap().session.clone();
    let sessions = MemberSessions::new(&st.cfg);
    let now = bridge::domain::now_ms();
    assert!(sessions
        .check(st, &tenant, Some(&cookie), now)
        .await
        .unwrap()
        .is_some());
    let mut checks = Vec::with_capacity(CHECKS);
    let started = Instant::now();
    for _ in 0..CHECKS {
        let t = Instant::now();
        let ok = sessions
            .check(st, &tenant, Some(&cookie), bridge::domain::now_ms())
            .await
            .unwrap();
        checks.push(t.elapsed().as_secs_f64() * 1e6);
        debug_assert!(ok.is_some());
    }
    let span = started.elapsed();
    let mean_check = checks.iter().sum::<f64>() / checks.len() as f64;
    // For comparison: a session-row look-up by primary key per request.
    let id_hash = bridge::auth::sha256_hex(cookie.split('.').nth(1).unwrap());
    let mut lookups = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let t = Instant::now();
        assert!(st.store.user_session_exists(&id_hash).await.unwrap());
        lookups.push(t.elapsed().as_secs_f64() * 1e6);
    }
    // 4: forward auth for the app created before the round trips.
    let gate = bridge::apps::Gate::new();
    let mut verdicts = Vec::with_capacity(CHECKS);
    for _ in 0..CHECKS {
        let t = Instant::now();
        let now = bridge::domain::now_ms();
        let s = sessions
            .check(st, &tenant, Some(&cookie), now)
            .await
            .unwrap();
        let v = bridge::apps::verify(
            st,
            &gate,
            tenant.id,
            "bench",
            s.map(|s| s.claims.user_id),
            now,
        )
        .await
        .unwrap();
        verdicts.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(matches!(v, bridge::apps::Verdict::Allow(_)), "{v:?}");
    }
    let mut verify_http = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t = Instant::now();
        let r = http
            .get(format!("http://{}/auth/verify?app=bench", env.bridge.addr))
            .header("host", &host)
            .header("cookie", format!("wb_session={cookie}"))
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
        verify_http.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let _ = uid;

    println!("\n== {} ==", st.store.engine());
    println!("full SSO round trips (home → WeCom authorize → callback → workbench), sim included:");
    println!("  1 client : {seq_rate:.0}/s over {ROUND_TRIPS}");
    println!(
        "  {CONCURRENT_CLIENTS} clients: {conc_rate:.0}/s over {}",
        per * CONCURRENT_CLIENTS
    );
    println!("callback handler, own time (Server-Timing app; WeCom's auth/getuserinfo excluded):");
    println!(
        "  1 client : p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        pct(&mut app, 0.5),
        pct(&mut app, 0.99),
        pct(&mut app, 1.0)
    );
    println!(
        "  {CONCURRENT_CLIENTS} clients: p50 {:.3} ms  p99 {:.3} ms",
        pct(&mut app_conc, 0.5),
        pct(&mut app_conc, 0.99)
    );
    println!(
        "  client-observed callback RTT minus WeCom: p50 {:.3} ms  p99 {:.3} ms",
        pct(&mut rtt_minus, 0.5),
        pct(&mut rtt_minus, 0.99)
    );
    println!(
        "  (WeCom's share, auth/getuserinfo on the sim: p50 {:.3} ms  p99 {:.3} ms)",
        pct(&mut wecom, 0.5),
        pct(&mut wecom, 0.99)
    );
    println!(
        "session check (HMAC cookie + revocation set; log read every {} ms), {CHECKS} checks over {:.2} s:",
        st.cfg.member_session_revocation_poll_ms,
        span.as_secs_f64()
    );
    println!(
        "  mean {mean_check:.2} µs  p50 {:.2} µs  p99 {:.2} µs  p99.99 {:.1} µs  max {:.1} µs",
        pct(&mut checks, 0.5),
        pct(&mut checks, 0.99),
        pct(&mut checks, 0.9999),
        pct(&mut checks, 1.0)
    );
    println!(
        "for comparison, a session-row look-up by key per request: p50 {:.1} µs  p99 {:.1} µs",
        pct(&mut lookups, 0.5),
        pct(&mut lookups, 0.99)
    );
    println!(
        "forward auth verdict in-process (session check + app policy, cached), {CHECKS} checks: p50 {:.2} µs  p99 {:.2} µs  (session check alone: p50 {:.2} µs)",
        pct(&mut verdicts, 0.5),
        pct(&mut verdicts, 0.99),
        pct(&mut checks, 0.5)
    );
    println!(
        "GET /auth/verify over loopback, 1 client, 2000 requests: p50 {:.1} µs  p99 {:.1} µs",
        pct(&mut verify_http, 0.5),
        pct(&mut verify_http, 0.99)
    );
    env.bridge.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; no other arguments are understood.
    for db in bridge::testing::database_urls().await {
        run(&db).await;
    }
}
