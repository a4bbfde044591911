//! Persistence on SQLite (embedded default) and PostgreSQL (several instances).
//!
//! One `Store` value, one method per operation. The SQL is written once, in the dialect
//! both engines share (`$1` placeholders, `ON CONFLICT`, `RETURNING`), and [`on_pool!`]
//! expands each body once per engine, so every query is compiled against both drivers'
//! types: two typed code paths from one source, without sqlx's `Any` driver. Engine
//! differences (WAL, advisory locks, DDL) live in the connect code and the per-engine
//! migration folders.

mod admin;
mod api;
mod apps;
mod audit;
mod call_budget;
mod consent;
mod directory;
mod integration;
mod login_config;
mod oidc;
mod ops;
mod sessions;
mod sync_checkpoints;
mod sync_runs;
mod tenant;
mod throttle;
mod token_cache;
mod user_admin;
mod users;

pub use admin::{AdminRecord, AdminSession};
pub use api::{AuditQuery, UserCursorQuery};
pub use call_budget::StoreCallBudget;
pub use directory::{
    ApplyWith, ImportedIdentity, ImportedMember, OpenApply, RetireIdentities, RunEnd,
};
pub use integration::{IntegrationRecord, Resealed};
pub use oidc::{
    CodeRedemption, NewTokenPair, OidcCode, OidcGrant, OidcKeyRecord, OidcTokenRecord, Rotation,
};
pub use ops::PoolUsage;
pub use sessions::{NewUserSession, UserSessionRecord};
pub use sync_checkpoints::CheckpointItem;
pub use sync_runs::{NewSyncRun, PendingCallback, SyncRun, SyncRunFinish};
pub use token_cache::StoreTokenCache;
pub use user_admin::{IdentityRecord, UserExtras, WecomUserSeed};
pub use users::{UserFilter, UserSort};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database has migrations {foreign:?} that this version does not have, older than its newest ({newest}): \
         it was migrated by another line of versions; run the version that made them"
    )]
    ForeignMigrations { foreign: Vec<i64>, newest: i64 },
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`, anything else to `Db`.
    pub(crate) fn unique(e: sqlx::Error, what: impl Into<String>) -> Self {
        match e.as_database_error() {
            Some(d) if d.is_unique_violation() => StoreError::Conflict(what.into()),
            _ => StoreError::Db(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A stored enum's text back to its type; a value this version does not know is
/// `Corrupt`, never a default.
pub(crate) fn parse<T: FromStr<Err = String>>(stored: String) -> Result<T> {
    stored.parse().map_err(StoreError::Corrupt)
}

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either engine. Written like a
/// closure (`on_pool!(self, |p| { … })`) so rustfmt formats the body, but it is not one:
/// `?` and `return` in the body act on the enclosing function.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Ids per `IN (…)` list: well under SQLite's 32,766 and PostgreSQL's 65,535 binds.
pub(crate) const IN_CHUNK: usize = 500;

/// `$first, $first+1, …` for an `IN (…)` list of `n` binds after `first - 1` others.
pub(crate) fn in_list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// WAL pages after which a committer checkpoints on its own (SQLite's default is 1,000).
const SQLITE_AUTOCHECKPOINT_PAGES: u32 = 10_000;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects to `sqlite:…` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // A committing connection checkpoints (and fsyncs) itself only once the
                // WAL reaches ~40 MB; a server checkpoints in the background instead
                // (`spawn_checkpointer`), so no request waits on a checkpoint's fsync.
                .pragma(
                    "wal_autocheckpoint",
                    SQLITE_AUTOCHECKPOINT_PAGES.to_string(),
                );
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(opts)
                .await?;
            Ok(Store::Sqlite(pool))
        } else {
            let opts = PgConnectOptions::from_str(url)?;
            Self::connect_postgres(opts).await
        }
    }

    pub async fn connect_postgres(opts: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(Store::Postgres(pool))
    }

    fn embedded_migrations(&self) -> &'static sqlx::migrate::Migrator {
        match self {
            Store::Sqlite(_) => &SQLITE_MIGRATIONS,
            Store::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies the pending migrations of this engine. A database a newer version has
    /// already migrated further (during its rolling restart, or before a roll-back) is
    /// served as it is: migrations only add (tests/rolling_restart_e2e.rs holds every one
    /// from its baseline on to that), so this version's queries still hold. An unknown
    /// migration older than this version's newest comes from another line of versions:
    /// refused.
    pub async fn migrate(&self) -> Result<()> {
        let embedded = self.embedded_migrations();
        let newest = embedded.iter().map(|m| m.version).max().unwrap_or(0);
        let unknown: Vec<i64> = self
            .applied_migrations()
            .await?
            .into_iter()
            .filter(|v| !embedded.version_exists(*v))
            .collect();
        let foreign: Vec<i64> = unknown.iter().copied().filter(|v| *v < newest).collect();
        if !foreign.is_empty() {
            return Err(StoreError::ForeignMigrations { foreign, newest });
        }
        if unknown.is_empty() {
            on_pool!(self, |p| embedded.run(p).await?);
            return Ok(());
        }
        // Expected while a newer version rolls out; worth a look if it lasts (a roll-back).
        tracing::warn!(
            newer = ?unknown,
            newest_known = newest,
            "the database is ahead of this version (a newer version migrated it); serving on it"
        );
        let mut m = sqlx::migrate::Migrator::with_migrations(embedded.iter().cloned().collect());
        m.set_ignore_missing(true);
        on_pool!(self, |p| m.run(p).await?);
        Ok(())
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// SQLite: copies the WAL into the database every `every`, off the request path, until
    /// the store closes. A PASSIVE checkpoint waits for no reader or writer, and costs
    /// nothing when there is nothing new. PostgreSQL checkpoints itself: `None`.
    pub fn spawn_checkpointer(&self, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
        let Store::Sqlite(pool) = self else {
            return None;
        };
        let pool = pool.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if pool.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "SQLite checkpoint failed");
                }
            }
        }))
    }

    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }
}
