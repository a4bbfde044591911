//! Operations end to end, on SQLite and (with TEST_DATABASE_URL) PostgreSQL: /healthz
//! and /readyz on any Host, the request id header, and /metrics parsed as Prometheus
//! text with every family present after a sync and a sign-in.

mod common;

use bridge::config::Config;
use bridge::domain::directory::Trigger;
use bridge::domain::tenant::Edition;
use bridge::sync::{run_full, SyncOptions};
use bridge::testing::database_urls;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};
use wecom_sim::Sim;

const WXWORK_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Both servers with `tweak` applied to the bridge's configuration.
async fn start_with(db: &str, tweak: impl FnOnce(&mut Config)) -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let domain = format!("acme.localhost:{port}");
    let mut scenario = wecom_sim::fixtures::small_org();
    for app in &mut scenario.corps[0].apps {
        app.redirect_domain = domain.clone();
        app.web_login_domain = domain.clone();
        app.home_url = format!("http://{domain}/wecom/home");
    }
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = wecom_sim::launch(Sim::from_scenario(scenario), sim_listener)
        .await
        .unwrap();
    let data_dir = std::env::temp_dir().join(format!("bridge-ops-{}", rand::random::<u64>()));
    let mut cfg = config(&sim, &data_dir, db, &domain, Edition::Professional);
    tweak(&mut cfg);
    let bridge = bridge::launch(cfg, listener).await.unwrap();
    let browser = Browser::new(bridge.addr, &domain);
    Env {
        sim,
        bridge,
        domain,
        data_dir,
        database_url: db.to_string(),
        browser,
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(addr: std::net::SocketAddr, host: &str, path: &str, rid: Option<&str>) -> Answer {
    let mut req = http()
        .get(format!("http://{addr}{path}"))
        .header("host", host);
    if let Some(r) = rid {
        req = req.header("x-request-id", r);
    }
    let resp = req.send().await.unwrap();
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

#[tokio::test]
async fn health_readiness_and_request_ids() {
    for db in database_urls().await {
        let env = start_with(&db, |_| {}).await;
        let addr = env.bridge.addr;
        // Any Host: no tenant is resolved for these.
        for host in [env.domain.as_str(), "nobody.example", "10.0.0.7:8080"] {
            let h = get(addr, host, "/healthz", None).await;
            assert_eq!(h.status, 200, "{db} {host}: {}", h.body);
            assert_eq!(h.body.trim(), "ok");
            let r = get(addr, host, "/readyz", None).await;
            assert_eq!(r.status, 200, "{db} {host}: {}", r.body);
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(v["ready"], true, "{}", r.body);
            assert_eq!(v["database"], "ok");
            assert_eq!(v["migrations"], "ok");
            assert_eq!(v["instance_key"], "ok");
        }
        // Metrics are off by default.
        assert_eq!(get(addr, &env.domain, "/metrics", None).await.status, 404);

        // A sane incoming id is echoed; an insane or missing one is replaced by a fresh one.
        let a = get(addr, &env.domain, "/login", Some("req-42.a:b/c_d")).await;
        assert_eq!(a.headers["x-request-id"], "req-42.a:b/c_d");
        let b = get(addr, &env.domain, "/login", Some("bad id <script>")).await;
        let fresh = b.headers["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(fresh.len(), 32, "{fresh}");
        assert!(fresh.bytes().all(|c| c.is_ascii_hexdigit()));
        let c = get(addr, &env.domain, "/healthz", None).await;
        let other = c.headers["x-request-id"].to_str().unwrap();
        assert_eq!(other.len(), 32);
        assert_ne!(other, fresh, "each request gets its own id");
        // Errors carry it too: an unknown page, an unknown host.
        for (host, path) in [
            (env.domain.as_str(), "/no/such/page"),
            ("nobody.example", "/login"),
        ] {
            let e = get(addr, host, path, Some("err-1")).await;
            assert!(e.status >= 400, "{host}{path}: {}", e.status);
            assert_eq!(e.headers["x-request-id"], "err-1", "{host}{path}");
        }

        // A migration missing from the database: not ready, and it says which.
        let store = &env.bridge.state.store;
        let max: i64 = match store {
            bridge::store::Store::Sqlite(p) => {
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(p)
                    .await
                    .unwrap()
            }
            bridge::store::Store::Postgres(p) => {
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(p)
                    .await
                    .unwrap()
            }
        };
        let q = "DELETE FROM _sqlx_migrations WHERE version = $1";
        match store {
            bridge::store::Store::Sqlite(p) => {
                sqlx::query(q).bind(max).execute(p).await.map(|_| ())
            }
            bridge::store::Store::Postgres(p) => {
                sqlx::query(q).bind(max).execute(p).await.map(|_| ())
            }
        }
        .unwrap();
        let r = get(addr, "anything.example", "/readyz", None).await;
        assert_eq!(r.status, 503, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["ready"], false);
        assert_eq!(v["database"], "ok");
        assert!(
            v["migrations"].as_str().unwrap().contains(&max.to_string()),
            "{}",
            r.body
        );
        // The process is still alive.
        assert_eq!(get(addr, "x", "/healthz", None).await.status, 200);
        env.bridge.stop().await;
    }
}

/// One sample of a Prometheus text exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (0.0.4): `# HELP`/`# TYPE` lines, samples with
/// optional labels (quoted values with `\\`, `\"`, `\n` escapes) and a float value.
/// Panics on any line it does not understand; returns the declared families (name ->
/// type) and the samples.
fn parse_prometheus(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut families = BTreeMap::new();
    let mut samples = Vec::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name), "bad family name {name:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type {kind:?}"
            );
            families.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => panic!("sample without value: {line:?}"),
        };
        assert!(valid_name(name), "bad sample name {name:?} in {line:?}");
        let mut labels = BTreeMap::new();
        let rest: String = if let Some(body) = rest.strip_prefix('{') {
            let c: Vec<char> = body.chars().collect();
            let mut i = 0;
            loop {
                if c[i] == '}' {
                    i += 1;
                    break;
                }
                let start = i;
                while c[i] != '=' {
                    i += 1;
                }
                let lname: String = c[start..i].iter().collect();
                assert!(valid_name(&lname), "bad label name {lname:?} in {line:?}");
                assert_eq!(c[i + 1], '"', "quoted label value in {line:?}");
                i += 2;
                let mut value = String::new();
                loop {
                    match c[i] {
                        '\\' => {
                            value.push(if c[i + 1] == 'n' { '\n' } else { c[i + 1] });
                            i += 2;
                        }
                        '"' => {
                            i += 1;
                            break;
                        }
                        other => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
                labels.insert(lname, value);
                match c[i] {
                    ',' => i += 1,
                    '}' => {}
                    _ => panic!("bad label list in {line:?}"),
                }
            }
            c[i..].iter().collect()
        } else {
            rest.to_string()
        };
        let mut parts = rest.split_whitespace();
        let v = parts.next().unwrap_or_else(|| panic!("no value: {line:?}"));
        let value = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value {v:?} in {line:?}")),
        };
        if let Some(ts) = parts.next() {
            ts.parse::<i64>()
                .unwrap_or_else(|_| panic!("bad timestamp in {line:?}"));
        }
        assert!(parts.next().is_none(), "trailing text in {line:?}");
        // Every sample belongs to a declared family.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s).filter(|f| {
                    families
                        .get(*f)
                        .is_some_and(|k| k == "histogram" || k == "summary")
                })
            })
            .unwrap_or(name);
        assert!(
            families.contains_key(family),
            "sample {name} without a # TYPE line"
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (families, samples)
}

fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

#[test]
fn the_parser_reads_what_prometheus_writes() {
    let (f, s) = parse_prometheus(
        "# HELP x_total a help\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"u,o}te\"} 3\n\
         # TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n# TYPE g gauge\ng 1e3 1700000000\n",
    );
    assert_eq!(f.len(), 3);
    assert_eq!(s.len(), 5);
    assert_eq!(s[0].labels["b"], "q\"u,o}te");
    assert_eq!(s[0].labels["a"], "1");
    assert_eq!(s[4].value, 1000.0);
    assert!(std::panic::catch_unwind(|| parse_prometheus("# TYPE a counter\nb 1\n")).is_err());
    assert!(std::panic::catch_unwind(|| parse_prometheus("# TYPE a counter\na one\n")).is_err());
}

/// Signs `userid` in inside WeCom (through the simulator's authorize page).
async fn member_sign_in(env: &Env, userid: &str) -> Page {
    let b = Browser::new(env.bridge.addr, &env.domain);
    let http = http();
    let mut p = b
        .send(
            http.get(b.url("/wecom/home"))
                .header("user-agent", WXWORK_UA),
        )
        .await;
    for _ in 0..4 {
        let Some(loc) = p.location.clone() else { break };
        if loc.starts_with(&env.sim.base_url) {
            let r = http
                .get(format!(
                    "{}&sim_userid={userid}",
                    loc.split('#').next().unwrap()
                ))
                .header("user-agent", WXWORK_UA)
                .send()
                .await
                .unwrap();
            let cb = r.headers()["location"].to_str().unwrap().to_string();
            let local = cb
                .strip_prefix(&format!("http://{}", env.domain))
                .unwrap()
                .to_string();
            p = b
                .send(http.get(b.url(&local)).header("user-agent", WXWORK_UA))
                .await;
            break;
        } else if loc.starts_with('/') && loc != "/" {
            p = b
                .send(http.get(b.url(&loc)).header("user-agent", WXWORK_UA))
                .await;
        } else {
            break;
        }
    }
    p
}

#[tokio::test]
async fn metrics_after_a_sync_and_a_sign_in() {
    for db in database_urls().await {
        let env = start_with(&db, |c| c.metrics_enabled = true).await;
        let csrf = env.admin_login().await;
        let r = env
            .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let r = env
            .browser
            .post(
                "/console/settings/login",
                &[("csrf", &csrf), ("wecom", "on")],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let st = &env.bridge.state;
        let tenant = st.store.tenant_by_slug("default").await.unwrap().unwrap();
        let o = run_full(st, &tenant, SyncOptions::new(Trigger::Console, "admin"))
            .await
            .unwrap();
        assert_eq!(o.status.as_str(), "succeeded");
        // A change callback, stored and applied in the background: its lag is measured.
        let xml = "<xml><ToUserName><![CDATA[x]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[lisi]]></UserID></xml>";
        bridge::sync::incremental::receive(st, tenant.id, xml)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        while !st
            .store
            .pending_callbacks(tenant.id, 1)
            .await
            .unwrap()
            .is_empty()
        {
            assert!(started.elapsed().as_secs() < 20, "the callback was applied");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // New members are unauthorized by default: the sign-in is refused, by that cause.
        let p = member_sign_in(&env, "zhangsan").await;
        assert_eq!(p.status, 403, "{}", p.body);
        // A raw path with an id: counted under its template.
        env.browser.get("/console/users/987654").await;

        let m = get(
            env.bridge.addr,
            "metrics-scraper.internal",
            "/metrics",
            None,
        )
        .await;
        assert_eq!(m.status, 200, "{}", m.body);
        assert!(m.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let (families, samples) = parse_prometheus(&m.body);
        let want: BTreeSet<&str> = [
            ("http_requests_total", "counter"),
            ("http_request_duration_seconds", "histogram"),
            ("wecom_bridge_sign_ins_total", "counter"),
            ("wecom_bridge_sync_runs_total", "counter"),
            ("wecom_bridge_sync_run_duration_seconds", "histogram"),
            ("wecom_api_calls_total", "counter"),
            ("wecom_api_call_duration_seconds", "histogram"),
            ("wecom_token_refreshes_total", "counter"),
            ("wecom_bridge_callbacks_pending", "gauge"),
            ("wecom_bridge_callback_oldest_pending_seconds", "gauge"),
            ("wecom_bridge_callback_lag_seconds", "histogram"),
            ("wecom_bridge_db_pool_connections", "gauge"),
            ("wecom_bridge_db_pool_max_connections", "gauge"),
        ]
        .iter()
        .map(|(name, kind)| {
            assert_eq!(
                families.get(*name).map(String::as_str),
                Some(*kind),
                "{db}: family {name} ({kind}) in\n{}",
                m.body
            );
            *name
        })
        .collect();
        assert_eq!(want.len(), 13);
        assert!(
            sum(
                &samples,
                "wecom_bridge_sign_ins_total",
                &[("outcome", "unauthorized")]
            ) >= 1.0,
            "{}",
            m.body
        );
        assert!(
            sum(
                &samples,
                "wecom_bridge_sync_runs_total",
                &[
                    ("kind", "full"),
                    ("trigger", "console"),
                    ("status", "succeeded")
                ]
            ) >= 1.0
        );
        assert!(
            sum(
                &samples,
                "wecom_bridge_sync_run_duration_seconds_count",
                &[]
            ) >= 1.0
        );
        assert!(
            sum(
                &samples,
                "wecom_api_calls_total",
                &[("endpoint", "user/list"), ("errcode", "0")]
            ) + sum(
                &samples,
                "wecom_api_calls_total",
                &[("endpoint", "department/list"), ("errcode", "0")]
            ) >= 2.0,
            "{}",
            m.body
        );
        assert!(
            sum(
                &samples,
                "wecom_token_refreshes_total",
                &[("outcome", "ok")]
            ) >= 1.0
        );
        assert!(
            sum(
                &samples,
                "http_requests_total",
                &[("route", "/console/users/{id}"), ("method", "GET")]
            ) >= 1.0,
            "{}",
            m.body
        );
        assert!(!m.body.contains("987654"), "raw paths are not labels");
        // (The recorder is the process's: counts add up over the engines' rounds.)
        assert!(
            sum(
                &samples,
                "http_requests_total",
                &[("route", "/auth/wecom/callback"), ("status", "403")]
            ) >= 1.0,
            "{}",
            m.body
        );
        assert!(
            sum(
                &samples,
                "wecom_bridge_callback_lag_seconds_count",
                &[("status", "applied")]
            ) >= 1.0,
            "{}",
            m.body
        );
        assert!(sum(&samples, "wecom_bridge_db_pool_max_connections", &[]) >= 1.0);
        assert_eq!(sum(&samples, "wecom_bridge_callbacks_pending", &[]), 0.0);
        env.bridge.stop().await;
    }
}

#[tokio::test]
async fn metrics_on_their_own_listener() {
    let db = database_urls().await.remove(0);
    let env = start_with(&db, |c| {
        c.metrics_enabled = true;
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let maddr = env.bridge.metrics_addr.expect("metrics listener bound");
    assert_ne!(maddr, env.bridge.addr);
    // Not on the main listener.
    assert_eq!(
        get(env.bridge.addr, &env.domain, "/metrics", None)
            .await
            .status,
        404
    );
    get(env.bridge.addr, &env.domain, "/login", None).await;
    let m = get(maddr, "anything", "/metrics", None).await;
    assert_eq!(m.status, 200, "{}", m.body);
    let (families, _) = parse_prometheus(&m.body);
    assert!(families.contains_key("http_requests_total"), "{}", m.body);
    assert!(families.contains_key("wecom_bridge_db_pool_connections"));
    env.bridge.stop().await;
    // Stopped with the server.
    assert!(reqwest::get(format!("http://{maddr}/metrics"))
        .await
        .is_err());
}

/// Collects log output in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn log_lines_of_a_request_carry_its_id() {
    let out = Captured::default();
    let w = out.clone();
    // JSON lines with the current span, as `log_format = "json"` writes them.
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || w.clone())
        .try_init()
        .expect("the first subscriber of this test process");
    let db = database_urls().await.remove(0);
    let env = start_with(&db, |_| {}).await;
    let a = get(env.bridge.addr, &env.domain, "/login", Some("trace-me-7")).await;
    assert_eq!(a.headers["x-request-id"], "trace-me-7");
    env.bridge.stop().await;
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["span"]["id"] == "trace-me-7")
        .collect();
    assert!(!lines.is_empty(), "no line in the request's span:\n{text}");
    let answered = lines
        .iter()
        .find(|v| v["fields"]["message"] == "request answered")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(answered["fields"]["status"], 200);
    assert_eq!(answered["span"]["route"], "/login");
}

/// Graceful shutdown: a request in flight when the stop comes (set-up step 2, waiting a
/// second on WeCom's gettoken) is answered in full and its change kept; new connections
/// are refused from the stop on.
#[tokio::test]
async fn shutdown_finishes_the_requests_in_flight() {
    for db in database_urls().await {
        let mut env = start_with(&db, |_| {}).await;
        let csrf = env.admin_login().await;
        env.sim_admin(
            "POST",
            "/latencies",
            serde_json::json!({"path": "gettoken", "ms": 1000}),
        )
        .await;
        let stop = env.bridge.shutdown_trigger().expect("a running server");
        let addr = env.bridge.addr;
        let agentid = MAIN_AGENTID.to_string();
        let started = std::time::Instant::now();
        let (answer, refused) = tokio::join!(
            env.save_credentials(&csrf, CORPID, &agentid, MAIN_SECRET),
            async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let _ = stop.send(());
                // The listener closes at once; the request above is still being served.
                let mut refused = false;
                for _ in 0..50 {
                    if tokio::net::TcpStream::connect(addr).await.is_err() {
                        refused = true;
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                refused
            }
        );
        assert_eq!(answer.status, 303, "answered in full: {}", answer.body);
        assert!(started.elapsed() >= std::time::Duration::from_millis(1000));
        assert!(refused, "{db}: new connections are refused after the stop");
        let st = &env.bridge.state;
        let t = st.store.tenant_by_slug("default").await.unwrap().unwrap();
        assert!(
            st.store.main_integration(t.id).await.unwrap().is_some(),
            "the in-flight request's change was kept"
        );
    }
}
