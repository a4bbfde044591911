//! Helpers of the directory sync tests: a tenant set up with the fixture's main app,
//! sync runs, directory look-ups and a dump of every directory row.
#![allow(dead_code)]

use crate::common::*;
use bridge::domain::directory::{CurrentDirectory, RunStatus, Trigger};
use bridge::domain::tenant::{Edition, Tenant};
use bridge::domain::user::{DisabledReason, UserStatus};
use bridge::sync::{run_full, RunOutcome, SyncOptions};
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};

pub struct T {
    pub env: Env,
    pub tenant: Tenant,
}

pub async fn setup(db: &str) -> T {
    let env = start(db, Edition::Professional).await;
    let st = &env.bridge.state;
    let tenant = st.store.tenant_by_slug("default").await.unwrap().unwrap();
    bridge::setup::save_credentials(
        st,
        &tenant,
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
    let tenant = st.store.tenant_by_id(tenant.id).await.unwrap().unwrap();
    T { env, tenant }
}

impl T {
    pub fn st(&self) -> &bridge::app::AppState {
        &self.env.bridge.state
    }

    /// A full sync on another state of the same bridge (e.g. [`T::paced`]), waiting for
    /// the tenant's lock as [`T::sync_with`] does.
    pub async fn sync_on(&self, st: &bridge::app::AppState) -> RunOutcome {
        let o = SyncOptions::new(Trigger::Console, "admin:test");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match run_full(st, &self.tenant, o.clone()).await {
                Err(bridge::sync::SyncError::Busy) if std::time::Instant::now() < deadline => {
                    self.settle().await
                }
                r => return r.unwrap(),
            }
        }
    }

    pub async fn sync_with(&self, dry_run: bool, force: bool) -> RunOutcome {
        let mut o = SyncOptions::new(Trigger::Console, "admin:test");
        o.dry_run = dry_run;
        o.force = force;
        // Another run of the tenant (the callback worker finishing its record, the
        // background task) may hold the tenant's lock a moment: wait for it, then run.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match run_full(self.st(), &self.tenant, o.clone()).await {
                Err(bridge::sync::SyncError::Busy) if std::time::Instant::now() < deadline => {
                    self.settle().await
                }
                r => return r.unwrap(),
            }
        }
    }

    /// Waits until no sync of the tenant runs: the callback worker marks an event applied
    /// before it finishes its run record and lets go of the tenant's lock, so a full sync
    /// started the moment the directory shows the change can find the tenant busy.
    pub async fn settle(&self) {
        bridge::sync::lock::acquire(&self.st().store, self.tenant.id, true)
            .await
            .unwrap()
            .expect("waiting acquires the lock")
            .release()
            .await;
    }

    pub async fn sync(&self) -> RunOutcome {
        let o = self.sync_with(false, false).await;
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        o
    }

    pub async fn dir(&self) -> CurrentDirectory {
        self.st()
            .store
            .load_directory(self.tenant.id, CORPID)
            .await
            .unwrap()
    }

    /// (status, reason, user id) by lower-case userid.
    pub async fn user(&self, userid: &str) -> Option<(UserStatus, Option<DisabledReason>, i64)> {
        self.dir()
            .await
            .users
            .into_iter()
            .find(|u| u.key.as_deref() == Some(userid))
            .map(|u| (u.status, u.disabled_reason, u.id))
    }

    pub async fn userids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .dir()
            .await
            .users
            .into_iter()
            .filter(|u| u.status != UserStatus::Disabled)
            .filter_map(|u| u.key)
            .collect();
        v.sort();
        v
    }

    pub async fn active_departments(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .dir()
            .await
            .departments
            .into_values()
            .filter(|d| d.active)
            .map(|d| d.record.id)
            .collect();
        v.sort();
        v
    }

    pub async fn scope(&self, body: serde_json::Value) {
        self.env
            .sim_admin(
                "PUT",
                &format!("/corps/{CORPID}/apps/{MAIN_AGENTID}/scope"),
                body,
            )
            .await;
    }

    pub async fn sim(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        self.env
            .sim_admin(method, &format!("/corps/{CORPID}{path}"), body)
            .await
    }

    /// Every column of every directory row, to prove that nothing was written.
    pub async fn snapshot(&self) -> String {
        let mut out = Vec::new();
        for sql in [
            "SELECT id, name, status, disabled_reason, position, mobile, main_department, wecom_status, updated_at FROM users ORDER BY id",
            "SELECT user_id, external_id, display_id FROM user_identities ORDER BY user_id, external_id",
            "SELECT user_id, department_id, sort_order, is_leader FROM user_departments ORDER BY user_id, department_id",
            "SELECT id, parent_id, name, active, updated_at FROM departments ORDER BY id",
            "SELECT id, name, active FROM tags ORDER BY id",
            "SELECT tag_id, user_id FROM tag_users ORDER BY tag_id, user_id",
            "SELECT tag_id, department_id FROM tag_departments ORDER BY tag_id, department_id",
            "SELECT id_hash, user_id FROM user_sessions ORDER BY id_hash",
        ] {
            out.push(dump(&self.st().store, sql).await);
        }
        out.join("\n")
    }
}

/// Rows of a query as text (both engines).
pub async fn dump(store: &bridge::store::Store, sql: &'static str) -> String {
    use sqlx::Row;
    macro_rules! rows {
        ($p:expr) => {{
            let rows = sqlx::query(sql).fetch_all($p).await.unwrap();
            rows.iter()
                .map(|r| {
                    (0..r.columns().len())
                        .map(|i| {
                            r.try_get::<Option<i64>, _>(i)
                                .map(|v| format!("{v:?}"))
                                .or_else(|_| {
                                    r.try_get::<Option<String>, _>(i).map(|v| format!("{v:?}"))
                                })
                                .or_else(|_| {
                                    r.try_get::<Option<bool>, _>(i).map(|v| format!("{v:?}"))
                                })
                                .unwrap_or_else(|e| format!("<{e}>"))
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect::<Vec<_>>()
                .join("\n")
        }};
    }
    match store {
        bridge::store::Store::Sqlite(p) => rows!(p),
        bridge::store::Store::Postgres(p) => rows!(p),
    }
}

/// A signed-in member session, to see that disabling ends it.
pub async fn add_session(store: &bridge::store::Store, tenant_id: i64, user_id: i64, id: &str) {
    let sql = "INSERT INTO user_sessions (id_hash, tenant_id, user_id, via, created_at, last_seen_at) VALUES ($1, $2, $3, 'wecom_client', 0, 0)";
    match store {
        bridge::store::Store::Sqlite(p) => {
            sqlx::query(sql)
                .bind(id)
                .bind(tenant_id)
                .bind(user_id)
                .execute(p)
                .await
                .unwrap();
        }
        bridge::store::Store::Postgres(p) => {
            sqlx::query(sql)
                .bind(id)
                .bind(tenant_id)
                .bind(user_id)
                .execute(p)
                .await
                .unwrap();
        }
    }
}

impl T {
    /// Points the main app's callback URL at the bridge (WeCom verifies it first).
    pub async fn enable_callbacks(&self) {
        let rec = self
            .st()
            .store
            .main_integration(self.tenant.id)
            .await
            .unwrap()
            .unwrap();
        let o = self.st().open_integration(&rec).unwrap();
        self.sim(
            "PATCH",
            &format!("/apps/{MAIN_AGENTID}"),
            serde_json::json!({"callback": {
                "url": format!("http://{}/wecom/callback", self.env.domain),
                "token": o.callback_token,
                "encoding_aes_key": o.callback_aes_key,
            }}),
        )
        .await;
    }

    /// Waits until the simulator delivered its queued callbacks.
    pub async fn flush(&self) -> serde_json::Value {
        self.env
            .sim_admin("POST", "/deliveries/flush", serde_json::json!({}))
            .await
    }
}

/// Polls `$cond` (an expression that may `.await`) until it holds, for up to 5 s.
#[macro_export]
macro_rules! eventually {
    ($cond:expr, $($msg:tt)+) => {{
        let started = std::time::Instant::now();
        loop {
            if $cond {
                break started.elapsed();
            }
            if started.elapsed() > std::time::Duration::from_secs(5) {
                panic!($($msg)+);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }};
}

impl T {
    /// The bridge's state with its WeCom clients paced at `limits` on the simulator's
    /// clock: waits (rate limits, retry backoff) move that clock instead of sleeping.
    pub fn paced(
        &self,
        limits: wecom::RateLimits,
    ) -> (bridge::app::AppState, bridge::testing::SimClock) {
        let clock = bridge::testing::SimClock::new(self.env.sim.sim.clone());
        let pacer = wecom::Pacer::new(
            std::sync::Arc::new(bridge::store::StoreCallBudget::new(self.st().store.clone())),
            std::sync::Arc::new(clock.clone()),
            limits,
        );
        let mut st = self.st().clone();
        st.wecom = st.wecom.with_pacer(std::sync::Arc::new(pacer));
        (st, clock)
    }
}
