//! New members' rows written during the fetch, in the apply's transaction opened ahead
//! ([`crate::store::OpenApply`]; PostgreSQL only). The fetch offers each member the store
//! did not hold when it began; a background writer takes them in batches. Offering never
//! holds up the fetch: WeCom's answers come in bursts (each minute's 10,000 calls as fast
//! as they go, then a wait), so what the queue cannot take during a burst is offered
//! again while the fetch waits ([`WriteAhead::room`]), and whatever is still left is
//! written by the apply, which writes every new member not written ahead: this only
//! moves work, never decides it.

use crate::domain::directory::{new_user, DiffOptions, NewUser, UserKey, UserRecord};
use crate::store::{OpenApply, Store};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Members written per COPY pair (users, identities).
const BATCH: usize = 2_000;
/// Members waiting for the writer (≈ 4 MB at ≈ 500 B each): a burst beyond it waits
/// as keys, its records being in the fetch's answer already.
const QUEUE: usize = 4 * BATCH;

/// The fetch's side: offers new members to the writer.
pub struct WriteAhead {
    tx: Option<mpsc::Sender<NewUser>>,
    task: tokio::task::JoinHandle<Option<OpenApply>>,
    /// Set when dropped unfinished: the writer stops after its batch in progress.
    stop: Arc<AtomicBool>,
    opts: DiffOptions,
    offered: AtomicU64,
}

/// A place in the writer's queue ([`WriteAhead::room`]).
pub struct Room(mpsc::OwnedPermit<NewUser>);

impl WriteAhead {
    /// Opens the apply's transaction and starts the writer; `None` where rows are not
    /// written ahead (SQLite) or the transaction cannot be opened (the apply then opens
    /// its own, as without this).
    pub async fn start(
        store: &Store,
        tenant_id: i64,
        corpid: &str,
        opts: DiffOptions,
    ) -> Option<WriteAhead> {
        let open = match store.open_apply(tenant_id, corpid).await {
            Ok(o) => o?,
            Err(e) => {
                tracing::warn!(tenant = tenant_id, error = %e, "apply not opened ahead");
                return None;
            }
        };
        Some(Self::with_queue(open, opts, QUEUE))
    }

    pub(super) fn with_queue(open: OpenApply, opts: DiffOptions, queue: usize) -> WriteAhead {
        let (tx, mut rx) = mpsc::channel::<NewUser>(queue);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut open = Some(open);
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                if stopped.load(Ordering::Relaxed) {
                    return None;
                }
                if let Some(o) = open.as_mut() {
                    if let Err(e) = o.write_new_users(&batch).await {
                        // The transaction is unusable: roll it back; the apply opens
                        // another and writes every new member itself.
                        tracing::warn!(error = %e, "rows written ahead rolled back");
                        open = None;
                    }
                }
                batch.clear();
            }
            open
        });
        WriteAhead {
            tx: Some(tx),
            task,
            stop,
            opts,
            offered: AtomicU64::new(0),
        }
    }

    /// Offers a member new to the store; never waits. `false`: the writer's queue is full
    /// (offer it again later through [`Self::room`], or leave it to the apply).
    pub fn try_offer(&self, key: &UserKey, record: &UserRecord) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        match tx.try_reserve() {
            Ok(permit) => {
                permit.send(new_user(key.clone(), record.clone(), self.opts));
                self.offered.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Room for one member in the writer's queue, once there is some.
    pub fn room(&self) -> impl std::future::Future<Output = Option<Room>> + 'static {
        let tx = self.tx.clone();
        async move { tx?.reserve_owned().await.ok().map(Room) }
    }

    /// Offers a member into room waited for.
    pub fn offer_into(&self, room: Room, key: &UserKey, record: &UserRecord) {
        room.0
            .send(new_user(key.clone(), record.clone(), self.opts));
        self.offered.fetch_add(1, Ordering::Relaxed);
    }

    /// Members taken into the writer's queue.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::Relaxed)
    }

    /// Waits for the writer to write what it was given; the open apply, unless it
    /// failed (rolled back).
    pub async fn finish(mut self) -> Option<OpenApply> {
        self.tx = None;
        (&mut self.task).await.ok().flatten()
    }
}

/// A run that ends without applying drops this: the writer stops after the batch it is
/// writing, and its transaction rolls back. Not aborted: a connection dropped in the
/// middle of a statement (a COPY) could go back to the pool with the server's answers
/// still unread, and fail whoever took it next.
impl Drop for WriteAhead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tx = None;
    }
}
