//! The console's Sync page: start a dry run or a sync, follow its progress, read its
//! report (counts, API calls against the lower bound, withheld fields, errors, the diff),
//! confirm a sync the mass-disable guard stopped, the run history and the policy.

use crate::admin::policy::{self, reconcile_cost};
use crate::app::AppState;
use crate::domain::directory::{DirectoryPolicy, ReconcileCost, RunReport, RunStatus, Trigger};
use crate::sync::SyncOptions;
use crate::web::admin_session::{Admin, AdminForm};
use crate::web::error::{policy_refusal, WebError};
use crate::web::i18n::Lang;
use crate::web::labels;
use crate::web::pages::{render, Nav};
use crate::web::time::Clock;
use crate::web::ClientIp;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Deserialize;

pub const PATH: &str = "/console/sync";

type Result<T> = std::result::Result<T, WebError>;

fn nav(admin: &Admin) -> Nav {
    admin.nav("sync")
}

/// A run as the history table shows it: machine values (`status`, for styling and
/// tests) beside the words a person reads (`*_label`).
pub struct RunRow {
    pub id: i64,
    pub when: String,
    pub trigger: String,
    pub kind: String,
    pub status: String,
    pub trigger_label: &'static str,
    pub kind_label: &'static str,
    pub status_label: &'static str,
    pub added: i64,
    pub updated: i64,
    pub disabled: i64,
    pub moved: i64,
    pub api_calls: i64,
    pub seconds: String,
}

#[derive(Template)]
#[template(path = "sync.html")]
pub struct SyncPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub configured: bool,
    pub running: Option<i64>,
    pub runs: Vec<RunRow>,
    /// The time zone of the history's times.
    pub zone: String,
    pub policy: DirectoryPolicy,
    /// The form's values: the saved policy's, or what was typed when it was refused.
    pub policy_form: PolicyForm,
    /// Why the form was refused, and the field it is about (`None`: the whole form).
    pub policy_error: Option<(Option<&'static str>, String)>,
    pub from_wizard: bool,
    /// What one full reconcile costs, from the last full sync (None: none yet).
    pub cost: Option<ReconcileCost>,
    /// An interrupted run's saved reads the next run resumes from: (departments, tags,
    /// until when, as a local time).
    pub resumable: Option<(i64, i64, String)>,
    /// How a sync finds stored people not linked to WeCom yet (issue 20).
    pub match_rule: crate::domain::directory::matching::MatchRule,
}

impl SyncPage {
    fn policy_field_is(&self, field: &str) -> bool {
        matches!(&self.policy_error, Some((Some(f), _)) if *f == field)
    }

    /// The share of the busiest API's hourly budget the saved interval uses, in %.
    fn hourly_percent(&self) -> String {
        match self
            .cost
            .as_ref()
            .and_then(|c| c.hourly_permille(self.policy.reconcile_interval_secs))
        {
            Some(p) => format!("{}.{}", p / 10, p % 10),
            None => "0".into(),
        }
    }
}

#[derive(Template)]
#[template(path = "sync_run.html")]
pub struct SyncRunPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub run: RunRow,
    pub running: bool,
    pub blocked: bool,
    pub dry_run: bool,
    pub phase: String,
    /// The whole run's progress, and the time left at this pace.
    pub percent: i64,
    pub left: Option<String>,
    /// "waiting 38 s for WeCom's rate limit", while the run waits.
    pub wait_note: Option<String>,
    pub error: Option<String>,
    pub report: RunReport,
    pub c_min: u64,
    pub total_calls: u64,
}

impl SyncRunPage {
    fn note(&self, n: &str) -> String {
        labels::sample_note(self.l, n)
    }
    fn change(&self, c: &str) -> String {
        labels::change(self.l, c)
    }
    fn guard_message(&self) -> String {
        match &self.report.guard {
            Some(g) => self.l.t(&g.message_zh(), &g.message_en()).to_string(),
            None => String::new(),
        }
    }
    fn changes(&self, c: &[crate::domain::directory::FieldChange]) -> String {
        c.iter()
            .map(|c| format!("{}: {} → {}", labels::field(self.l, &c.field), c.old, c.new))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn row(l: Lang, clock: &Clock, r: &crate::store::SyncRun) -> RunRow {
    RunRow {
        id: r.id,
        when: clock.show(r.started_at),
        trigger: r.trigger.as_str().into(),
        kind: r.kind.as_str().into(),
        status: r.status.as_str().into(),
        trigger_label: labels::trigger(l, r.trigger),
        kind_label: labels::run_kind(l, r.kind),
        status_label: labels::run_status(l, r.status),
        added: r.users_added,
        updated: r.users_updated,
        disabled: r.users_disabled,
        moved: r.users_moved,
        api_calls: r.api_calls,
        seconds: format!("{:.1}", r.duration_ms().max(0) as f64 / 1000.0),
    }
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    from: String,
}

pub async fn page(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let t = &admin.tenant;
    let clock = Clock::of(t);
    let runs = st.store.list_sync_runs(t.id, None, 30).await?;
    let policy = st.store.directory_policy(t.id).await?;
    Ok(render(&SyncPage {
        l,
        csrf: admin.csrf().to_string(),
        configured: st.store.main_integration(t.id).await?.is_some(),
        running: runs
            .iter()
            .find(|r| r.status == RunStatus::Running)
            .map(|r| r.id),
        runs: runs.iter().map(|r| row(l, &clock, r)).collect(),
        zone: clock.name().to_string(),
        policy_form: PolicyForm::of(&policy),
        policy,
        policy_error: None,
        from_wizard: q.from == "wizard",
        nav: Some(nav(&admin)),
        cost: reconcile_cost(&st, t.id).await?,
        resumable: resumable(&st, t.id, &clock).await?,
        match_rule: st.store.match_rule(t.id).await?,
    }))
}

/// What the next full run will not read again, while no run is going on.
async fn resumable(
    st: &AppState,
    tenant_id: i64,
    clock: &Clock,
) -> Result<Option<(i64, i64, String)>> {
    let max_age = crate::sync::checkpoint::MAX_AGE_MS;
    let (depts, tags, oldest) = st
        .store
        .checkpoint_summary(tenant_id, st.clock.now_ms() - max_age)
        .await?;
    Ok(oldest
        .filter(|_| depts + tags > 0)
        .map(|at| (depts, tags, clock.show(at + max_age))))
}

#[derive(Deserialize)]
pub struct RunForm {
    #[serde(default)]
    dry_run: String,
    #[serde(default)]
    force: String,
    #[serde(default)]
    trigger: String,
}

/// Starts a run in the background and shows its page (which follows the progress).
pub async fn start(State(st): State<AppState>, f: AdminForm<RunForm>) -> Result<Response> {
    let trigger = if f.form.trigger == "wizard" {
        Trigger::Wizard
    } else {
        Trigger::Console
    };
    let mut opts = SyncOptions::new(trigger, f.admin.actor());
    opts.dry_run = !f.form.dry_run.is_empty();
    opts.force = !f.form.force.is_empty();
    opts.concurrency = st.cfg.sync_concurrency;
    let id = crate::sync::spawn_full(&st, &f.admin.tenant, opts).await?;
    Ok(Redirect::to(&format!("{PATH}/runs/{id}")).into_response())
}

pub async fn run_page(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Response> {
    let r = st
        .store
        .sync_run(admin.tenant.id, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("sync run {id}")))?;
    let report: RunReport = r
        .report_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let c_min = report.bound.map(|b| b.c_min()).unwrap_or(0);
    let (percent, left) = overall(&l, &r, st.clock.now_ms());
    let total_calls = report.api_calls.values().map(|e| e.calls).sum();
    Ok(render(&SyncRunPage {
        l,
        csrf: admin.csrf().to_string(),
        running: r.status == RunStatus::Running,
        blocked: r.status == RunStatus::Blocked,
        dry_run: r.kind == crate::domain::directory::RunKind::DryRun,
        phase: labels::phase(l, &r.phase),
        percent,
        left,
        wait_note: wait_note(&l, &r),
        error: r.error.clone(),
        report,
        c_min,
        total_calls,
        run: row(l, &Clock::of(&admin.tenant), &r),
        nav: Some(nav(&admin)),
    }))
}

fn wait_note(l: &Lang, r: &crate::store::SyncRun) -> Option<String> {
    let secs = r
        .rate_wait_secs
        .filter(|_| r.status == RunStatus::Running)?;
    let (en, zh) = crate::sync::rate_wait_note(secs.max(0) as u64);
    Some(l.t(&zh, &en).to_string())
}

/// The whole run's progress (%), and the time left in words once it can be told.
fn overall(l: &Lang, r: &crate::store::SyncRun, now: i64) -> (i64, Option<String>) {
    use crate::domain::directory::{estimate_left_ms, overall_percent};
    let p = overall_percent(&r.phase, r.progress_done, r.progress_total);
    let left = estimate_left_ms(now - r.started_at, p).map(|ms| {
        let s = (ms + 999) / 1000;
        if s < 60 {
            l.t(&format!("约剩 {s} 秒"), &format!("about {s} s left"))
                .to_string()
        } else {
            let m = (s + 59) / 60;
            l.t(&format!("约剩 {m} 分钟"), &format!("about {m} min left"))
                .to_string()
        }
    });
    (p, left)
}

#[derive(Deserialize)]
pub struct CancelForm {}

/// `POST /console/sync/runs/{id}/cancel`: asks the run to stop before it applies anything.
/// A run that already finished is left as it is, and its page says how it ended.
pub async fn cancel(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
    f: AdminForm<CancelForm>,
) -> Result<Response> {
    let t = f.admin.tenant.id;
    if st.store.sync_run(t, id).await?.is_none() {
        return Err(WebError::NotFound(format!("sync run {id}")));
    }
    crate::sync::request_cancel(&st, t, id, &f.admin.actor(), ip).await?;
    Ok(Redirect::to(&format!("{PATH}/runs/{id}")).into_response())
}

/// `GET /console/sync/runs/{id}/progress`: what the progress bar polls.
pub async fn progress(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    Path(id): Path<i64>,
) -> Response {
    match st.store.sync_run(admin.tenant.id, id).await {
        Ok(Some(r)) => {
            let (percent, left) = overall(&l, &r, st.clock.now_ms());
            Json(serde_json::json!({
                "id": r.id,
                "status": r.status.as_str(),
                "phase": r.phase,
                "phase_label": labels::phase(l, &r.phase),
                "done": r.progress_done,
                "total": r.progress_total,
                "percent": percent,
                "left": left,
                "rate_wait_secs": r.rate_wait_secs.filter(|_| r.status == RunStatus::Running),
                "note": wait_note(&l, &r),
                "finished": r.status != RunStatus::Running,
            }))
            .into_response()
        }
        Ok(None) => WebError::NotFound(format!("sync run {id}")).into_json(),
        Err(e) => WebError::from(e).into_json(),
    }
}

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    pub new_user_status: String,
    #[serde(default)]
    pub max_disable_percent: String,
    #[serde(default)]
    pub reconcile_minutes: String,
}

impl PolicyForm {
    fn of(p: &DirectoryPolicy) -> Self {
        PolicyForm {
            new_user_status: p.new_user_status.as_str().into(),
            max_disable_percent: format!(
                "{}.{}",
                p.max_disable_permille / 10,
                p.max_disable_permille % 10
            ),
            reconcile_minutes: (p.reconcile_interval_secs / 60).to_string(),
        }
    }

    /// The policy typed, or the first field that is not a number of the right kind.
    fn parse(&self) -> std::result::Result<DirectoryPolicy, &'static str> {
        let status = self
            .new_user_status
            .parse()
            .map_err(|_| "new_user_status")?;
        let pct: f64 = self
            .max_disable_percent
            .trim()
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite())
            .ok_or("max_disable_percent")?;
        let mins: i64 = self
            .reconcile_minutes
            .trim()
            .parse()
            .map_err(|_| "reconcile_minutes")?;
        Ok(DirectoryPolicy {
            new_user_status: status,
            max_disable_permille: (pct * 10.0).round() as i64,
            reconcile_interval_secs: mins.saturating_mul(60),
        })
    }
}

pub async fn save_policy(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<PolicyForm>,
) -> Result<Response> {
    let t = &f.admin.tenant;
    let saved = match f.form.parse() {
        Err(field) => Err(policy::SavePolicyError::Unreadable { field }),
        Ok(p) => policy::save_policy(&st, t.id, &p, &f.admin.actor(), ip).await,
    };
    let refused = match saved {
        Ok(()) => return Ok(Redirect::to(PATH).into_response()),
        Err(e) => policy_refusal(&e, l).ok_or(e)?,
    };
    let runs = st.store.list_sync_runs(t.id, None, 30).await?;
    let clock = Clock::of(t);
    let mut resp = render(&SyncPage {
        l,
        csrf: f.admin.csrf().to_string(),
        configured: st.store.main_integration(t.id).await?.is_some(),
        running: None,
        runs: runs.iter().map(|r| row(l, &clock, r)).collect(),
        zone: clock.name().to_string(),
        policy: st.store.directory_policy(t.id).await?,
        policy_error: Some(refused),
        from_wizard: false,
        nav: Some(nav(&f.admin)),
        cost: reconcile_cost(&st, t.id).await?,
        resumable: resumable(&st, t.id, &clock).await?,
        match_rule: st.store.match_rule(t.id).await?,
        policy_form: f.form,
    });
    *resp.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    Ok(resp)
}
