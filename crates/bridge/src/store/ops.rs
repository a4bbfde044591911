//! What operations read: reachability, migrations, pool usage, pending callbacks.

use super::{on_pool, Result, Store, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
use sqlx::Row;

/// The connection pool now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
}

impl Store {
    /// One round trip (`SELECT 1`).
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("SELECT 1").execute(p).await?;
            Ok(())
        })
    }

    /// Every migration version recorded in this database (none before the first migrate).
    pub(crate) async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let exists = match self {
            Store::Sqlite(p) => sqlx::query(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_optional(p)
            .await?
            .is_some(),
            // to_regclass follows the search_path, as sqlx's own queries do.
            Store::Postgres(p) => {
                sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(p)
                    .await?
            }
        };
        if !exists {
            return Ok(Vec::new());
        }
        on_pool!(self, |p| {
            let rows = sqlx::query("SELECT version FROM _sqlx_migrations")
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| r.try_get::<i64, _>("version").map_err(Into::into))
                .collect()
        })
    }

    /// The embedded migrations not (successfully) applied to this database, by version.
    pub async fn missing_migrations(&self) -> Result<Vec<i64>> {
        let (embedded, applied): (Vec<i64>, Vec<i64>) = match self {
            Store::Sqlite(p) => (
                SQLITE_MIGRATIONS.iter().map(|m| m.version).collect(),
                sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<i64, _>("version"))
                    .collect::<std::result::Result<_, _>>()?,
            ),
            Store::Postgres(p) => (
                POSTGRES_MIGRATIONS.iter().map(|m| m.version).collect(),
                sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<i64, _>("version"))
                    .collect::<std::result::Result<_, _>>()?,
            ),
        };
        Ok(embedded
            .into_iter()
            .filter(|v| !applied.contains(v))
            .collect())
    }

    pub fn pool_usage(&self) -> PoolUsage {
        on_pool!(self, |p| {
            let size = p.size();
            let idle = p.num_idle() as u32;
            PoolUsage {
                idle,
                in_use: size.saturating_sub(idle),
                max: p.options().get_max_connections(),
            }
        })
    }

    /// (pending callbacks of every tenant, when the oldest of them was received).
    pub async fn pending_callback_stats(&self) -> Result<(i64, Option<i64>)> {
        on_pool!(self, |p| {
            let r = sqlx::query(
                "SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM callback_events WHERE status = 'pending'",
            )
            .fetch_one(p)
            .await?;
            Ok((r.try_get("n")?, r.try_get("oldest")?))
        })
    }
}
