//! wecom-bridge: the low-code platform's enterprise workbench and identity layer,
//! integrated with a WeCom (企业微信) self-built app.
//!
//! Start it in-process with [`launch`] on a listener (port 0 in tests).

pub mod admin;
pub mod app;
pub mod app_binding;
pub mod apps;
pub mod auth;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod doctor;
pub mod domain;
pub mod oidc;
pub mod operator;
pub mod ops;
pub mod private_files;
pub mod sample_app;
pub mod seal;
pub mod setup;
pub mod store;
pub mod sync;
pub mod testing;
pub mod web;

use app::AppState;
use config::Config;
use seal::Sealer;
use std::net::SocketAddr;
use store::Store;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("first start: {0}")]
    Bootstrap(String),
    #[error(
        "the instance key cannot open {0}, sealed in this database under another key. \
         Every instance on one database must use the same key, the one it was first started \
         with: set instance_key, WECOM_BRIDGE_INSTANCE_KEY or WECOM_BRIDGE_INSTANCE_KEY_FILE \
         to it (or copy its instance.key into this instance's data_dir)"
    )]
    WrongInstanceKey(String),
}

/// Created on first start: the tenant and its admin's one-time password.
#[derive(Clone)]
pub struct Bootstrap {
    pub tenant_slug: String,
    pub domain: String,
    pub username: String,
    pub one_time_password: String,
}

/// The one-time password never reaches a log through `{:?}`.
impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("tenant_slug", &self.tenant_slug)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("one_time_password", &"<redacted>")
            .finish()
    }
}

pub struct ServerHandle {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub bootstrap: Option<Bootstrap>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// Stops accepting, finishes in-flight requests, closes the database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.state.store.close().await;
    }

    /// Waits until the server stops (for the CLI).
    pub async fn wait(mut self) {
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub fn shutdown_trigger(&mut self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.shutdown.take()
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Opens the store (migrating it), loads or creates the instance key, and re-seals
/// integration secrets still sealed under older associated data.
pub async fn open(cfg: &Config) -> Result<(Store, Sealer), LaunchError> {
    let url = cfg.database_url();
    if cfg.instance_key.is_empty() || cfg.database_url.is_empty() {
        private_files::ensure_dir(&cfg.data_dir)?;
    }
    // Created 0600 before SQLite opens it (its journal files copy the file's mode).
    if let Some(db) = private_files::sqlite_file(&url) {
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.exists() {
                private_files::ensure_dir(parent)?;
            }
        }
        private_files::ensure_file(&db)?;
    }
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let sealer = if cfg.instance_key.is_empty() {
        Sealer::load_or_create(&cfg.data_dir)?
    } else {
        Sealer::from_base64(&cfg.instance_key)?
    };
    // Values carried over by migration 0045 are sealed under the old associated data.
    app::reseal_integrations(&store, &sealer).await?;
    Ok((store, sealer))
}

fn cfg_header_ms(st: &AppState) -> u64 {
    st.cfg.header_read_timeout_ms.max(1)
}

/// Serves the bridge on `listener`: migrations, first-start bootstrap, then HTTP.
pub async fn launch(cfg: Config, listener: TcpListener) -> Result<ServerHandle, LaunchError> {
    let (store, sealer) = open(&cfg).await?;
    // Several instances share one database and must share its key: refuse to serve with
    // one that cannot open what the others sealed.
    if let Err(what) = app::check_instance_key(&store, &sealer).await {
        store.close().await;
        return Err(LaunchError::WrongInstanceKey(what));
    }
    let addr = listener.local_addr()?;
    let bootstrap = if store.list_tenants().await?.is_empty() {
        let domain = if cfg.bootstrap_domain.is_empty() {
            format!("localhost:{}", addr.port())
        } else {
            cfg.bootstrap_domain.clone()
        };
        let created = operator::create_tenant(
            &store,
            "default",
            &cfg.bootstrap_name,
            cfg.bootstrap_edition,
            Some(&domain),
        )
        .await
        .map_err(|e| LaunchError::Bootstrap(e.to_string()))?;
        Some(Bootstrap {
            tenant_slug: created.tenant.slug,
            domain,
            username: created.username,
            one_time_password: created.one_time_password,
        })
    } else {
        None
    };
    store.spawn_checkpointer(std::time::Duration::from_millis(250));
    let state = AppState::new(cfg, store, sealer);
    // Pending callbacks, the periodic reconcile; ends when the store closes.
    sync::background::spawn(state.clone(), std::time::Duration::from_secs(1));
    let metrics_listener = if state.cfg.metrics_enabled {
        ops::metrics::install();
        match state.cfg.metrics_listen {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        }
    } else {
        None
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let app = web::router(state.clone());
    let limits = web::serve::ServeLimits {
        header_read_timeout: std::time::Duration::from_millis(cfg_header_ms(&state)),
        max_connections: state.cfg.max_connections,
        shutdown_grace: std::time::Duration::from_secs(10),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_tx, _) = tokio::sync::watch::channel(false);
    if let Some(ml) = metrics_listener {
        let mut stopped = stop_tx.subscribe();
        let mapp = ops::metrics_router(state.clone());
        tokio::spawn(async move {
            web::serve::serve(ml, mapp, limits, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
        });
    }
    let task = tokio::spawn(async move {
        web::serve::serve(listener, app, limits, async {
            let _ = rx.await;
        })
        .await;
        let _ = stop_tx.send(true);
    });
    Ok(ServerHandle {
        addr,
        metrics_addr,
        state,
        bootstrap,
        shutdown: Some(tx),
        task: Some(task),
    })
}
