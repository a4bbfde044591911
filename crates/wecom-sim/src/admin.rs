//! The simulator's admin API under `/sim/admin`, for tests and demos: edit the org, the apps
//! and the settings at runtime, inject faults, move the clock, read counters and callback
//! deliveries, and dump the world as a scenario.
//!
//! JSON in, JSON out. Bad input gets a 4xx with `{"error": "<reason>"}` and changes nothing:
//! 400 malformed or invalid body, 404 unknown corp/object/path, 405 wrong method, 409 a
//! conflict (duplicate id, secret or name; a department still holding members), 422 a
//! callback URL that failed WeCom's verification handshake. Creations answer 201, the
//! rest 200. `{corpid}` is case-insensitive. Bodies reject unknown fields.
//!
//! Directory edits queue change_contact callbacks (wecom-api.md §13) exactly as WeCom
//! would for an admin's console edit; app scope changes send none (§17 #47).
//!
//! ```text
//! GET    /corps                                   → [{corpid, name, contact_sync_secret, apps:[{agentid,name,secret}],
//!                                                     provider_apps:[{agentid,provider_id,kind}], outsiders:[openid]}]
//! GET    /scenario[?format=toml]                  → the whole world as a scenario ({settings, corp:[…]}, or TOML text)
//!
//! POST   /corps/{corpid}/departments              {id, name, parentid, name_en?, order?, leaders?:[userid]} → 201 department
//! PATCH  /corps/{corpid}/departments/{id}         {name?, name_en?, parentid?, order?, leaders?}            → department
//! DELETE /corps/{corpid}/departments/{id}         (409 while it has sub-departments or members)             → department
//!
//! GET    /corps/{corpid}/members/{userid}                                                          → member
//! POST   /corps/{corpid}/members                  member object (below)                            → 201 member
//! PATCH  /corps/{corpid}/members/{userid}         any member fields, plus new_userid to rename     → member
//! DELETE /corps/{corpid}/members/{userid}                                                          → member
//!
//! POST   /corps/{corpid}/tags                     {id, name, users?:[userid], parties?:[id]}         → 201 tag
//! PATCH  /corps/{corpid}/tags/{id}                {name?, users?, parties?, add_users?, remove_users?,
//!                                                  add_parties?, remove_parties?}                    → tag
//! DELETE /corps/{corpid}/tags/{id}                                                                   → tag
//!
//! POST   /corps/{corpid}/apps                     app object (below)                                 → 201 app
//! GET    /corps/{corpid}/apps/{agentid}                                                              → app
//! PATCH  /corps/{corpid}/apps/{agentid}           {name?, description?, square_logo_url?, redirect_domain?,
//!                                                  web_login_domain?, home_url?, trusted_ips?:[ip], close?:bool|0|1,
//!                                                  post_2022?, secret?, reset_secret?:true,
//!                                                  callback?:{url,token,encoding_aes_key}|null,
//!                                                  report_location_flag?, isreportenter?, privateinfo_fields?} → app
//! DELETE /corps/{corpid}/apps/{agentid}           (revokes its tokens)                               → app
//! PUT    /corps/{corpid}/apps/{agentid}/scope     {users?:[userid], parties?:[id], tags?:[id]}       → app
//!
//! POST   /corps/{corpid}/outsiders                {openid}                                           → 201 {outsiders:[…]}
//! DELETE /corps/{corpid}/outsiders/{openid}                                                          → {outsiders:[…]}
//!
//! POST   /corps/{corpid}/provider_apps            {agentid, provider_id, kind:"third_party"|"dai_kai_fa",
//!                                                  scope?:{users,parties,tags}}                      → 201 provider app
//! PUT    /corps/{corpid}/provider_apps/{agentid}/scope  {users?, parties?, tags?}                    → provider app
//! DELETE /corps/{corpid}/provider_apps/{agentid}  (revokes its tokens)                               → provider app
//! POST   /corps/{corpid}/provider_apps/{agentid}/token                  → {access_token, expires_in} (as gettoken)
//!
//! POST   /corps/{corpid}/tokens/invalidate        {} all | {agentid} | {contact_sync:true} | {access_token}
//!                                                                                                    → {revoked: n}
//! GET    /faults                                  → {faults:[{path, errcode, remaining, corp}]}
//! POST   /faults                                  {path:"user/list"|"*", errcode, count?:1, corp?}   → 201 {faults}
//!                                                 or {path, kind:"truncated_json", count?, corp?}: the answer's
//!                                                 JSON cut in half (HTTP 200), as a broken proxy would
//! DELETE /faults                                  → {faults:[]}
//! GET    /latencies                               → {latencies:[{path, ms}]}
//! POST   /latencies                               {path|"*", ms} (replaces the path's entry)         → 201 {latencies}
//! DELETE /latencies                               → {latencies:[]}
//! GET    /clock                                   → {now_ms, offset_ms}
//! POST   /clock/advance                           {secs} | {ms}                                      → {now_ms, offset_ms}
//! GET    /settings                                → Settings
//! PATCH  /settings                                partial Settings, e.g. {"per_corp_api_per_min":50} → Settings
//! GET    /counters                                → {counters:{"user/list":n,…}, total}
//! DELETE /counters                                → {counters:{}, total:0}
//! GET    /deliveries                              → {deliveries:[{corp, agentid, url, change_type, attempt,
//!                                                     status, error, at_ms, fault}]}
//! DELETE /deliveries                              → {deliveries:[]}
//! POST   /deliveries/flush                        waits (≤ 10 s) until queued callbacks are delivered or given up
//!                                                 → {deliveries:[…], pending: n}
//! GET    /callback_faults                         → {callback_faults:[{kind, agentid, corp}]}
//! POST   /callback_faults                         {kind:"bad_signature"|"wrong_receive_id"|"truncated_base64"|
//!                                                  "padding_zero"|"padding_33"|"drop", agentid?, corp?}
//!                                                 (applies to the next matching event) → 201 {callback_faults}
//! DELETE /callback_faults                         → {callback_faults:[]}
//! ```
//!
//! Member object (the scenario format): `{userid, name, departments:[{id, order?, leader?}] or [id],
//! main_department?, position?, mobile?, gender?:0|1|2, email?, biz_mail?, avatar?, telephone?,
//! alias?, address?, qr_code?, external_position?, direct_leader?:[userid],
//! extattr?:[{name, text?} | {name, web_url?, web_title?}], status?:1|2|4|5, external_profile?}`.
//! Tags answer `users` as lower-cased userids (their look-up keys).
//!
//! App object: `{agentid, name, secret, description?, square_logo_url?, scope?:{users,parties,tags},
//! close?, redirect_domain?, web_login_domain?, home_url?, trusted_ips?, post_2022?:true,
//! callback?, privateinfo_fields?, report_location_flag?, isreportenter?}`.

use crate::callbacks::{self, CallbackFault, Change};
use crate::model::{
    self, App, CallbackConfig, Corp, Department, Member, ProviderApp, Scope, Tag, SENSITIVE_FIELDS,
};
use crate::scenario::{CorpSpec, Scenario};
use crate::settings::Settings;
use crate::world::{random_alnum, Fault, Latency, Owner, World};
use crate::Sim;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/corps", get(list_corps))
        .route("/scenario", get(dump_scenario))
        .route("/corps/{corpid}/departments", post(create_department))
        .route(
            "/corps/{corpid}/departments/{id}",
            axum::routing::patch(update_department).delete(delete_department),
        )
        .route("/corps/{corpid}/members", post(create_member))
        .route(
            "/corps/{corpid}/members/{userid}",
            get(get_member).patch(update_member).delete(delete_member),
        )
        .route("/corps/{corpid}/tags", post(create_tag))
        .route(
            "/corps/{corpid}/tags/{id}",
            axum::routing::patch(update_tag).delete(delete_tag),
        )
        .route("/corps/{corpid}/apps", post(create_app))
        .route(
            "/corps/{corpid}/apps/{agentid}",
            get(get_app).patch(update_app).delete(delete_app),
        )
        .route("/corps/{corpid}/apps/{agentid}/scope", put(set_app_scope))
        .route("/corps/{corpid}/outsiders", post(add_outsider))
        .route(
            "/corps/{corpid}/outsiders/{openid}",
            axum::routing::delete(remove_outsider),
        )
        .route("/corps/{corpid}/provider_apps", post(add_provider_app))
        .route(
            "/corps/{corpid}/provider_apps/{agentid}",
            axum::routing::delete(remove_provider_app),
        )
        .route(
            "/corps/{corpid}/provider_apps/{agentid}/scope",
            put(set_provider_scope),
        )
        .route(
            "/corps/{corpid}/provider_apps/{agentid}/token",
            post(provider_token),
        )
        .route("/corps/{corpid}/tokens/invalidate", post(invalidate_tokens))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route(
            "/latencies",
            get(list_latencies)
                .post(add_latency)
                .delete(clear_latencies),
        )
        .route("/clock", get(get_clock))
        .route("/clock/advance", post(advance_clock))
        .route("/settings", get(get_settings).patch(patch_settings))
        .route("/counters", get(get_counters).delete(reset_counters))
        .route("/deliveries", get(get_deliveries).delete(clear_deliveries))
        .route("/deliveries/flush", post(flush_deliveries))
        .route(
            "/callback_faults",
            get(list_callback_faults)
                .post(add_callback_fault)
                .delete(clear_callback_faults),
        )
        .fallback(|| async { AdminErr::new(StatusCode::NOT_FOUND, "no such admin endpoint") })
        .method_not_allowed_fallback(|| async {
            AdminErr::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
}

// ---------------------------------------------------------------------------------------
// Errors and body parsing

/// A 4xx answer `{"error": "..."}`.
#[derive(Debug)]
pub struct AdminErr {
    status: StatusCode,
    message: String,
}

impl AdminErr {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AdminErr {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for AdminErr {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> AdminErr {
    AdminErr::new(StatusCode::BAD_REQUEST, msg)
}

fn not_found(msg: impl Into<String>) -> AdminErr {
    AdminErr::new(StatusCode::NOT_FOUND, msg)
}

fn conflict(msg: impl Into<String>) -> AdminErr {
    AdminErr::new(StatusCode::CONFLICT, msg)
}

type AResult = Result<Response, AdminErr>;

fn ok(v: impl serde::Serialize) -> AResult {
    Ok(Json(v).into_response())
}

fn created(v: impl serde::Serialize) -> AResult {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// The body as a JSON object; an empty body is `{}`.
fn body_object(body: &Bytes) -> Result<Map<String, Value>, AdminErr> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(format!("invalid JSON: {e}"))),
    }
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, AdminErr> {
    from_object(body_object(body)?)
}

fn from_object<T: DeserializeOwned>(m: Map<String, Value>) -> Result<T, AdminErr> {
    serde_json::from_value(Value::Object(m)).map_err(|e| bad(format!("invalid body: {e}")))
}

/// For types that accept unknown fields (the scenario structs): refuse them here, so a
/// typo is an error instead of a silent no-op.
fn only_fields(m: &Map<String, Value>, allowed: &[&str]) -> Result<(), AdminErr> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(format!(
            "unknown field `{k}`, expected one of {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn parse_u32(what: &str, v: &str) -> Result<u32, AdminErr> {
    v.trim()
        .parse()
        .map_err(|_| bad(format!("{what} must be a non-negative integer, got {v:?}")))
}

/// Distinguishes `"field": null` (Some(None)) from an absent field (None).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `true`/`false` or WeCom's `1`/`0`.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Int(u8),
}

impl Flag {
    fn get(self, what: &str) -> Result<bool, AdminErr> {
        match self {
            Flag::Bool(b) => Ok(b),
            Flag::Int(0) => Ok(false),
            Flag::Int(1) => Ok(true),
            Flag::Int(n) => Err(bad(format!("{what} must be true, false, 0 or 1, got {n}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Locking helpers

fn corp_key(w: &World, corpid: &str) -> Result<String, AdminErr> {
    let k = corpid.to_ascii_lowercase();
    if w.corps.contains_key(&k) {
        Ok(k)
    } else {
        Err(not_found(format!("no corp {corpid}")))
    }
}

fn corp_mut<'w>(w: &'w mut World, corpid: &str) -> Result<&'w mut Corp, AdminErr> {
    w.corps
        .get_mut(&corpid.to_ascii_lowercase())
        .ok_or_else(|| not_found(format!("no corp {corpid}")))
}

/// Runs a directory edit the way WeCom does: scopes snapshotted before, change_contact
/// queued after, the delivery worker woken once the lock is released. `f` validates
/// everything before it mutates, so a refused edit changes nothing.
fn directory_edit<R>(
    sim: &Sim,
    corpid: &str,
    f: impl FnOnce(&mut Corp) -> Result<(R, Change), AdminErr>,
) -> Result<R, AdminErr> {
    let r = {
        let mut w = sim.world();
        let key = corp_key(&w, corpid)?;
        let before = callbacks::snapshot_scopes(&mut w, &key);
        let corp = corp_mut(&mut w, &key)?;
        let (r, change) = f(corp)?;
        callbacks::emit(&mut w, &key, change, before);
        r
    };
    sim.kick_outbox();
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Overview and scenario dump

async fn list_corps(State(sim): State<Sim>) -> AResult {
    let w = sim.world();
    let corps: Vec<Value> = w
        .corps
        .values()
        .map(|c| {
            json!({
                "corpid": c.corpid,
                "name": c.name,
                "contact_sync_secret": c.contact_sync_secret,
                "apps": c.apps.values().map(|a| json!({
                    "agentid": a.agentid, "name": a.name, "secret": a.secret,
                })).collect::<Vec<_>>(),
                "provider_apps": c.provider_apps.values().map(|p| json!({
                    "agentid": p.agentid, "provider_id": p.provider_id, "kind": p.kind,
                })).collect::<Vec<_>>(),
                "outsiders": c.outsiders,
            })
        })
        .collect();
    ok(corps)
}

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

async fn dump_scenario(State(sim): State<Sim>, Query(q): Query<FormatQuery>) -> AResult {
    let scenario = {
        let w = sim.world();
        Scenario {
            settings: w.settings.clone(),
            corps: w.corps.values().map(CorpSpec::from_corp).collect(),
        }
    };
    match q.format.as_deref() {
        None | Some("json") => ok(scenario),
        Some("toml") => {
            let text = scenario.to_toml().map_err(|e| {
                AdminErr::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot write TOML: {e}"),
                )
            })?;
            Ok((
                [(header::CONTENT_TYPE, "application/toml; charset=utf-8")],
                text,
            )
                .into_response())
        }
        Some(other) => Err(bad(format!("format must be json or toml, got {other:?}"))),
    }
}

// ---------------------------------------------------------------------------------------
// Departments

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeptCreate {
    id: u32,
    name: String,
    parentid: u32,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    order: u32,
    #[serde(default)]
    leaders: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeptPatch {
    name: Option<String>,
    name_en: Option<String>,
    parentid: Option<u32>,
    order: Option<u32>,
    leaders: Option<Vec<String>>,
}

/// Leaders must be members; answers them in stored spelling.
fn member_list(corp: &Corp, what: &str, ids: &[String]) -> Result<Vec<String>, AdminErr> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for u in ids {
        let m = corp
            .member(u)
            .ok_or_else(|| bad(format!("{what}: no member {u}")))?;
        if !out.iter().any(|x| model::key(x) == model::key(&m.userid)) {
            out.push(m.userid.clone());
        }
    }
    Ok(out)
}

fn check_dept_name(name: &str) -> Result<(), AdminErr> {
    if name.trim().is_empty() || name.chars().count() > 64 {
        return Err(bad("department name must be 1–64 characters"));
    }
    Ok(())
}

async fn create_department(
    State(sim): State<Sim>,
    Path(corpid): Path<String>,
    body: Bytes,
) -> AResult {
    let req: DeptCreate = parse_body(&body)?;
    let dept = directory_edit(&sim, &corpid, |corp| {
        if req.id == 0 {
            return Err(bad("department id must be at least 1"));
        }
        if corp.departments.contains_key(&req.id) {
            return Err(conflict(format!("department {} exists", req.id)));
        }
        check_dept_name(&req.name)?;
        if req.parentid == 0 {
            // Only the root hangs off 0, and a corp has one root.
            if corp.departments.values().any(|d| d.parentid == 0) {
                return Err(bad("parentid 0 is the root's; the corp already has a root"));
            }
        } else if !corp.departments.contains_key(&req.parentid) {
            return Err(bad(format!("no parent department {}", req.parentid)));
        }
        let d = Department {
            id: req.id,
            name: req.name,
            name_en: req.name_en,
            parentid: req.parentid,
            order: req.order,
            leaders: member_list(corp, "leaders", &req.leaders)?,
        };
        corp.upsert_department(d.clone());
        Ok((
            d.clone(),
            Change::Party {
                before: None,
                after: Some(d),
            },
        ))
    })?;
    created(dept)
}

async fn update_department(
    State(sim): State<Sim>,
    Path((corpid, id)): Path<(String, String)>,
    body: Bytes,
) -> AResult {
    let id = parse_u32("department id", &id)?;
    let req: DeptPatch = parse_body(&body)?;
    let dept = directory_edit(&sim, &corpid, |corp| {
        let old = corp
            .departments
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(format!("no department {id}")))?;
        let mut d = old.clone();
        if let Some(name) = req.name {
            check_dept_name(&name)?;
            d.name = name;
        }
        if let Some(n) = req.name_en {
            d.name_en = n;
        }
        if let Some(o) = req.order {
            d.order = o;
        }
        if let Some(l) = &req.leaders {
            d.leaders = member_list(corp, "leaders", l)?;
        }
        if let Some(p) = req.parentid.filter(|p| *p != old.parentid) {
            if p == 0 || old.parentid == 0 {
                return Err(bad("the root stays the root"));
            }
            if !corp.departments.contains_key(&p) {
                return Err(bad(format!("no parent department {p}")));
            }
            if corp.subtree(id).contains(&p) {
                return Err(bad(format!(
                    "department {p} is inside {id}; moving would make a cycle"
                )));
            }
            d.parentid = p;
        }
        corp.upsert_department(d.clone());
        Ok((
            d.clone(),
            Change::Party {
                before: Some(old),
                after: Some(d),
            },
        ))
    })?;
    ok(dept)
}

async fn delete_department(
    State(sim): State<Sim>,
    Path((corpid, id)): Path<(String, String)>,
) -> AResult {
    let id = parse_u32("department id", &id)?;
    let dept = directory_edit(&sim, &corpid, |corp| {
        if !corp.departments.contains_key(&id) {
            return Err(not_found(format!("no department {id}")));
        }
        // WeCom refuses these too (60005/60006): empty the department first.
        if corp.children(id).next().is_some() {
            return Err(conflict(format!("department {id} has sub-departments")));
        }
        if corp.direct_members(id).next().is_some() {
            return Err(conflict(format!("department {id} has members")));
        }
        let d = corp
            .remove_department(id)
            .ok_or_else(|| not_found(format!("no department {id}")))?;
        Ok((
            d.clone(),
            Change::Party {
                before: Some(d),
                after: None,
            },
        ))
    })?;
    ok(dept)
}

// ---------------------------------------------------------------------------------------
// Members

const MEMBER_FIELDS: &[&str] = &[
    "userid",
    "name",
    "departments",
    "main_department",
    "position",
    "mobile",
    "gender",
    "email",
    "biz_mail",
    "avatar",
    "telephone",
    "alias",
    "address",
    "qr_code",
    "external_position",
    "direct_leader",
    "extattr",
    "status",
    "external_profile",
];

/// Userids are 1–64 bytes of letters, digits, `-`, `_`, `.` (wecom-api.md §1).
fn valid_userid(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Accepts `departments: [2, 5]` as shorthand for `[{"id": 2}, {"id": 5}]`.
fn expand_departments(m: &mut Map<String, Value>) {
    if let Some(Value::Array(list)) = m.get_mut("departments") {
        for d in list.iter_mut() {
            if d.is_number() {
                *d = json!({ "id": d.clone() });
            }
        }
    }
}

/// Validates a member about to be stored under its own key, and normalises it (main
/// department defaults to the first, leaders in stored spelling).
fn check_member(corp: &Corp, m: &mut Member) -> Result<(), AdminErr> {
    if !valid_userid(&m.userid) {
        return Err(bad(format!(
            "userid {:?} must be 1–64 bytes of letters, digits, '-', '_', '.'",
            m.userid
        )));
    }
    if m.name.trim().is_empty() {
        return Err(bad("name must not be empty"));
    }
    if m.departments.len() > 20 {
        return Err(bad("a member is in at most 20 departments"));
    }
    let mut seen = BTreeSet::new();
    for d in &m.departments {
        if !corp.departments.contains_key(&d.id) {
            return Err(bad(format!("no department {}", d.id)));
        }
        if !seen.insert(d.id) {
            return Err(bad(format!("department {} listed twice", d.id)));
        }
    }
    match m.main_department {
        None => m.main_department = m.departments.first().map(|d| d.id),
        Some(id) if !seen.contains(&id) => {
            return Err(bad(format!(
                "main_department {id} is not one of the member's departments"
            )))
        }
        Some(_) => {}
    }
    if !matches!(m.status, 1 | 2 | 4 | 5) {
        return Err(bad("status must be 1, 2, 4 or 5"));
    }
    if m.gender > 2 {
        return Err(bad("gender must be 0, 1 or 2"));
    }
    if m.direct_leader.len() > 5 {
        return Err(bad("at most 5 direct leaders"));
    }
    let self_key = model::key(&m.userid);
    if m.direct_leader.iter().any(|u| model::key(u) == self_key) {
        return Err(bad("a member cannot be their own direct leader"));
    }
    m.direct_leader = member_list(corp, "direct_leader", &m.direct_leader)?;
    if m.extattr.iter().any(|a| a.name.trim().is_empty()) {
        return Err(bad("every extattr needs a name"));
    }
    Ok(())
}

async fn get_member(
    State(sim): State<Sim>,
    Path((corpid, userid)): Path<(String, String)>,
) -> AResult {
    let w = sim.world();
    let corp = w
        .corp(&corpid)
        .ok_or_else(|| not_found(format!("no corp {corpid}")))?;
    let m = corp
        .member(&userid)
        .ok_or_else(|| not_found(format!("no member {userid}")))?;
    ok(m)
}

async fn create_member(State(sim): State<Sim>, Path(corpid): Path<String>, body: Bytes) -> AResult {
    let mut obj = body_object(&body)?;
    only_fields(&obj, MEMBER_FIELDS)?;
    expand_departments(&mut obj);
    let mut m: Member = from_object(obj)?;
    let member = directory_edit(&sim, &corpid, |corp| {
        if corp.member(&m.userid).is_some() {
            return Err(conflict(format!("member {} exists", m.userid)));
        }
        check_member(corp, &mut m)?;
        corp.upsert_member(m.clone());
        Ok((
            m.clone(),
            Change::User {
                before: None,
                after: Some(m),
            },
        ))
    })?;
    created(member)
}

async fn update_member(
    State(sim): State<Sim>,
    Path((corpid, userid)): Path<(String, String)>,
    body: Bytes,
) -> AResult {
    let mut patch = body_object(&body)?;
    let mut allowed = MEMBER_FIELDS.to_vec();
    allowed.push("new_userid");
    only_fields(&patch, &allowed)?;
    let new_userid = match patch.remove("new_userid") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad("new_userid must be a string")),
    };
    if patch.contains_key("userid") {
        return Err(bad("to change a userid send new_userid"));
    }
    expand_departments(&mut patch);
    let patch_sets_main = patch.contains_key("main_department");
    let member = directory_edit(&sim, &corpid, |corp| {
        let old = corp
            .member(&userid)
            .cloned()
            .ok_or_else(|| not_found(format!("no member {userid}")))?;
        let mut merged = match serde_json::to_value(&old) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        merged.extend(patch);
        let mut m: Member = from_object(merged)?;
        // New departments without a main one: the old main department goes if it is no
        // longer among them (check_member then takes the first).
        if !patch_sets_main
            && m.main_department
                .is_some_and(|id| !m.departments.iter().any(|d| d.id == id))
        {
            m.main_department = None;
        }
        if let Some(n) = &new_userid {
            let taken = corp
                .member(n)
                .is_some_and(|x| model::key(&x.userid) != model::key(&old.userid));
            if taken {
                return Err(conflict(format!("member {n} exists")));
            }
            m.userid = n.clone();
        }
        check_member(corp, &mut m)?;
        if m.userid != old.userid {
            // Moves tag memberships, scopes and leader references to the new id.
            corp.rename_member(&old.userid, &m.userid);
        }
        corp.upsert_member(m.clone());
        Ok((
            m.clone(),
            Change::User {
                before: Some(old),
                after: Some(m),
            },
        ))
    })?;
    ok(member)
}

async fn delete_member(
    State(sim): State<Sim>,
    Path((corpid, userid)): Path<(String, String)>,
) -> AResult {
    let member = directory_edit(&sim, &corpid, |corp| {
        let m = corp
            .remove_member(&userid)
            .ok_or_else(|| not_found(format!("no member {userid}")))?;
        // Nobody reports to a deleted member any more.
        let k = model::key(&m.userid);
        let reports: Vec<Member> = corp
            .members
            .values()
            .filter(|o| o.direct_leader.iter().any(|u| model::key(u) == k))
            .cloned()
            .collect();
        for mut o in reports {
            o.direct_leader.retain(|u| model::key(u) != k);
            corp.upsert_member(o);
        }
        Ok((
            m.clone(),
            Change::User {
                before: Some(m),
                after: None,
            },
        ))
    })?;
    ok(member)
}

// ---------------------------------------------------------------------------------------
// Tags

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagCreate {
    id: u32,
    name: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    parties: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagPatch {
    name: Option<String>,
    users: Option<Vec<String>>,
    parties: Option<Vec<u32>>,
    #[serde(default)]
    add_users: Vec<String>,
    #[serde(default)]
    remove_users: Vec<String>,
    #[serde(default)]
    add_parties: Vec<u32>,
    #[serde(default)]
    remove_parties: Vec<u32>,
}

fn check_tag_name(corp: &Corp, id: u32, name: &str) -> Result<(), AdminErr> {
    if name.trim().is_empty() || name.chars().count() > 32 {
        return Err(bad("tag name must be 1–32 characters"));
    }
    if corp.tags.values().any(|t| t.id != id && t.name == name) {
        return Err(conflict(format!("another tag is named {name:?}")));
    }
    Ok(())
}

fn user_keys(corp: &Corp, ids: &[String]) -> Result<Vec<String>, AdminErr> {
    ids.iter()
        .map(|u| {
            corp.member(u)
                .map(|m| model::key(&m.userid))
                .ok_or_else(|| bad(format!("no member {u}")))
        })
        .collect()
}

fn dept_ids(corp: &Corp, ids: &[u32]) -> Result<Vec<u32>, AdminErr> {
    match ids.iter().find(|d| !corp.departments.contains_key(d)) {
        Some(d) => Err(bad(format!("no department {d}"))),
        None => Ok(ids.to_vec()),
    }
}

async fn create_tag(State(sim): State<Sim>, Path(corpid): Path<String>, body: Bytes) -> AResult {
    let req: TagCreate = parse_body(&body)?;
    let tag = directory_edit(&sim, &corpid, |corp| {
        if req.id == 0 {
            return Err(bad("tag id must be at least 1"));
        }
        if corp.tags.contains_key(&req.id) {
            return Err(conflict(format!("tag {} exists", req.id)));
        }
        check_tag_name(corp, req.id, &req.name)?;
        let t = Tag {
            id: req.id,
            name: req.name,
            users: user_keys(corp, &req.users)?.into_iter().collect(),
            parties: dept_ids(corp, &req.parties)?.into_iter().collect(),
        };
        corp.upsert_tag(t.clone());
        Ok((
            t.clone(),
            Change::Tag {
                before: None,
                after: Some(t),
            },
        ))
    })?;
    created(tag)
}

async fn update_tag(
    State(sim): State<Sim>,
    Path((corpid, id)): Path<(String, String)>,
    body: Bytes,
) -> AResult {
    let id = parse_u32("tag id", &id)?;
    let req: TagPatch = parse_body(&body)?;
    let tag = directory_edit(&sim, &corpid, |corp| {
        let old = corp
            .tags
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(format!("no tag {id}")))?;
        let mut t = old.clone();
        if let Some(n) = req.name {
            check_tag_name(corp, id, &n)?;
            t.name = n;
        }
        if let Some(u) = &req.users {
            t.users = user_keys(corp, u)?.into_iter().collect();
        }
        if let Some(p) = &req.parties {
            t.parties = dept_ids(corp, p)?.into_iter().collect();
        }
        t.users.extend(user_keys(corp, &req.add_users)?);
        t.parties.extend(dept_ids(corp, &req.add_parties)?);
        // Removing someone who is not there is not an error (WeCom ignores it too).
        for u in &req.remove_users {
            t.users.remove(&model::key(u));
        }
        for p in &req.remove_parties {
            t.parties.remove(p);
        }
        corp.upsert_tag(t.clone());
        Ok((
            t.clone(),
            Change::Tag {
                before: Some(old),
                after: Some(t),
            },
        ))
    })?;
    ok(tag)
}

async fn delete_tag(State(sim): State<Sim>, Path((corpid, id)): Path<(String, String)>) -> AResult {
    let id = parse_u32("tag id", &id)?;
    let tag = directory_edit(&sim, &corpid, |corp| {
        let t = corp
            .remove_tag(id)
            .ok_or_else(|| not_found(format!("no tag {id}")))?;
        Ok((
            t.clone(),
            Change::Tag {
                before: Some(t),
                after: None,
            },
        ))
    })?;
    ok(tag)
}

// ---------------------------------------------------------------------------------------
// Apps

const APP_FIELDS: &[&str] = &[
    "agentid",
    "name",
    "secret",
    "description",
    "square_logo_url",
    "scope",
    "close",
    "redirect_domain",
    "web_login_domain",
    "home_url",
    "trusted_ips",
    "post_2022",
    "callback",
    "privateinfo_fields",
    "report_location_flag",
    "isreportenter",
];

#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct AppPatch {
    name: Option<String>,
    description: Option<String>,
    square_logo_url: Option<String>,
    redirect_domain: Option<String>,
    web_login_domain: Option<String>,
    home_url: Option<String>,
    trusted_ips: Option<Vec<String>>,
    close: Option<Flag>,
    post_2022: Option<bool>,
    secret: Option<String>,
    #[serde(default)]
    reset_secret: bool,
    #[serde(default, deserialize_with = "nullable")]
    callback: Option<Option<CallbackConfig>>,
    report_location_flag: Option<u8>,
    isreportenter: Option<u8>,
    privateinfo_fields: Option<Vec<String>>,
}

impl AppPatch {
    fn apply(&self, app: &mut App) -> Result<(), AdminErr> {
        let s = |v: &Option<String>, into: &mut String| {
            if let Some(v) = v {
                *into = v.clone();
            }
        };
        s(&self.name, &mut app.name);
        s(&self.description, &mut app.description);
        s(&self.square_logo_url, &mut app.square_logo_url);
        s(&self.redirect_domain, &mut app.redirect_domain);
        s(&self.web_login_domain, &mut app.web_login_domain);
        s(&self.home_url, &mut app.home_url);
        s(&self.secret, &mut app.secret);
        if let Some(ips) = &self.trusted_ips {
            app.trusted_ips = ips.clone();
        }
        if let Some(c) = self.close {
            app.close = c.get("close")?;
        }
        if let Some(p) = self.post_2022 {
            app.post_2022 = p;
        }
        if let Some(cb) = &self.callback {
            app.callback = cb.clone();
        }
        if let Some(f) = self.report_location_flag {
            app.report_location_flag = f;
        }
        if let Some(f) = self.isreportenter {
            app.isreportenter = f;
        }
        if let Some(f) = &self.privateinfo_fields {
            app.privateinfo_fields = f.clone();
        }
        Ok(())
    }
}

/// `host` or `host:port`, no scheme or path (how the console takes trusted domains).
fn valid_domain(d: &str) -> bool {
    if d.is_empty() {
        return true;
    }
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
}

fn check_callback(cb: &CallbackConfig) -> Result<(), AdminErr> {
    if !(cb.url.starts_with("http://") || cb.url.starts_with("https://")) {
        return Err(bad("callback url must start with http:// or https://"));
    }
    let tok = &cb.token;
    if !(3..=32).contains(&tok.len()) || !tok.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad("callback token must be 3–32 letters or digits"));
    }
    let key = &cb.encoding_aes_key;
    if key.len() != 43 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad("encoding_aes_key must be 43 letters or digits"));
    }
    Ok(())
}

/// Validates an app about to be stored (as new, or replacing `agentid`'s), normalising its
/// trusted IPs and scope.
fn check_app(corp: &Corp, app: &mut App) -> Result<(), AdminErr> {
    if app.agentid == 0 {
        return Err(bad("agentid must be at least 1"));
    }
    if app.name.trim().is_empty() {
        return Err(bad("app name must not be empty"));
    }
    if app.secret.is_empty() {
        return Err(bad("secret must not be empty"));
    }
    let clash = corp
        .apps
        .values()
        .any(|a| a.agentid != app.agentid && a.secret == app.secret)
        || corp.contact_sync_secret.as_deref() == Some(app.secret.as_str());
    if clash {
        return Err(conflict("another app of the corp uses this secret"));
    }
    for (what, d) in [
        ("redirect_domain", &app.redirect_domain),
        ("web_login_domain", &app.web_login_domain),
    ] {
        if !valid_domain(d) {
            return Err(bad(format!(
                "{what} must be host or host:port without scheme or path, got {d:?}"
            )));
        }
    }
    let h = &app.home_url;
    if !(h.is_empty() || h.starts_with("http://") || h.starts_with("https://")) {
        return Err(bad("home_url must start with http:// or https://"));
    }
    let mut ips = Vec::new();
    for ip in &app.trusted_ips {
        let parsed: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| bad(format!("trusted_ips: {ip:?} is not a single IP address")))?;
        let s = parsed.to_string();
        if !ips.contains(&s) {
            ips.push(s);
        }
    }
    app.trusted_ips = ips;
    if app.report_location_flag > 1 || app.isreportenter > 1 {
        return Err(bad("report_location_flag and isreportenter are 0 or 1"));
    }
    if let Some(f) = app
        .privateinfo_fields
        .iter()
        .find(|f| !SENSITIVE_FIELDS.contains(&f.as_str()))
    {
        return Err(bad(format!(
            "privateinfo_fields: {f:?} is not one of {}",
            SENSITIVE_FIELDS.join(", ")
        )));
    }
    if let Some(cb) = &app.callback {
        check_callback(cb)?;
    }
    app.scope = check_scope(corp, &app.scope)?;
    Ok(())
}

/// Scope entries must exist; users are answered in stored spelling, duplicates dropped.
fn check_scope(corp: &Corp, s: &Scope) -> Result<Scope, AdminErr> {
    let mut parties = dept_ids(corp, &s.parties)?;
    parties.dedup();
    let mut tags = s.tags.clone();
    if let Some(t) = tags.iter().find(|t| !corp.tags.contains_key(t)) {
        return Err(bad(format!("no tag {t}")));
    }
    tags.dedup();
    Ok(Scope {
        users: member_list(corp, "users", &s.users)?,
        parties,
        tags,
    })
}

fn app_json(app: &App) -> Value {
    serde_json::to_value(app).unwrap_or(Value::Null)
}

/// Stores an app: keeps `ip_added_ms` per trusted IP (for `trusted_ip_delay_secs`) and
/// revokes tokens on a secret reset when `secret_reset_revokes_tokens` says so.
fn store_app(w: &mut World, corp_key: &str, app: App) {
    let now = w.now_ms();
    let agentid = app.agentid;
    let old = w
        .corps
        .get(corp_key)
        .and_then(|c| c.apps.get(&agentid))
        .cloned();
    let old_ips = old
        .as_ref()
        .map(|a| a.trusted_ips.clone())
        .unwrap_or_default();
    for ip in &app.trusted_ips {
        if !old_ips.contains(ip) {
            w.ip_added_ms
                .insert((corp_key.to_string(), agentid, ip.clone()), now);
        }
    }
    for ip in old_ips.iter().filter(|ip| !app.trusted_ips.contains(ip)) {
        w.ip_added_ms
            .remove(&(corp_key.to_string(), agentid, ip.clone()));
    }
    let secret_changed = old.as_ref().is_some_and(|a| a.secret != app.secret);
    if secret_changed && w.settings.secret_reset_revokes_tokens {
        w.revoke_tokens(corp_key, Some(&Owner::App { agentid }));
    }
    if let Some(c) = w.corps.get_mut(corp_key) {
        c.upsert_app(app);
    }
}

/// Runs WeCom's URL check for a callback config about to be saved, without the lock.
async fn verify_callback(sim: &Sim, corpid: &str, cb: &CallbackConfig) -> Result<(), AdminErr> {
    callbacks::verify_url(sim, corpid, &cb.url, &cb.token, &cb.encoding_aes_key)
        .await
        .map_err(|reason| {
            AdminErr::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("callback URL verification failed: {reason}"),
            )
        })
}

async fn create_app(State(sim): State<Sim>, Path(corpid): Path<String>, body: Bytes) -> AResult {
    let obj = body_object(&body)?;
    only_fields(&obj, APP_FIELDS)?;
    let req: App = from_object(obj)?;
    // Validate against the current state, verify the callback URL unlocked, then re-check
    // and store (the org may have changed while the handshake ran).
    let build = |w: &mut World| -> Result<(String, String, App), AdminErr> {
        let key = corp_key(w, &corpid)?;
        let corp = corp_mut(w, &key)?;
        if corp.apps.contains_key(&req.agentid) || corp.provider_apps.contains_key(&req.agentid) {
            return Err(conflict(format!("agentid {} exists", req.agentid)));
        }
        let mut app = req.clone();
        check_app(corp, &mut app)?;
        Ok((key, corp.corpid.clone(), app))
    };
    let (_, real_corpid, app) = build(&mut sim.world())?;
    if let Some(cb) = &app.callback {
        verify_callback(&sim, &real_corpid, cb).await?;
    }
    let app = {
        let mut w = sim.world();
        let (key, _, app) = build(&mut w)?;
        store_app(&mut w, &key, app.clone());
        app
    };
    created(app_json(&app))
}

async fn get_app(
    State(sim): State<Sim>,
    Path((corpid, agentid)): Path<(String, String)>,
) -> AResult {
    let agentid = parse_u32("agentid", &agentid)?;
    let w = sim.world();
    let corp = w
        .corp(&corpid)
        .ok_or_else(|| not_found(format!("no corp {corpid}")))?;
    let app = corp
        .apps
        .get(&agentid)
        .ok_or_else(|| not_found(format!("no app {agentid}")))?;
    ok(app_json(app))
}

async fn update_app(
    State(sim): State<Sim>,
    Path((corpid, agentid)): Path<(String, String)>,
    body: Bytes,
) -> AResult {
    let agentid = parse_u32("agentid", &agentid)?;
    let mut patch: AppPatch = parse_body(&body)?;
    if patch.reset_secret {
        if patch.secret.is_some() {
            return Err(bad("send either secret or reset_secret, not both"));
        }
        // Self-built app secrets are 43 characters in the console.
        patch.secret = Some(random_alnum(43));
    }
    let build = |w: &mut World| -> Result<(String, String, App), AdminErr> {
        let key = corp_key(w, &corpid)?;
        let corp = corp_mut(w, &key)?;
        let mut app = corp
            .apps
            .get(&agentid)
            .cloned()
            .ok_or_else(|| not_found(format!("no app {agentid}")))?;
        patch.apply(&mut app)?;
        check_app(corp, &mut app)?;
        Ok((key, corp.corpid.clone(), app))
    };
    let (_, real_corpid, _) = build(&mut sim.world())?;
    // WeCom verifies the URL on every save of the callback settings.
    if let Some(Some(cb)) = &patch.callback {
        verify_callback(&sim, &real_corpid, cb).await?;
    }
    let app = {
        let mut w = sim.world();
        let (key, _, app) = build(&mut w)?;
        store_app(&mut w, &key, app.clone());
        app
    };
    ok(app_json(&app))
}

async fn delete_app(
    State(sim): State<Sim>,
    Path((corpid, agentid)): Path<(String, String)>,
) -> AResult {
    let agentid = parse_u32("agentid", &agentid)?;
    let mut w = sim.world();
    let key = corp_key(&w, &corpid)?;
    let app = corp_mut(&mut w, &key)?
        .remove_app(agentid)
        .ok_or_else(|| not_found(format!("no app {agentid}")))?;
    w.revoke_tokens(&key, Some(&Owner::App { agentid }));
    w.ip_added_ms
        .retain(|(c, a, _), _| !(*c == key && *a == agentid));
    ok(app_json(&app))
}

async fn set_app_scope(
    State(sim): State<Sim>,
    Path((corpid, agentid)): Path<(String, String)>,
    body: Bytes,
) -> AResult {
    let agentid = parse_u32("agentid", &agentid)?;
    let scope: Scope = parse_scope(&body)?;
    let mut w = sim.world();
    let corp = corp_mut(&mut w, &corpid)?;
    if !corp.apps.contains_key(&agentid) {
        return Err(not_found(format!("no app {agentid}")));
    }
    let scope = check_scope(corp, &scope)?;
    corp.set_app_scope(agentid, scope);
    let app = corp.apps.get(&agentid).map(app_json);
    ok(app)
}

fn parse_scope(body: &Bytes) -> Result<Scope, AdminErr> {
    let obj = body_object(body)?;
    only_fields(&obj, &["users", "parties", "tags"])?;
    from_object(obj)
}

// ---------------------------------------------------------------------------------------
// Outsiders and provider apps

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutsiderReq {
    openid: String,
}

async fn add_outsider(State(sim): State<Sim>, Path(corpid): Path<String>, body: Bytes) -> AResult {
    let req: OutsiderReq = parse_body(&body)?;
    if req.openid.is_empty() || req.openid.len() > 64 {
        return Err(bad("openid must be 1–64 bytes"));
    }
    let mut w = sim.world();
    let corp = corp_mut(&mut w, &corpid)?;
    if corp.outsiders.contains(&req.openid) {
        return Err(conflict(format!("outsider {} exists", req.openid)));
    }
    corp.outsiders.push(req.openid);
    created(json!({ "outsiders": corp.outsiders }))
}

async fn remove_outsider(
    State(sim): State<Sim>,
    Path((corpid, openid)): Path<(String, String)>,
) -> AResult {
    let mut w = sim.world();
    let corp = corp_mut(&mut w, &corpid)?;
    let before = corp.outsiders.len();
    corp.outsiders.retain(|o| *o != openid);
    if corp.outsiders.len() == before {
        return Err(not_found(format!("no outsider {openid}")));
    }
    ok(json!({ "outsiders": corp.outsiders }))
}

async fn add_provider_app(
    State(sim): State<Sim>,
    Path(corpid): Path<String>,
    body: Bytes,
) -> AResult {
    let obj = body_object(&body)?;
    only_fields(&obj, &["agentid", "provider_id", "kind", "scope"])?;
    let mut p: ProviderApp = from_object(obj)?;
    if p.agentid == 0 {
        return Err(bad("agentid must be at least 1"));
    }
    if p.provider_id.trim().is_empty() {
        return Err(bad("provider_id must not be empty"));
    }
    let mut w = sim.world();
    let corp = corp_mut(&mut w, &corpid)?;
    if corp.apps.contains_key(&p.agentid) || corp.provider_apps.contains_key(&p.agentid) {
        return Err(conflict(format!("agentid {} exists", p.agentid)));
    }
    p.scope = check_scope(corp, &p.scope)?;
    corp.upsert_provider_app(p.clone());
    created(p)
}

fn parse_agentid_of_provider(
    w: &mut World,
    corpid: &str,
    agentid: &str,
) -> Result<(String, u32), AdminErr> {
    let agentid = parse_u32("agentid", agentid)?;
    let key = corp_key(w, corpid)?;
    if !corp_mut(w, &key)?.provider_apps.contains_key(&agentid) {
        return Err(not_found(format!("no provider app {agentid}")));
    }
    Ok((key, agentid))
}

async fn set_provider_scope(
    State(sim): State<Sim>,
    Path((corpid, agentid)): Path<(String, String)>,
    body: Bytes,
) -> AResult {
    let scope = parse_scope(&body)?;
    let mut w = sim.world();
    let (key, agentid) = parse_agentid_of_provider(&mut w, &corpid, &agentid)?;
    let corp = corp_mut(&mut w, &key)?;
    let scope = check_scope(corp, &scope)?;
    let mut p = corp
        .provider_apps
        .get(&agentid)
        .cloned()
        .ok_or_else(|| not_found(format!("no provider app {agentid}")))?;
    p.scope = scope;
    corp.upsert_provider_app(p.clone());
    ok(p)
}

async fn remove_provider_app(
    State(sim): State<Sim>,
    Path((corpid, agentid)): Path<(String, String)>,
) -> AResult {
    let mut w = sim.world();
    let (key, agentid) = parse_agentid_of_provider(&mut w, &corpid, &agentid)?;
    let p = corp_mut(&mut w, &key)?
        .remove_provider_app(agentid)
        .ok_or_else(|| not_found(format!("no provider app {agentid}")))?;
    // An uninstalled app's tokens die with it; its agentid is now unknown (§7).
    w.revoke_tokens(&key, Some(&Owner::Provider { agentid }));
    ok(p)
}

async fn provider_token(
    State(sim): State<Sim>,
    Path((corpid, agentid)): Path<(String, String)>,
) -> AResult {
    let mut w = sim.world();
    let (key, agentid) = parse_agentid_of_provider(&mut w, &corpid, &agentid)?;
    let now = w.now_ms();
    let v = crate::api::token::issue(&mut w, &key, Owner::Provider { agentid }, now);
    ok(v)
}

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InvalidateReq {
    agentid: Option<u32>,
    #[serde(default)]
    contact_sync: bool,
    access_token: Option<String>,
}

async fn invalidate_tokens(
    State(sim): State<Sim>,
    Path(corpid): Path<String>,
    body: Bytes,
) -> AResult {
    let req: InvalidateReq = parse_body(&body)?;
    let chosen = usize::from(req.agentid.is_some())
        + usize::from(req.contact_sync)
        + usize::from(req.access_token.is_some());
    if chosen > 1 {
        return Err(bad(
            "send at most one of agentid, contact_sync, access_token",
        ));
    }
    let mut w = sim.world();
    let key = corp_key(&w, &corpid)?;
    if let Some(t) = &req.access_token {
        let info = w
            .tokens
            .get_mut(t)
            .filter(|i| i.corp == key)
            .ok_or_else(|| not_found("no such access_token in this corp"))?;
        let was_live = !info.revoked;
        info.revoked = true;
        let owner = info.owner.clone();
        if w.token_of.get(&(key.clone(), owner.clone())) == Some(t) {
            w.token_of.remove(&(key, owner));
        }
        return ok(json!({ "revoked": usize::from(was_live) }));
    }
    let owner = if let Some(agentid) = req.agentid {
        let corp = corp_mut(&mut w, &key)?;
        if corp.apps.contains_key(&agentid) {
            Some(Owner::App { agentid })
        } else if corp.provider_apps.contains_key(&agentid) {
            Some(Owner::Provider { agentid })
        } else {
            return Err(not_found(format!("no app {agentid}")));
        }
    } else if req.contact_sync {
        Some(Owner::ContactSync)
    } else {
        None
    };
    // Count the tokens that were still usable (not revoked, not expired).
    let now = w.now_ms();
    let revoked = w
        .tokens
        .values()
        .filter(|t| {
            t.corp == key
                && !t.revoked
                && t.expires_ms > now
                && owner.as_ref().is_none_or(|o| *o == t.owner)
        })
        .count();
    w.revoke_tokens(&key, owner.as_ref());
    ok(json!({ "revoked": revoked }))
}

// ---------------------------------------------------------------------------------------
// Faults and latencies

/// `/cgi-bin/user/list`, `/user/list` and `user/list` all name the API `user/list`.
fn api_path(p: &str) -> Result<String, AdminErr> {
    let p = p.trim();
    let p = p
        .strip_prefix("/cgi-bin/")
        .unwrap_or(p)
        .trim_start_matches('/');
    if p.is_empty() {
        return Err(bad("path must name an API such as user/list, or *"));
    }
    Ok(p.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultReq {
    path: String,
    #[serde(default)]
    errcode: i64,
    /// `errcode` (default) or `truncated_json`.
    #[serde(default)]
    kind: String,
    #[serde(default = "one", alias = "remaining")]
    count: u32,
    corp: Option<String>,
}

fn one() -> u32 {
    1
}

async fn list_faults(State(sim): State<Sim>) -> AResult {
    ok(json!({ "faults": sim.world().faults }))
}

async fn add_fault(State(sim): State<Sim>, body: Bytes) -> AResult {
    let req: FaultReq = parse_body(&body)?;
    let path = api_path(&req.path)?;
    let truncate = match req.kind.as_str() {
        "" | "errcode" => false,
        "truncated_json" => true,
        k => return Err(bad(format!("unknown fault kind {k:?}"))),
    };
    if req.errcode == 0 && !truncate {
        return Err(bad("errcode 0 is not a fault"));
    }
    if req.count == 0 {
        return Err(bad("count must be at least 1"));
    }
    let mut w = sim.world();
    let corp = match &req.corp {
        Some(c) => Some(corp_key(&w, c)?),
        None => None,
    };
    w.faults.push(Fault {
        path,
        errcode: if truncate { 0 } else { req.errcode },
        remaining: req.count,
        corp,
        truncate,
    });
    created(json!({ "faults": w.faults }))
}

async fn clear_faults(State(sim): State<Sim>) -> AResult {
    let mut w = sim.world();
    w.faults.clear();
    ok(json!({ "faults": w.faults }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyReq {
    path: String,
    ms: u64,
}

async fn list_latencies(State(sim): State<Sim>) -> AResult {
    ok(json!({ "latencies": sim.world().latencies }))
}

async fn add_latency(State(sim): State<Sim>, body: Bytes) -> AResult {
    let req: LatencyReq = parse_body(&body)?;
    let path = api_path(&req.path)?;
    if req.ms > 600_000 {
        return Err(bad("ms must be at most 600000"));
    }
    let mut w = sim.world();
    w.latencies.retain(|l| l.path != path);
    if req.ms > 0 {
        w.latencies.push(Latency { path, ms: req.ms });
    }
    created(json!({ "latencies": w.latencies }))
}

async fn clear_latencies(State(sim): State<Sim>) -> AResult {
    let mut w = sim.world();
    w.latencies.clear();
    ok(json!({ "latencies": w.latencies }))
}

// ---------------------------------------------------------------------------------------
// Clock, settings, counters, deliveries

fn clock_json(w: &World) -> Value {
    json!({ "now_ms": w.now_ms(), "offset_ms": w.clock_offset_ms })
}

async fn get_clock(State(sim): State<Sim>) -> AResult {
    ok(clock_json(&sim.world()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceReq {
    secs: Option<u64>,
    ms: Option<u64>,
}

async fn advance_clock(State(sim): State<Sim>, body: Bytes) -> AResult {
    let req: AdvanceReq = parse_body(&body)?;
    // The sim clock only moves forward: tokens, codes and limits assume it.
    let ms = match (req.secs, req.ms) {
        (Some(s), None) => s.checked_mul(1000),
        (None, Some(ms)) => Some(ms),
        _ => return Err(bad("send exactly one of secs or ms")),
    }
    .and_then(|ms| i64::try_from(ms).ok())
    .ok_or_else(|| bad("advance too large"))?;
    let mut w = sim.world();
    w.clock_offset_ms = w
        .clock_offset_ms
        .checked_add(ms)
        .ok_or_else(|| bad("advance too large"))?;
    ok(clock_json(&w))
}

async fn get_settings(State(sim): State<Sim>) -> AResult {
    ok(sim.world().settings.clone())
}

async fn patch_settings(State(sim): State<Sim>, body: Bytes) -> AResult {
    let patch = body_object(&body)?;
    let mut w = sim.world();
    let mut merged = match serde_json::to_value(&w.settings) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    merged.extend(patch);
    let settings: Settings = from_object(merged)?;
    w.settings = settings.clone();
    ok(settings)
}

fn counters_json(c: &std::collections::BTreeMap<String, u64>) -> Value {
    json!({ "counters": c, "total": c.values().sum::<u64>() })
}

async fn get_counters(State(sim): State<Sim>) -> AResult {
    ok(counters_json(&sim.world().counters))
}

async fn reset_counters(State(sim): State<Sim>) -> AResult {
    let mut w = sim.world();
    w.counters.clear();
    ok(counters_json(&w.counters))
}

async fn get_deliveries(State(sim): State<Sim>) -> AResult {
    ok(json!({ "deliveries": sim.world().deliveries }))
}

async fn clear_deliveries(State(sim): State<Sim>) -> AResult {
    let mut w = sim.world();
    w.deliveries.clear();
    ok(json!({ "deliveries": w.deliveries }))
}

async fn flush_deliveries(State(sim): State<Sim>) -> AResult {
    // A receiver that hangs must not hang the admin call.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), callbacks::flush(&sim)).await;
    let w = sim.world();
    ok(json!({ "deliveries": w.deliveries, "pending": callbacks::pending(&w) }))
}

async fn list_callback_faults(State(sim): State<Sim>) -> AResult {
    ok(json!({ "callback_faults": sim.world().callback_faults }))
}

async fn add_callback_fault(State(sim): State<Sim>, body: Bytes) -> AResult {
    let obj = body_object(&body)?;
    only_fields(&obj, &["kind", "agentid", "corp"])?;
    let fault: CallbackFault = from_object(obj)?;
    let mut w = sim.world();
    if let Some(c) = &fault.corp {
        corp_key(&w, c)?;
    }
    callbacks::push_fault(&mut w, fault);
    created(json!({ "callback_faults": w.callback_faults }))
}

async fn clear_callback_faults(State(sim): State<Sim>) -> AResult {
    let mut w = sim.world();
    w.callback_faults.clear();
    ok(json!({ "callback_faults": w.callback_faults }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert!(valid_domain("acme.localhost:8080"));
        assert!(valid_domain("oa.example.com"));
        assert!(valid_domain(""));
        assert!(!valid_domain("https://oa.example.com"));
        assert!(!valid_domain("oa.example.com/path"));
        assert!(!valid_domain("oa.example.com:0"));
        assert!(!valid_domain("oa.example.com:http"));
    }

    #[test]
    fn api_paths() {
        assert_eq!(
            api_path("/cgi-bin/user/list").ok().as_deref(),
            Some("user/list")
        );
        assert_eq!(api_path("user/list").ok().as_deref(), Some("user/list"));
        assert_eq!(api_path("*").ok().as_deref(), Some("*"));
        assert!(api_path(" ").is_err());
    }
}
