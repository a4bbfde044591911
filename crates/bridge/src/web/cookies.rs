//! Minimal cookie reading and writing (no crate needed for two cookies).

use axum::http::HeaderMap;

pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when served over HTTPS.
pub fn set(name: &str, value: &str, max_age_secs: Option<u64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(a) = max_age_secs {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

pub fn clear(name: &str, secure: bool) -> String {
    set(name, "", Some(0), secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_write() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "a=1; wb_admin=xyz; lang=en".parse().unwrap());
        assert_eq!(get(&h, "wb_admin").as_deref(), Some("xyz"));
        assert_eq!(get(&h, "missing"), None);
        let c = set("s", "v", Some(60), true);
        assert!(
            c.contains("HttpOnly")
                && c.contains("SameSite=Lax")
                && c.contains("Secure")
                && c.contains("Max-Age=60")
        );
        assert!(!set("s", "v", None, false).contains("Secure"));
    }
}
