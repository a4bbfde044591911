//! The one check for every path a flow sends the browser to after it (the console's
//! `next`, the member sign-in's return path, later the OIDC flows): only a path on the
//! host the request came to, never another origin.

/// Where a member sign-in lands without a return path.
pub const MEMBER_DEFAULT: &str = "/";
/// Where an admin sign-in lands without a return path.
pub const CONSOLE_DEFAULT: &str = "/console";
/// Longer return paths are refused rather than cut (a cut path is another path).
pub const MAX_LEN: usize = 1024;

/// `input` if it is a same-origin absolute path, else `None`.
///
/// Refused: anything not starting with `/`; `//host` and `/\host` (browsers read both
/// as another host); any control character (browsers drop TAB/CR/LF, so `/\t/host`
/// becomes `//host`; CR/LF would split headers; others make the `Location` header
/// invalid); a backslash anywhere (browsers treat it as `/`); more than `MAX_LEN` bytes.
pub fn check(input: &str) -> Option<&str> {
    let b = input.as_bytes();
    let ok = b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/') | Some(b'\\'))
        && input.len() <= MAX_LEN
        && !input.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(input)
}

/// `input` if it passes [`check`], otherwise `default`.
pub fn or<'a>(input: &'a str, default: &'a str) -> &'a str {
    check(input).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_pass_others_do_not() {
        for ok in [
            "/",
            "/apps/1?x=http://y",
            "/a/b#c",
            "/%2F%2Fevil.com",
            "/console/setup/2",
        ] {
            assert_eq!(check(ok), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https://evil.com",
            "evil.com",
            "/\t/evil.com",
            "/\u{b}/evil.com",
            "/\u{c}x",
            "/\u{7f}x",
            "/\u{85}x",
            "/x\r\nSet-Cookie: a=b",
            "/a\\b",
            "javascript:alert(1)",
        ] {
            assert_eq!(check(bad), None, "{bad:?}");
        }
        assert_eq!(check(&format!("/{}", "a".repeat(2000))), None);
        assert_eq!(or("//evil", CONSOLE_DEFAULT), "/console");
    }

    /// What a browser does with an accepted path: resolve it against the page's URL
    /// (the `url` crate implements the WHATWG parser browsers use, including dropping
    /// tabs and newlines). It must stay on the same origin.
    fn same_origin(path: &str) -> bool {
        let base = url::Url::parse("https://tenant.example:8443/console/login").unwrap();
        match base.join(path) {
            Ok(u) => u.origin() == base.origin(),
            Err(_) => false,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        #[test]
        fn accepted_paths_stay_on_the_origin(s in "\\PC*") {
            if let Some(p) = check(&s) {
                proptest::prop_assert!(same_origin(p), "{p:?}");
                proptest::prop_assert!(axum::http::HeaderValue::from_str(p).is_ok(), "{p:?}");
            }
        }

        #[test]
        fn any_string_is_safe(s in proptest::collection::vec(proptest::prelude::any::<char>(), 0..64)) {
            let s: String = s.into_iter().collect();
            if let Some(p) = check(&s) {
                proptest::prop_assert!(same_origin(p), "{p:?}");
            }
        }

        #[test]
        fn slash_prefixed_tricks(rest in "[/\\\\\t\n\r\u{b}\u{c} a-z:.@%]{0,12}") {
            let s = format!("/{rest}");
            if let Some(p) = check(&s) {
                proptest::prop_assert!(same_origin(p), "{p:?}");
                proptest::prop_assert!(axum::http::HeaderValue::from_str(p).is_ok(), "{p:?}");
            }
        }
    }
}
