//! The contact read side (wecom-api.md §4.2, §5.1–5.8): departments, members and tags,
//! cut to the caller's visible scope.
//!
//! App and provider tokens see `Depts(app)` / `Users(app)` from [`Corp::scope_of`] (cached
//! per generation, so a call never recomputes the scope); the contact-sync token sees the
//! whole company. Lists walk the `children` / `direct_members` indexes and never scan all
//! members, so a 100k-member org answers per-department calls in microseconds.
//!
//! Parameter errors where WeCom's docs are silent: a missing required id → 40063, a
//! non-integer department id → 60123, a non-integer or unknown tagid → 40068.

use super::Call;
use crate::envelope::ApiErr;
use crate::model::{self, Corp, Department, Member, VisibleScope};
use crate::world::{Owner, World};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// How member objects are rendered for this caller.
struct Render {
    scope: Arc<VisibleScope>,
    /// Sensitive fields withheld (apps created after 2022-06-20, provider apps; §5.7).
    withhold: bool,
    /// Withheld fields as `""` instead of absent (`withheld_as_empty`).
    as_empty: bool,
    /// Provider id, for the `open_userid` a provider app sees.
    provider: Option<String>,
}

/// The caller's corp and its view of it.
fn open<'w>(w: &'w mut World, call: &Call) -> Result<(&'w Corp, Render), ApiErr> {
    let as_empty = w.settings.withheld_as_empty;
    let corp = w.corps.get_mut(&call.corp).ok_or(ApiErr::new(40014))?;
    let render = match call.owner() {
        Owner::ContactSync => Render {
            scope: Arc::new(VisibleScope {
                all: true,
                ..Default::default()
            }),
            withhold: false,
            as_empty,
            provider: None,
        },
        Owner::App { agentid } => {
            let withhold = corp.apps.get(agentid).is_none_or(|a| a.post_2022);
            Render {
                scope: corp.scope_of(*agentid),
                withhold,
                as_empty,
                provider: None,
            }
        }
        Owner::Provider { agentid } => {
            let provider = corp
                .provider_apps
                .get(agentid)
                .map(|p| p.provider_id.clone())
                .ok_or(ApiErr::new(40014))?;
            Render {
                scope: corp.scope_of(*agentid),
                withhold: true,
                as_empty,
                provider: Some(provider),
            }
        }
    };
    Ok((corp, render))
}

/// An optional department id parameter: None when absent or empty, 60123 when not an int.
fn opt_dept_param(call: &Call, name: &str) -> Result<Option<u32>, ApiErr> {
    match call.q(name).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<u32>().map(Some).map_err(|_| ApiErr::new(60123)),
    }
}

fn dept_param(call: &Call, name: &str) -> Result<u32, ApiErr> {
    opt_dept_param(call, name)?.ok_or(ApiErr::new(40063))
}

/// 60003 for an unknown department, 60011 for one outside the scope.
fn visible_dept<'c>(corp: &'c Corp, r: &Render, id: u32) -> Result<&'c Department, ApiErr> {
    let d = corp.departments.get(&id).ok_or(ApiErr::new(60003))?;
    if !r.scope.has_dept(id) {
        return Err(ApiErr::new(60011));
    }
    Ok(d)
}

/// The visible departments for the list endpoints, parents before children: the named
/// department and its subtree, or every root of the visible forest with its subtree.
fn listed_depts(corp: &Corp, r: &Render, id: Option<u32>) -> Result<Vec<u32>, ApiErr> {
    if let Some(id) = id {
        visible_dept(corp, r, id)?;
        // Depts(app) is a union of subtrees, so the whole subtree is visible.
        return Ok(corp.subtree(id));
    }
    let is_root = |d: &Department| d.parentid == 0 || !visible_parent(corp, r, d.parentid);
    let roots: Vec<u32> = if r.scope.all {
        corp.departments
            .values()
            .filter(|d| is_root(d))
            .map(|d| d.id)
            .collect()
    } else {
        let mut v: Vec<u32> = r
            .scope
            .depts
            .iter()
            .filter_map(|id| corp.departments.get(id))
            .filter(|d| is_root(d))
            .map(|d| d.id)
            .collect();
        v.sort_unstable();
        v
    };
    Ok(roots.into_iter().flat_map(|id| corp.subtree(id)).collect())
}

fn visible_parent(corp: &Corp, r: &Render, parent: u32) -> bool {
    corp.departments.contains_key(&parent) && r.scope.has_dept(parent)
}

/// In-scope members, stored spelling, in the given order.
fn visible_users<'c>(
    corp: &'c Corp,
    r: &Render,
    ids: impl IntoIterator<Item = &'c String>,
) -> Vec<&'c str> {
    ids.into_iter()
        .filter_map(|u| {
            let k = model::key(u);
            if !r.scope.has_user(&k) {
                return None;
            }
            corp.members.get(&k).map(|m| m.userid.as_str())
        })
        .collect()
}

fn dept_json(corp: &Corp, r: &Render, d: &Department) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "name_en": d.name_en,
        "department_leader": visible_users(corp, r, &d.leaders),
        "parentid": d.parentid,
        "order": d.order,
    })
}

/// The member object of §5.3 as this caller may see it.
fn member_json(corp: &Corp, r: &Render, m: &Member) -> Value {
    let mut o = Map::new();
    o.insert("userid".into(), m.userid.clone().into());
    o.insert("name".into(), m.name.clone().into());
    let depts: Vec<_> = m
        .departments
        .iter()
        .filter(|d| r.scope.has_dept(d.id) && corp.departments.contains_key(&d.id))
        .collect();
    o.insert(
        "department".into(),
        depts.iter().map(|d| d.id).collect::<Vec<_>>().into(),
    );
    o.insert(
        "order".into(),
        depts.iter().map(|d| d.order).collect::<Vec<_>>().into(),
    );
    o.insert(
        "is_leader_in_dept".into(),
        depts
            .iter()
            .map(|d| u8::from(d.leader))
            .collect::<Vec<_>>()
            .into(),
    );
    o.insert("position".into(), m.position.clone().into());
    // A scenario may leave main_department out: WeCom's default is the first department.
    if let Some(main) = m
        .main_department
        .or_else(|| m.departments.first().map(|d| d.id))
        .filter(|id| depts.iter().any(|d| d.id == *id))
    {
        o.insert("main_department".into(), main.into());
    }
    o.insert(
        "direct_leader".into(),
        visible_users(corp, r, &m.direct_leader).into(),
    );
    o.insert("telephone".into(), m.telephone.clone().into());
    o.insert("alias".into(), m.alias.clone().into());
    o.insert(
        "external_position".into(),
        m.external_position.clone().into(),
    );
    o.insert("status".into(), m.status.into());
    o.insert("extattr".into(), extattr_json(m));
    if let Some(p) = &m.external_profile {
        o.insert("external_profile".into(), p.clone());
    }
    if r.withhold {
        // Absent, or "" with `withheld_as_empty`; gender reads "0" either way (§5.3 rule).
        o.insert("gender".into(), "0".into());
        if r.as_empty {
            for f in [
                "mobile",
                "email",
                "biz_mail",
                "avatar",
                "thumb_avatar",
                "address",
                "qr_code",
            ] {
                o.insert(f.into(), "".into());
            }
        }
    } else {
        o.insert("gender".into(), m.gender.to_string().into());
        o.insert("mobile".into(), m.mobile.clone().into());
        o.insert("email".into(), m.email.clone().into());
        o.insert("biz_mail".into(), m.biz_mail.clone().into());
        o.insert("avatar".into(), m.avatar.clone().into());
        o.insert("thumb_avatar".into(), thumb_avatar(&m.avatar).into());
        o.insert("address".into(), m.address.clone().into());
        o.insert("qr_code".into(), m.qr_code.clone().into());
    }
    if let Some(p) = &r.provider {
        o.insert("open_userid".into(), corp.open_userid(p, &m.userid).into());
    }
    Value::Object(o)
}

/// WeCom's avatar URLs end in `/0` (full size); the thumbnail is the same URL ending `/100`.
fn thumb_avatar(avatar: &str) -> String {
    match avatar.strip_suffix("/0") {
        Some(base) => format!("{base}/100"),
        None => avatar.to_string(),
    }
}

fn extattr_json(m: &Member) -> Value {
    let attrs: Vec<Value> = m
        .extattr
        .iter()
        .map(|a| {
            if a.web_url.is_some() || a.web_title.is_some() {
                json!({"type": 1, "name": a.name, "web": {
                    "url": a.web_url.as_deref().unwrap_or(""),
                    "title": a.web_title.as_deref().unwrap_or(""),
                }})
            } else {
                json!({"type": 0, "name": a.name, "text": {"value": a.text.as_deref().unwrap_or("")}})
            }
        })
        .collect();
    json!({ "attrs": attrs })
}

pub fn department_list(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let id = opt_dept_param(call, "id")?;
    let (corp, r) = open(w, call)?;
    let list: Vec<Value> = listed_depts(corp, &r, id)?
        .into_iter()
        .filter_map(|id| corp.departments.get(&id))
        .map(|d| dept_json(corp, &r, d))
        .collect();
    Ok(json!({ "department": list }))
}

pub fn department_simplelist(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let id = opt_dept_param(call, "id")?;
    let (corp, r) = open(w, call)?;
    let list: Vec<Value> = listed_depts(corp, &r, id)?
        .into_iter()
        .filter_map(|id| corp.departments.get(&id))
        .map(|d| json!({"id": d.id, "parentid": d.parentid, "order": d.order}))
        .collect();
    Ok(json!({ "department_id": list }))
}

pub fn department_get(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let id = dept_param(call, "id")?;
    let (corp, r) = open(w, call)?;
    let d = visible_dept(corp, &r, id)?;
    Ok(json!({ "department": dept_json(corp, &r, d) }))
}

/// Userids are 1–64 bytes of letters, digits, `-`, `_`, `.` (§1); 40003 beyond that.
fn well_formed_userid(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub fn user_get(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let userid = call
        .q("userid")
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or(ApiErr::new(41009))?;
    let (corp, r) = open(w, call)?;
    let k = model::key(userid);
    let Some(m) = corp.members.get(&k) else {
        return Err(ApiErr::new(if well_formed_userid(userid) {
            60111
        } else {
            40003
        }));
    };
    if !r.scope.has_user(&k) {
        return Err(ApiErr::new(60011));
    }
    Ok(member_json(corp, &r, m))
}

/// Members of `department_id`: direct ones only, unless `honour_fetch_child` is on and the
/// caller sent `fetch_child=1` (§5.4 rule). Each member once, in key order per department.
fn listed_members<'c>(
    knobs: (bool, usize),
    corp: &'c Corp,
    r: &Render,
    call: &Call,
) -> Result<Vec<&'c Member>, ApiErr> {
    let (honour_fetch_child, max) = knobs;
    let id = dept_param(call, "department_id")?;
    visible_dept(corp, r, id)?;
    let recurse = honour_fetch_child && call.q("fetch_child").map(str::trim) == Some("1");
    let members: Vec<&Member> = if recurse {
        let mut seen = HashSet::new();
        corp.subtree(id)
            .into_iter()
            .flat_map(|d| corp.direct_members(d))
            .filter(|k| seen.insert(k.as_str()))
            .filter_map(|k| corp.members.get(k))
            .collect()
    } else {
        corp.direct_members(id)
            .filter_map(|k| corp.members.get(k))
            .collect()
    };
    if max > 0 && members.len() > max {
        return Err(ApiErr::new(45029));
    }
    Ok(members)
}

pub fn user_list(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let knobs = (w.settings.honour_fetch_child, w.settings.max_list_members);
    let (corp, r) = open(w, call)?;
    let list: Vec<Value> = listed_members(knobs, corp, &r, call)?
        .into_iter()
        .map(|m| member_json(corp, &r, m))
        .collect();
    Ok(json!({ "userlist": list }))
}

pub fn user_simplelist(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let knobs = (w.settings.honour_fetch_child, w.settings.max_list_members);
    let (corp, r) = open(w, call)?;
    let list: Vec<Value> = listed_members(knobs, corp, &r, call)?
        .into_iter()
        .map(|m| {
            let depts: Vec<u32> = m
                .departments
                .iter()
                .map(|d| d.id)
                .filter(|id| r.scope.has_dept(*id) && corp.departments.contains_key(id))
                .collect();
            let mut v = json!({"userid": m.userid, "name": m.name, "department": depts});
            if let (Some(p), Value::Object(o)) = (&r.provider, &mut v) {
                o.insert("open_userid".into(), corp.open_userid(p, &m.userid).into());
            }
            v
        })
        .collect();
    Ok(json!({ "userlist": list }))
}

/// Cursor prefix: lets the sim tell its own cursors from anything else (50100).
const CURSOR_TAG: &str = "wecom-sim/list_id/v1";

fn encode_cursor(key: &str, dept: u32) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_TAG}\n{dept}\n{key}"))
}

/// The (member key, department) of the last row a cursor names.
fn decode_cursor(cursor: &str) -> Option<(String, u32)> {
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.splitn(3, '\n');
    if parts.next()? != CURSOR_TAG {
        return None;
    }
    let dept = parts.next()?.parse().ok()?;
    let key = parts.next()?;
    (!key.is_empty()).then(|| (key.to_string(), dept))
}

/// `POST user/list_id` (§5.5 rule): one row per (user, department), ordered by (userid key,
/// department id), paged by a keyset cursor naming the last row returned, so pages stay
/// consistent while the org changes.
pub fn user_list_id(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let omit_last = w.settings.omit_last_cursor;
    if !call.body.is_object() {
        return Err(ApiErr::new(40058));
    }
    let limit = match call.body.get("limit") {
        None | Some(Value::Null) => 10_000,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or(ApiErr::new(40058))? as usize,
    };
    let after = match call.body.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(decode_cursor(s).ok_or(ApiErr::new(50100))?),
        Some(_) => return Err(ApiErr::new(50100)),
    };
    let (corp, r) = open(w, call)?;

    use std::ops::Bound;
    let start = match &after {
        Some((k, _)) => Bound::Included(k.clone()),
        None => Bound::Unbounded,
    };
    let mut rows = Vec::with_capacity(limit.min(corp.members.len() * 2));
    let mut last: Option<(&str, u32)> = None;
    let mut more = false;
    let mut depts: Vec<u32> = Vec::new();
    'members: for (k, m) in corp.members.range::<String, _>((start, Bound::Unbounded)) {
        if !r.scope.has_user(k) {
            continue;
        }
        depts.clear();
        depts.extend(
            m.departments
                .iter()
                .map(|d| d.id)
                .filter(|id| r.scope.has_dept(*id) && corp.departments.contains_key(id)),
        );
        depts.sort_unstable();
        depts.dedup();
        for &d in &depts {
            if let Some((ak, ad)) = &after {
                if k == ak && d <= *ad {
                    continue;
                }
            }
            if rows.len() == limit {
                more = true;
                break 'members;
            }
            rows.push(json!({"userid": m.userid, "department": d}));
            last = Some((k.as_str(), d));
        }
    }
    let mut out = json!({ "dept_user": rows });
    let next = match (more, last) {
        (true, Some((k, d))) => Some(encode_cursor(k, d)),
        _ if omit_last => None,
        _ => Some(String::new()),
    };
    if let (Some(n), Value::Object(o)) = (next, &mut out) {
        o.insert("next_cursor".into(), n.into());
    }
    Ok(out)
}

pub fn tag_list(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let corp = w.corps.get(&call.corp).ok_or(ApiErr::new(40014))?;
    // Self-built apps and contact-sync see every tag (§4.2); provider apps see only the
    // tags they created, and the sim models no tag as created by a provider.
    let list: Vec<Value> = match call.owner() {
        Owner::Provider { .. } => Vec::new(),
        _ => corp
            .tags
            .values()
            .map(|t| json!({"tagid": t.id, "tagname": t.name}))
            .collect(),
    };
    Ok(json!({ "taglist": list }))
}

pub fn tag_get(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let tagid = call
        .q("tagid")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(ApiErr::new(40063))?
        .parse::<u32>()
        .map_err(|_| ApiErr::new(40068))?;
    let (corp, r) = open(w, call)?;
    let tag = corp.tags.get(&tagid).ok_or(ApiErr::new(40068))?;
    // Any tag may be read; its members and departments are cut to the scope (§4.2, §17 #14).
    let users: Vec<Value> = tag
        .users
        .iter()
        .filter(|k| r.scope.has_user(k))
        .filter_map(|k| corp.members.get(k))
        .map(|m| {
            let mut v = json!({"userid": m.userid, "name": m.name});
            if let (Some(p), Value::Object(o)) = (&r.provider, &mut v) {
                o.insert("open_userid".into(), corp.open_userid(p, &m.userid).into());
            }
            v
        })
        .collect();
    let parties: Vec<u32> = tag
        .parties
        .iter()
        .copied()
        .filter(|id| r.scope.has_dept(*id) && corp.departments.contains_key(id))
        .collect();
    Ok(json!({"tagname": tag.name, "userlist": users, "partylist": parties}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_foreign_cursors() {
        let c = encode_cursor("zhang.san", 42);
        assert_eq!(decode_cursor(&c), Some(("zhang.san".into(), 42)));
        assert_eq!(decode_cursor("aGVsbG8"), None);
        assert_eq!(decode_cursor("!!!"), None);
    }

    #[test]
    fn thumb_from_avatar() {
        assert_eq!(
            thumb_avatar("https://wework.qpic.cn/wwhead/x/0"),
            "https://wework.qpic.cn/wwhead/x/100"
        );
        assert_eq!(thumb_avatar(""), "");
    }
}
