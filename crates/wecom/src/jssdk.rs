//! JS-SDK page signatures (§10) for `wx.config` / `ww.register` (corp ticket) and `wx.agentConfig`
//! (app ticket). Both use the same algorithm; only the ticket and the config object differ.

use sha1::{Digest, Sha1};

/// `hex_lower(SHA1("jsapi_ticket=…&noncestr=…&timestamp=…&url=…"))`, raw values, no URL-encoding.
/// A `#…` fragment is removed from `url` first: WeCom signs the page URL without it (40093 otherwise).
pub fn signature(jsapi_ticket: &str, noncestr: &str, timestamp: u64, url: &str) -> String {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let string1 =
        format!("jsapi_ticket={jsapi_ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}");
    hex::encode(Sha1::digest(string1.as_bytes()))
}

/// What the page passes to the SDK. `agent_id` is `None` for `wx.config` (signed with the corp ticket)
/// and `Some` for `wx.agentConfig` (signed with that app's own ticket; the wrong ticket gives 42012).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JsSdkConfig {
    /// The CorpID (`appId` in `wx.config`, `corpid` in `wx.agentConfig`).
    pub corp_id: String,
    pub agent_id: Option<u32>,
    /// Unix **seconds** (milliseconds are a classic 40093).
    pub timestamp: u64,
    pub nonce_str: String,
    pub signature: String,
}

impl JsSdkConfig {
    /// For `wx.config` / `ww.register`: sign with the corp jsapi_ticket.
    pub fn corp(
        corp_id: &str,
        corp_ticket: &str,
        url: &str,
        timestamp: u64,
        nonce_str: &str,
    ) -> Self {
        Self {
            corp_id: corp_id.to_owned(),
            agent_id: None,
            timestamp,
            nonce_str: nonce_str.to_owned(),
            signature: signature(corp_ticket, nonce_str, timestamp, url),
        }
    }

    /// For `wx.agentConfig`: sign with the app ticket (`ticket/get?type=agent_config`).
    pub fn agent(
        corp_id: &str,
        agent_id: u32,
        app_ticket: &str,
        url: &str,
        timestamp: u64,
        nonce_str: &str,
    ) -> Self {
        Self {
            agent_id: Some(agent_id),
            ..Self::corp(corp_id, app_ticket, url, timestamp, nonce_str)
        }
    }

    /// The object literal the page hands to the SDK, without `jsApiList` (the page adds it):
    /// `{appId, timestamp, nonceStr, signature}` or `{corpid, agentid, timestamp, nonceStr, signature}`.
    pub fn to_js_object(&self) -> serde_json::Value {
        match self.agent_id {
            None => serde_json::json!({
                "appId": self.corp_id,
                "timestamp": self.timestamp,
                "nonceStr": self.nonce_str,
                "signature": self.signature,
            }),
            Some(agent_id) => serde_json::json!({
                "corpid": self.corp_id,
                "agentid": agent_id,
                "timestamp": self.timestamp,
                "nonceStr": self.nonce_str,
                "signature": self.signature,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §10 (doc 90506; wechatpy test_jsapi_get_jsapi_signature).
    const TICKET: &str =
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
    const NONCE: &str = "Wm3WZYTPz0wzccnW";
    const URL: &str = "http://mp.weixin.qq.com?params=value";
    const SIG: &str = "0f9de62fce790f9a083d5c99e95740ceb90c27ed";

    #[test]
    fn published_vector() {
        assert_eq!(signature(TICKET, NONCE, 1414587457, URL), SIG);
    }

    #[test]
    fn fragment_is_stripped() {
        assert_eq!(
            signature(TICKET, NONCE, 1414587457, &format!("{URL}#/a?b=c#d")),
            SIG
        );
        assert_eq!(
            signature(TICKET, NONCE, 1414587457, &format!("{URL}#")),
            SIG
        );
        assert_ne!(signature(TICKET, NONCE, 1414587458, URL), SIG);
    }

    #[test]
    fn configs() {
        let c = JsSdkConfig::corp("wwcorp", TICKET, URL, 1414587457, NONCE);
        assert_eq!(c.signature, SIG);
        assert_eq!(
            c.to_js_object(),
            serde_json::json!({"appId":"wwcorp","timestamp":1414587457u64,"nonceStr":NONCE,"signature":SIG})
        );
        let a = JsSdkConfig::agent("wwcorp", 1000002, TICKET, URL, 1414587457, NONCE);
        assert_eq!(a.signature, SIG);
        assert_eq!(a.agent_id, Some(1000002));
        assert_eq!(a.to_js_object()["agentid"], 1000002);
        assert_eq!(a.to_js_object()["corpid"], "wwcorp");
    }
}
