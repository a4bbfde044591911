//! Two bridge instances on one database share WeCom's access token: one gettoken for the
//! cluster, and a token that WeCom revoked is refreshed once for everybody.

mod common;

use bridge::app::AppState;
use bridge::domain::tenant::Edition;
use bridge::testing::database_urls;
use common::*;
use serde_json::json;
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};

async fn second_instance(env: &Env) -> AppState {
    let cfg = config(
        &env.sim,
        &env.data_dir,
        &env.database_url,
        &env.domain,
        Edition::Professional,
    );
    let (store, sealer) = bridge::open(&cfg).await.unwrap();
    AppState::new(cfg, store, sealer)
}

async fn gettokens(env: &Env) -> u64 {
    env.sim_admin("GET", "/counters", json!({})).await["counters"]["gettoken"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn instances_share_one_token() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let a = &env.bridge.state;
        let b = second_instance(&env).await;
        let ca = a.wecom.get(CORPID, MAIN_SECRET).unwrap();
        let cb = b.wecom.get(CORPID, MAIN_SECRET).unwrap();
        ca.agent_get(MAIN_AGENTID).await.unwrap();
        cb.agent_get(MAIN_AGENTID).await.unwrap();
        assert_eq!(
            gettokens(&env).await,
            1,
            "{db}: one gettoken for two instances"
        );
        assert_eq!(
            ca.access_token().await.unwrap(),
            cb.access_token().await.unwrap()
        );

        // WeCom revokes it: the instance that notices refreshes, the other picks the new one up.
        env.sim_admin(
            "POST",
            &format!("/corps/{CORPID}/tokens/invalidate"),
            json!({}),
        )
        .await;
        ca.agent_get(MAIN_AGENTID).await.unwrap();
        assert_eq!(gettokens(&env).await, 2);
        // b still holds the revoked token in memory: its call fails once (40014), drops exactly
        // that token, and finds a's fresh one in the database instead of calling gettoken.
        cb.agent_get(MAIN_AGENTID).await.unwrap();
        assert_eq!(
            gettokens(&env).await,
            2,
            "{db}: the refreshed token is shared too"
        );

        // Nothing readable at rest.
        if let bridge::store::Store::Sqlite(p) = &a.store {
            let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT token_sealed FROM wecom_tokens")
                .fetch_all(p)
                .await
                .unwrap();
            let token = ca.access_token().await.unwrap();
            assert!(rows
                .iter()
                .all(|(s,)| !s.windows(token.len()).any(|w| w == token.as_bytes())));
        }
        b.store.close().await;
    }
}
