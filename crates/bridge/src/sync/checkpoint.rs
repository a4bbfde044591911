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
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
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
    /// Saved items by id: the run that read each.
    depts: HashMap<i64, i64>,
    tags: HashMap<i64, i64>,
    /// Runs whose reads this run used.
    from_runs: Mutex<BTreeSet<i64>>,
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
        Self::open_queue(store, clock, tenant_id, run_id, QUEUE).await
    }

    async fn open_queue(
        store: &Store,
        clock: &AppClock,
        tenant_id: i64,
        run_id: i64,
        queue: usize,
    ) -> Result<(Checkpoint, Writer), crate::store::StoreError> {
        let index = store
            .checkpoint_index(tenant_id, clock.now_ms() - MAX_AGE_MS)
            .await?;
        let mut depts = HashMap::new();
        let mut tags = HashMap::new();
        for (kind, id, run) in index {
            match kind.as_str() {
                DEPT => depts.insert(id, run),
                TAG => tags.insert(id, run),
                _ => continue,
            };
        }
        let (tx, mut rx) = mpsc::channel::<CheckpointItem>(queue);
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
                from_runs: Mutex::default(),
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
        have: &HashMap<i64, i64>,
        count: &AtomicU64,
    ) -> Option<T> {
        let run = *have.get(&id)?;
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
        self.from_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run);
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
            from_runs: self
                .from_runs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .copied()
                .collect(),
            departments,
            tags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::directory::{RunKind, Trigger};
    use crate::domain::tenant::Edition;

    async fn run(store: &Store, tenant_id: i64) -> i64 {
        store
            .create_sync_run(&crate::store::NewSyncRun {
                tenant_id,
                trigger: Trigger::Cli,
                kind: RunKind::Full,
                actor: "t".into(),
                forced: false,
            })
            .await
            .unwrap()
    }

    /// A writer behind the fetch never slows it: what it cannot queue is not saved, and
    /// a resumed run reads that from WeCom again.
    #[tokio::test]
    async fn a_read_the_writer_cannot_take_is_skipped_and_read_again_later() {
        let store = Store::connect(&crate::testing::sqlite_url()).await.unwrap();
        store.migrate().await.unwrap();
        let tenant = store
            .create_tenant("acme", "Acme", Edition::Professional, None)
            .await
            .unwrap();
        let clock = AppClock::default();
        let first = run(&store, tenant.id).await;
        let (mut ck, writer) = Checkpoint::open_queue(&store, &clock, tenant.id, first, 1)
            .await
            .unwrap();
        // No await in between: the writer has not run, its queue of one is full.
        ck.save_dept(2, &[]);
        ck.save_dept(3, &[]);
        assert_eq!(ck.skipped(), 1);
        ck.close();
        drop(ck);
        writer.finish().await;

        let second = run(&store, tenant.id).await;
        let (ck, writer) = Checkpoint::open(&store, &clock, tenant.id, second)
            .await
            .unwrap();
        assert_eq!(ck.dept_members(2).await.map(|m| m.len()), Some(0));
        assert!(ck.dept_members(3).await.is_none(), "not saved: read again");
        let r = ck.resumed().unwrap();
        assert_eq!((r.from_runs, r.departments), (vec![first], 1));
        drop(ck);
        writer.finish().await;
    }
}
