//! Directory sync benchmark: `cargo bench -p wecom-bridge --bench sync`.
//!
//! A generated wecom-sim org (100,000 members, 5,000 departments, 200 tags, whole org in
//! scope) served by a child process, so the peak RSS measured here is the bridge's alone.
//! For SQLite, and PostgreSQL when TEST_DATABASE_URL is set: an initial full sync, a
//! no-change re-sync and a re-sync after a 1% change. Reported: wall time, WeCom calls by
//! endpoint (counted by the simulator, gettoken included) against the lower bound
//! C_min = D + T + U + 4 (§6; one less with a warm token), diff+apply members/s, peak RSS.
//!
//! Knobs: BENCH_MEMBERS, BENCH_DEPARTMENTS, BENCH_TAGS (defaults 100000/5000/200).

use bridge::app::AppState;
use bridge::config::Config;
use bridge::domain::directory::{RunStatus, Trigger};
use bridge::domain::tenant::Edition;
use bridge::sync::{run_full, RunOutcome, SyncOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "WB_BENCH_SIM_CHILD";

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var_os(CHILD).is_some() {
        rt.block_on(child());
        return;
    }
    rt.block_on(parent());
}

/// The simulator process: generate, serve, print the app's credentials, run until the
/// parent closes our stdin.
async fn child() {
    let opts = wecom_sim::generate::GenerateOptions {
        members: env_usize("BENCH_MEMBERS", 100_000),
        departments: env_usize("BENCH_DEPARTMENTS", 5_000),
        tags: env_usize("BENCH_TAGS", 200),
        seed: 42,
    };
    let sc = wecom_sim::generate::generate(&opts);
    let corp = &sc.corps[0];
    let (corpid, app) = (corp.corpid.clone(), corp.apps[0].clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = wecom_sim::launch(wecom_sim::Sim::from_scenario(sc), listener)
        .await
        .unwrap();
    println!(
        "ready {} {} {} {}",
        handle.base_url, corpid, app.agentid, app.secret
    );
    std::thread::spawn(|| {
        let mut buf = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut buf);
        std::process::exit(0);
    });
    std::future::pending::<()>().await;
}

struct Sim {
    base: String,
    http: reqwest::Client,
}

impl Sim {
    async fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/sim/admin{path}", self.base);
        let req = match method {
            "POST" => self.http.post(&url).json(&body),
            "PATCH" => self.http.patch(&url).json(&body),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        let r = req.send().await.expect("sim admin");
        assert!(
            r.status().is_success(),
            "sim admin {method} {path}: {}",
            r.status()
        );
        r.json().await.unwrap_or(Value::Null)
    }
}

fn vm_hwm_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0), so each run's peak is its own.
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Row {
    engine: &'static str,
    scenario: &'static str,
    wall: f64,
    fetch: f64,
    diff_apply: f64,
    members: u64,
    calls: u64,
    c_min: u64,
    by_endpoint: BTreeMap<String, u64>,
    changes: String,
    rss: f64,
}

async fn parent() {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the simulator process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.first(), Some(&"ready"), "simulator said {line:?}");
    let (base, corpid, agentid, secret) = (parts[1], parts[2], parts[3], parts[4]);
    let sim = Sim {
        base: base.to_string(),
        http: wecom::default_http_client().unwrap(),
    };
    println!(
        "wecom-bridge sync benchmark: {} members, {} departments, {} tags; {} CPUs",
        env_usize("BENCH_MEMBERS", 100_000),
        env_usize("BENCH_DEPARTMENTS", 5_000),
        env_usize("BENCH_TAGS", 200),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let mut urls = vec![("sqlite", bridge::testing::sqlite_url())];
    if let Some(pg) = bridge::testing::postgres_url().await {
        urls.push(("postgres", pg));
    }
    let mut rows = Vec::new();
    for (engine, url) in urls {
        rows.extend(bench_engine(&sim, engine, &url, base, corpid, agentid, secret).await);
    }
    print_table(&rows);
    drop(child.stdin.take());
    let _ = child.wait();
}

#[allow(clippy::too_many_arguments)]
async fn bench_engine(
    sim: &Sim,
    engine: &'static str,
    url: &str,
    base: &str,
    corpid: &str,
    agentid: &str,
    secret: &str,
) -> Vec<Row> {
    let store = bridge::store::Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let key = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    };
    let sealer = bridge::seal::Sealer::from_base64(&key).unwrap();
    let cfg = Config {
        wecom_api_base: format!("{base}/cgi-bin/"),
        instance_key: key,
        egress_ips: vec!["127.0.0.1".into()],
        ..Config::default()
    };
    let slug = format!("bench{}", rand::random::<u32>());
    let created =
        bridge::operator::create_tenant(&store, &slug, "Bench", Edition::Professional, None)
            .await
            .unwrap();
    let st = AppState::new(cfg, store, sealer);
    bridge::setup::save_credentials(
        &st,
        &created.tenant,
        &bridge::domain::integration::WecomCredentialsInput {
            corpid: corpid.into(),
            agentid: agentid.into(),
            secret: secret.into(),
        },
        &bridge::setup::Actor {
            name: "bench".into(),
            ip: None,
        },
    )
    .await
    .unwrap();
    let tenant = st
        .store
        .tenant_by_id(created.tenant.id)
        .await
        .unwrap()
        .unwrap();
    let mut p = st.store.directory_policy(tenant.id).await.unwrap();
    p.new_user_status = bridge::domain::user::UserStatus::Authorized;
    st.store.put_directory_policy(tenant.id, &p).await.unwrap();

    let mut rows = Vec::new();
    for scenario in ["initial", "no change", "1% change"] {
        if scenario == "1% change" {
            change_one_percent(sim, &st, tenant.id, corpid).await;
        }
        // WeCom allows 10,000 calls per API per minute: each run starts in a fresh window.
        sim.admin("POST", "/clock/advance", json!({"secs": 61}))
            .await;
        sim.admin("DELETE", "/counters", json!({})).await;
        reset_hwm();
        let t0 = Instant::now();
        let mut o = SyncOptions::new(Trigger::Cli, "bench");
        o.force = false;
        let out: RunOutcome = run_full(&st, &tenant, o).await.unwrap();
        let wall = t0.elapsed();
        assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
        let counters = sim.admin("GET", "/counters", json!({})).await;
        let by_endpoint: BTreeMap<String, u64> = counters["counters"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .filter(|(_, v)| *v > 0)
                    .collect()
            })
            .unwrap_or_default();
        let calls = by_endpoint.values().sum();
        let mut b = out.report.bound.unwrap();
        b.with_token = by_endpoint.contains_key("gettoken");
        let c = out.report.diff.counts;
        rows.push(Row {
            engine,
            scenario,
            wall: wall.as_secs_f64(),
            fetch: out.report.fetch_ms as f64 / 1000.0,
            diff_apply: (out.report.diff_ms + out.report.apply_ms) as f64 / 1000.0,
            members: out.report.members,
            calls,
            c_min: b.c_min(),
            by_endpoint,
            changes: format!(
                "+{} ~{} mv{} -{} | depts +{} ~{}",
                c.users_added,
                c.users_updated,
                c.users_moved,
                c.users_disabled,
                c.departments_added,
                c.departments_updated
            ),
            rss: vm_hwm_mb(),
        });
    }
    st.store.close().await;
    rows
}

/// 1% of the members change in WeCom: 60% get a new position, 20% move, 20% leave.
async fn change_one_percent(sim: &Sim, st: &AppState, tenant_id: i64, corpid: &str) {
    let dir = st.store.load_directory(tenant_id, corpid).await.unwrap();
    let mut users: Vec<String> = dir
        .users
        .iter()
        .map(|u| u.record.userid.clone())
        .filter(|s| !s.is_empty())
        .collect();
    users.sort();
    let mut depts: Vec<i64> = dir.departments.keys().copied().collect();
    depts.sort();
    let n = users.len() / 100;
    let step = users.len() / n.max(1);
    let picked: Vec<&String> = users.iter().step_by(step.max(1)).take(n).collect();
    let started = Instant::now();
    let mut futs = Vec::new();
    for (i, u) in picked.iter().enumerate() {
        let path = format!("/corps/{corpid}/members/{u}");
        let (method, body) = match i % 5 {
            0..=2 => ("PATCH", json!({"position": format!("基准岗位{i}")})),
            3 => (
                "PATCH",
                json!({"departments": [depts[(i * 7919) % depts.len()]]}),
            ),
            _ => ("DELETE", json!({})),
        };
        futs.push(async move { sim.admin(method, &path, body).await });
        if futs.len() == 32 {
            futures::future::join_all(futs.drain(..)).await;
        }
    }
    futures::future::join_all(futs).await;
    eprintln!(
        "  (changed {} members in WeCom in {:.1} s)",
        picked.len(),
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<9} {:<10} {:>7} {:>7} {:>11} {:>12} {:>8} {:>7} {:>7} {:>9}  changes",
        "engine",
        "run",
        "wall s",
        "fetch s",
        "diff+apply",
        "members/s",
        "calls",
        "C_min",
        "ratio",
        "peak MB"
    );
    for r in rows {
        let rate = if r.diff_apply > 0.0 {
            r.members as f64 / r.diff_apply
        } else {
            f64::INFINITY
        };
        println!(
            "{:<9} {:<10} {:>7.2} {:>7.2} {:>10.3}s {:>12.0} {:>8} {:>7} {:>7.4} {:>9.1}  {}",
            r.engine,
            r.scenario,
            r.wall,
            r.fetch,
            r.diff_apply,
            rate,
            r.calls,
            r.c_min,
            r.calls as f64 / r.c_min.max(1) as f64,
            r.rss,
            r.changes
        );
    }
    println!("\nWeCom calls by endpoint (simulator counters):");
    for r in rows {
        let s: Vec<String> = r
            .by_endpoint
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("  {:<9} {:<10} {}", r.engine, r.scenario, s.join(", "));
    }
    println!(
        "\nTargets: calls ≤ 1.05 × C_min; diff+apply ≥ 50,000 members/s on SQLite; peak RSS < 200 MB."
    );
    println!("members/s = members in scope / (load + diff + apply time), fetch excluded.");
}
