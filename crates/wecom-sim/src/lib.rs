//! wecom-sim: a WeCom (企业微信) API simulator that answers like WeCom — same paths, JSON
//! fields, errcodes and rules (wecom-api.md) — for tests, benchmarks and the demo.
//!
//! Start it in-process with [`launch`] on a listener (port 0 in tests), or run the
//! `wecom-sim` binary with a scenario file.

pub mod admin;
pub mod api;
pub mod callbacks;
pub mod envelope;
pub mod fixtures;
pub mod generate;
pub mod home;
pub mod limits;
pub mod model;
pub mod oauth;
pub mod scenario;
pub mod settings;
pub mod world;

use axum::routing::any;
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use model::{App, Corp, Department, Member, Scope, Tag};
pub use scenario::Scenario;
pub use settings::Settings;
pub use world::World;

/// A shared handle on the simulator's state; cheap to clone.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Inner>,
}

struct Inner {
    world: Mutex<World>,
    /// Outgoing callback HTTP client (to the app's callback URL).
    http: reqwest::Client,
    /// Wakes the callback delivery worker when events are queued.
    outbox: Notify,
}

impl Sim {
    pub fn new(settings: Settings) -> Self {
        // reqwest is built without a bundled crypto provider; ring is ours (no OpenSSL, no aws-lc).
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(LocalhostResolver))
            .build()
            .expect("HTTP client");
        Sim {
            inner: Arc::new(Inner {
                world: Mutex::new(World::new(settings)),
                http,
                outbox: Notify::new(),
            }),
        }
    }

    pub fn from_scenario(scenario: Scenario) -> Self {
        let sim = Sim::new(scenario.settings);
        {
            let mut w = sim.world();
            for c in scenario.corps {
                w.add_corp(c.into_corp());
            }
        }
        sim
    }

    /// Locks the world. Never hold the guard across an `.await`.
    pub fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves consistent-enough state for a simulator.
        self.inner.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Tells the delivery worker that callback events were queued.
    pub fn kick_outbox(&self) {
        self.inner.outbox.notify_one();
    }

    pub(crate) async fn outbox_ready(&self) {
        self.inner.outbox.notified().await
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", axum::routing::get(home::index))
            .route("/cgi-bin/{*path}", any(api::dispatch))
            .merge(oauth::routes())
            .nest("/sim/admin", admin::routes())
            .with_state(self.clone())
    }
}

/// Resolves `localhost` and `*.localhost` to the loopback address, as RFC 6761 §6.3 asks
/// and browsers do, so callback URLs on a tenant domain like `acme.localhost:8080` reach a
/// bridge on this machine even where the system resolver does not know them. Other names
/// go to the system resolver.
struct LocalhostResolver;

impl reqwest::dns::Resolve for LocalhostResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            if host == "localhost" || host.ends_with(".localhost") {
                let addrs: reqwest::dns::Addrs =
                    Box::new(vec![SocketAddr::from(([127, 0, 0, 1], 0))].into_iter());
                return Ok(addrs);
            }
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let addrs: reqwest::dns::Addrs = Box::new(found.collect::<Vec<_>>().into_iter());
            Ok(addrs)
        })
    }
}

/// Installs ring as the process-wide rustls provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, the base for `/cgi-bin/…` and the OAuth pages.
    pub base_url: String,
    pub sim: Sim,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// The WeCom API base URL to give the client: `http://127.0.0.1:PORT/cgi-bin/`.
    pub fn api_base(&self) -> String {
        format!("{}/cgi-bin/", self.base_url)
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves `sim` on `listener` until the handle is stopped or dropped.
pub async fn launch(sim: Sim, listener: TcpListener) -> std::io::Result<SimHandle> {
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    {
        let mut w = sim.world();
        w.self_ip = addr.ip().to_string();
        w.base_url = base_url.clone();
    }
    callbacks::spawn_worker(sim.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = sim
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(SimHandle {
        addr,
        base_url,
        sim,
        shutdown: Some(tx),
        task: Some(task),
    })
}
