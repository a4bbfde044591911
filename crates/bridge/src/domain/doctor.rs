//! `doctor`: the checks an admin would otherwise do by hand in WeCom's console, turned
//! into pass/fail results with evidence and the fix in plain words.
//!
//! This module only judges observations; gathering them (gettoken, agent/get …) is the
//! caller's job, so the rules are testable without WeCom.

use crate::domain::consent::ConsentOutcome;
use crate::domain::nested_scope::Outsiders;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Could not be checked because an earlier check failed.
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub title_zh: &'static str,
    pub title_en: &'static str,
    pub status: Status,
    /// What was seen, in English (the CLI prints it) and in Chinese.
    pub evidence: String,
    pub evidence_zh: String,
    /// When the evidence is an instant (Unix ms), for the console to show in its zone.
    pub at: Option<i64>,
    pub fix_zh: String,
    pub fix_en: String,
}

/// A WeCom error as doctor needs it: the code and the explanation texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub errcode: Option<i64>,
    pub message: String,
    pub title_zh: String,
    pub title_en: String,
    pub fix_zh: String,
    pub fix_en: String,
    /// The caller IP WeCom reported (60020).
    pub from_ip: Option<String>,
}

/// What agent/get reported, reduced to what doctor judges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentFacts {
    pub name: String,
    pub closed: bool,
    pub redirect_domain: String,
    pub home_url: String,
    pub scope_users: usize,
    pub scope_departments: usize,
    pub scope_tags: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// None when the integration is not configured at all.
    pub configured: bool,
    pub token: Result<(), Failure>,
    /// agent/get: None if not attempted (token failed).
    pub agent: Option<Result<AgentFacts, Failure>>,
    /// The tenant's custom domain (`host[:port]`) the bridge builds redirect URIs from.
    pub expected_domain: Option<String>,
    pub expected_home_url: Option<String>,
    /// When WeCom last completed the callback URL handshake with us.
    pub callback_verified_at: Option<i64>,
    /// Each model app bound to its own WeCom app, its scope checked again against the
    /// main app's (drift: widened in WeCom since it was bound). Empty: none bound, or the
    /// main app could not be reached.
    pub app_scopes: Vec<BoundAppScope>,
    /// Fields filled with the member's consent (issue 20): the last outcomes, when the
    /// tenant has turned it on.
    pub consent: Option<ConsentOutcome>,
}

/// A bound model app's WeCom app and what lies outside the main scope now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundAppScope {
    pub agentid: i64,
    pub name: String,
    pub outsiders: Result<Outsiders, Failure>,
}

fn check(id: &'static str, zh: &'static str, en: &'static str) -> Check {
    Check {
        id,
        title_zh: zh,
        title_en: en,
        status: Status::Pass,
        evidence: String::new(),
        evidence_zh: String::new(),
        at: None,
        fix_zh: String::new(),
        fix_en: String::new(),
    }
}

impl Check {
    fn saw(&mut self, zh: impl Into<String>, en: impl Into<String>) {
        self.evidence_zh = zh.into();
        self.evidence = en.into();
    }
}

fn fail_with(mut c: Check, f: &Failure) -> Check {
    c.status = Status::Fail;
    // WeCom's own words, as it sent them.
    c.saw(f.message.clone(), f.message.clone());
    c.fix_zh = format!("{}：{}", f.title_zh, f.fix_zh);
    c.fix_en = format!("{}: {}", f.title_en, f.fix_en);
    c
}

fn skipped(mut c: Check, because: (&str, &str)) -> Check {
    c.status = Status::Skipped;
    c.saw(
        format!("未检查：{}", because.0),
        format!("not checked: {}", because.1),
    );
    c
}

/// The checks, in the order an admin would fix things.
pub fn evaluate(o: &Observations) -> Vec<Check> {
    let mut out = Vec::new();
    let mut secret = check(
        "secret",
        "Secret 正确（可获取 access_token）",
        "Secret is right (access token obtainable)",
    );
    if !o.configured {
        secret.status = Status::Fail;
        secret.saw(
            "尚未保存 CorpID / AgentId / Secret",
            "no CorpID / AgentId / Secret saved",
        );
        secret.fix_zh = "在设置向导第 2 步填写 CorpID、AgentId 和 Secret。".into();
        secret.fix_en =
            "Enter the CorpID, AgentId and Secret in step 2 of the set-up wizard.".into();
        out.push(secret);
        return out;
    }
    let token_ok = match &o.token {
        Ok(()) => {
            secret.saw("gettoken 成功", "gettoken succeeded");
            out.push(secret);
            true
        }
        Err(f) => {
            out.push(fail_with(secret, f));
            false
        }
    };

    let ip = check(
        "trusted_ip",
        "服务器 IP 在企业可信IP 中",
        "Server IP is a trusted IP",
    );
    let agent_c = check(
        "agent",
        "AgentId 正确且应用已启用",
        "AgentId is right and the app is enabled",
    );
    let scope_c = check(
        "scope",
        "应用可见范围不为空",
        "The app's visible scope is not empty",
    );
    let domain_c = check(
        "trusted_domain",
        "可信域名与本租户域名一致",
        "Trusted domain matches this tenant's domain",
    );
    let home_c = check(
        "home_url",
        "应用主页指向工作台",
        "App home page points at the workbench",
    );

    let agent = match (&o.agent, token_ok) {
        (_, false) | (None, _) => {
            for c in [ip, agent_c, scope_c, domain_c, home_c] {
                out.push(skipped(c, ("Secret 检查未通过", "the Secret check failed")));
            }
            None
        }
        (Some(Err(f)), true) if f.errcode == Some(60020) => {
            let mut c = fail_with(ip, f);
            if let Some(addr) = &f.from_ip {
                c.saw(
                    format!("企业微信拒绝了来自 {addr} 的调用（60020）"),
                    format!("WeCom refused calls from {addr} (60020)"),
                );
            }
            out.push(c);
            for c in [agent_c, scope_c, domain_c, home_c] {
                out.push(skipped(
                    c,
                    (
                        "企业微信拒绝来自本服务器 IP 的调用",
                        "WeCom refuses calls from this server's IP",
                    ),
                ));
            }
            None
        }
        (Some(Err(f)), true) => {
            let mut ok = ip;
            ok.saw(
                "企业微信接受来自本服务器的调用",
                "API calls are accepted from this server",
            );
            out.push(ok);
            out.push(fail_with(agent_c, f));
            for c in [scope_c, domain_c, home_c] {
                out.push(skipped(c, ("agent/get 调用失败", "agent/get failed")));
            }
            None
        }
        (Some(Ok(a)), true) => {
            let mut ok = ip;
            ok.saw(
                "企业微信接受来自本服务器的调用",
                "API calls are accepted from this server",
            );
            out.push(ok);
            Some((a, agent_c, scope_c, domain_c, home_c))
        }
    };

    if let Some((a, mut agent_c, mut scope_c, mut domain_c, mut home_c)) = agent {
        if a.closed {
            agent_c.status = Status::Fail;
            agent_c.saw(
                format!("应用“{}”在企业微信中已停用", a.name),
                format!("app {:?} is disabled in WeCom", a.name),
            );
            agent_c.fix_zh = "在 应用管理 中启用该应用。".into();
            agent_c.fix_en = "Enable the app in App Management (应用管理).".into();
        } else {
            agent_c.saw(
                format!("找到应用“{}”，已启用", a.name),
                format!("app {:?} found and enabled", a.name),
            );
        }
        out.push(agent_c);

        let total = a.scope_users + a.scope_departments + a.scope_tags;
        scope_c.saw(
            format!(
                "成员 {} 人，部门 {} 个，标签 {} 个",
                a.scope_users, a.scope_departments, a.scope_tags
            ),
            format!(
                "{} members, {} departments, {} tags",
                a.scope_users, a.scope_departments, a.scope_tags
            ),
        );
        if total == 0 {
            scope_c.status = Status::Fail;
            scope_c.fix_zh = "在 应用管理 → 该应用 → 可见范围 中添加需要使用的部门、成员或标签；否则无人能登录，也同步不到任何人。".into();
            scope_c.fix_en = "Add departments, members or tags to the app's visible scope (可见范围); until then nobody can sign in and sync finds nobody.".into();
        }
        out.push(scope_c);

        match &o.expected_domain {
            None => {
                domain_c.status = Status::Fail;
                domain_c.saw("本租户没有自定义域名", "this tenant has no custom domain");
                domain_c.fix_zh = "请先为租户设置自定义域名。".into();
                domain_c.fix_en = "Set the tenant's custom domain first.".into();
            }
            Some(d) if a.redirect_domain.trim().eq_ignore_ascii_case(d) => {
                domain_c.saw(
                    format!("企业微信的可信域名是 {d}"),
                    format!("WeCom trusted domain is {d}"),
                );
            }
            Some(d) => {
                domain_c.status = Status::Fail;
                if a.redirect_domain.is_empty() {
                    domain_c.saw(
                        format!("企业微信未设置可信域名；本服务在 {d} 上登录"),
                        format!("WeCom has no trusted domain; the bridge signs in on {d}"),
                    );
                } else {
                    domain_c.saw(
                        format!(
                            "企业微信的可信域名是 {}；本服务在 {d} 上登录",
                            a.redirect_domain
                        ),
                        format!(
                            "WeCom trusted domain is {:?}; the bridge signs in on {d}",
                            a.redirect_domain
                        ),
                    );
                }
                domain_c.fix_zh = format!("登录会报错“redirect uri需使用应用可信域名”。请在 应用管理 → 该应用 → 网页授权及JS-SDK 中把可信域名设为 {d}（完全一致，含端口）。");
                domain_c.fix_en = format!("Sign-in would fail with \"redirect uri需使用应用可信域名\". Set the trusted domain under App Management → the app → Web authorization and JS-SDK to exactly {d} (port included).");
            }
        }
        out.push(domain_c);

        match &o.expected_home_url {
            Some(h) if a.home_url.trim() == h => {
                home_c.saw(format!("应用主页是 {h}"), format!("home page is {h}"))
            }
            Some(h) => {
                home_c.status = Status::Warn;
                if a.home_url.is_empty() {
                    home_c.saw("未设置应用主页", "no home page set");
                } else {
                    home_c.saw(
                        format!("应用主页是 {}", a.home_url),
                        format!("home page is {:?}", a.home_url),
                    );
                }
                home_c.fix_zh =
                    format!("把应用主页设为 {h}，成员从工作台打开应用时即可免登录进入。");
                home_c.fix_en = format!("Set the app home page to {h} so members opening the app from the WeCom workbench are signed in silently.");
            }
            None => {
                home_c.status = Status::Skipped;
                home_c.saw("没有自定义域名", "no custom domain");
            }
        }
        out.push(home_c);
    }

    let mut cb = check(
        "callback",
        "回调 URL 已通过企业微信验证",
        "Callback URL verified by WeCom",
    );
    match o.callback_verified_at {
        Some(at) => {
            cb.saw("最近一次验证于", format!("last verified at {at} (Unix ms)"));
            cb.at = Some(at);
        }
        None => {
            cb.status = Status::Warn;
            cb.saw(
                "企业微信尚未验证回调 URL",
                "WeCom has not verified the callback URL yet",
            );
            cb.fix_zh = "在 应用管理 → 该应用 → 接收消息 → 设置API接收 中填写向导显示的 URL、Token、EncodingAESKey 并保存；通讯录变更才能实时同步。".into();
            cb.fix_en = "Enter the URL, Token and EncodingAESKey the wizard shows under App Management → the app → Receive messages → Set API receiving, and save; then directory changes sync in real time.".into();
        }
    }
    out.push(cb);
    if !o.app_scopes.is_empty() {
        out.push(app_scopes_check(&o.app_scopes));
    }
    if let Some(c) = &o.consent {
        out.push(consent_check(c));
    }
    out
}

/// The consented fields' last outcome: a warning while the last exchange failed (the
/// sign-ins themselves went on).
fn consent_check(o: &ConsentOutcome) -> Check {
    let mut c = check(
        "consent_fields",
        "成员授权补全信息可用（auth/getuserdetail）",
        "Fields filled with the member's consent work (auth/getuserdetail)",
    );
    let failing = match (o.last_failed_at, o.last_filled_at) {
        (Some(f), Some(ok)) => f > ok,
        (Some(_), None) => true,
        _ => false,
    };
    if failing {
        c.status = Status::Warn;
        let why = o.last_failure.clone().unwrap_or_default();
        c.saw(
            format!("最近一次补全失败：{why}"),
            format!("the last fill failed: {why}"),
        );
        c.at = o.last_failed_at;
        c.fix_zh = "成员照常登录，但没有补全信息。在企业微信管理后台 → 应用管理 → 该应用，确认已开启成员敏感信息（隐私信息）权限并勾选了手机、邮箱等字段，且成员在应用可见范围内；40029 表示 user_ticket 无效或已过期（30 分钟），让成员重新登录即可。".into();
        c.fix_en = "Members still sign in, without the fields. In the WeCom admin console → App Management → the app, make sure it may read members' private information with mobile, email and the other fields ticked, and that the member is in its visible scope; 40029 means the user_ticket was bad or expired (it lives 30 minutes): the member signs in again.".into();
    } else if let Some(at) = o.last_filled_at {
        c.saw("最近一次补全于", format!("last filled at {at} (Unix ms)"));
        c.at = Some(at);
    } else {
        c.saw(
            "已开启，还没有成员授权登录",
            "turned on; no member has consented at sign-in yet",
        );
    }
    c
}

/// One check over every bound model app: failed when any reaches outside the main scope
/// (each outsider named), a warning when one could not be read.
fn app_scopes_check(apps: &[BoundAppScope]) -> Check {
    let mut c = check(
        "app_scopes",
        "模型应用的可见范围在主应用范围内",
        "Model apps' visible scopes lie inside the main app's",
    );
    let (mut wide, mut unread, mut ok) = (Vec::new(), Vec::new(), 0);
    for a in apps {
        match &a.outsiders {
            Ok(o) if o.is_empty() => ok += 1,
            Ok(o) => wide.push((a, o)),
            Err(f) => unread.push((a, f)),
        }
    }
    let mut evidence = vec![format!("{ok} of {} nested", apps.len())];
    let mut evidence_zh = vec![format!("{} 个中 {ok} 个在范围内", apps.len())];
    if !wide.is_empty() {
        c.status = Status::Fail;
        let mut zh = Vec::new();
        let mut en = Vec::new();
        for (a, o) in &wide {
            evidence.push(format!(
                "AgentId {} ({}): {}",
                a.agentid,
                a.name,
                o.message_en()
            ));
            evidence_zh.push(format!(
                "AgentId {}（{}）：{}",
                a.agentid,
                a.name,
                o.message_zh()
            ));
            zh.push(format!(
                "{}（AgentId {}）：{}",
                a.name,
                a.agentid,
                o.message_zh()
            ));
            en.push(format!(
                "{} (AgentId {}): {}",
                a.name,
                a.agentid,
                o.message_en()
            ));
        }
        c.fix_zh = format!("这些成员登录该应用会被拒绝。{}", zh.join(" "));
        c.fix_en = format!(
            "These members are refused at the app's door. {}",
            en.join(" ")
        );
    } else if !unread.is_empty() {
        c.status = Status::Warn;
        let (a, f) = unread[0];
        c.fix_zh = format!(
            "{}（AgentId {}）：{}：{}",
            a.name, a.agentid, f.title_zh, f.fix_zh
        );
        c.fix_en = format!(
            "{} (AgentId {}): {}: {}",
            a.name, a.agentid, f.title_en, f.fix_en
        );
    }
    for (a, f) in &unread {
        evidence.push(format!(
            "AgentId {} ({}) not checked: {}",
            a.agentid, a.name, f.message
        ));
        evidence_zh.push(format!(
            "AgentId {}（{}）未检查：{}",
            a.agentid, a.name, f.message
        ));
    }
    c.saw(evidence_zh.join("；"), evidence.join("; "));
    c
}

/// True when no check failed (warnings allowed).
pub fn all_passed(checks: &[Check]) -> bool {
    !checks
        .iter()
        .any(|c| matches!(c.status, Status::Fail | Status::Skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i64, ip: Option<&str>) -> Failure {
        Failure {
            errcode: Some(code),
            message: format!("errcode {code}"),
            title_zh: "t".into(),
            title_en: "t".into(),
            fix_zh: "f".into(),
            fix_en: "fix".into(),
            from_ip: ip.map(String::from),
        }
    }

    fn facts() -> AgentFacts {
        AgentFacts {
            name: "工作台".into(),
            closed: false,
            redirect_domain: "oa.example.com".into(),
            home_url: "https://oa.example.com/wecom/home".into(),
            scope_users: 1,
            scope_departments: 2,
            scope_tags: 0,
        }
    }

    fn obs() -> Observations {
        Observations {
            configured: true,
            token: Ok(()),
            agent: Some(Ok(facts())),
            expected_domain: Some("oa.example.com".into()),
            expected_home_url: Some("https://oa.example.com/wecom/home".into()),
            callback_verified_at: Some(1),
            app_scopes: vec![],
            consent: None,
        }
    }

    #[test]
    fn consent_fields_warn_while_the_last_fill_failed() {
        let mut o = obs();
        o.consent = Some(ConsentOutcome::default());
        let c = evaluate(&o);
        assert_eq!(c.len(), 8);
        assert_eq!(status(&c, "consent_fields"), Status::Pass);
        o.consent = Some(ConsentOutcome {
            last_filled_at: Some(10),
            last_failed_at: Some(20),
            last_failure: Some("the user_ticket was refused [errcode 40029]".into()),
        });
        let c = evaluate(&o);
        let k = c.iter().find(|c| c.id == "consent_fields").unwrap();
        assert_eq!(k.status, Status::Warn);
        assert!(k.evidence.contains("40029") && k.at == Some(20), "{k:?}");
        assert!(all_passed(&c), "a warning: sign-ins go on");
        o.consent.as_mut().unwrap().last_filled_at = Some(30);
        assert_eq!(status(&evaluate(&o), "consent_fields"), Status::Pass);
    }

    #[test]
    fn a_bound_app_reaching_outside_fails_naming_its_outsiders() {
        use crate::domain::nested_scope::{Named, Outsiders};
        let mut o = obs();
        o.app_scopes = vec![BoundAppScope {
            agentid: 1000003,
            name: "数据看板".into(),
            outsiders: Ok(Outsiders::default()),
        }];
        let c = evaluate(&o);
        assert_eq!(c.len(), 8);
        assert_eq!(status(&c, "app_scopes"), Status::Pass);
        o.app_scopes.push(BoundAppScope {
            agentid: 1000010,
            name: "太宽".into(),
            outsiders: Ok(Outsiders {
                departments: vec![Named {
                    id: 6,
                    name: "财务部".into(),
                }],
                ..Outsiders::default()
            }),
        });
        o.app_scopes.push(BoundAppScope {
            agentid: 1000011,
            name: "停用".into(),
            outsiders: Err(failure(40001, None)),
        });
        let c = evaluate(&o);
        let a = c.iter().find(|c| c.id == "app_scopes").unwrap();
        assert_eq!(a.status, Status::Fail);
        assert!(
            a.evidence.contains("财务部 (6)") && a.evidence.contains("1 of 3"),
            "{a:?}"
        );
        assert!(a.fix_zh.contains("太宽") && a.fix_zh.contains("财务部"));
        assert!(!all_passed(&c));
        o.app_scopes.remove(1);
        assert_eq!(status(&evaluate(&o), "app_scopes"), Status::Warn);
    }

    fn status(c: &[Check], id: &str) -> Status {
        c.iter().find(|c| c.id == id).unwrap().status
    }

    #[test]
    fn healthy() {
        let c = evaluate(&obs());
        assert!(all_passed(&c), "{c:?}");
        assert_eq!(c.len(), 7);
    }

    #[test]
    fn wrong_secret_skips_the_rest() {
        let mut o = obs();
        o.token = Err(failure(40001, None));
        o.agent = None;
        let c = evaluate(&o);
        assert_eq!(status(&c, "secret"), Status::Fail);
        assert_eq!(status(&c, "trusted_domain"), Status::Skipped);
        assert!(!all_passed(&c));
    }

    #[test]
    fn untrusted_ip_names_the_ip() {
        let mut o = obs();
        o.agent = Some(Err(failure(60020, Some("203.0.113.25"))));
        let c = evaluate(&o);
        let ip = c.iter().find(|c| c.id == "trusted_ip").unwrap();
        assert_eq!(ip.status, Status::Fail);
        assert!(ip.evidence.contains("203.0.113.25"));
    }

    #[test]
    fn domain_mismatch_and_empty_scope() {
        let mut o = obs();
        let mut f = facts();
        f.redirect_domain = "other.example.com".into();
        f.scope_users = 0;
        f.scope_departments = 0;
        o.agent = Some(Ok(f));
        let c = evaluate(&o);
        let d = c.iter().find(|c| c.id == "trusted_domain").unwrap();
        assert_eq!(d.status, Status::Fail);
        assert!(d.fix_zh.contains("redirect uri需使用应用可信域名"));
        assert_eq!(status(&c, "scope"), Status::Fail);
    }

    #[test]
    fn wrong_agent() {
        let mut o = obs();
        o.agent = Some(Err(failure(301002, None)));
        let c = evaluate(&o);
        assert_eq!(status(&c, "trusted_ip"), Status::Pass);
        assert_eq!(status(&c, "agent"), Status::Fail);
    }
}
