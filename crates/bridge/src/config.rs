//! Configuration: defaults → TOML file → environment (`WECOM_BRIDGE_*`). The defaults
//! run with no file at all: an embedded SQLite database in the data directory.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Where the SQLite database and the instance key live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty = `sqlite://<data_dir>/bridge.db`.
    pub database_url: String,
    /// How a tenant's public base URL is built from its custom domain.
    pub public_url_pattern: String,
    /// WeCom's server API base; the simulator's for tests and the demo.
    pub wecom_api_base: String,
    /// WeCom's OAuth page hosts (in-client authorize, web login, legacy QR).
    pub wecom_open_weixin: String,
    pub wecom_login_work: String,
    pub wecom_open_work: String,
    /// This instance's egress IPs, as WeCom sees them, for the trusted-IP list.
    pub egress_ips: Vec<String>,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` is believed: the client's
    /// IP (audit log, sign-in throttling) is then the right-most address in it that is
    /// not one of them. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Base64 of 32 bytes; empty = `<data_dir>/instance.key`, created on first start.
    pub instance_key: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// A connection must send its request head within this many milliseconds.
    pub header_read_timeout_ms: u64,
    /// A request (its body included) must be answered within this many milliseconds
    /// (408 otherwise).
    pub request_timeout_ms: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Console session idle timeout and absolute lifetime, in seconds.
    pub admin_session_idle_secs: u64,
    pub admin_session_max_secs: u64,
    /// Member (workbench) session idle timeout and absolute lifetime, in seconds.
    pub member_session_idle_secs: u64,
    pub member_session_max_secs: u64,
    /// How stale an instance's view of ended member sessions may get, in milliseconds:
    /// sessions ended on another instance stop working here within this time (at once
    /// when ended here).
    pub member_session_revocation_poll_ms: u64,
    /// First start only: the edition and domain of the tenant created when none exists
    /// (empty domain = `localhost:<listen port>`).
    pub bootstrap_edition: crate::domain::tenant::Edition,
    pub bootstrap_domain: String,
    /// First start only: the display name of that tenant.
    pub bootstrap_name: String,
    /// Audit entries older than this many days are deleted (hourly); 0 keeps them all.
    pub audit_retention_days: u64,
    /// Directory sync: seconds between reconciles of a synced tenant without its own
    /// policy (0 = off), and WeCom requests in flight per batch.
    pub sync_reconcile_secs: u64,
    pub sync_concurrency: usize,
    /// WeCom's per-corp, per-API limits the client paces itself under (wecom-api.md §16;
    /// lower them only to match a simulator's), and the longest a sync's call waits for
    /// them in all (an hour's window and a little more; then the run fails, clearly).
    pub wecom_calls_per_min: u32,
    pub wecom_calls_per_hour: u32,
    pub sync_max_rate_wait_secs: u64,
    /// How long a sync's WeCom request may take before it counts as failed (and is
    /// retried, a bounded number of times), in milliseconds.
    pub wecom_timeout_ms: u64,
    /// Serve Prometheus metrics at `/metrics` (off by default).
    pub metrics_enabled: bool,
    /// Serve them on this address instead of the main listener (e.g. `127.0.0.1:9464`,
    /// reachable by the scraper only); unset = on the main listener, any Host.
    pub metrics_listen: Option<SocketAddr>,
    /// Log lines as human-readable text (`text`, the default) or one JSON object a line
    /// (`json`).
    pub log_format: LogFormat,
    /// Admin API rate limit per key, per instance: a burst, refilled at this many
    /// requests a minute.
    pub api_rate_burst: u32,
    pub api_rate_per_minute: u32,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("static address"),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            public_url_pattern: "https://{domain}".into(),
            wecom_api_base: wecom::DEFAULT_API_BASE.into(),
            wecom_open_weixin: "https://open.weixin.qq.com".into(),
            wecom_login_work: "https://login.work.weixin.qq.com".into(),
            wecom_open_work: "https://open.work.weixin.qq.com".into(),
            egress_ips: Vec::new(),
            trusted_proxies: Vec::new(),
            instance_key: String::new(),
            max_body_bytes: 256 * 1024,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            max_connections: 1024,
            admin_session_idle_secs: 30 * 60,
            admin_session_max_secs: 12 * 3600,
            member_session_idle_secs: 2 * 3600,
            member_session_max_secs: 24 * 3600,
            // Half the 1 s within which a revocation must reach every instance (issue
            // 18): a check reads the log when its copy is older than this, so a session
            // ended elsewhere is refused after at most this long plus one query.
            member_session_revocation_poll_ms: 500,
            bootstrap_edition: crate::domain::tenant::Edition::Professional,
            bootstrap_domain: String::new(),
            bootstrap_name: "Default".into(),
            // A year and a month: a year's look-back for a yearly review, with margin.
            audit_retention_days: 400,
            sync_reconcile_secs: 3600,
            sync_concurrency: 16,
            wecom_calls_per_min: wecom::RateLimits::WECOM.per_min,
            wecom_calls_per_hour: wecom::RateLimits::WECOM.per_hour,
            sync_max_rate_wait_secs: 65 * 60,
            wecom_timeout_ms: 10_000,
            metrics_enabled: false,
            metrics_listen: None,
            log_format: LogFormat::Text,
            api_rate_burst: 60,
            api_rate_per_minute: 600,
        }
    }
}

/// Every field, with secrets redacted: the instance key (and any field named like a key,
/// secret, password or token, so later fields are covered too) and the password in
/// `database_url`.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_struct("Config");
        let v = serde_json::to_value(self).unwrap_or_default();
        for (k, v) in v.as_object().into_iter().flatten() {
            let secret = ["key", "secret", "password", "token"]
                .iter()
                .any(|w| k.contains(w));
            if secret && v.as_str().is_none_or(|s| !s.is_empty()) {
                m.field(k, &"<redacted>");
            } else if k == "database_url" {
                m.field(k, &redact_url_password(v.as_str().unwrap_or("")));
            } else {
                m.field(k, &format_args!("{v}"));
            }
        }
        m.finish()
    }
}

fn redact_url_password(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => u.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Whether the public URLs are HTTPS: cookies are `Secure` and HSTS is sent then.
    /// The one place every cookie and header asks.
    pub fn https(&self) -> bool {
        self.public_url_pattern.starts_with("https://")
    }

    /// Layers the optional TOML file and `WECOM_BRIDGE_*` variables over the defaults.
    /// `WECOM_BRIDGE_INSTANCE_KEY_FILE` reads the key from a file (for secret mounts).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} not found",
                    f.display()
                )));
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig.merge(
            Env::prefixed("WECOM_BRIDGE_")
                .ignore(&["INSTANCE_KEY_FILE", "CONFIG", "LOG"])
                .map(|k| k.as_str().to_ascii_lowercase().into()),
        );
        let mut cfg: Config = fig
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Ok(path) = std::env::var("WECOM_BRIDGE_INSTANCE_KEY_FILE") {
            cfg.instance_key = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::Invalid(format!("instance key file {path}: {e}")))?
                .trim()
                .to_string();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.public_url_pattern.contains("{domain}") {
            return Err(ConfigError::Invalid(
                "public_url_pattern must contain {domain}, e.g. https://{domain}".into(),
            ));
        }
        for (name, v) in [
            ("wecom_api_base", &self.wecom_api_base),
            ("wecom_open_weixin", &self.wecom_open_weixin),
            ("wecom_login_work", &self.wecom_login_work),
            ("wecom_open_work", &self.wecom_open_work),
        ] {
            let ok = url::Url::parse(v).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be an http(s) URL, got {v:?}"
                )));
            }
        }
        if !(self.database_url.is_empty()
            || self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(format!(
                "database_url must start with sqlite: or postgres://, got {:?}",
                self.database_url
            )));
        }
        if self.wecom_calls_per_min == 0 || self.wecom_calls_per_hour == 0 {
            return Err(ConfigError::Invalid(
                "wecom_calls_per_min and wecom_calls_per_hour must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The WeCom limits the client paces itself under.
    pub fn wecom_rate_limits(&self) -> wecom::RateLimits {
        wecom::RateLimits {
            per_min: self.wecom_calls_per_min,
            per_hour: self.wecom_calls_per_hour,
        }
    }

    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("bridge.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }

    /// `https://oa.example.com` for domain `oa.example.com`.
    pub fn base_url_for(&self, domain: &str) -> String {
        self.public_url_pattern
            .replace("{domain}", domain)
            .trim_end_matches('/')
            .to_string()
    }

    pub fn oauth_hosts(&self) -> wecom::oauth::OAuthHosts {
        wecom::oauth::OAuthHosts {
            open_weixin: self.wecom_open_weixin.clone(),
            login_work: self.wecom_login_work.clone(),
            open_work: self.wecom_open_work.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.database_url().starts_with("sqlite://"));
        assert_eq!(c.base_url_for("oa.example.com"), "https://oa.example.com");
    }

    #[test]
    fn bad_values_are_named() {
        let c = Config {
            public_url_pattern: "https://x".into(),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("{domain}"));
        let c = Config {
            database_url: "mysql://x".into(),
            ..Config::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("database_url"));
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Config {
            instance_key: "c2VjcmV0LWluc3RhbmNlLWtleS1ieXRlcy0xMjM0NTY=".into(),
            database_url: "postgres://bridge:hunter2pw@db.example/bridge".into(),
            ..Config::default()
        };
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(!shown.contains("hunter2pw"), "{shown}");
        assert!(shown.contains("instance_key: \"<redacted>\""), "{shown}");
        assert!(shown.contains("db.example") && shown.contains("127.0.0.1:8080"));
    }

    #[test]
    fn file_layer() {
        let dir = std::env::temp_dir().join(format!("cfg-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9999\"\negress_ips = [\"203.0.113.9\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&f)).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.egress_ips, vec!["203.0.113.9"]);
        std::fs::write(&f, "nonsense_key = 1\n").unwrap();
        assert!(Config::load(Some(&f)).is_err());
        assert!(Config::load(Some(&dir.join("missing.toml"))).is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
