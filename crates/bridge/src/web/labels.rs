//! The words a person reads for the machine values the console shows: run statuses,
//! triggers and kinds, sync phases, user statuses, audit actions and their fixed details,
//! and who did something. Each table lives here once, in both languages; templates call
//! these functions instead of printing `as_str()`.
//!
//! Unknown values (a newer version's action, say) are shown as they are stored rather
//! than hidden, so nothing a person needs is lost.

use crate::domain::directory::{RunKind, RunStatus, Trigger};
use crate::domain::user::{DisabledReason, UserStatus};
use crate::web::i18n::Lang;
use std::collections::HashMap;

pub fn run_status(l: Lang, s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => l.t("进行中", "Running"),
        RunStatus::Succeeded => l.t("成功", "Succeeded"),
        RunStatus::Failed => l.t("失败", "Failed"),
        RunStatus::Blocked => l.t("待确认", "Waiting for confirmation"),
        RunStatus::Interrupted => l.t("已中断", "Interrupted"),
        RunStatus::Cancelled => l.t("已取消", "Cancelled"),
    }
}

pub fn trigger(l: Lang, t: Trigger) -> &'static str {
    match t {
        Trigger::Wizard => l.t("设置向导", "Set-up wizard"),
        Trigger::Console => l.t("管理后台", "Admin console"),
        Trigger::Schedule => l.t("定期核对", "Scheduled reconcile"),
        Trigger::Callback => l.t("企业微信通知", "WeCom notification"),
        Trigger::Cli => l.t("命令行", "Command line"),
        Trigger::Api => l.t("管理 API", "Admin API"),
    }
}

pub fn run_kind(l: Lang, k: RunKind) -> &'static str {
    match k {
        RunKind::Full => l.t("全量同步", "Full sync"),
        RunKind::DryRun => l.t("预览（未修改）", "Dry run (no changes)"),
        RunKind::Incremental => l.t("增量同步", "Incremental"),
    }
}

/// A sync phase as `SyncProgress::set_phase` names it.
pub fn phase(l: Lang, p: &str) -> String {
    let s = match p {
        "" => l.t("准备中", "Starting"),
        "scope" => l.t("读取可见范围", "Reading the visible scope"),
        "tags" => l.t("读取标签", "Reading tags"),
        "departments" => l.t("读取部门", "Reading departments"),
        "members" => l.t("读取部门成员", "Reading department members"),
        "loose_members" => l.t("读取单独授权的成员", "Reading members in scope by name"),
        "diff" => l.t("比对变更", "Comparing"),
        "relink" => l.t("重新关联账号", "Re-linking accounts"),
        "applying" => l.t("写入变更", "Applying changes"),
        other => return other.to_string(),
    };
    s.to_string()
}

pub fn user_status(l: Lang, s: UserStatus) -> &'static str {
    match s {
        UserStatus::Authorized => l.t("已授权", "Authorized"),
        UserStatus::Unauthorized => l.t("未授权", "Not authorized"),
        UserStatus::Disabled => l.t("已停用", "Disabled"),
    }
}

pub fn disabled_reason(l: Lang, r: DisabledReason) -> &'static str {
    match r {
        DisabledReason::LeftScope => l.t("离开可见范围", "left the visible scope"),
        DisabledReason::LeftWecom => l.t("已从企业微信删除", "deleted from WeCom"),
        DisabledReason::WecomDisabled => l.t("在企业微信中被禁用", "disabled in WeCom"),
        DisabledReason::Admin => l.t("管理员停用", "disabled by an admin"),
    }
}

/// The note of a sample in a sync report: a status (`unauthorized`), a disable reason
/// (`left_scope`), or `disabled (reason)`.
pub fn sample_note(l: Lang, note: &str) -> String {
    if let Ok(s) = note.parse::<UserStatus>() {
        return user_status(l, s).to_string();
    }
    if let Ok(r) = note.parse::<DisabledReason>() {
        return disabled_reason(l, r).to_string();
    }
    if let Some(r) = note
        .strip_prefix("disabled (")
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|r| r.parse::<DisabledReason>().ok())
    {
        return format!(
            "{}{}",
            user_status(l, UserStatus::Disabled),
            l.t(
                &format!("（{}）", disabled_reason(l, r)),
                &format!(" ({})", disabled_reason(l, r))
            )
        );
    }
    note.to_string()
}

/// A department's or tag's change in a sync report.
pub fn change(l: Lang, c: &str) -> String {
    match c {
        "added" => l.t("新增", "added"),
        "updated" => l.t("更新", "updated"),
        "removed" => l.t("移除", "removed"),
        other => other,
    }
    .to_string()
}

/// A field of a member or department whose change a sync report lists.
pub fn field(l: Lang, f: &str) -> String {
    match f {
        "name" => l.t("姓名", "name"),
        "department" | "departments" => l.t("部门", "departments"),
        "main_department" => l.t("主部门", "main department"),
        "position" => l.t("职务", "position"),
        "alias" => l.t("别名", "alias"),
        "status" => l.t("状态", "status"),
        "parent" | "parentid" => l.t("上级部门", "parent"),
        "order" => l.t("排序", "order"),
        "leader" | "is_leader_in_dept" => l.t("负责人", "leader"),
        "email" => l.t("邮箱", "email"),
        "mobile" => l.t("手机", "mobile"),
        other => other,
    }
    .to_string()
}

/// An audit action (`member.login_denied`), as a short phrase.
pub fn audit_action(l: Lang, action: &str) -> String {
    let s = match action {
        "admin.login" => l.t("管理员登录", "Admin signed in"),
        "admin.login_failed" => l.t("管理员登录失败", "Admin sign-in failed"),
        "admin.login_locked" => l.t("登录已锁定", "Sign-in locked"),
        "admin.logout" => l.t("管理员退出", "Admin signed out"),
        "admin.password_changed" => l.t("修改密码", "Password changed"),
        "api_key.created" => l.t("创建 API 密钥", "API key created"),
        "api_key.revoked" => l.t("吊销 API 密钥", "API key revoked"),
        "app.created" => l.t("添加应用", "App added"),
        "app.updated" => l.t("修改应用", "App changed"),
        "app.deleted" => l.t("删除应用", "App deleted"),
        "app.icon" | "app.icon_uploaded" => l.t("上传应用图标", "App icon uploaded"),
        "app.wecom.bound" => l.t("绑定应用的企业微信应用", "App bound to its WeCom app"),
        "app.wecom.unbound" => l.t("解绑应用的企业微信应用", "App unbound from its WeCom app"),
        "directory.policy.saved" => l.t("保存同步策略", "Sync policy saved"),
        "directory.sync" => l.t("通讯录同步", "Directory sync"),
        "domain.verify_file.added" => l.t("添加域名校验文件", "Domain verification file added"),
        "domain.verify_file.deleted" => l.t("删除域名校验文件", "Domain verification file deleted"),
        "login_config.changed" => l.t("修改登录配置", "Login configuration changed"),
        "login_config.session_timeout" => l.t("修改会话超时", "Session timeout changed"),
        "member.login" => l.t("成员登录", "Member signed in"),
        "member.login_denied" => l.t("成员登录被拒绝", "Member sign-in refused"),
        "login_config.consent_fields" => {
            l.t("修改成员授权补全信息", "Consent-filled fields changed")
        }
        "member.consent_fields" => l.t("成员授权补全信息", "Member shared private fields"),
        "member.consent_fields_failed" => {
            l.t("补全成员信息失败", "Filling consented fields failed")
        }
        "member.logout" => l.t("成员退出", "Member signed out"),
        "member.session_revoked" => l.t("结束成员会话", "Member session ended"),
        "oidc.client_deleted" => l.t("删除 OIDC 客户端", "OIDC client deleted"),
        "oidc.client_registered" => l.t("注册 OIDC 客户端", "OIDC client registered"),
        "oidc.client_secret_rotated" => l.t("更换 OIDC 客户端密钥", "OIDC client secret rotated"),
        "oidc.keys_rotated" => l.t("轮换签名密钥", "Signing keys rotated"),
        "user.authorized" => l.t("授权用户", "User authorized"),
        "user.unauthorized" => l.t("取消授权", "User unauthorized"),
        "user.disabled" => l.t("停用用户", "User disabled"),
        "tenant.time_zone_changed" => l.t("修改时区", "Time zone changed"),
        "wecom.callback.verified" => l.t("企业微信回调地址已验证", "WeCom callback URL verified"),
        "wecom.credentials.saved" => l.t("保存企业微信凭据", "WeCom credentials saved"),
        other => return other.to_string(),
    };
    s.to_string()
}

/// An audit entry's detail where it is a fixed phrase or a known pattern; other details
/// (names, ids, values) are shown as stored.
pub fn audit_detail(l: Lang, detail: &str) -> String {
    let fixed = match detail {
        "not authorized" => Some(l.t("未授权", "not authorized")),
        "not in the directory" => Some(l.t("不在通讯录中", "not in the directory")),
        "account disabled" => Some(l.t("账号已停用", "account disabled")),
        "wrong username or password" => Some(l.t("用户名或密码错误", "wrong username or password")),
        "signed in with password" => Some(l.t("使用密码登录", "signed in with a password")),
        "signed in via wecom_client" => {
            Some(l.t("通过企业微信客户端登录", "signed in in the WeCom client"))
        }
        "signed in via wecom_qr" => {
            Some(l.t("通过企业微信扫码登录", "signed in with a WeCom QR code"))
        }
        _ => None,
    };
    if let Some(s) = fixed {
        return s.to_string();
    }
    // "user 3 (李四): unauthorized → authorized"
    if let Some((head, change)) = detail.rsplit_once(": ") {
        if let Some((from, to)) = change.split_once(" → ") {
            if let (Ok(a), Ok(b)) = (from.parse::<UserStatus>(), to.parse::<UserStatus>()) {
                return format!("{head}: {} → {}", user_status(l, a), user_status(l, b));
            }
        }
    }
    // "workbench: wecom=off password=on → wecom=on password=on"
    if let Some(rest) = detail.strip_prefix("workbench: ") {
        if let Some((before, after)) = rest.split_once(" → ") {
            if let (Some(b), Some(a)) = (sources(l, before), sources(l, after)) {
                return format!("{}{b} → {a}", l.t("工作台：", "workbench: "));
            }
        }
    }
    // "run #12 succeeded: 14 added, 0 updated, 0 disabled, 0 moved"
    if let Some(rest) = detail.strip_prefix("run #") {
        if let Some((id_status, counts)) = rest.split_once(": ") {
            if let Some((id, status)) = id_status.split_once(' ') {
                let n: Vec<&str> = counts
                    .split(", ")
                    .filter_map(|p| p.split_once(' ').map(|(n, _)| n))
                    .collect();
                if let (Some(st), [a, u, d, m]) = (parse_status(status), n.as_slice()) {
                    return l
                        .t(
                            &format!(
                                "#{id} {}：新增 {a}，更新 {u}，停用 {d}，调动 {m}",
                                run_status(l, st)
                            ),
                            &format!(
                                "#{id} {}: {a} added, {u} updated, {d} disabled, {m} moved",
                                run_status(l, st)
                            ),
                        )
                        .to_string();
                }
            }
        }
    }
    detail.to_string()
}

/// `wecom=on password=off` (a login configuration) in words: the sources turned on.
fn sources(l: Lang, s: &str) -> Option<String> {
    use crate::domain::login::IdentitySource;
    let mut on = Vec::new();
    for item in s.split_whitespace() {
        let (src, state) = item.split_once('=')?;
        let src: IdentitySource = src.parse().ok()?;
        match state {
            "on" => on.push(match src {
                IdentitySource::Wecom => l.t("企业微信", "WeCom"),
                IdentitySource::Password => l.t("账号密码", "password"),
            }),
            "off" => {}
            _ => return None,
        }
    }
    Some(if on.is_empty() {
        l.t("无", "none").to_string()
    } else {
        on.join(l.t("、", ", "))
    })
}

fn parse_status(s: &str) -> Option<RunStatus> {
    [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Blocked,
        RunStatus::Interrupted,
        RunStatus::Cancelled,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
}

/// The people an audit page names: internal user id → name, WeCom userid → name.
#[derive(Default)]
pub struct People {
    pub by_id: HashMap<i64, String>,
    pub by_wecom: HashMap<String, String>,
}

/// The internal user ids and WeCom userids that `actors` name (`user:3`, `wecom:lisi`).
pub fn actor_refs<'a>(actors: impl Iterator<Item = &'a str>) -> (Vec<i64>, Vec<String>) {
    let (mut ids, mut userids) = (Vec::new(), Vec::new());
    for a in actors {
        if let Some(id) = a.strip_prefix("user:").and_then(|s| s.parse().ok()) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        } else if let Some(u) = a.strip_prefix("wecom:") {
            if u != "outsider" && !userids.iter().any(|x: &String| x == u) {
                userids.push(u.to_string());
            }
        }
    }
    (ids, userids)
}

/// Who did it, in words: a member by name (however the entry recorded them), an admin
/// by username, the system parts by what they are.
pub fn actor(l: Lang, a: &str, people: &People) -> String {
    let member = |name: &str| {
        l.t(&format!("成员 {name}"), &format!("member {name}"))
            .to_string()
    };
    if let Some(id) = a.strip_prefix("user:").and_then(|s| s.parse::<i64>().ok()) {
        return match people.by_id.get(&id) {
            Some(n) => member(n),
            None => l
                .t(&format!("成员 #{id}"), &format!("member #{id}"))
                .to_string(),
        };
    }
    if let Some(u) = a.strip_prefix("wecom:") {
        if u == "outsider" {
            return l.t("企业外部人员", "an outside contact").to_string();
        }
        return match people.by_wecom.get(&u.to_ascii_lowercase()) {
            Some(n) => member(n),
            None => member(u),
        };
    }
    if let Some(u) = a.strip_prefix("admin:") {
        return l
            .t(&format!("管理员 {u}"), &format!("admin {u}"))
            .to_string();
    }
    if let Some(u) = a.strip_prefix("anonymous:") {
        return l
            .t(
                &format!("未登录（用户名 {u}）"),
                &format!("not signed in (username {u})"),
            )
            .to_string();
    }
    if let Some(k) = a.strip_prefix("api-key:") {
        let name = k.split_once(':').map(|(_, n)| n).unwrap_or(k);
        return l
            .t(&format!("API 密钥 {name}"), &format!("API key {name}"))
            .to_string();
    }
    match a {
        "operator" => l
            .t("平台运营方（命令行）", "Platform operator (CLI)")
            .to_string(),
        "system" => l.t("系统", "System").to_string(),
        "wecom" => l.t("企业微信通知", "WeCom notification").to_string(),
        "demo" => l.t("演示", "Demo").to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_and_actors_read_as_words() {
        let zh = Lang::Zh;
        assert_eq!(
            audit_detail(zh, "signed in via wecom_qr"),
            "通过企业微信扫码登录"
        );
        assert_eq!(
            audit_detail(zh, "user 3 (李四): unauthorized → authorized"),
            "user 3 (李四): 未授权 → 已授权"
        );
        assert_eq!(
            audit_detail(
                zh,
                "run #2 succeeded: 14 added, 0 updated, 0 disabled, 0 moved"
            ),
            "#2 成功：新增 14，更新 0，停用 0，调动 0"
        );
        assert_eq!(
            audit_detail(zh, "CorpID ww1 AgentId 2"),
            "CorpID ww1 AgentId 2"
        );
        assert_eq!(
            audit_detail(
                zh,
                "workbench: wecom=off password=on → wecom=on password=on"
            ),
            "工作台：账号密码 → 企业微信、账号密码"
        );
        assert_eq!(
            audit_detail(
                Lang::En,
                "workbench: wecom=off password=off → wecom=on password=off"
            ),
            "workbench: none → WeCom"
        );
        let mut people = People::default();
        people.by_id.insert(3, "李四".into());
        people.by_wecom.insert("lisi".into(), "李四".into());
        assert_eq!(
            actor(zh, "user:3", &people),
            actor(zh, "wecom:lisi", &people)
        );
        assert_eq!(actor(Lang::En, "wecom:LiSi", &people), "member 李四");
        assert_eq!(
            sample_note(zh, "disabled (left_scope)"),
            "已停用（离开可见范围）"
        );
        assert_eq!(sample_note(Lang::En, "unauthorized"), "Not authorized");
        assert_eq!(
            actor_refs(["user:3", "wecom:lisi", "admin:a", "user:3"].into_iter()),
            (vec![3], vec!["lisi".to_string()])
        );
    }
}
