//! OpenID Connect provider performance with wecom-sim on the same machine, on SQLite (and
//! PostgreSQL with TEST_DATABASE_URL):
//!
//! 1. full authorize → token → userinfo flows per second for a signed-in member (the code
//!    issued from the existing session, exchanged with client_secret_basic, an RS256 ID
//!    token signed, userinfo read);
//! 2. token-endpoint requests per second (refresh_token grants: client authentication,
//!    rotation, a new RS256 ID token);
//! 3. signing cost per ID token, RS256 (2048-bit) and ES256, in-process with ring: the
//!    bare signature over a typical claim set, and `keys::sign` (active-key look-up in the
//!    store included).
//!
//! Each figure is measured in ROUNDS rounds; the median round and the range are printed.
//! `cargo bench -p wecom-bridge --bench oidc`. Wall-clock on a shared machine.

#[path = "../tests/common/mod.rs"]
mod common;

use bridge::domain::oidc::SigningAlg;
use bridge::domain::tenant::Edition;
use bridge::domain::user::UserStatus;
use bridge::oidc::keys;
use bridge::store::WecomUserSeed;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};

const UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1";
const RP: &str = "https://rp.example.com/callback";
const ROUNDS: usize = 5;
const FLOWS: usize = 100;
const TOKEN_REQUESTS: usize = 200;
const SIGNATURES: usize = 300;

/// (median, min, max) of per-round figures.
fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn param(url: &str, k: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {k} in {url}"))
}

struct Ctx {
    http: reqwest::Client,
    bridge: String,
    host: String,
    client_id: String,
    secret: String,
    session: String,
}

impl Ctx {
    async fn token(&self, form: &[(&str, &str)]) -> Value {
        let r = self
            .http
            .post(format!("{}/oidc/token", self.bridge))
            .header("host", &self.host)
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// authorize (session) → code → token → userinfo.
    async fn flow(&self) -> String {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", RP)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid profile groups")
            .append_pair("state", "s")
            .append_pair("nonce", "n")
            .finish();
        let r = self
            .http
            .get(format!("{}/oidc/authorize?{q}", self.bridge))
            .header("host", &self.host)
            .header("user-agent", UA)
            .header("cookie", format!("wb_session={}", self.session))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let code = param(r.headers()["location"].to_str().unwrap(), "code");
        let t = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP),
            ])
            .await;
        let r = self
            .http
            .get(format!("{}/oidc/userinfo", self.bridge))
            .header("host", &self.host)
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        t["refresh_token"].as_str().unwrap().to_string()
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
            &[("csrf", &csrf), ("wecom", "on")],
        )
        .await;
    assert_eq!(r.status, 303);
    let st = &env.bridge.state;
    let tenant = st.store.tenant_by_slug("default").await.unwrap().unwrap();
    st.store
        .upsert_wecom_user(
            tenant.id,
            CORPID,
            &WecomUserSeed {
                userid: "zhangsan".into(),
                name: "张三".into(),
                status: UserStatus::Authorized,
                position: String::new(),
                departments: vec![(2, "研发中心".into(), 1), (3, "后端组".into(), 2)],
                tags: vec![(1, "项目A".into())],
            },
        )
        .await
        .unwrap();
    let p = env
        .browser
        .post(
            "/console/oidc/clients",
            &[
                ("csrf", &csrf),
                ("name", "bench"),
                ("kind", "confidential"),
                ("redirect_uris", RP),
            ],
        )
        .await;
    let grab = |id: &str| {
        let needle = format!("data-testid=\"{id}\">");
        let i = p.body.find(&needle).unwrap() + needle.len();
        p.body[i..i + p.body[i..].find('<').unwrap()].to_string()
    };
    let (client_id, secret) = (grab("new-client-id"), grab("new-client-secret"));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(16)
        .build()
        .unwrap();
    let bridge = format!("http://{}", env.bridge.addr);
    // One silent in-client sign-in for the member session the flows reuse.
    let r = http
        .get(format!("{bridge}/wecom/home"))
        .header("host", &env.domain)
        .header("user-agent", UA)
        .send()
        .await
        .unwrap();
    let binding = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|c| c.to_str().ok()?.strip_prefix("wb_oauth="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let to_wecom = r.headers()["location"].to_str().unwrap().to_string();
    let r = http
        .get(format!(
            "{}&sim_userid=zhangsan",
            to_wecom.split('#').next().unwrap()
        ))
        .header("user-agent", UA)
        .send()
        .await
        .unwrap();
    let cb = r.headers()["location"].to_str().unwrap().to_string();
    let r = http
        .get(format!("{bridge}{}", &cb[cb.find("/auth/").unwrap()..]))
        .header("host", &env.domain)
        .header("user-agent", UA)
        .header("cookie", format!("wb_oauth={binding}"))
        .send()
        .await
        .unwrap();
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|c| c.to_str().ok()?.strip_prefix("wb_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let ctx = Ctx {
        http,
        bridge,
        host: env.domain.clone(),
        client_id,
        secret,
        session,
    };

    // Warm-up: keys generated, connections and statements ready.
    let mut refresh = String::new();
    for _ in 0..20 {
        refresh = ctx.flow().await;
    }

    let mut flows = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..FLOWS {
            ctx.flow().await;
        }
        flows.push(FLOWS as f64 / t.elapsed().as_secs_f64());
    }

    let mut tokens = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..TOKEN_REQUESTS {
            let v = ctx
                .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
                .await;
            refresh = v["refresh_token"].as_str().unwrap().to_string();
        }
        tokens.push(TOKEN_REQUESTS as f64 / t.elapsed().as_secs_f64());
    }

    let now = bridge::domain::now_ms();
    let claims = json!({
        "iss": format!("http://{}", env.domain), "sub": "1", "aud": ctx.client_id,
        "iat": now / 1000, "exp": now / 1000 + 600, "auth_time": now / 1000,
        "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "name": "张三", "preferred_username": "zhangsan", "locale": "zh-CN",
        "groups": ["研发中心", "后端组", "项目A"],
    });
    let mut sign = Vec::new();
    for alg in SigningAlg::ALL {
        let signer = keys::Signer::from_pkcs8(alg, &keys::generate_pkcs8(alg).unwrap()).unwrap();
        let mut bare = Vec::new();
        let mut with_store = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            for _ in 0..SIGNATURES {
                keys::sign_with(&signer, alg, "kid", &claims).unwrap();
            }
            bare.push(t.elapsed().as_secs_f64() * 1e6 / SIGNATURES as f64);
            let cache = keys::KeyCache::default();
            let t = Instant::now();
            for _ in 0..SIGNATURES {
                keys::sign(st, &cache, tenant.id, alg, &claims, now)
                    .await
                    .unwrap();
            }
            with_store.push(t.elapsed().as_secs_f64() * 1e6 / SIGNATURES as f64);
        }
        sign.push((alg, summary(bare), summary(with_store)));
    }

    println!(
        "\n== {} == (median of {ROUNDS} rounds [min – max])",
        st.store.engine()
    );
    let (m, lo, hi) = summary(flows);
    println!("full authorize → token → userinfo flows, 1 client, session reused, sim idle:");
    println!("  {m:.0}/s [{lo:.0} – {hi:.0}] ({FLOWS} flows a round)");
    let (m, lo, hi) = summary(tokens);
    println!("token endpoint (refresh_token grant: Basic auth, rotation, RS256 ID token):");
    println!("  {m:.0} requests/s [{lo:.0} – {hi:.0}] ({TOKEN_REQUESTS} a round)");
    println!("signing cost per ID token ({SIGNATURES} a round):");
    for (alg, (m, lo, hi), (sm, slo, shi)) in sign {
        println!(
            "  {}: signature {m:.1} µs [{lo:.1} – {hi:.1}]; keys::sign with the store's active-key read {sm:.1} µs [{slo:.1} – {shi:.1}]",
            alg.as_str()
        );
    }
    env.bridge.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for db in bridge::testing::database_urls().await {
        run(&db).await;
    }
}
