//! The set-up wizard's actions: check the CorpID/AgentId/Secret live against WeCom, seal
//! and store them, and describe the app's visible scope by name.

use crate::app::{seal_context, AppState, SEAL_VERSION};
use crate::domain::audit::NewAudit;
use crate::domain::integration::{
    verify_file_content, FieldErrors, IntegrationRole, WecomCredentialsInput,
};
use crate::domain::now_ms;
use crate::domain::tenant::{EditionTooLow, IntegrationMode, Tenant};
use crate::store::{IntegrationRecord, StoreError};
use wecom::types::Agent;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Edition(#[from] EditionTooLow),
    #[error("some fields are invalid")]
    Fields(FieldErrors),
    #[error(transparent)]
    Wecom(#[from] wecom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored secrets cannot be opened: {0}")]
    Seal(#[from] crate::seal::SealError),
    /// Not a name WeCom gives its domain-verification files.
    #[error("{0}")]
    VerifyFileName(String),
    #[error("verification file {0:?} not found")]
    NoVerifyFile(String),
}

/// Who is acting, for the audit log.
pub struct Actor {
    pub name: String,
    pub ip: Option<String>,
}

/// The record of a WeCom app WeCom just accepted, its secrets sealed under its own
/// (tenant, agentid, field) context. The callback Token and EncodingAESKey are kept from
/// `opened` once generated (WeCom stores them too); else new ones are made.
pub fn sealed_record(
    st: &AppState,
    tenant_id: i64,
    role: IntegrationRole,
    creds: &crate::domain::integration::WecomCredentials,
    opened: Option<&crate::app::OpenedIntegration>,
    agent: &Agent,
    callback_verified_at: Option<i64>,
) -> IntegrationRecord {
    let (token, aes_key) = match opened {
        Some(o) => (o.callback_token.clone(), o.callback_aes_key.clone()),
        None => (
            wecom::crypto::generate_token(),
            wecom::crypto::generate_encoding_aes_key(),
        ),
    };
    let (t, a) = (tenant_id, i64::from(creds.agentid));
    let seal = |field: &str, value: &str| st.sealer.seal_str(&seal_context(t, a, field), value);
    let now = now_ms();
    IntegrationRecord {
        tenant_id: t,
        agentid: a,
        role,
        corpid: creds.corpid.clone(),
        secret_sealed: seal("secret", &creds.secret),
        callback_token_sealed: seal("callback_token", &token),
        callback_aes_key_sealed: seal("callback_aes_key", &aes_key),
        seal_version: SEAL_VERSION,
        agent_json: serde_json::to_string(agent).ok(),
        verified_at: Some(now),
        callback_verified_at,
        updated_at: now,
    }
}

/// Validates the credentials with WeCom (gettoken, then agent/get) and saves them. An
/// empty secret keeps the stored one. Nothing is saved unless WeCom accepts them.
pub async fn save_credentials(
    st: &AppState,
    tenant: &Tenant,
    input: &WecomCredentialsInput,
    actor: &Actor,
) -> Result<Agent, SetupError> {
    tenant.edition.check_wecom_allowed()?;
    let existing = st.store.main_integration(tenant.id).await?;
    let mut creds = input
        .validate(existing.is_some())
        .map_err(SetupError::Fields)?;
    let opened = match &existing {
        Some(r) => Some(st.open_integration(r)?),
        None => None,
    };
    if creds.secret.is_empty() {
        creds.secret = opened
            .as_ref()
            .map(|o| o.secret.clone())
            .unwrap_or_default();
    }
    let client = st.wecom.get(&creds.corpid, &creds.secret)?;
    // An explicit gettoken: a cached token must not hide a secret that was just reset.
    client.gettoken().await?;
    let agent = client.agent_get(creds.agentid).await?;

    let t = tenant.id;
    // A different corp or app must be verified again by WeCom.
    let callback_verified_at = existing
        .as_ref()
        .filter(|e| e.corpid == creds.corpid && e.agentid == creds.agentid as i64)
        .and_then(|e| e.callback_verified_at);
    let record = sealed_record(
        st,
        t,
        IntegrationRole::Main,
        &creds,
        opened.as_ref(),
        &agent,
        callback_verified_at,
    );
    st.store.put_integration(&record).await?;
    let previous = tenant.integration_mode;
    if previous != IntegrationMode::SelfBuilt {
        st.store
            .set_integration_mode(t, IntegrationMode::SelfBuilt)
            .await?;
    }
    st.store
        .audit(&NewAudit {
            tenant_id: t,
            actor: actor.name.clone(),
            action: "wecom.credentials.saved",
            detail: format!(
                "CorpID {} AgentId {} ({}); integration mode {} → self_built",
                creds.corpid,
                creds.agentid,
                agent.name,
                previous.as_str()
            ),
            ip: actor.ip.clone(),
        })
        .await?;
    Ok(agent)
}

/// The app's visible scope with names, as step 3 shows it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ScopeView {
    pub users: Vec<(String, String)>,
    pub departments: Vec<(u32, String)>,
    pub tags: Vec<(u32, String)>,
    /// Lookups that failed (e.g. a tag deleted since), in plain words.
    pub notes: Vec<String>,
}

impl ScopeView {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.departments.is_empty() && self.tags.is_empty()
    }
}

/// Names the scope's members, departments and tags (a few calls; capped for huge scopes).
pub async fn describe_scope(client: &wecom::Client, agent: &Agent) -> ScopeView {
    const CAP: usize = 50;
    let mut v = ScopeView::default();
    for u in agent.scope_users().take(CAP) {
        match client.user_get(u).await {
            Ok(m) => v.users.push((u.to_string(), m.name)),
            Err(e) => {
                v.users.push((u.to_string(), String::new()));
                v.notes.push(format!("member {u}: {e}"));
            }
        }
    }
    for &d in agent.allow_partys.partyid.iter().take(CAP) {
        match client.department_get(d).await {
            Ok(dep) => v.departments.push((d, dep.name)),
            Err(e) => {
                v.departments.push((d, String::new()));
                v.notes.push(format!("department {d}: {e}"));
            }
        }
    }
    if !agent.allow_tags.tagid.is_empty() {
        match client.tag_list().await {
            Ok(tags) => {
                for &t in &agent.allow_tags.tagid {
                    let name = tags
                        .iter()
                        .find(|x| x.tagid == t)
                        .map(|x| x.tagname.clone())
                        .unwrap_or_default();
                    v.tags.push((t, name));
                }
            }
            Err(e) => {
                v.tags
                    .extend(agent.allow_tags.tagid.iter().map(|t| (*t, String::new())));
                v.notes.push(format!("tags: {e}"));
            }
        }
    }
    let more = agent.allow_userinfos.user.len().saturating_sub(CAP)
        + agent.allow_partys.partyid.len().saturating_sub(CAP);
    if more > 0 {
        v.notes.push(format!("{more} more entries not shown"));
    }
    v
}

/// What WeCom reports that does not match this tenant yet: the trusted domain (sign-in
/// would fail with "redirect uri需使用应用可信域名") and the app home page.
/// Each warning comes with the key of the step-3 row it is about (`trusted_domain`,
/// `home_url`), so the page shows it on that row.
pub fn domain_warnings(
    zh: bool,
    agent: &Agent,
    domain: &str,
    home_url: &str,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if !agent.redirect_domain.trim().eq_ignore_ascii_case(domain) {
        let now = if agent.redirect_domain.is_empty() {
            "—"
        } else {
            agent.redirect_domain.as_str()
        };
        out.push(("trusted_domain", if zh {
            format!("企业微信中的可信域名是 {now}，应为 {domain}。不一致时成员登录会看到“redirect uri需使用应用可信域名”。")
        } else {
            format!("WeCom's trusted domain is {now}; it must be {domain}. Until it matches, members signing in see \"redirect uri需使用应用可信域名\".")
        }));
    }
    if agent.home_url.trim() != home_url {
        out.push((
            "home_url",
            if zh {
                format!(
                    "企业微信中的应用主页是 {}，建议设为 {home_url}。",
                    if agent.home_url.is_empty() {
                        "—"
                    } else {
                        &agent.home_url
                    }
                )
            } else {
                format!(
                    "WeCom's app home page is {}; set it to {home_url}.",
                    if agent.home_url.is_empty() {
                        "—"
                    } else {
                        &agent.home_url
                    }
                )
            },
        ));
    }
    out
}

/// Serves WeCom's domain-verification file `name` at the tenant's domain root (its
/// content is the token in its name), audited.
pub async fn add_verify_file(
    st: &AppState,
    tenant_id: i64,
    name: &str,
    by: &Actor,
) -> Result<(), SetupError> {
    let content = verify_file_content(name).map_err(SetupError::VerifyFileName)?;
    let entry = verify_audit(tenant_id, by, "domain.verify_file.added", name);
    st.store
        .put_verify_file(tenant_id, name, &content, Some(&entry))
        .await?;
    Ok(())
}

/// Stops serving a verification file, audited.
pub async fn delete_verify_file(
    st: &AppState,
    tenant_id: i64,
    name: &str,
    by: &Actor,
) -> Result<(), SetupError> {
    let entry = verify_audit(tenant_id, by, "domain.verify_file.deleted", name);
    if !st
        .store
        .delete_verify_file(tenant_id, name, Some(&entry))
        .await?
    {
        return Err(SetupError::NoVerifyFile(name.to_string()));
    }
    Ok(())
}

fn verify_audit(tenant_id: i64, by: &Actor, action: &'static str, name: &str) -> NewAudit {
    NewAudit {
        tenant_id,
        actor: by.name.clone(),
        action,
        detail: name.to_string(),
        ip: by.ip.clone(),
    }
}
