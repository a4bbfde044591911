//! Directory sync benchmark: `cargo bench -p wecom-bridge --bench sync`.
//!
//! A generated wecom-sim org (100,000 members, 5,000 departments, 200 tags, whole org in
//! scope) served by a child process; each sync runs in a child process of its own, like
//! `wecom-bridge sync`, so its peak RSS is the sync's alone (not the simulator's, nor
//! what earlier runs or this harness left on the heap).
//! For SQLite, and PostgreSQL when TEST_DATABASE_URL is set: an initial full sync, a
//! no-change re-sync and a re-sync after a 1% change. Reported: wall time, WeCom calls by
//! endpoint (counted by the simulator, gettoken included) against the lower bound
//! C_min = D + T + U + 4 (§6; one less with a warm token), diff+apply members/s, peak RSS.
//!
//! Knobs: BENCH_MEMBERS, BENCH_DEPARTMENTS, BENCH_TAGS (defaults 100000/5000/200),
//! BENCH_ROUNDS (3: each round on fresh databases; the median is reported).
//!
//! `BENCH_SCALE=1m`: the largest orgs (issue 20). 1,000,000 members, 50,000 departments,
//! 2,000 tags (the three knobs above still override), one round, an initial full sync
//! and a no-change re-sync (`BENCH_RUNS=initial` for the first alone), each starting cold
//! in fresh rate-limit windows on both sides (the simulator's clock moves an hour on, the
//! bridge's call budget and token cache are emptied) and then paced under WeCom's real
//! limits, which the
//! simulator enforces (10,000 calls/min and 150,000/hour per API, §16): 50,000
//! user/list calls cannot take less than five minutes. Reported besides the table:
//! wall time against the rate floor (the largest per-API call count at 10,000/min),
//! error answers (45009 included), peak RSS against 1 GB and the directory rows.
//! `BENCH_LIMITS=off` lifts the limits on both sides, for a quick look at memory and the
//! database's share (its wall times say nothing about the rate floor).
//! `BENCH_ENGINES=postgres` (or `sqlite`) runs one engine alone.
//! `WECOM_BRIDGE_LOG=bridge=debug` shows each sync's log on stderr.
//! `BENCH_RSS_TRACE=1` prints each sync process's resident set every second on stderr.

use bridge::app::AppState;
use bridge::config::Config;
use bridge::domain::directory::{RunReport, RunStatus, Trigger};
use bridge::domain::tenant::Edition;
use bridge::sync::{run_full, RunOutcome, SyncOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "WB_BENCH_SIM_CHILD";
/// Set (to a [`SyncJob`] as JSON) in the process that runs one sync.
const SYNC_CHILD: &str = "WB_BENCH_SYNC_CHILD";

#[derive(serde::Serialize, serde::Deserialize)]
struct SyncJob {
    database_url: String,
    instance_key: String,
    api_base: String,
    tenant_id: i64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SyncResult {
    wall_s: f64,
    report: RunReport,
    peak_mb: f64,
}

/// `BENCH_SCALE=1m`: the 1,000,000-member org of issue 20.
fn large() -> bool {
    std::env::var("BENCH_SCALE").is_ok_and(|v| v.eq_ignore_ascii_case("1m"))
}

/// (members, departments, tags) of the generated org.
fn org_size() -> (usize, usize, usize) {
    let (m, d, t) = if large() {
        (1_000_000, 50_000, 2_000)
    } else {
        (100_000, 5_000, 200)
    };
    (
        env_usize("BENCH_MEMBERS", m),
        env_usize("BENCH_DEPARTMENTS", d),
        env_usize("BENCH_TAGS", t),
    )
}

/// WeCom's per-corp, per-API limit a minute (§16); the simulator enforces it.
const PER_API_PER_MIN: f64 = 10_000.0;

/// `BENCH_LIMITS=off`: no rate limits on either side (a quick memory check).
fn limits_off() -> bool {
    std::env::var("BENCH_LIMITS").is_ok_and(|v| v == "off")
}

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
    if let Ok(job) = std::env::var(SYNC_CHILD) {
        // WECOM_BRIDGE_LOG (as for the binary): the sync's log on stderr.
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("WECOM_BRIDGE_LOG") {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
        }
        rt.block_on(sync_child(serde_json::from_str(&job).expect("sync job")));
        return;
    }
    rt.block_on(parent());
}

/// The simulator process: generate, serve, print the app's credentials, run until the
/// parent closes our stdin.
async fn child() {
    let (members, departments, tags) = org_size();
    let opts = wecom_sim::generate::GenerateOptions {
        members,
        departments,
        tags,
        seed: 42,
    };
    let t0 = Instant::now();
    let sc = wecom_sim::generate::generate(&opts);
    eprintln!(
        "  (generated the org in {:.1} s)",
        t0.elapsed().as_secs_f64()
    );
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

/// One full sync in this process; prints a [`SyncResult`] line.
async fn sync_child(job: SyncJob) {
    let store = bridge::store::Store::connect(&job.database_url)
        .await
        .unwrap();
    let sealer = bridge::seal::Sealer::from_base64(&job.instance_key).unwrap();
    let mut cfg = Config {
        wecom_api_base: job.api_base,
        instance_key: job.instance_key,
        egress_ips: vec!["127.0.0.1".into()],
        ..Config::default()
    };
    if limits_off() {
        cfg.wecom_calls_per_min = u32::MAX;
        cfg.wecom_calls_per_hour = u32::MAX;
    }
    // As in `serve`: SQLite's WAL is checkpointed in the background.
    store.spawn_checkpointer(Duration::from_millis(250));
    let st = AppState::new(cfg, store, sealer);
    let tenant = st.store.tenant_by_id(job.tenant_id).await.unwrap().unwrap();
    let t0 = Instant::now();
    // BENCH_RSS_TRACE=1: the resident set each second with the run's phase, on stderr
    // (where the memory goes, not only its peak).
    if std::env::var_os("BENCH_RSS_TRACE").is_some() {
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let rss = s
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .unwrap_or_default();
            eprintln!("rss {:>6.1} s {rss}", t0.elapsed().as_secs_f64());
        });
    }
    let out: RunOutcome = run_full(&st, &tenant, SyncOptions::new(Trigger::Cli, "bench"))
        .await
        .unwrap();
    let wall_s = t0.elapsed().as_secs_f64();
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
    let r = SyncResult {
        wall_s,
        report: out.report,
        peak_mb: vm_hwm_mb(),
    };
    println!("{}", serde_json::to_string(&r).unwrap());
    st.store.close().await;
}

/// Runs [`sync_child`] in a new process and returns what it measured.
fn sync_in_child(job: &SyncJob) -> SyncResult {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(SYNC_CHILD, serde_json::to_string(job).unwrap())
        .stderr(Stdio::inherit())
        .output()
        .expect("start the sync process");
    assert!(
        out.status.success(),
        "the sync process failed: {:?}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default()).expect("sync result")
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

struct Row {
    engine: &'static str,
    scenario: &'static str,
    wall: f64,
    fetch: f64,
    diff_apply: f64,
    /// Of which the apply (the write transaction).
    apply: f64,
    members: u64,
    /// Of them, answered as stored and held as fingerprints only.
    unchanged: u64,
    calls: u64,
    c_min: u64,
    by_endpoint: BTreeMap<String, u64>,
    changes: String,
    rss: f64,
    /// Of the fetch, the waits for WeCom's rate limits (summed over endpoints).
    rate_wait: f64,
    /// Error answers the sync's client saw (45009 included), and its retries.
    errors: u64,
    retries: u64,
    /// Rows of the tenant's directory tables after the run.
    rows: Option<DirRows>,
}

/// Rows in the tenant's directory tables.
#[derive(Clone, Copy, Default)]
struct DirRows {
    users: i64,
    identities: i64,
    memberships: i64,
    departments: i64,
    tags: i64,
    tag_links: i64,
}

impl DirRows {
    fn total(&self) -> i64 {
        self.users
            + self.identities
            + self.memberships
            + self.departments
            + self.tags
            + self.tag_links
    }
}

async fn dir_rows(store: &bridge::store::Store, tenant_id: i64) -> DirRows {
    let mut n = [0i64; 7];
    let tables = [
        "users",
        "user_identities",
        "user_departments",
        "departments",
        "tags",
        "tag_users",
        "tag_departments",
    ];
    for (i, t) in tables.iter().enumerate() {
        let q = format!("SELECT COUNT(*) FROM {t} WHERE tenant_id = $1");
        n[i] = match store {
            bridge::store::Store::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .bind(tenant_id)
                .fetch_one(p)
                .await
                .unwrap(),
            bridge::store::Store::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .bind(tenant_id)
                .fetch_one(p)
                .await
                .unwrap(),
        };
    }
    DirRows {
        users: n[0],
        identities: n[1],
        memberships: n[2],
        departments: n[3],
        tags: n[4],
        tag_links: n[5] + n[6],
    }
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
    if limits_off() {
        let off = json!({"per_corp_api_per_min": 0, "per_corp_api_per_hour": 0,
                         "per_ip_api_per_min": 0, "per_ip_api_per_hour": 0});
        sim.admin("PATCH", "/settings", off).await;
    }
    let (members, departments, tags) = org_size();
    println!(
        "wecom-bridge sync benchmark: {members} members, {departments} departments, {tags} tags; {} CPUs",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    // Wall-clock on a shared 2-core VM varies by a quarter from run to run: several
    // rounds, each on a fresh database, and the median.
    let rounds = env_usize("BENCH_ROUNDS", if large() { 1 } else { 3 }).max(1);
    let mut rows = Vec::new();
    for _ in 0..rounds {
        let mut urls = vec![("sqlite", bridge::testing::sqlite_url())];
        if let Some(pg) = bridge::testing::postgres_url().await {
            urls.push(("postgres", pg));
        }
        // BENCH_ENGINES=postgres (or sqlite): one engine alone.
        if let Ok(only) = std::env::var("BENCH_ENGINES") {
            urls.retain(|(e, _)| only.split(',').any(|o| o.trim() == *e));
        }
        for (engine, url) in urls {
            rows.extend(bench_engine(&sim, engine, &url, base, corpid, agentid, secret).await);
        }
    }
    print_table(&rows);
    if large() {
        print_large(&rows);
    } else {
        print_medians(&rows);
    }
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
        instance_key: key.clone(),
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
    st.store
        .put_directory_policy(tenant.id, &p, None)
        .await
        .unwrap();

    let mut rows = Vec::new();
    let runs: Vec<&'static str> = if large() {
        match std::env::var("BENCH_RUNS").as_deref() {
            Ok("initial") => vec!["initial"],
            _ => vec!["initial", "no change"],
        }
    } else {
        vec!["initial", "no change", "1% change"]
    };
    for scenario in runs {
        if scenario == "1% change" {
            change_one_percent(sim, &st, tenant.id, corpid).await;
        }
        // WeCom allows 10,000 calls per API per minute: each run starts in a fresh window.
        // At 1M, a run spends a third of the hour's 150,000 as well: fresh hour windows,
        // and the bridge's own budget (on the system clock) forgets the last run too.
        let secs = if large() { 3601 } else { 61 };
        sim.admin("POST", "/clock/advance", json!({"secs": secs}))
            .await;
        if large() {
            clear_call_budget(&st.store).await;
        }
        sim.admin("DELETE", "/counters", json!({})).await;
        // An idle server's background checkpointer has emptied the WAL by now.
        if let bridge::store::Store::Sqlite(p) = &st.store {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await
                .unwrap();
        }
        let r = sync_in_child(&SyncJob {
            database_url: url.to_string(),
            instance_key: key.clone(),
            api_base: format!("{base}/cgi-bin/"),
            tenant_id: tenant.id,
        });
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
        let mut b = r.report.bound.unwrap();
        b.with_token = by_endpoint.contains_key("gettoken");
        let c = r.report.diff.counts;
        let api = &r.report.api_calls;
        let rows_now = if large() {
            Some(dir_rows(&st.store, tenant.id).await)
        } else {
            None
        };
        rows.push(Row {
            rate_wait: api.values().map(|e| e.rate_wait_ms).sum::<u64>() as f64 / 1000.0,
            errors: api.values().map(|e| e.errors).sum(),
            retries: api.values().map(|e| e.retries).sum(),
            rows: rows_now,
            engine,
            scenario,
            wall: r.wall_s,
            fetch: r.report.fetch_ms as f64 / 1000.0,
            diff_apply: (r.report.diff_ms + r.report.apply_ms) as f64 / 1000.0,
            apply: r.report.apply_ms as f64 / 1000.0,
            members: r.report.members,
            unchanged: r.report.members_unchanged,
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
            rss: r.peak_mb,
        });
    }
    st.store.close().await;
    // A round's SQLite database is ~40 MB: leave no copies behind.
    if let Some(file) = url
        .strip_prefix("sqlite://")
        .and_then(|u| u.split('?').next())
    {
        if let Some(dir) = std::path::Path::new(file).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    rows
}

/// Both sides forget earlier runs' calls: the simulator's clock moved on; this is the
/// bridge's side (its call budget counts on the system clock). The cached token goes
/// too: the simulator's hour jumps expire it, so each run starts cold (gettoken counted).
async fn clear_call_budget(store: &bridge::store::Store) {
    for t in ["wecom_call_budget", "wecom_call_blocks", "wecom_tokens"] {
        let q = format!("DELETE FROM {t}");
        match store {
            bridge::store::Store::Sqlite(p) => {
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(p)
                    .await
                    .unwrap();
            }
            bridge::store::Store::Postgres(p) => {
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(p)
                    .await
                    .unwrap();
            }
        }
    }
}

/// The 1M report (issue 20's goals): calls against C_min, wall time against the rate
/// floor, error answers, peak RSS against 1 GB, rows written.
fn print_large(rows: &[Row]) {
    println!(
        "\n{:<9} {:<10} {:>8} {:>8} {:>9} {:>9} {:>7} {:>8} {:>8} {:>7} {:>8} {:>8} {:>7}  rows",
        "engine",
        "run",
        "calls",
        "C_min",
        "floor s",
        "wall s",
        "/floor",
        "waits s",
        "diff s",
        "apply s",
        "peak MB",
        "as-is",
        "errors"
    );
    for r in rows {
        let top = r.by_endpoint.values().copied().max().unwrap_or(0);
        let floor = top as f64 / PER_API_PER_MIN * 60.0;
        let rows = r.rows.map(|d| {
            format!(
                "{} (users {}, identities {}, memberships {}, departments {}, tags {}, tag links {})",
                d.total(),
                d.users,
                d.identities,
                d.memberships,
                d.departments,
                d.tags,
                d.tag_links
            )
        });
        println!(
            "{:<9} {:<10} {:>8} {:>8} {:>9.1} {:>9.1} {:>7.3} {:>8.1} {:>8.1} {:>7.1} {:>8.1} {:>8} {:>7}  {}",
            r.engine,
            r.scenario,
            r.calls,
            r.c_min,
            floor,
            r.wall,
            r.wall / floor.max(f64::MIN_POSITIVE),
            r.rate_wait,
            r.diff_apply - r.apply,
            r.apply,
            r.rss,
            r.unchanged,
            format!("{}/{}", r.errors, r.retries),
            rows.unwrap_or_default()
        );
    }
    println!(
        "\nfloor = the largest per-API call count at WeCom's {PER_API_PER_MIN} calls/min; waits = the \
         fetch's rate-limit waits, summed over endpoints; diff s includes loading the stored \
         directory; as-is = members answered as stored, held as fingerprints only; errors = error answers/retries (45009 included); rows = the tenant's \
         directory rows after the run (all written by the initial sync)."
    );
    println!("Goals (issue 20): calls = C_min; wall ≤ 1.05 × floor; no 45009; peak RSS < 1024 MB.");
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

impl Row {
    fn rate(&self) -> f64 {
        if self.diff_apply > 0.0 {
            self.members as f64 / self.diff_apply
        } else {
            f64::INFINITY
        }
    }
}

/// Per engine and run: the median members/s over the rounds, with the range.
fn print_medians(rows: &[Row]) {
    let mut groups: BTreeMap<(&str, &str), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups.entry((r.engine, r.scenario)).or_default().push(r);
    }
    println!("\nmedian over rounds (min..max):");
    for ((engine, scenario), g) in groups {
        let mut rates: Vec<f64> = g.iter().map(|r| r.rate()).collect();
        rates.sort_by(f64::total_cmp);
        let mut peaks: Vec<f64> = g.iter().map(|r| r.rss).collect();
        peaks.sort_by(f64::total_cmp);
        println!(
            "  {engine:<9} {scenario:<10} members/s {:>8.0} ({:.0}..{:.0})  peak MB {:>6.1} ({:.1}..{:.1})  rounds {}",
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1],
            peaks[peaks.len() / 2],
            peaks[0],
            peaks[peaks.len() - 1],
            g.len()
        );
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<9} {:<10} {:>7} {:>7} {:>11} {:>8} {:>12} {:>8} {:>7} {:>7} {:>9}  changes",
        "engine",
        "run",
        "wall s",
        "fetch s",
        "diff+apply",
        "apply",
        "members/s",
        "calls",
        "C_min",
        "ratio",
        "peak MB"
    );
    for r in rows {
        println!(
            "{:<9} {:<10} {:>7.2} {:>7.2} {:>10.3}s {:>7.3}s {:>12.0} {:>8} {:>7} {:>7.4} {:>9.1}  {}",
            r.engine,
            r.scenario,
            r.wall,
            r.fetch,
            r.diff_apply,
            r.apply,
            r.rate(),
            r.calls,
            r.c_min,
            r.calls as f64 / r.c_min.max(1) as f64,
            r.rss,
            r.changes
        );
    }
    println!("\nWeCom calls by endpoint (simulator counters; each distinct count once):");
    let mut shown = std::collections::BTreeSet::new();
    for r in rows {
        if !shown.insert((r.engine, r.scenario, r.by_endpoint.clone())) {
            continue;
        }
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
