//! Several instances on one PostgreSQL (issue 18): three `wecom-bridge serve` child
//! processes on one fresh schema with one shared instance key file, wecom-sim in this
//! process, and a test client that sends each request to an instance of its choosing
//! (round-robin unless a property needs a particular one). PostgreSQL only: skipped with
//! a note without TEST_DATABASE_URL.
//!
//! Proven, each by its own assertion:
//! - a full sync killed with SIGKILL mid-run leaves the directory before or after, never
//!   in between; while it ran the other instances were refused a second sync (the
//!   tenant's advisory lock); another instance takes over and completes a sync (timed);
//! - a login-configuration change is seen on the very next request on every instance;
//! - a member sign-in started on one instance finishes on another, and the session is
//!   valid on every instance;
//! - an OIDC code issued by one instance is redeemed at another;
//! - a logout, unauthorizing the member and disabling them stop the session on every
//!   instance within 1 s (measured per instance and printed);
//! - one `gettoken` for the whole cluster, and one more after WeCom revokes the token
//!   while every instance holds it (the simulator's counters);
//! - a change callback delivered to every instance at once is applied once;
//! - the scheduled reconcile runs once per interval for the cluster, never two at once;
//! - an instance SIGKILLed while applying a burst of callbacks: the others apply the
//!   rest, none lost, each stored once, at most the one in flight applied twice.
//!
//! Knob: CLUSTER_MEMBERS (members of the generated org, default 5,000).

use bridge::app::AppState;
use bridge::config::Config;
use bridge::domain::api_key::Scope;
use bridge::domain::directory::{CurrentDirectory, RunStatus};
use bridge::domain::tenant::Edition;
use bridge::store::Store;
use bridge::testing::postgres_url;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const DOMAIN: &str = "acme.localhost";
const WXWORK_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light";
const RP: &str = "https://rp.example.com/callback";

/// One `wecom-bridge serve` child.
struct Instance {
    name: char,
    child: Child,
    addr: SocketAddr,
}

// A failed assertion must not leave the instance running after the test.
impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every instance shares: the database, the key file, the simulator.
struct Cluster {
    sim: wecom_sim::SimHandle,
    corpid: String,
    agentid: u32,
    url: String,
    key_file: std::path::PathBuf,
    dir: std::path::PathBuf,
    st: AppState,
    tenant_id: i64,
    api_key: String,
    nodes: Vec<Instance>,
    next: AtomicUsize,
    http: reqwest::Client,
}

/// A free port on 127.0.0.1 (bound, then released for the child to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// Starts instance `name` on a free port and waits until `/readyz` says ready.
    async fn spawn(&self, name: char) -> Instance {
        let node = self.start(name);
        self.ready(&node).await;
        node
    }

    /// Starts instance `name` on a free port, without waiting for it.
    fn start(&self, name: char) -> Instance {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::File::create(self.dir.join(format!("{name}-{port}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_wecom-bridge"))
            .arg("serve")
            .env("WECOM_BRIDGE_LISTEN", addr.to_string())
            .env("WECOM_BRIDGE_DATABASE_URL", &self.url)
            .env(
                "WECOM_BRIDGE_DATA_DIR",
                self.dir.join(format!("data-{name}")),
            )
            .env_remove("WECOM_BRIDGE_INSTANCE_KEY")
            .env("WECOM_BRIDGE_INSTANCE_KEY_FILE", &self.key_file)
            .env("WECOM_BRIDGE_PUBLIC_URL_PATTERN", "http://{domain}")
            .env("WECOM_BRIDGE_WECOM_API_BASE", self.sim.api_base())
            .env("WECOM_BRIDGE_WECOM_OPEN_WEIXIN", &self.sim.base_url)
            .env("WECOM_BRIDGE_WECOM_LOGIN_WORK", &self.sim.base_url)
            .env("WECOM_BRIDGE_WECOM_OPEN_WORK", &self.sim.base_url)
            .env("WECOM_BRIDGE_LOG", "warn")
            .env("NO_COLOR", "1")
            .env_remove(bridge::testing::CRASH_AT_VAR)
            // Log lines go to standard output, panics to standard error: both in the log.
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Instance { name, child, addr }
    }

    /// Waits until `node` answers `/readyz` with 200 (30 s at most).
    async fn ready(&self, node: &Instance) {
        let (name, addr) = (node.name, node.addr);
        let started = Instant::now();
        loop {
            if let Ok(r) = self.http.get(format!("http://{addr}/readyz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "instance {name} did not become ready on {addr} (log in {})",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The next instance in turn (the round-robin of a load balancer).
    fn rr(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.nodes.len()
    }

    fn base(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].addr)
    }

    /// An admin API call on instance `i`.
    async fn api(&self, i: usize, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/api/v1{path}", self.base(i));
        let req = match method {
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            _ => self.http.get(url),
        };
        let req = req.header("host", DOMAIN).bearer_auth(&self.api_key);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn sim_admin(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/sim/admin{path}", self.sim.base_url);
        let req = match method {
            "POST" => self.http.post(&url).json(&body),
            "PATCH" => self.http.patch(&url).json(&body),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "sim admin {method} {path}: {status} {v}"
        );
        v
    }

    async fn counter(&self, path: &str) -> u64 {
        self.sim_admin("GET", "/counters", json!({})).await["counters"][path]
            .as_u64()
            .unwrap_or(0)
    }

    async fn directory(&self) -> CurrentDirectory {
        self.st
            .store
            .load_directory(self.tenant_id, &self.corpid)
            .await
            .unwrap()
    }

    async fn run(&self, id: i64) -> bridge::store::SyncRun {
        self.st
            .store
            .sync_run(self.tenant_id, id)
            .await
            .unwrap()
            .unwrap()
    }

    fn browser(&self) -> Browser {
        Browser {
            http: self.http.clone(),
            jar: Default::default(),
        }
    }

    /// Inside the WeCom client as `userid`: opens the app's home page on instance
    /// `start`, lets WeCom authorize, and delivers WeCom's redirect back to instance
    /// `finish`. Returns the answer of `finish`.
    async fn sign_in(&self, b: &Browser, userid: &str, start: usize, finish: usize) -> Page {
        let p = b.get(&self.base(start), "/wecom/home", WXWORK_UA).await;
        let to_wecom = p.location.clone().unwrap_or_else(|| {
            panic!(
                "instance {}: /wecom/home did not send to WeCom: {} {}",
                self.nodes[start].name, p.status, p.body
            )
        });
        assert!(to_wecom.starts_with(&self.sim.base_url), "{to_wecom}");
        let r = self
            .http
            .get(format!(
                "{}&sim_userid={userid}",
                to_wecom.split('#').next().unwrap()
            ))
            .header("user-agent", WXWORK_UA)
            .send()
            .await
            .unwrap();
        let back = r.headers()["location"].to_str().unwrap().to_string();
        let local = back
            .strip_prefix(&format!("http://{DOMAIN}"))
            .unwrap_or_else(|| panic!("WeCom returns to the tenant's domain: {back}"))
            .to_string();
        b.get(&self.base(finish), &local, WXWORK_UA).await
    }

    /// Polls every instance with the session cookie `cookie` until each refuses it;
    /// returns the time each took from `since` (panics after 5 s).
    async fn until_refused(&self, cookie: &str, since: Instant, what: &str) -> Vec<Duration> {
        let mut took: Vec<Option<Duration>> = vec![None; self.nodes.len()];
        while took.iter().any(Option::is_none) {
            for (i, t) in took.iter_mut().enumerate() {
                if t.is_some() {
                    continue;
                }
                let b = self.browser();
                b.set("wb_session", cookie);
                let p = b.get(&self.base(i), "/", WXWORK_UA).await;
                if p.status != 200 {
                    assert_eq!(
                        p.status, 303,
                        "{what}: instance {}: {}",
                        self.nodes[i].name, p.body
                    );
                    *t = Some(since.elapsed());
                }
            }
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "{what}: the session still works after 5 s on some instance: {took:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took.into_iter().map(Option::unwrap).collect()
    }
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

/// A browser stand-in: keeps cookies, follows no redirects, sends the tenant's Host to
/// whichever instance it is pointed at (as a load balancer would).
struct Browser {
    http: reqwest::Client,
    jar: std::sync::Mutex<BTreeMap<String, String>>,
}

impl Browser {
    fn set(&self, k: &str, v: &str) {
        self.jar.lock().unwrap().insert(k.into(), v.into());
    }

    fn cookie(&self, k: &str) -> Option<String> {
        self.jar.lock().unwrap().get(k).cloned()
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let cookies = self
            .jar
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let r = req
            .header("host", DOMAIN)
            .header("cookie", cookies)
            .send()
            .await
            .unwrap();
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            let mut jar = self.jar.lock().unwrap();
            if attrs.contains("Max-Age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string()),
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&self, base: &str, path: &str, ua: &str) -> Page {
        self.send(
            self.http
                .get(format!("{base}{path}"))
                .header("user-agent", ua),
        )
        .await
    }
}

/// The directory as text, without internal ids or times: equal for equal directories.
fn canonical(d: &CurrentDirectory) -> String {
    let mut s = String::new();
    let mut depts: Vec<_> = d.departments.values().collect();
    depts.sort_by_key(|d| d.record.id);
    for x in depts {
        let _ = writeln!(s, "D {:?} {}", x.record, x.active);
    }
    let mut users: Vec<_> = d.users.iter().collect();
    users.sort_by(|a, b| a.key.cmp(&b.key));
    for u in users {
        let _ = writeln!(
            s,
            "U {:?} {:?} {:?} {:?}",
            u.key, u.record, u.status, u.disabled_reason
        );
    }
    let mut tags: Vec<_> = d.tags.values().collect();
    tags.sort_by_key(|t| t.record.id);
    for t in tags {
        let _ = writeln!(s, "T {:?} {}", t.record, t.active);
    }
    s
}

fn param(url: &str, k: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.into_owned())
}

async fn setup(url: String) -> Cluster {
    let members: usize = std::env::var("CLUSTER_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    setup_with(url, members).await
}

/// The cluster's shared parts for a generated org of `members` members.
async fn setup_with(url: String, members: usize) -> Cluster {
    let mut sc = wecom_sim::generate::generate(&wecom_sim::generate::GenerateOptions {
        members,
        departments: (members / 25).max(5),
        tags: 20,
        seed: 18,
    });
    let corp = &mut sc.corps[0];
    let app = &mut corp.apps[0];
    app.redirect_domain = DOMAIN.into();
    app.web_login_domain = DOMAIN.into();
    app.home_url = format!("http://{DOMAIN}/wecom/home");
    let (corpid, agentid, secret) = (corp.corpid.clone(), app.agentid, app.secret.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = wecom_sim::launch(wecom_sim::Sim::from_scenario(sc), listener)
        .await
        .unwrap();

    let dir = std::env::temp_dir().join(format!("bridge-cluster-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    // The one instance key of the cluster, in a file every instance reads.
    let key = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    };
    let key_file = dir.join("instance.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();

    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let created = bridge::operator::create_tenant(
        &store,
        "default",
        "Cluster",
        Edition::Professional,
        Some(DOMAIN),
    )
    .await
    .unwrap();
    let cfg = Config {
        data_dir: dir.join("data-test"),
        database_url: url.clone(),
        wecom_api_base: sim.api_base(),
        instance_key: key.clone(),
        ..Config::default()
    };
    let st = AppState::new(cfg, store, bridge::seal::Sealer::from_base64(&key).unwrap());
    bridge::setup::save_credentials(
        &st,
        &created.tenant,
        &bridge::domain::integration::WecomCredentialsInput {
            corpid: corpid.clone(),
            agentid: agentid.to_string(),
            secret,
        },
        &bridge::setup::Actor {
            name: "test".into(),
            ip: None,
        },
    )
    .await
    .unwrap();
    let api_key = bridge::admin::create_key(
        &st,
        created.tenant.id,
        "cluster-test",
        Scope::ReadWrite,
        "test",
        None,
    )
    .await
    .unwrap()
    .token;
    Cluster {
        sim,
        corpid,
        agentid,
        url,
        key_file,
        dir,
        st,
        tenant_id: created.tenant.id,
        api_key,
        nodes: Vec::new(),
        next: AtomicUsize::new(0),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

// The simulator runs in this process and answers three children: keep threads for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_postgres_behave_as_one_service() {
    let Some(url) = postgres_url().await else {
        eprintln!(
            "cluster_e2e: skipped, TEST_DATABASE_URL is not set (the cluster needs PostgreSQL)"
        );
        return;
    };
    let t0 = Instant::now();
    let mut c = setup(url).await;
    // A cold cluster: the set-up's own checks called gettoken (one of them bypasses the
    // cache on purpose); forget their token and count from zero.
    if let Store::Postgres(p) = &c.st.store {
        sqlx::query("DELETE FROM wecom_tokens")
            .execute(p)
            .await
            .unwrap();
    }
    c.sim_admin("DELETE", "/counters", json!({})).await;
    for name in ['A', 'B', 'C'] {
        let node = c.spawn(name).await;
        c.nodes.push(node);
    }
    eprintln!(
        "cluster: 3 instances ready on {:?} in {:.1} s",
        c.nodes.iter().map(|n| n.addr).collect::<Vec<_>>(),
        t0.elapsed().as_secs_f64()
    );
    let (a, b, cc) = (0usize, 1usize, 2usize);

    // ---- A full sync killed with SIGKILL mid-run, and the take-over.
    // WeCom answers user/list slowly (≈ 1.3 s in all), so that the run outlasts the other
    // instances' attempts (each tries the lock for up to 1 s) and the kill comes first.
    c.sim_admin(
        "POST",
        "/latencies",
        json!({"path": "user/list", "ms": 100}),
    )
    .await;
    let before = canonical(&c.directory().await);
    let (status, run) = c.api(a, "POST", "/sync/runs", Some(json!({}))).await;
    assert_eq!(status, 202, "A starts the first full sync: {run}");
    let run_id = run["id"].as_i64().unwrap();
    let (rb, rc) = tokio::join!(
        c.api(b, "POST", "/sync/runs", Some(json!({}))),
        c.api(cc, "POST", "/sync/runs", Some(json!({})))
    );
    for (other, (status, body)) in [(b, rb), (cc, rc)] {
        assert_eq!(
            status, 409,
            "while A syncs the tenant, instance {} must refuse a second sync of it: {body}",
            c.nodes[other].name
        );
    }
    // Kill once the run is well into its work: half-way through fetching the members, or
    // past it (the apply's progress is not recorded while it runs).
    let started = Instant::now();
    let seen = loop {
        let r = c.run(run_id).await;
        assert!(
            r.finished_at.is_none(),
            "the sync finished before it could be killed ({} ms): raise CLUSTER_MEMBERS",
            started.elapsed().as_millis()
        );
        let half = r.progress_total > 0 && r.progress_done * 2 >= r.progress_total;
        if (r.phase == "members" && half)
            || matches!(r.phase.as_str(), "loose_members" | "diff" | "relink")
        {
            break format!("{} {}/{}", r.phase, r.progress_done, r.progress_total);
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let killed_after = started.elapsed();
    c.nodes[a].child.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    c.nodes[a].child.wait().unwrap();
    let mid = canonical(&c.directory().await);

    // Another instance takes over: its sync is refused only while PostgreSQL still
    // holds the killed process's session (and so its lock).
    let (takeover_run, refused) = loop {
        let (status, body) = c.api(b, "POST", "/sync/runs", Some(json!({}))).await;
        match status {
            202 => break (body["id"].as_i64().unwrap(), killed.elapsed()),
            409 => {}
            _ => panic!("B's sync after the kill: {status} {body}"),
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "no other instance could sync within 10 s of the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let done = loop {
        let r = c.run(takeover_run).await;
        if r.finished_at.is_some() {
            break r;
        }
        assert!(killed.elapsed() < Duration::from_secs(40), "{r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let completed = killed.elapsed();
    c.sim_admin("DELETE", "/latencies", json!({})).await;
    assert_eq!(
        done.status,
        RunStatus::Succeeded,
        "the take-over sync on B completes: {done:?}"
    );
    let after = canonical(&c.directory().await);
    assert!(
        after.lines().filter(|l| l.starts_with("U ")).count() > 0,
        "the take-over sync filled the directory"
    );
    assert!(
        mid == before || mid == after,
        "after the kill the directory must be as before the run or as after it, never in between"
    );
    let killed_run = c.run(run_id).await;
    if mid == before {
        assert_eq!(
            killed_run.status,
            RunStatus::Interrupted,
            "nothing applied: the killed run is marked interrupted: {killed_run:?}"
        );
    } else {
        assert_eq!(killed_run.status, RunStatus::Succeeded, "{killed_run:?}");
    }
    eprintln!(
        "cluster: sync killed on A after {} ms at {seen} (directory {}); B's sync accepted {} ms after the kill, completed {} ms after it ({} users)",
        killed_after.as_millis(),
        if mid == before { "as before" } else { "as after" },
        refused.as_millis(),
        completed.as_millis(),
        after.lines().filter(|l| l.starts_with("U ")).count()
    );
    // Back to three instances.
    let node = c.spawn('A').await;
    c.nodes[a] = node;

    // ---- A login-configuration change is seen on the very next request everywhere.
    let at = c.rr();
    let (status, body) = c
        .api(
            at,
            "PUT",
            "/login-config",
            Some(json!({"wecom": false, "password": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let visitor = c.browser();
    for i in 0..3 {
        let p = visitor.get(&c.base(i), "/login", WXWORK_UA).await;
        assert!(
            p.status == 200 && p.body.contains("data-testid=\"wecom-off\""),
            "WeCom sign-in turned off on {}: the next request on {} must show it off ({} {:?})",
            c.nodes[at].name,
            c.nodes[i].name,
            p.status,
            p.location
        );
    }
    let at = c.rr();
    let (status, body) = c
        .api(at, "PUT", "/login-config", Some(json!({"wecom": true})))
        .await;
    assert_eq!(status, 200, "{body}");
    for i in 0..3 {
        let p = visitor.get(&c.base(i), "/login", WXWORK_UA).await;
        assert!(
            p.status == 303
                && p.location
                    .as_deref()
                    .is_some_and(|l| l.starts_with(&c.sim.base_url)),
            "WeCom sign-in turned on on {}: the next request on {} must go to WeCom ({} {:?})",
            c.nodes[at].name,
            c.nodes[i].name,
            p.status,
            p.location
        );
    }

    // A member to sign in: authorized through the API (round-robin).
    let dir = c.directory().await;
    let mut people: Vec<_> = dir
        .users
        .iter()
        .filter(|u| u.status != bridge::domain::user::UserStatus::Disabled)
        .map(|u| (u.record.userid.clone(), u.id))
        .collect();
    people.sort();
    let (userid, user_id) = people[0].clone();
    let others: Vec<(String, i64)> = people[1..4].to_vec();
    let ids: Vec<i64> = people[..4].iter().map(|p| p.1).collect();
    let (status, body) = c
        .api(
            c.rr(),
            "POST",
            "/users/status",
            Some(json!({"action": "authorize", "user_ids": ids})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // ---- A sign-in started on A finishes on B; the session works on every instance.
    let m = c.browser();
    let p = c.sign_in(&m, &userid, a, b).await;
    assert_eq!(
        (p.status, p.location.as_deref()),
        (303, Some("/")),
        "a sign-in started on A must finish on B: {}",
        p.body
    );
    let session = m.cookie("wb_session").expect("B set the session cookie");
    for i in 0..3 {
        let p = m.get(&c.base(i), "/", WXWORK_UA).await;
        assert_eq!(
            p.status, 200,
            "the session made on B must be valid on {}: {:?}",
            c.nodes[i].name, p.location
        );
    }

    // ---- An OIDC code issued by one instance is redeemed at another.
    let rp = bridge::oidc::clients::register(
        &c.st,
        c.tenant_id,
        "test",
        None,
        &bridge::oidc::clients::NewClient {
            name: "Cluster RP".into(),
            redirect_uris: RP.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    let (client_id, client_secret) = (rp.client.client_id.clone(), rp.secret.clone().unwrap());
    let verifier = format!(
        "{}{}",
        bridge::auth::random_token(),
        bridge::auth::random_token()
    );
    let challenge = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let authorize = {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("client_id", &client_id)
            .append_pair("redirect_uri", RP)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid profile")
            .append_pair("state", "st-18")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        format!("/oidc/authorize?{}", s.finish())
    };
    let p = m.get(&c.base(cc), &authorize, WXWORK_UA).await;
    let to_rp = p
        .location
        .clone()
        .unwrap_or_else(|| panic!("C's authorize: {} {}", p.status, p.body));
    assert!(to_rp.starts_with(RP), "C issues a code to the RP: {to_rp}");
    let code = param(&to_rp, "code").expect("a code");
    let r = c
        .http
        .post(format!("{}/oidc/token", c.base(a)))
        .header("host", DOMAIN)
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let tokens: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(
        status, 200,
        "a code issued by C must be redeemed at A: {tokens}"
    );
    let r = c
        .http
        .get(format!("{}/oidc/userinfo", c.base(b)))
        .header("host", DOMAIN)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "A's access token is accepted by B");
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], user_id.to_string());
    let kid = {
        use base64::Engine as _;
        let header = tokens["id_token"]
            .as_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap();
        let h: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .unwrap(),
        )
        .unwrap();
        h["kid"].as_str().unwrap().to_string()
    };
    for i in 0..3 {
        let p = m.get(&c.base(i), "/oidc/jwks", WXWORK_UA).await;
        assert!(
            p.body.contains(&kid),
            "the ID token's key (signed on A) is published by {}",
            c.nodes[i].name
        );
    }

    // ---- Logout on A: refused everywhere within 1 s.
    let b_logout = c.browser();
    b_logout.set("wb_session", &session);
    let p = b_logout
        .send(
            c.http
                .post(format!("{}/logout", c.base(a)))
                .header("user-agent", WXWORK_UA),
        )
        .await;
    assert_eq!(p.status, 303, "logout on A: {}", p.body);
    let since = Instant::now();
    let logout_took = c.until_refused(&session, since, "logout on A").await;

    // ---- Unauthorizing the member (API on B) ends a session made on C, everywhere.
    let m2 = c.browser();
    let p = c.sign_in(&m2, &userid, cc, cc).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let session2 = m2.cookie("wb_session").unwrap();
    for i in 0..3 {
        assert_eq!(m2.get(&c.base(i), "/", WXWORK_UA).await.status, 200);
    }
    let (status, body) = c
        .api(
            b,
            "POST",
            "/users/status",
            Some(json!({"action": "unauthorize", "user_ids": [user_id]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let since = Instant::now();
    let unauthorize_took = c.until_refused(&session2, since, "unauthorize on B").await;

    // ---- Disabling the member (API on A) ends a session made on B, everywhere.
    let (status, body) = c
        .api(
            cc,
            "POST",
            "/users/status",
            Some(json!({"action": "authorize", "user_ids": [user_id]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let m3 = c.browser();
    let p = c.sign_in(&m3, &userid, b, b).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let session3 = m3.cookie("wb_session").unwrap();
    for i in 0..3 {
        assert_eq!(m3.get(&c.base(i), "/", WXWORK_UA).await.status, 200);
    }
    let (status, body) = c
        .api(
            a,
            "POST",
            "/users/status",
            Some(json!({"action": "disable", "user_ids": [user_id]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let since = Instant::now();
    let disable_took = c.until_refused(&session3, since, "disable on A").await;
    let ms = |v: &[Duration]| {
        v.iter()
            .zip(&c.nodes)
            .map(|(d, n)| format!("{}={} ms", n.name, d.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!(
        "cluster: session refused after logout on A: {}; after unauthorize on B: {}; after disable on A: {}",
        ms(&logout_took),
        ms(&unauthorize_took),
        ms(&disable_took)
    );
    for (what, took) in [
        ("logout", &logout_took),
        ("unauthorize", &unauthorize_took),
        ("disable", &disable_took),
    ] {
        for (d, n) in took.iter().zip(&c.nodes) {
            assert!(
                *d < Duration::from_secs(1),
                "{what}: instance {} refused the session only after {d:?} (must be < 1 s)",
                n.name
            );
        }
    }

    // ---- One gettoken for the cluster, and one more after WeCom revokes the token.
    let gettokens = c.counter("gettoken").await;
    assert_eq!(
        gettokens, 1,
        "one gettoken for the whole cluster so far (sync, kill, take-over, sign-ins on every instance)"
    );
    c.sim_admin(
        "POST",
        &format!("/corps/{}/tokens/invalidate", c.corpid),
        json!({}),
    )
    .await;
    // Every instance holds the revoked token; each signs a member in at once.
    let browsers: Vec<Browser> = (0..3).map(|_| c.browser()).collect();
    let signins = futures::future::join_all(
        browsers
            .iter()
            .zip(&others)
            .enumerate()
            .map(|(i, (br, (uid, _)))| c.sign_in(br, uid, i, i)),
    )
    .await;
    for (i, p) in signins.iter().enumerate() {
        assert_eq!(
            (p.status, p.location.as_deref()),
            (303, Some("/")),
            "sign-in on {} after WeCom revoked the token: {}",
            c.nodes[i].name,
            p.body
        );
    }
    let after_revoke = c.counter("gettoken").await;
    assert_eq!(
        after_revoke, 2,
        "after WeCom revoked the token, the three instances together call gettoken once"
    );

    // ---- A change callback delivered to every instance at once is applied once.
    let member = &others[0].0;
    let position = "集群测试岗位";
    c.sim_admin(
        "PATCH",
        &format!("/corps/{}/members/{member}", c.corpid),
        json!({"position": position}),
    )
    .await;
    let rec =
        c.st.store
            .main_integration(c.tenant_id)
            .await
            .unwrap()
            .unwrap();
    let opened = c.st.open_integration(&rec).unwrap();
    let xml = format!(
        "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>\
         <ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[{member}]]></UserID>\
         <Position><![CDATA[{position}]]></Position></xml>",
        corp = c.corpid,
        now = bridge::domain::now_ms() / 1000,
    );
    let crypt =
        wecom::crypto::MsgCrypt::new(&opened.callback_token, &opened.callback_aes_key, &c.corpid)
            .unwrap();
    let ts = (bridge::domain::now_ms() / 1000).to_string();
    let enc = crypt.encrypt_message(&xml, &ts, "cluster18");
    let body = enc.envelope_xml(&c.corpid, &c.agentid.to_string());
    let user_gets = c.counter("user/get").await;
    let answers = futures::future::join_all((0..3).map(|i| {
        c.http
            .post(format!(
                "{}/wecom/callback?msg_signature={}&timestamp={}&nonce={}",
                c.base(i),
                enc.msg_signature,
                enc.timestamp,
                enc.nonce
            ))
            .header("host", DOMAIN)
            .header("content-type", "text/xml")
            .body(body.clone())
            .send()
    }))
    .await;
    for (i, r) in answers.into_iter().enumerate() {
        assert_eq!(
            r.unwrap().status(),
            200,
            "instance {} acknowledges the callback",
            c.nodes[i].name
        );
    }
    let since = Instant::now();
    loop {
        let applied = c
            .directory()
            .await
            .users
            .iter()
            .any(|u| &u.record.userid == member && u.record.position == position);
        let pending =
            c.st.store
                .tenants_with_pending_callbacks()
                .await
                .unwrap()
                .contains(&c.tenant_id);
        if applied && !pending {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the callback was not applied within 5 s (applied {applied}, pending {pending})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let callbacks = c.st.store.list_callbacks(c.tenant_id).await.unwrap();
    assert_eq!(
        callbacks.len(),
        1,
        "one callback delivered to three instances is stored once: {callbacks:?}"
    );
    assert_eq!(callbacks[0].1, "applied", "{callbacks:?}");
    assert_eq!(
        c.counter("user/get").await - user_gets,
        1,
        "the callback is applied once (one user/get for it in the whole cluster)"
    );

    eprintln!(
        "cluster: gettoken {gettokens} before WeCom revoked the token, {after_revoke} after; callback applied in {} ms",
        since.elapsed().as_millis(),
    );

    // ---- The scheduled reconcile runs once per interval for the cluster, not once per
    // instance: every instance looks each second whether it is due; the tenant lock lets
    // one run it. (2 s here, set in the store: the console allows 1 min at least.)
    let interval_ms = 2_000;
    let phase_started = bridge::domain::now_ms();
    c.st.store
        .put_directory_policy(
            c.tenant_id,
            &bridge::domain::directory::DirectoryPolicy {
                reconcile_interval_secs: interval_ms / 1000,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let since = Instant::now();
    let scheduled = loop {
        let mut runs: Vec<_> =
            c.st.store
                .list_sync_runs(c.tenant_id, None, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| {
                    r.trigger == bridge::domain::directory::Trigger::Schedule
                        && r.started_at >= phase_started
                })
                .collect();
        runs.sort_by_key(|r| r.started_at);
        if runs.iter().filter(|r| r.finished_at.is_some()).count() >= 3 {
            break runs;
        }
        assert!(
            since.elapsed() < Duration::from_secs(40),
            "fewer than 3 scheduled reconciles in 40 s: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let finished: Vec<_> = scheduled
        .iter()
        .filter(|r| r.finished_at.is_some())
        .collect();
    for w in finished.windows(2) {
        let (p, n) = (w[0], w[1]);
        assert!(
            n.started_at >= p.finished_at.unwrap(),
            "two scheduled reconciles of the tenant overlapped: {p:?} {n:?}"
        );
        // Due one interval after the last one ended: a second instance starting its own
        // as soon as the lock is free would start sooner.
        assert!(
            n.started_at - p.finished_at.unwrap() >= interval_ms,
            "a scheduled reconcile started {} ms after the previous one ended, within the {interval_ms} ms interval: run once per instance?",
            n.started_at - p.finished_at.unwrap()
        );
    }
    assert!(
        finished.iter().all(|r| r.status == RunStatus::Succeeded),
        "{finished:?}"
    );
    eprintln!(
        "cluster: scheduled reconciles every {interval_ms} ms: started at +{:?} ms, each {:?} ms",
        finished
            .iter()
            .map(|r| r.started_at - phase_started)
            .collect::<Vec<_>>(),
        finished
            .iter()
            .map(|r| r.finished_at.unwrap() - r.started_at)
            .collect::<Vec<_>>()
    );

    // ---- SIGKILL an instance while it applies a burst of callbacks: the others apply
    // the rest; none is lost, each is stored once, and at most the one in flight is
    // applied twice (its change commits just before its mark).
    c.st.store
        .put_directory_policy(
            c.tenant_id,
            &bridge::domain::directory::DirectoryPolicy {
                reconcile_interval_secs: 0,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let since = Instant::now();
    while c
        .st
        .store
        .list_sync_runs(c.tenant_id, None, 5)
        .await
        .unwrap()
        .iter()
        .any(|r| r.finished_at.is_none())
    {
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "a reconcile never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // WeCom answers user/get slowly, so the burst takes a few seconds to apply.
    c.sim_admin("POST", "/latencies", json!({"path": "user/get", "ms": 100}))
        .await;
    let burst: Vec<(String, String)> = people[10..40]
        .iter()
        .enumerate()
        .map(|(i, (uid, _))| (uid.clone(), format!("突发岗位{i}")))
        .collect();
    let user_gets = c.counter("user/get").await;
    let target = cc;
    for (k, (uid, position)) in burst.iter().enumerate() {
        c.sim_admin(
            "PATCH",
            &format!("/corps/{}/members/{uid}", c.corpid),
            json!({"position": position}),
        )
        .await;
        let xml = format!(
            "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
             <CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>\
             <ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[{uid}]]></UserID>\
             <Position><![CDATA[{position}]]></Position></xml>",
            corp = c.corpid,
            now = bridge::domain::now_ms() / 1000 + k as i64,
        );
        let ts = (bridge::domain::now_ms() / 1000).to_string();
        let enc = crypt.encrypt_message(&xml, &ts, &format!("burst{k}"));
        let r = c
            .http
            .post(format!(
                "{}/wecom/callback?msg_signature={}&timestamp={}&nonce={}",
                c.base(target),
                enc.msg_signature,
                enc.timestamp,
                enc.nonce
            ))
            .header("host", DOMAIN)
            .header("content-type", "text/xml")
            .body(enc.envelope_xml(&c.corpid, &c.agentid.to_string()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "C stores callback {k}");
    }
    let pending = |c: &Cluster| {
        let Store::Postgres(p) = &c.st.store else {
            unreachable!()
        };
        let p = p.clone();
        let tenant = c.tenant_id;
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM callback_events WHERE tenant_id = $1 AND status = 'pending'",
            )
            .bind(tenant)
            .fetch_one(&p)
            .await
            .unwrap()
        }
    };
    let n = burst.len() as i64;
    let since = Instant::now();
    // Kill C once it has applied a few, well before it is through.
    let at_kill = loop {
        let left = pending(&c).await;
        if left <= n - 3 {
            break left;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "C applies nothing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    c.nodes[target].child.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    c.nodes[target].child.wait().unwrap();
    let left_by_c = pending(&c).await;
    assert!(
        left_by_c > 0,
        "C was killed in the middle of the burst ({at_kill} of {n} pending)"
    );
    let mut resumed = None;
    loop {
        let left = pending(&c).await;
        if resumed.is_none() && left < left_by_c {
            resumed = Some(killed.elapsed());
        }
        if left == 0 {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "{left} callbacks still pending 20 s after C was killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = killed.elapsed();
    let dir = c.directory().await;
    for (uid, position) in &burst {
        assert!(
            dir.users
                .iter()
                .any(|u| &u.record.userid == uid && &u.record.position == position),
            "{uid}'s change is applied after C was killed"
        );
    }
    let stored = c.st.store.list_callbacks(c.tenant_id).await.unwrap();
    assert_eq!(
        stored.len() as i64,
        n + 1,
        "each callback stored once (the burst and the earlier one)"
    );
    assert!(stored.iter().all(|x| x.1 == "applied"), "{stored:?}");
    let gets = c.counter("user/get").await - user_gets;
    assert!(
        gets == n as u64 || gets == n as u64 + 1,
        "{gets} user/get for {n} callbacks: each applied once, the one in flight at the kill at most twice"
    );
    eprintln!(
        "cluster: {n} callbacks sent to C, C killed with {left_by_c} pending; another instance resumed {} ms after the kill and finished {} ms after it; {gets} user/get",
        resumed.unwrap_or_default().as_millis(),
        drained.as_millis()
    );
    c.sim_admin("DELETE", "/latencies", json!({})).await;
    eprintln!("cluster: {:.1} s in all", t0.elapsed().as_secs_f64());

    for n in &mut c.nodes {
        let _ = n.child.kill();
        let _ = n.child.wait();
    }
    c.st.store.close().await;
    let _ = std::fs::remove_dir_all(&c.dir);
}

// ---------------------------------------------------------------------------------------
// The shared key: an instance with another key is refused at start

fn new_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

/// `wecom-bridge serve` on `url` with `key`, on a free port.
fn serve_with(url: &str, key: &str, dir: &std::path::Path, api_base: &str) -> (Child, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_wecom-bridge"))
        .arg("serve")
        .env("WECOM_BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("WECOM_BRIDGE_DATABASE_URL", url)
        .env("WECOM_BRIDGE_DATA_DIR", dir)
        .env("WECOM_BRIDGE_INSTANCE_KEY", key)
        .env_remove("WECOM_BRIDGE_INSTANCE_KEY_FILE")
        .env("WECOM_BRIDGE_WECOM_API_BASE", api_base)
        .env("WECOM_BRIDGE_LOG", "warn")
        .env("NO_COLOR", "1")
        .env_remove(bridge::testing::CRASH_AT_VAR)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, port)
}

/// Waits (≤ 30 s) for the child to exit; its exit code and stderr. Panics, after
/// killing it, if it is still running then (it started instead of refusing).
async fn refused(mut child: Child, what: &str) -> (Option<i32>, String) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the instance started instead of refusing the key");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `serve` with `key` and waits until it is ready; then stops it.
async fn starts_with(url: &str, key: &str, dir: &std::path::Path, api_base: &str, what: &str) {
    let (mut child, port) = serve_with(url, key, dir, api_base);
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if r.status() == 200 {
                break;
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read as _;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("{what}: the instance exited ({s}): {err}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: not ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_key_cannot_open_the_stored_secrets_is_refused_at_start() {
    use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};
    let sim = wecom_sim::launch(
        wecom_sim::Sim::from_scenario(wecom_sim::fixtures::small_org()),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let api = sim.api_base();
    for url in bridge::testing::database_urls().await {
        let engine = url.split(':').next().unwrap().to_string();
        let dir = std::env::temp_dir().join(format!("bridge-key-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let (k1, k2) = (new_key(), new_key());

        // A tenant's WeCom secret sealed under k1 (set up in this process).
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let created =
            bridge::operator::create_tenant(&store, "default", "Key", Edition::Professional, None)
                .await
                .unwrap();
        let cfg = Config {
            data_dir: dir.clone(),
            database_url: url.clone(),
            wecom_api_base: api.clone(),
            instance_key: k1.clone(),
            ..Config::default()
        };
        let st = AppState::new(cfg, store, bridge::seal::Sealer::from_base64(&k1).unwrap());
        bridge::setup::save_credentials(
            &st,
            &created.tenant,
            &bridge::domain::integration::WecomCredentialsInput {
                corpid: CORPID.into(),
                agentid: MAIN_AGENTID.to_string(),
                secret: MAIN_SECRET.into(),
            },
            &bridge::setup::Actor {
                name: "test".into(),
                ip: None,
            },
        )
        .await
        .unwrap();
        st.store.close().await;

        let (child, _) = serve_with(&url, &k2, &dir, &api);
        let (code, err) = refused(child, &format!("{engine}: another key")).await;
        assert_eq!(code, Some(2), "{engine}: {err}");
        assert!(
            err.contains("the instance key cannot open the WeCom secret of tenant \"default\"")
                && err.contains("Every instance on one database must use the same key"),
            "{engine}: the refusal says what and what to do: {err}"
        );
        // The right key starts, and then seals the member-session key under it.
        starts_with(&url, &k1, &dir, &api, &format!("{engine}: the right key")).await;

        // A database without WeCom secrets: the member-session key is checked.
        let url2 = if engine == "sqlite" {
            bridge::testing::sqlite_url()
        } else {
            postgres_url().await.unwrap()
        };
        starts_with(
            &url2,
            &k1,
            &dir,
            &api,
            &format!("{engine}: a fresh database"),
        )
        .await;
        let (child, _) = serve_with(&url2, &k2, &dir, &api);
        let (code, err) = refused(child, &format!("{engine}: another key, no secrets")).await;
        assert_eq!(code, Some(2), "{engine}: {err}");
        assert!(
            err.contains("the instance key cannot open the member-session key"),
            "{engine}: {err}"
        );
        for u in [&url, &url2] {
            if let Some(path) = u.strip_prefix("sqlite://") {
                let file = std::path::Path::new(path.split('?').next().unwrap_or(path));
                if let Some(d) = file.parent() {
                    let _ = std::fs::remove_dir_all(d);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

// ---------------------------------------------------------------------------------------
// Jobs that must run once: signing-key creation and rotation, and the expired-row cleanup

/// The `kid` and `alg` of a compact JWS's header.
fn jws_header(token: &str) -> (String, String) {
    use base64::Engine as _;
    let h = token.split('.').next().unwrap();
    let h: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap();
    (
        h["kid"].as_str().unwrap().to_string(),
        h["alg"].as_str().unwrap().to_string(),
    )
}

/// Verifies an ID token with the JWKS document `jwks` (as a relying party would).
fn verify_with_jwks(token: &str, jwks: &Value) -> Result<Value, String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (kid, alg) = jws_header(token);
    let alg = bridge::domain::oidc::SigningAlg::parse(&alg).ok_or("unknown alg")?;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let sig = b64.decode(sig).map_err(|e| e.to_string())?;
    bridge::oidc::keys::verify_jwk(jwk, alg, signed.as_bytes(), &sig)
        .map_err(|_| format!("the signature does not verify with {kid}"))?;
    let payload = signed.split('.').nth(1).unwrap();
    serde_json::from_slice(&b64.decode(payload).unwrap()).map_err(|e| e.to_string())
}

impl Cluster {
    /// `/oidc/jwks` of instance `i`, parsed.
    async fn jwks(&self, i: usize) -> Value {
        let r = self
            .http
            .get(format!("{}/oidc/jwks", self.base(i)))
            .header("host", DOMAIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "JWKS of {}", self.nodes[i].name);
        r.json().await.unwrap()
    }

    /// The signing keys in the database: (alg, kid, active) by alg and kid.
    async fn key_rows(&self) -> Vec<(String, String, bool)> {
        let Store::Postgres(p) = &self.st.store else {
            unreachable!("the cluster runs on PostgreSQL")
        };
        sqlx::query_as(
            "SELECT alg, kid, retired_at IS NULL FROM oidc_keys WHERE tenant_id = $1 ORDER BY alg, kid",
        )
        .bind(self.tenant_id)
        .fetch_all(p)
        .await
        .unwrap()
    }

    /// The member's browser `m` asks instance `i` for a code for `client_id` (PKCE);
    /// returns the code and its verifier.
    async fn oidc_code(&self, m: &Browser, i: usize, client_id: &str) -> (String, String) {
        use base64::Engine as _;
        use sha2::Digest as _;
        let verifier = format!(
            "{}{}",
            bridge::auth::random_token(),
            bridge::auth::random_token()
        );
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("client_id", client_id)
            .append_pair("redirect_uri", RP)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid profile")
            .append_pair("state", "jobs")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let p = m
            .get(
                &self.base(i),
                &format!("/oidc/authorize?{}", s.finish()),
                WXWORK_UA,
            )
            .await;
        let to_rp = p.location.clone().unwrap_or_else(|| {
            panic!(
                "authorize on {}: {} {}",
                self.nodes[i].name, p.status, p.body
            )
        });
        assert!(to_rp.starts_with(RP), "{to_rp}");
        (param(&to_rp, "code").expect("a code"), verifier)
    }

    /// Redeems `code` at instance `i`; returns the ID token.
    async fn redeem(&self, i: usize, rp: &(String, String), code: &str, verifier: &str) -> String {
        let r = self
            .http
            .post(format!("{}/oidc/token", self.base(i)))
            .header("host", DOMAIN)
            .basic_auth(&rp.0, Some(&rp.1))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", RP),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "token at {}: {v}", self.nodes[i].name);
        v["id_token"].as_str().unwrap().to_string()
    }
}

/// Three instances create the first signing keys at once and later rotate due keys at
/// once: one active key per algorithm, no key made by a loser is stored, every instance
/// publishes the same JWKS, and an ID token signed by one verifies with the JWKS served by
/// another. Expired rows (handled callbacks, OIDC tokens, grants and codes, member
/// sessions and their revocation log) are deleted while all three prune at once, with no
/// error, and live rows stay. Due-ness comes from the database (the children keep the
/// real clock): handled callbacks received 49 h ago, keys made 91 days ago.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_rotation_and_cleanup_run_once_across_instances() {
    let Some(url) = postgres_url().await else {
        eprintln!(
            "cluster_e2e: skipped, TEST_DATABASE_URL is not set (the cluster needs PostgreSQL)"
        );
        return;
    };
    const EXPIRED: i64 = 5_000;
    let mut c = setup_with(url, 40).await;
    let Store::Postgres(pg) = c.st.store.clone() else {
        unreachable!()
    };
    let tenant = c.st.store.tenant_by_slug("default").await.unwrap().unwrap();
    let synced = bridge::sync::run_full(
        &c.st,
        &tenant,
        bridge::sync::SyncOptions::new(bridge::domain::directory::Trigger::Console, "test"),
    )
    .await
    .unwrap();
    assert_eq!(synced.status, RunStatus::Succeeded, "{:?}", synced.message);
    let dir = c.directory().await;
    let mut people: Vec<_> = dir
        .users
        .iter()
        .filter(|u| u.status != bridge::domain::user::UserStatus::Disabled)
        .map(|u| (u.record.userid.clone(), u.id))
        .collect();
    people.sort();
    let (userid, user_id) = people[0].clone();
    // Before any row is seeded: this process's own session cache prunes on its first read.
    bridge::admin::change_status(
        &c.st,
        &bridge::auth::MemberSessions::new(&c.st.cfg),
        c.tenant_id,
        bridge::admin::StatusOrder {
            selection: bridge::admin::Selection::Ids(&[user_id]),
            action: bridge::admin::StatusAction::Authorize,
            dry_run: false,
        },
        "test",
        None,
    )
    .await
    .unwrap();
    bridge::admin::set_login_config(
        &c.st,
        c.tenant_id,
        &[(bridge::domain::login::IdentitySource::Wecom, true)],
        "test",
        None,
    )
    .await
    .unwrap();

    // Rows past their time, and live ones beside them.
    let now = bridge::domain::now_ms();
    let day = 24 * 3_600_000i64;
    for sql in [
        // Handled callbacks received 49 h ago (kept 48 h), and one an hour ago.
        "INSERT INTO callback_events (tenant_id, xml_sha256, change_type, payload, status, received_at, applied_at)
         SELECT $1, 'old-' || g, 'update_user', '<xml/>', 'applied', $2 - 49 * 3600000, $2 - 49 * 3600000
         FROM generate_series(1, $3) g",
        "INSERT INTO callback_events (tenant_id, xml_sha256, change_type, payload, status, received_at, applied_at)
         SELECT $1, 'fresh-applied', 'update_user', '<xml/>', 'applied', $2 - 3600000, $2 - 3600000
         WHERE $3 > 0",
        // OIDC: expired access tokens of grants made a day ago, codes expired an hour ago.
        "INSERT INTO oidc_grants (id, tenant_id, client_id, user_id, scope, auth_time, locale, created_at)
         SELECT 'old-grant-' || g, $1, 'gone', 1, 'openid', $2 - 86400000, 'zh-CN', $2 - 86400000
         FROM generate_series(1, $3) g",
        "INSERT INTO oidc_tokens (token_hash, grant_id, tenant_id, user_id, kind, expires_at, created_at)
         SELECT 'old-token-' || g, 'old-grant-' || g, $1, 1, 'access', $2 - 3600000, $2 - 86400000
         FROM generate_series(1, $3) g",
        "INSERT INTO oidc_tokens (token_hash, grant_id, tenant_id, user_id, kind, expires_at, created_at)
         VALUES ('live-token', 'old-grant-1', $1, 1, 'access', $2 + 3600000, $2)",
        "INSERT INTO oidc_codes (code_hash, tenant_id, client_id, user_id, redirect_uri, scope, auth_time, locale, expires_at)
         SELECT 'old-code-' || g, $1, 'gone', 1, 'https://rp', 'openid', $2 - 7200000, 'zh-CN', $2 - 3600000
         FROM generate_series(1, $3) g",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(c.tenant_id)
            .bind(now)
            .bind(EXPIRED)
            .execute(&pg)
            .await
            .unwrap();
    }
    // Member sessions made a year ago (past any lifetime) and revocation-log rows as old.
    sqlx::query(
        "INSERT INTO user_sessions (id_hash, tenant_id, user_id, via, created_at, last_seen_at)
         SELECT 'old-session-' || g, $1, $2, 'wecom_client', $3 - 365 * 86400000::bigint, $3 - 365 * 86400000::bigint
         FROM generate_series(1, $4) g",
    )
    .bind(c.tenant_id)
    .bind(user_id)
    .bind(now)
    .bind(EXPIRED)
    .execute(&pg)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO session_revocations (tenant_id, id_hash, at)
         SELECT $1, 'old-revoked-' || g, $2 - 365 * 86400000::bigint FROM generate_series(1, $3) g",
    )
    .bind(c.tenant_id)
    .bind(now)
    .bind(EXPIRED)
    .execute(&pg)
    .await
    .unwrap();
    let count = |sql: &'static str| {
        let pg = pg.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pg)
                .await
                .unwrap()
        }
    };

    // Three instances started together: each purges handled callbacks in its first
    // background round, a second after its start.
    let started = Instant::now();
    let nodes: Vec<Instance> = ['A', 'B', 'C'].into_iter().map(|n| c.start(n)).collect();
    for n in &nodes {
        c.ready(n).await;
    }
    c.nodes = nodes;
    loop {
        let left =
            count("SELECT COUNT(*) FROM callback_events WHERE xml_sha256 LIKE 'old-%'").await;
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{left} handled callbacks past 48 h are still there 20 s after the start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let purged_in = started.elapsed();
    assert_eq!(
        count("SELECT COUNT(*) FROM callback_events WHERE xml_sha256 = 'fresh-applied'").await,
        1,
        "a callback handled an hour ago is kept"
    );

    // ---- The first signing keys, created by the three at once.
    let jwks = futures::future::join_all((0..3).map(|i| c.jwks(i))).await;
    let rows = c.key_rows().await;
    assert_eq!(
        rows.iter().map(|r| (r.0.as_str(), r.2)).collect::<Vec<_>>(),
        vec![("ES256", true), ("RS256", true)],
        "three instances creating the first keys at once store one key per algorithm: {rows:?}"
    );
    let kids = |j: &Value| {
        let mut k: Vec<String> = j["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    };
    let first: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    for (i, j) in jwks.iter().enumerate() {
        let mut want = first.clone();
        want.sort();
        assert_eq!(kids(j), want, "JWKS of {}", c.nodes[i].name);
    }

    // ---- Keys made 91 days ago are due: twelve requests on three instances at once.
    sqlx::query("UPDATE oidc_keys SET created_at = created_at - $1 WHERE tenant_id = $2")
        .bind(bridge::domain::oidc::KEY_ROTATE_AFTER_MS + day)
        .bind(c.tenant_id)
        .execute(&pg)
        .await
        .unwrap();
    let jwks = futures::future::join_all((0..12).map(|n| c.jwks(n % 3))).await;
    let rows = c.key_rows().await;
    let active: Vec<_> = rows.iter().filter(|r| r.2).collect();
    assert_eq!(
        active.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        vec!["ES256", "RS256"],
        "after a rotation raced by three instances: one active key per algorithm: {rows:?}"
    );
    assert_eq!(
        rows.len(),
        4,
        "the old key and one new key per algorithm; a loser's key is not stored: {rows:?}"
    );
    for r in &active {
        assert!(!first.contains(&r.1), "{} was rotated: {rows:?}", r.0);
    }
    let all: Vec<String> = {
        let mut k: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
        k.sort();
        k
    };
    for (n, j) in jwks.iter().enumerate() {
        assert_eq!(
            kids(j),
            all,
            "JWKS answer {n} (of {}): the new keys and the retired ones still published",
            c.nodes[n % 3].name
        );
    }

    // ---- A member signs in; each instance's first member request (at once) prunes the
    // sessions past their lifetime and the old revocation log.
    let m = c.browser();
    let p = c.sign_in(&m, &userid, 0, 1).await;
    assert_eq!(p.status, 303, "sign-in: {}", p.body);
    let bases: Vec<String> = (0..3).map(|i| c.base(i)).collect();
    let pages = futures::future::join_all(bases.iter().map(|b| m.get(b, "/", WXWORK_UA))).await;
    for (i, p) in pages.iter().enumerate() {
        assert_eq!(
            p.status, 200,
            "{}: {:?} {}",
            c.nodes[i].name, p.location, p.body
        );
    }

    // ---- ID tokens: codes from all three at once (each instance's first authorize
    // prunes the expired OIDC rows), each redeemed at the next instance and verified with
    // the JWKS of the one after it; for both algorithms.
    let mut clients = Vec::new();
    for alg in bridge::domain::oidc::SigningAlg::ALL {
        let rp = bridge::oidc::clients::register(
            &c.st,
            c.tenant_id,
            "test",
            None,
            &bridge::oidc::clients::NewClient {
                name: format!("RP {}", alg.as_str()),
                redirect_uris: RP.into(),
                id_token_alg: Some(alg),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
        clients.push((
            alg,
            (rp.client.client_id.clone(), rp.secret.clone().unwrap()),
        ));
    }
    let mut verified = 0;
    for (alg, rp) in &clients {
        let codes = futures::future::join_all((0..3).map(|i| c.oidc_code(&m, i, &rp.0))).await;
        for (i, (code, verifier)) in codes.iter().enumerate() {
            let (signer, publisher) = ((i + 1) % 3, (i + 2) % 3);
            let id_token = c.redeem(signer, rp, code, verifier).await;
            let (kid, header_alg) = jws_header(&id_token);
            assert_eq!(header_alg, alg.as_str());
            assert!(
                active.iter().any(|r| r.1 == kid),
                "{} signed with the active {} key: {kid}",
                c.nodes[signer].name,
                alg.as_str()
            );
            let claims =
                verify_with_jwks(&id_token, &c.jwks(publisher).await).unwrap_or_else(|e| {
                    panic!(
                        "an ID token signed by {} must verify with the JWKS of {}: {e}",
                        c.nodes[signer].name, c.nodes[publisher].name
                    )
                });
            assert_eq!(claims["sub"], user_id.to_string());
            verified += 1;
        }
    }
    assert_eq!(verified, 6);

    // ---- What the prunes left: nothing expired, everything live.
    for (sql, want, what) in [
        (
            "SELECT COUNT(*) FROM oidc_tokens WHERE token_hash LIKE 'old-token-%'",
            0,
            "expired OIDC tokens",
        ),
        (
            "SELECT COUNT(*) FROM oidc_tokens WHERE token_hash = 'live-token'",
            1,
            "a live OIDC token",
        ),
        // Grant 1 still has the live token; the other old grants have none left.
        (
            "SELECT COUNT(*) FROM oidc_grants WHERE id LIKE 'old-grant-%'",
            1,
            "old grants without tokens",
        ),
        (
            "SELECT COUNT(*) FROM oidc_codes WHERE code_hash LIKE 'old-code-%'",
            0,
            "codes expired an hour ago",
        ),
        (
            "SELECT COUNT(*) FROM user_sessions WHERE id_hash LIKE 'old-session-%'",
            0,
            "sessions a year old",
        ),
        (
            "SELECT COUNT(*) FROM session_revocations WHERE id_hash LIKE 'old-revoked-%'",
            0,
            "revocation-log rows a year old",
        ),
    ] {
        assert_eq!(count(sql).await, want, "{what}");
    }
    assert!(
        count("SELECT COUNT(*) FROM user_sessions").await >= 1,
        "the member's live session is kept"
    );
    // No instance logged a failure (they log at warn and above).
    for n in &c.nodes {
        let log = std::fs::read_to_string(c.dir.join(format!("{}-{}.log", n.name, n.addr.port())))
            .unwrap();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            // sqlx warns of any statement over a second: the shared test machine's load,
            // not a failure of the job (seen: an advisory lock waited 1.3 s under load).
            .filter(|l| !l.contains("slow statement"))
            .collect();
        assert!(bad.is_empty(), "instance {} logged: {bad:#?}", n.name);
    }
    eprintln!(
        "cluster jobs: {EXPIRED} rows of each kind past their time; handled callbacks purged {} ms after the three started; keys created and rotated once by 3 and 12 racing requests; 6 ID tokens verified across instances",
        purged_in.as_millis()
    );

    for n in &mut c.nodes {
        let _ = n.child.kill();
        let _ = n.child.wait();
    }
    c.st.store.close().await;
    let _ = std::fs::remove_dir_all(&c.dir);
}
