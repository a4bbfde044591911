//! One integration per WeCom app (issue 13 item 1): a database from before migration
//! 0045, with values sealed under the old associated data, opens and works after the
//! upgrade; each app has its own callback URL. Both engines.

mod common;

use base64::Engine as _;
use bridge::app::{seal_context, SEAL_VERSION};
use bridge::domain::doctor::Status;
use bridge::domain::integration::IntegrationRole;
use bridge::domain::tenant::Edition;
use bridge::seal::Sealer;
use bridge::store::Store;
use bridge::testing::database_urls;
use common::{config, start};
use serde_json::json;
use wecom_sim::fixtures::{self, CORPID, MAIN_AGENTID, MAIN_SECRET};
use wecom_sim::Sim;

const INSTANCE_KEY: [u8; 32] = [42; 32];

/// A store migrated only up to (not including) 0045, as a bridge of before the upgrade
/// left it.
async fn store_before_0045(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("pre-0045-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(store.engine());
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let version: u32 = name[..4].parse().unwrap();
        if version < 45 {
            std::fs::copy(e.path(), dir.join(&name)).unwrap();
        }
    }
    let m = sqlx::migrate::Migrator::new(dir.clone()).await.unwrap();
    match &store {
        Store::Sqlite(p) => m.run(p).await.unwrap(),
        Store::Postgres(p) => m.run(p).await.unwrap(),
    }
    std::fs::remove_dir_all(&dir).ok();
    store
}

/// The tenant and its integration as the bridge wrote them before 0045: one row per
/// tenant, sealed under `tenant:T:wecom.FIELD`.
async fn write_old_rows(store: &Store, domain: &str, token: &str, aes_key: &str) -> i64 {
    let sealer = Sealer::from_key(&INSTANCE_KEY).unwrap();
    let old =
        |t: i64, field: &str, v: &str| sealer.seal_str(&format!("tenant:{t}:wecom.{field}"), v);
    macro_rules! write {
        ($p:expr) => {{
            let t: i64 = sqlx::query_scalar(
                "INSERT INTO tenants (slug, name, edition, domain, integration_mode, created_at)
                 VALUES ('default', 'Acme', 'professional', $1, 'self_built', 0) RETURNING id",
            )
            .bind(domain)
            .fetch_one($p)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO wecom_integrations (tenant_id, corpid, agentid, secret_sealed, callback_token_sealed,
                    callback_aes_key_sealed, agent_json, verified_at, callback_verified_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, 1, NULL, 1)",
            )
            .bind(t)
            .bind(CORPID)
            .bind(i64::from(MAIN_AGENTID))
            .bind(old(t, "secret", MAIN_SECRET))
            .bind(old(t, "callback_token", token))
            .bind(old(t, "callback_aes_key", aes_key))
            .execute($p)
            .await
            .unwrap();
            t
        }};
    }
    match store {
        Store::Sqlite(p) => write!(p),
        Store::Postgres(p) => write!(p),
    }
}

#[tokio::test]
async fn a_database_with_old_style_seals_opens_and_works() {
    for db in database_urls().await {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let domain = format!("acme.localhost:{}", listener.local_addr().unwrap().port());
        let mut scenario = fixtures::small_org();
        for app in &mut scenario.corps[0].apps {
            app.redirect_domain = domain.clone();
            app.web_login_domain = domain.clone();
            app.home_url = format!("http://{domain}/wecom/home");
        }
        let sim = wecom_sim::launch(
            Sim::from_scenario(scenario),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        )
        .await
        .unwrap();
        let token = wecom::crypto::generate_token();
        let aes_key = wecom::crypto::generate_encoding_aes_key();
        let old = store_before_0045(&db).await;
        let t = write_old_rows(&old, &domain, &token, &aes_key).await;
        old.close().await;

        // The upgrade: migrations up to date, then the values re-sealed per app.
        let data_dir = std::env::temp_dir().join(format!("bridge-e2e-{}", rand::random::<u64>()));
        let mut cfg = config(&sim, &data_dir, &db, &domain, Edition::Professional);
        cfg.instance_key = base64::engine::general_purpose::STANDARD.encode(INSTANCE_KEY);
        let bridge = bridge::launch(cfg, listener).await.unwrap();
        assert!(bridge.bootstrap.is_none(), "the existing tenant is kept");
        let st = bridge.state.clone();
        let rec = st.store.main_integration(t).await.unwrap().unwrap();
        assert_eq!(
            (rec.role, rec.agentid, rec.seal_version),
            (IntegrationRole::Main, i64::from(MAIN_AGENTID), SEAL_VERSION)
        );
        let sealer = Sealer::from_key(&INSTANCE_KEY).unwrap();
        let a = rec.agentid;
        assert_eq!(
            sealer
                .open_string(&seal_context(t, a, "secret"), &rec.secret_sealed)
                .unwrap(),
            MAIN_SECRET
        );
        assert_eq!(
            format!("tenant:{t}:wecom:{a}:secret"),
            seal_context(t, a, "secret")
        );
        assert!(
            sealer
                .open(&format!("tenant:{t}:wecom.secret"), &rec.secret_sealed)
                .is_err(),
            "no longer sealed under the old associated data"
        );
        assert!(sealer
            .open(&seal_context(t, a + 1, "secret"), &rec.secret_sealed)
            .is_err());
        let opened = st.open_integration(&rec).unwrap();
        assert_eq!(
            (
                opened.callback_token.as_str(),
                opened.callback_aes_key.as_str()
            ),
            (token.as_str(), aes_key.as_str())
        );

        // Idempotent: a second start re-seals nothing and changes no byte.
        assert_eq!(
            bridge::app::reseal_integrations(&st.store, &st.sealer)
                .await
                .unwrap(),
            0
        );
        let again = st.store.main_integration(t).await.unwrap().unwrap();
        assert_eq!(
            (&again.secret_sealed, &again.callback_aes_key_sealed),
            (&rec.secret_sealed, &rec.callback_aes_key_sealed)
        );

        // It works: doctor gets a token with the secret, and WeCom verifies the callback
        // URL against the re-sealed Token and EncodingAESKey.
        let tenant = st.store.tenant_by_slug("default").await.unwrap().unwrap();
        let checks = bridge::doctor::run(&st, &tenant).await.unwrap();
        let secret = checks.iter().find(|c| c.id == "secret").unwrap();
        assert_eq!(secret.status, Status::Pass, "{}", secret.evidence);
        let r = reqwest::Client::new()
            .patch(format!(
                "{}/sim/admin/corps/{CORPID}/apps/{MAIN_AGENTID}",
                sim.base_url
            ))
            .json(
                &json!({"callback": {"url": format!("http://{domain}/wecom/callback"),
                                        "token": token, "encoding_aes_key": aes_key}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let rec = st.store.main_integration(t).await.unwrap().unwrap();
        assert!(rec.callback_verified_at.is_some());
        bridge.stop().await;
        std::fs::remove_dir_all(&data_dir).ok();
    }
}

#[tokio::test]
async fn each_app_has_its_own_callback_url_and_the_old_one_stays_the_main_apps() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let csrf = env.admin_login().await;
        assert_eq!(
            env.save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
                .await
                .status,
            303
        );
        let st = &env.bridge.state;
        let t = st.store.tenant_by_slug("default").await.unwrap().unwrap();
        let rec = st.store.main_integration(t.id).await.unwrap().unwrap();
        let o = st.open_integration(&rec).unwrap();
        let set_url = |path: String| {
            let body = json!({"callback": {"url": format!("http://{}{path}", env.domain),
                                           "token": o.callback_token, "encoding_aes_key": o.callback_aes_key}});
            let url = format!(
                "{}/sim/admin/corps/{CORPID}/apps/{MAIN_AGENTID}",
                env.sim.base_url
            );
            async move {
                reqwest::Client::new()
                    .patch(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        // The app's own URL verifies with that app's keys.
        assert_eq!(
            set_url(bridge::web::wecom_routes::callback_path(rec.agentid)).await,
            200
        );
        assert!(st
            .store
            .main_integration(t.id)
            .await
            .unwrap()
            .unwrap()
            .callback_verified_at
            .is_some());
        // A URL naming no app of the tenant is refused, so WeCom does not save it.
        assert_eq!(set_url("/wecom/callback/1000009".into()).await, 422);
        assert_eq!(set_url("/wecom/callback/abc".into()).await, 422);
        let r = env.browser.get("/wecom/callback/1000009?echostr=x").await;
        assert_eq!(r.status, 404);
        // The historical URL stays the main app's.
        assert_eq!(set_url("/wecom/callback".into()).await, 200);

        // Events on the app's own URL reach the directory like those on the old one.
        assert_eq!(
            set_url(bridge::web::wecom_routes::callback_path(rec.agentid)).await,
            200
        );
        env.sim_admin(
            "PATCH",
            &format!("/corps/{CORPID}/members/lisi"),
            json!({"alias": "li4"}),
        )
        .await;
        let d = env.sim_admin("POST", "/deliveries/flush", json!({})).await;
        let own_url = format!("http://{}/wecom/callback/{MAIN_AGENTID}", env.domain);
        let delivered = d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["url"] == own_url.as_str() && x["status"] == 200);
        assert!(delivered, "{d}");
        // Stored for the directory before WeCom got its 200.
        assert!(!st.store.list_callbacks(t.id).await.unwrap().is_empty());
    }
}
