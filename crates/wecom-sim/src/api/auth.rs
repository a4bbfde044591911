//! The OAuth code exchange (wecom-api.md §9.3, §9.4, §17 #34–#36): `auth/getuserinfo`,
//! `auth/getuserdetail` and the legacy PascalCase `user/getuserinfo`.

use super::Call;
use crate::envelope::ApiErr;
use crate::model::SENSITIVE_FIELDS;
use crate::world::{random_token, Owner, UserTicket, World};
use serde_json::{json, Map, Value};

/// Who a redeemed code named.
enum Identity {
    Member {
        userid: String,
        user_ticket: Option<(String, u64)>,
    },
    Outsider {
        openid: String,
    },
}

pub fn getuserinfo(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    Ok(match redeem(w, call)? {
        Identity::Member {
            userid,
            user_ticket,
        } => {
            let mut v = json!({ "userid": userid });
            if let Some((ticket, _)) = user_ticket {
                v["user_ticket"] = Value::from(ticket);
            }
            v
        }
        Identity::Outsider { openid } => json!({ "openid": openid }),
    })
}

/// The pre-2022 path answers with PascalCase keys (the "casing trap" of §9.4).
pub fn legacy_getuserinfo(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    Ok(match redeem(w, call)? {
        Identity::Member {
            userid,
            user_ticket,
        } => {
            let mut v = json!({ "UserId": userid, "DeviceId": "" });
            if let Some((ticket, expires_in)) = user_ticket {
                v["user_ticket"] = Value::from(ticket);
                v["expires_in"] = Value::from(expires_in);
            }
            v
        }
        Identity::Outsider { openid } => json!({ "OpenId": openid, "DeviceId": "" }),
    })
}

/// Checks and consumes a code. Nothing is consumed unless the exchange succeeds.
fn redeem(w: &mut World, call: &Call) -> Result<Identity, ApiErr> {
    let code = call
        .q("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiErr::with_msg(41008, "missing code"))?;
    let now = call.now_ms;
    let ttl_ms = w.settings.code_ttl_secs * 1000;
    let info = w.codes.get(code).ok_or(ApiErr::new(40029))?;
    if info.issued_ms + ttl_ms <= now {
        w.codes.remove(code);
        return Err(ApiErr::new(40029));
    }
    if info.corp != call.corp {
        return Err(ApiErr::new(40029));
    }
    let agentid = match call.owner() {
        Owner::App { agentid } | Owner::Provider { agentid } => *agentid,
        Owner::ContactSync => return Err(ApiErr::new(48002)),
    };
    // The code belongs to the app it was made for, and its redirect host must be the
    // token app's trusted domain (web login: its callback domain), §9.3.
    if info.agentid.is_some_and(|a| a != agentid) {
        return Err(ApiErr::new(50001));
    }
    let corp = w.corps.get_mut(&call.corp).ok_or(ApiErr::new(40029))?;
    match (call.owner(), corp.apps.get(&agentid)) {
        (Owner::App { .. }, Some(app)) => {
            let domain = if info.web_login {
                &app.web_login_domain
            } else {
                &app.redirect_domain
            };
            let domain = domain.trim();
            if domain.is_empty() || !domain.eq_ignore_ascii_case(&info.redirect_host) {
                return Err(ApiErr::new(50001));
            }
        }
        // Provider apps have no domains in the model: the agentid binding above suffices,
        // but a code made without one cannot be pinned to them.
        (Owner::Provider { .. }, _) if info.agentid.is_some() => {}
        _ => return Err(ApiErr::new(50001)),
    }
    let info = info.clone();
    let identity = match (&info.userid, &info.openid) {
        (Some(k), _) => {
            // A member deleted since sign-in can no longer be named.
            let userid = corp
                .member(k)
                .map(|m| m.userid.clone())
                .ok_or(ApiErr::new(40029))?;
            let wants_ticket = !info.web_login && info.scope == "snsapi_privateinfo";
            let in_scope = wants_ticket && corp.scope_of(agentid).has_user(k);
            let user_ticket = in_scope.then(|| {
                let ttl = w.settings.user_ticket_ttl_secs;
                let ticket = random_token(86);
                if w.user_tickets.len() >= 4096 && w.user_tickets.len() & 4095 == 0 {
                    w.user_tickets.retain(|_, t| t.expires_ms > now);
                }
                w.user_tickets.insert(
                    ticket.clone(),
                    UserTicket {
                        corp: call.corp.clone(),
                        agentid,
                        userid: k.clone(),
                        expires_ms: now + ttl * 1000,
                    },
                );
                (ticket, ttl)
            });
            Identity::Member {
                userid,
                user_ticket,
            }
        }
        (None, Some(openid)) => Identity::Outsider {
            openid: openid.clone(),
        },
        (None, None) => return Err(ApiErr::new(40029)),
    };
    w.codes.remove(code);
    Ok(identity)
}

/// `POST auth/getuserdetail {"user_ticket": …}`: the sensitive fields the admin ticked for
/// the app; `gender` is always present, `"0"` unless ticked.
pub fn getuserdetail(w: &mut World, call: &Call) -> Result<Value, ApiErr> {
    let ticket = match call.body.get("user_ticket") {
        None | Some(Value::Null) => return Err(ApiErr::new(40063)),
        Some(Value::String(s)) if s.is_empty() => return Err(ApiErr::new(40063)),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiErr::new(40058)),
    };
    let agentid = call.owner().agentid().ok_or(ApiErr::new(48002))?;
    let t = w.user_tickets.get(ticket).ok_or(ApiErr::new(40029))?;
    if t.expires_ms <= call.now_ms {
        w.user_tickets.remove(ticket);
        return Err(ApiErr::new(40029));
    }
    // Another corp's or another app's ticket is as good as unknown.
    if t.corp != call.corp || t.agentid != agentid {
        return Err(ApiErr::new(40029));
    }
    let userid_key = t.userid.clone();
    let corp = w.corps.get_mut(&call.corp).ok_or(ApiErr::new(40029))?;
    if !corp.scope_of(agentid).has_user(&userid_key) {
        return Err(ApiErr::new(50002));
    }
    let ticked: Vec<String> = corp
        .apps
        .get(&agentid)
        .map(|a| a.privateinfo_fields.clone())
        .unwrap_or_default();
    let m = corp.member(&userid_key).ok_or(ApiErr::new(40029))?;
    let mut out = Map::new();
    out.insert("userid".into(), Value::from(m.userid.clone()));
    let is_ticked = |f: &str| ticked.iter().any(|t| t == f);
    let gender = if is_ticked("gender") { m.gender } else { 0 };
    out.insert("gender".into(), Value::from(gender.to_string()));
    for field in SENSITIVE_FIELDS.iter().filter(|f| **f != "gender") {
        if !is_ticked(field) {
            continue;
        }
        let value = match *field {
            "mobile" => &m.mobile,
            "email" => &m.email,
            "biz_mail" => &m.biz_mail,
            "avatar" => &m.avatar,
            "qr_code" => &m.qr_code,
            "address" => &m.address,
            _ => continue,
        };
        out.insert((*field).into(), Value::from(value.clone()));
    }
    Ok(Value::Object(out))
}
