//! Telling the WeCom client from WeChat and plain browsers by User-Agent (§11).
//!
//! WeCom webviews also send `MicroMessenger` for compatibility, so `wxwork/` must be checked first.

/// Where a page is being opened, and hence which sign-in flow fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// WeCom webview (incl. private deployments): in-client authorization with `snsapi_base` (§9.1).
    WeCom,
    /// Consumer WeChat: in-client authorization cannot work; offer QR login.
    WeChat,
    /// Anything else: web/QR login (§9.2).
    Browser,
}

/// Classifies a User-Agent: `wxwork/` or `wxworklocal/` (case-insensitive) → WeCom, else
/// `micromessenger` → WeChat, else browser.
pub fn detect(user_agent: &str) -> ClientKind {
    let ua = user_agent.to_ascii_lowercase();
    if ua.contains("wxwork/") || ua.contains("wxworklocal/") {
        ClientKind::WeCom
    } else if ua.contains("micromessenger") {
        ClientKind::WeChat
    } else {
        ClientKind::Browser
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_wecom_user_agents() {
        // Every sample of §11.
        for ua in [
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light",
            "Mozilla/5.0 (Linux; Android 15; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.86 Mobile Safari/537.36 wxwork/4.1.36 MicroMessenger/7.0.1 NetType/4G Language/zh Lang/zh ColorScheme/Dark wwmver/3.26.36.632",
            "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.5304.110 Safari/537.36 Language/zh wxwork/4.1.10 (MicroMessenger/6.2) WindowsWechat MailPlugin_Electron WeMail embeddisk",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) wxwork/3.1.18 (MicroMessenger/6.2) WeChat/2.0.4",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_2 like Mac OS X) AppleWebKit/603.2.4 (KHTML, like Gecko) Mobile/14F89 wxwork/2.2.0 MicroMessenger/6.3.2",
        ] {
            assert_eq!(detect(ua), ClientKind::WeCom, "{ua}");
        }
    }

    #[test]
    fn case_and_private_deployments() {
        assert_eq!(detect("Mozilla/5.0 WXWork/4.1.20"), ClientKind::WeCom);
        assert_eq!(
            detect("Mozilla/5.0 (Linux) wxworklocal/3.1.0 MicroMessenger/7.0.1"),
            ClientKind::WeCom
        );
        assert_eq!(detect("Mozilla/5.0 WxWorkLocal/3.1.0"), ClientKind::WeCom);
    }

    #[test]
    fn wechat_and_browsers() {
        assert_eq!(
            detect("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI Language/zh_CN"),
            ClientKind::WeChat
        );
        assert_eq!(
            detect("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
            ClientKind::Browser
        );
        assert_eq!(detect(""), ClientKind::Browser);
        // The product name without a version slash is not the WeCom webview token.
        assert_eq!(detect("SomeBot wxwork-crawler"), ClientKind::Browser);
    }
}
