//! Typed answers of the WeCom endpoints the bridge reads (wecom-api.md §3–§10).
//!
//! Lenient on purpose: WeCom omits fields freely (empty scopes, withheld sensitive
//! fields, a missing `next_cursor`), so everything that may be absent has a default.

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default = "default_expires_in")]
    pub expires_in: u64,
}

fn default_expires_in() -> u64 {
    7200
}

// ---------- agent/get ----------

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowUser {
    pub userid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowUserInfos {
    #[serde(default)]
    pub user: Vec<AllowUser>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowPartys {
    #[serde(default)]
    pub partyid: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowTags {
    #[serde(default)]
    pub tagid: Vec<u32>,
}

/// `agent/get`: the app, its visible scope and its domains.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub agentid: u32,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub square_logo_url: String,
    #[serde(default)]
    pub allow_userinfos: AllowUserInfos,
    #[serde(default)]
    pub allow_partys: AllowPartys,
    #[serde(default)]
    pub allow_tags: AllowTags,
    /// 0 enabled, 1 disabled.
    #[serde(default)]
    pub close: u8,
    /// Trusted domain (可信域名): `host` or `host:port`.
    #[serde(default)]
    pub redirect_domain: String,
    #[serde(default)]
    pub report_location_flag: u8,
    #[serde(default)]
    pub isreportenter: u8,
    #[serde(default)]
    pub home_url: String,
}

impl Agent {
    pub fn scope_users(&self) -> impl Iterator<Item = &str> {
        self.allow_userinfos.user.iter().map(|u| u.userid.as_str())
    }
    /// True when nobody can see or use the app.
    pub fn scope_is_empty(&self) -> bool {
        self.allow_userinfos.user.is_empty()
            && self.allow_partys.partyid.is_empty()
            && self.allow_tags.tagid.is_empty()
    }
}

// ---------- departments ----------

/// `department/list` and `department/get` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub id: u32,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    #[serde(default)]
    pub department_leader: Vec<String>,
    #[serde(default)]
    pub parentid: u32,
    #[serde(default)]
    pub order: u32,
}

/// `department/simplelist` entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentRef {
    pub id: u32,
    #[serde(default)]
    pub parentid: u32,
    #[serde(default)]
    pub order: u32,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DepartmentList {
    #[serde(default)]
    pub department: Vec<Department>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DepartmentSimpleList {
    #[serde(default)]
    pub department_id: Vec<DepartmentRef>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DepartmentGet {
    pub department: Department,
}

// ---------- members ----------

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtAttrText {
    #[serde(default)]
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtAttrWeb {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtAttr {
    #[serde(default, rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<ExtAttrText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<ExtAttrWeb>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtAttrs {
    #[serde(default)]
    pub attrs: Vec<ExtAttr>,
}

/// `user/get` and `user/list` member object. Sensitive fields are `None` when withheld
/// (absent, or empty as some answers send them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub userid: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub department: Vec<u32>,
    #[serde(default)]
    pub order: Vec<u32>,
    #[serde(default)]
    pub is_leader_in_dept: Vec<u8>,
    #[serde(default)]
    pub position: String,
    #[serde(default, deserialize_with = "non_empty")]
    pub mobile: Option<String>,
    /// `"0"` unset or withheld, `"1"` male, `"2"` female.
    #[serde(default, deserialize_with = "string_or_number")]
    pub gender: String,
    #[serde(default, deserialize_with = "non_empty")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub biz_mail: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub avatar: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub thumb_avatar: Option<String>,
    #[serde(default)]
    pub telephone: String,
    #[serde(default)]
    pub alias: String,
    #[serde(default, deserialize_with = "non_empty")]
    pub address: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub qr_code: Option<String>,
    #[serde(default)]
    pub direct_leader: Vec<String>,
    #[serde(default)]
    pub main_department: Option<u32>,
    #[serde(default)]
    pub open_userid: Option<String>,
    #[serde(default)]
    pub extattr: ExtAttrs,
    /// 1 activated, 2 disabled, 4 not activated, 5 left.
    #[serde(default)]
    pub status: u8,
    #[serde(default)]
    pub external_position: String,
    #[serde(default)]
    pub external_profile: Option<serde_json::Value>,
}

/// Member status values of `user/get`.
pub mod member_status {
    pub const ACTIVE: u8 = 1;
    pub const DISABLED: u8 = 2;
    pub const UNACTIVATED: u8 = 4;
    pub const LEFT: u8 = 5;
}

/// `user/simplelist` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleMember {
    pub userid: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub department: Vec<u32>,
    #[serde(default)]
    pub open_userid: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UserList<T> {
    #[serde(default = "Vec::new")]
    pub userlist: Vec<T>,
}

/// One row of `user/list_id`: one per (member, department).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeptUser {
    pub userid: String,
    #[serde(default)]
    pub department: u32,
}

/// A page of `user/list_id`; `next_cursor` is empty (or was absent) on the last page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ListIdPage {
    #[serde(default)]
    pub next_cursor: String,
    #[serde(default)]
    pub dept_user: Vec<DeptUser>,
}

// ---------- tags ----------

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRef {
    pub tagid: u32,
    #[serde(default)]
    pub tagname: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TagList {
    #[serde(default)]
    pub taglist: Vec<TagRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagMember {
    pub userid: String,
    #[serde(default)]
    pub name: String,
}

/// `tag/get`: the tag's members and departments inside the caller's scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(default)]
    pub tagname: String,
    #[serde(default)]
    pub userlist: Vec<TagMember>,
    #[serde(default)]
    pub partylist: Vec<u32>,
}

// ---------- sign-in ----------

/// `auth/getuserinfo`: a corp member, or someone from outside the corp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserInfo {
    Member {
        userid: String,
        user_ticket: Option<String>,
    },
    NonMember {
        openid: String,
        external_userid: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawUserInfo {
    #[serde(default, deserialize_with = "non_empty")]
    pub userid: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub user_ticket: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub openid: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub external_userid: Option<String>,
}

/// `auth/getuserdetail`: the sensitive fields the member consented to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetail {
    pub userid: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub gender: String,
    #[serde(default, deserialize_with = "non_empty")]
    pub avatar: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub qr_code: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub mobile: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub biz_mail: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub address: Option<String>,
}

// ---------- ids, network, tickets ----------

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenUserIdPair {
    pub open_userid: String,
    pub userid: String,
}

/// `batch/openuserid_to_userid`: converted pairs and the ids that could not be converted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenUserIdConversion {
    #[serde(default)]
    pub userid_list: Vec<OpenUserIdPair>,
    #[serde(default)]
    pub invalid_open_userid_list: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IpList {
    #[serde(default)]
    pub ip_list: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Ticket {
    pub ticket: String,
    #[serde(default = "default_expires_in")]
    pub expires_in: u64,
}

/// Treats `""` like an absent field (withheld fields come either way, §5.3).
fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(v.filter(|s| !s.is_empty()))
}

/// `gender` is documented as a string, but old answers send a number.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        S(String),
        N(i64),
    }
    Ok(match Option::<S>::deserialize(d)? {
        Some(S::S(s)) => s,
        Some(S::N(n)) => n.to_string(),
        None => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_2022_member_has_no_sensitive_fields() {
        let m: Member = serde_json::from_str(r#"{"errcode":0,"errmsg":"ok","userid":"zhangsan","name":"张三","department":[1,2],"order":[0,10],"position":"产品经理","gender":"0",
 "is_leader_in_dept":[1,0],"direct_leader":["lisi"],"telephone":"020-123456","alias":"jackzhang","main_department":1,
 "extattr":{"attrs":[{"type":0,"name":"工号","text":{"value":"A001"}}]},"status":1,"external_position":"产品经理","external_profile":{"external_corp_name":"示例科技","external_attr":[]}}"#).unwrap();
        assert_eq!(m.mobile, None);
        assert_eq!(m.gender, "0");
        assert_eq!(m.extattr.attrs[0].text.as_ref().unwrap().value, "A001");
        let empty: Member =
            serde_json::from_str(r#"{"userid":"a","mobile":"","email":"","gender":1}"#).unwrap();
        assert_eq!(
            (empty.mobile, empty.email, empty.gender.as_str()),
            (None, None, "1")
        );
    }

    #[test]
    fn agent_without_scope_keys() {
        let a: Agent = serde_json::from_str(r#"{"agentid":1000005,"name":"工作台"}"#).unwrap();
        assert!(a.scope_is_empty());
    }
}
