//! Directory users as the login layer sees them: an internal id that never changes, and
//! an account status that decides who may sign in.

use serde::Serialize;
use std::str::FromStr;

/// Who may sign in: only `Authorized` users get in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Authorized,
    Unauthorized,
    /// Left WeCom, out of the app's scope, disabled in WeCom, or disabled by an admin.
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Authorized => "authorized",
            UserStatus::Unauthorized => "unauthorized",
            UserStatus::Disabled => "disabled",
        }
    }
}

impl FromStr for UserStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "authorized" => Ok(UserStatus::Authorized),
            "unauthorized" => Ok(UserStatus::Unauthorized),
            "disabled" => Ok(UserStatus::Disabled),
            _ => Err(format!("unknown user status {s:?}")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// No longer in the self-built app's visible scope.
    LeftScope,
    /// Deleted from WeCom (left the company).
    LeftWecom,
    /// Disabled (status 2) in WeCom.
    WecomDisabled,
    /// Disabled by a console admin.
    Admin,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::LeftScope => "left_scope",
            DisabledReason::LeftWecom => "left_wecom",
            DisabledReason::WecomDisabled => "wecom_disabled",
            DisabledReason::Admin => "admin",
        }
    }
}

impl FromStr for DisabledReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "left_scope" => Ok(DisabledReason::LeftScope),
            "left_wecom" => Ok(DisabledReason::LeftWecom),
            "wecom_disabled" => Ok(DisabledReason::WecomDisabled),
            "admin" => Ok(DisabledReason::Admin),
            _ => Err(format!("unknown disabled reason {s:?}")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// Internal id: never changes, whatever happens in WeCom.
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub status: UserStatus,
    pub disabled_reason: Option<DisabledReason>,
    pub position: String,
    pub alias: String,
    pub telephone: String,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub main_department: Option<i64>,
    /// WeCom's member status: 1 active, 2 disabled, 4 not activated, 5 left.
    pub wecom_status: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

/// Local notes on a person: the bridge's own, never written by a sync (issue 20).
pub const MAX_NOTES: usize = 1000;

/// Notes as stored (trimmed), or why they are refused.
pub fn check_notes(notes: &str) -> Result<String, String> {
    let n = notes.trim();
    if n.chars().count() > MAX_NOTES {
        return Err(format!("notes are longer than {MAX_NOTES} characters"));
    }
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            UserStatus::Authorized,
            UserStatus::Unauthorized,
            UserStatus::Disabled,
        ] {
            assert_eq!(s.as_str().parse::<UserStatus>().unwrap(), s);
        }
        for r in [
            DisabledReason::LeftScope,
            DisabledReason::LeftWecom,
            DisabledReason::WecomDisabled,
            DisabledReason::Admin,
        ] {
            assert_eq!(r.as_str().parse::<DisabledReason>().unwrap(), r);
        }
        assert!("x".parse::<UserStatus>().is_err());
    }

    #[test]
    fn notes_are_trimmed_and_bounded() {
        assert_eq!(super::check_notes("  a note \n").unwrap(), "a note");
        assert!(super::check_notes(&"字".repeat(super::MAX_NOTES)).is_ok());
        assert!(super::check_notes(&"字".repeat(super::MAX_NOTES + 1)).is_err());
    }
}
