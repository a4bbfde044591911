//! What the client adds per call (token cache look-up, query building, errcode check,
//! typed decoding, counters) over a bare reqwest GET of the same URL, both against an
//! in-process wecom-sim on loopback.
//!
//! `cargo bench -p wecom --bench client_overhead`. Wall-clock on a shared 2-core machine:
//! read the difference of medians, not absolute numbers.

use std::time::{Duration, Instant};
use wecom_sim::fixtures::*;
use wecom_sim::{launch, Sim};

const N: usize = 3000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = launch(Sim::from_scenario(small_org()), listener)
        .await
        .unwrap();
    let client = wecom::Client::builder(CORPID, MAIN_SECRET)
        .api_base(sim.api_base())
        .build()
        .unwrap();
    let token = client.access_token().await.unwrap();
    let http = wecom::default_http_client().unwrap();
    let url = format!("{}user/get", sim.api_base());

    // Warm both paths (connections, caches), then interleave to share the machine's noise.
    for _ in 0..200 {
        client.user_get("zhangsan").await.unwrap();
        http.get(&url)
            .query(&[("access_token", token.as_str()), ("userid", "zhangsan")])
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let (mut raw, mut typed) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for _ in 0..N {
        let t = Instant::now();
        let b = http
            .get(&url)
            .query(&[("access_token", token.as_str()), ("userid", "zhangsan")])
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        raw.push(t.elapsed());
        assert!(!b.is_empty());
        let t = Instant::now();
        let m = client.user_get("zhangsan").await.unwrap();
        typed.push(t.elapsed());
        assert_eq!(m.userid, "zhangsan");
    }
    let (r, c) = (median(raw), median(typed));
    println!("user/get × {N} on loopback (sim included):");
    println!(
        "  bare reqwest GET + body: median {:.1} µs",
        r.as_secs_f64() * 1e6
    );
    println!(
        "  wecom::Client::user_get: median {:.1} µs",
        c.as_secs_f64() * 1e6
    );
    println!(
        "  client overhead: {:.1} µs per call ({:.1}% of the round trip)",
        (c.as_secs_f64() - r.as_secs_f64()) * 1e6,
        (c.as_secs_f64() / r.as_secs_f64() - 1.0) * 100.0
    );
    sim.stop().await;
}
