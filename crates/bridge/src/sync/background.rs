//! The sync's background task, started by `launch`: applies callbacks left pending (a
//! restart, a missed wake-up), runs the periodic reconcile, and a reconcile asked for by
//! a callback that could not be applied. It ends when the store is closed.

use super::{incremental, SyncError, SyncOptions};
use crate::app::AppState;
use crate::domain::directory::Trigger;
use crate::domain::now_ms;
use crate::domain::tenant::IntegrationMode;
use std::collections::HashMap;
use std::time::Duration;

/// Handled callbacks are kept this long (≥ 24 h) so WeCom's retries are recognised.
const CALLBACK_RETENTION_MS: i64 = 48 * 3600 * 1000;

/// The running callback workers: one per tenant at most, each with a "more work came"
/// flag. A burst of callbacks wakes one worker, not a task per callback: on PostgreSQL
/// each waiting task held a pooled connection while it waited for the tenant's lock, so
/// a burst of 16 emptied the pool and everything else timed out.
#[derive(Debug, Default)]
pub struct Workers {
    tenants: std::sync::Mutex<HashMap<i64, bool>>,
}

impl Workers {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<i64, bool>> {
        self.tenants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a worker for `tenant_id` should start: false (and flagged) when one runs.
    fn claim(&self, tenant_id: i64) -> bool {
        let mut m = self.map();
        match m.get_mut(&tenant_id) {
            Some(more) => {
                *more = true;
                false
            }
            None => {
                m.insert(tenant_id, false);
                true
            }
        }
    }

    /// Called by the worker after a pass: true to go again (work came meanwhile), else the
    /// worker is gone and the next kick starts a new one.
    fn again(&self, tenant_id: i64) -> bool {
        let mut m = self.map();
        match m.get_mut(&tenant_id) {
            Some(more) if *more => {
                *more = false;
                true
            }
            _ => {
                m.remove(&tenant_id);
                false
            }
        }
    }

    /// Workers running now (tests).
    pub fn running(&self) -> usize {
        self.map().len()
    }
}

/// Forgets a worker that ended without [`Workers::again`] (a panic).
struct Claimed<'a>(&'a Workers, i64, bool);

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if !self.2 {
            self.0.map().remove(&self.1);
        }
    }
}

/// Wakes the callback worker of one tenant: called right after a callback is stored. If
/// it runs already it makes one more pass; else one starts.
pub fn kick(st: &AppState, tenant_id: i64) {
    if !st.callback_workers.claim(tenant_id) {
        return;
    }
    let st = st.clone();
    tokio::spawn(async move {
        let workers = st.callback_workers.clone();
        let mut claimed = Claimed(&workers, tenant_id, false);
        loop {
            if let Err(e) = after_callbacks(&st, tenant_id).await {
                tracing::warn!(tenant = tenant_id, error = %e, "applying callbacks failed");
            }
            if !workers.again(tenant_id) {
                claimed.2 = true;
                return;
            }
        }
    });
}

async fn after_callbacks(st: &AppState, tenant_id: i64) -> Result<(), SyncError> {
    let (_, reconcile) = incremental::process_pending(st, tenant_id).await?;
    if reconcile {
        reconcile_now(st, tenant_id, Trigger::Callback).await?;
    }
    Ok(())
}

/// Starts a full sync unless one runs already (which then covers the request).
async fn reconcile_now(st: &AppState, tenant_id: i64, trigger: Trigger) -> Result<(), SyncError> {
    let Some(tenant) = st.store.tenant_by_id(tenant_id).await? else {
        return Ok(());
    };
    let mut opts = SyncOptions::new(trigger, "system");
    opts.concurrency = st.cfg.sync_concurrency;
    match super::spawn_full(st, &tenant, opts).await {
        Ok(_) | Err(SyncError::Busy) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs until the store closes. `tick` is how often pending work is looked for.
pub fn spawn(st: AppState, tick: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_purge = 0i64;
        loop {
            tokio::time::sleep(tick).await;
            if st.store.is_closed() {
                return;
            }
            if let Err(e) = round(&st, &mut last_purge).await {
                if st.store.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "sync background round failed");
            }
        }
    })
}

/// When the tenant's next scheduled reconcile is due (Unix ms): one interval (its policy's,
/// else the instance default) after the last full sync or attempt. `None`: reconciling is
/// off, or the tenant was never synced (the first sync is the admin's decision, step 4).
pub async fn next_reconcile_at(st: &AppState, tenant_id: i64) -> Result<Option<i64>, SyncError> {
    let Some(last) = st.store.last_full_sync_at(tenant_id).await? else {
        return Ok(None);
    };
    let interval = if st.store.has_directory_policy(tenant_id).await? {
        st.store
            .directory_policy(tenant_id)
            .await?
            .reconcile_interval_secs
            .max(0) as u64
    } else {
        st.cfg.sync_reconcile_secs
    };
    if interval == 0 {
        return Ok(None);
    }
    // A blocked or failed attempt also counts: it is retried one interval later.
    let last = last.max(st.store.last_full_attempt_at(tenant_id).await?.unwrap_or(0));
    Ok(Some(last + interval as i64 * 1000))
}

async fn round(st: &AppState, last_purge: &mut i64) -> Result<(), SyncError> {
    // Left pending by a restart or a failed pass: through the tenant's one worker.
    for t in st.store.tenants_with_pending_callbacks().await? {
        kick(st, t);
    }
    // A run cut short by a crash is ended by the tenant's next run; with no next run
    // (nothing pending, no reconcile due) it would stay "running". Every run holds its
    // tenant's lock from before its record exists until after it ends, so a record
    // still running while the lock is free has no process behind it.
    for t in st.store.tenants_with_running_runs().await? {
        if let Some(l) = super::lock::acquire(&st.store, t, false).await? {
            let ended = st.store.interrupt_stale_runs(t, 0).await;
            l.release().await;
            ended?;
        }
    }
    let now = now_ms();
    for t in st.store.list_tenants().await? {
        if t.integration_mode != IntegrationMode::SelfBuilt {
            continue;
        }
        if next_reconcile_at(st, t.id)
            .await?
            .is_some_and(|at| now >= at)
        {
            reconcile_now(st, t.id, Trigger::Schedule).await?;
        }
    }
    if now - *last_purge > 3600 * 1000 {
        st.store
            .purge_callbacks(now - CALLBACK_RETENTION_MS)
            .await?;
        if st.cfg.audit_retention_days > 0 {
            let keep_ms = st.cfg.audit_retention_days as i64 * 86_400_000;
            st.store.purge_audit(now - keep_ms).await?;
        }
        *last_purge = now;
    }
    Ok(())
}
