//! The values an admin pastes into the WeCom admin console for this tenant (the
//! wizard's step 3), all derived from the tenant's custom domain and the instance's
//! configuration, so that they match what the bridge later sends to WeCom.

use serde::Serialize;

/// One value with where it goes in WeCom's admin console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsoleValue {
    pub key: &'static str,
    pub label_zh: &'static str,
    pub label_en: &'static str,
    /// Menu path in the WeCom admin console.
    pub where_zh: &'static str,
    pub where_en: &'static str,
    pub value: String,
    /// A secret-like value (callback Token / EncodingAESKey): shown once to copy.
    pub sensitive: bool,
}

pub struct ConsoleInputs<'a> {
    /// `https://oa.example.com` (no trailing slash).
    pub base_url: &'a str,
    /// `oa.example.com` or `oa.example.com:8443`.
    pub domain: &'a str,
    pub egress_ips: &'a [String],
    pub callback_token: &'a str,
    pub callback_aes_key: &'a str,
}

/// Paths the bridge serves for WeCom, relative to the tenant's base URL.
pub const HOME_PATH: &str = "/wecom/home";
pub const OAUTH_CALLBACK_PATH: &str = "/auth/wecom/callback";
pub const EVENT_CALLBACK_PATH: &str = "/wecom/callback";

pub fn console_values(i: &ConsoleInputs<'_>) -> Vec<ConsoleValue> {
    let ips = if i.egress_ips.is_empty() {
        String::new()
    } else {
        i.egress_ips.join(";")
    };
    vec![
        ConsoleValue {
            key: "home_url",
            label_zh: "应用主页",
            label_en: "App home page",
            where_zh: "应用管理 → 该应用 → 应用主页 → 设置",
            where_en: "App Management → the app → App home page → Set",
            value: format!("{}{HOME_PATH}", i.base_url),
            sensitive: false,
        },
        ConsoleValue {
            key: "trusted_domain",
            label_zh: "可信域名（网页授权及JS-SDK）",
            label_en: "Trusted domain (web authorization and JS-SDK)",
            where_zh: "应用管理 → 该应用 → 网页授权及JS-SDK → 设置可信域名",
            where_en: "App Management → the app → Web authorization and JS-SDK → Trusted domain",
            value: i.domain.to_string(),
            sensitive: false,
        },
        ConsoleValue {
            key: "web_login_domain",
            label_zh: "授权回调域（企业微信授权登录）",
            label_en: "Authorized-login callback domain",
            where_zh: "应用管理 → 该应用 → 企业微信授权登录 → Web网页 → 授权回调域",
            where_en: "App Management → the app → WeCom authorized login → Web → Callback domain",
            value: i.domain.to_string(),
            sensitive: false,
        },
        ConsoleValue {
            key: "trusted_ips",
            label_zh: "企业可信IP",
            label_en: "Trusted IPs",
            where_zh: "应用管理 → 该应用 → 企业可信IP → 配置",
            where_en: "App Management → the app → Trusted IPs → Configure",
            value: ips,
            sensitive: false,
        },
        ConsoleValue {
            key: "callback_url",
            label_zh: "接收事件服务器 URL",
            label_en: "Callback URL (receive events)",
            where_zh: "应用管理 → 该应用 → 接收消息 → 设置API接收 → URL",
            where_en: "App Management → the app → Receive messages → Set API receiving → URL",
            value: format!("{}{EVENT_CALLBACK_PATH}", i.base_url),
            sensitive: false,
        },
        ConsoleValue {
            key: "callback_token",
            label_zh: "Token",
            label_en: "Token",
            where_zh: "接收消息 → 设置API接收 → Token",
            where_en: "Receive messages → Set API receiving → Token",
            value: i.callback_token.to_string(),
            sensitive: true,
        },
        ConsoleValue {
            key: "callback_aes_key",
            label_zh: "EncodingAESKey",
            label_en: "EncodingAESKey",
            where_zh: "接收消息 → 设置API接收 → EncodingAESKey",
            where_en: "Receive messages → Set API receiving → EncodingAESKey",
            value: i.callback_aes_key.to_string(),
            sensitive: true,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_domain() {
        let ips = vec!["203.0.113.25".to_string(), "203.0.113.26".to_string()];
        let v = console_values(&ConsoleInputs {
            base_url: "https://oa.example.com",
            domain: "oa.example.com",
            egress_ips: &ips,
            callback_token: "tok",
            callback_aes_key: "key",
        });
        let get = |k: &str| v.iter().find(|x| x.key == k).unwrap().value.clone();
        assert_eq!(get("home_url"), "https://oa.example.com/wecom/home");
        assert_eq!(get("trusted_domain"), "oa.example.com");
        assert_eq!(get("web_login_domain"), "oa.example.com");
        assert_eq!(get("trusted_ips"), "203.0.113.25;203.0.113.26");
        assert_eq!(get("callback_url"), "https://oa.example.com/wecom/callback");
        assert!(v.iter().filter(|x| x.sensitive).count() == 2);
    }
}
