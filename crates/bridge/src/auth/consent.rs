//! Fields WeCom withholds from the directory, filled with the member's consent (issue 20):
//! with the tenant's opt-in, an in-client sign-in through the main app asks for
//! `snsapi_privateinfo` (WeCom shows the member a consent page), and the callback
//! exchanges the `user_ticket` at `auth/getuserdetail`. A failed exchange never fails the
//! sign-in: it is logged and audited with the reason, for the admin to act on.

use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::domain::consent::{self, ConsentAnswer, FieldSource};
use crate::domain::tenant::Tenant;
use crate::store::StoreError;

use super::Via;

/// The scope to ask for. QR / web login has no scope and gives no ticket; a model app's
/// own WeCom app is left at `snsapi_base`, since the privilege is granted per app and
/// the opt-in speaks of the workbench's app.
pub async fn scope(
    st: &AppState,
    tenant: &Tenant,
    agentid: Option<u32>,
    via: Via,
) -> Result<wecom::oauth::Scope, StoreError> {
    let ask =
        via == Via::Client && agentid.is_none() && st.store.consent_enabled(tenant.id).await?;
    Ok(if ask {
        wecom::oauth::Scope::PrivateInfo
    } else {
        wecom::oauth::Scope::Base
    })
}

/// Who signed in, for the exchange and its audit entry.
pub struct Member<'a> {
    pub user_id: i64,
    pub userid: &'a str,
    pub actor: &'a str,
    pub ip: Option<&'a str>,
}

/// What became of a ticket.
#[derive(Debug, PartialEq, Eq)]
pub enum Filled {
    /// The fields stored (names only).
    Stored(Vec<&'static str>),
    /// Consent gave nothing to keep (no field ticked for the app, or all blank).
    Nothing,
    /// The opt-in was turned off meanwhile: the ticket is not used.
    Off,
    /// WeCom refused or could not be reached; audited.
    Failed,
}

/// Exchanges the member's `user_ticket` and stores what WeCom gives. Never an error:
/// the member is signed in whatever happens here.
pub async fn fill(
    st: &AppState,
    tenant: &Tenant,
    client: &wecom::Client,
    ticket: &str,
    m: &Member<'_>,
) -> Filled {
    match fill_inner(st, tenant, client, ticket, m).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(tenant = tenant.id, user = m.user_id, error = %e, "storing consented fields failed");
            Filled::Failed
        }
    }
}

async fn fill_inner(
    st: &AppState,
    tenant: &Tenant,
    client: &wecom::Client,
    ticket: &str,
    m: &Member<'_>,
) -> Result<Filled, StoreError> {
    if !st.store.consent_enabled(tenant.id).await? {
        return Ok(Filled::Off);
    }
    let audit = |action: &'static str, detail: String| NewAudit {
        tenant_id: tenant.id,
        actor: m.actor.to_string(),
        action,
        detail,
        ip: m.ip.map(str::to_string),
    };
    let detail = match client.auth_getuserdetail(ticket).await {
        Ok(d) => d,
        Err(e) => {
            let errcode = e.errcode();
            // The ticket itself is a credential: never logged.
            tracing::warn!(
                tenant = tenant.id,
                user = m.user_id,
                errcode = ?errcode,
                "auth/getuserdetail failed; signed in without the consented fields"
            );
            let x = e.explain();
            st.store
                .record_consent_failure(
                    tenant.id,
                    st.clock.now_ms(),
                    &audit(
                        "member.consent_fields_failed",
                        format!(
                            "{}{}: {}",
                            consent::failure_note(errcode),
                            errcode
                                .map(|c| format!(" [errcode {c}]"))
                                .unwrap_or_default(),
                            x.title_en
                        ),
                    ),
                )
                .await?;
            return Ok(Filled::Failed);
        }
    };
    if !detail.userid.eq_ignore_ascii_case(m.userid) {
        st.store
            .record_consent_failure(
                tenant.id,
                st.clock.now_ms(),
                &audit(
                    "member.consent_fields_failed",
                    format!(
                        "auth/getuserdetail named another member ({:?}); nothing stored",
                        detail.userid
                    ),
                ),
            )
            .await?;
        return Ok(Filled::Failed);
    }
    let values = consent::values_to_keep(&ConsentAnswer {
        mobile: detail.mobile.unwrap_or_default(),
        email: detail.email.unwrap_or_default(),
        biz_mail: detail.biz_mail.unwrap_or_default(),
        avatar: detail.avatar.unwrap_or_default(),
        gender: detail.gender,
    });
    if values.is_empty() {
        return Ok(Filled::Nothing);
    }
    let names: Vec<&'static str> = values.iter().map(|(f, _)| f.as_str()).collect();
    st.store
        .save_consented_fields(
            tenant.id,
            m.user_id,
            &values,
            FieldSource::WecomConsent,
            st.clock.now_ms(),
            // Field names only: the values are the member's private data.
            &audit("member.consent_fields", names.join(", ")),
        )
        .await?;
    Ok(Filled::Stored(names))
}

/// Turns the opt-in on or off (audited); nothing happens when it is already so.
pub async fn set_enabled(
    st: &AppState,
    tenant: &Tenant,
    enabled: bool,
    actor: &str,
    ip: Option<String>,
) -> Result<(), StoreError> {
    if st.store.consent_enabled(tenant.id).await? == enabled {
        return Ok(());
    }
    let detail = if enabled {
        "in-client sign-in asks members to share mobile, email, corporate email, avatar and gender (snsapi_privateinfo): off → on"
    } else {
        "in-client sign-in asks members to share mobile, email, corporate email, avatar and gender (snsapi_privateinfo): on → off"
    };
    st.store
        .set_consent_enabled(
            tenant.id,
            enabled,
            actor,
            &NewAudit {
                tenant_id: tenant.id,
                actor: actor.to_string(),
                action: "login_config.consent_fields",
                detail: detail.to_string(),
                ip,
            },
        )
        .await
}
