//! `get_api_domain_ip` and `getcallbackip` (wecom-api.md §8): any valid token may call them.
//! The lists come from the settings; an empty list answers the sim's own address (§17 #25).

use super::Call;
use crate::envelope::ApiErr;
use crate::world::World;
use serde_json::{json, Value};

fn ip_list(configured: &[String], self_ip: &str) -> Value {
    if configured.is_empty() {
        json!({ "ip_list": [self_ip] })
    } else {
        json!({ "ip_list": configured })
    }
}

pub fn get_api_domain_ip(w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Ok(ip_list(&w.settings.api_domain_ips, &w.self_ip))
}

pub fn getcallbackip(w: &mut World, _call: &Call) -> Result<Value, ApiErr> {
    Ok(ip_list(&w.settings.callback_ips, &w.self_ip))
}
