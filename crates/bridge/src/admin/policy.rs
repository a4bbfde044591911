//! The tenant's directory sync policy, as an admin saves it: checked against the rules of
//! the policy itself and against WeCom's hourly call budget, then written with its audit
//! entry in one transaction. No HTTP here.

use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::domain::directory::{
    DirectoryPolicy, PolicyError, ReconcileCost, RunKind, RunReport, RunStatus,
};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SavePolicyError {
    /// A form field that is not a number of the right kind (named as the form names it).
    #[error("{field} is not a valid value")]
    Unreadable { field: &'static str },
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    /// A reconcile this often would use more than half of the busiest API's hourly calls.
    #[error("reconciling every {interval_secs} s would exceed WeCom's hourly limit; the shortest allowed is {} s", .cost.min_interval_secs())]
    TooFrequent {
        cost: ReconcileCost,
        interval_secs: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one full reconcile costs, from the tenant's last successful full sync (`None`
/// before the first: nothing measured yet, so no interval is refused for cost).
pub async fn reconcile_cost(
    st: &AppState,
    tenant_id: i64,
) -> Result<Option<ReconcileCost>, StoreError> {
    let runs = st
        .store
        .list_sync_runs(tenant_id, Some(RunKind::Full), 20)
        .await?;
    Ok(runs
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded)
        .find_map(|r| serde_json::from_str::<RunReport>(r.report_json.as_deref()?).ok())
        .and_then(|rep| ReconcileCost::of(&rep.api_calls)))
}

/// Saves `policy` for the tenant, audited as `actor`.
pub async fn save_policy(
    st: &AppState,
    tenant_id: i64,
    policy: &DirectoryPolicy,
    actor: &str,
    ip: Option<String>,
) -> Result<(), SavePolicyError> {
    policy.validate()?;
    if let Some(cost) = reconcile_cost(st, tenant_id).await? {
        if !cost.allows(policy.reconcile_interval_secs) {
            return Err(SavePolicyError::TooFrequent {
                cost,
                interval_secs: policy.reconcile_interval_secs,
            });
        }
    }
    let entry = NewAudit {
        tenant_id,
        actor: actor.to_string(),
        action: "directory.policy.saved",
        detail: format!(
            "new users {}, mass-disable limit {}‰, reconcile every {} s",
            policy.new_user_status.as_str(),
            policy.max_disable_permille,
            policy.reconcile_interval_secs
        ),
        ip,
    };
    st.store
        .put_directory_policy(tenant_id, policy, Some(&entry))
        .await?;
    Ok(())
}
