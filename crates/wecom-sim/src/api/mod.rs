//! The `/cgi-bin/*` API. One dispatcher does what every WeCom endpoint shares — method
//! check, call counting, injected faults and latency, the access token, caller rights
//! (48002), trusted IP (60020), rate limits, JSON body parsing — then hands a [`Call`]
//! to a synchronous handler that works on the locked [`World`].

mod agent;
mod auth;
mod batch;
mod contacts;
mod network;
mod ticket;
pub(crate) mod token;

use crate::envelope::{self, ApiErr};
use crate::limits;
use crate::world::{Owner, World};
use crate::Sim;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Which kinds of token may call an endpoint (wecom-api.md §2); others get 48002.
pub mod callers {
    pub const APP: u8 = 1;
    pub const SYNC: u8 = 2;
    pub const PROVIDER: u8 = 4;
    pub const ANY: u8 = APP | SYNC | PROVIDER;
}

/// One API call after the shared checks.
pub struct Call {
    /// Lower-cased corpid of the token (or of `corpid` for gettoken).
    pub corp: String,
    /// The token's owner; None only for gettoken.
    pub owner: Option<Owner>,
    pub query: HashMap<String, String>,
    /// Parsed JSON body of a POST.
    pub body: Value,
    pub ip: String,
    pub now_ms: u64,
}

impl Call {
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
    pub fn owner(&self) -> &Owner {
        self.owner.as_ref().unwrap_or(&Owner::ContactSync)
    }
}

pub type Handler = fn(&mut World, &Call) -> Result<Value, ApiErr>;

pub struct Endpoint {
    pub path: &'static str,
    pub method: Method,
    /// False only for gettoken.
    pub needs_token: bool,
    pub callers: u8,
    /// Fields WeCom keeps in failure bodies, as a JSON object literal.
    pub defaults: &'static str,
    pub handler: Handler,
}

fn endpoints() -> &'static [Endpoint] {
    use callers::*;
    use std::sync::OnceLock;
    static TABLE: OnceLock<Vec<Endpoint>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let get = Method::GET;
        let post = Method::POST;
        let e = |path, method: &Method, needs_token, callers, defaults, handler| Endpoint {
            path,
            method: method.clone(),
            needs_token,
            callers,
            defaults,
            handler,
        };
        vec![
            e("gettoken", &get, false, ANY, "{}", token::gettoken),
            e("agent/get", &get, true, APP | PROVIDER, "{}", agent::get),
            e("agent/list", &get, true, APP | PROVIDER, "{}", agent::list),
            e(
                "department/list",
                &get,
                true,
                ANY,
                r#"{"department":[]}"#,
                contacts::department_list,
            ),
            e(
                "department/simplelist",
                &get,
                true,
                ANY,
                r#"{"department_id":[]}"#,
                contacts::department_simplelist,
            ),
            e(
                "department/get",
                &get,
                true,
                ANY,
                "{}",
                contacts::department_get,
            ),
            e(
                "user/get",
                &get,
                true,
                ANY,
                r#"{"department":[]}"#,
                contacts::user_get,
            ),
            e(
                "user/list",
                &get,
                true,
                ANY,
                r#"{"userlist":[]}"#,
                contacts::user_list,
            ),
            e(
                "user/simplelist",
                &get,
                true,
                ANY,
                r#"{"userlist":[]}"#,
                contacts::user_simplelist,
            ),
            e(
                "user/list_id",
                &post,
                true,
                SYNC,
                r#"{"dept_user":[]}"#,
                contacts::user_list_id,
            ),
            e(
                "tag/list",
                &get,
                true,
                ANY,
                r#"{"taglist":[]}"#,
                contacts::tag_list,
            ),
            e(
                "tag/get",
                &get,
                true,
                ANY,
                r#"{"userlist":[],"partylist":[]}"#,
                contacts::tag_get,
            ),
            e(
                "auth/getuserinfo",
                &get,
                true,
                APP | PROVIDER,
                "{}",
                auth::getuserinfo,
            ),
            e(
                "auth/getuserdetail",
                &post,
                true,
                APP | PROVIDER,
                "{}",
                auth::getuserdetail,
            ),
            e(
                "user/getuserinfo",
                &get,
                true,
                APP | PROVIDER,
                "{}",
                auth::legacy_getuserinfo,
            ),
            e(
                "batch/openuserid_to_userid",
                &post,
                true,
                APP,
                r#"{"userid_list":[],"invalid_open_userid_list":[]}"#,
                batch::openuserid_to_userid,
            ),
            e(
                "batch/userid_to_openuserid",
                &post,
                true,
                PROVIDER,
                r#"{"open_userid_list":[],"invalid_userid_list":[]}"#,
                batch::userid_to_openuserid,
            ),
            e(
                "get_api_domain_ip",
                &get,
                true,
                ANY,
                r#"{"ip_list":[]}"#,
                network::get_api_domain_ip,
            ),
            e(
                "getcallbackip",
                &get,
                true,
                ANY,
                r#"{"ip_list":[]}"#,
                network::getcallbackip,
            ),
            e(
                "get_jsapi_ticket",
                &get,
                true,
                APP | PROVIDER,
                "{}",
                ticket::get_jsapi_ticket,
            ),
            e(
                "ticket/get",
                &get,
                true,
                APP | PROVIDER,
                "{}",
                ticket::ticket_get,
            ),
        ]
    })
}

fn defaults(ep: &Endpoint) -> Value {
    serde_json::from_str(ep.defaults).unwrap_or(Value::Object(Default::default()))
}

fn caller_ip(world: &World, headers: &HeaderMap, peer: SocketAddr) -> String {
    let h = &world.settings.trust_client_ip_header;
    if !h.is_empty() {
        if let Some(v) = headers.get(h.as_str()).and_then(|v| v.to_str().ok()) {
            let v = v.split(',').next().unwrap_or("").trim();
            if !v.is_empty() {
                return v.to_string();
            }
        }
    }
    peer.ip().to_canonical().to_string()
}

fn parse_query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// Guard that releases a 45033 concurrency slot even if the request is dropped mid-way.
struct InFlight {
    sim: Sim,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut w = self.sim.world();
        if let Some(n) = w.in_flight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

pub async fn dispatch(
    State(sim): State<Sim>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches("/cgi-bin/");
    let Some(ep) = endpoints().iter().find(|e| e.path == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = parse_query(&uri);

    // Phase 1: count, concurrency slot, latency (outside the lock).
    let (latency_ms, _slot) = {
        let mut w = sim.world();
        *w.counters.entry(ep.path.to_string()).or_default() += 1;
        let latency = w
            .latencies
            .iter()
            .filter(|l| l.path == ep.path || l.path == "*")
            .map(|l| l.ms)
            .max()
            .unwrap_or(0);
        let max = w.settings.max_concurrent_per_api;
        let slot = if max > 0 {
            let key = format!(
                "{}:{}",
                query
                    .get("access_token")
                    .map(String::as_str)
                    .and_then(|t| w.tokens.get(t))
                    .map(|t| t.corp.clone())
                    .unwrap_or_default(),
                ep.path
            );
            let n = w.in_flight.entry(key.clone()).or_default();
            if *n >= max {
                let (now, ip) = (w.now_ms(), caller_ip(&w, &headers, peer));
                return envelope::error(&ApiErr::new(45033), defaults(ep), now, &ip);
            }
            *n += 1;
            Some(InFlight {
                sim: sim.clone(),
                key,
            })
        } else {
            None
        };
        (latency, slot)
    };
    if latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
    }

    // Phase 2: everything else under the lock.
    let mut w = sim.world();
    let ip = caller_ip(&w, &headers, peer);
    let now_ms = w.now_ms();
    let truncate = take_fault_of(&mut w, ep.path, &query, true).is_some();
    match run(&mut w, ep, query, &method, &body, &ip, now_ms) {
        Ok(v) if truncate => truncated(v),
        Ok(v) => envelope::ok(v),
        Err(e) => envelope::error(&e, defaults(ep), now_ms, &ip),
    }
}

/// The success answer with its JSON cut in half (an injected fault).
fn truncated(v: Value) -> Response {
    let mut body = serde_json::to_vec(&v).unwrap_or_default();
    body.truncate(body.len() / 2);
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=UTF-8",
        )],
        body,
    )
        .into_response()
}

fn run(
    w: &mut World,
    ep: &Endpoint,
    query: HashMap<String, String>,
    method: &Method,
    body: &Bytes,
    ip: &str,
    now_ms: u64,
) -> Result<Value, ApiErr> {
    if *method != ep.method {
        return Err(ApiErr::new(40058));
    }
    if query.get("debug").map(String::as_str) == Some("1") {
        let limit = w.settings.debug_per_min;
        limits::hit(w, &format!("debug:{ip}:{}", ep.path), limit, 60)?;
    }
    take_fault(w, ep.path, &query)?;

    let mut call = Call {
        corp: String::new(),
        owner: None,
        query,
        body: Value::Null,
        ip: ip.to_string(),
        now_ms,
    };
    if ep.needs_token {
        let (corp, owner) = resolve_token(w, call.q("access_token"), now_ms)?;
        if !allowed(ep.callers, &owner) {
            return Err(ApiErr::new(48002));
        }
        check_trusted_ip(w, &corp, &owner, ip, now_ms)?;
        call.corp = corp;
        call.owner = Some(owner);
        // auth/getuserinfo with a valid code is exempt from the frequency limits (§16).
        let exempt = ep.path == "auth/getuserinfo"
            && call
                .q("code")
                .and_then(|c| w.codes.get(c))
                .is_some_and(|c| c.issued_ms + w.settings.code_ttl_secs * 1000 > now_ms);
        if !exempt {
            limits::check_call(w, &call.corp.clone(), ip, ep.path)?;
        }
    }
    if ep.method == Method::POST {
        call.body = if body.iter().all(|b| b.is_ascii_whitespace()) {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(body).map_err(|_| {
                ApiErr::with_msg(40058, "invalid parameter, Warning: wrong json format.")
            })?
        };
    }
    (ep.handler)(w, &call)
}

fn take_fault(w: &mut World, path: &str, query: &HashMap<String, String>) -> Result<(), ApiErr> {
    match take_fault_of(w, path, query, false) {
        Some(code) => Err(ApiErr::new(code)),
        None => Ok(()),
    }
}

/// Consumes one matching fault of the kind asked for (errcode or truncation); its errcode.
fn take_fault_of(
    w: &mut World,
    path: &str,
    query: &HashMap<String, String>,
    truncate: bool,
) -> Option<i64> {
    let token_corp = query
        .get("access_token")
        .and_then(|t| w.tokens.get(t))
        .map(|t| t.corp.clone())
        .or_else(|| query.get("corpid").map(|c| c.to_ascii_lowercase()));
    let hit = w.faults.iter_mut().find(|f| {
        f.remaining > 0
            && f.truncate == truncate
            && (f.path == path || f.path == "*")
            && f.corp
                .as_ref()
                .is_none_or(|c| Some(c) == token_corp.as_ref())
    });
    if let Some(f) = hit {
        f.remaining -= 1;
        let code = f.errcode;
        w.faults.retain(|f| f.remaining > 0);
        return Some(code);
    }
    None
}

fn allowed(mask: u8, owner: &Owner) -> bool {
    let bit = match owner {
        Owner::App { .. } => callers::APP,
        Owner::ContactSync => callers::SYNC,
        Owner::Provider { .. } => callers::PROVIDER,
    };
    mask & bit != 0
}

/// 41001 missing, 40014 unknown or revoked, 42001 expired, 50003 app since disabled.
fn resolve_token(w: &World, token: Option<&str>, now_ms: u64) -> Result<(String, Owner), ApiErr> {
    let token = token.filter(|t| !t.is_empty()).ok_or(ApiErr::new(41001))?;
    let info = w.tokens.get(token).ok_or(ApiErr::new(40014))?;
    if info.revoked {
        return Err(ApiErr::new(40014));
    }
    if info.expires_ms <= now_ms {
        return Err(ApiErr::new(42001));
    }
    if let Owner::App { agentid } = info.owner {
        let app = w
            .corps
            .get(&info.corp)
            .and_then(|c| c.apps.get(&agentid))
            .ok_or(ApiErr::new(40014))?;
        if app.close {
            return Err(ApiErr::new(50003));
        }
    }
    Ok((info.corp.clone(), info.owner.clone()))
}

/// 企业可信IP (§8): every endpoint except gettoken, for post-2022 apps and any app with a
/// non-empty list; entries apply `trusted_ip_delay_secs` after they were added.
fn check_trusted_ip(
    w: &World,
    corp: &str,
    owner: &Owner,
    ip: &str,
    now_ms: u64,
) -> Result<(), ApiErr> {
    let Owner::App { agentid } = owner else {
        return Ok(());
    };
    let Some(app) = w.corps.get(corp).and_then(|c| c.apps.get(agentid)) else {
        return Ok(());
    };
    if !app.post_2022 && app.trusted_ips.is_empty() {
        return Ok(());
    }
    let delay = w.settings.trusted_ip_delay_secs * 1000;
    let trusted = app.trusted_ips.iter().any(|t| {
        t == ip
            && w.ip_added_ms
                .get(&(corp.to_string(), *agentid, t.clone()))
                .is_none_or(|added| added + delay <= now_ms)
    });
    if trusted {
        Ok(())
    } else {
        Err(ApiErr::new(60020))
    }
}

/// Parses a required integer query parameter; `missing`/`bad` are the errcodes to use.
pub fn int_param(call: &Call, name: &str, missing: i64, bad: i64) -> Result<i64, ApiErr> {
    let v = call
        .q(name)
        .filter(|v| !v.is_empty())
        .ok_or(ApiErr::new(missing))?;
    v.trim().parse::<i64>().map_err(|_| ApiErr::new(bad))
}
