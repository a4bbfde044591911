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
