//! Simulator latency on a generated 100k-member org, over real HTTP on loopback:
//! the pages a full sync reads (department/list, user/list per department, tag/get) and
//! the contact-sync `user/list_id` 10,000-row pages.
//!
//! `cargo bench -p wecom-sim --bench big_pages` (release). Figures are wall-clock on a
//! shared 2-core machine: compare runs, not absolute numbers.

use std::time::{Duration, Instant};
use wecom_sim::generate::{generate, GenerateOptions, APP_AGENTID};
use wecom_sim::{launch, Sim};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let t0 = Instant::now();
    let sc = generate(&GenerateOptions {
        members: 100_000,
        departments: 5_000,
        tags: 200,
        seed: 42,
    });
    let gen = t0.elapsed();
    let corp = sc.corps[0].clone();
    let app_secret = corp
        .apps
        .iter()
        .find(|a| a.agentid == APP_AGENTID)
        .expect("generated app")
        .secret
        .clone();
    let sync_secret = corp
        .contact_sync_secret
        .clone()
        .expect("contact-sync secret");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = launch(Sim::from_scenario(sc), listener).await.unwrap();
    let http = reqwest::Client::new();
    let base = sim.api_base();
    let token = |secret: String| {
        let (http, base, corpid) = (http.clone(), base.clone(), corp.corpid.clone());
        async move {
            let v: serde_json::Value = http
                .get(format!("{base}gettoken"))
                .query(&[("corpid", corpid.as_str()), ("corpsecret", secret.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["access_token"].as_str().unwrap().to_string()
        }
    };
    let app = token(app_secret).await;
    let sync = token(sync_secret).await;

    println!(
        "generated 100,000 members / 5,000 departments / 200 tags in {:.0} ms",
        ms(gen)
    );

    // department/list: the first call computes the 100k-member scope (cached after).
    let mut first = None;
    let mut dl = Vec::new();
    let mut depts = Vec::new();
    for i in 0..6 {
        let t = Instant::now();
        let v: serde_json::Value = http
            .get(format!("{base}department/list"))
            .query(&[("access_token", app.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let d = t.elapsed();
        if i == 0 {
            first = Some(d);
            depts = v["department"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_u64().unwrap())
                .collect();
        } else {
            dl.push(d);
        }
    }
    println!(
        "department/list (5,000 departments): first {:.1} ms (builds the scope), then p50 {:.1} ms",
        ms(first.unwrap()),
        ms(pct(&mut dl, 0.5))
    );

    // user/list for every department, sequentially (latency per call).
    let mut ul = Vec::with_capacity(depts.len());
    let t = Instant::now();
    for d in &depts {
        let s = Instant::now();
        let r = http
            .get(format!("{base}user/list"))
            .query(&[
                ("access_token", app.as_str()),
                ("department_id", &d.to_string()),
            ])
            .send()
            .await
            .unwrap();
        let _ = r.bytes().await.unwrap();
        ul.push(s.elapsed());
    }
    let total = t.elapsed();
    println!(
        "user/list × {}: total {:.2} s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        depts.len(),
        total.as_secs_f64(),
        ms(pct(&mut ul, 0.5)),
        ms(pct(&mut ul, 0.99)),
        ms(*ul.last().unwrap())
    );

    // user/list_id: 10,000-row pages with the contact-sync secret.
    let mut pages = Vec::new();
    let mut cursor = String::new();
    let mut rows = 0usize;
    loop {
        let s = Instant::now();
        let v: serde_json::Value = http
            .post(format!("{base}user/list_id"))
            .query(&[("access_token", sync.as_str())])
            .json(&serde_json::json!({"cursor": cursor, "limit": 10000}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages.push(s.elapsed());
        rows += v["dept_user"].as_array().unwrap().len();
        cursor = v["next_cursor"].as_str().unwrap_or("").to_string();
        if cursor.is_empty() {
            break;
        }
    }
    println!(
        "user/list_id: {} pages, {} rows; 10,000-row page p50 {:.1} ms, max {:.1} ms (target: well under 50 ms)",
        pages.len(),
        rows,
        ms(pct(&mut pages.clone(), 0.5)),
        ms(*pages.iter().max().unwrap())
    );
    sim.stop().await;
}
