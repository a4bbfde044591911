//! Sign-in URL builders (§9.1, §9.2) and the exact host[:port] domain rule (§9.5).
//!
//! The hosts are configuration so the same builders point at the simulator.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but the RFC 3986 unreserved characters gets percent-encoded, so a `redirect_uri` with its
/// own `?a=b&c=d` (or a `#`) travels as one opaque parameter.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// The origins of the three sign-in endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthHosts {
    /// In-client authorization (`/connect/oauth2/authorize`).
    pub open_weixin: String,
    /// Current web login (`/wwlogin/sso/login`).
    pub login_work: String,
    /// Legacy QR login (`/wwopen/sso/qrConnect`).
    pub open_work: String,
}

impl Default for OAuthHosts {
    fn default() -> Self {
        Self {
            open_weixin: "https://open.weixin.qq.com".into(),
            login_work: "https://login.work.weixin.qq.com".into(),
            open_work: "https://open.work.weixin.qq.com".into(),
        }
    }
}

impl OAuthHosts {
    /// All three on one origin, as the simulator serves them.
    pub fn same_origin(base: &str) -> Self {
        Self {
            open_weixin: base.to_owned(),
            login_work: base.to_owned(),
            open_work: base.to_owned(),
        }
    }
}

/// In-client scope (§9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `snsapi_base`: silent, userid only.
    Base,
    /// `snsapi_privateinfo`: consent page, gives a `user_ticket`.
    PrivateInfo,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::PrivateInfo => "snsapi_privateinfo",
        }
    }
}

/// Language of the web/QR login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

fn origin(host: &str) -> &str {
    host.trim_end_matches('/')
}

/// In-client authorization URL (§9.1). `appid` is the CorpID; `agentid` is always sent (required for
/// `snsapi_privateinfo`, and by a 2022 revision for every scope).
pub fn authorize_url(
    hosts: &OAuthHosts,
    corpid: &str,
    agentid: u32,
    redirect_uri: &str,
    scope: Scope,
    state: &str,
) -> String {
    format!(
        "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}&agentid={agentid}#wechat_redirect",
        origin(&hosts.open_weixin),
        enc(corpid),
        enc(redirect_uri),
        scope.as_str(),
        enc(state),
    )
}

/// Current web login URL for a self-built app (§9.2, `login_type=CorpApp`). The redirect host must match
/// the app's web-login callback domain (授权回调域), not the trusted domain.
pub fn web_login_url(
    hosts: &OAuthHosts,
    corpid: &str,
    agentid: u32,
    redirect_uri: &str,
    state: &str,
    lang: Lang,
) -> String {
    format!(
        "{}/wwlogin/sso/login?login_type=CorpApp&appid={}&agentid={agentid}&redirect_uri={}&state={}&lang={}",
        origin(&hosts.login_work),
        enc(corpid),
        enc(redirect_uri),
        enc(state),
        lang.as_str(),
    )
}

/// Legacy QR login URL (§9.2, `wwopen/sso/qrConnect`, still answered).
pub fn qr_connect_url(
    hosts: &OAuthHosts,
    corpid: &str,
    agentid: u32,
    redirect_uri: &str,
    state: &str,
    lang: Lang,
) -> String {
    format!(
        "{}/wwopen/sso/qrConnect?appid={}&agentid={agentid}&redirect_uri={}&state={}&lang={}",
        origin(&hosts.open_work),
        enc(corpid),
        enc(redirect_uri),
        enc(state),
        lang.as_str(),
    )
}

/// The literal `host[:port]` of an absolute URL, as WeCom compares it (§9.5): host lower-cased, an
/// explicit port kept as written, **including a default one** (`https://h:443/` gives `h:443`), which is
/// why this does not use `url::Url` (it drops default ports). `None` when there is no `scheme://host`
/// or the port is not a number.
pub fn redirect_host_port(redirect_uri: &str) -> Option<String> {
    let (scheme, rest) = redirect_uri.trim().split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Userinfo is not part of the domain (and `trusted@evil` must not pass as `trusted`).
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    normalize_host_port(host_port)
}

/// `host[:port]` with the host lower-cased; an IPv6 literal keeps its brackets.
fn normalize_host_port(host_port: &str) -> Option<String> {
    let (host, port) = if host_port.starts_with('[') {
        let end = host_port.find(']')?;
        let (host, after) = host_port.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    match port {
        None => Some(host),
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(format!("{host}:{port}"))
        }
        Some(_) => None,
    }
}

/// Whether `redirect_uri` satisfies a trusted domain (or web-login callback domain) under WeCom's
/// exact rule: same host and same port as written; scheme and path ignored; no subdomains, no
/// wildcards, no default-port equivalence. `trusted` is written without a scheme (`mail.qq.com:8080`);
/// a pasted scheme or trailing path is tolerated.
pub fn domain_matches(trusted: &str, redirect_uri: &str) -> bool {
    let trusted = trusted.trim();
    let trusted = trusted.split_once("://").map_or(trusted, |(_, rest)| rest);
    let trusted = trusted.split(['/', '?', '#']).next().unwrap_or_default();
    match (
        normalize_host_port(trusted),
        redirect_host_port(redirect_uri),
    ) {
        (Some(t), Some(r)) => t == r,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    fn query(url: &str, key: &str) -> Option<String> {
        Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    #[test]
    fn authorize_url_shape() {
        let url = authorize_url(
            &OAuthHosts::default(),
            "ww1436e0e65a779aee",
            1000002,
            "http://api.3dept.com/cgi-bin/query?action=get",
            Scope::Base,
            "STATE",
        );
        assert_eq!(
            url,
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=ww1436e0e65a779aee&redirect_uri=http%3A%2F%2Fapi.3dept.com%2Fcgi-bin%2Fquery%3Faction%3Dget&response_type=code&scope=snsapi_base&state=STATE&agentid=1000002#wechat_redirect"
        );
        let url = authorize_url(
            &OAuthHosts::default(),
            "ww",
            1,
            "https://a/",
            Scope::PrivateInfo,
            "",
        );
        assert_eq!(query(&url, "scope").as_deref(), Some("snsapi_privateinfo"));
        assert_eq!(
            Url::parse(&url).unwrap().fragment(),
            Some("wechat_redirect")
        );
    }

    #[test]
    fn redirect_uri_and_state_round_trip() {
        let redirect = "https://sso.example.com:8443/cb?a=b&c=d%20e+f&next=/x#frag";
        let state = "s t&a=1/?#中";
        let hosts = OAuthHosts::default();
        for url in [
            authorize_url(&hosts, "wwc", 7, redirect, Scope::Base, state),
            web_login_url(&hosts, "wwc", 7, redirect, state, Lang::En),
            qr_connect_url(&hosts, "wwc", 7, redirect, state, Lang::Zh),
        ] {
            assert_eq!(
                query(&url, "redirect_uri").as_deref(),
                Some(redirect),
                "{url}"
            );
            assert_eq!(query(&url, "state").as_deref(), Some(state), "{url}");
            assert_eq!(query(&url, "appid").as_deref(), Some("wwc"));
            assert_eq!(query(&url, "agentid").as_deref(), Some("7"));
            // Only the builder's own separators remain.
            assert!(!url.contains("a=b"));
        }
    }

    #[test]
    fn web_and_qr_login_urls() {
        let hosts = OAuthHosts::default();
        assert_eq!(
            web_login_url(&hosts, "wwc", 1000002, "https://h/cb", "xyz", Lang::Zh),
            "https://login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp&appid=wwc&agentid=1000002&redirect_uri=https%3A%2F%2Fh%2Fcb&state=xyz&lang=zh"
        );
        assert_eq!(
            qr_connect_url(&hosts, "wwc", 1000002, "https://h/cb", "xyz", Lang::En),
            "https://open.work.weixin.qq.com/wwopen/sso/qrConnect?appid=wwc&agentid=1000002&redirect_uri=https%3A%2F%2Fh%2Fcb&state=xyz&lang=en"
        );
        assert!(!web_login_url(&hosts, "wwc", 1, "https://h/", "", Lang::Zh).contains("scope"));
    }

    #[test]
    fn same_origin_hosts() {
        let hosts = OAuthHosts::same_origin("http://127.0.0.1:9999/");
        for url in [
            authorize_url(&hosts, "wwc", 1, "https://h/", Scope::Base, "s"),
            web_login_url(&hosts, "wwc", 1, "https://h/", "s", Lang::Zh),
            qr_connect_url(&hosts, "wwc", 1, "https://h/", "s", Lang::Zh),
        ] {
            assert!(
                url.starts_with("http://127.0.0.1:9999/") && !url.contains("9999//"),
                "{url}"
            );
        }
    }

    #[test]
    fn host_port_is_literal() {
        let cases = [
            ("https://Mail.QQ.com:8080/cb?x=1", Some("mail.qq.com:8080")),
            ("https://host:443/cb", Some("host:443")),
            ("http://host:80", Some("host:80")),
            ("https://host/cb", Some("host")),
            ("https://host?x=1", Some("host")),
            ("https://host#f", Some("host")),
            ("https://user:pw@host:81/", Some("host:81")),
            ("https://trusted.com@evil.com/", Some("evil.com")),
            ("http://[::1]:8080/", Some("[::1]:8080")),
            ("http://[::1]/", Some("[::1]")),
            ("HTTPS://H", Some("h")),
            ("host/cb", None),
            ("https:///cb", None),
            ("https://host:/cb", None),
            ("https://host:8o/cb", None),
            ("://host", None),
            ("1x://host", None),
        ];
        for (uri, want) in cases {
            assert_eq!(redirect_host_port(uri).as_deref(), want, "{uri}");
        }
    }

    #[test]
    fn exact_domain_rule() {
        // §9.5: a redirect to mail.qq.com:8080 needs exactly mail.qq.com:8080.
        let redirect = "http://mail.qq.com:8080/cgi-bin/callback";
        assert!(domain_matches("mail.qq.com:8080", redirect));
        assert!(domain_matches("MAIL.qq.com:8080", redirect));
        for trusted in [
            "email.qq.com",
            "support.mail.qq.com",
            "*.qq.com",
            "mail.qq.com",
        ] {
            assert!(!domain_matches(trusted, redirect), "{trusted}");
        }
        // Port pitfall: :443 is not stripped.
        assert!(!domain_matches("host", "https://host:443/cb"));
        assert!(domain_matches("host:443", "https://host:443/cb"));
        assert!(domain_matches("host", "https://host/cb"));
        assert!(!domain_matches("host:443", "https://host/cb"));
        assert!(!domain_matches("host:23091", "https://host:23090/cb"));
        // Scheme and path are ignored.
        assert!(domain_matches(
            "sso.example.com",
            "http://sso.example.com/a/b?c=d"
        ));
        assert!(domain_matches(
            "https://sso.example.com/",
            "https://sso.example.com/cb"
        ));
        assert!(!domain_matches(
            "sso.example.com",
            "https://sso.example.com.evil.net/cb"
        ));
        assert!(!domain_matches(
            "sso.example.com",
            "https://sso.example.com@evil.net/cb"
        ));
        assert!(!domain_matches("", "https://h/"));
        assert!(!domain_matches("h", "not a url"));
    }
}
