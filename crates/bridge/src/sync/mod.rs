//! Directory sync: a full sync (fetch the visible scope, diff against the store, apply
//! in one transaction), dry runs, the mass-disable guard, run records with progress,
//! incremental change_contact callbacks, the periodic reconcile and the switch from a
//! third-party app. One sync at a time per tenant ([`lock`]).

pub mod ahead;
pub mod background;
pub mod checkpoint;
pub mod cli;
pub mod fetch;
pub mod incremental;
pub mod lock;
pub mod switch;

pub use fetch::Progress;

use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::domain::directory::{
    diff_full, mass_disable_guard, matching, Baseline, DiffOptions, DirectoryDiff, EndpointCalls,
    Folded, RunKind, RunReport, RunStatus, Trigger,
};
use crate::domain::tenant::{IntegrationMode, Tenant};
use crate::store::{
    ApplyWith, NewSyncRun, OpenApply, RetireIdentities, RunEnd, StoreError, SyncRunFinish,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Samples of each kind kept in a run's report.
pub const REPORT_SAMPLES: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("this tenant has no WeCom integration yet: complete set-up step 2 first")]
    NotConfigured,
    #[error("a directory sync of this tenant is already running")]
    Busy,
    #[error("WeCom: {0}")]
    Wecom(#[from] wecom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored secrets cannot be opened: {0}")]
    Seal(#[from] crate::seal::SealError),
    /// An admin cancelled the run before it applied anything.
    #[error("cancelled by {0}; nothing was changed")]
    Cancelled(String),
}

impl SyncError {
    /// Plain words for the run record and the console (English, 中文).
    pub fn explain(&self) -> (String, String) {
        match self {
            SyncError::Wecom(e) => {
                let x = e.explain();
                (
                    format!("{} — {} ({e})", x.title_en, x.fix_en),
                    format!("{} — {}（{e}）", x.title_zh, x.fix_zh),
                )
            }
            SyncError::NotConfigured => (
                self.to_string(),
                "该租户尚未配置企业微信集成：请先完成设置第 2 步。".into(),
            ),
            SyncError::Busy => (self.to_string(), "该租户的通讯录同步正在进行中。".into()),
            SyncError::Cancelled(by) => {
                (self.to_string(), format!("已由 {by} 取消；未做任何修改。"))
            }
            other => (other.to_string(), other.to_string()),
        }
    }
}

/// How a full sync runs.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    pub trigger: Trigger,
    /// Compute and record the diff, apply nothing.
    pub dry_run: bool,
    /// Apply even if the mass-disable guard objects (an admin confirmed).
    pub force: bool,
    /// Who started it, for the record and the audit log.
    pub actor: String,
    pub concurrency: usize,
}

impl SyncOptions {
    pub fn new(trigger: Trigger, actor: impl Into<String>) -> Self {
        SyncOptions {
            trigger,
            dry_run: false,
            force: false,
            actor: actor.into(),
            concurrency: fetch::DEFAULT_CONCURRENCY,
        }
    }
}

/// What a finished run did.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub run_id: i64,
    pub status: RunStatus,
    pub report: RunReport,
    pub duration: Duration,
    /// English explanation of a failure or a block.
    pub message: Option<String>,
}

/// A client whose calls are counted in `stats` (one per run). It paces itself under
/// the shared call budget and waits out WeCom's rate limits (up to the configured
/// bound) instead of failing the run.
pub fn counted_client(
    st: &AppState,
    corpid: &str,
    secret: &str,
    stats: Arc<wecom::CallStats>,
) -> Result<wecom::Client, wecom::Error> {
    wecom::Client::builder(corpid, secret)
        .api_base(st.wecom.api_base())
        .token_cache(st.wecom.token_cache())
        .pacer(st.wecom.pacer())
        .max_rate_wait(Duration::from_secs(st.cfg.sync_max_rate_wait_secs))
        .timeout(Duration::from_millis(st.cfg.wecom_timeout_ms.max(1)))
        .stats(stats)
        .build()
}

/// Whole seconds left of the rate-limit wait a run's client is in, if any.
pub fn rate_wait_secs(st: &AppState, stats: &wecom::CallStats) -> Option<u64> {
    let w = stats.rate_wait()?;
    let now = st.wecom.pacer().clock().now_ms();
    Some(w.until_ms.saturating_sub(now).div_ceil(1000))
}

/// "waiting 38 s for WeCom's rate limit", in English and Chinese.
pub fn rate_wait_note(secs: u64) -> (String, String) {
    (
        format!("waiting {secs} s for WeCom's rate limit"),
        format!("正在等待企业微信接口频率限制：{secs} 秒"),
    )
}

pub fn calls_by_endpoint(stats: &wecom::CallStats) -> BTreeMap<String, EndpointCalls> {
    stats
        .snapshot()
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                EndpointCalls {
                    calls: v.calls,
                    retries: v.retries,
                    errors: v.errors,
                    rate_waits: v.rate_waits,
                    rate_wait_ms: v.rate_wait_ms,
                },
            )
        })
        .collect()
}

/// A run holding its tenant's lock and its record; [`StartedRun::execute`] does the work.
pub struct StartedRun {
    pub run_id: i64,
    pub progress: Arc<Progress>,
    /// The run's WeCom calls, and any wait for WeCom's rate limit going on.
    pub stats: Arc<wecom::CallStats>,
    lock: lock::TenantLock,
    tenant: Tenant,
    opts: SyncOptions,
}

/// Takes the tenant's lock (without waiting) and records the run. Fails with
/// [`SyncError::Busy`] while another sync of the tenant runs.
pub async fn start_full(
    st: &AppState,
    tenant: &Tenant,
    opts: SyncOptions,
) -> Result<StartedRun, SyncError> {
    if st.store.main_integration(tenant.id).await?.is_none() {
        return Err(SyncError::NotConfigured);
    }
    let lock = lock::acquire_within(&st.store, tenant.id, Duration::from_secs(1))
        .await?
        .ok_or(SyncError::Busy)?;
    // Every instance looks each second whether the reconcile is due; the one that gets
    // the lock looks again under it, since another may have just finished one (a run
    // longer than the interval ended between the look and the lock).
    if opts.trigger == Trigger::Schedule {
        let due = background::next_reconcile_at(st, tenant.id).await?;
        if due.is_none_or(|at| crate::domain::now_ms() < at) {
            lock.release().await;
            return Err(SyncError::Busy);
        }
    }
    let run_id = st
        .store
        .create_sync_run(&NewSyncRun {
            tenant_id: tenant.id,
            trigger: opts.trigger,
            kind: if opts.dry_run {
                RunKind::DryRun
            } else {
                RunKind::Full
            },
            actor: opts.actor.clone(),
            forced: opts.force,
        })
        .await?;
    st.store.interrupt_stale_runs(tenant.id, run_id).await?;
    Ok(StartedRun {
        run_id,
        progress: Arc::new(Progress::new()),
        stats: Arc::new(wecom::CallStats::new()),
        lock,
        tenant: tenant.clone(),
        opts,
    })
}

/// A full sync (or dry run) from start to end.
pub async fn run_full(
    st: &AppState,
    tenant: &Tenant,
    opts: SyncOptions,
) -> Result<RunOutcome, SyncError> {
    start_full(st, tenant, opts).await?.execute(st).await
}

/// Runs a full sync in the background; returns its run id at once.
pub async fn spawn_full(
    st: &AppState,
    tenant: &Tenant,
    opts: SyncOptions,
) -> Result<i64, SyncError> {
    let started = start_full(st, tenant, opts).await?;
    let id = started.run_id;
    let st = st.clone();
    tokio::spawn(async move {
        if let Err(e) = started.execute(&st).await {
            tracing::warn!(run = id, error = %e, "directory sync failed");
        }
    });
    Ok(id)
}

impl StartedRun {
    /// Fetches, diffs and (unless a dry run, or blocked by the guard) applies. The run
    /// record ends succeeded, blocked or failed; nothing is applied unless it succeeded.
    pub async fn execute(self, st: &AppState) -> Result<RunOutcome, SyncError> {
        let started = Instant::now();
        let StartedRun {
            run_id,
            progress,
            stats,
            lock,
            tenant,
            opts,
        } = self;
        // Progress goes to the run record a few times a second, for any instance's console,
        // with the seconds left of a wait for WeCom's rate limit.
        let ticker = {
            let st = st.clone();
            let progress = progress.clone();
            let stats = stats.clone();
            tokio::spawn(async move {
                let mut last = (("", u64::MAX, u64::MAX), None);
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    let now = (progress.snapshot(), rate_wait_secs(&st, &stats));
                    if now != last && now.0 .0 != "applying" {
                        let (p, wait) = now;
                        let _ = st
                            .store
                            .update_sync_progress(
                                run_id,
                                p.0,
                                p.1 as i64,
                                p.2 as i64,
                                wait.map(|w| w as i64),
                            )
                            .await;
                        last = now;
                    }
                }
            })
        };
        let mut report = RunReport::default();
        // What an interrupted run read is reused, and this run's reads are saved as they
        // come, whatever way it ends (issue 20).
        let (mut ck, writer) =
            match checkpoint::Checkpoint::open(&st.store, &st.clock, tenant.id, run_id).await {
                Ok((c, w)) => (Some(c), Some(w)),
                Err(e) => {
                    tracing::warn!(tenant = tenant.id, error = %e, "sync checkpoint unavailable");
                    (None, None)
                }
            };
        // Reading and comparing write nothing, so a cancel may stop them at any await;
        // the apply below starts only if no cancel was asked for by then.
        let r = tokio::select! {
            biased;
            r = full_sync(st, &tenant, &opts, &progress, &stats, &mut report, ck.as_ref()) => r,
            by = cancel_requested(st, run_id) => Err(SyncError::Cancelled(by)),
        };
        if let Some(c) = ck.as_mut() {
            c.close();
            report.resumed = c.resumed();
            if c.skipped() > 0 {
                tracing::info!(
                    run = run_id,
                    skipped = c.skipped(),
                    "sync checkpoint behind the fetch: some reads were not saved"
                );
            }
        }
        drop(ck);
        if let Some(w) = writer {
            w.finish().await;
        }

        let r = match (r, st.store.sync_cancel_requested(run_id).await) {
            (Ok(_), Ok(Some(by))) => Err(SyncError::Cancelled(by)),
            (r, _) => r,
        };
        ticker.abort();
        report.api_calls = calls_by_endpoint(&stats);
        if let Some(b) = report.bound.as_mut() {
            b.with_token = stats.calls("gettoken") > 0;
        }
        let (mut r, plan) = match r {
            Ok(Planned::Apply(p)) => (Ok((RunStatus::Succeeded, None)), Some(p)),
            Ok(Planned::Done(status, msg)) => (Ok((status, msg)), None),
            Err(e) => (Err(e), None),
        };
        let audit = |status: RunStatus, c: &crate::domain::directory::DiffCounts| {
            (!opts.dry_run
                && matches!(
                    opts.trigger,
                    Trigger::Console | Trigger::Wizard | Trigger::Cli | Trigger::Api
                ))
            .then(|| NewAudit {
                tenant_id: tenant.id,
                actor: opts.actor.clone(),
                action: "directory.sync",
                detail: format!(
                    "run #{run_id} {}: {} added, {} updated, {} disabled, {} moved",
                    status.as_str(),
                    c.users_added,
                    c.users_updated,
                    c.users_disabled,
                    c.users_moved
                ),
                ip: None,
            })
        };
        let mut finish = finish_record(&r, &mut report, &stats);
        let recorded = match plan {
            // The changes, the run's record, the app snapshot, the tenant's mode and the
            // audit line commit together: a crash leaves all of them or none.
            Some(mut p) => {
                let open = p.open.take();
                progress.set_phase("applying", 1);
                crate::testing::crash_point("sync-before-apply");
                let t2 = Instant::now();
                let entry = audit(finish.status, &report.diff.counts);
                let applied = st
                    .store
                    .apply_directory_diff(
                        tenant.id,
                        &p.corpid,
                        run_id,
                        &p.diff,
                        ApplyWith {
                            retire: p.retire.as_ref(),
                            end: Some(RunEnd {
                                finish: &finish,
                                agent_json: p.agent_json.as_ref().map(|(a, j)| (*a, j.as_str())),
                                integration_mode: p
                                    .switch_mode
                                    .then_some(IntegrationMode::SelfBuilt),
                                audit: entry.as_ref(),
                            }),
                            open,
                        },
                    )
                    .await;
                match applied {
                    Ok(()) => {
                        crate::testing::crash_point("sync-applied");
                        progress.step();
                        report.apply_ms = t2.elapsed().as_millis() as u64;
                        // A count only: a failure leaves the report without it.
                        report.coverage =
                            st.store.field_coverage(tenant.id).await.unwrap_or_default();
                        // The outcome is recorded; this only adds the apply's duration
                        // and the field coverage.
                        if let Ok(json) = serde_json::to_string(&report) {
                            let _ = st.store.set_sync_run_report(run_id, &json).await;
                        }
                        Ok(())
                    }
                    // Rolled back: nothing was applied, the run failed.
                    Err(e) => {
                        r = Err(SyncError::Store(e));
                        finish = finish_record(&r, &mut report, &stats);
                        let recorded = st.store.finish_sync_run(run_id, &finish).await;
                        if let Some(entry) = audit(finish.status, &report.diff.counts) {
                            let _ = st.store.audit(&entry).await;
                        }
                        recorded
                    }
                }
            }
            None => {
                let recorded = st.store.finish_sync_run(run_id, &finish).await;
                if let Some(entry) = audit(finish.status, &report.diff.counts) {
                    let _ = st.store.audit(&entry).await;
                }
                recorded
            }
        };
        lock.release().await;
        crate::ops::metrics::sync_run(
            if opts.dry_run {
                RunKind::DryRun
            } else {
                RunKind::Full
            },
            opts.trigger,
            finish.status,
            started.elapsed(),
        );
        recorded?;
        let status = finish.status;
        let message = match &r {
            Ok((_, m)) => m.clone(),
            Err(e) => Some(e.explain().0),
        };
        r?;
        Ok(RunOutcome {
            run_id,
            status,
            report,
            duration: started.elapsed(),
            message,
        })
    }
}

/// A run's end as the fetch and diff decided it.
enum Planned {
    /// Nothing to apply (a dry run, or stopped by the guard).
    Done(RunStatus, Option<String>),
    /// Changes to apply with the run's record.
    Apply(Box<PlannedApply>),
}

struct PlannedApply {
    /// The apply's transaction, opened during the fetch with new members' rows.
    open: Option<OpenApply>,
    corpid: String,
    diff: DirectoryDiff,
    retire: Option<RetireIdentities>,
    /// (agentid, its agent/get answer).
    agent_json: Option<(i64, String)>,
    /// The switch from a third-party app completes: the tenant becomes self-built.
    switch_mode: bool,
}

/// Returns once someone asks the run to stop (polled: any instance's console may ask).
async fn cancel_requested(st: &AppState, run_id: i64) -> String {
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Ok(Some(by)) = st.store.sync_cancel_requested(run_id).await {
            return by;
        }
    }
}

/// Asks the tenant's running run `run_id` to stop before it applies anything, audited.
/// `false`: that run is not running (finished already, or not the tenant's).
pub async fn request_cancel(
    st: &AppState,
    tenant_id: i64,
    run_id: i64,
    actor: &str,
    ip: Option<String>,
) -> Result<bool, SyncError> {
    let entry = NewAudit {
        tenant_id,
        actor: actor.to_string(),
        action: "directory.sync.cancel",
        detail: format!("run #{run_id}"),
        ip,
    };
    Ok(st
        .store
        .request_sync_cancel(tenant_id, run_id, actor, &entry)
        .await?)
}

/// The run's final record from its result and report (errors go into the report).
fn finish_record(
    r: &Result<(RunStatus, Option<String>), SyncError>,
    report: &mut RunReport,
    stats: &wecom::CallStats,
) -> SyncRunFinish {
    let (status, message, error) = match r {
        Ok((status, msg)) => (*status, msg.clone(), None),
        Err(e) => {
            let (en, zh) = e.explain();
            report.error(en.clone(), zh);
            let status = match e {
                SyncError::Cancelled(_) => RunStatus::Cancelled,
                _ => RunStatus::Failed,
            };
            (status, Some(en.clone()), Some(en))
        }
    };
    let c = report.diff.counts;
    SyncRunFinish {
        status,
        users_added: c.users_added as i64,
        users_updated: c.users_updated as i64,
        users_disabled: c.users_disabled as i64,
        users_moved: c.users_moved as i64,
        api_calls: stats.total_calls() as i64,
        api_calls_json: serde_json::to_string(&report.api_calls).unwrap_or_default(),
        report_json: serde_json::to_string(&*report).ok(),
        error: error
            .or_else(|| (status == RunStatus::Blocked).then(|| message.unwrap_or_default())),
    }
}

async fn full_sync(
    st: &AppState,
    tenant: &Tenant,
    opts: &SyncOptions,
    progress: &Progress,
    stats: &Arc<wecom::CallStats>,
    report: &mut RunReport,
    ck: Option<&checkpoint::Checkpoint>,
) -> Result<Planned, SyncError> {
    let rec = st
        .store
        .main_integration(tenant.id)
        .await?
        .ok_or(SyncError::NotConfigured)?;
    let opened = st.open_integration(&rec)?;
    let client = counted_client(st, &opened.corpid, &opened.secret, stats.clone())?;
    let policy = st.store.directory_policy(tenant.id).await?;

    let diff_opts = DiffOptions {
        new_user_status: policy.new_user_status,
    };

    // The stored directory loads beside the fetch, which mostly waits on WeCom's rate
    // limit; from then on, members it holds unchanged are kept as fingerprints only.
    let baseline = Arc::new(std::sync::OnceLock::new());
    let preload = Preload(tokio::spawn({
        let (st, slot) = (st.clone(), baseline.clone());
        let (tenant_id, corpid) = (tenant.id, opened.corpid.clone());
        async move {
            let mut b = Baseline::new(diff_opts);
            match st.store.scan_users(tenant_id, &corpid, |u| b.add(u)).await {
                Ok(()) => {
                    if let Some(b) = b.finish() {
                        let _ = slot.set(b);
                    }
                }
                Err(e) => {
                    tracing::warn!(tenant = tenant_id, error = %e, "directory preload failed")
                }
            }
        }
    }));
    // PostgreSQL: the apply's transaction opens now, and new members' rows are written
    // while the fetch waits on WeCom; a dry run writes nothing.
    let ahead = match opts.dry_run {
        true => None,
        false => ahead::WriteAhead::start(&st.store, tenant.id, &opened.corpid, diff_opts).await,
    };
    let t0 = Instant::now();
    let aids = fetch::FetchAids {
        checkpoint: ck,
        baseline: Some(&baseline),
        ahead: ahead.as_ref(),
    };
    let mut fetched =
        fetch::fetch_directory(&client, opened.agentid, progress, opts.concurrency, aids).await?;
    // Members read before the preload ended are set aside now, and new ones offered to be
    // written ahead (a fetch that saw the baseline loaded did both as it read); on a small
    // org that is all of them. Then the preload's copy goes, before the directory is
    // loaded again.
    preload.finish().await;
    if let (Some(b), false) = (baseline.get(), fetched.baseline_seen) {
        fetched.desired.set_aside(b);
        if let Some(w) = &ahead {
            for (k, r) in fetched.desired.unknown_to(b) {
                if !w.try_offer(k, r) {
                    break; // The queue is full: the apply writes the rest.
                }
            }
        }
    }
    drop(baseline);
    let open = match ahead {
        Some(w) => {
            let offered = w.offered();
            let open = w.finish().await;
            report.written_ahead = open.as_ref().map_or(0, |o| o.written() as u64);
            tracing::debug!(
                offered,
                written = report.written_ahead,
                "rows written ahead"
            );
            open
        }
        None => None,
    };
    report.fetch_ms = t0.elapsed().as_millis() as u64;
    report.members = fetched.desired.member_count() as u64;
    report.members_unchanged = fetched.desired.unchanged.len() as u64;
    report.bound = Some(fetched.bound);
    report.withheld = fetched.withheld.clone();
    for (en, zh) in &fetched.warnings {
        report.warn(en.clone(), zh.clone());
    }
    // Drift (issue 14): a bound model app's scope widened in WeCom since it was bound.
    for a in crate::app_binding::recheck_bound_apps(st, tenant.id, &client, opened.agentid).await? {
        if let Some((en, zh)) = crate::app_binding::drift_warning(&a) {
            report.warn(en, zh);
        }
    }

    // The switch from a third-party app: convert while the old app is still installed.
    progress.set_phase("diff", 0);
    let t1 = Instant::now();
    // Members set aside during the fetch are folded in as they are read, not held.
    let mut folded = Folded::default();
    let mut current = st
        .store
        .load_directory_folding(tenant.id, &opened.corpid, &mut |u| {
            fetched.desired.fold(u, diff_opts, &mut folded)
        })
        .await?;
    current.folded = folded;
    let imported = st.store.imported_identities(tenant.id).await?;
    let mut retire = None;
    if !imported.is_empty() {
        progress.set_phase("relink", imported.len() as u64);
        let plan = switch::plan_relink(&client, &imported, &mut current).await?;
        retire = Some(RetireIdentities {
            relinked: plan.relinked,
        });
        report.relink = Some(plan.report);
    }
    // Stored people with no WeCom identity yet (an import, hand-made, or not re-linked by
    // the switch) are found by the tenant's match rule; ambiguous values link nobody and
    // create nobody while they stand (issue 20).
    let mut desired = fetched.desired;
    let rule = st.store.match_rule(tenant.id).await?;
    let keys = st.store.import_keys(tenant.id).await?;
    let matched = matching::match_existing(&desired, &mut current, &keys, &rule);
    for k in &matched.held_members {
        desired.users.remove(k);
    }
    if let Some(rl) = report.relink.as_mut() {
        let linked: std::collections::HashSet<i64> = current
            .users
            .iter()
            .filter(|u| u.link_identity)
            .map(|u| u.id)
            .collect();
        rl.unlinked.retain(|u| !linked.contains(&u.user_id));
    }
    for a in &matched.report.ambiguous {
        report.warn(a.fix_en.clone(), a.fix_zh.clone());
    }
    let mut diff = diff_full(desired, &current, diff_opts);
    if diff.changed_during_fetch > 0 {
        let n = diff.changed_during_fetch;
        report.warn(
            format!("{n} members changed in the bridge while WeCom was read (a sign-in filled a field): left as they are; the next sync compares them again"),
            format!("读取企业微信期间有 {n} 名成员在本系统中被修改（登录时补全了字段）：本次保持不变，下次同步再比对"),
        );
    }
    matching::keep_held(&mut diff, &matched);
    if matched.report.candidates > 0 {
        report.matching = Some(matched.report);
    }
    let verdict = mass_disable_guard(
        current.active_users(),
        diff.active_disabled(),
        policy.max_disable_permille,
    );
    drop(current);
    report.guard = Some(verdict);
    report.diff = diff.summary(REPORT_SAMPLES);
    report.diff_ms = t1.elapsed().as_millis() as u64;

    if verdict.blocked && !opts.force {
        return Ok(Planned::Done(
            RunStatus::Blocked,
            Some(verdict.message_en()),
        ));
    }
    if opts.dry_run {
        return Ok(Planned::Done(RunStatus::Succeeded, None));
    }
    Ok(Planned::Apply(Box::new(PlannedApply {
        open,
        corpid: opened.corpid,
        diff,
        switch_mode: retire.is_some() && tenant.integration_mode != IntegrationMode::SelfBuilt,
        retire,
        agent_json: serde_json::to_string(&fetched.agent)
            .ok()
            .map(|j| (rec.agentid, j)),
    })))
}

/// The stored directory's load beside the fetch; stopped if the run ends first.
struct Preload(tokio::task::JoinHandle<()>);

impl Preload {
    async fn finish(mut self) {
        let _ = (&mut self.0).await;
    }
}

impl Drop for Preload {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies a diff unless there is nothing to write: a re-sync with no change in WeCom
/// writes nothing to the directory.
pub async fn apply(
    st: &AppState,
    tenant_id: i64,
    corpid: &str,
    run_id: i64,
    diff: &DirectoryDiff,
    retire: Option<&RetireIdentities>,
) -> Result<(), StoreError> {
    if diff.is_empty() && retire.is_none() {
        return Ok(());
    }
    st.store
        .apply_directory_diff(
            tenant_id,
            corpid,
            run_id,
            diff,
            ApplyWith {
                retire,
                ..Default::default()
            },
        )
        .await
}
