//! Audit entries: who did what, when, from where.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub tenant_id: i64,
    /// `admin:<username>`, `operator` (CLI) or `system`.
    pub actor: String,
    /// Dotted verb, e.g. `wecom.credentials.saved`.
    pub action: String,
    /// Human-readable detail; never a secret.
    pub detail: String,
    pub ip: Option<String>,
    pub at: i64,
}

/// An entry about to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAudit {
    pub tenant_id: i64,
    pub actor: String,
    pub action: &'static str,
    pub detail: String,
    pub ip: Option<String>,
}

/// The longest actor kept: a username typed on a public sign-in page must not fill the
/// log (or break its layout) with kilobytes of text.
pub const MAX_ACTOR_CHARS: usize = 100;
/// The longest detail kept.
pub const MAX_DETAIL_CHARS: usize = 2000;

impl NewAudit {
    /// The actor as stored: at most `MAX_ACTOR_CHARS` characters, cut ones ending in `…`.
    pub fn stored_actor(&self) -> std::borrow::Cow<'_, str> {
        cap(&self.actor, MAX_ACTOR_CHARS)
    }

    /// The detail as stored, capped the same way.
    pub fn stored_detail(&self) -> std::borrow::Cow<'_, str> {
        cap(&self.detail, MAX_DETAIL_CHARS)
    }
}

fn cap(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s[i..].chars().nth(1).is_some() => format!("{}…", &s[..i]).into(),
        _ => s.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_actors_are_capped() {
        let e = |actor: String| NewAudit {
            tenant_id: 1,
            actor,
            action: "x",
            detail: "d".repeat(5000),
            ip: None,
        };
        assert_eq!(e("admin:root".into()).stored_actor(), "admin:root");
        let exact = "a".repeat(MAX_ACTOR_CHARS);
        assert_eq!(e(exact.clone()).stored_actor(), exact);
        let long = e(format!("anonymous:{}", "名".repeat(5000)));
        let stored = long.stored_actor();
        assert_eq!(stored.chars().count(), MAX_ACTOR_CHARS);
        assert!(stored.ends_with('…') && stored.starts_with("anonymous:名"));
        assert_eq!(long.stored_detail().chars().count(), MAX_DETAIL_CHARS);
    }
}
