//! WeCom's response envelope: `errcode`/`errmsg` in the body and the `Error-Code` /
//! `Error-Msg` headers, HTTP 200 for errors too, and the live errmsg suffix
//! (`, hint: […], from ip: …, more info at …`), wecom-api.md §1.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{Map, Value};

/// An API failure as a handler reports it; the dispatcher renders it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiErr {
    pub errcode: i64,
    /// Short English text; the suffix is added when rendering.
    pub errmsg: String,
}

impl ApiErr {
    pub fn new(errcode: i64) -> Self {
        ApiErr {
            errcode,
            errmsg: short_text(errcode).to_string(),
        }
    }
    pub fn with_msg(errcode: i64, errmsg: impl Into<String>) -> Self {
        ApiErr {
            errcode,
            errmsg: errmsg.into(),
        }
    }
}

/// The short errmsg WeCom (or, where none was captured, the sim) uses for a code (§15).
pub fn short_text(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system busy",
        40001 => "invalid credential",
        40003 => "invalid userid",
        40013 => "invalid corpid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40056 => "invalid agentid",
        40058 => "invalid parameter",
        40063 => "missing parameter",
        40066 => "invalid department list",
        40068 => "invalid tagid",
        40091 => "secret is invalid",
        40093 => "invalid signature",
        40125 => "invalid open_userid",
        41001 => "access_token missing",
        41002 => "corpid missing",
        41004 => "corpsecret missing",
        41009 => "missing userid",
        42001 => "access_token expired",
        42012 => "jsapi_ticket unusable",
        45009 => "api freq out of limit",
        45029 => "response size out of limit",
        45033 => "api concurrent out of limit",
        46004 => "user not found",
        48002 => "api forbidden",
        48009 => "api forbidden for contact assistant",
        50001 => "redirect_url not registered as trusted domain",
        50002 => "member out of privilege scope",
        50003 => "app disabled",
        50100 => "invalid cursor",
        60003 => "department not found",
        60011 => "no privilege to access/modify contact/party/agent",
        60020 => "not allow to access from your ip",
        60021 => "userid not in app visible range",
        60111 => "userid not found",
        60123 => "invalid party id",
        60221 => "open_userid not belong to this provider",
        301002 => "not allow operate another agent with this accesstoken.",
        _ => "unknown error",
    }
}

/// `<short>, hint: [<13-digit ms><12 random digits>], from ip: <ip>, more info at …?e=<code>`.
pub fn full_errmsg(short: &str, errcode: i64, now_ms: u64, ip: &str) -> String {
    let mut rng = rand::thread_rng();
    let tail: u64 = rng.gen_range(0..1_000_000_000_000);
    format!(
        "{short}, hint: [{now_ms:013}{tail:012}], from ip: {ip}, more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    )
}

/// A JSON answer with the headers WeCom sends. `body` must be an object.
pub fn json_response(mut body: Map<String, Value>, errcode: i64, errmsg: &str) -> Response {
    body.insert("errcode".into(), Value::from(errcode));
    body.insert("errmsg".into(), Value::from(errmsg));
    let text = serde_json::to_string(&Value::Object(body)).unwrap_or_default();
    let mut resp = (StatusCode::OK, text).into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    h.insert("error-code", HeaderValue::from(errcode));
    if let Ok(v) = HeaderValue::from_str(errmsg) {
        h.insert("error-msg", v);
    }
    h.insert("server", HeaderValue::from_static("nginx"));
    resp
}

pub fn ok(body: Value) -> Response {
    let map = match body {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    json_response(map, 0, "ok")
}

/// An error answer: `defaults` are the fields WeCom keeps in failure bodies (e.g. `ip_list: []`).
pub fn error(err: &ApiErr, defaults: Value, now_ms: u64, ip: &str) -> Response {
    let map = match defaults {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let msg = full_errmsg(&err.errmsg, err.errcode, now_ms, ip);
    json_response(map, err.errcode, &msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_shape() {
        let m = full_errmsg(
            "invalid credential",
            40001,
            1_732_435_321_001,
            "198.51.100.7",
        );
        let hint = m
            .split("hint: [")
            .nth(1)
            .unwrap()
            .split(']')
            .next()
            .unwrap();
        assert_eq!(hint.len(), 25);
        assert!(hint.starts_with("1732435321001"));
        assert!(m.contains("from ip: 198.51.100.7, more info at https://open.work.weixin.qq.com/devtool/query?e=40001"));
    }
}
