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
