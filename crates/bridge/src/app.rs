//! Shared server state and the WeCom clients of each tenant.

use crate::config::Config;
use crate::seal::Sealer;
use crate::store::{IntegrationRecord, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub sealer: Sealer,
    pub wecom: WecomClients,
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

/// Seal contexts bind each sealed value to its tenant and field.
pub fn seal_context(tenant_id: i64, field: &str) -> String {
    format!("tenant:{tenant_id}:wecom.{field}")
}

impl AppState {
    pub fn new(cfg: Config, store: Store, sealer: Sealer) -> Self {
        let pacer = wecom::Pacer::new(
            Arc::new(crate::store::StoreCallBudget::new(store.clone())),
            Arc::new(wecom::SystemClock),
            cfg.wecom_rate_limits(),
        );
        AppState {
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
        }
    }

    pub fn open_integration(
        &self,
        r: &IntegrationRecord,
    ) -> Result<OpenedIntegration, crate::seal::SealError> {
        let t = r.tenant_id;
        Ok(OpenedIntegration {
            corpid: r.corpid.clone(),
            agentid: r.agentid as u32,
            secret: self
                .sealer
                .open_string(&seal_context(t, "secret"), &r.secret_sealed)?,
            callback_token: self
                .sealer
                .open_string(&seal_context(t, "callback_token"), &r.callback_token_sealed)?,
            callback_aes_key: self.sealer.open_string(
                &seal_context(t, "callback_aes_key"),
                &r.callback_aes_key_sealed,
            )?,
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
