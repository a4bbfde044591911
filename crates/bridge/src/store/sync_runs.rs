//! Sync run records (trigger, progress, counts, API calls, report) and the inbox of
//! change_contact callbacks (deduplicated by the SHA-256 of the decrypted XML).

use super::audit::insert_audit;
use super::{on_pool, parse, Result, Store, StoreError};
use crate::domain::audit::NewAudit;
use crate::domain::directory::{interrupted_message, RunKind, RunStatus, Trigger};
use crate::domain::now_ms;
use sqlx::{FromRow, Row};

/// A run about to start.
#[derive(Clone, Debug)]
pub struct NewSyncRun {
    pub tenant_id: i64,
    pub trigger: Trigger,
    pub kind: RunKind,
    pub actor: String,
    pub forced: bool,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct SyncRunFinish {
    pub status: RunStatus,
    pub users_added: i64,
    pub users_updated: i64,
    pub users_disabled: i64,
    pub users_moved: i64,
    pub api_calls: i64,
    /// `{"user/list": {"calls":…}, …}`
    pub api_calls_json: String,
    pub report_json: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    pub id: i64,
    pub tenant_id: i64,
    pub trigger: Trigger,
    pub kind: RunKind,
    pub status: RunStatus,
    pub phase: String,
    pub progress_done: i64,
    pub progress_total: i64,
    /// Seconds left of a wait for WeCom's rate limit (None = not waiting).
    pub rate_wait_secs: Option<i64>,
    pub users_added: i64,
    pub users_updated: i64,
    pub users_disabled: i64,
    pub users_moved: i64,
    pub api_calls: i64,
    pub api_calls_json: String,
    pub report_json: Option<String>,
    pub error: Option<String>,
    pub forced: bool,
    pub actor: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub finished_at: Option<i64>,
}

impl SyncRun {
    pub fn duration_ms(&self) -> i64 {
        self.finished_at.unwrap_or(self.heartbeat_at) - self.started_at
    }
}

const RUN_COLS: &str = "id, tenant_id, run_trigger, kind, status, phase, progress_done, progress_total, rate_wait_secs, users_added,
    users_updated, users_disabled, users_moved, api_calls, api_calls_json, report_json, error, forced, actor,
    started_at, heartbeat_at, finished_at";

/// A `sync_runs` row as [`RUN_COLS`] reads it; [`RunRow::into_run`] checks its enums.
#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    tenant_id: i64,
    run_trigger: String,
    kind: String,
    status: String,
    phase: String,
    progress_done: i64,
    progress_total: i64,
    rate_wait_secs: Option<i64>,
    users_added: i64,
    users_updated: i64,
    users_disabled: i64,
    users_moved: i64,
    api_calls: i64,
    api_calls_json: String,
    report_json: Option<String>,
    error: Option<String>,
    forced: bool,
    actor: String,
    started_at: i64,
    heartbeat_at: i64,
    finished_at: Option<i64>,
}

impl RunRow {
    fn into_run(self) -> Result<SyncRun> {
        Ok(SyncRun {
            id: self.id,
            tenant_id: self.tenant_id,
            trigger: parse(self.run_trigger)?,
            kind: parse(self.kind)?,
            status: parse(self.status)?,
            phase: self.phase,
            progress_done: self.progress_done,
            progress_total: self.progress_total,
            rate_wait_secs: self.rate_wait_secs,
            users_added: self.users_added,
            users_updated: self.users_updated,
            users_disabled: self.users_disabled,
            users_moved: self.users_moved,
            api_calls: self.api_calls,
            api_calls_json: self.api_calls_json,
            report_json: self.report_json,
            error: self.error,
            forced: self.forced,
            actor: self.actor,
            started_at: self.started_at,
            heartbeat_at: self.heartbeat_at,
            finished_at: self.finished_at,
        })
    }
}

/// A stored callback waiting to be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCallback {
    pub id: i64,
    pub tenant_id: i64,
    pub change_type: String,
    pub payload: String,
    /// When the bridge stored it (ms): the start of its lag.
    pub received_at: i64,
}

/// The statement that ends a run: `finish_query!(&SyncRunFinish, now, run_id)`, run on a
/// pool or inside a transaction.
macro_rules! finish_query {
    ($f:expr, $now:expr, $run_id:expr) => {{
        let f: &SyncRunFinish = $f;
        sqlx::query(
            "UPDATE sync_runs SET status = $1, phase = 'done', rate_wait_secs = NULL, users_added = $2, users_updated = $3,
                users_disabled = $4, users_moved = $5, api_calls = $6, api_calls_json = $7, report_json = $8,
                error = $9, heartbeat_at = $10, finished_at = $10
             WHERE id = $11",
        )
        .bind(f.status.as_str())
        .bind(f.users_added)
        .bind(f.users_updated)
        .bind(f.users_disabled)
        .bind(f.users_moved)
        .bind(f.api_calls)
        .bind(&f.api_calls_json)
        .bind(&f.report_json)
        .bind(&f.error)
        .bind($now)
        .bind($run_id)
    }};
}
pub(crate) use finish_query;

impl Store {
    pub async fn create_sync_run(&self, r: &NewSyncRun) -> Result<i64> {
        let now = now_ms();
        on_pool!(self, |p| {
            Ok(sqlx::query(
                "INSERT INTO sync_runs (tenant_id, run_trigger, kind, status, actor, forced, started_at, heartbeat_at)
                 VALUES ($1, $2, $3, 'running', $4, $5, $6, $6) RETURNING id",
            )
            .bind(r.tenant_id)
            .bind(r.trigger.as_str())
            .bind(r.kind.as_str())
            .bind(&r.actor)
            .bind(r.forced)
            .bind(now)
            .fetch_one(p)
            .await?
            .try_get("id")?)
        })
    }

    /// Asks a running run to stop (before it applies anything); `audit` commits with the
    /// request. `false`: no such run of the tenant is running.
    pub async fn request_sync_cancel(
        &self,
        tenant_id: i64,
        run_id: i64,
        actor: &str,
        audit: &NewAudit,
    ) -> Result<bool> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE sync_runs SET cancel_requested_by = $1
                 WHERE tenant_id = $2 AND id = $3 AND status = 'running'",
            )
            .bind(actor)
            .bind(tenant_id)
            .bind(run_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                insert_audit!(&mut *tx, audit, now_ms());
            }
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    /// Who asked the run to stop, if anyone.
    pub async fn sync_cancel_requested(&self, run_id: i64) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT cancel_requested_by FROM sync_runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(p)
                .await
        })?;
        Ok(row.and_then(|r| r.0))
    }

    pub async fn update_sync_progress(
        &self,
        run_id: i64,
        phase: &str,
        done: i64,
        total: i64,
        rate_wait_secs: Option<i64>,
    ) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
                "UPDATE sync_runs SET phase = $1, progress_done = $2, progress_total = $3, heartbeat_at = $4,
                    rate_wait_secs = $6
                 WHERE id = $5 AND status = 'running'",
            )
            .bind(phase)
            .bind(done)
            .bind(total)
            .bind(now_ms())
            .bind(run_id)
            .bind(rate_wait_secs)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// Ends a run that applied nothing (a dry run, a blocked or failed one, or an
    /// incremental run whose changes were committed one by one). A full sync that applies
    /// ends its record in the apply's own transaction ([`Store::apply_directory_diff`]).
    /// A succeeded run, and any callbacks' run (it changed the directory one change at
    /// a time), also forget the tenant's sync checkpoint: it no longer matches.
    pub async fn finish_sync_run(&self, run_id: i64, f: &SyncRunFinish) -> Result<()> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            finish_query!(f, now, run_id).execute(&mut *tx).await?;
            sqlx::query(
                "DELETE FROM sync_checkpoints WHERE tenant_id =
                    (SELECT tenant_id FROM sync_runs WHERE id = $1 AND (status = 'succeeded' OR kind = 'incremental'))",
            )
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Replaces a finished run's report (the apply's duration is known only after its
    /// commit, which already recorded the outcome).
    pub async fn set_sync_run_report(&self, run_id: i64, report_json: &str) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("UPDATE sync_runs SET report_json = $1 WHERE id = $2")
                .bind(report_json)
                .bind(run_id)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Marks the tenant's other runs still `running` as interrupted: called by the holder
    /// of the tenant's sync lock, so they cannot really be running. Each gets a message
    /// saying what it left behind ([`interrupted_message`]).
    pub async fn interrupt_stale_runs(&self, tenant_id: i64, except: i64) -> Result<u64> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, kind, phase, progress_done, progress_total FROM sync_runs
                 WHERE tenant_id = $1 AND status = 'running' AND id <> $2",
            )
            .bind(tenant_id)
            .bind(except)
            .fetch_all(p)
            .await?;
            let mut n = 0;
            for r in &rows {
                let kind: String = r.try_get("kind")?;
                let kind: RunKind = kind.parse().map_err(StoreError::Corrupt)?;
                let phase: String = r.try_get("phase")?;
                let msg = interrupted_message(
                    kind,
                    &phase,
                    r.try_get("progress_done")?,
                    r.try_get("progress_total")?,
                );
                n += sqlx::query(
                    "UPDATE sync_runs SET status = 'interrupted', error = $1, rate_wait_secs = NULL, finished_at = heartbeat_at
                     WHERE id = $2 AND status = 'running'",
                )
                .bind(msg)
                .bind(r.try_get::<i64, _>("id")?)
                .execute(p)
                .await?
                .rows_affected();
            }
            Ok(n)
        })
    }

    pub async fn sync_run(&self, tenant_id: i64, id: i64) -> Result<Option<SyncRun>> {
        let sql = format!("SELECT {RUN_COLS} FROM sync_runs WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Ok(Some(RunRow::from_row(&r)?.into_run()?)),
                None => Ok(None),
            }
        })
    }

    /// The newest runs first; `kind` filters when given.
    pub async fn list_sync_runs(
        &self,
        tenant_id: i64,
        kind: Option<RunKind>,
        limit: i64,
    ) -> Result<Vec<SyncRun>> {
        let sql = format!(
            "SELECT {RUN_COLS} FROM sync_runs WHERE tenant_id = $1 AND ($2 = '' OR kind = $2) ORDER BY id DESC LIMIT $3"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(kind.map(|k| k.as_str()).unwrap_or(""))
                .bind(limit)
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(RunRow::from_row(r)?.into_run()?);
            }
            Ok(out)
        })
    }

    /// When the last successful full sync of the tenant finished.
    pub async fn last_full_sync_at(&self, tenant_id: i64) -> Result<Option<i64>> {
        on_pool!(self, |p| {
            Ok(sqlx::query(
                "SELECT MAX(finished_at) AS at FROM sync_runs WHERE tenant_id = $1 AND kind = 'full' AND status = 'succeeded'",
            )
            .bind(tenant_id)
            .fetch_one(p)
            .await?
            .try_get("at")?)
        })
    }

    /// When the tenant's last full sync (whatever its outcome) started.
    pub async fn last_full_attempt_at(&self, tenant_id: i64) -> Result<Option<i64>> {
        on_pool!(self, |p| {
            Ok(sqlx::query("SELECT MAX(started_at) AS at FROM sync_runs WHERE tenant_id = $1 AND kind = 'full'")
                .bind(tenant_id)
                .fetch_one(p)
                .await?
                .try_get("at")?)
        })
    }

    /// Stores a decrypted change_contact callback unless the same XML was seen already.
    /// Returns whether it is new.
    pub async fn enqueue_callback(
        &self,
        tenant_id: i64,
        xml_sha256: &str,
        change_type: &str,
        payload: &str,
    ) -> Result<bool> {
        on_pool!(self, |p| {
            Ok(sqlx::query(
                "INSERT INTO callback_events (tenant_id, xml_sha256, change_type, payload, status, received_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT (tenant_id, xml_sha256) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(xml_sha256)
            .bind(change_type)
            .bind(payload)
            .bind(now_ms())
            .execute(p)
            .await?
            .rows_affected()
                == 1)
        })
    }

    /// Pending callbacks of a tenant in arrival order.
    pub async fn pending_callbacks(
        &self,
        tenant_id: i64,
        limit: i64,
    ) -> Result<Vec<PendingCallback>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, tenant_id, change_type, payload, received_at FROM callback_events
                 WHERE status = 'pending' AND tenant_id = $1 ORDER BY id LIMIT $2",
            )
            .bind(tenant_id)
            .bind(limit)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(PendingCallback {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    change_type: r.try_get("change_type")?,
                    payload: r.try_get("payload")?,
                    received_at: r.try_get("received_at")?,
                });
            }
            Ok(out)
        })
    }

    /// Tenants with a run recorded as running (live, or cut short by a crash).
    pub async fn tenants_with_running_runs(&self) -> Result<Vec<i64>> {
        self.tenant_ids("SELECT DISTINCT tenant_id FROM sync_runs WHERE status = 'running'")
            .await
    }

    /// Tenants with callbacks waiting (after a restart, or a missed wake-up).
    pub async fn tenants_with_pending_callbacks(&self) -> Result<Vec<i64>> {
        self.tenant_ids("SELECT DISTINCT tenant_id FROM callback_events WHERE status = 'pending'")
            .await
    }

    /// The ids of a `SELECT DISTINCT tenant_id …` without parameters.
    async fn tenant_ids(&self, sql: &'static str) -> Result<Vec<i64>> {
        on_pool!(self, |p| {
            let rows: Vec<(i64,)> = sqlx::query_as(sql).fetch_all(p).await?;
            Ok(rows.into_iter().map(|(t,)| t).collect())
        })
    }

    /// Marks a callback handled by an incremental run and, in the same transaction, counts
    /// it in the run's record (`done` of `total` callbacks, the users changed so far), so a
    /// run the process never finished still says what it handled.
    #[allow(clippy::too_many_arguments)]
    pub async fn mark_callback_in_run(
        &self,
        id: i64,
        status: &str,
        error: Option<&str>,
        run_id: i64,
        done: i64,
        total: i64,
        c: &crate::domain::directory::DiffCounts,
    ) -> Result<()> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE callback_events SET status = $1, error = $2, applied_at = $3 WHERE id = $4",
            )
            .bind(status)
            .bind(error)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE sync_runs SET phase = 'callbacks', progress_done = $1, progress_total = $2, users_added = $3,
                    users_updated = $4, users_disabled = $5, users_moved = $6, heartbeat_at = $7
                 WHERE id = $8 AND status = 'running'",
            )
            .bind(done)
            .bind(total)
            .bind(c.users_added as i64)
            .bind(c.users_updated as i64)
            .bind(c.users_disabled as i64)
            .bind(c.users_moved as i64)
            .bind(now)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn mark_callback(&self, id: i64, status: &str, error: Option<&str>) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
                "UPDATE callback_events SET status = $1, error = $2, applied_at = $3 WHERE id = $4",
            )
            .bind(status)
            .bind(error)
            .bind(now_ms())
            .bind(id)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// (change type, status, error) of the tenant's callbacks, oldest first (tests, console).
    pub async fn list_callbacks(
        &self,
        tenant_id: i64,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        on_pool!(self, |p| {
            let rows = sqlx::query("SELECT change_type, status, error FROM callback_events WHERE tenant_id = $1 ORDER BY id")
                .bind(tenant_id)
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push((
                    r.try_get("change_type")?,
                    r.try_get("status")?,
                    r.try_get("error")?,
                ));
            }
            Ok(out)
        })
    }

    /// Forgets handled callbacks received before `before` (kept ≥ 24 h for dedup).
    pub async fn purge_callbacks(&self, before: i64) -> Result<u64> {
        on_pool!(self, |p| {
            Ok(sqlx::query(
                "DELETE FROM callback_events WHERE status <> 'pending' AND received_at < $1",
            )
            .bind(before)
            .execute(p)
            .await?
            .rows_affected())
        })
    }
}
