//! The simulated organisation: corps, departments, members, tags and apps.
//!
//! Plain data plus the indexes the API needs to stay fast on a 100k-member org
//! (children per department, direct members per department). Every mutation goes
//! through a method here so the indexes and the scope cache generation stay right.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Member status as WeCom reports it in `user/get`.
pub mod status {
    pub const ACTIVE: u8 = 1;
    pub const DISABLED: u8 = 2;
    pub const UNACTIVATED: u8 = 4;
    pub const LEFT: u8 = 5;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Department {
    pub id: u32,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// 0 for the root.
    #[serde(default)]
    pub parentid: u32,
    /// Larger sorts first, as in WeCom.
    #[serde(default)]
    pub order: u32,
    #[serde(default)]
    pub leaders: Vec<String>,
}

/// One department a member belongs to, with the parallel `order` and leader flag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberDept {
    pub id: u32,
    #[serde(default)]
    pub order: u32,
    #[serde(default)]
    pub leader: bool,
}

/// `extattr.attrs[]`: type 0 is text, type 1 is a web link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtAttr {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_title: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Stored spelling; look-ups ignore case.
    pub userid: String,
    pub name: String,
    #[serde(default)]
    pub departments: Vec<MemberDept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_department: Option<u32>,
    #[serde(default)]
    pub position: String,
    #[serde(default)]
    pub mobile: String,
    /// 0 unset, 1 male, 2 female.
    #[serde(default)]
    pub gender: u8,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub biz_mail: String,
    #[serde(default)]
    pub avatar: String,
    #[serde(default)]
    pub telephone: String,
    #[serde(default)]
    pub alias: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub qr_code: String,
    #[serde(default)]
    pub external_position: String,
    #[serde(default)]
    pub direct_leader: Vec<String>,
    #[serde(default)]
    pub extattr: Vec<ExtAttr>,
    #[serde(default = "default_status")]
    pub status: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_profile: Option<serde_json::Value>,
}

fn default_status() -> u8 {
    status::ACTIVE
}

impl Member {
    pub fn new(userid: &str, name: &str, departments: &[u32]) -> Self {
        Member {
            userid: userid.to_string(),
            name: name.to_string(),
            departments: departments
                .iter()
                .map(|&id| MemberDept {
                    id,
                    order: 0,
                    leader: false,
                })
                .collect(),
            main_department: departments.first().copied(),
            position: String::new(),
            mobile: String::new(),
            gender: 0,
            email: String::new(),
            biz_mail: String::new(),
            avatar: String::new(),
            telephone: String::new(),
            alias: String::new(),
            address: String::new(),
            qr_code: String::new(),
            external_position: String::new(),
            direct_leader: Vec::new(),
            extattr: Vec::new(),
            status: status::ACTIVE,
            external_profile: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub id: u32,
    pub name: String,
    /// Member keys (lower-cased userids).
    #[serde(default)]
    pub users: BTreeSet<String>,
    #[serde(default)]
    pub parties: BTreeSet<u32>,
}

/// An app's visible scope as configured (`allow_userinfos`, `allow_partys`, `allow_tags`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub parties: Vec<u32>,
    #[serde(default)]
    pub tags: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallbackConfig {
    pub url: String,
    pub token: String,
    pub encoding_aes_key: String,
}

/// A self-built app (自建应用).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub agentid: u32,
    pub name: String,
    pub secret: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub square_logo_url: String,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub close: bool,
    /// 可信域名: `host` or `host:port`, used by in-client OAuth and the code exchange.
    #[serde(default)]
    pub redirect_domain: String,
    /// 授权回调域 for web/QR login; not reported by agent/get.
    #[serde(default)]
    pub web_login_domain: String,
    #[serde(default)]
    pub home_url: String,
    /// 企业可信IP: exact single addresses.
    #[serde(default)]
    pub trusted_ips: Vec<String>,
    /// Created after 2022-06-20 20:00: sensitive fields withheld and trusted IP enforced.
    #[serde(default = "default_true")]
    pub post_2022: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackConfig>,
    /// Fields the admin ticked for `snsapi_privateinfo` (subset of the sensitive fields).
    #[serde(default = "default_privateinfo_fields")]
    pub privateinfo_fields: Vec<String>,
    #[serde(default)]
    pub report_location_flag: u8,
    #[serde(default)]
    pub isreportenter: u8,
}

fn default_true() -> bool {
    true
}

pub const SENSITIVE_FIELDS: &[&str] = &[
    "mobile", "email", "biz_mail", "avatar", "gender", "qr_code", "address",
];

fn default_privateinfo_fields() -> Vec<String> {
    SENSITIVE_FIELDS.iter().map(|s| s.to_string()).collect()
}

impl App {
    pub fn new(agentid: u32, name: &str, secret: &str) -> Self {
        App {
            agentid,
            name: name.to_string(),
            secret: secret.to_string(),
            description: String::new(),
            square_logo_url: String::new(),
            scope: Scope::default(),
            close: false,
            redirect_domain: String::new(),
            web_login_domain: String::new(),
            home_url: String::new(),
            trusted_ips: Vec::new(),
            post_2022: true,
            callback: None,
            privateinfo_fields: default_privateinfo_fields(),
            report_location_flag: 0,
            isreportenter: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    ThirdParty,
    DaiKaiFa,
}

/// A third-party or 代开发 app installed in the corp: modelled only as far as owning an
/// agentid, a scope and issuing `open_userid`s (wecom-api.md §2, §7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderApp {
    pub agentid: u32,
    pub provider_id: String,
    pub kind: ProviderKind,
    #[serde(default)]
    pub scope: Scope,
}

/// Whole-org view used for the contact-sync secret and for scope maths.
#[derive(Clone, Debug, Default)]
pub struct VisibleScope {
    pub depts: HashSet<u32>,
    /// Member keys (lower-cased userids).
    pub users: HashSet<String>,
    /// True for the contact-sync secret: everything is visible.
    pub all: bool,
}

impl VisibleScope {
    pub fn has_dept(&self, id: u32) -> bool {
        self.all || self.depts.contains(&id)
    }
    pub fn has_user(&self, key: &str) -> bool {
        self.all || self.users.contains(key)
    }
}

/// One corp (企业) with its directory and apps.
#[derive(Clone, Debug, Default)]
pub struct Corp {
    pub corpid: String,
    pub name: String,
    pub contact_sync_secret: Option<String>,
    pub departments: BTreeMap<u32, Department>,
    /// Keyed by lower-cased userid (look-ups ignore case).
    pub members: BTreeMap<String, Member>,
    pub tags: BTreeMap<u32, Tag>,
    pub apps: BTreeMap<u32, App>,
    pub provider_apps: BTreeMap<u32, ProviderApp>,
    /// Outsiders who may sign in by OAuth (openids).
    pub outsiders: Vec<String>,
    /// Bumped on every directory or scope change; invalidates the scope cache.
    pub generation: u64,
    children: HashMap<u32, BTreeSet<u32>>,
    dept_members: HashMap<u32, BTreeSet<String>>,
    scope_cache: HashMap<u32, (u64, Arc<VisibleScope>)>,
}

pub fn key(userid: &str) -> String {
    userid.to_ascii_lowercase()
}

impl Corp {
    pub fn new(corpid: &str, name: &str) -> Self {
        Corp {
            corpid: corpid.to_string(),
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Rebuilds the indexes after bulk loading (scenario files, the generator).
    pub fn rebuild_index(&mut self) {
        self.children.clear();
        self.dept_members.clear();
        for d in self.departments.values() {
            self.children.entry(d.parentid).or_default().insert(d.id);
        }
        for (k, m) in &self.members {
            for md in &m.departments {
                self.dept_members
                    .entry(md.id)
                    .or_default()
                    .insert(k.clone());
            }
        }
        self.touch();
    }

    fn touch(&mut self) {
        self.generation += 1;
    }

    pub fn member(&self, userid: &str) -> Option<&Member> {
        self.members.get(&key(userid))
    }

    pub fn children(&self, id: u32) -> impl Iterator<Item = u32> + '_ {
        self.children.get(&id).into_iter().flatten().copied()
    }

    /// Direct members of a department (member keys, sorted).
    pub fn direct_members(&self, id: u32) -> impl Iterator<Item = &String> + '_ {
        self.dept_members.get(&id).into_iter().flatten()
    }

    /// `id` and all its descendants, parents before children.
    pub fn subtree(&self, id: u32) -> Vec<u32> {
        let mut out = Vec::new();
        if !self.departments.contains_key(&id) {
            return out;
        }
        let mut stack = vec![id];
        while let Some(d) = stack.pop() {
            out.push(d);
            // Reverse so the first child is visited first.
            let kids: Vec<u32> = self.children(d).collect();
            stack.extend(kids.into_iter().rev());
        }
        out
    }

    pub fn upsert_department(&mut self, dept: Department) {
        if let Some(old) = self.departments.get(&dept.id) {
            let old_parent = old.parentid;
            if let Some(set) = self.children.get_mut(&old_parent) {
                set.remove(&dept.id);
            }
        }
        self.children
            .entry(dept.parentid)
            .or_default()
            .insert(dept.id);
        self.departments.insert(dept.id, dept);
        self.touch();
    }

    pub fn remove_department(&mut self, id: u32) -> Option<Department> {
        let d = self.departments.remove(&id)?;
        if let Some(set) = self.children.get_mut(&d.parentid) {
            set.remove(&id);
        }
        self.children.remove(&id);
        self.dept_members.remove(&id);
        for t in self.tags.values_mut() {
            t.parties.remove(&id);
        }
        for a in self.apps.values_mut() {
            a.scope.parties.retain(|p| *p != id);
        }
        self.touch();
        Some(d)
    }

    pub fn upsert_member(&mut self, member: Member) {
        let k = key(&member.userid);
        self.unindex_member(&k);
        for md in &member.departments {
            self.dept_members
                .entry(md.id)
                .or_default()
                .insert(k.clone());
        }
        self.members.insert(k, member);
        self.touch();
    }

    fn unindex_member(&mut self, k: &str) {
        if let Some(old) = self.members.get(k) {
            for md in &old.departments {
                if let Some(set) = self.dept_members.get_mut(&md.id) {
                    set.remove(k);
                }
            }
        }
    }

    /// Removes a member everywhere (tags, scopes, leader lists).
    pub fn remove_member(&mut self, userid: &str) -> Option<Member> {
        let k = key(userid);
        self.unindex_member(&k);
        let m = self.members.remove(&k)?;
        for t in self.tags.values_mut() {
            t.users.remove(&k);
        }
        for a in self.apps.values_mut() {
            a.scope.users.retain(|u| key(u) != k);
        }
        for d in self.departments.values_mut() {
            d.leaders.retain(|u| key(u) != k);
        }
        self.touch();
        Some(m)
    }

    /// Renames a member's userid (WeCom allows one change of a system-generated id).
    pub fn rename_member(&mut self, old: &str, new: &str) -> bool {
        let Some(mut m) = self.remove_member_keep_refs(old) else {
            return false;
        };
        let (ok, nk) = (key(old), key(new));
        m.userid = new.to_string();
        for t in self.tags.values_mut() {
            if t.users.remove(&ok) {
                t.users.insert(nk.clone());
            }
        }
        for a in self.apps.values_mut() {
            for u in a.scope.users.iter_mut() {
                if key(u) == ok {
                    *u = new.to_string();
                }
            }
        }
        for d in self.departments.values_mut() {
            for u in d.leaders.iter_mut() {
                if key(u) == ok {
                    *u = new.to_string();
                }
            }
        }
        for other in self.members.values_mut() {
            for u in other.direct_leader.iter_mut() {
                if key(u) == ok {
                    *u = new.to_string();
                }
            }
        }
        self.upsert_member(m);
        true
    }

    fn remove_member_keep_refs(&mut self, userid: &str) -> Option<Member> {
        let k = key(userid);
        self.unindex_member(&k);
        let m = self.members.remove(&k);
        self.touch();
        m
    }

    pub fn upsert_tag(&mut self, tag: Tag) {
        self.tags.insert(tag.id, tag);
        self.touch();
    }

    pub fn remove_tag(&mut self, id: u32) -> Option<Tag> {
        let t = self.tags.remove(&id)?;
        for a in self.apps.values_mut() {
            a.scope.tags.retain(|x| *x != id);
        }
        self.touch();
        Some(t)
    }

    pub fn set_app_scope(&mut self, agentid: u32, scope: Scope) -> bool {
        match self.apps.get_mut(&agentid) {
            Some(a) => {
                a.scope = scope;
                self.touch();
                true
            }
            None => false,
        }
    }

    /// Adds or replaces a self-built app (admin API).
    pub fn upsert_app(&mut self, app: App) {
        self.apps.insert(app.agentid, app);
        self.touch();
    }

    pub fn remove_app(&mut self, agentid: u32) -> Option<App> {
        let a = self.apps.remove(&agentid)?;
        self.touch();
        Some(a)
    }

    /// Adds or replaces a provider app, scope included (admin API).
    pub fn upsert_provider_app(&mut self, app: ProviderApp) {
        self.provider_apps.insert(app.agentid, app);
        self.touch();
    }

    pub fn remove_provider_app(&mut self, agentid: u32) -> Option<ProviderApp> {
        let a = self.provider_apps.remove(&agentid)?;
        self.touch();
        Some(a)
    }

    /// Mutable access to an app for non-scope settings (domains, IPs, callback, close).
    pub fn app_mut(&mut self, agentid: u32) -> Option<&mut App> {
        self.touch();
        self.apps.get_mut(&agentid)
    }

    /// `Depts(app)` and `Users(app)` of wecom-api.md §4.2, cached per generation.
    pub fn scope_of(&mut self, agentid: u32) -> Arc<VisibleScope> {
        if let Some((gen, s)) = self.scope_cache.get(&agentid) {
            if *gen == self.generation {
                return s.clone();
            }
        }
        let scope = match self.apps.get(&agentid) {
            Some(app) => app.scope.clone(),
            None => match self.provider_apps.get(&agentid) {
                Some(p) => p.scope.clone(),
                None => Scope::default(),
            },
        };
        let vs = Arc::new(self.compute_scope(&scope));
        self.scope_cache
            .insert(agentid, (self.generation, vs.clone()));
        vs
    }

    pub fn compute_scope(&self, scope: &Scope) -> VisibleScope {
        let mut depts = HashSet::new();
        let mut users = HashSet::new();
        let mut roots: Vec<u32> = scope.parties.clone();
        for t in &scope.tags {
            if let Some(tag) = self.tags.get(t) {
                roots.extend(tag.parties.iter().copied());
                users.extend(tag.users.iter().cloned());
            }
        }
        for r in roots {
            if depts.contains(&r) {
                continue;
            }
            depts.extend(self.subtree(r));
        }
        for d in &depts {
            users.extend(self.direct_members(*d).cloned());
        }
        for u in &scope.users {
            let k = key(u);
            if self.members.contains_key(&k) {
                users.insert(k);
            }
        }
        users.retain(|k| self.members.contains_key(k));
        VisibleScope {
            depts,
            users,
            all: false,
        }
    }

    /// The provider-specific `open_userid` of a member (wecom-api.md §7 simulator rule):
    /// `wo` + 30 alphanumerics derived from (provider id, corpid, userid).
    pub fn open_userid(&self, provider_id: &str, userid: &str) -> String {
        open_userid(provider_id, &self.corpid, &key(userid))
    }
}

pub fn open_userid(provider_id: &str, corpid: &str, userid_key: &str) -> String {
    use sha1::{Digest, Sha1};
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::from("wo");
    let mut counter = 0u8;
    while out.len() < 32 {
        let mut h = Sha1::new();
        h.update(provider_id.as_bytes());
        h.update([0]);
        h.update(corpid.to_ascii_lowercase().as_bytes());
        h.update([0]);
        h.update(userid_key.as_bytes());
        h.update([counter]);
        for b in h.finalize() {
            if out.len() < 32 {
                out.push(ALNUM[(b as usize) % ALNUM.len()] as char);
            }
        }
        counter += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corp() -> Corp {
        let mut c = Corp::new("wwcorp", "示例");
        for (id, p) in [(1, 0), (2, 1), (3, 2), (4, 1), (5, 3)] {
            c.upsert_department(Department {
                id,
                name: format!("d{id}"),
                name_en: String::new(),
                parentid: p,
                order: 0,
                leaders: vec![],
            });
        }
        c.upsert_member(Member::new("Alice", "A", &[3]));
        c.upsert_member(Member::new("bob", "B", &[4]));
        c.upsert_member(Member::new("carol", "C", &[]));
        c.upsert_tag(Tag {
            id: 7,
            name: "t".into(),
            users: ["carol".to_string()].into(),
            parties: [4].into(),
        });
        c.apps.insert(100, App::new(100, "app", "s"));
        c
    }

    #[test]
    fn subtree_and_scope() {
        let mut c = corp();
        assert_eq!(c.subtree(2), vec![2, 3, 5]);
        c.set_app_scope(
            100,
            Scope {
                users: vec![],
                parties: vec![2],
                tags: vec![],
            },
        );
        let s = c.scope_of(100);
        assert!(s.has_dept(5) && !s.has_dept(4));
        assert!(s.has_user("alice") && !s.has_user("bob"));
        c.set_app_scope(
            100,
            Scope {
                users: vec![],
                parties: vec![],
                tags: vec![7],
            },
        );
        let s = c.scope_of(100);
        assert!(s.has_dept(4) && s.has_user("bob") && s.has_user("carol"));
        assert!(!s.has_user("alice"));
    }

    #[test]
    fn rename_keeps_references() {
        let mut c = corp();
        c.tags.get_mut(&7).unwrap().users.insert("alice".into());
        assert!(c.rename_member("ALICE", "alice2"));
        assert!(c.member("alice").is_none());
        assert_eq!(c.member("Alice2").unwrap().userid, "alice2");
        assert!(c.tags[&7].users.contains("alice2"));
        assert_eq!(c.direct_members(3).cloned().collect::<Vec<_>>(), ["alice2"]);
    }

    #[test]
    fn open_userid_shape() {
        let a = open_userid("prov", "wwcorp", "alice");
        assert_eq!(a.len(), 32);
        assert!(a.starts_with("wo"));
        assert_eq!(a, open_userid("prov", "WWCORP", "alice"));
        assert_ne!(a, open_userid("prov2", "wwcorp", "alice"));
    }
}
