//! One error type for every WeCom call, and plain-words explanations (中文 and English)
//! of the errcodes an IT admin meets, with the fix (wecom-api.md §15).

use std::fmt;

/// What went wrong talking to WeCom.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// WeCom answered with a non-zero errcode.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// The request never got a WeCom answer (connection refused, timeout, TLS …).
    #[error("cannot reach WeCom at {url}: {detail}")]
    Transport { url: String, detail: String },
    /// WeCom answered something that is not the documented JSON.
    #[error("unexpected answer from WeCom {endpoint}: {detail}")]
    Decode {
        endpoint: &'static str,
        detail: String,
    },
    /// The client was configured with something unusable (e.g. a malformed base URL).
    #[error("invalid WeCom client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The errcode if WeCom answered with one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Error::Api(e) => Some(e.errcode),
            _ => None,
        }
    }

    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// A plain-words explanation for an admin, whatever the failure.
    pub fn explain(&self) -> Explanation {
        match self {
            Error::Api(e) => e.explain(),
            Error::Transport { url, detail } => Explanation {
                code: None,
                title_zh: "无法连接企业微信服务器".into(),
                title_en: "WeCom could not be reached".into(),
                fix_zh: format!("检查本服务器能否访问 {url}（防火墙、代理、DNS）。详情：{detail}"),
                fix_en: format!(
                    "Check that this server can reach {url} (firewall, proxy, DNS). Detail: {detail}"
                ),
            },
            Error::Decode { endpoint, detail } => Explanation {
                code: None,
                title_zh: "企业微信返回了无法识别的内容".into(),
                title_en: "WeCom sent an answer the bridge does not understand".into(),
                fix_zh: format!("请检查 API 地址配置是否指向企业微信（{endpoint}：{detail}）。"),
                fix_en: format!(
                    "Check that the API base URL points at WeCom ({endpoint}: {detail})."
                ),
            },
            Error::Config(d) => Explanation {
                code: None,
                title_zh: "企业微信客户端配置错误".into(),
                title_en: "The WeCom client is misconfigured".into(),
                fix_zh: d.clone(),
                fix_en: d.clone(),
            },
        }
    }

    /// Whether retrying the same call later could succeed without a configuration change.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api(e) => matches!(e.errcode, -1 | 45009 | 45033),
            Error::Transport { .. } => true,
            _ => false,
        }
    }
}

/// A non-zero errcode answer.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiError {
    pub errcode: i64,
    /// WeCom's errmsg, suffix included (it may change: never branch on it).
    pub errmsg: String,
    /// The API path that answered, e.g. `user/get`.
    pub endpoint: &'static str,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ApiError({} {}: {})",
            self.endpoint, self.errcode, self.errmsg
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WeCom {} answered errcode {}: {}",
            self.endpoint, self.errcode, self.errmsg
        )
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// The caller IP WeCom saw, from the errmsg suffix (`from ip: …`), if present.
    pub fn from_ip(&self) -> Option<&str> {
        let rest = &self.errmsg[self.errmsg.find("from ip: ")? + "from ip: ".len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
            .unwrap_or(rest.len());
        let ip = rest[..end].trim_end_matches(':');
        (!ip.is_empty()).then_some(ip)
    }

    /// The hint id (`hint: [...]`) WeCom's error-query tool takes, if present.
    pub fn hint(&self) -> Option<&str> {
        let rest = &self.errmsg[self.errmsg.find("hint: [")? + "hint: [".len()..];
        rest.find(']').map(|end| &rest[..end])
    }

    pub fn explain(&self) -> Explanation {
        explain(self.errcode, self.from_ip())
    }
}

/// What an admin reads: what happened and what to do, in Chinese and English.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    pub code: Option<i64>,
    pub title_zh: String,
    pub title_en: String,
    pub fix_zh: String,
    pub fix_en: String,
}

/// The explanation of an errcode; `from_ip` fills in the IP to trust for 60020.
pub fn explain(errcode: i64, from_ip: Option<&str>) -> Explanation {
    let (title_zh, title_en, fix_zh, fix_en): (&str, &str, String, String) = match errcode {
        -1 => (
            "企业微信系统繁忙",
            "WeCom is busy",
            "无需修改配置；桥接服务会自动重试（最多 3 次），请稍后再试。".into(),
            "Nothing to change; the bridge retries (at most 3 times). Try again later.".into(),
        ),
        40001 => (
            "Secret 不正确",
            "The Secret is wrong",
            "请在企业微信管理后台 应用管理 → 该应用 → Secret 重新复制 Secret；确认应用已启用，且与 CorpID 属于同一企业。".into(),
            "Copy the Secret again from 应用管理 (App Management) → the app → Secret. Make sure the app is enabled and belongs to the same company as the CorpID.".into(),
        ),
        40003 => (
            "成员 UserID 无效",
            "Invalid member UserID",
            "请重新同步通讯录，并确认该成员仍在企业微信中。".into(),
            "Run a directory sync and check the member still exists in WeCom.".into(),
        ),
        40013 => (
            "CorpID 不正确",
            "The CorpID is wrong",
            "请在 我的企业 → 企业信息 页面底部复制企业ID（以 ww 开头）。".into(),
            "Copy the CorpID from 我的企业 (My Company) → 企业信息 (Company Info); it starts with \"ww\".".into(),
        ),
        40014 | 42001 => (
            if errcode == 40014 { "access_token 无效" } else { "access_token 已过期" },
            if errcode == 40014 { "The access token is invalid" } else { "The access token expired" },
            "无需处理，桥接服务会自动刷新。若持续出现，请检查是否有代理改写了请求 URL。".into(),
            "Nothing to do; the bridge refreshes it. If it persists, check that no proxy rewrites URLs.".into(),
        ),
        40029 => (
            "登录 code 无效",
            "The sign-in code is invalid",
            "请重新登录。若反复出现，请确认每个回调请求只被处理一次（多台服务器或浏览器刷新会重复使用 code）。".into(),
            "Sign in again. If it repeats, make sure one request handles each callback (two servers or a browser refresh redeem a code twice).".into(),
        ),
        40056 => (
            "AgentId 不正确",
            "The AgentId is wrong",
            "请在 应用管理 → 该应用 页面复制 AgentId（纯数字）。".into(),
            "Copy the AgentId (a number) from the app's page in 应用管理 (App Management).".into(),
        ),
        40058 | 40063 => (
            "请求参数错误",
            "Invalid request parameters",
            "这是桥接服务的问题，请带上 hint 编号反馈。".into(),
            "This is a bridge bug: report it with the hint id.".into(),
        ),
        40068 => (
            "标签不存在",
            "The tag does not exist",
            "该标签已被删除，请重新同步通讯录。".into(),
            "The tag was deleted; run a directory sync.".into(),
        ),
        40091 => (
            "Secret 属于其他企业",
            "The Secret belongs to another company",
            "请使用与 CorpID 同一企业的应用 Secret。".into(),
            "Use the Secret of an app of the same company as the CorpID.".into(),
        ),
        41001 | 41009 => (
            "请求缺少必要参数",
            "A required parameter is missing",
            "这是桥接服务的问题，请反馈。".into(),
            "This is a bridge bug: please report it.".into(),
        ),
        41002 => (
            "缺少 CorpID",
            "The CorpID is missing",
            "请填写企业ID（CorpID）。".into(),
            "Enter the CorpID.".into(),
        ),
        41004 => (
            "缺少 Secret",
            "The Secret is missing",
            "请填写应用的 Secret。".into(),
            "Enter the app's Secret.".into(),
        ),
        45009 => (
            "接口调用超过频率限制",
            "WeCom's call limit was exceeded",
            "请稍候（1 分钟；若因多次 Secret 错误被封禁则为 1 小时）。请先改正 Secret，并避免同时运行多个同步。可在 open.work.weixin.qq.com/wwopen/devtool/checkCorpSpamBlock 自助解封。".into(),
            "Wait (1 minute, or 1 hour for a ban after many wrong Secrets). Fix the Secret first and avoid overlapping syncs. Self-service unblock: open.work.weixin.qq.com/wwopen/devtool/checkCorpSpamBlock.".into(),
        ),
        45029 => (
            "返回数据过大",
            "WeCom's answer is too large",
            "该部门成员过多，请在企业微信中拆分为更小的部门。".into(),
            "The department is too large; split it into smaller departments in WeCom.".into(),
        ),
        45033 => (
            "接口并发调用超过限制",
            "Too many concurrent calls",
            "请调低同步并发设置。".into(),
            "Lower the sync concurrency setting.".into(),
        ),
        48002 => (
            "该 Secret 无权调用此接口",
            "This Secret may not call this API",
            "请填写自建应用的 Secret，而不是通讯录同步的 Secret。".into(),
            "Enter the self-built app's Secret, not the contact-sync Secret.".into(),
        ),
        48009 => (
            "通讯录同步助手从新 IP 读取详情被拒绝",
            "The contact-sync Secret is blocked from this new IP",
            "请使用自建应用的 Secret；桥接服务不需要通讯录同步 Secret。".into(),
            "Use the self-built app's Secret; the bridge does not need the contact-sync Secret.".into(),
        ),
        50001 => (
            "redirect_uri 不在应用的可信域名内",
            "The redirect URL is not on the app's trusted domain",
            "请把应用的「可信域名」设置为桥接服务显示的域名（不带协议，仅在使用非默认端口时带端口）。".into(),
            "Set the app's trusted domain (可信域名) to exactly the host the bridge shows (no scheme; a port only if one is used).".into(),
        ),
        50002 => (
            "成员不在应用的可见范围内",
            "The member is outside the app's visible scope",
            "请在应用的「可见范围」中加入该成员、其部门或标签。".into(),
            "Add the member, their department or a tag to the app's visible scope (可见范围).".into(),
        ),
        50003 => (
            "应用已被停用",
            "The app is disabled",
            "请在 应用管理 中启用该应用。".into(),
            "Enable the app in 应用管理 (App Management).".into(),
        ),
        50100 => (
            "分页游标无效",
            "Invalid paging cursor",
            "无需处理，桥接服务会重新分页。".into(),
            "Nothing to do; the bridge restarts paging.".into(),
        ),
        60003 => (
            "部门不存在",
            "The department does not exist",
            "该部门已被删除，请重新同步通讯录。".into(),
            "It was deleted; run a directory sync.".into(),
        ),
        60011 | 60021 => (
            "不在应用的可见范围内",
            "Outside the app's visible scope",
            "请在企业微信管理后台把该部门、成员或标签加入应用的「可见范围」，然后重新同步。".into(),
            "Add the department, member or tag to the app's visible scope (可见范围) in the WeCom admin console, then sync again.".into(),
        ),
        60020 => {
            let ip = from_ip.unwrap_or("（本服务器的出口 IP）");
            let ip_en = from_ip.unwrap_or("(this server's egress IP)");
            (
                "访问 IP 不在企业可信 IP 列表中",
                "This server's IP is not a trusted IP",
                format!("请在 应用管理 → 该应用 → 企业可信IP 中添加 {ip}，约 1 分钟后生效。"),
                format!("Add {ip_en} to 应用管理 (App Management) → the app → 企业可信IP (trusted IPs); it takes effect in about 1 minute."),
            )
        }
        60111 => (
            "成员不存在",
            "The member does not exist",
            "该成员已离职、被删除或不在可见范围内；重新同步后该账号会被停用。".into(),
            "The member left, was deleted or is out of scope; after a sync the account is disabled locally.".into(),
        ),
        301002 => (
            "AgentId 与 Secret 不属于同一个应用",
            "The AgentId and the Secret belong to different apps",
            "请从同一个应用页面复制 AgentId 和 Secret。".into(),
            "Take the AgentId and the Secret from the same app's page.".into(),
        ),
        _ => (
            "企业微信返回错误",
            "WeCom returned an error",
            format!("错误码 {errcode}，可在 https://open.work.weixin.qq.com/devtool/query?e={errcode} 查询。"),
            format!("Error code {errcode}; look it up at https://open.work.weixin.qq.com/devtool/query?e={errcode}."),
        ),
    };
    Explanation {
        code: Some(errcode),
        title_zh: title_zh.into(),
        title_en: title_en.into(),
        fix_zh,
        fix_en,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i64, msg: &str) -> ApiError {
        ApiError {
            errcode: code,
            errmsg: msg.into(),
            endpoint: "user/get",
        }
    }

    #[test]
    fn parses_suffix() {
        let e = err(60020, "not allow to access from your ip, hint: [1659866548640290968093754], from ip: 120.235.19.66, more info at https://open.work.weixin.qq.com/devtool/query?e=60020");
        assert_eq!(e.from_ip(), Some("120.235.19.66"));
        assert_eq!(e.hint(), Some("1659866548640290968093754"));
        let x = e.explain();
        assert!(x.fix_en.contains("120.235.19.66") && x.fix_zh.contains("120.235.19.66"));
    }

    #[test]
    fn ipv6_and_missing_suffix() {
        let e = err(
            60020,
            "not allow to access from your ip, hint: [1], from ip: 2001:db8::1, more info at x",
        );
        assert_eq!(e.from_ip(), Some("2001:db8::1"));
        let bare = err(40014, "invalid access_token");
        assert_eq!(bare.from_ip(), None);
        assert_eq!(bare.hint(), None);
        assert!(err(60020, "not allow")
            .explain()
            .fix_en
            .contains("egress IP"));
    }

    #[test]
    fn every_admin_code_has_its_own_text() {
        for code in [
            -1, 40001, 40013, 40014, 42001, 45009, 48002, 60011, 60020, 50001, 301002, 40056,
        ] {
            let x = explain(code, None);
            assert_ne!(x.title_en, "WeCom returned an error", "{code}");
            assert!(!x.fix_zh.is_empty() && !x.fix_en.is_empty());
        }
        assert!(explain(12345, None).fix_en.contains("12345"));
    }
}
