//! End-to-end harness: wecom-sim and the bridge started in-process on free ports, the
//! tenant's domain `acme.localhost:<bridge port>`, and a small cookie-keeping browser.
#![allow(dead_code)]

use bridge::config::Config;
use bridge::domain::tenant::Edition;
use bridge::ServerHandle;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use wecom_sim::fixtures::{self, CORPID, MAIN_AGENTID};
use wecom_sim::{Sim, SimHandle};

pub struct Env {
    pub sim: SimHandle,
    pub bridge: ServerHandle,
    /// `acme.localhost:<port>`, the tenant's custom domain.
    pub domain: String,
    pub data_dir: std::path::PathBuf,
    pub database_url: String,
    pub browser: Browser,
}

/// Starts both servers on `database_url` with the tenant created at `edition`.
pub async fn start(database_url: &str, edition: Edition) -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let domain = format!("acme.localhost:{port}");
    let mut scenario = fixtures::small_org();
    for app in &mut scenario.corps[0].apps {
        app.redirect_domain = domain.clone();
        app.web_login_domain = domain.clone();
        app.home_url = format!("http://{domain}/wecom/home");
    }
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = wecom_sim::launch(Sim::from_scenario(scenario), sim_listener)
        .await
        .unwrap();
    let data_dir = std::env::temp_dir().join(format!("bridge-e2e-{}", rand::random::<u64>()));
    let cfg = config(&sim, &data_dir, database_url, &domain, edition);
    let bridge = bridge::launch(cfg, listener).await.unwrap();
    let browser = Browser::new(bridge.addr, &domain);
    Env {
        sim,
        bridge,
        domain,
        data_dir,
        database_url: database_url.to_string(),
        browser,
    }
}

pub fn config(
    sim: &SimHandle,
    data_dir: &std::path::Path,
    database_url: &str,
    domain: &str,
    edition: Edition,
) -> Config {
    Config {
        data_dir: data_dir.to_path_buf(),
        database_url: database_url.to_string(),
        public_url_pattern: "http://{domain}".into(),
        wecom_api_base: sim.api_base(),
        wecom_open_weixin: sim.base_url.clone(),
        wecom_login_work: sim.base_url.clone(),
        wecom_open_work: sim.base_url.clone(),
        egress_ips: vec!["127.0.0.1".into()],
        bootstrap_edition: edition,
        bootstrap_domain: domain.to_string(),
        ..Config::default()
    }
}

impl Env {
    /// Calls the simulator's admin API and returns the JSON answer.
    pub async fn sim_admin(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/sim/admin{path}", self.sim.base_url);
        let http = reqwest::Client::new();
        let req = match method {
            "POST" => http.post(&url).json(&body),
            "PATCH" => http.patch(&url).json(&body),
            "PUT" => http.put(&url).json(&body),
            "DELETE" => http.delete(&url),
            _ => http.get(&url),
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "sim admin {method} {path}: {status} {v}"
        );
        v
    }

    pub async fn patch_main_app(&self, body: Value) {
        self.sim_admin(
            "PATCH",
            &format!("/corps/{CORPID}/apps/{MAIN_AGENTID}"),
            body,
        )
        .await;
    }

    /// Signs in as the bootstrap admin, replacing the one-time password; returns the
    /// console CSRF token.
    pub async fn admin_login(&self) -> String {
        let b = self
            .bridge
            .bootstrap
            .clone()
            .expect("first start created the tenant");
        let r = self.browser.login(&b.username, &b.one_time_password).await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.location.as_deref(), Some("/console/password"));
        let page = self.browser.get("/console/password").await;
        let csrf = page.hidden("csrf").unwrap_or_else(|| {
            panic!(
                "password page {} {:?}: {} jar={}",
                page.status,
                page.location,
                page.body,
                self.browser.cookie_header()
            )
        });
        let r = self
            .browser
            .post(
                "/console/password",
                &[
                    ("csrf", &csrf),
                    ("current", &b.one_time_password),
                    ("password", NEW_PASSWORD),
                    ("confirm", NEW_PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let r = self.browser.login(&b.username, NEW_PASSWORD).await;
        assert_eq!(r.status, 303, "{}", r.body);
        self.browser
            .get("/console")
            .await
            .hidden("csrf")
            .expect("signed in")
    }

    pub async fn save_credentials(
        &self,
        csrf: &str,
        corpid: &str,
        agentid: &str,
        secret: &str,
    ) -> Page {
        self.browser
            .post(
                "/console/setup/2",
                &[
                    ("csrf", csrf),
                    ("corpid", corpid),
                    ("agentid", agentid),
                    ("secret", secret),
                ],
            )
            .await
    }
}

pub const NEW_PASSWORD: &str = "correct horse battery staple";

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The value of the first hidden input named `name`.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&needle)? + needle.len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_string())
    }
}

/// A browser stand-in: keeps cookies, never follows redirects, always sends the tenant's Host.
pub struct Browser {
    addr: std::net::SocketAddr,
    pub host: String,
    http: reqwest::Client,
    jar: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    pub fn new(addr: std::net::SocketAddr, host: &str) -> Self {
        Browser {
            addr,
            host: host.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn cookie_header(&self) -> String {
        let jar = self.jar.lock().unwrap();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Another browser for `host` carrying this one's cookies (a stolen or replayed cookie).
    pub fn with_cookies_for(&self, host: &str) -> Browser {
        let b = Browser::new(self.addr, host);
        *b.jar.lock().unwrap() = self.jar.lock().unwrap().clone();
        b
    }

    /// Sets a cookie as if a page (or a sibling subdomain) had planted it.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_string(), value.to_string());
    }

    pub fn clear_cookies(&self) {
        self.jar.lock().unwrap().clear();
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let resp = req
            .header("host", &self.host)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        for c in resp.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            let mut jar = self.jar.lock().unwrap();
            if attrs.contains("Max-Age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string()),
            body: resp.text().await.unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(self.url(path)).form(form)).await
    }

    /// A `multipart/form-data` post: text fields and one file (`file`: field name, file
    /// name, bytes), as a browser's upload form sends it.
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
    ) -> Page {
        let boundary = "----wecomBridgeTestBoundary7MA4YWxkTrZu0gW";
        let mut body: Vec<u8> = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                file.0, file.1
            )
            .as_bytes(),
        );
        body.extend_from_slice(file.2);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.send(
            self.http
                .post(self.url(path))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Page {
        let page = self.get("/console/login").await;
        let csrf = page.hidden("csrf").unwrap();
        self.post(
            "/console/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
                ("next", "/console"),
            ],
        )
        .await
    }
}
