//! The app catalogue's use cases: saving apps (each change with its audit entry), the
//! access decision on every open, and forward auth's verdict.
//!
//! Forward auth is asked on every request an app receives, so its answer must cost about
//! a session check. [`Gate`] keeps, per instance, the apps of each tenant and each member's
//! card (name, email, groups, placement) for [`CACHE_MS`]. What must take effect at once
//! does: a session ended anywhere (logout, revocation, a member losing authorization or
//! being disabled — the store deletes their sessions) is refused through the session
//! checker's revocation log, and a policy saved on this instance clears this instance's
//! copy. Other instances see a policy change, or a renamed member, within `CACHE_MS`.

use crate::app::AppState;
use crate::domain::apps::{App, AppDraft, AppProblem, Placement};
use crate::domain::audit::NewAudit;
use crate::domain::user::{User, UserStatus};
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// How long an instance trusts its copy of the catalogue and of a member's card.
pub const CACHE_MS: i64 = 10_000;
/// A bound on cached member cards: beyond it the cache starts over.
const MAX_CARDS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    #[error("{0}")]
    Invalid(#[from] AppProblem),
    #[error("no app {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AppsError {
    fn from(e: StoreError) -> Self {
        AppsError::Store(e)
    }
}

/// Who did it, for the audit entry.
pub struct Actor<'a> {
    pub tenant_id: i64,
    pub name: &'a str,
    pub ip: Option<String>,
}

impl Actor<'_> {
    fn audit(&self, action: &'static str, detail: String) -> NewAudit {
        NewAudit {
            tenant_id: self.tenant_id,
            actor: self.name.to_string(),
            action,
            detail,
            ip: self.ip.clone(),
        }
    }
}

fn slug_taken(e: StoreError, slug: &str) -> AppsError {
    match e {
        StoreError::Conflict(_) => AppsError::Invalid(AppProblem::SlugTaken(slug.to_string())),
        e => AppsError::Store(e),
    }
}

pub async fn create(
    st: &AppState,
    gate: &Gate,
    by: &Actor<'_>,
    d: AppDraft,
) -> Result<i64, AppsError> {
    let d = d.check()?;
    let audit = by.audit("app.created", format!("{} ({})", d.slug, d.name_zh));
    let id = st
        .store
        .insert_app(by.tenant_id, &d, &audit)
        .await
        .map_err(|e| slug_taken(e, &d.slug))?;
    gate.forget_tenant(by.tenant_id);
    Ok(id)
}

pub async fn update(
    st: &AppState,
    gate: &Gate,
    by: &Actor<'_>,
    id: i64,
    d: AppDraft,
) -> Result<(), AppsError> {
    let d = d.check()?;
    let audit = by.audit("app.updated", format!("{} ({})", d.slug, describe(&d)));
    let found = st
        .store
        .update_app(by.tenant_id, id, &d, &audit)
        .await
        .map_err(|e| slug_taken(e, &d.slug))?;
    gate.forget_tenant(by.tenant_id);
    if found {
        Ok(())
    } else {
        Err(AppsError::NotFound(format!("#{id}")))
    }
}

fn describe(d: &AppDraft) -> String {
    let who = match &d.access {
        crate::domain::apps::Access::Everyone => "every authorized member".to_string(),
        crate::domain::apps::Access::Chosen(c) => format!(
            "{} departments, {} tags, {} members",
            c.departments.len(),
            c.tags.len(),
            c.users.len()
        ),
    };
    format!(
        "{}; opens {}; {who}",
        if d.enabled { "enabled" } else { "disabled" },
        d.url
    )
}

pub async fn delete(st: &AppState, gate: &Gate, by: &Actor<'_>, id: i64) -> Result<(), AppsError> {
    let app = st
        .store
        .app_by_id(by.tenant_id, id)
        .await?
        .ok_or_else(|| AppsError::NotFound(format!("#{id}")))?;
    let audit = by.audit("app.deleted", format!("{} ({})", app.slug, app.name_zh));
    st.store.delete_app(by.tenant_id, id, &audit).await?;
    gate.forget_tenant(by.tenant_id);
    Ok(())
}

pub async fn set_icon(
    st: &AppState,
    gate: &Gate,
    by: &Actor<'_>,
    id: i64,
    bytes: &[u8],
) -> Result<(), AppsError> {
    let kind = crate::domain::apps::check_icon(bytes)?;
    let audit = by.audit(
        "app.icon",
        format!("#{id}: {} bytes {}", bytes.len(), kind.as_str()),
    );
    if !st
        .store
        .set_app_icon(by.tenant_id, id, kind, bytes, &audit)
        .await?
    {
        return Err(AppsError::NotFound(format!("#{id}")));
    }
    gate.forget_tenant(by.tenant_id);
    Ok(())
}

/// A member as apps see them: forward auth's headers and the policy's placement.
#[derive(Clone, Debug)]
pub struct MemberCard {
    pub user: User,
    /// The WeCom userid as WeCom spells it (`Remote-User`); the internal id if none.
    pub username: String,
    /// Department names (main first), then tag names.
    pub groups: Vec<String>,
    pub placement: Placement,
    /// `Remote-Email`: only an address somebody verified (the corporate mailbox a member
    /// shared, or the directory's), never a personal one shared at sign-in: a header has
    /// no `email_verified` beside it, and apps match accounts by it.
    pub email: Option<String>,
}

/// Per-instance copies of each tenant's apps and of members' cards (see the module doc).
/// A cached value and the instant (Unix ms) it was read.
type Stamped<T> = (i64, Arc<T>);

#[derive(Default)]
pub struct Gate {
    apps: RwLock<HashMap<i64, Stamped<Vec<App>>>>,
    cards: RwLock<HashMap<(i64, i64), Stamped<MemberCard>>>,
}

impl Gate {
    pub fn new() -> Arc<Self> {
        Arc::new(Gate::default())
    }

    pub fn forget_tenant(&self, tenant_id: i64) {
        self.apps
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tenant_id);
    }

    pub async fn apps(
        &self,
        st: &AppState,
        tenant_id: i64,
        now: i64,
    ) -> Result<Arc<Vec<App>>, StoreError> {
        if let Some((at, a)) = self
            .apps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant_id)
        {
            if now - at < CACHE_MS && now >= *at {
                return Ok(a.clone());
            }
        }
        let a = Arc::new(st.store.list_apps(tenant_id).await?);
        self.apps
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant_id, (now, a.clone()));
        Ok(a)
    }

    pub async fn app(
        &self,
        st: &AppState,
        tenant_id: i64,
        slug: &str,
        now: i64,
    ) -> Result<Option<App>, StoreError> {
        Ok(self
            .apps(st, tenant_id, now)
            .await?
            .iter()
            .find(|a| a.slug == slug)
            .cloned())
    }

    /// The member's card, or `None` if they are not in the directory.
    pub async fn card(
        &self,
        st: &AppState,
        tenant_id: i64,
        user_id: i64,
        now: i64,
    ) -> Result<Option<Arc<MemberCard>>, StoreError> {
        if let Some((at, c)) = self
            .cards
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(tenant_id, user_id))
        {
            if now - at < CACHE_MS && now >= *at {
                return Ok(Some(c.clone()));
            }
        }
        let Some(user) = st.store.user_by_id(tenant_id, user_id).await? else {
            return Ok(None);
        };
        let extras = st.store.user_extras(tenant_id, user_id).await?;
        let placement = st.store.member_placement(tenant_id, user_id).await?;
        let username = extras
            .identities
            .iter()
            .find(|i| i.kind == "wecom")
            .map(|i| i.display_id.clone())
            .unwrap_or_else(|| user.id.to_string());
        let groups = extras
            .departments
            .iter()
            .map(|(_, n)| n.clone())
            .chain(extras.tags.iter().map(|(_, n)| n.clone()))
            .collect();
        let consented = st.store.consented_fields(tenant_id, user_id).await?;
        let email = crate::domain::consent::email_claim(user.email.as_deref(), &consented)
            .filter(|(_, verified)| *verified)
            .map(|(e, _)| e);
        let card = Arc::new(MemberCard {
            user,
            username,
            groups,
            placement,
            email,
        });
        let mut cards = self.cards.write().unwrap_or_else(|e| e.into_inner());
        if cards.len() >= MAX_CARDS {
            cards.clear();
        }
        cards.insert((tenant_id, user_id), (now, card.clone()));
        Ok(Some(card))
    }
}

/// Whether `app` admits the member now: enabled, the member authorized, the policy met.
pub fn admits(app: &App, card: &MemberCard) -> bool {
    app.enabled && card.user.status == UserStatus::Authorized && app.access.admits(&card.placement)
}

/// Forward auth's answer for one request.
#[derive(Debug)]
pub enum Verdict {
    /// 200 with these identity headers.
    Allow(Arc<MemberCard>),
    /// No usable session: 401, or a redirect to sign-in for a browser.
    SignIn,
    /// Signed in, but this app's policy (or its being disabled) refuses the member.
    Refused(Box<App>),
    /// The proxy asked about an app the catalogue does not have.
    UnknownApp(String),
}

/// Decides forward auth for `slug` with a checked session of `user_id` (or none).
pub async fn verify(
    st: &AppState,
    gate: &Gate,
    tenant_id: i64,
    slug: &str,
    session_user: Option<i64>,
    now: i64,
) -> Result<Verdict, StoreError> {
    let Some(app) = gate.app(st, tenant_id, slug, now).await? else {
        return Ok(Verdict::UnknownApp(slug.to_string()));
    };
    let Some(user_id) = session_user else {
        return Ok(Verdict::SignIn);
    };
    let Some(card) = gate.card(st, tenant_id, user_id, now).await? else {
        return Ok(Verdict::SignIn);
    };
    if card.user.status != UserStatus::Authorized {
        return Ok(Verdict::SignIn);
    }
    if !admits(&app, &card) {
        return Ok(Verdict::Refused(Box::new(app)));
    }
    Ok(Verdict::Allow(card))
}

/// For the OIDC provider: whether the client's app admits the member (a client without
/// an app admits every authorized member). Read fresh: sign-ins are not per request.
pub async fn admits_user(
    st: &AppState,
    tenant_id: i64,
    app_id: Option<i64>,
    user: &User,
) -> Result<bool, StoreError> {
    let Some(app_id) = app_id else {
        return Ok(user.status == UserStatus::Authorized);
    };
    let Some(app) = st.store.app_by_id(tenant_id, app_id).await? else {
        // The app was deleted (its clients are unlinked with it); refuse rather than guess.
        return Ok(false);
    };
    let placement = st.store.member_placement(tenant_id, user.id).await?;
    Ok(app.enabled && user.status == UserStatus::Authorized && app.access.admits(&placement))
}
