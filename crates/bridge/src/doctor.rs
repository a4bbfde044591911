//! Gathers what `doctor` judges: a fresh gettoken, agent/get, the stored callback state.
//! The judgement itself is `domain::doctor::evaluate`.

use crate::app::AppState;
use crate::domain::console_values::HOME_PATH;
use crate::domain::doctor::{evaluate, AgentFacts, Check, Failure, Observations};
use crate::domain::login::{IdentitySource, LoginTarget};
use crate::domain::setup_progress::{DoctorSummary, SetupFacts};
use crate::domain::tenant::Tenant;
use crate::store::StoreError;

pub(crate) fn failure(e: &wecom::Error) -> Failure {
    let x = e.explain();
    Failure {
        errcode: e.errcode(),
        message: e.to_string(),
        title_zh: x.title_zh,
        title_en: x.title_en,
        fix_zh: x.fix_zh,
        fix_en: x.fix_en,
        from_ip: e.api().and_then(|a| a.from_ip()).map(str::to_string),
    }
}

/// Runs every check and keeps the result for the overview and the wizard.
pub async fn run(st: &AppState, tenant: &Tenant) -> Result<Vec<Check>, StoreError> {
    let checks = checks(st, tenant).await?;
    st.store
        .put_doctor_summary(tenant.id, &DoctorSummary::of(st.clock.now_ms(), &checks))
        .await?;
    Ok(checks)
}

/// What the console knows of the tenant's set-up, from the store alone (doctor's last
/// result, not a new run: doctor asks WeCom for a fresh token).
pub async fn setup_facts(
    st: &AppState,
    tenant: &Tenant,
) -> Result<(SetupFacts, Option<DoctorSummary>), StoreError> {
    let doctor = st.store.doctor_summary(tenant.id).await?;
    let login = st
        .store
        .login_config(tenant.id, LoginTarget::Workbench)
        .await?;
    let facts = SetupFacts {
        edition_ok: tenant.edition.check_wecom_allowed().is_ok(),
        configured: st.store.main_integration(tenant.id).await?.is_some(),
        doctor: doctor.as_ref().map(|d| d.checks.clone()),
        synced: st.store.last_full_sync_at(tenant.id).await?.is_some(),
        wecom_login_on: login.enabled().any(|s| s == IdentitySource::Wecom),
        member_signed_in: st.store.count_signed_in_since(tenant.id, 0).await? > 0,
    };
    Ok((facts, doctor))
}

async fn checks(st: &AppState, tenant: &Tenant) -> Result<Vec<Check>, StoreError> {
    let expected_domain = tenant.domain.clone();
    let expected_home_url = expected_domain
        .as_ref()
        .map(|d| format!("{}{HOME_PATH}", st.cfg.base_url_for(d)));
    let mut obs = Observations {
        configured: false,
        token: Ok(()),
        agent: None,
        expected_domain,
        expected_home_url,
        callback_verified_at: None,
        app_scopes: Vec::new(),
        consent: st.store.consent_outcome(tenant.id).await?,
    };
    let Some(rec) = st.store.main_integration(tenant.id).await? else {
        return Ok(evaluate(&obs));
    };
    obs.configured = true;
    obs.callback_verified_at = rec.callback_verified_at;
    let opened = match st.open_integration(&rec) {
        Ok(o) => o,
        Err(e) => {
            obs.token = Err(Failure {
                errcode: None,
                message: e.to_string(),
                title_zh: "无法解密已保存的 Secret".into(),
                title_en: "The saved Secret cannot be decrypted".into(),
                fix_zh: "实例密钥已更换或数据被改动；请在设置向导第 2 步重新填写 Secret。".into(),
                fix_en: "The instance key changed or the data was altered; enter the Secret again in step 2 of the wizard.".into(),
                from_ip: None,
            });
            return Ok(evaluate(&obs));
        }
    };
    let client = match st.wecom.get(&opened.corpid, &opened.secret) {
        Ok(c) => c,
        Err(e) => {
            obs.token = Err(failure(&e));
            return Ok(evaluate(&obs));
        }
    };
    // A fresh token proves the secret is still right (a cached one would hide a reset).
    if let Err(e) = client.gettoken().await {
        obs.token = Err(failure(&e));
        return Ok(evaluate(&obs));
    }
    obs.agent = Some(match client.agent_get(opened.agentid).await {
        Ok(a) => {
            if let Ok(json) = serde_json::to_string(&a) {
                st.store
                    .set_agent_snapshot(tenant.id, rec.agentid, &json)
                    .await?;
            }
            Ok(AgentFacts {
                name: a.name.clone(),
                closed: a.close != 0,
                redirect_domain: a.redirect_domain.clone(),
                home_url: a.home_url.clone(),
                scope_users: a.allow_userinfos.user.len(),
                scope_departments: a.allow_partys.partyid.len(),
                scope_tags: a.allow_tags.tagid.len(),
            })
        }
        Err(e) => Err(failure(&e)),
    });
    if matches!(obs.agent, Some(Ok(_))) {
        obs.app_scopes =
            crate::app_binding::recheck_bound_apps(st, tenant.id, &client, opened.agentid).await?;
    }
    Ok(evaluate(&obs))
}
