//! Registering relying parties (the console's use cases): a client belongs to an app of
//! the catalogue, is confidential or public, has exact redirect URIs, and a secret that is
//! shown once, stored hashed and can be rotated.

use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::domain::oidc::{hash_secret, validate_redirect_uri, Client, ClientKind, SigningAlg};
use crate::oidc::OidcError;

/// What the console form gives.
#[derive(Clone, Debug, Default)]
pub struct NewClient {
    pub name: String,
    pub app_id: Option<i64>,
    pub kind: Option<ClientKind>,
    /// One URI per line.
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub id_token_alg: Option<SigningAlg>,
    pub synthesize_email: bool,
    pub email_domain: String,
    pub groups_full_path: bool,
}

/// A registered client and its secret in clear, to show once.
pub struct Registered {
    pub client: Client,
    pub secret: Option<String>,
}

fn uri_lines(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        validate_redirect_uri(line)?;
        if !out.iter().any(|u| u == line) {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// Checks the form; the error is shown to the admin.
pub fn validate(n: &NewClient) -> Result<(Vec<String>, Vec<String>), String> {
    if n.name.trim().is_empty() {
        return Err("the client needs a name".into());
    }
    let redirects = uri_lines(&n.redirect_uris)?;
    if redirects.is_empty() {
        return Err("register at least one redirect URI".into());
    }
    let logouts = uri_lines(&n.post_logout_redirect_uris)?;
    if n.synthesize_email {
        let d = n.email_domain.trim();
        if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
            return Err("synthesized email needs a domain such as example.com".into());
        }
    }
    Ok((redirects, logouts))
}

pub async fn register(
    st: &AppState,
    tenant_id: i64,
    actor: &str,
    ip: Option<String>,
    n: &NewClient,
) -> Result<Result<Registered, String>, OidcError> {
    let (redirects, logouts) = match validate(n) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let now = crate::oidc::now_ms(st);
    let kind = n.kind.unwrap_or(ClientKind::Confidential);
    let secret = (kind == ClientKind::Confidential).then(crate::auth::random_token);
    let client = Client {
        client_id: format!("c_{}", &crate::auth::random_token()[..22]),
        tenant_id,
        app_id: n.app_id,
        name: n.name.trim().to_string(),
        kind,
        secret_hash: secret.as_deref().map(hash_secret),
        redirect_uris: redirects,
        post_logout_redirect_uris: logouts,
        id_token_alg: n.id_token_alg.unwrap_or(SigningAlg::Rs256),
        synthesize_email: n.synthesize_email,
        email_domain: n.email_domain.trim().to_ascii_lowercase(),
        groups_full_path: n.groups_full_path,
        created_at: now,
        updated_at: now,
    };
    st.store.insert_oidc_client(&client).await?;
    st.store
        .audit(&NewAudit {
            tenant_id,
            actor: actor.to_string(),
            action: "oidc.client_registered",
            detail: format!("{} ({}, {})", client.client_id, client.name, kind.as_str()),
            ip,
        })
        .await?;
    Ok(Ok(Registered { client, secret }))
}

/// A new secret for a confidential client (the old one stops working at once).
pub async fn rotate_secret(
    st: &AppState,
    tenant_id: i64,
    client_id: &str,
    actor: &str,
    ip: Option<String>,
) -> Result<Option<String>, OidcError> {
    let secret = crate::auth::random_token();
    let now = crate::oidc::now_ms(st);
    if !st
        .store
        .set_oidc_client_secret(tenant_id, client_id, &hash_secret(&secret), now)
        .await?
    {
        return Ok(None);
    }
    st.store
        .audit(&NewAudit {
            tenant_id,
            actor: actor.to_string(),
            action: "oidc.client_secret_rotated",
            detail: client_id.to_string(),
            ip,
        })
        .await?;
    Ok(Some(secret))
}

pub async fn delete(
    st: &AppState,
    tenant_id: i64,
    client_id: &str,
    actor: &str,
    ip: Option<String>,
) -> Result<bool, OidcError> {
    let gone = st.store.delete_oidc_client(tenant_id, client_id).await?;
    if gone {
        st.store
            .audit(&NewAudit {
                tenant_id,
                actor: actor.to_string(),
                action: "oidc.client_deleted",
                detail: client_id.to_string(),
                ip,
            })
            .await?;
    }
    Ok(gone)
}
