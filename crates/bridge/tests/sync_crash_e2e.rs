//! Crashes during a full sync (issue 19, "Crashes and faults"): a child `wecom-bridge sync`
//! of a generated org is stopped like `kill -9`, at named crash points and after random
//! delays, on both engines. After each crash: the directory is as before the run or as
//! after it, never in between; the database is consistent; the run history says what
//! happened (a run whose changes committed is recorded as succeeded with its counts; one
//! left `running` applied nothing, and the next start says so); the next run completes.
//!
//!
//! Callbacks: a burst of stored change_contact callbacks is applied by a child
//! `wecom-bridge serve`, killed at random moments: no callback is lost or failed, every
//! one marked applied is in the directory (at most the one in flight is ahead of its
//! mark), and the next start applies the rest, to what a full reconcile agrees with.
//!
//! Knobs: CRASH_MEMBERS (members of the generated org, default 3,000), CRASH_KILLS
//! (random kills per engine, default 6), CRASH_SEED (the kill delays; printed).

use bridge::app::AppState;
use bridge::config::Config;
use bridge::domain::directory::{CurrentDirectory, RunKind, RunStatus};
use bridge::domain::tenant::Edition;
use bridge::domain::user::{DisabledReason, UserStatus};
use bridge::store::{Store, SyncRun};
use bridge::testing::{postgres_url, sqlite_url, CRASH_AT_VAR};
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// The generated org served by an in-process simulator.
struct Org {
    sim: wecom_sim::SimHandle,
    corpid: String,
    agentid: u32,
    secret: String,
    members: usize,
}

async fn org(members: usize) -> Org {
    let sc = wecom_sim::generate::generate(&wecom_sim::generate::GenerateOptions {
        members,
        departments: (members / 25).max(5),
        tags: 20,
        seed: 19,
    });
    let corp = &sc.corps[0];
    let (corpid, agentid, secret) = (
        corp.corpid.clone(),
        corp.apps[0].agentid,
        corp.apps[0].secret.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = wecom_sim::launch(wecom_sim::Sim::from_scenario(sc), listener)
        .await
        .unwrap();
    Org {
        sim,
        corpid,
        agentid,
        secret,
        members,
    }
}

/// A fresh database with the tenant `default` set up against the org's app.
struct Db {
    url: String,
    key: String,
    data_dir: std::path::PathBuf,
    st: AppState,
    tenant_id: i64,
}

impl Org {
    /// A new database of the engine (`postgres`: a new schema on TEST_DATABASE_URL).
    async fn fresh_db(&self, engine: &str) -> Db {
        let url = if engine == "postgres" {
            postgres_url().await.unwrap()
        } else {
            sqlite_url()
        };
        let url = url.as_str();
        let store = Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        let key = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
        };
        let sealer = bridge::seal::Sealer::from_base64(&key).unwrap();
        let data_dir = std::env::temp_dir().join(format!("bridge-crash-{}", rand::random::<u64>()));
        let cfg = Config {
            data_dir: data_dir.clone(),
            database_url: url.to_string(),
            wecom_api_base: self.sim.api_base(),
            instance_key: key.clone(),
            egress_ips: vec!["127.0.0.1".into()],
            ..Config::default()
        };
        let created = bridge::operator::create_tenant(
            &store,
            "default",
            "Crash",
            Edition::Professional,
            None,
        )
        .await
        .unwrap();
        let st = AppState::new(cfg, store, sealer);
        bridge::setup::save_credentials(
            &st,
            &created.tenant,
            &bridge::domain::integration::WecomCredentialsInput {
                corpid: self.corpid.clone(),
                agentid: self.agentid.to_string(),
                secret: self.secret.clone(),
            },
            &bridge::setup::Actor {
                name: "test".into(),
                ip: None,
            },
        )
        .await
        .unwrap();
        Db {
            url: url.to_string(),
            key,
            data_dir,
            st,
            tenant_id: created.tenant.id,
        }
    }
}

impl Db {
    /// Closes the pool and removes a SQLite database's directory.
    async fn close(self) {
        self.st.store.close().await;
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            let file = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if let Some(dir) = file.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }

    /// `wecom-bridge <args>` on this database and the org's simulator.
    fn bridge(&self, org: &Org, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wecom-bridge"));
        c.args(args)
            .env("WECOM_BRIDGE_DATABASE_URL", &self.url)
            .env("WECOM_BRIDGE_DATA_DIR", &self.data_dir)
            .env("WECOM_BRIDGE_INSTANCE_KEY", &self.key)
            .env("WECOM_BRIDGE_WECOM_API_BASE", org.sim.api_base())
            .env_remove(CRASH_AT_VAR);
        c
    }

    fn cli(&self, org: &Org, crash_at: Option<&str>) -> Command {
        let mut c = self.bridge(org, &["sync", "--tenant", "default"]);
        if let Some(p) = crash_at {
            c.env(CRASH_AT_VAR, p);
        }
        c
    }

    /// Runs `wecom-bridge sync` to its end; a PostgreSQL server may hold a killed
    /// process's session (and its sync lock) a moment longer: "busy" is retried.
    async fn sync_to_end(&self, org: &Org) -> (Option<i32>, String) {
        let started = Instant::now();
        loop {
            let mut cmd = self.cli(org, None);
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.code() == Some(2)
                && text.contains("already running")
                && started.elapsed() < Duration::from_secs(30)
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            return (out.status.code(), text);
        }
    }

    async fn runs(&self) -> Vec<SyncRun> {
        self.st
            .store
            .list_sync_runs(self.tenant_id, None, 100)
            .await
            .unwrap()
    }

    async fn directory(&self, org: &Org) -> String {
        canonical(
            &self
                .st
                .store
                .load_directory(self.tenant_id, &org.corpid)
                .await
                .unwrap(),
        )
    }

    /// Violations of the database's consistency (empty when consistent).
    async fn integrity(&self) -> Vec<String> {
        let mut bad = Vec::new();
        // Rows that must not exist: each query counts them.
        let checks = [
            ("identity without its user", "SELECT COUNT(*) AS n FROM user_identities i WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = i.user_id)"),
            ("user without a WeCom identity", "SELECT COUNT(*) AS n FROM users u WHERE NOT EXISTS (SELECT 1 FROM user_identities i WHERE i.user_id = u.id AND i.kind = 'wecom')"),
            ("user with two WeCom identities", "SELECT COUNT(*) AS n FROM (SELECT user_id FROM user_identities WHERE kind = 'wecom' GROUP BY user_id HAVING COUNT(*) > 1) x"),
            ("membership of a missing user", "SELECT COUNT(*) AS n FROM user_departments m WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.user_id)"),
            ("membership of a missing department", "SELECT COUNT(*) AS n FROM user_departments m WHERE NOT EXISTS (SELECT 1 FROM departments d WHERE d.tenant_id = m.tenant_id AND d.id = m.department_id)"),
            ("tag member of a missing tag", "SELECT COUNT(*) AS n FROM tag_users t WHERE NOT EXISTS (SELECT 1 FROM tags g WHERE g.tenant_id = t.tenant_id AND g.id = t.tag_id)"),
            ("tag member of a missing user", "SELECT COUNT(*) AS n FROM tag_users t WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id)"),
            ("finished run without an end", "SELECT COUNT(*) AS n FROM sync_runs WHERE status <> 'running' AND finished_at IS NULL"),
        ];
        use sqlx::Row;
        for (what, sql) in checks {
            let n: i64 = match &self.st.store {
                Store::Sqlite(p) => sqlx::query(sql).fetch_one(p).await.unwrap().get("n"),
                Store::Postgres(p) => sqlx::query(sql).fetch_one(p).await.unwrap().get("n"),
            };
            if n != 0 {
                bad.push(format!("{what}: {n}"));
            }
        }
        if let Store::Sqlite(p) = &self.st.store {
            let ok: String = sqlx::query("PRAGMA integrity_check")
                .fetch_one(p)
                .await
                .unwrap()
                .get(0);
            if ok != "ok" {
                bad.push(format!("integrity_check: {ok}"));
            }
            let fk = sqlx::query("PRAGMA foreign_key_check")
                .fetch_all(p)
                .await
                .unwrap();
            if !fk.is_empty() {
                bad.push(format!("foreign_key_check: {} rows", fk.len()));
            }
        }
        bad
    }
}

/// The directory as text, without internal ids or times: equal for equal directories.
fn canonical(d: &CurrentDirectory) -> String {
    let mut s = String::new();
    let mut depts: Vec<_> = d.departments.values().collect();
    depts.sort_by_key(|d| d.record.id);
    for x in depts {
        let _ = writeln!(s, "D {:?} {}", x.record, x.active);
    }
    let mut users: Vec<_> = d.users.iter().collect();
    users.sort_by(|a, b| a.key.cmp(&b.key));
    for u in users {
        let _ = writeln!(
            s,
            "U {:?} {:?} {:?} {:?}",
            u.key, u.record, u.status, u.disabled_reason
        );
    }
    let mut tags: Vec<_> = d.tags.values().collect();
    tags.sort_by_key(|t| t.record.id);
    for t in tags {
        let _ = writeln!(s, "T {:?} {}", t.record, t.active);
    }
    s
}

/// What a crash left, and what the next start made of it.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Left {
    /// Killed before it recorded a run.
    NoRun,
    /// The run's changes did not commit.
    Before,
    /// The run's changes committed.
    After,
    /// The process had finished before the kill.
    Finished,
}

/// One crash of an initial full sync on a fresh database, and the checks after it.
async fn crash_once(org: &Org, engine: &str, reference: &str, how: Crash) -> Left {
    let db = org.fresh_db(engine).await;
    let before = db.directory(org).await;
    assert!(before.lines().all(|l| !l.starts_with("U ")));
    let finished = match how {
        Crash::At(point) => {
            let mut cmd = db.cli(org, Some(point));
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            assert_eq!(
                out.status.code(),
                None,
                "{engine}: crash point {point} was not reached: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        Crash::After(delay) => {
            let mut child = db
                .cli(org, None)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            tokio::time::sleep(delay).await;
            let finished = child.try_wait().unwrap().is_some();
            let _ = child.kill(); // SIGKILL
            tokio::task::spawn_blocking(move || child.wait().unwrap())
                .await
                .unwrap();
            finished
        }
    };
    let mid = db.directory(org).await;
    assert!(
        mid == before || mid == reference,
        "{engine} {how:?}: the directory is neither as before nor as after the run ({} lines, want 0 users or {})",
        mid.lines().count(),
        reference.lines().count()
    );
    let bad = db.integrity().await;
    assert!(bad.is_empty(), "{engine} {how:?}: {bad:?}");
    let applied = mid == reference;
    let runs = db.runs().await;
    let left = match (runs.first(), applied) {
        (None, false) => Left::NoRun,
        (None, true) => panic!("{engine} {how:?}: a directory was applied without a run"),
        (Some(r), true) => {
            // The changes committed: so did the record of the run that made them.
            assert_eq!(
                (r.status, r.kind, r.users_added, r.finished_at.is_some()),
                (
                    RunStatus::Succeeded,
                    RunKind::Full,
                    org.members as i64,
                    true
                ),
                "{engine} {how:?}: the directory was applied but the run says {r:?}"
            );
            if finished {
                Left::Finished
            } else {
                Left::After
            }
        }
        (Some(r), false) => {
            assert_eq!(
                r.status,
                RunStatus::Running,
                "{engine} {how:?}: nothing was applied, the run says {r:?}"
            );
            assert_eq!(r.users_added, 0);
            Left::Before
        }
    };

    // The next start completes and tells the truth about the crashed run.
    let (code, out) = db.sync_to_end(org).await;
    assert_eq!(code, Some(0), "{engine} {how:?}: the next run: {out}");
    assert_eq!(
        db.directory(org).await,
        reference,
        "{engine} {how:?}: after the next run"
    );
    let bad = db.integrity().await;
    assert!(
        bad.is_empty(),
        "{engine} {how:?} after the next run: {bad:?}"
    );
    let runs = db.runs().await;
    let next = &runs[0];
    assert_eq!(next.status, RunStatus::Succeeded, "{next:?}");
    let want_added = if applied { 0 } else { org.members as i64 };
    assert_eq!(
        next.users_added, want_added,
        "{engine} {how:?}: the next run added"
    );
    if let Some(crashed) = runs.get(1) {
        match left {
            Left::Before => {
                assert_eq!(crashed.status, RunStatus::Interrupted, "{crashed:?}");
                let msg = crashed.error.as_deref().unwrap_or_default();
                assert!(
                    msg.contains("nothing was applied"),
                    "{engine} {how:?}: {msg}"
                );
                assert!(crashed.finished_at.is_some());
            }
            _ => assert_eq!(crashed.status, RunStatus::Succeeded, "{crashed:?}"),
        }
    }
    assert!(
        runs.iter().all(|r| r.status != RunStatus::Running),
        "{engine} {how:?}: a run is still running: {runs:?}"
    );
    db.close().await;
    left
}

#[derive(Debug, Clone, Copy)]
enum Crash {
    /// At a named crash point.
    At(&'static str),
    /// SIGKILL after this long.
    After(Duration),
}

// The simulator runs in this process and answers the child: keep threads free for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_full_sync_leaves_before_or_after_and_a_true_history() {
    let members = env_usize("CRASH_MEMBERS", 3_000);
    let kills = env_usize("CRASH_KILLS", 6);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("CRASH_SEED={seed} CRASH_MEMBERS={members} CRASH_KILLS={kills}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let org = org(members).await;
    let mut engines = vec!["sqlite"];
    if postgres_url().await.is_some() {
        engines.push("postgres");
    }
    for engine in engines {
        let t0 = Instant::now();
        // The directory after a whole run, and how long a whole run takes.
        let db = org.fresh_db(engine).await;
        let started = Instant::now();
        let (code, out) = db.sync_to_end(&org).await;
        let whole = started.elapsed();
        assert_eq!(code, Some(0), "{out}");
        let reference = db.directory(&org).await;
        assert_eq!(
            reference.lines().filter(|l| l.starts_with("U ")).count(),
            members
        );
        db.close().await;

        // Named points: just before the apply, and right after its commit.
        assert_eq!(
            crash_once(&org, engine, &reference, Crash::At("sync-before-apply")).await,
            Left::Before
        );
        assert_eq!(
            crash_once(&org, engine, &reference, Crash::At("sync-applied")).await,
            Left::After
        );
        // SIGKILL after random delays within a whole run's time (later runs are a little
        // faster: some still find the process finished); every other one in its second
        // half, where the diff and the apply are.
        let mut tally = std::collections::BTreeMap::new();
        let whole_ms = whole.as_millis() as u64;
        for i in 0..kills {
            let from = if i % 2 == 0 {
                whole_ms / 10
            } else {
                whole_ms * 6 / 10
            };
            let ms = rng.gen_range(from..=whole_ms * 95 / 100);
            let left = crash_once(
                &org,
                engine,
                &reference,
                Crash::After(Duration::from_millis(ms)),
            )
            .await;
            *tally.entry(format!("{left:?}")).or_insert(0) += 1;
        }
        eprintln!(
            "{engine}: a whole run {:.2} s; {kills} kills: {tally:?}; {:.1} s in all",
            whole.as_secs_f64(),
            t0.elapsed().as_secs_f64()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Crashes while applying callbacks

/// One change made in the simulator, and the change_contact callback WeCom sends for it.
struct Change {
    xml: String,
    sha: String,
    what: Effect,
}

/// What an applied callback must have left in the directory.
#[derive(Debug)]
enum Effect {
    Created(String),
    Positioned(String, String),
    Deleted(String),
    Department(i64),
}

impl Effect {
    fn visible(&self, d: &CurrentDirectory) -> bool {
        let user = |id: &str| d.users.iter().find(|u| u.record.userid == id);
        match self {
            Effect::Created(id) => user(id).is_some_and(|u| u.status != UserStatus::Disabled),
            Effect::Positioned(id, p) => user(id).is_some_and(|u| &u.record.position == p),
            Effect::Deleted(id) => user(id).is_some_and(|u| {
                u.status == UserStatus::Disabled
                    && u.disabled_reason == Some(DisabledReason::LeftWecom)
            }),
            Effect::Department(id) => d.departments.get(id).is_some_and(|x| x.active),
        }
    }
}

fn callback_xml(corpid: &str, n: usize, body: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{corpid}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>{body}</xml>",
        1_800_000_000 + n
    )
}

impl Db {
    /// `wecom-bridge serve` on a free port: its background worker applies pending callbacks.
    fn serve(&self, org: &Org) -> std::process::Child {
        self.bridge(org, &["serve"])
            .env("WECOM_BRIDGE_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Callbacks waiting to be applied.
    async fn pending_count(&self) -> usize {
        let sql = "SELECT COUNT(*) FROM callback_events WHERE status = 'pending'";
        let n: i64 = match &self.st.store {
            Store::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Store::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        };
        n as usize
    }

    /// Each stored callback's status, by the SHA-256 of its XML.
    async fn callback_statuses(&self) -> std::collections::HashMap<String, String> {
        use sqlx::Row;
        let sql = "SELECT xml_sha256, status FROM callback_events";
        let rows = match &self.st.store {
            Store::Sqlite(p) => sqlx::query(sql)
                .fetch_all(p)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
            Store::Postgres(p) => sqlx::query(sql)
                .fetch_all(p)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        };
        rows
    }
}

/// Makes a burst of changes in the simulator and stores their callbacks as the bridge does
/// when it answers WeCom's POST (stored, not applied yet).
async fn burst(org: &Org, db: &Db, rng: &mut rand::rngs::StdRng) -> Vec<Change> {
    use sha2::{Digest, Sha256};
    let dir = db
        .st
        .store
        .load_directory(db.tenant_id, &org.corpid)
        .await
        .unwrap();
    let mut depts: Vec<i64> = dir
        .departments
        .values()
        .filter(|d| d.active)
        .map(|d| d.record.id)
        .collect();
    depts.sort();
    // Members not disabled already (a disabled member who leaves stays disabled as
    // before), and leading no one: a leader's departure also changes other members and
    // departments, which WeCom reports with no callback of theirs (a reconcile's work).
    let leaders: std::collections::HashSet<&str> = dir
        .departments
        .values()
        .flat_map(|d| d.record.leaders.split(','))
        .chain(
            dir.users
                .iter()
                .flat_map(|u| u.record.direct_leader.split(',')),
        )
        .collect();
    let mut members: Vec<String> = dir
        .users
        .iter()
        .filter(|u| u.status != UserStatus::Disabled && !leaders.contains(u.record.userid.as_str()))
        .map(|u| u.record.userid.clone())
        .collect();
    members.sort();
    let http = reqwest::Client::new();
    let admin = format!("{}/sim/admin/corps/{}", org.sim.base_url, org.corpid);
    let call = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "sim admin: {}", r.status());
    };
    let mut changes = Vec::new();
    let mut push = |xml: String, what: Effect| {
        let sha = hex::encode(Sha256::digest(xml.as_bytes()));
        changes.push(Change { xml, sha, what });
    };
    for i in 0..6i64 {
        let id = 900_000 + i;
        let parent = depts[rng.gen_range(0..depts.len())];
        call(
            http.post(format!("{admin}/departments"))
                .json(&serde_json::json!({
                    "id": id, "name": format!("崩溃测试{i}"), "parentid": parent
                })),
        )
        .await;
        let xml = callback_xml(&org.corpid, i as usize, &format!(
            "<ChangeType><![CDATA[create_party]]></ChangeType><Id>{id}</Id><Name><![CDATA[崩溃测试{i}]]></Name><ParentId>{parent}</ParentId>"
        ));
        push(xml, Effect::Department(id));
    }
    for i in 0..60 {
        let userid = format!("crash.new.{i}");
        let dept = depts[rng.gen_range(0..depts.len())];
        call(
            http.post(format!("{admin}/members"))
                .json(&serde_json::json!({
                    "userid": userid, "name": format!("新人{i}"), "departments": [dept]
                })),
        )
        .await;
        let xml = callback_xml(
            &org.corpid,
            100 + i,
            &format!(
            "<ChangeType><![CDATA[create_user]]></ChangeType><UserID><![CDATA[{userid}]]></UserID>"
        ),
        );
        push(xml, Effect::Created(userid));
    }
    // Disjoint members: the first 60 get a new position, the next 30 leave.
    for (i, userid) in members.iter().take(60).enumerate() {
        let position = format!("岗位{i}");
        call(
            http.patch(format!("{admin}/members/{userid}"))
                .json(&serde_json::json!({ "position": position })),
        )
        .await;
        let xml = callback_xml(&org.corpid, 200 + i, &format!(
            "<ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[{userid}]]></UserID><Position><![CDATA[{position}]]></Position>"
        ));
        push(xml, Effect::Positioned(userid.clone(), position));
    }
    for (i, userid) in members.iter().skip(60).take(30).enumerate() {
        call(http.delete(format!("{admin}/members/{userid}"))).await;
        let xml = callback_xml(
            &org.corpid,
            300 + i,
            &format!(
            "<ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[{userid}]]></UserID>"
        ),
        );
        push(xml, Effect::Deleted(userid.clone()));
    }
    for c in &changes {
        let change_type = c.xml.split("<ChangeType><![CDATA[").nth(1).unwrap();
        let change_type = &change_type[..change_type.find(']').unwrap()];
        assert!(db
            .st
            .store
            .enqueue_callback(db.tenant_id, &c.sha, change_type, &c.xml)
            .await
            .unwrap());
    }
    changes
}

/// After a kill: no callback lost or failed; every applied one's change is in the
/// directory, and at most one pending one's (the one in flight: its change commits just
/// before its mark); the database is consistent. Returns how many are still pending.
async fn check_callbacks(db: &Db, org: &Org, changes: &[Change], label: &str) -> usize {
    let statuses = db.callback_statuses().await;
    let dir = db
        .st
        .store
        .load_directory(db.tenant_id, &org.corpid)
        .await
        .unwrap();
    let mut pending = 0;
    let mut ahead = Vec::new();
    for c in changes {
        let status = statuses
            .get(&c.sha)
            .unwrap_or_else(|| panic!("{label}: a callback was lost: {:?}", c.what));
        match status.as_str() {
            "applied" => assert!(
                c.what.visible(&dir),
                "{label}: marked applied but not in the directory: {:?}",
                c.what
            ),
            "pending" => {
                pending += 1;
                if c.what.visible(&dir) {
                    ahead.push(&c.what);
                }
            }
            other => panic!("{label}: callback {:?} is {other}", c.what),
        }
    }
    assert!(
        ahead.len() <= 1,
        "{label}: pending callbacks already applied: {ahead:?}"
    );
    let bad = db.integrity().await;
    assert!(bad.is_empty(), "{label}: {bad:?}");
    pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_while_applying_callbacks_loses_none_and_the_next_start_finishes_them() {
    let kills = env_usize("CRASH_KILLS", 6);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("CRASH_SEED={seed} CRASH_KILLS={kills}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut engines = vec!["sqlite"];
    if postgres_url().await.is_some() {
        engines.push("postgres");
    }
    for engine in engines {
        // Each engine gets its own org: the burst changes the simulator's directory.
        let org = org(env_usize("CRASH_MEMBERS", 3_000).min(1_000)).await;
        let db = org.fresh_db(engine).await;
        let (code, out) = db.sync_to_end(&org).await;
        assert_eq!(code, Some(0), "{out}");
        let changes = burst(&org, &db, &mut rng).await;
        let total = changes.len();
        assert_eq!(
            check_callbacks(&db, &org, &changes, engine).await,
            total,
            "stored, none applied yet"
        );

        // Kill `serve` at random points while its worker applies the burst: once the
        // pending count falls to a random target below where this start found it, and a
        // random few milliseconds later (so kills land inside a callback's work too).
        let mut left = Vec::new();
        let mut pending = total;
        for k in 0..kills {
            if pending <= 1 {
                break;
            }
            let target = rng.gen_range(1..pending);
            let extra = Duration::from_millis(rng.gen_range(0..15));
            let mut child = db.serve(&org);
            let started = Instant::now();
            while db.pending_count().await > target && started.elapsed() < Duration::from_secs(60) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(extra).await;
            let _ = child.kill(); // SIGKILL
            tokio::task::spawn_blocking(move || child.wait().unwrap())
                .await
                .unwrap();
            pending = check_callbacks(
                &db,
                &org,
                &changes,
                &format!("{engine} kill {k} at {target} pending + {extra:?}"),
            )
            .await;
            left.push(pending);
        }

        // The next start applies the rest.
        let mut child = db.serve(&org);
        let started = Instant::now();
        loop {
            // Only counted while it runs: a check reads the marks and the directory apart.
            // Done once nothing is pending and its run record is finished too (the last
            // mark commits just before the record's end).
            let pending = db.pending_count().await;
            if pending == 0
                && db
                    .runs()
                    .await
                    .iter()
                    .all(|r| r.status != RunStatus::Running)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{engine}: {pending} callbacks still pending after a minute"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert_eq!(check_callbacks(&db, &org, &changes, engine).await, 0);
        let dir = db
            .st
            .store
            .load_directory(db.tenant_id, &org.corpid)
            .await
            .unwrap();
        let missing: Vec<_> = changes.iter().filter(|c| !c.what.visible(&dir)).collect();
        assert!(
            missing.is_empty(),
            "{engine}: not applied: {:?}",
            missing.iter().map(|c| &c.what).collect::<Vec<_>>()
        );

        // Every run of callbacks ended, a killed one as interrupted.
        let runs = db.runs().await;
        assert!(
            runs.iter().all(|r| r.status != RunStatus::Running),
            "{engine}: a run is still running: {runs:?}"
        );
        let incremental: Vec<_> = runs
            .iter()
            .filter(|r| r.kind == RunKind::Incremental)
            .collect();
        // The last run of callbacks succeeded: the next start's. Unless the last kill fell
        // after its run's final callback and before the run's end: then nothing was left
        // for the next start, and that run is the last, interrupted with all handled.
        let last = incremental[0];
        if left.last() == Some(&0) && last.status == RunStatus::Interrupted {
            assert_eq!(last.progress_done, last.progress_total, "{last:?}");
        } else {
            assert_eq!(last.status, RunStatus::Succeeded, "{last:?}");
        }

        // What the callbacks made is what WeCom says: a full reconcile finds nothing to do.
        let before = db.directory(&org).await;
        let (code, out) = db.sync_to_end(&org).await;
        assert_eq!(code, Some(0), "{out}");
        let after = db.directory(&org).await;
        let changed: Vec<String> = diff_lines(&before, &after);
        assert!(
            changed.is_empty(),
            "{engine}: the reconcile changed the directory:\n{}",
            changed.join("\n")
        );
        let r = &db.runs().await[0];
        assert_eq!(
            (
                r.kind,
                r.status,
                r.users_added,
                r.users_updated,
                r.users_disabled
            ),
            (RunKind::Full, RunStatus::Succeeded, 0, 0, 0),
            "{engine}: {r:?}"
        );
        eprintln!(
            "{engine}: {total} callbacks; pending after each kill: {left:?}; interrupted runs: {}",
            incremental
                .iter()
                .filter(|r| r.status == RunStatus::Interrupted)
                .count()
        );
        db.close().await;
    }
}

/// Lines in only one of two canonical directories, marked `-` (before) or `+` (after).
fn diff_lines(before: &str, after: &str) -> Vec<String> {
    let a: std::collections::BTreeSet<&str> = before.lines().collect();
    let b: std::collections::BTreeSet<&str> = after.lines().collect();
    let mut out: Vec<String> = a.difference(&b).map(|l| format!("- {l}")).collect();
    out.extend(b.difference(&a).map(|l| format!("+ {l}")));
    out
}

/// Issue 20: the simulator's minute limit is lowered to half of what a full sync needs;
/// a child `wecom-bridge sync` reads half the departments, waits for the window, and is
/// killed (SIGKILL) while it waits. The next run reads from WeCom only the departments the
/// killed one had not saved (the same hour's budget, not a second full read), and ends
/// with the same directory as a run that was never interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_half_way_resumes_from_its_checkpoint() {
    let org = org(env_usize("CRASH_MEMBERS", 3_000)).await;
    let mut engines = vec!["sqlite"];
    if postgres_url().await.is_some() {
        engines.push("postgres");
    }
    let user_list = |org: &Org| {
        org.sim
            .sim
            .world()
            .counters
            .get("user/list")
            .copied()
            .unwrap_or(0)
    };
    for engine in engines {
        // An uninterrupted run: the reference directory and D, the user/list calls.
        org.sim.sim.world().settings.per_corp_api_per_min = 10_000;
        org.sim.sim.world().clock_offset_ms += 61_000;
        org.sim.sim.world().counters.clear();
        let db = org.fresh_db(engine).await;
        let (code, out) = db.sync_to_end(&org).await;
        assert_eq!(code, Some(0), "{out}");
        let reference = db.directory(&org).await;
        let d = user_list(&org);
        assert!(d >= 40, "{d} departments");
        db.close().await;

        let limit = d / 2;
        org.sim.sim.world().settings.per_corp_api_per_min = limit as u32;
        org.sim.sim.world().clock_offset_ms += 61_000;
        org.sim.sim.world().counters.clear();
        let db = org.fresh_db(engine).await;
        let mut child = db
            .cli(&org, None)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the run waits for WeCom's window, then kill it.
        let deadline = Instant::now() + Duration::from_secs(60);
        let killed_run = loop {
            assert!(
                Instant::now() < deadline,
                "{engine}: the run never waited for the limit"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "{engine}: the run ended by itself"
            );
            if let Some(r) = db
                .runs()
                .await
                .into_iter()
                .find(|r| r.rate_wait_secs.is_some())
            {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = child.kill(); // SIGKILL
        tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        let first_calls = user_list(&org);
        let saved = db
            .st
            .store
            .checkpoint_index(db.tenant_id, 0)
            .await
            .unwrap()
            .iter()
            .filter(|(k, _, run)| k == "dept_members" && *run == killed_run.id)
            .count() as u64;
        assert!(
            saved >= limit / 2 && saved <= limit,
            "{engine}: {saved} of {d} departments saved (limit {limit}/min)"
        );
        assert!(db
            .directory(&org)
            .await
            .lines()
            .all(|l| !l.starts_with("U ")));

        // The window passes (the simulator's clock moves); the next run, paced on that
        // clock, resumes.
        org.sim.sim.world().clock_offset_ms += 61_000;
        org.sim.sim.world().counters.clear();
        let clock = bridge::testing::SimClock::new(org.sim.sim.clone());
        let pacer = wecom::Pacer::new(
            std::sync::Arc::new(bridge::store::StoreCallBudget::new(db.st.store.clone())),
            std::sync::Arc::new(clock),
            wecom::RateLimits {
                per_min: 10_000,
                per_hour: 150_000,
            },
        );
        let mut st = db.st.clone();
        st.wecom = st.wecom.with_pacer(std::sync::Arc::new(pacer));
        let tenant = st.store.tenant_by_id(db.tenant_id).await.unwrap().unwrap();
        let o = bridge::sync::run_full(
            &st,
            &tenant,
            bridge::sync::SyncOptions::new(bridge::domain::directory::Trigger::Cli, "test"),
        )
        .await
        .unwrap();
        assert_eq!(o.status, RunStatus::Succeeded, "{engine}: {:?}", o.message);
        let resumed = o.report.resumed.clone().expect("the run resumed");
        assert_eq!(resumed.from_runs, vec![killed_run.id], "{engine}");
        assert_eq!(resumed.departments, saved, "{engine}");
        let second_calls = user_list(&org);
        assert_eq!(
            second_calls,
            d - saved,
            "{engine}: the resumed run's user/list calls"
        );
        // The same hour's budget: the two runs together read each department about once
        // (the killed run's refused calls, at most one per request in flight, come on top).
        assert!(
            first_calls + second_calls <= d + bridge::sync::fetch::DEFAULT_CONCURRENCY as u64,
            "{engine}: {first_calls} + {second_calls} calls for {d} departments"
        );
        assert_eq!(db.directory(&org).await, reference, "{engine}");
        let bad = db.integrity().await;
        assert!(bad.is_empty(), "{engine}: {bad:?}");
        let runs = db.runs().await;
        let killed = runs.iter().find(|r| r.id == killed_run.id).unwrap();
        assert_eq!(killed.status, RunStatus::Interrupted, "{killed:?}");
        db.close().await;
    }
}
