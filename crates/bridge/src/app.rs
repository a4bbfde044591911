//! Shared server state and the WeCom clients of each tenant.

use crate::config::Config;
use crate::seal::Sealer;
use crate::store::{IntegrationRecord, Resealed, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub sealer: Sealer,
    pub wecom: WecomClients,
    /// The time the sign-in throttle runs on; tests move it instead of sleeping.
    pub clock: AppClock,
    /// Tenants whose callback worker runs, and whether more work came meanwhile.
    pub callback_workers: Arc<crate::sync::background::Workers>,
}

/// The system clock, which a test can move forward (shared by every clone of the
/// state, so a test moves the running server's time). Nothing outside tests moves it.
#[derive(Clone, Debug, Default)]
pub struct AppClock {
    offset_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl AppClock {
    /// Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        crate::domain::now_ms() + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Moves this clock forward by `d`.
    pub fn advance(&self, d: std::time::Duration) {
        self.offset_ms
            .fetch_add(d.as_millis() as i64, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Opened credentials of a tenant's integration (kept in memory only as long as needed).
#[derive(Clone)]
pub struct OpenedIntegration {
    pub corpid: String,
    pub agentid: u32,
    pub secret: String,
    pub callback_token: String,
    pub callback_aes_key: String,
}

impl std::fmt::Debug for OpenedIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedIntegration")
            .field("corpid", &self.corpid)
            .field("agentid", &self.agentid)
            .finish_non_exhaustive()
    }
}

/// The associated data sealed values of an integration are sealed under today.
pub const SEAL_VERSION: i32 = 2;

/// Seal contexts bind each sealed value to its tenant, WeCom app and field, so a value
/// copied into another tenant's or another app's row (or another field) does not open.
pub fn seal_context(tenant_id: i64, agentid: i64, field: &str) -> String {
    format!("tenant:{tenant_id}:wecom:{agentid}:{field}")
}

/// The context of `seal_version` 1, from when a tenant had one integration: tenant and
/// field only. Read for rows not yet re-sealed; never written.
fn legacy_seal_context(tenant_id: i64, field: &str) -> String {
    format!("tenant:{tenant_id}:wecom.{field}")
}

fn context_of(version: i32, tenant_id: i64, agentid: i64, field: &str) -> String {
    if version < SEAL_VERSION {
        legacy_seal_context(tenant_id, field)
    } else {
        seal_context(tenant_id, agentid, field)
    }
}

/// Checks that `sealer` opens what the database already holds sealed, so an instance
/// started with another key than its cluster's is refused at start (issue 18) instead of
/// failing at every sign-in, sync and callback. Tried: the first tenant's WeCom secret
/// that exists, then the member-session key (created here, sealed under this key, on a
/// database that has none yet, so every later start has something to check against).
/// `Err` names what did not open.
pub async fn check_instance_key(store: &Store, sealer: &Sealer) -> Result<(), String> {
    for t in store.list_tenants().await.map_err(|e| e.to_string())? {
        let recs = store.integrations(t.id).await.map_err(|e| e.to_string())?;
        if let Some(r) = recs.first() {
            let ctx = context_of(r.seal_version, r.tenant_id, r.agentid, "secret");
            if sealer.open(&ctx, &r.secret_sealed).is_err() {
                return Err(format!(
                    "the WeCom secret of tenant {:?} (app {})",
                    t.slug, r.agentid
                ));
            }
            break;
        }
    }
    let sealed = store
        .session_key_sealed(|| {
            use rand::RngCore;
            let mut k = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut k);
            sealer.seal(crate::auth::SEAL_CONTEXT, &k)
        })
        .await
        .map_err(|e| e.to_string())?;
    if sealer.open(crate::auth::SEAL_CONTEXT, &sealed).is_err() {
        return Err("the member-session key".into());
    }
    Ok(())
}

/// Re-seals every integration sealed under an older context (rows carried over by
/// migration 0045) under `seal_context`. Idempotent: a re-sealed row is not selected
/// again, and a row another instance re-sealed first is left alone. A row that does not
/// open (wrong instance key) is left as it is and logged; using it fails as before.
/// Returns how many rows were re-sealed.
pub async fn reseal_integrations(store: &Store, sealer: &Sealer) -> Result<usize, StoreError> {
    let mut n = 0;
    for r in store.integrations_sealed_before(SEAL_VERSION).await? {
        let (t, a) = (r.tenant_id, r.agentid);
        let reseal = |field: &str, sealed: &[u8]| {
            let plain = sealer.open(&context_of(r.seal_version, t, a, field), sealed)?;
            Ok::<_, crate::seal::SealError>(sealer.seal(&seal_context(t, a, field), &plain))
        };
        let fields = (|| {
            Ok::<_, crate::seal::SealError>(Resealed {
                secret_sealed: reseal("secret", &r.secret_sealed)?,
                callback_token_sealed: reseal("callback_token", &r.callback_token_sealed)?,
                callback_aes_key_sealed: reseal("callback_aes_key", &r.callback_aes_key_sealed)?,
                seal_version: SEAL_VERSION,
            })
        })();
        match fields {
            Ok(v) => {
                if store.reseal_integration(t, a, r.seal_version, &v).await? {
                    n += 1;
                }
            }
            Err(e) => tracing::warn!(
                tenant = t,
                agentid = a,
                error = %e,
                "a WeCom integration's sealed values could not be re-sealed"
            ),
        }
    }
    if n > 0 {
        tracing::info!(rows = n, "WeCom integrations re-sealed per app");
    }
    Ok(n)
}

impl AppState {
    pub fn new(cfg: Config, store: Store, sealer: Sealer) -> Self {
        let pacer = wecom::Pacer::new(
            Arc::new(crate::store::StoreCallBudget::new(store.clone())),
            Arc::new(wecom::SystemClock),
            cfg.wecom_rate_limits(),
        );
        AppState {
            callback_workers: Arc::default(),
            wecom: WecomClients::new(
                cfg.wecom_api_base.clone(),
                std::sync::Arc::new(crate::store::StoreTokenCache::new(
                    store.clone(),
                    sealer.clone(),
                )),
            )
            .with_pacer(Arc::new(pacer)),
            cfg: Arc::new(cfg),
            store,
            sealer,
            clock: AppClock::default(),
        }
    }

    pub fn open_integration(
        &self,
        r: &IntegrationRecord,
    ) -> Result<OpenedIntegration, crate::seal::SealError> {
        let ctx = |field: &str| context_of(r.seal_version, r.tenant_id, r.agentid, field);
        Ok(OpenedIntegration {
            corpid: r.corpid.clone(),
            agentid: r.agentid as u32,
            secret: self.sealer.open_string(&ctx("secret"), &r.secret_sealed)?,
            callback_token: self
                .sealer
                .open_string(&ctx("callback_token"), &r.callback_token_sealed)?,
            callback_aes_key: self
                .sealer
                .open_string(&ctx("callback_aes_key"), &r.callback_aes_key_sealed)?,
        })
    }
}

/// One `wecom::Client` per (corp, secret), reused so its token cache is shared by all
/// requests of a tenant; every client paces itself under one call budget (shared
/// through the database by every instance).
#[derive(Clone)]
pub struct WecomClients {
    api_base: String,
    tokens: Arc<dyn wecom::TokenCache>,
    pacer: Arc<wecom::Pacer>,
    clients: Arc<Mutex<HashMap<(String, String), wecom::Client>>>,
}

impl WecomClients {
    /// `tokens` is shared by every client, and through the database by every instance.
    pub fn new(api_base: String, tokens: Arc<dyn wecom::TokenCache>) -> Self {
        WecomClients {
            api_base,
            tokens,
            pacer: Arc::new(wecom::Pacer::in_memory()),
            clients: Arc::default(),
        }
    }

    /// The same clients paced by `pacer` (e.g. on a test's clock, or at a simulator's
    /// lowered limits). Clients made earlier are not reused.
    pub fn with_pacer(&self, pacer: Arc<wecom::Pacer>) -> Self {
        WecomClients {
            api_base: self.api_base.clone(),
            tokens: self.tokens.clone(),
            pacer,
            clients: Arc::default(),
        }
    }

    pub fn pacer(&self) -> Arc<wecom::Pacer> {
        self.pacer.clone()
    }

    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    pub fn token_cache(&self) -> Arc<dyn wecom::TokenCache> {
        self.tokens.clone()
    }

    pub fn get(&self, corpid: &str, secret: &str) -> Result<wecom::Client, wecom::Error> {
        let key = (corpid.to_string(), secret.to_string());
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let c = wecom::Client::builder(corpid, secret)
            .api_base(self.api_base.clone())
            .token_cache(self.tokens.clone())
            .pacer(self.pacer.clone())
            .build()?;
        map.insert(key, c.clone());
        Ok(c)
    }
}
