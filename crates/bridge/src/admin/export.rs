//! Exports as files: CSV (RFC 4180, spreadsheet-safe) of the audit log, for the console,
//! the API and the operator's `audit export`; the Users page writes its rows with csv_field.

use crate::app::AppState;
use crate::domain::audit::AuditEntry;
use crate::store::{AuditQuery, StoreError};

/// The most entries one export holds.
pub const EXPORT_MAX: usize = 100_000;

/// One CSV field, quoted when needed (RFC 4180); a leading `=`, `+`, `-` or `@` is
/// prefixed with `'` so a spreadsheet does not run it as a formula.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Audit entries as CSV: id, at (RFC 3339 UTC), actor, action, detail, ip.
pub fn audit_csv(entries: &[AuditEntry]) -> String {
    audit_csv_with(entries, crate::web::pages::format_utc)
}

/// As [`audit_csv`], with each time written by `time`.
pub fn audit_csv_with(entries: &[AuditEntry], time: impl Fn(i64) -> String) -> String {
    let mut out = String::from("id,at,actor,action,detail,ip\r\n");
    for e in entries {
        let line = [
            e.id.to_string(),
            time(e.at),
            csv_field(&e.actor),
            csv_field(&e.action),
            csv_field(&e.detail),
            csv_field(e.ip.as_deref().unwrap_or("")),
        ]
        .join(",");
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

/// The entries `q` selects, newest first, as CSV (at most [`EXPORT_MAX`]; `q.limit` and
/// `q.before_id` are the pager's). `time` writes an entry's time (RFC 3339 UTC for tools, the tenant's zone for people).
pub async fn export_csv(
    st: &AppState,
    tenant_id: i64,
    mut q: AuditQuery,
    time: impl Fn(i64) -> String,
) -> Result<String, StoreError> {
    const PAGE: usize = 10_000;
    let mut all = Vec::new();
    q.limit = PAGE as i64;
    q.before_id = None;
    loop {
        let page = st.store.audit_by_filter(tenant_id, &q).await?;
        let Some(last) = page.last() else { break };
        q.before_id = Some(last.id);
        let n = page.len();
        all.extend(page);
        if n < PAGE || all.len() >= EXPORT_MAX {
            break;
        }
    }
    all.truncate(EXPORT_MAX);
    Ok(audit_csv_with(&all, time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
