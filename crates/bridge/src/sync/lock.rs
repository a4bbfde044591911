//! One sync at a time per tenant: a PostgreSQL advisory lock (held by one connection for
//! the run, so it spans every instance), or a process mutex for the embedded SQLite
//! (one instance owns the file).

use crate::store::{Store, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Row};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

type LocalKey = (String, i64);
static LOCAL: LazyLock<Mutex<HashMap<LocalKey, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

/// Advisory lock keys are per database; the schema name keeps two schemas (tests, or
/// two deployments sharing a server) apart.
const PG_KEY: &str = "hashtext(current_schema() || ':wecom-bridge:sync')";

/// Held while a tenant's directory is being synced. Dropping it releases the lock (for
/// PostgreSQL by closing the connection, which ends its session locks).
pub struct TenantLock {
    inner: Inner,
}

enum Inner {
    Local(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>),
    Pg(Option<PoolConnection<Postgres>>, i32),
}

impl std::fmt::Debug for TenantLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantLock")
    }
}

fn local_mutex(store: &Store, tenant_id: i64) -> Arc<tokio::sync::Mutex<()>> {
    let db = match store {
        Store::Sqlite(p) => p.connect_options().get_filename().display().to_string(),
        Store::Postgres(_) => String::new(),
    };
    let mut m = LOCAL.lock().unwrap_or_else(|e| e.into_inner());
    m.entry((db, tenant_id)).or_default().clone()
}

/// Takes the tenant's sync lock: waits for it when `wait`, else `None` if it is held.
pub async fn acquire(
    store: &Store,
    tenant_id: i64,
    wait: bool,
) -> Result<Option<TenantLock>, StoreError> {
    match store {
        Store::Sqlite(_) => {
            let m = local_mutex(store, tenant_id);
            let guard = if wait {
                m.lock_owned().await
            } else {
                match m.try_lock_owned() {
                    Ok(g) => g,
                    Err(_) => return Ok(None),
                }
            };
            Ok(Some(TenantLock {
                inner: Inner::Local(guard),
            }))
        }
        Store::Postgres(p) => {
            let key = tenant_id as i32;
            let mut conn = p.acquire().await?;
            if wait {
                let sql = format!("SELECT pg_advisory_lock({PG_KEY}, $1)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
            } else {
                let sql = format!("SELECT pg_try_advisory_lock({PG_KEY}, $1) AS ok");
                let ok: bool = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(key)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get("ok")?;
                if !ok {
                    return Ok(None);
                }
            }
            Ok(Some(TenantLock {
                inner: Inner::Pg(Some(conn), key),
            }))
        }
    }
}

/// Takes the tenant's sync lock, trying for up to `patience`: a run records its end
/// before it lets go of the lock, so a start just after a run finished waits for that
/// moment instead of failing as busy. `None` if it is still held.
pub async fn acquire_within(
    store: &Store,
    tenant_id: i64,
    patience: std::time::Duration,
) -> Result<Option<TenantLock>, StoreError> {
    let until = std::time::Instant::now() + patience;
    loop {
        if let Some(l) = acquire(store, tenant_id, false).await? {
            return Ok(Some(l));
        }
        if std::time::Instant::now() >= until {
            return Ok(None);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

impl TenantLock {
    /// Releases the lock and gives the connection back to the pool.
    pub async fn release(mut self) {
        if let Inner::Pg(conn, key) = &mut self.inner {
            if let Some(mut c) = conn.take() {
                let sql = format!("SELECT pg_advisory_unlock({PG_KEY}, $1)");
                if sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(*key)
                    .execute(&mut *c)
                    .await
                    .is_err()
                {
                    // Could not unlock: close the session so the server releases it.
                    drop(c.detach());
                }
            }
        }
    }
}

impl Drop for TenantLock {
    fn drop(&mut self) {
        if let Inner::Pg(conn, _) = &mut self.inner {
            if let Some(c) = conn.take() {
                // No async here: closing the connection ends the session and its locks.
                drop(c.detach());
            }
        }
    }
}
