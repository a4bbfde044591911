//! Test support shared by the crate's integration tests and benchmarks: a fresh,
//! migrated database per test on every engine available (SQLite always, PostgreSQL
//! when `TEST_DATABASE_URL` is set), so tests never depend on each other.

use crate::store::Store;

/// A URL of a fresh SQLite database in a new temporary directory.
pub fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join(format!("wecom-bridge-test-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    format!("sqlite://{}?mode=rwc", dir.join("test.db").display())
}

/// A URL of a fresh, empty PostgreSQL schema on `TEST_DATABASE_URL`, if set. The schema
/// is selected through the connection's `search_path`, so migrations land in it.
pub async fn postgres_url() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let schema = format!("t{}", rand::random::<u64>());
    let admin = Store::connect(&url)
        .await
        .expect("TEST_DATABASE_URL connect");
    if let Store::Postgres(p) = &admin {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(p)
            .await
            .expect("create schema");
    }
    admin.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

/// Fresh database URLs for every engine to run a test on.
pub async fn database_urls() -> Vec<String> {
    let mut v = vec![sqlite_url()];
    v.extend(postgres_url().await);
    v
}

/// Fresh, migrated stores for every engine.
pub async fn stores() -> Vec<Store> {
    let mut out = Vec::new();
    for url in database_urls().await {
        let s = Store::connect(&url).await.expect("connect");
        s.migrate().await.expect("migrate");
        out.push(s);
    }
    out
}

/// A clock for the WeCom client that is the simulator's clock: `now` reads it, and a
/// sleep moves it (and so the simulator's rate-limit windows) forward to the sleep's
/// end instead of waiting. Held, sleeps wait until the test releases them, so a test
/// can look at a run while it waits.
#[derive(Clone)]
pub struct SimClock {
    inner: std::sync::Arc<SimClockInner>,
}

struct SimClockInner {
    sim: wecom_sim::Sim,
    held: std::sync::atomic::AtomicBool,
    changed: tokio::sync::Notify,
    slept_ms: std::sync::atomic::AtomicU64,
}

impl SimClock {
    pub fn new(sim: wecom_sim::Sim) -> Self {
        SimClock {
            inner: std::sync::Arc::new(SimClockInner {
                sim,
                held: Default::default(),
                changed: tokio::sync::Notify::new(),
                slept_ms: Default::default(),
            }),
        }
    }

    /// Sleeps started from now on wait for [`SimClock::release`].
    pub fn hold(&self) {
        self.inner
            .held
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Lets held and future sleeps end at once (moving the clock).
    pub fn release(&self) {
        self.inner
            .held
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.inner.changed.notify_waiters();
    }

    /// Milliseconds the clock was moved by sleeps.
    pub fn slept_ms(&self) -> u64 {
        self.inner
            .slept_ms
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl wecom::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.inner.sim.world().now_ms()
    }

    fn sleep(&self, d: std::time::Duration) -> futures::future::BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        let target = self.now_ms() + d.as_millis() as u64;
        Box::pin(async move {
            loop {
                let changed = inner.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if !inner.held.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                changed.await;
            }
            // Move to the target, never back: concurrent sleepers end at the latest one.
            {
                let mut w = inner.sim.world();
                let now = w.now_ms();
                if now < target {
                    w.clock_offset_ms += (target - now) as i64;
                    inner
                        .slept_ms
                        .fetch_add(target - now, std::sync::atomic::Ordering::SeqCst);
                }
            }
            tokio::task::yield_now().await;
        })
    }
}

/// The variable naming the crash point at which the process stops (crash tests).
pub const CRASH_AT_VAR: &str = "WB_CRASH_AT";

/// A named point where a crash test can stop the process: when `WB_CRASH_AT` names it,
/// the process sends itself SIGKILL on the spot (no unwinding, no destructors, no
/// connection closed cleanly, no core dump: a `kill -9`). One comparison otherwise.
pub fn crash_point(name: &str) {
    static AT: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| std::env::var(CRASH_AT_VAR).ok());
    if AT.as_deref() == Some(name) {
        eprintln!("crash point {name}: SIGKILL");
        #[cfg(unix)]
        // SAFETY: kill(2) on our own pid; it does not return once delivered.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}
