//! The admin JSON API end to end, on SQLite and (with TEST_DATABASE_URL) PostgreSQL:
//! keys (missing, wrong, read-only writing, revoked, another tenant's), every endpoint,
//! cursor pagination, problem bodies, rate limits, and the OpenAPI document (every
//! route in it, validated by openapi-spec-validator from PyPI).

mod common;

use bridge::config::Config;
use bridge::domain::directory::Trigger;
use bridge::domain::tenant::Edition;
use bridge::sync::{run_full, SyncOptions};
use bridge::testing::database_urls;
use common::*;
use serde_json::{json, Value};
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};
use wecom_sim::Sim;

struct Api {
    env: Env,
    tenant_id: i64,
    csrf: String,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    /// An RFC 9457 body with this status and code.
    fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{}",
            self.text
        );
        let v = self.json();
        assert_eq!(v["status"], status);
        assert_eq!(v["code"], code, "{}", self.text);
        assert_eq!(v["type"], format!("urn:wecom-bridge:problem:{code}"));
        assert!(v["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(v["detail"].as_str().is_some_and(|t| !t.is_empty()));
        v
    }
}

async fn start_with(db: &str, tweak: impl FnOnce(&mut Config)) -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let domain = format!("acme.localhost:{port}");
    let mut scenario = wecom_sim::fixtures::small_org();
    for app in &mut scenario.corps[0].apps {
        app.redirect_domain = domain.clone();
        app.web_login_domain = domain.clone();
        app.home_url = format!("http://{domain}/wecom/home");
    }
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = wecom_sim::launch(Sim::from_scenario(scenario), sim_listener)
        .await
        .unwrap();
    let data_dir = std::env::temp_dir().join(format!("bridge-api-{}", rand::random::<u64>()));
    let mut cfg = config(&sim, &data_dir, db, &domain, Edition::Professional);
    tweak(&mut cfg);
    let bridge = bridge::launch(cfg, listener).await.unwrap();
    let browser = Browser::new(bridge.addr, &domain);
    Env {
        sim,
        bridge,
        domain,
        data_dir,
        database_url: db.to_string(),
        browser,
    }
}

/// Credentials saved and the small org synced; the admin signed in.
async fn setup(db: &str, tweak: impl FnOnce(&mut Config)) -> Api {
    let env = start_with(db, tweak).await;
    let csrf = env.admin_login().await;
    let r = env
        .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let st = &env.bridge.state;
    let tenant = st.store.tenant_by_slug("default").await.unwrap().unwrap();
    run_full(st, &tenant, SyncOptions::new(Trigger::Console, "admin"))
        .await
        .unwrap();
    Api {
        tenant_id: tenant.id,
        env,
        csrf,
        http: reqwest::Client::new(),
    }
}

impl Api {
    /// Creates a key in the console; returns (id, token).
    async fn key(&self, name: &str, scope: &str) -> (i64, String) {
        let p = self
            .env
            .browser
            .post(
                "/console/api-keys",
                &[("csrf", &self.csrf), ("name", name), ("scope", scope)],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let marker = "data-testid=\"new-api-key\">";
        let start = p.body.find(marker).expect("the key is shown") + marker.len();
        let token = p.body[start..start + p.body[start..].find('<').unwrap()].to_string();
        assert!(token.starts_with("wbk_") && token.len() > 40, "{token}");
        let id = self
            .env
            .bridge
            .state
            .store
            .list_api_keys(self.tenant_id)
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.name == name)
            .unwrap()
            .id;
        (id, token)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let url = format!("http://{}{path}", self.env.bridge.addr);
        let mut req = match method {
            "POST" => self.http.post(&url),
            "PUT" => self.http.put(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        }
        .header("host", &self.env.domain);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            text: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str, key: &str) -> Value {
        let a = self.call("GET", path, Some(key), None).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.text);
        a.json()
    }

    /// Waits until no sync of the tenant runs (by taking its lock), so a run started
    /// through the API has its final record.
    async fn wait_for_sync(&self) {
        let lock = bridge::sync::lock::acquire(&self.env.bridge.state.store, self.tenant_id, true)
            .await
            .unwrap()
            .unwrap();
        lock.release().await;
    }
}

#[tokio::test]
async fn keys_missing_wrong_read_only_and_revoked() {
    for db in database_urls().await {
        let api = setup(&db, |_| {}).await;
        // Missing, malformed, wrong.
        let a = api.call("GET", "/api/v1/users", None, None).await;
        let p = a.problem(401, "unauthenticated");
        assert!(p["detail"].as_str().unwrap().contains("Bearer"));
        assert_eq!(a.headers["www-authenticate"], "Bearer realm=\"api\"");
        api.call("GET", "/api/v1/users", Some(""), None)
            .await
            .problem(401, "unauthenticated");
        let wrong = format!("wbk_{}", "A".repeat(43));
        api.call("GET", "/api/v1/users", Some(&wrong), None)
            .await
            .problem(401, "unauthenticated");
        // A cookie-signed-in admin is not an API caller.
        let b = api.env.browser.get("/api/v1/users").await;
        assert_eq!(b.status, 401, "{}", b.body);

        let (read_id, read) = api.key("monitoring", "read").await;
        let (_, rw) = api.key("ci", "read_write").await;
        // Only the hash is stored.
        let stored: Vec<String> = match &api.env.bridge.state.store {
            bridge::store::Store::Sqlite(p) => {
                sqlx::query_scalar("SELECT token_sha256 FROM api_keys")
                    .fetch_all(p)
                    .await
                    .unwrap()
            }
            bridge::store::Store::Postgres(p) => {
                sqlx::query_scalar("SELECT token_sha256 FROM api_keys")
                    .fetch_all(p)
                    .await
                    .unwrap()
            }
        };
        assert!(stored.contains(&bridge::auth::sha256_hex(&read)));
        assert!(!stored.iter().any(|h| h == &read || h == &rw));
        // Shown once: the list page does not show it again.
        let page = api.env.browser.get("/console/api-keys").await;
        assert!(!page.body.contains(&read) && page.body.contains(&read[..12]));
        assert!(page.body.contains("data-testid=\"last-used\">—"));

        // A read key reads, and may not write.
        api.get("/api/v1/users", &read).await;
        let a = api
            .call(
                "POST",
                "/api/v1/users/status",
                Some(&read),
                Some(json!({"action": "authorize", "user_ids": [1], "dry_run": true})),
            )
            .await;
        assert!(a.problem(403, "forbidden")["detail"]
            .as_str()
            .unwrap()
            .contains("read_write"));
        api.call(
            "PUT",
            "/api/v1/login-config",
            Some(&read),
            Some(json!({"password": true})),
        )
        .await
        .problem(403, "forbidden");
        api.call(
            "POST",
            "/api/v1/sync/runs",
            Some(&read),
            Some(json!({"dry_run": true})),
        )
        .await
        .problem(403, "forbidden");
        // Last use is recorded and shown.
        let page = api.env.browser.get("/console/api-keys").await;
        assert_eq!(
            page.body.matches("data-testid=\"last-used\">—").count(),
            1,
            "only ci unused"
        );

        // Another tenant's host does not know the key.
        let other = bridge::operator::create_tenant(
            &api.env.bridge.state.store,
            "beta",
            "Beta",
            Edition::Professional,
            Some("beta.localhost"),
        )
        .await
        .unwrap();
        let _ = other;
        let resp = api
            .http
            .get(format!("http://{}/api/v1/users", api.env.bridge.addr))
            .header("host", "beta.localhost")
            .header("authorization", format!("Bearer {read}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);

        // Revoked: refused at once, and said so.
        let r = api
            .env
            .browser
            .post(
                &format!("/console/api-keys/{read_id}/revoke"),
                &[("csrf", &api.csrf)],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let a = api.call("GET", "/api/v1/users", Some(&read), None).await;
        assert!(a.problem(401, "unauthenticated")["detail"]
            .as_str()
            .unwrap()
            .contains("revoked"));
        api.get("/api/v1/users", &rw).await;
        // Revoking twice is a 404 page, not a second audit entry.
        let r = api
            .env
            .browser
            .post(
                &format!("/console/api-keys/{read_id}/revoke"),
                &[("csrf", &api.csrf)],
            )
            .await;
        assert_eq!(r.status, 404);
        // Audited, with the key's prefix and never the token.
        let audit = api
            .env
            .bridge
            .state
            .store
            .list_audit(api.tenant_id, 100, None)
            .await
            .unwrap();
        let created = audit
            .iter()
            .filter(|e| e.action == "api_key.created")
            .count();
        let revoked = audit
            .iter()
            .filter(|e| e.action == "api_key.revoked")
            .count();
        assert_eq!((created, revoked), (2, 1));
        assert!(audit.iter().all(|e| !e.detail.contains(&read)));
        // A bad scope or an empty name is named on the page.
        let p = api
            .env
            .browser
            .post(
                "/console/api-keys",
                &[("csrf", &api.csrf), ("name", "x"), ("scope", "admin")],
            )
            .await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("read_write"));
        let p = api
            .env
            .browser
            .post(
                "/console/api-keys",
                &[("csrf", &api.csrf), ("name", " "), ("scope", "read")],
            )
            .await;
        assert_eq!(p.status, 400);
        api.env.bridge.stop().await;
    }
}

#[tokio::test]
async fn every_endpoint() {
    for db in database_urls().await {
        let api = setup(&db, |_| {}).await;
        let (_, read) = api.key("monitoring", "read").await;
        let (rw_id, rw) = api.key("ci", "read_write").await;
        let store = &api.env.bridge.state.store;

        // Users: every page of 2 by cursor covers everyone once, in id order.
        let (_, total) = store
            .list_users(
                api.tenant_id,
                &bridge::store::UserFilter {
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(total >= 4, "{total}");
        let mut ids = Vec::new();
        let mut cursor = String::new();
        let mut pages = 0;
        loop {
            let v = api
                .get(&format!("/api/v1/users?limit=2&cursor={cursor}"), &read)
                .await;
            let users = v["users"].as_array().unwrap();
            assert!(users.len() <= 2);
            ids.extend(users.iter().map(|u| u["id"].as_i64().unwrap()));
            pages += 1;
            match v["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
            assert!(pages < 100);
        }
        assert_eq!(ids.len() as i64, total);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(pages, (total + 1) / 2);
        api.call("GET", "/api/v1/users?cursor=zzz", Some(&read), None)
            .await
            .problem(400, "bad_request");
        api.call("GET", "/api/v1/users?status=frozen", Some(&read), None)
            .await
            .problem(400, "bad_request");
        api.call("GET", "/api/v1/users?limit=x", Some(&read), None)
            .await
            .problem(400, "bad_request");

        // Filters: the root department's subtree is everyone in a department; 研发中心 (2)
        // includes 后端组 (3) below it; a search; a status.
        let all_in = |v: &Value| -> Vec<i64> {
            v["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_i64().unwrap())
                .collect()
        };
        let zhangsan = store
            .user_by_wecom_userid(api.tenant_id, CORPID, "zhangsan")
            .await
            .unwrap()
            .unwrap();
        let d2 = all_in(&api.get("/api/v1/users?department=2&limit=500", &read).await);
        let d3 = all_in(&api.get("/api/v1/users?department=3&limit=500", &read).await);
        let root = all_in(&api.get("/api/v1/users?department=1&limit=500", &read).await);
        assert!(d2.contains(&zhangsan.id), "{d2:?}");
        assert!(
            d3.iter().all(|i| d2.contains(i)),
            "subtree: {d3:?} within {d2:?}"
        );
        assert!(d2.iter().all(|i| root.contains(i)));
        // 李四 is only in 后端组 (3): found under 研发中心 (2) through the subtree.
        let lisi = store
            .user_by_wecom_userid(api.tenant_id, CORPID, "lisi")
            .await
            .unwrap()
            .unwrap();
        assert!(d3.contains(&lisi.id) && d2.contains(&lisi.id), "{d2:?}");
        let direct = store
            .list_users(
                api.tenant_id,
                &bridge::store::UserFilter {
                    department_id: Some(2),
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .0;
        assert!(
            !direct.iter().any(|u| u.id == lisi.id),
            "not a direct member"
        );
        let found = api.get("/api/v1/users?search=ZHANGS", &read).await;
        assert_eq!(all_in(&found), vec![zhangsan.id]);
        let un = api
            .get("/api/v1/users?status=unauthorized&limit=500", &read)
            .await;
        let dis = api
            .get("/api/v1/users?status=disabled&limit=500", &read)
            .await;
        assert_eq!(all_in(&dis).len(), 1, "孙七 is disabled in WeCom");
        assert_eq!(
            (all_in(&un).len() + all_in(&dis).len()) as i64,
            total,
            "the others are new, so unauthorized"
        );
        let none = api.get("/api/v1/users?status=authorized", &read).await;
        assert!(all_in(&none).is_empty());
        let extras = store.user_extras(api.tenant_id, zhangsan.id).await.unwrap();
        if let Some((tag, _)) = extras.tags.first() {
            let t = all_in(
                &api.get(&format!("/api/v1/users?tag={tag}&limit=500"), &read)
                    .await,
            );
            assert!(t.contains(&zhangsan.id));
        }

        // One user, with departments, tags and identities.
        let u = api
            .get(&format!("/api/v1/users/{}", zhangsan.id), &read)
            .await;
        assert_eq!(u["name"], "张三");
        assert_eq!(u["identities"][0]["userid"], "zhangsan");
        assert_eq!(u["identities"][0]["kind"], "wecom");
        assert!(u["departments"].as_array().unwrap().len() >= 2, "{u}");
        api.call("GET", "/api/v1/users/999999", Some(&read), None)
            .await
            .problem(404, "not_found");

        // Status: a dry run counts, changes nothing; then the change, audited by key.
        let body = json!({"action": "authorize", "user_ids": [zhangsan.id], "dry_run": true});
        let a = api
            .call("POST", "/api/v1/users/status", Some(&rw), Some(body))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let v = a.json();
        assert_eq!(
            (
                v["matched"].clone(),
                v["changing"].clone(),
                v["applied"].clone()
            ),
            (json!(1), json!(1), json!(false))
        );
        let still = store
            .user_by_id(api.tenant_id, zhangsan.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(still.status.as_str(), "unauthorized");
        let body = json!({"action": "authorize", "user_ids": [zhangsan.id]});
        let v = api
            .call("POST", "/api/v1/users/status", Some(&rw), Some(body))
            .await
            .json();
        assert_eq!(v["applied"], true);
        assert_eq!(v["changing_ids"], json!([zhangsan.id]));
        let now = store
            .user_by_id(api.tenant_id, zhangsan.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(now.status.as_str(), "authorized");
        let again = json!({"action": "authorize", "user_ids": [zhangsan.id], "dry_run": true});
        let v = api
            .call("POST", "/api/v1/users/status", Some(&rw), Some(again))
            .await
            .json();
        assert_eq!(v["changing"], 0, "already authorized");

        for (body, status, code) in [
            (
                json!({"action": "promote", "user_ids": [zhangsan.id]}),
                400,
                "bad_request",
            ),
            (
                json!({"action": "disable", "user_ids": []}),
                400,
                "bad_request",
            ),
            (
                json!({"action": "disable", "user_ids": [999999]}),
                404,
                "not_found",
            ),
            (json!({"action": "disable"}), 400, "bad_request"),
        ] {
            api.call("POST", "/api/v1/users/status", Some(&rw), Some(body))
                .await
                .problem(status, code);
        }
        let raw = api
            .http
            .post(format!(
                "http://{}/api/v1/users/status",
                api.env.bridge.addr
            ))
            .header("host", &api.env.domain)
            .header("authorization", format!("Bearer {rw}"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), 400);
        assert_eq!(raw.headers()["content-type"], "application/problem+json");

        // Login configuration: read, write, and never all off.
        let v = api.get("/api/v1/login-config", &read).await;
        assert!(v["wecom"].is_boolean() && v["password"].is_boolean(), "{v}");
        let a = api
            .call(
                "PUT",
                "/api/v1/login-config",
                Some(&rw),
                Some(json!({"wecom": true, "password": false})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            a.json(),
            json!({"wecom": true, "password": false, "consent_fields": false})
        );
        assert_eq!(
            api.get("/api/v1/login-config", &read).await,
            json!({"wecom": true, "password": false, "consent_fields": false})
        );
        // The consented fields' opt-in (issue 20), alone: the sources stay.
        let a = api
            .call(
                "PUT",
                "/api/v1/login-config",
                Some(&rw),
                Some(json!({"consent_fields": true})),
            )
            .await;
        assert_eq!(
            a.json(),
            json!({"wecom": true, "password": false, "consent_fields": true})
        );
        api.call(
            "PUT",
            "/api/v1/login-config",
            Some(&rw),
            Some(json!({"wecom": false})),
        )
        .await
        .problem(400, "bad_request");
        assert_eq!(api.get("/api/v1/login-config", &read).await["wecom"], true);

        // Apps: the catalogue (one added in the console).
        assert_eq!(api.get("/api/v1/apps", &read).await, json!({"apps": []}));
        let p = api
            .env
            .browser
            .post(
                "/console/apps",
                &[
                    ("csrf", api.csrf.as_str()),
                    ("slug", "crm"),
                    ("name_zh", "客户管理"),
                    ("name_en", "CRM"),
                    ("url", "https://crm.example.com/"),
                    ("category", "销售"),
                    ("icon", "chart"),
                    ("enabled", "on"),
                    ("access", "everyone"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let v = api.get("/api/v1/apps", &read).await;
        assert_eq!(v["apps"][0]["slug"], "crm", "{v}");
        assert_eq!(v["apps"][0]["name_en"], "CRM");
        assert_eq!(v["apps"][0]["enabled"], true);

        // Sync: a dry run through the API with the guard's confirmation, its progress
        // and the history.
        let a = api
            .call(
                "POST",
                "/api/v1/sync/runs",
                Some(&rw),
                Some(json!({"dry_run": true, "confirm_mass_disable": true})),
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.text);
        let run = a.json();
        let id = run["id"].as_i64().unwrap();
        assert_eq!(a.headers["location"], format!("/api/v1/sync/runs/{id}"));
        assert_eq!(run["kind"], "dry_run");
        assert_eq!(run["forced"], true);
        assert_eq!(run["actor"], format!("api-key:{rw_id}:ci"));
        assert_eq!(run["trigger"], "api", "recorded as started through the API");
        api.wait_for_sync().await;
        let done = api.get(&format!("/api/v1/sync/runs/{id}"), &read).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert!(done["finished_at"].is_i64());
        assert!(done["percent"].is_i64() && done["progress_total"].is_i64());
        let h = api.get("/api/v1/sync/runs?limit=5", &read).await;
        let runs = h["runs"].as_array().unwrap();
        assert_eq!(runs[0]["id"], id, "newest first");
        assert!(runs.len() >= 2, "the setup's sync too");
        let h = api.get("/api/v1/sync/runs?kind=dry_run", &read).await;
        assert!(h["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] == "dry_run"));
        api.call("GET", "/api/v1/sync/runs/424242", Some(&read), None)
            .await
            .problem(404, "not_found");
        api.call("GET", "/api/v1/sync/runs?kind=weekly", Some(&read), None)
            .await
            .problem(400, "bad_request");
        // A real one, then one at once while it still holds the lock or after: either a
        // run or a 409 problem naming the busy sync.
        let a = api
            .call("POST", "/api/v1/sync/runs", Some(&rw), Some(json!({})))
            .await;
        assert_eq!(a.status, 202, "{}", a.text);
        let b = api
            .call("POST", "/api/v1/sync/runs", Some(&rw), Some(json!({})))
            .await;
        if b.status != 202 {
            b.problem(409, "conflict");
        }
        api.wait_for_sync().await;

        // Audit: by action prefix, by actor, by time, paged, and as CSV.
        let actor = format!("api-key:{rw_id}:ci");
        let v = api.get("/api/v1/audit?action=user.", &read).await;
        let e = v["entries"].as_array().unwrap();
        assert_eq!(e.len(), 1, "{v}");
        assert_eq!(e[0]["action"], "user.authorized");
        assert_eq!(e[0]["actor"], actor);
        let enc = |s: &str| s.replace(':', "%3A");
        let v = api
            .get(&format!("/api/v1/audit?actor={}", enc(&actor)), &read)
            .await;
        let actions: Vec<&str> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"user.authorized") && actions.contains(&"login_config.changed"),
            "{actions:?}"
        );
        let future = bridge::domain::now_ms() + 3_600_000;
        let v = api
            .get(&format!("/api/v1/audit?from={future}"), &read)
            .await;
        assert!(v["entries"].as_array().unwrap().is_empty());
        let all = api.get("/api/v1/audit?limit=1000", &read).await;
        let n = all["entries"].as_array().unwrap().len();
        assert!(n >= 4);
        let mut seen = 0;
        let mut cursor = String::new();
        loop {
            let v = api
                .get(&format!("/api/v1/audit?limit=3&cursor={cursor}"), &read)
                .await;
            seen += v["entries"].as_array().unwrap().len();
            match v["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, n);
        let a = api
            .call("GET", "/api/v1/audit.csv?action=user.", Some(&read), None)
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let lines: Vec<&str> = a.text.lines().collect();
        assert_eq!(lines[0], "id,at,actor,action,detail,ip");
        assert_eq!(lines.len(), 2, "{}", a.text);
        assert!(lines[1].contains("user.authorized") && lines[1].contains(&actor));

        // An unknown API route is a problem too.
        api.call("GET", "/api/v1/nothing/here", Some(&read), None)
            .await
            .problem(404, "not_found");
        api.env.bridge.stop().await;
    }
}

#[tokio::test]
async fn rate_limited_per_key() {
    let db = database_urls().await.remove(0);
    let api = setup(&db, |c| {
        c.api_rate_burst = 3;
        c.api_rate_per_minute = 1;
    })
    .await;
    let (_, a) = api.key("a", "read").await;
    let (_, b) = api.key("b", "read").await;
    for _ in 0..3 {
        api.get("/api/v1/apps", &a).await;
    }
    let r = api.call("GET", "/api/v1/apps", Some(&a), None).await;
    r.problem(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another key has its own bucket.
    api.get("/api/v1/apps", &b).await;
    api.env.bridge.stop().await;
}

#[tokio::test]
async fn openapi_document_covers_every_route_and_validates() {
    let db = database_urls().await.remove(0);
    let api = setup(&db, |_| {}).await;
    let (_, rw) = api.key("ci", "read_write").await;
    let a = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let doc = a.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    // Every route the API serves (the router and the document are built together from
    // the handlers; this list is what clients rely on).
    let expected = [
        ("post", "/api/v1/sync/runs"),
        ("get", "/api/v1/sync/runs"),
        ("get", "/api/v1/sync/runs/{id}"),
        ("get", "/api/v1/users"),
        ("get", "/api/v1/users/{id}"),
        ("post", "/api/v1/users/status"),
        ("get", "/api/v1/login-config"),
        ("put", "/api/v1/login-config"),
        ("get", "/api/v1/apps"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/audit.csv"),
    ];
    let documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    for (m, p) in expected {
        assert!(
            documented.contains(&(m.to_string(), p.to_string())),
            "{m} {p} not documented: {documented:?}"
        );
    }
    assert_eq!(documented.len(), expected.len(), "{documented:?}");
    // And everything documented is served (not 404/405), each op with a security need.
    let user = api.get("/api/v1/users?limit=1", &rw).await["users"][0]["id"]
        .as_i64()
        .unwrap();
    for (m, p) in &documented {
        let path = p.replace("{id}", &user.to_string());
        let body = match (m.as_str(), p.as_str()) {
            ("post", "/api/v1/users/status") => {
                Some(json!({"action": "authorize", "user_ids": [user], "dry_run": true}))
            }
            ("put", _) => Some(json!({})),
            ("post", _) => Some(json!({"dry_run": true})),
            _ => None,
        };
        let r = api.call(&m.to_uppercase(), &path, Some(&rw), body).await;
        assert!(
            r.status != 404 && r.status != 405 || p.contains("{id}"),
            "{m} {p}: {} {}",
            r.status,
            r.text
        );
        assert!(r.status < 500, "{m} {p}: {}", r.text);
        let unauth = api.call(&m.to_uppercase(), &path, None, None).await;
        assert_eq!(unauth.status, 401, "{m} {p} needs a key");
        api.wait_for_sync().await;
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Validated by an independent implementation (openapi-spec-validator, PyPI; CI
    // installs requirements-dev.txt).
    let f = api.env.data_dir.join("openapi.json");
    std::fs::write(&f, &a.text).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json\n\
             from openapi_spec_validator import validate\n\
             validate(json.load(open(sys.argv[1])))\n\
             print('valid')",
            f.to_str().unwrap(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "openapi-spec-validator (pip install -r requirements-dev.txt): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid");
    api.env.bridge.stop().await;
}

#[tokio::test]
async fn cli_users_by_department_and_audit_export() {
    use bridge::admin::cli::{audit_export, users, UserSelection};
    use bridge::admin::StatusAction;
    for db in database_urls().await {
        let api = setup(&db, |_| {}).await;
        let st = &api.env.bridge.state;
        // 研发中心 (2) and 后端组 (3) below it: 张三, 李四 and 孙七 (disabled in WeCom).
        let sel = || UserSelection {
            department: Some(2),
            ids: vec![],
        };
        let out = users(st, "default", StatusAction::Authorize, sel(), false)
            .await
            .unwrap();
        assert!(
            out.contains("dry run: 3 users named, 3 would change"),
            "{out}"
        );
        assert!(out.contains("--yes"), "{out}");
        let zhangsan = st
            .store
            .user_by_wecom_userid(api.tenant_id, CORPID, "zhangsan")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            zhangsan.status.as_str(),
            "unauthorized",
            "the dry run changed nothing"
        );
        let out = users(st, "default", StatusAction::Authorize, sel(), true)
            .await
            .unwrap();
        assert!(out.contains("changed 3 users"), "{out}");
        let again = users(st, "default", StatusAction::Authorize, sel(), false)
            .await
            .unwrap();
        assert!(again.contains("3 users named, 0 would change"), "{again}");
        // Errors say what to do.
        let e = users(st, "nope", StatusAction::Authorize, sel(), false)
            .await
            .unwrap_err();
        assert!(e.contains("tenant list"), "{e}");
        let e = users(
            st,
            "default",
            StatusAction::Disable,
            UserSelection {
                department: Some(999),
                ids: vec![],
            },
            false,
        )
        .await
        .unwrap_err();
        assert!(e.contains("department 999") && e.contains("sync"), "{e}");
        let e = users(
            st,
            "default",
            StatusAction::Disable,
            UserSelection {
                department: None,
                ids: vec![],
            },
            false,
        )
        .await
        .unwrap_err();
        assert!(e.contains("--department"), "{e}");

        // audit export: the three changes, by the operator, as CSV.
        let csv = audit_export(
            st,
            "default",
            bridge::store::AuditQuery {
                action: Some("user.".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "id,at,actor,action,detail,ip");
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(lines[1..]
            .iter()
            .all(|l| l.contains(",operator,user.authorized,")));
        api.env.bridge.stop().await;
    }
}

#[tokio::test]
async fn cli_set_wecom_is_checked_live() {
    use bridge::admin::cli::set_wecom;
    let db = database_urls().await.remove(0);
    let api = setup(&db, |_| {}).await;
    let st = &api.env.bridge.state;
    let agentid = MAIN_AGENTID.to_string();
    // A wrong secret: WeCom refuses, the error says why and what to do, nothing changes.
    let before = st
        .store
        .main_integration(api.tenant_id)
        .await
        .unwrap()
        .unwrap();
    let e = set_wecom(st, "default", CORPID, &agentid, "not-the-secret")
        .await
        .unwrap_err();
    assert!(
        e.contains("WeCom refused") && e.contains("nothing was saved"),
        "{e}"
    );
    let after = st
        .store
        .main_integration(api.tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.updated_at, after.updated_at);
    // Bad fields are named by their flag.
    let e = set_wecom(st, "default", "", "abc", "x").await.unwrap_err();
    assert!(e.contains("--corpid") && e.contains("--agentid"), "{e}");
    // The right ones are saved, and the next step named.
    let ok = set_wecom(st, "default", CORPID, &agentid, &format!("{MAIN_SECRET}\n"))
        .await
        .unwrap();
    assert!(
        ok.contains("WeCom accepted") && ok.contains("doctor --tenant default"),
        "{ok}"
    );
    let audit = st.store.list_audit(api.tenant_id, 50, None).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.actor == "operator" && e.action == "wecom.credentials.saved"));
    api.env.bridge.stop().await;
}

#[tokio::test]
async fn users_status_by_filter() {
    for db in database_urls().await {
        let api = setup(&db, |_| {}).await;
        let (_, read) = api.key("monitoring", "read").await;
        let (_, rw) = api.key("ci", "read_write").await;
        let zhangsan = api
            .env
            .bridge
            .state
            .store
            .user_by_wecom_userid(api.tenant_id, wecom_sim::fixtures::CORPID, "zhangsan")
            .await
            .unwrap()
            .unwrap()
            .id;
        let body = json!({"action": "authorize", "user_ids": [zhangsan]});
        api.call("POST", "/api/v1/users/status", Some(&rw), Some(body))
            .await
            .json();
        // By filter: the dry run counts whom the users list shows for the same filter.
        let listed = api
            .get("/api/v1/users?status=unauthorized&limit=500", &read)
            .await["users"]
            .as_array()
            .unwrap()
            .len();
        assert!(listed >= 1);
        let body =
            json!({"action": "authorize", "filter": {"status": "unauthorized"}, "dry_run": true});
        let v = api
            .call("POST", "/api/v1/users/status", Some(&rw), Some(body))
            .await
            .json();
        assert_eq!(
            (
                v["matched"].clone(),
                v["changing"].clone(),
                v["applied"].clone()
            ),
            (json!(listed), json!(listed), json!(false))
        );
        // Applied by filter, there and back: 张三 unauthorized, then authorized again.
        for (action, status) in [("unauthorize", "authorized"), ("authorize", "unauthorized")] {
            let body =
                json!({"action": action, "filter": {"search": "zhangsan", "status": status}});
            let v = api
                .call("POST", "/api/v1/users/status", Some(&rw), Some(body))
                .await
                .json();
            assert_eq!(
                (v["applied"].clone(), v["changing_ids"].clone()),
                (json!(true), json!([zhangsan])),
                "{action}"
            );
        }
        api.call(
            "POST",
            "/api/v1/users/status",
            Some(&rw),
            Some(json!({"action": "disable", "user_ids": [zhangsan], "filter": {}})),
        )
        .await
        .problem(400, "bad_request");
    }
}
