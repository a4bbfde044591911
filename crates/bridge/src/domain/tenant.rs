//! Tenants, their edition and custom domain, and the integration mode.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Product editions, in ascending order: the WeCom integration needs Professional or higher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edition {
    Basic,
    Standard,
    Professional,
    Enterprise,
}

impl Edition {
    pub const ALL: [Edition; 4] = [
        Edition::Basic,
        Edition::Standard,
        Edition::Professional,
        Edition::Enterprise,
    ];
    /// The lowest edition that may enable the WeCom self-built app integration.
    pub const WECOM_MINIMUM: Edition = Edition::Professional;

    pub fn as_str(self) -> &'static str {
        match self {
            Edition::Basic => "basic",
            Edition::Standard => "standard",
            Edition::Professional => "professional",
            Edition::Enterprise => "enterprise",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Edition::Basic => "基础版",
            Edition::Standard => "标准版",
            Edition::Professional => "专业版",
            Edition::Enterprise => "企业版",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Edition::Basic => "Basic",
            Edition::Standard => "Standard",
            Edition::Professional => "Professional",
            Edition::Enterprise => "Enterprise",
        }
    }

    /// Refuses the WeCom integration below Professional, naming both editions.
    pub fn check_wecom_allowed(self) -> Result<(), EditionTooLow> {
        if self >= Self::WECOM_MINIMUM {
            Ok(())
        } else {
            Err(EditionTooLow {
                current: self,
                required: Self::WECOM_MINIMUM,
            })
        }
    }
}

impl fmt::Display for Edition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Edition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Edition::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown edition {s:?}: use basic, standard, professional or enterprise")
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the WeCom integration needs the {} edition or higher; this tenant is on {}", required.label_en(), current.label_en())]
pub struct EditionTooLow {
    pub current: Edition,
    pub required: Edition,
}

/// How the tenant's directory and sign-in are connected to WeCom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationMode {
    None,
    /// An earlier integration through a third-party (provider) app.
    ThirdParty,
    /// A self-built (自建) app: this product's integration.
    SelfBuilt,
}

impl IntegrationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationMode::None => "none",
            IntegrationMode::ThirdParty => "third_party",
            IntegrationMode::SelfBuilt => "self_built",
        }
    }
}

impl FromStr for IntegrationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(IntegrationMode::None),
            "third_party" => Ok(IntegrationMode::ThirdParty),
            "self_built" => Ok(IntegrationMode::SelfBuilt),
            _ => Err(format!("unknown integration mode {s:?}")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: i64,
    /// Short stable name used by the operator CLI (`--tenant acme`).
    pub slug: String,
    pub name: String,
    pub edition: Edition,
    /// The tenant's custom domain, `host` or `host:port`, lower-case.
    pub domain: Option<String>,
    pub integration_mode: IntegrationMode,
    pub created_at: i64,
    /// The workbench's idle timeout chosen by the admin; `None`: the instance default.
    pub member_session_idle_secs: Option<i64>,
    /// The IANA time zone the console shows times in (default `Asia/Shanghai`).
    pub time_zone: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the domain is empty")]
    Empty,
    #[error("enter only the domain, like oa.example.com (no http://, path or spaces): {0:?}")]
    NotAHost(String),
    #[error("an IP address cannot be a WeCom trusted domain: {0:?}")]
    IpAddress(String),
    #[error("the port in {0:?} is not a number between 1 and 65535")]
    BadPort(String),
}

/// Normalises a custom domain as WeCom's trusted-domain field takes it: `host` or
/// `host:port`, no scheme or path, lower-case host. WeCom refuses IP addresses.
pub fn normalize_domain(input: &str) -> Result<String, DomainError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DomainError::Empty);
    }
    if s.contains("://") || s.contains('/') || s.contains(char::is_whitespace) || s.contains('@') {
        return Err(DomainError::NotAHost(s.into()));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => {
            let port: u16 = p.parse().map_err(|_| DomainError::BadPort(s.into()))?;
            if port == 0 {
                return Err(DomainError::BadPort(s.into()));
            }
            (h, Some(port))
        }
        None => (s, None),
    };
    let host = host.to_ascii_lowercase();
    if host.parse::<std::net::Ipv4Addr>().is_ok() || host.starts_with('[') {
        return Err(DomainError::IpAddress(s.into()));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(DomainError::NotAHost(s.into()));
    }
    Ok(match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// The host of a `host[:port]` domain: what browsers scope cookies by (they ignore
/// ports), so two tenants must never share it.
pub fn cookie_host(domain: &str) -> &str {
    match domain.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => domain,
    }
}

/// The tenant among `others` whose domain shares `domain`'s cookie host, if any.
pub fn cookie_host_clash<'a>(domain: &str, others: &'a [Tenant]) -> Option<&'a Tenant> {
    let host = cookie_host(domain);
    others.iter().find(|t| {
        t.domain
            .as_deref()
            .is_some_and(|d| cookie_host(d).eq_ignore_ascii_case(host))
    })
}

/// Validates a tenant slug: lower-case letters, digits and `-`, 2–40 characters.
pub fn validate_slug(slug: &str) -> Result<(), String> {
    let ok = (2..=40).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tenant name {slug:?} must be 2–40 characters of a-z, 0-9 and -"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edition_gate() {
        assert!(Edition::Professional.check_wecom_allowed().is_ok());
        assert!(Edition::Enterprise.check_wecom_allowed().is_ok());
        let e = Edition::Basic.check_wecom_allowed().unwrap_err();
        assert_eq!(
            (e.current, e.required),
            (Edition::Basic, Edition::Professional)
        );
        assert!(e.to_string().contains("Professional") && e.to_string().contains("Basic"));
        assert!(Edition::Standard.check_wecom_allowed().is_err());
        assert_eq!(
            "PROFESSIONAL".parse::<Edition>().unwrap(),
            Edition::Professional
        );
        assert!("gold".parse::<Edition>().is_err());
    }

    #[test]
    fn domains() {
        assert_eq!(
            normalize_domain(" OA.Example.com ").unwrap(),
            "oa.example.com"
        );
        assert_eq!(
            normalize_domain("acme.localhost:8080").unwrap(),
            "acme.localhost:8080"
        );
        assert!(matches!(
            normalize_domain("https://oa.example.com"),
            Err(DomainError::NotAHost(_))
        ));
        assert!(matches!(
            normalize_domain("oa.example.com/x"),
            Err(DomainError::NotAHost(_))
        ));
        assert!(matches!(
            normalize_domain("10.0.0.1"),
            Err(DomainError::IpAddress(_))
        ));
        assert!(matches!(
            normalize_domain("a.com:99999"),
            Err(DomainError::BadPort(_))
        ));
        assert!(matches!(normalize_domain(""), Err(DomainError::Empty)));
        assert!(normalize_domain("-bad.com").is_err());
        assert_eq!(cookie_host("acme.localhost:8080"), "acme.localhost");
        assert_eq!(cookie_host("acme.localhost"), "acme.localhost");
    }
}
