//! Rolling restarts across two adjacent versions (issue 18): while version N+1 rolls out
//! (its `migrate` applied, some instances still on N), an instance of N keeps serving,
//! and one restarted mid-rollout (or rolled back to) starts and serves too. That holds
//! only while every migration from [`BASELINE`] on only adds, which the first two tests
//! hold every migration to.
//!
//! What is simulated, honestly: version N is this build, run as its own binary with its
//! own migrations. Version N+1 is this build's migrations plus one more that only adds (a
//! table, a nullable column, a NOT NULL column with a default), applied the way N+1's
//! `migrate` would apply it: sqlx's migrator over the same migration files and the new
//! one. N+1's code is not simulated (nothing reads what the extra migration adds).
//! Runs on SQLite (one file shared by the processes) and, with TEST_DATABASE_URL, on
//! PostgreSQL.

use bridge::app::AppState;
use bridge::config::Config;
use bridge::store::Store;
use bridge::testing::database_urls;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// This migration and every one after it must only add (the newest when the rule was
/// made; 0045 and 0020 before it would have broken a rolling restart).
const BASELINE: i64 = 80;

/// Migrations from the baseline on allowed to remove something: each one a release after
/// the last version that used what it removes, so no instance still running uses it.
const CONTRACTIONS: &[i64] = &[];

const DOMAIN: &str = "acme.localhost";

/// What makes one migration's SQL more than additive, one entry per offending statement.
/// Comments are dropped and dollar-quoted bodies (`$$ … $$`) are kept out of the split.
fn not_additive(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    // Function bodies: one opaque token, so their `;` do not split statements.
    let mut plain = String::new();
    for (i, part) in text.split("$$").enumerate() {
        plain.push_str(if i % 2 == 0 { part } else { " BODY " });
    }
    let statements: Vec<String> = plain
        .split(';')
        .map(|s| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        })
        .filter(|s| !s.is_empty())
        .collect();
    // Tables made by this migration itself: constraints on them break nothing older.
    let created: Vec<String> = statements
        .iter()
        .filter_map(|s| {
            let rest = s.strip_prefix("CREATE TABLE ")?;
            let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
            rest.split(['(', ' ']).next().map(str::to_string)
        })
        .collect();
    let mut out = Vec::new();
    for s in &statements {
        let words: Vec<&str> = s.split(' ').collect();
        let has = |w: &str| words.contains(&w);
        let why = if has("DROP") {
            Some("drops something the previous version may use")
        } else if has("RENAME") {
            Some("renames something the previous version may use")
        } else if s.contains("CREATE OR REPLACE") {
            Some("replaces something the previous version relies on")
        } else if s.starts_with("DELETE ") || s.starts_with("TRUNCATE ") {
            Some("deletes rows the previous version may read")
        } else if s.starts_with("ALTER TABLE ") {
            let table = words.get(2).copied().unwrap_or("");
            let table = if table == "IF" {
                words.get(4).copied().unwrap_or("")
            } else {
                table
            };
            if s.contains("ALTER COLUMN") && (has("TYPE") || s.contains("SET DATA TYPE")) {
                Some("changes a column's type")
            } else if s.contains("SET NOT NULL") {
                Some("makes a column NOT NULL")
            } else if created.iter().any(|t| t == table) {
                None
            } else if [
                "ADD CONSTRAINT",
                "ADD PRIMARY KEY",
                "ADD UNIQUE",
                "ADD CHECK",
                "ADD FOREIGN KEY",
            ]
            .iter()
            .any(|c| s.contains(c))
            {
                Some("adds a constraint the previous version's writes may break")
            } else if s.split(',').any(|clause| {
                clause.contains("ADD ")
                    && clause.contains("NOT NULL")
                    && !clause.contains("DEFAULT")
            }) {
                Some("adds a NOT NULL column without a default (the previous version's inserts omit it)")
            } else {
                None
            }
        } else if s.starts_with("CREATE UNIQUE INDEX ") {
            let table = s
                .split(" ON ")
                .nth(1)
                .and_then(|r| r.split(['(', ' ']).next())
                .unwrap_or("");
            (!created.iter().any(|t| t == table))
                .then_some("adds a unique index to a table the previous version writes")
        } else {
            None
        };
        if let Some(why) = why {
            out.push(format!("{why}: {s}"));
        }
    }
    out
}

fn migrations_dir(engine: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(engine)
}

/// (version, file name, SQL) of an engine's migration files.
fn migration_files(engine: &str) -> Vec<(i64, String, String)> {
    let mut v: Vec<(i64, String, String)> = std::fs::read_dir(migrations_dir(engine))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let version: i64 = name
                .split('_')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{engine}/{name}: no version number"));
            (version, name, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_rule_catches_what_would_break_the_previous_version() {
    for bad in [
        "DROP TABLE login_states;",
        "ALTER TABLE tenants DROP COLUMN name;",
        "ALTER TABLE t ALTER COLUMN role DROP DEFAULT;",
        "ALTER TABLE t RENAME COLUMN a TO b;",
        "ALTER TABLE t RENAME TO u;",
        "ALTER TABLE t ALTER COLUMN a TYPE BIGINT;",
        "ALTER TABLE t ALTER COLUMN a SET DATA TYPE TEXT;",
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        "ALTER TABLE t ADD COLUMN a TEXT NOT NULL;",
        "alter table t\n  add column a text not null; -- lower case, two lines",
        "ALTER TABLE t ADD COLUMN b TEXT, ADD COLUMN a BIGINT NOT NULL;",
        "ALTER TABLE t ADD CONSTRAINT c UNIQUE (a);",
        "ALTER TABLE t ADD PRIMARY KEY (a, b);",
        "CREATE UNIQUE INDEX i ON users (email);",
        "DELETE FROM sessions;",
        "CREATE OR REPLACE FUNCTION f() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql;",
    ] {
        assert_eq!(not_additive(bad).len(), 1, "must be refused: {bad}");
    }
    for good in [
        "CREATE TABLE probe (id BIGINT PRIMARY KEY, a TEXT NOT NULL, UNIQUE (a));",
        "CREATE TABLE probe (id BIGINT); CREATE UNIQUE INDEX probe_id ON probe (id); ALTER TABLE probe ADD CONSTRAINT c CHECK (id > 0);",
        "ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Asia/Shanghai';",
        "ALTER TABLE t ADD COLUMN a TEXT; -- DROP in a comment",
        "CREATE INDEX t_a ON t (a);",
        "UPDATE t SET a = 'x' WHERE a IS NULL;",
        "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN DELETE FROM x; RETURN NEW; END $$ LANGUAGE plpgsql;",
    ] {
        assert_eq!(not_additive(good), Vec::<String>::new(), "must pass: {good}");
    }
    // The rule bites on history: migrations before the baseline that would have broken a
    // previous version during a rolling restart.
    for engine in ["sqlite", "postgres"] {
        for (version, name, sql) in migration_files(engine) {
            if [20, 45].contains(&version) {
                assert!(
                    !not_additive(&sql).is_empty(),
                    "{engine}/{name} drops a table or a default: the rule must see it"
                );
            }
        }
    }
}

#[test]
fn every_migration_from_the_baseline_on_only_adds() {
    let mut checked = 0;
    for engine in ["sqlite", "postgres"] {
        for (version, name, sql) in migration_files(engine) {
            if version < BASELINE || CONTRACTIONS.contains(&version) {
                continue;
            }
            let bad = not_additive(&sql);
            assert!(
                bad.is_empty(),
                "{engine}/{name} is not additive, so an instance of the previous version could not \
                 keep serving (or restart) during a rolling restart: {bad:#?}\nSplit it: add now, \
                 and remove what the previous version used a release later (listed in \
                 CONTRACTIONS), once no instance runs a version that uses it."
            );
            checked += 1;
        }
    }
    // Both engines get a file with the same number.
    let versions = |e: &str| {
        migration_files(e)
            .into_iter()
            .map(|m| m.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(versions("sqlite"), versions("postgres"));
    assert!(checked >= 2, "the baseline's own files are checked");
    eprintln!("{checked} migration files from {BASELINE:04} on checked");
}

/// Version N+1's extra migration: additive, numbered after this build's newest.
fn next_migration(newest: i64) -> Migration {
    let sql = "CREATE TABLE rolling_probe (id BIGINT PRIMARY KEY, note TEXT);
ALTER TABLE tenants ADD COLUMN rolling_note TEXT;
ALTER TABLE tenants ADD COLUMN rolling_flag BIGINT NOT NULL DEFAULT 0;";
    assert_eq!(not_additive(sql), Vec::<String>::new());
    Migration::new(
        newest + 1,
        "rolling restart probe".into(),
        MigrationType::Simple,
        sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql)),
        false,
    )
}

/// This build's migrations for the engine of `store` read from their files (the same SQL
/// the binary embeds), optionally without the newest or with version N+1's added.
async fn migrator(store: &Store, without_newest: bool, with_next: bool) -> (Migrator, i64) {
    let engine = store.engine();
    let mut m: Vec<Migration> = Migrator::new(migrations_dir(engine))
        .await
        .unwrap()
        .iter()
        .cloned()
        .collect();
    let newest = m.iter().map(|m| m.version).max().unwrap();
    if without_newest {
        m.retain(|x| x.version != newest);
    }
    if with_next {
        m.push(next_migration(newest));
    }
    (Migrator::with_migrations(m), newest)
}

async fn run(m: &Migrator, store: &Store) {
    match store {
        Store::Sqlite(p) => m.run(p).await.unwrap(),
        Store::Postgres(p) => m.run(p).await.unwrap(),
    }
}

fn instance_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

/// A `wecom-bridge serve` child of this build (version N).
struct Serve {
    child: Child,
    port: u16,
    out: PathBuf,
    err: PathBuf,
}

fn serve(url: &str, dir: &Path, run: usize) -> Serve {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = dir.join(format!("serve-{run}.out"));
    let err = dir.join(format!("serve-{run}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_wecom-bridge"))
        .arg("serve")
        .env("WECOM_BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("WECOM_BRIDGE_DATABASE_URL", url)
        .env("WECOM_BRIDGE_DATA_DIR", dir.join("data"))
        .env_remove("WECOM_BRIDGE_INSTANCE_KEY")
        .env("WECOM_BRIDGE_INSTANCE_KEY_FILE", dir.join("instance.key"))
        .env("WECOM_BRIDGE_PUBLIC_URL_PATTERN", "http://{domain}")
        .env("WECOM_BRIDGE_BOOTSTRAP_DOMAIN", DOMAIN)
        .env("WECOM_BRIDGE_WECOM_API_BASE", "http://127.0.0.1:9/cgi-bin/")
        .env("WECOM_BRIDGE_LOG", "warn")
        .env("NO_COLOR", "1")
        .env_remove(bridge::testing::CRASH_AT_VAR)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    Serve {
        child,
        port,
        out,
        err,
    }
}

impl Serve {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits for `/readyz` to answer 200 and returns its body; panics with the log if the
    /// process exits first (or after 30 s).
    async fn ready(&mut self, http: &reqwest::Client, what: &str) -> serde_json::Value {
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", self.base())).send().await {
                if r.status() == 200 {
                    return r.json().await.unwrap();
                }
            }
            if let Some(s) = self.child.try_wait().unwrap() {
                panic!(
                    "{what}: the instance exited ({s}): {}",
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{what}: not ready after 30 s: {}",
                std::fs::read_to_string(&self.err).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// A failed assertion must not leave the server running after the test.
impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where `/console` sends the holder of `cookie` (`/console/password` once signed in with
/// a one-time password, `/console/login` when not signed in).
async fn console(http: &reqwest::Client, base: &str, cookie: &str) -> String {
    let r = http
        .get(format!("{base}/console"))
        .header("host", DOMAIN)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{base}/console");
    r.headers()["location"].to_str().unwrap().to_string()
}

/// Signs the admin in with `password`; returns the session cookie.
async fn sign_in(http: &reqwest::Client, base: &str, password: &str) -> String {
    let r = http
        .get(format!("{base}/console/login"))
        .header("host", DOMAIN)
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let page = r.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the sign-in form has a csrf field");
    let r = http
        .post(format!("{base}/console/login"))
        .header("host", DOMAIN)
        .header("cookie", cookies.join("; "))
        .form(&[
            ("csrf", csrf),
            ("next", "/console"),
            ("username", "admin"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "sign-in on {base}");
    let session: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .filter(|c| !c.ends_with('='))
        .collect();
    assert!(
        !session.is_empty(),
        "sign-in on {base} set a session cookie"
    );
    session.join("; ")
}

async fn rolling_restart(url: &str) {
    // Installs the process's TLS provider (reqwest is built without one).
    wecom::default_http_client().unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("bridge-rolling-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("instance.key"), instance_key()).unwrap();

    // Version N: migrates an empty database and creates the first tenant and its admin.
    let mut n = serve(url, &dir, 1);
    let ready = n.ready(&http, "version N on an empty database").await;
    assert_eq!(ready["migrations"], "ok");
    // Printed once serving has started, so possibly just after /readyz answered.
    let started = Instant::now();
    let password = loop {
        let out = std::fs::read_to_string(&n.out).unwrap();
        if let Some(p) = out.lines().find_map(|l| {
            l.trim()
                .strip_prefix("One-time password (change it at first sign-in): ")
        }) {
            break p.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no one-time password printed: {out}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let session = sign_in(&http, &n.base(), &password).await;
    assert_eq!(
        console(&http, &n.base(), &session).await,
        "/console/password"
    );

    // Version N+1 rolls out: its migrate adds a migration version N does not know.
    let store = Store::connect(url).await.unwrap();
    let (next, newest) = migrator(&store, false, true).await;
    run(&next, &store).await;

    // N keeps serving: ready, its sessions valid, new sign-ins (writes) work.
    let r = http
        .get(format!("{}/readyz", n.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "version N behind a newer schema stays ready"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["migrations"], "ok", "{body}");
    assert_eq!(
        console(&http, &n.base(), &session).await,
        "/console/password"
    );
    let second = sign_in(&http, &n.base(), &password).await;
    assert_eq!(
        console(&http, &n.base(), &second).await,
        "/console/password"
    );

    // An instance of N restarted mid-rollout (or rolled back to) starts and serves on
    // the newer schema; sqlx alone would refuse it (VersionMissing).
    n.stop();
    let mut n2 = serve(url, &dir, 2);
    let ready = n2.ready(&http, "version N restarted on N+1's schema").await;
    assert_eq!(ready["migrations"], "ok", "{ready}");
    assert_eq!(
        console(&http, &n2.base(), &session).await,
        "/console/password"
    );
    // Log lines go to standard output.
    let log = std::fs::read_to_string(&n2.out).unwrap();
    assert!(
        log.contains(&format!("{}", newest + 1)),
        "the restarted instance says the database is ahead: {log}"
    );
    // Version N's own `migrate` accepts the newer schema too.
    let m = Command::new(env!("CARGO_BIN_EXE_wecom-bridge"))
        .arg("migrate")
        .env("WECOM_BRIDGE_DATABASE_URL", url)
        .env("WECOM_BRIDGE_DATA_DIR", dir.join("data"))
        .env("WECOM_BRIDGE_INSTANCE_KEY_FILE", dir.join("instance.key"))
        .env("WECOM_BRIDGE_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        m.status.success(),
        "version N's migrate on N+1's schema: {}",
        String::from_utf8_lossy(&m.stderr)
    );
    n2.stop();
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "rolling restart on {}: version N served through migration {} and restarted on it",
        store.engine(),
        newest + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_n_serves_and_restarts_while_n_plus_1_adds_a_migration() {
    for url in database_urls().await {
        rolling_restart(&url).await;
    }
}

fn state(store: Store, url: &str) -> AppState {
    let key = instance_key();
    let cfg = Config {
        database_url: url.to_string(),
        instance_key: key.clone(),
        ..Config::default()
    };
    AppState::new(cfg, store, bridge::seal::Sealer::from_base64(&key).unwrap())
}

#[tokio::test]
async fn readiness_says_behind_only_for_a_newer_binary_on_an_older_schema() {
    for url in database_urls().await {
        let store = Store::connect(&url).await.unwrap();
        // The schema of the version before this one: this build's newest withheld.
        let (older, newest) = migrator(&store, true, false).await;
        run(&older, &store).await;
        let st = state(store.clone(), &url);
        let r = bridge::ops::readiness(&st).await;
        assert!(!r.ready, "{r:?}");
        assert_eq!(
            r.migrations,
            format!("not applied: [{newest}]; run `wecom-bridge migrate`"),
            "{}",
            store.engine()
        );
        store.migrate().await.unwrap();
        let r = bridge::ops::readiness(&st).await;
        assert!(r.ready, "{r:?}");
        // A newer version's migration applied: this build is behind, and still ready.
        let (next, _) = migrator(&store, false, true).await;
        run(&next, &store).await;
        store.migrate().await.unwrap();
        let r = bridge::ops::readiness(&st).await;
        assert!(r.ready && r.migrations == "ok", "{r:?}");
        store.close().await;
    }
}

#[tokio::test]
async fn an_unknown_migration_older_than_the_newest_is_refused() {
    for url in database_urls().await {
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        // Version 7 exists in no release of this line (another branch's migration).
        let sql =
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                   VALUES (7, 'elsewhere', TRUE, $1, 0)";
        match &store {
            Store::Sqlite(p) => sqlx::query(sql)
                .bind(vec![0u8])
                .execute(p)
                .await
                .map(|_| ()),
            Store::Postgres(p) => sqlx::query(sql)
                .bind(vec![0u8])
                .execute(p)
                .await
                .map(|_| ()),
        }
        .unwrap();
        let e = store.migrate().await.unwrap_err().to_string();
        assert!(
            e.contains("[7]") && e.contains("another line of versions"),
            "{}: {e}",
            store.engine()
        );
        store.close().await;
    }
}
