//! `agent/get` and `agent/list` (wecom-api.md §4.1): a token reads only its own app.
//!
//! Simulator rules (§17 #10, #11): another existing agentid of the corp → 301002, an unknown
//! or non-integer agentid → 40056; the `allow_*` objects are always present, with empty
//! arrays when unset.

use super::Call;
use crate::envelope::ApiErr;
use crate::model::{App, Corp, ProviderApp, Scope};
use crate::world::World;
use serde_json::{json, Value};

pub fn get(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let corp = w.corps.get(&call.corp).ok_or(ApiErr::new(40014))?;
    // A missing agentid is "not an int" as far as WeCom's 40056 goes.
    let agentid = call
        .q("agentid")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or(ApiErr::new(40056))?;
    let own = call.owner().agentid().ok_or(ApiErr::new(48002))?;
    if agentid != own {
        let exists = corp.apps.contains_key(&agentid) || corp.provider_apps.contains_key(&agentid);
        return Err(ApiErr::new(if exists { 301002 } else { 40056 }));
    }
    if let Some(app) = corp.apps.get(&agentid) {
        return Ok(app_json(corp, app));
    }
    if let Some(p) = corp.provider_apps.get(&agentid) {
        return Ok(provider_json(corp, p));
    }
    // The token's app was deleted after the token was minted.
    Err(ApiErr::new(40014))
}

pub fn list(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let corp = w.corps.get(&call.corp).ok_or(ApiErr::new(40014))?;
    let own = call.owner().agentid().ok_or(ApiErr::new(48002))?;
    let entry = if let Some(app) = corp.apps.get(&own) {
        json!({"agentid": app.agentid, "name": app.name, "square_logo_url": app.square_logo_url})
    } else if corp.provider_apps.contains_key(&own) {
        json!({"agentid": own, "name": "", "square_logo_url": ""})
    } else {
        return Err(ApiErr::new(40014));
    };
    Ok(json!({ "agentlist": [entry] }))
}

fn allow_json(corp: &Corp, scope: &Scope) -> Value {
    // Answer members in their stored spelling, whatever case the scope was configured in.
    let users: Vec<Value> = scope
        .users
        .iter()
        .map(|u| {
            let id = corp.member(u).map_or(u.as_str(), |m| m.userid.as_str());
            json!({ "userid": id })
        })
        .collect();
    json!({
        "allow_userinfos": {"user": users},
        "allow_partys": {"partyid": scope.parties},
        "allow_tags": {"tagid": scope.tags},
    })
}

fn app_json(corp: &Corp, app: &App) -> Value {
    let mut v = json!({
        "agentid": app.agentid,
        "name": app.name,
        "square_logo_url": app.square_logo_url,
        "description": app.description,
        "close": u8::from(app.close),
        "redirect_domain": app.redirect_domain,
        "report_location_flag": app.report_location_flag,
        "isreportenter": app.isreportenter,
        "home_url": app.home_url,
    });
    merge(&mut v, allow_json(corp, &app.scope));
    v
}

/// Provider apps are modelled only as far as their agentid and scope (§2).
fn provider_json(corp: &Corp, p: &ProviderApp) -> Value {
    let mut v = json!({
        "agentid": p.agentid,
        "name": "",
        "square_logo_url": "",
        "description": "",
        "close": 0,
        "redirect_domain": "",
        "report_location_flag": 0,
        "isreportenter": 0,
        "home_url": "",
    });
    merge(&mut v, allow_json(corp, &p.scope));
    v
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}
