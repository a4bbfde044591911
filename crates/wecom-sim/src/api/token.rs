//! `gettoken` (wecom-api.md §3): errors in WeCom's check order, the same token returned
//! while valid (never extended), and the 1-hour IP ban after too many wrong secrets.

use super::Call;
use crate::envelope::ApiErr;
use crate::limits;
use crate::world::{random_token, Owner, TokenInfo, World};
use serde_json::{json, Value};

pub fn gettoken(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let secret = call.q("corpsecret").filter(|s| !s.is_empty());
    let corpid = call.q("corpid").filter(|s| !s.is_empty());
    let secret = secret.ok_or(ApiErr::new(41004))?;
    let corpid = corpid.ok_or(ApiErr::new(41002))?;
    let ban_key = format!("badsecret:{}", call.ip);
    if limits::blocked(w, &ban_key, 3600) {
        return Err(ApiErr::new(45009));
    }
    let corp_key = corpid.to_ascii_lowercase();
    let owner = match w.corps.get(&corp_key) {
        None => None,
        Some(corp) => {
            if corp.contact_sync_secret.as_deref() == Some(secret) {
                Some(Owner::ContactSync)
            } else if let Some(app) = corp.apps.values().find(|a| a.secret == secret) {
                // A disabled app's secret is refused like a wrong one (40001).
                (!app.close).then_some(Owner::App {
                    agentid: app.agentid,
                })
            } else {
                None
            }
        }
    };
    let Some(owner) = owner else {
        let code = if !w.corps.contains_key(&corp_key) {
            40013
        } else if w
            .corps
            .iter()
            .any(|(k, c)| *k != corp_key && c.apps.values().any(|a| a.secret == secret))
        {
            40091
        } else {
            40001
        };
        // Wrong secrets from one IP move it toward the 1-hour ban (45009 at gettoken).
        let limit = w.settings.wrong_secret_per_hour;
        limits::hit(w, &ban_key, limit, 3600)?;
        return Err(ApiErr::new(code));
    };
    Ok(issue(w, &corp_key, owner, call.now_ms))
}

/// Returns the live token of (corp, owner) or mints a new one.
pub fn issue(w: &mut World, corp_key: &str, owner: Owner, now_ms: u64) -> Value {
    let lifetime_ms = w.settings.token_lifetime_secs * 1000;
    let live = w
        .token_of
        .get(&(corp_key.to_string(), owner.clone()))
        .and_then(|t| w.tokens.get(t).map(|info| (t.clone(), info.clone())))
        .filter(|(_, info)| !info.revoked && info.expires_ms > now_ms);
    let (token, expires_ms) = match live {
        Some((t, info)) => (t, info.expires_ms),
        None => {
            let t = random_token(128);
            let info = TokenInfo {
                corp: corp_key.to_string(),
                owner: owner.clone(),
                issued_ms: now_ms,
                expires_ms: now_ms + lifetime_ms,
                revoked: false,
            };
            w.tokens.insert(t.clone(), info);
            w.token_of.insert((corp_key.to_string(), owner), t.clone());
            (t, now_ms + lifetime_ms)
        }
    };
    let expires_in = if w.settings.token_expires_in_full {
        w.settings.token_lifetime_secs
    } else {
        (expires_ms - now_ms).div_ceil(1000)
    };
    json!({"access_token": token, "expires_in": expires_in})
}
