//! Operator actions shared by the CLI and first start: tenants, editions, domains.

use crate::credentials::{hash_password, one_time_password};
use crate::domain::audit::NewAudit;
use crate::domain::tenant::{cookie_host_clash, normalize_domain, validate_slug, Edition, Tenant};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("{0}")]
    Invalid(String),
    #[error("no tenant named {0:?} (see `wecom-bridge tenant list`)")]
    UnknownTenant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct CreatedTenant {
    pub tenant: Tenant,
    pub username: String,
    pub one_time_password: String,
}

fn operator_audit(tenant_id: i64, action: &'static str, detail: String) -> NewAudit {
    NewAudit {
        tenant_id,
        actor: "operator".into(),
        action,
        detail,
        ip: None,
    }
}

/// Creates a tenant and its `admin` account with a one-time password (argon2 hashed;
/// the plain password is only returned, never stored).
pub async fn create_tenant(
    store: &Store,
    slug: &str,
    name: &str,
    edition: Edition,
    domain: Option<&str>,
) -> Result<CreatedTenant, OperatorError> {
    validate_slug(slug).map_err(OperatorError::Invalid)?;
    let domain = domain
        .map(normalize_domain)
        .transpose()
        .map_err(|e| OperatorError::Invalid(e.to_string()))?;
    if let Some(d) = &domain {
        refuse_cookie_host_clash(store, d, None).await?;
    }
    let tenant = store
        .create_tenant(slug, name, edition, domain.as_deref())
        .await?;
    let password = one_time_password();
    let hash = hash_password(password.clone())
        .await
        .map_err(|e| OperatorError::Invalid(e.to_string()))?;
    store.create_admin(tenant.id, "admin", &hash, true).await?;
    store
        .audit(&operator_audit(
            tenant.id,
            "tenant.created",
            format!("tenant {slug} ({}) on {:?}", edition.as_str(), domain),
        ))
        .await?;
    Ok(CreatedTenant {
        tenant,
        username: "admin".into(),
        one_time_password: password,
    })
}

/// Browsers send a host's cookies to every port of it: two tenants on one host with
/// different ports would share each other's session cookies.
async fn refuse_cookie_host_clash(
    store: &Store,
    domain: &str,
    except: Option<i64>,
) -> Result<(), OperatorError> {
    let others: Vec<Tenant> = store
        .list_tenants()
        .await?
        .into_iter()
        .filter(|t| Some(t.id) != except)
        .collect();
    match cookie_host_clash(domain, &others) {
        Some(t) if t.domain.as_deref() != Some(domain) => Err(OperatorError::Invalid(format!(
            "{domain} differs from tenant {}'s domain {} only by port; browsers share cookies across ports, so each tenant needs its own host name",
            t.slug,
            t.domain.as_deref().unwrap_or_default()
        ))),
        // The very same domain: the store's unique index reports it.
        _ => Ok(()),
    }
}

pub async fn tenant(store: &Store, slug: &str) -> Result<Tenant, OperatorError> {
    store
        .tenant_by_slug(slug)
        .await?
        .ok_or_else(|| OperatorError::UnknownTenant(slug.into()))
}

pub async fn set_edition(
    store: &Store,
    slug: &str,
    edition: Edition,
) -> Result<Tenant, OperatorError> {
    let t = tenant(store, slug).await?;
    let t2 = store.set_tenant_edition(t.id, edition).await?;
    store
        .audit(&operator_audit(
            t.id,
            "tenant.edition_changed",
            format!("{} → {}", t.edition, edition),
        ))
        .await?;
    Ok(t2)
}

pub async fn set_domain(store: &Store, slug: &str, domain: &str) -> Result<Tenant, OperatorError> {
    let t = tenant(store, slug).await?;
    let d = normalize_domain(domain).map_err(|e| OperatorError::Invalid(e.to_string()))?;
    refuse_cookie_host_clash(store, &d, Some(t.id)).await?;
    let t2 = store.set_tenant_domain(t.id, Some(&d)).await?;
    store
        .audit(&operator_audit(
            t.id,
            "tenant.domain_changed",
            format!("{:?} → {d}", t.domain),
        ))
        .await?;
    Ok(t2)
}

/// Issues a new one-time password for a tenant's `admin` (lost password).
pub async fn reset_admin_password(store: &Store, slug: &str) -> Result<String, OperatorError> {
    let t = tenant(store, slug).await?;
    let admin = store
        .admin_by_username(t.id, "admin")
        .await?
        .ok_or_else(|| OperatorError::Invalid(format!("tenant {slug} has no admin account")))?;
    let password = one_time_password();
    let hash = hash_password(password.clone())
        .await
        .map_err(|e| OperatorError::Invalid(e.to_string()))?;
    let entry = operator_audit(
        t.id,
        "admin.password_reset",
        "one-time password issued".into(),
    );
    store
        .set_admin_password(admin.id, &hash, true, Some(&entry))
        .await?;
    Ok(password)
}
