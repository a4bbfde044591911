//! The tenant's WeCom self-built app settings, as the admin types them, and their checks
//! before anything is sent to WeCom.

use serde::Serialize;
use std::collections::BTreeMap;

/// Which of a tenant's WeCom self-built apps an integration is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationRole {
    /// The workbench app set up in the wizard: the directory follows its scope and
    /// callbacks. At most one per tenant.
    Main,
    /// A model app's own self-built app; its scope must lie inside the main app's.
    App,
}

impl IntegrationRole {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationRole::Main => "main",
            IntegrationRole::App => "app",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "main" => Some(IntegrationRole::Main),
            "app" => Some(IntegrationRole::App),
            _ => None,
        }
    }
}

/// What the wizard's step 2 collects. The secret is only ever held in memory here;
/// it is sealed before storage and never rendered back.
#[derive(Clone, Default)]
pub struct WecomCredentialsInput {
    pub corpid: String,
    pub agentid: String,
    pub secret: String,
}

impl std::fmt::Debug for WecomCredentialsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomCredentialsInput")
            .field("corpid", &self.corpid)
            .field("agentid", &self.agentid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Checked credentials.
#[derive(Clone)]
pub struct WecomCredentials {
    pub corpid: String,
    pub agentid: u32,
    pub secret: String,
}

/// Per-field messages for a form, in both languages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FieldErrors(pub BTreeMap<&'static str, (String, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, zh: impl Into<String>, en: impl Into<String>) {
        self.0.insert(field, (zh.into(), en.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&(String, String)> {
        self.0.get(field)
    }
}

impl WecomCredentialsInput {
    /// Trims what was pasted and checks the shape of each field. A secret left empty is
    /// allowed when `keep_secret` (the admin edits other fields and keeps the stored one).
    pub fn validate(&self, keep_secret: bool) -> Result<WecomCredentials, FieldErrors> {
        let mut errs = FieldErrors::default();
        let corpid = self.corpid.trim();
        if corpid.is_empty() {
            errs.add("corpid", "请填写企业ID（CorpID）", "Enter the CorpID");
        } else if !(corpid.len() <= 64
            && corpid.chars().all(|c| c.is_ascii_alphanumeric())
            && (corpid.starts_with("ww") || corpid.starts_with("wx")))
        {
            errs.add(
                "corpid",
                "企业ID 以 ww（或 wx）开头，仅含字母和数字，可在 我的企业 → 企业信息 页面底部找到",
                "The CorpID starts with \"ww\" (or \"wx\") and has only letters and digits; find it at the bottom of 我的企业 → 企业信息",
            );
        }
        let agentid = self.agentid.trim();
        let parsed = agentid.parse::<u32>().ok().filter(|a| *a > 0);
        if agentid.is_empty() {
            errs.add("agentid", "请填写应用的 AgentId", "Enter the app's AgentId");
        } else if parsed.is_none() {
            errs.add(
                "agentid",
                "AgentId 是纯数字（如 1000002），可在 应用管理 → 该应用 页面找到",
                "The AgentId is a number (like 1000002), shown on the app's page in 应用管理",
            );
        }
        let secret = self.secret.trim();
        if secret.is_empty() && !keep_secret {
            errs.add("secret", "请填写应用的 Secret", "Enter the app's Secret");
        } else if secret.len() > 128 || secret.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            errs.add(
                "secret",
                "Secret 格式不正确，请从应用页面重新复制",
                "The Secret looks wrong; copy it again from the app's page",
            );
        }
        match (errs.is_empty(), parsed) {
            (true, Some(agentid)) => Ok(WecomCredentials {
                corpid: corpid.to_string(),
                agentid,
                secret: secret.to_string(),
            }),
            _ => Err(errs),
        }
    }
}

/// Checks a WeCom domain-verification file name (`WW_verify_<alphanumerics>.txt`) and
/// returns the content WeCom expects in it: the part after the prefix (wecom-api.md §9.5).
pub fn verify_file_content(name: &str) -> Result<String, String> {
    name.strip_prefix("WW_verify_")
        .and_then(|s| s.strip_suffix(".txt"))
        .filter(|t| !t.is_empty() && t.len() <= 64 && t.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(str::to_string)
        .ok_or_else(|| format!("{name:?} is not a WeCom verification file name (WW_verify_….txt)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(c: &str, a: &str, s: &str) -> WecomCredentialsInput {
        WecomCredentialsInput {
            corpid: c.into(),
            agentid: a.into(),
            secret: s.into(),
        }
    }

    #[test]
    fn trims_and_accepts() {
        let c = input(" ww1436e0e65a779aee ", " 1000002", "abc\n")
            .validate(false)
            .ok()
            .unwrap();
        assert_eq!(
            (c.corpid.as_str(), c.agentid, c.secret.as_str()),
            ("ww1436e0e65a779aee", 1000002, "abc")
        );
    }

    #[test]
    fn field_errors() {
        let e = input("1436", "app", "").validate(false).err().unwrap();
        assert!(
            e.get("corpid").is_some() && e.get("agentid").is_some() && e.get("secret").is_some()
        );
        assert!(input("ww1", "1", "").validate(true).is_ok());
        assert!(format!("{:?}", input("ww1", "1", "topsecret")).contains("redacted"));
    }

    #[test]
    fn role_names_round_trip() {
        for r in [IntegrationRole::Main, IntegrationRole::App] {
            assert_eq!(IntegrationRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(IntegrationRole::parse("Main"), None);
    }

    #[test]
    fn verify_file_names() {
        assert_eq!(
            verify_file_content("WW_verify_YpAqDE4xoAPsmGSK.txt").unwrap(),
            "YpAqDE4xoAPsmGSK"
        );
        for bad in [
            "WW_verify_.txt",
            "ww_verify_x.txt",
            "WW_verify_a/b.txt",
            "WW_verify_x.html",
            "../etc/passwd",
        ] {
            assert!(verify_file_content(bad).is_err(), "{bad}");
        }
    }
}

/// How far a callback's `timestamp` may be from now, either way. WeCom retries a
/// delivery for a while and clocks drift, so the window is generous; an older request
/// is a replay of a captured one.
pub const CALLBACK_WINDOW_SECS: i64 = 24 * 3600;

/// Whether a (signature-checked) callback's `timestamp` (Unix seconds) is within the
/// window around `now_ms`.
pub fn callback_timestamp_fresh(timestamp: &str, now_ms: i64) -> bool {
    timestamp
        .trim()
        .parse::<i64>()
        .is_ok_and(|t| (now_ms / 1000 - t).abs() <= CALLBACK_WINDOW_SECS)
}

#[cfg(test)]
mod callback_window_tests {
    use super::*;

    #[test]
    fn window_is_a_day_either_way() {
        let now = 1_800_000_000_000;
        assert!(callback_timestamp_fresh("1800000000", now));
        assert!(callback_timestamp_fresh("1799913600", now));
        assert!(callback_timestamp_fresh("1800086400", now));
        assert!(!callback_timestamp_fresh("1799913599", now));
        assert!(!callback_timestamp_fresh("1800086401", now));
        assert!(!callback_timestamp_fresh("", now));
        assert!(!callback_timestamp_fresh("x", now));
        assert!(!callback_timestamp_fresh("99999999999999999999999", now));
    }
}
