//! Resumable full syncs (issue 20). A run saves each department's members and each
//! tag as it reads them; a run that fails, is cancelled or is killed half way leaves
//! them behind, and the next full run within the hour reads from WeCom only what is not
//! saved. The directory still changes only by one complete apply. A succeeded run, and
//! any callbacks applied meanwhile, forget the checkpoint (it would be stale).
//!
//! Scope, department list and tag list are always read afresh (three calls): only the
//! departments and tags still in scope are taken from the checkpoint.

use crate::app::AppClock;
use crate::domain::directory::Resumed;
use crate::store::{CheckpointItem, Store};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use wecom::types::{Member, Tag};

/// How long WeCom's answers are reused: its hourly call budget's window (§16). Older
/// answers are read again.
pub const MAX_AGE_MS: i64 = 3_600_000;

const DEPT: &str = "dept_members";
const TAG: &str = "tag";
/// Items written per transaction.
const BATCH: usize = 64;
/// Items waiting for the writer (at most ~12 MB for departments of ~20 members).
const QUEUE: usize = 1024;

/// A run's view of its tenant's checkpoint: what it may reuse, and where it saves.
pub struct Checkpoint {
    store: Store,
    clock: AppClock,
    tenant_id: i64,
    run_id: i64,
    depts: HashSet<i64>,
    tags: HashSet<i64>,
    from_runs: BTreeSet<i64>,
    reused_depts: AtomicU64,
    reused_tags: AtomicU64,
    skipped: AtomicU64,
    tx: Option<mpsc::Sender<CheckpointItem>>,
}

/// Writes saved items in the background; [`Writer::finish`] waits for the last.
pub struct Writer(tokio::task::JoinHandle<()>);

impl Writer {
    pub async fn finish(self) {
        let _ = self.0.await;
    }
}

impl Checkpoint {
    /// Opens the tenant's checkpoint for run `run_id`: what it may reuse (saved less
    /// than [`MAX_AGE_MS`] ago), and a writer for what it reads.
    pub async fn open(
        store: &Store,
        clock: &AppClock,
        tenant_id: i64,
        run_id: i64,
    ) -> Result<(Checkpoint, Writer), crate::store::StoreError> {
        let index = store
            .checkpoint_index(tenant_id, clock.now_ms() - MAX_AGE_MS)
            .await?;
        let mut depts = HashSet::new();
        let mut tags = HashSet::new();
        let mut from_runs = BTreeSet::new();
        for (kind, id, run) in index {
            match kind.as_str() {
                DEPT => depts.insert(id),
                TAG => tags.insert(id),
                _ => continue,
            };
            from_runs.insert(run);
        }
        let (tx, mut rx) = mpsc::channel::<CheckpointItem>(QUEUE);
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(BATCH);
                while rx.recv_many(&mut batch, BATCH).await > 0 {
                    // A checkpoint that cannot be written costs a re-read later, not the run.
                    if let Err(e) = store.put_checkpoints(tenant_id, &batch).await {
                        tracing::warn!(tenant = tenant_id, error = %e, "sync checkpoint not saved");
                    }
                    batch.clear();
                }
            })
        };
        Ok((
            Checkpoint {
                store: store.clone(),
                clock: clock.clone(),
                tenant_id,
                run_id,
                depts,
                tags,
                from_runs,
                reused_depts: AtomicU64::new(0),
                reused_tags: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                tx: Some(tx),
            },
            Writer(writer),
        ))
    }

    /// Stops saving: the writer ends once it has written what it holds.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// A department's members as saved, if they are (a bad or missing row: `None`, and
    /// the department is read from WeCom).
    pub async fn dept_members(&self, dept: i64) -> Option<Vec<Member>> {
        self.load(DEPT, dept, &self.depts, &self.reused_depts).await
    }

    pub async fn tag(&self, tag: i64) -> Option<Tag> {
        self.load(TAG, tag, &self.tags, &self.reused_tags).await
    }

    async fn load<T: serde::de::DeserializeOwned>(
        &self,
        kind: &'static str,
        id: i64,
        have: &HashSet<i64>,
        count: &AtomicU64,
    ) -> Option<T> {
        if !have.contains(&id) {
            return None;
        }
        let body = match self.store.checkpoint_body(self.tenant_id, kind, id).await {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(tenant = self.tenant_id, error = %e, "sync checkpoint unreadable");
                return None;
            }
        };
        let v = serde_json::from_str(&body).ok()?;
        count.fetch_add(1, Ordering::Relaxed);
        Some(v)
    }

    pub fn save_dept(&self, dept: i64, members: &[Member]) {
        self.save(DEPT, dept, members);
    }

    pub fn save_tag(&self, tag: i64, t: &Tag) {
        self.save(TAG, tag, t);
    }

    fn save<T: serde::Serialize + ?Sized>(&self, kind: &'static str, id: i64, value: &T) {
        let (Some(tx), Ok(body)) = (&self.tx, serde_json::to_string(value)) else {
            return;
        };
        // Never slows the fetch: when the writer is behind, the item is not saved (a
        // resumed run reads it again).
        let saved = tx.try_send(CheckpointItem {
            kind,
            item_id: id,
            run_id: self.run_id,
            read_at: self.clock.now_ms(),
            body,
        });
        if saved.is_err() {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reads not saved because the writer was behind.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// What this run took from the checkpoint, for its report (`None`: nothing).
    pub fn resumed(&self) -> Option<Resumed> {
        let departments = self.reused_depts.load(Ordering::Relaxed);
        let tags = self.reused_tags.load(Ordering::Relaxed);
        (departments + tags > 0).then(|| Resumed {
            from_runs: self.from_runs.iter().copied().collect(),
            departments,
            tags,
        })
    }
}
