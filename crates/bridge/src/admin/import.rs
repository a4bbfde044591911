//! Importing the people a previous integration knew (issue 20), for the console's
//! Users → Import users → Upload a file and `wecom-bridge users import`: a dry run
//! first (what would be created and updated, every error with its line), then, on
//! confirm, the whole file in one transaction, or nothing if any row is invalid.

use super::AdminError;
use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::domain::directory::import::{parse_import, plan_import, ImportFormat, ImportPlan};
use crate::domain::directory::matching::MatchRule;

/// What an import is asked to do.
pub struct ImportRequest<'a> {
    pub text: &'a str,
    pub format: ImportFormat,
    /// Apply (after a dry run); without it nothing is written.
    pub confirm: bool,
    /// The rule the next syncs find these people by, saved with the import.
    pub match_rule: Option<MatchRule>,
}

/// The dry run's answer, or what was applied.
pub struct ImportResult {
    pub plan: ImportPlan,
    pub applied: bool,
}

/// Validates the file against the store and, with `confirm` and no error, applies it.
pub async fn import_people(
    st: &AppState,
    tenant_id: i64,
    req: ImportRequest<'_>,
    actor: &str,
    ip: Option<String>,
) -> Result<ImportResult, AdminError> {
    let rows = match parse_import(req.text, req.format) {
        Ok(rows) => rows,
        Err(errors) => {
            return Ok(ImportResult {
                plan: ImportPlan::rejected(errors),
                applied: false,
            })
        }
    };
    let integration = st.store.main_integration(tenant_id).await?;
    let mut ctx = st.store.import_context(tenant_id, &rows).await?;
    ctx.has_integration = integration.is_some();
    let plan = plan_import(rows, &ctx);
    if !plan.is_valid() || !req.confirm {
        return Ok(ImportResult {
            plan,
            applied: false,
        });
    }
    let policy = st.store.directory_policy(tenant_id).await?;
    let audit = NewAudit {
        tenant_id,
        actor: actor.to_string(),
        action: "directory.import",
        detail: format!(
            "{} rows ({}): {} created, {} updated",
            plan.rows.len(),
            req.format.as_str(),
            plan.create.len(),
            plan.update.len()
        ),
        ip: ip.clone(),
    };
    st.store
        .apply_import(
            tenant_id,
            integration.as_ref().map(|i| i.corpid.as_str()),
            &plan,
            policy.new_user_status,
            &audit,
        )
        .await?;
    if let Some(rule) = req.match_rule {
        set_match_rule(st, tenant_id, &rule, actor, ip).await?;
    }
    Ok(ImportResult {
        plan,
        applied: true,
    })
}

/// Saves the tenant's match rule, audited (only when it changes).
pub async fn set_match_rule(
    st: &AppState,
    tenant_id: i64,
    rule: &MatchRule,
    actor: &str,
    ip: Option<String>,
) -> Result<(), AdminError> {
    if st.store.match_rule(tenant_id).await? == *rule {
        return Ok(());
    }
    let audit = NewAudit {
        tenant_id,
        actor: actor.to_string(),
        action: "directory.match_rule",
        detail: rule.as_string(),
        ip,
    };
    Ok(st.store.put_match_rule(tenant_id, rule, &audit).await?)
}
