//! ID conversion (wecom-api.md §7): `batch/openuserid_to_userid` for self-built apps and
//! `batch/userid_to_openuserid` for provider apps.
//!
//! Simulator rules (§17 #22, #23): more than 1,000 ids → 40058; an unknown
//! `source_agentid` → 40056, given as an int or a numeric string; malformed, foreign or
//! out-of-scope ids go to the invalid list with errcode 0.

use super::Call;
use crate::envelope::ApiErr;
use crate::model::{self, Corp};
use crate::world::{Owner, World};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

const MAX_IDS: usize = 1000;

/// The string list under `field`: 40058 if absent, not an array of strings, or too long.
fn id_list<'a>(body: &'a Value, field: &str) -> Result<Vec<&'a str>, ApiErr> {
    let list = body
        .get(field)
        .and_then(Value::as_array)
        .ok_or(ApiErr::new(40058))?;
    if list.len() > MAX_IDS {
        return Err(ApiErr::new(40058));
    }
    list.iter()
        .map(|v| v.as_str().ok_or(ApiErr::new(40058)))
        .collect()
}

/// `source_agentid` as WeCom documents it (int) or as WxJava sends it (numeric string).
fn source_agentid(body: &Value) -> Option<u32> {
    match body.get("source_agentid")? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// open_userid → member key for every member of the corp, for one provider; rebuilt only
/// when the corp's generation moved on.
fn open_index(w: &mut World, corp_key: &str, provider_id: &str) -> Arc<HashMap<String, String>> {
    let Some(corp) = w.corps.get(corp_key) else {
        return Arc::default();
    };
    let cache_key = (corp_key.to_string(), provider_id.to_string());
    if let Some((gen, idx)) = w.open_userid_index.get(&cache_key) {
        if *gen == corp.generation {
            return idx.clone();
        }
    }
    let idx: HashMap<String, String> = corp
        .members
        .keys()
        .map(|k| (model::open_userid(provider_id, &corp.corpid, k), k.clone()))
        .collect();
    let idx = Arc::new(idx);
    let gen = corp.generation;
    w.open_userid_index.insert(cache_key, (gen, idx.clone()));
    idx
}

pub fn openuserid_to_userid(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let ids = id_list(&call.body, "open_userid_list")?;
    let own = call.owner().agentid().ok_or(ApiErr::new(48002))?;
    let corp = w.corps.get(&call.corp).ok_or(ApiErr::new(40014))?;
    // Only a provider app of this corp issues open_userids; a deleted one is unknown.
    let provider = source_agentid(&call.body)
        .and_then(|a| corp.provider_apps.get(&a))
        .map(|p| (p.agentid, p.provider_id.clone()))
        .ok_or(ApiErr::new(40056))?;
    let index = open_index(w, &call.corp, &provider.1);
    let corp: &mut Corp = w.corps.get_mut(&call.corp).ok_or(ApiErr::new(40014))?;
    let own_scope = corp.scope_of(own);
    let source_scope = corp.scope_of(provider.0);
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for id in ids {
        // The member must be in the scope of both apps (§7).
        let hit = index
            .get(id)
            .filter(|k| own_scope.has_user(k) && source_scope.has_user(k))
            .and_then(|k| corp.members.get(k));
        match hit {
            Some(m) => found.push(json!({"open_userid": id, "userid": m.userid})),
            None => invalid.push(Value::from(id)),
        }
    }
    Ok(json!({"userid_list": found, "invalid_open_userid_list": invalid}))
}

pub fn userid_to_openuserid(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let ids = id_list(&call.body, "userid_list")?;
    let Owner::Provider { agentid } = call.owner() else {
        return Err(ApiErr::new(48002));
    };
    let corp = w.corps.get_mut(&call.corp).ok_or(ApiErr::new(40014))?;
    let provider_id = corp
        .provider_apps
        .get(agentid)
        .map(|p| p.provider_id.clone())
        .ok_or(ApiErr::new(40014))?;
    let scope = corp.scope_of(*agentid);
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for id in ids {
        let k = model::key(id);
        match corp.members.get(&k).filter(|_| scope.has_user(&k)) {
            Some(m) => found.push(json!({
                "userid": m.userid,
                "open_userid": corp.open_userid(&provider_id, &m.userid),
            })),
            None => invalid.push(Value::from(id)),
        }
    }
    Ok(json!({"open_userid_list": found, "invalid_userid_list": invalid}))
}
