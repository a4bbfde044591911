//! When the directory already holds people who are not linked to a WeCom userid (an
//! import, people made by hand, or a third-party directory the switch could not
//! re-link), a full sync finds them among WeCom's members by the tenant's match rule
//! (issue 20): the WeCom userid, the email, the mobile, or an extattr field (e.g. 工号)
//! against the import's `external_key`.
//!
//! A match is made only when exactly one stored person and exactly one member share a
//! value. Anything else is ambiguous and refused: reported with what to do, the stored
//! people left as they are (not disabled) and the members not created (no duplicate)
//! while the ambiguity stands.

use super::import::normalize_mobile;
use super::*;
use std::collections::{HashMap, HashSet};

/// How stored people are found among WeCom's members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchRule {
    /// The WeCom userid the import gave (case-insensitive).
    #[default]
    Userid,
    Email,
    Mobile,
    /// The WeCom extattr field of this name against the import's `external_key`.
    Extattr(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatchRuleError {
    #[error("the match rule is userid, email, mobile or extattr:<field name>")]
    Unknown,
    #[error("name the extattr field to match on, e.g. extattr:工号")]
    NoField,
}

impl MatchRule {
    pub fn parse(s: &str) -> Result<Self, MatchRuleError> {
        let s = s.trim();
        match s {
            "userid" => Ok(MatchRule::Userid),
            "email" => Ok(MatchRule::Email),
            "mobile" => Ok(MatchRule::Mobile),
            _ => match s.strip_prefix("extattr:") {
                Some(f) if !f.trim().is_empty() && f.trim().chars().count() <= 64 => {
                    Ok(MatchRule::Extattr(f.trim().to_string()))
                }
                Some(_) => Err(MatchRuleError::NoField),
                None => Err(MatchRuleError::Unknown),
            },
        }
    }

    /// As stored and as [`MatchRule::parse`] reads it.
    pub fn as_string(&self) -> String {
        match self {
            MatchRule::Userid => "userid".into(),
            MatchRule::Email => "email".into(),
            MatchRule::Mobile => "mobile".into(),
            MatchRule::Extattr(f) => format!("extattr:{f}"),
        }
    }

    /// The field's name in a report or on a page.
    pub fn label_en(&self) -> String {
        match self {
            MatchRule::Userid => "WeCom userid".into(),
            MatchRule::Email => "email".into(),
            MatchRule::Mobile => "mobile".into(),
            MatchRule::Extattr(f) => format!("extattr “{f}”"),
        }
    }

    pub fn label_zh(&self) -> String {
        match self {
            MatchRule::Userid => "企业微信 UserID".into(),
            MatchRule::Email => "邮箱".into(),
            MatchRule::Mobile => "手机号".into(),
            MatchRule::Extattr(f) => format!("扩展属性“{f}”"),
        }
    }
}

/// The keys an import stored for a person (besides the email and the mobile).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredKeys {
    pub userid: Option<String>,
    pub external_key: Option<String>,
}

/// A value that more than one stored person or member share, refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmbiguousMatch {
    pub value: String,
    /// Stored people not linked yet: (user id, name).
    pub users: Vec<(i64, String)>,
    /// WeCom members not linked yet: (userid, name).
    pub members: Vec<(String, String)>,
    /// A member with this value that is already another user: (userid, user id).
    pub linked: Option<(String, i64)>,
    pub fix_en: String,
    pub fix_zh: String,
}

/// What the matching did, in the run's report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchReport {
    /// The rule, as stored (`email`, `extattr:工号`).
    pub rule: String,
    /// Stored people not linked to WeCom before the matching.
    pub candidates: usize,
    /// Linked by the rule in this run.
    pub matched: usize,
    pub ambiguous: Vec<AmbiguousMatch>,
    /// Candidates with no member of the same value (or no value).
    pub unmatched: usize,
}

/// The matching's result: the report, and what the diff must leave alone while the
/// ambiguities stand.
#[derive(Clone, Debug, Default)]
pub struct MatchOutcome {
    pub report: MatchReport,
    /// Members not to be created.
    pub held_members: HashSet<UserKey>,
    /// Stored people not to be disabled for being out of the directory.
    pub held_users: HashSet<i64>,
}

/// The value of an extattr field in WeCom's `extattr.attrs` JSON: a text attribute's
/// `text.value` (or the older flat `value`), a web attribute's `web.url`.
pub fn extattr_value(extattr: &str, field: &str) -> Option<String> {
    if extattr.is_empty() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(extattr).ok()?;
    let attrs = match &v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => o.get("attrs")?.as_array()?,
        _ => return None,
    };
    let a = attrs
        .iter()
        .find(|a| a.get("name").and_then(|n| n.as_str()) == Some(field))?;
    let s = a
        .pointer("/text/value")
        .or_else(|| a.get("value"))
        .or_else(|| a.pointer("/web/url"))
        .and_then(|v| v.as_str())?
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

fn clean(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl MatchRule {
    fn stored_value(&self, u: &CurrentUser, keys: Option<&StoredKeys>) -> Option<String> {
        match self {
            MatchRule::Userid => clean(keys?.userid.as_deref()).map(|s| user_key(&s)),
            MatchRule::Email => clean(u.record.email.as_deref()).map(|s| s.to_lowercase()),
            MatchRule::Mobile => clean(u.record.mobile.as_deref()).map(|s| normalize_mobile(&s)),
            MatchRule::Extattr(_) => clean(keys?.external_key.as_deref()),
        }
        .filter(|s| !s.is_empty())
    }

    fn member_value(&self, key: &str, r: &UserRecord) -> Option<String> {
        match self {
            MatchRule::Userid => Some(key.to_string()),
            MatchRule::Email => clean(r.email.as_deref()).map(|s| s.to_lowercase()),
            MatchRule::Mobile => clean(r.mobile.as_deref()).map(|s| normalize_mobile(&s)),
            MatchRule::Extattr(f) => extattr_value(&r.extattr, f),
        }
        .filter(|s| !s.is_empty())
    }
}

/// Links each stored person without a WeCom identity to the one member with the same
/// value under `rule`, as the switch does (the diff then updates them and creates their
/// identity). Ambiguous values link nobody and are reported.
pub fn match_existing(
    desired: &DesiredDirectory,
    current: &mut CurrentDirectory,
    keys: &HashMap<i64, StoredKeys>,
    rule: &MatchRule,
) -> MatchOutcome {
    let mut out = MatchOutcome::default();
    out.report.rule = rule.as_string();
    // Stored people without a WeCom identity, by value.
    let mut stored: HashMap<String, Vec<usize>> = HashMap::new();
    let mut candidates = 0;
    for (i, u) in current.users.iter().enumerate() {
        if u.key.is_some() {
            continue;
        }
        candidates += 1;
        if let Some(v) = rule.stored_value(u, keys.get(&u.id)) {
            stored.entry(v).or_default().push(i);
        }
    }
    out.report.candidates = candidates;
    if stored.is_empty() {
        out.report.unmatched = candidates;
        return out;
    }
    let linked: HashMap<&str, i64> = current
        .users
        .iter()
        .filter_map(|u| u.key.as_deref().map(|k| (k, u.id)))
        .collect();
    // Members with a value some stored person has: free ones, and one already linked.
    let mut free: HashMap<&str, Vec<&UserKey>> = HashMap::new();
    let mut taken: HashMap<&str, (&UserKey, i64)> = HashMap::new();
    let mut values: Vec<(&UserKey, String)> = Vec::new();
    for (k, r) in &desired.users {
        if let Some(v) = rule.member_value(k, r) {
            if stored.contains_key(&v) {
                values.push((k, v));
            }
        }
    }
    for (k, v) in &values {
        let Some((sv, _)) = stored.get_key_value(v) else {
            continue;
        };
        match linked.get(k.as_str()) {
            Some(&id) => {
                taken.insert(sv.as_str(), (k, id));
            }
            None => free.entry(sv.as_str()).or_default().push(k),
        }
    }
    let mut links: Vec<(usize, UserKey)> = Vec::new();
    let mut ambiguous = Vec::new();
    for (value, users) in &stored {
        let members = free.get(value.as_str()).cloned().unwrap_or_default();
        let link = taken.get(value.as_str()).copied();
        if members.is_empty() && link.is_none() {
            continue;
        }
        if users.len() == 1 && members.len() == 1 && link.is_none() {
            links.push((users[0], members[0].clone()));
            continue;
        }
        let mut a = AmbiguousMatch {
            value: value.clone(),
            users: users
                .iter()
                .map(|&i| (current.users[i].id, current.users[i].record.name.clone()))
                .collect(),
            members: members
                .iter()
                .map(|k| {
                    let r = &desired.users[*k];
                    (r.userid.clone(), r.name.clone())
                })
                .collect(),
            linked: link.map(|(k, id)| (desired.users[k].userid.clone(), id)),
            ..Default::default()
        };
        a.users.sort();
        a.members.sort();
        (a.fix_en, a.fix_zh) = fix(rule, &a);
        out.held_users.extend(a.users.iter().map(|u| u.0));
        out.held_members.extend(members.into_iter().cloned());
        ambiguous.push(a);
    }
    out.report.matched = links.len();
    for (i, key) in links {
        let r = &desired.users[&key];
        let u = &mut current.users[i];
        u.record.userid = r.userid.clone();
        u.key = Some(key);
        u.link_identity = true;
    }
    ambiguous.sort_by(|a, b| a.users.cmp(&b.users));
    out.report.unmatched = candidates - out.report.matched - out.held_users.len();
    out.report.ambiguous = ambiguous;
    out
}

/// What an admin does about an ambiguous value, in English and Chinese.
fn fix(rule: &MatchRule, a: &AmbiguousMatch) -> (String, String) {
    let (fen, fzh) = (rule.label_en(), rule.label_zh());
    let v = &a.value;
    if let Some((userid, id)) = &a.linked {
        let ids = a
            .users
            .iter()
            .map(|u| format!("#{}", u.0))
            .collect::<Vec<_>>()
            .join(", ");
        return (
            format!("WeCom member {userid} (same {fen} {v}) is already user #{id}. If {ids} is the same person, move what points at it to #{id} and disable it; otherwise correct its {fen} (re-import), then sync again."),
            format!("企业微信成员 {userid}（{fzh}同为 {v}）已是用户 #{id}。若 {ids} 是同一人，请将其业务数据转到 #{id} 后停用它；否则请更正其{fzh}（重新导入），再同步。"),
        );
    }
    if a.users.len() > 1 {
        return (
            format!("{} stored people have the {fen} {v}: keep it on the one who is this member and correct or remove it on the others (re-import), then sync again. Nobody was linked or created for it.", a.users.len()),
            format!("{} 个已有人员的{fzh}都是 {v}：只保留在对应此成员的那一位上，更正或删除其他人的（重新导入），再同步。此值未关联也未新建任何人。", a.users.len()),
        );
    }
    (
        format!("{} WeCom members have the {fen} {v}: give this person a key that names one member (e.g. their WeCom userid, re-import) or choose another match rule, then sync again. None of these members was created.", a.members.len()),
        format!("企业微信中有 {} 个成员的{fzh}都是 {v}：请为此人提供只对应一位成员的键（如其企业微信 UserID，重新导入），或改用其他匹配规则，再同步。这些成员均未新建。", a.members.len()),
    )
}

/// Leaves the held stored people as they are: not disabled for being absent.
pub fn keep_held(diff: &mut DirectoryDiff, outcome: &MatchOutcome) {
    if outcome.held_users.is_empty() {
        return;
    }
    diff.users_disabled
        .retain(|d| !outcome.held_users.contains(&d.user_id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::UserStatus;

    fn member(userid: &str, email: &str, extattr: &str) -> (UserKey, UserRecord) {
        (
            user_key(userid),
            UserRecord {
                userid: userid.into(),
                name: format!("name of {userid}"),
                email: (!email.is_empty()).then(|| email.to_string()),
                mobile: Some(format!("+86 138 0000 {:04}", userid.len())),
                extattr: extattr.into(),
                wecom_status: 1,
                ..Default::default()
            },
        )
    }

    fn stored(id: i64, key: Option<&str>, email: Option<&str>) -> CurrentUser {
        CurrentUser {
            id,
            key: key.map(user_key),
            record: UserRecord {
                userid: key.unwrap_or_default().into(),
                name: format!("#{id}"),
                email: email.map(str::to_string),
                ..Default::default()
            },
            status: UserStatus::Authorized,
            disabled_reason: None,
            imported: false,
            link_identity: false,
        }
    }

    fn desired(members: Vec<(UserKey, UserRecord)>) -> DesiredDirectory {
        DesiredDirectory {
            users: members.into_iter().map(|(k, r)| (k, Box::new(r))).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_parse_and_print() {
        for s in ["userid", "email", "mobile", "extattr:工号"] {
            assert_eq!(MatchRule::parse(s).unwrap().as_string(), s);
        }
        assert_eq!(MatchRule::parse("extattr: "), Err(MatchRuleError::NoField));
        assert_eq!(MatchRule::parse("name"), Err(MatchRuleError::Unknown));
    }

    #[test]
    fn one_to_one_links_and_case_does_not_matter() {
        let want = desired(vec![member("zhangsan", "ZS@example.com", "")]);
        let mut cur = CurrentDirectory {
            users: vec![stored(1, None, Some("zs@EXAMPLE.com"))],
            ..Default::default()
        };
        let out = match_existing(&want, &mut cur, &HashMap::new(), &MatchRule::Email);
        assert_eq!((out.report.candidates, out.report.matched), (1, 1));
        assert!(out.report.ambiguous.is_empty());
        let u = &cur.users[0];
        assert_eq!(u.key.as_deref(), Some("zhangsan"));
        assert_eq!(u.record.userid, "zhangsan");
        assert!(u.link_identity);
        // The diff then updates the same user and creates nobody.
        let diff = diff_full(
            want,
            &cur,
            DiffOptions {
                new_user_status: UserStatus::Unauthorized,
            },
        );
        assert!(diff.users_added.is_empty());
        assert_eq!(diff.users_updated.len(), 1);
        assert!(diff.users_updated[0].link_identity);
    }

    #[test]
    fn two_stored_people_for_one_member_are_refused() {
        let mut want = desired(vec![
            member("zhangsan", "zs@example.com", ""),
            member("lisi", "ls@example.com", ""),
        ]);
        let mut cur = CurrentDirectory {
            users: vec![
                stored(1, None, Some("zs@example.com")),
                stored(2, None, Some("ZS@example.com")),
                stored(3, None, Some("ls@example.com")),
            ],
            ..Default::default()
        };
        let out = match_existing(&want, &mut cur, &HashMap::new(), &MatchRule::Email);
        assert_eq!(out.report.matched, 1);
        assert_eq!(out.report.ambiguous.len(), 1);
        let a = &out.report.ambiguous[0];
        assert_eq!(a.users.iter().map(|u| u.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            a.members,
            [("zhangsan".to_string(), "name of zhangsan".to_string())]
        );
        assert!(a.fix_en.contains("2 stored people") && !a.fix_zh.is_empty());
        assert!(cur.users[0].key.is_none() && cur.users[1].key.is_none());
        assert_eq!(cur.users[2].key.as_deref(), Some("lisi"));
        // The member is not created while the ambiguity stands.
        assert!(out.held_members.contains("zhangsan"));
        for k in &out.held_members {
            want.users.remove(k);
        }
        let diff = diff_full(
            want,
            &cur,
            DiffOptions {
                new_user_status: UserStatus::Unauthorized,
            },
        );
        assert!(diff.users_added.is_empty(), "{:?}", diff.users_added);
    }

    #[test]
    fn one_stored_person_for_two_members_is_refused() {
        let attr = |v: &str| format!(r#"[{{"type":0,"name":"工号","text":{{"value":"{v}"}}}}]"#);
        let want = desired(vec![
            member("a", "", &attr("E1")),
            member("b", "", &attr("E1")),
            member("c", "", &attr("E2")),
        ]);
        let mut imported = stored(9, None, None);
        imported.imported = true;
        let mut cur = CurrentDirectory {
            users: vec![imported, stored(10, None, None)],
            ..Default::default()
        };
        let keys = HashMap::from([
            (
                9,
                StoredKeys {
                    userid: None,
                    external_key: Some("E1".into()),
                },
            ),
            (
                10,
                StoredKeys {
                    userid: None,
                    external_key: Some("E3".into()),
                },
            ),
        ]);
        let rule = MatchRule::Extattr("工号".into());
        let out = match_existing(&want, &mut cur, &keys, &rule);
        assert_eq!(
            (
                out.report.matched,
                out.report.ambiguous.len(),
                out.report.unmatched
            ),
            (0, 1, 1)
        );
        let a = &out.report.ambiguous[0];
        assert_eq!(a.users, [(9, "#9".to_string())]);
        assert_eq!(a.members.len(), 2);
        assert!(a.fix_en.contains("2 WeCom members"));
        assert_eq!(out.held_members.len(), 2);
        // The held person (an unlinked third-party import) is not disabled meanwhile.
        let mut diff = diff_full(
            want,
            &cur,
            DiffOptions {
                new_user_status: UserStatus::Unauthorized,
            },
        );
        assert_eq!(diff.users_disabled.len(), 1);
        keep_held(&mut diff, &out);
        assert!(diff.users_disabled.is_empty());
    }

    #[test]
    fn a_value_already_linked_is_refused_not_duplicated() {
        let want = desired(vec![member("zhangsan", "zs@example.com", "")]);
        let mut cur = CurrentDirectory {
            users: vec![
                stored(1, Some("zhangsan"), Some("zs@example.com")),
                stored(2, None, Some("zs@example.com")),
            ],
            ..Default::default()
        };
        let out = match_existing(&want, &mut cur, &HashMap::new(), &MatchRule::Email);
        assert_eq!(out.report.candidates, 1);
        assert_eq!(out.report.ambiguous.len(), 1);
        assert_eq!(
            out.report.ambiguous[0].linked,
            Some(("zhangsan".to_string(), 1))
        );
        assert!(out.held_users.contains(&2));
        assert!(out.held_members.is_empty());
        assert!(cur.users[1].key.is_none());
    }

    #[test]
    fn userid_and_mobile_rules() {
        let want = desired(vec![member("LiSi", "", ""), member("zhangsan", "", "")]);
        let mut cur = CurrentDirectory {
            users: vec![stored(1, None, None), stored(2, None, None)],
            ..Default::default()
        };
        cur.users[1].record.mobile = Some("13800000008".into());
        let keys = HashMap::from([(
            1,
            StoredKeys {
                userid: Some("lisi".into()),
                external_key: None,
            },
        )]);
        let out = match_existing(&want, &mut cur.clone(), &keys, &MatchRule::Userid);
        assert_eq!((out.report.matched, out.report.unmatched), (1, 1));
        // zhangsan's mobile is "+86 138 0000 0008" (8 letters): digits compare.
        let out = match_existing(&want, &mut cur, &keys, &MatchRule::Mobile);
        assert_eq!(out.report.matched, 1);
        assert_eq!(cur.users[1].key.as_deref(), Some("zhangsan"));
        assert_eq!(cur.users[0].key, None);
    }

    #[test]
    fn extattr_values_are_read_from_wecom_json() {
        let j = r#"[{"type":0,"name":"工号","text":{"value":" A1 "}},{"type":1,"name":"主页","web":{"url":"https://x","title":"t"}}]"#;
        assert_eq!(extattr_value(j, "工号").as_deref(), Some("A1"));
        assert_eq!(extattr_value(j, "主页").as_deref(), Some("https://x"));
        assert_eq!(extattr_value(j, "other"), None);
        assert_eq!(
            extattr_value(r#"{"attrs":[{"name":"工号","value":"B2"}]}"#, "工号").as_deref(),
            Some("B2")
        );
        assert_eq!(extattr_value("", "工号"), None);
        assert_eq!(extattr_value("not json", "工号"), None);
    }
}
