//! Claims about a member: `sub` is the internal user id (never the WeCom userid, which an
//! admin can change); `name` and `preferred_username` (the userid) on `profile`, with
//! `locale`; `email` only when known, or synthesized per client when opted in (then
//! `email_verified=false`); `groups` = departments (names or full paths) and tags.

use crate::app::AppState;
use crate::domain::oidc::{Client, Scopes};
use crate::domain::user::User;
use crate::oidc::OidcError;
use serde_json::{json, Map, Value};

/// A member as the claims need them.
#[derive(Clone, Debug)]
pub struct Subject {
    pub user: User,
    /// The WeCom userid as WeCom spells it.
    pub userid: Option<String>,
    pub groups: Vec<String>,
}

/// Loads a member with what `scopes` need (departments and tags only for `groups`).
pub async fn load_subject(
    st: &AppState,
    tenant_id: i64,
    user_id: i64,
    client: &Client,
    scopes: Scopes,
) -> Result<Option<Subject>, OidcError> {
    let Some(user) = st.store.user_by_id(tenant_id, user_id).await? else {
        return Ok(None);
    };
    let extras = st.store.user_extras(tenant_id, user_id).await?;
    let userid = extras
        .identities
        .iter()
        .find(|i| i.kind == "wecom")
        .map(|i| i.display_id.clone());
    let mut groups = Vec::new();
    if scopes.groups {
        for (id, name) in &extras.departments {
            if client.groups_full_path {
                let path = st.store.department_path(tenant_id, *id).await?;
                groups.push(if path.is_empty() {
                    name.clone()
                } else {
                    path.join("/")
                });
            } else {
                groups.push(name.clone());
            }
        }
        groups.extend(extras.tags.iter().map(|(_, n)| n.clone()));
    }
    Ok(Some(Subject {
        user,
        userid,
        groups,
    }))
}

/// The scoped claims (userinfo, and copied into the ID token), with `sub`.
pub fn user_claims(
    s: &Subject,
    scopes: Scopes,
    client: &Client,
    locale: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sub".into(), json!(s.user.id.to_string()));
    if scopes.profile {
        m.insert("name".into(), json!(s.user.name));
        if let Some(u) = &s.userid {
            m.insert("preferred_username".into(), json!(u));
        }
        m.insert("locale".into(), json!(locale));
    }
    if scopes.email {
        let known = s.user.email.as_deref().filter(|e| !e.trim().is_empty());
        if let Some(e) = known {
            // The address the organisation keeps for the member in its own directory.
            m.insert("email".into(), json!(e));
            m.insert("email_verified".into(), json!(true));
        } else if client.synthesize_email && !client.email_domain.is_empty() {
            if let Some(u) = &s.userid {
                m.insert(
                    "email".into(),
                    json!(format!(
                        "{}@{}",
                        u.to_ascii_lowercase(),
                        client.email_domain
                    )),
                );
                m.insert("email_verified".into(), json!(false));
            }
        }
    }
    if scopes.groups {
        m.insert("groups".into(), json!(s.groups));
    }
    m
}

/// What an ID token says beyond the member's claims.
pub struct IdTokenFacts<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time_ms: i64,
    pub access_token: &'a str,
    pub now_ms: i64,
    pub ttl_ms: i64,
}

pub fn id_token_claims(mut user: Map<String, Value>, f: &IdTokenFacts<'_>) -> Value {
    let iat = f.now_ms / 1000;
    user.insert("iss".into(), json!(f.issuer));
    user.insert("aud".into(), json!(f.client_id));
    user.insert("azp".into(), json!(f.client_id));
    user.insert("iat".into(), json!(iat));
    user.insert("exp".into(), json!((f.now_ms + f.ttl_ms) / 1000));
    user.insert("auth_time".into(), json!(f.auth_time_ms / 1000));
    user.insert(
        "at_hash".into(),
        json!(crate::domain::oidc::at_hash(f.access_token)),
    );
    if let Some(n) = f.nonce {
        user.insert("nonce".into(), json!(n));
    }
    Value::Object(user)
}
