//! Test support shared by the crate's integration tests and benchmarks: a fresh,
//! migrated database per test on every engine available (SQLite always, PostgreSQL
//! when `TEST_DATABASE_URL` is set), so tests never depend on each other.

use crate::store::Store;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

/// A fresh SQLite database in a new temporary directory.
pub async fn sqlite_store() -> Store {
    let dir = std::env::temp_dir().join(format!("wecom-bridge-test-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
    let s = Store::connect(&url).await.expect("sqlite connect");
    s.migrate().await.expect("sqlite migrate");
    s
}

/// A fresh PostgreSQL schema on `TEST_DATABASE_URL`, if set.
pub async fn postgres_store() -> Option<Store> {
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
    let opts = PgConnectOptions::from_str(&url)
        .expect("TEST_DATABASE_URL")
        .options([("search_path", schema.as_str())]);
    let s = Store::connect_postgres(opts)
        .await
        .expect("postgres connect");
    s.migrate().await.expect("postgres migrate");
    Some(s)
}

/// Every engine to run a test on.
pub async fn stores() -> Vec<Store> {
    let mut v = vec![sqlite_store().await];
    if let Some(pg) = postgres_store().await {
        v.push(pg);
    }
    v
}
