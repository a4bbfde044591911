//! Claims about a member: `sub` is the internal user id (never the WeCom userid, which an
//! admin can change); `name` and `preferred_username` (the userid) on `profile`, with
//! `locale`, and `picture` / `gender` when known; `email` only when known (see
//! `domain::consent::email_claim` for which address and `email_verified`), or synthesized
//! per client when opted in (then `email_verified=false`); `phone` gives `phone_number`;
//! `groups` = departments (names or full paths) and tags. Values filled with the
//! member's consent (issue 20) count where the directory has none.

use crate::app::AppState;
use crate::domain::consent::{self, Consented, PrivateField};
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
    /// Values the member consented to share (loaded for `profile`, `email` and `phone`).
    pub consented: Vec<Consented>,
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
    let consented = if scopes.profile || scopes.email || scopes.phone {
        st.store.consented_fields(tenant_id, user_id).await?
    } else {
        Vec::new()
    };
    Ok(Some(Subject {
        user,
        userid,
        groups,
        consented,
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
        if let Some(p) = s.consented(PrivateField::Avatar) {
            m.insert("picture".into(), json!(p));
        }
        if let Some(g) = s
            .consented(PrivateField::Gender)
            .and_then(consent::gender_claim)
        {
            m.insert("gender".into(), json!(g));
        }
    }
    if scopes.email {
        if let Some((e, verified)) = consent::email_claim(s.user.email.as_deref(), &s.consented) {
            m.insert("email".into(), json!(e));
            m.insert("email_verified".into(), json!(verified));
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
    if scopes.phone {
        let dir = s.user.mobile.as_deref();
        let c = s.consented.iter().find(|c| c.field == PrivateField::Mobile);
        if let Some(p) = consent::effective(dir, c) {
            // WeCom's spelling, as the member or the admin entered it; nobody here
            // verified it.
            m.insert("phone_number".into(), json!(p.value));
            m.insert("phone_number_verified".into(), json!(false));
        }
    }
    if scopes.groups {
        m.insert("groups".into(), json!(s.groups));
    }
    m
}

impl Subject {
    /// A consented value (the directory holds no avatar or gender).
    fn consented(&self, f: PrivateField) -> Option<&str> {
        self.consented
            .iter()
            .find(|c| c.field == f)
            .map(|c| c.value.as_str())
            .filter(|v| !v.trim().is_empty())
    }
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
