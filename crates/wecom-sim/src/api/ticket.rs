//! JS-SDK tickets (wecom-api.md §10, §17 #37): the corp ticket (`get_jsapi_ticket`) and the
//! app ticket (`ticket/get?type=agent_config`). Like tokens, the same ticket comes back
//! while valid with the remaining `expires_in`.
//!
//! Limits: the corp ticket allows 400 fetches an hour per corp and 100 per calling app;
//! the app ticket 100 an hour per app (45009 beyond, blocked for the hour). Every fetch
//! counts, reused ticket or not.

use super::Call;
use crate::envelope::ApiErr;
use crate::limits;
use crate::world::{random_token, TicketInfo, World};
use serde_json::{json, Value};

/// Length of a minted ticket (the documented sample ticket has 86 characters).
const TICKET_LEN: usize = 86;

pub fn get_jsapi_ticket(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let agentid = call.owner().agentid().ok_or(ApiErr::new(48002))?;
    let (per_corp, per_app) = (
        w.settings.jsapi_corp_tickets_per_hour,
        w.settings.jsapi_app_tickets_per_hour,
    );
    limits::hit(w, &format!("jsapi:corp:{}", call.corp), per_corp, 3600)?;
    limits::hit(
        w,
        &format!("jsapi:corp-by-app:{}:{agentid}", call.corp),
        per_app,
        3600,
    )?;
    Ok(ticket(w, (call.corp.clone(), None), call.now_ms))
}

pub fn ticket_get(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    if call.q("type") != Some("agent_config") {
        return Err(ApiErr::new(40058));
    }
    let agentid = call.owner().agentid().ok_or(ApiErr::new(48002))?;
    let per_app = w.settings.jsapi_app_tickets_per_hour;
    limits::hit(
        w,
        &format!("jsapi:agent:{}:{agentid}", call.corp),
        per_app,
        3600,
    )?;
    Ok(ticket(w, (call.corp.clone(), Some(agentid)), call.now_ms))
}

/// The live ticket under `key`, or a fresh one once it expired.
fn ticket(w: &mut World, key: (String, Option<u32>), now_ms: u64) -> Value {
    let lifetime_ms = w.settings.ticket_lifetime_secs * 1000;
    let info = match w.tickets.get(&key).filter(|t| t.expires_ms > now_ms) {
        Some(t) => t.clone(),
        None => {
            let t = TicketInfo {
                ticket: random_token(TICKET_LEN),
                expires_ms: now_ms + lifetime_ms,
            };
            w.tickets.insert(key, t.clone());
            t
        }
    };
    let expires_in = (info.expires_ms - now_ms).div_ceil(1000);
    json!({"ticket": info.ticket, "expires_in": expires_in})
}
