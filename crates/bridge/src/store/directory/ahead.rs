//! New members' rows written ahead of the apply, in the apply's own transaction, while
//! the fetch waits on WeCom's rate limit (PostgreSQL; issue 20).
//!
//! An initial sync of 1,000,000 members spends about four minutes of its fetch waiting
//! on WeCom's limit, and then, on PostgreSQL, most of its apply writing users, their
//! identities and memberships (each row's foreign-key checks and index entries). With the transaction
//! opened when the fetch starts, each new member's rows are written as it is read. They
//! are seen by nobody until the apply commits them with the rest of the diff, as before;
//! a run that fails, is blocked, cancelled or killed rolls them back with it. The apply
//! keeps a row only when its own new user matches it ([`NewUser::row_print`]), and
//! removes the others, so what commits is what the diff says.
//!
//! Not on SQLite: it has one writer, and a transaction held for minutes would hold up
//! every other write (sign-ins, the console).

use super::bulk::BulkWrite;
use super::Result;
use crate::domain::directory::{key_print, Membership, NewUser};
use crate::domain::now_ms;
use crate::store::Store;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// A row written ahead: its member's key print, row print and user id.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ahead {
    pub key: u64,
    pub row: u64,
    pub id: i64,
}

/// An apply's transaction opened before the diff, holding new members' rows.
pub struct OpenApply {
    tx: Transaction<'static, Postgres>,
    tenant_id: i64,
    /// Lower-cased, as identities store it.
    corpid: String,
    /// When the rows were first written: their `created_at`.
    now: i64,
    written: Vec<Ahead>,
}

impl Store {
    /// Opens an apply's transaction for rows written ahead; `None` on SQLite.
    pub async fn open_apply(&self, tenant_id: i64, corpid: &str) -> Result<Option<OpenApply>> {
        let Store::Postgres(p) = self else {
            return Ok(None);
        };
        let mut tx = p.begin().await?;
        // It waits idle through the fetch's rate-limit waits: a server's idle-in-transaction
        // timeout would end it between the fetch and the apply, and fail the run.
        sqlx::query("SET LOCAL idle_in_transaction_session_timeout = 0")
            .execute(&mut *tx)
            .await?;
        Ok(Some(OpenApply {
            tx,
            tenant_id,
            corpid: corpid.to_ascii_lowercase(),
            now: now_ms(),
            written: Vec::new(),
        }))
    }
}

impl std::fmt::Debug for OpenApply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApply")
            .field("tenant_id", &self.tenant_id)
            .field("written", &self.written.len())
            .finish_non_exhaustive()
    }
}

impl OpenApply {
    /// Writes new members' `users` rows, WeCom identities and memberships. A failure leaves the
    /// transaction unusable: drop this, and the apply writes everyone itself.
    pub async fn write_new_users(&mut self, users: &[NewUser]) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        let ids = self.tx.reserve_user_ids(users.len()).await?;
        // In key order: the identities' primary key grows at fewer places.
        let mut sorted: Vec<&NewUser> = users.iter().collect();
        sorted.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let pairs: Vec<(&NewUser, i64)> = sorted.into_iter().zip(ids).collect();
        self.tx
            .insert_users(self.tenant_id, &self.corpid, self.now, &pairs)
            .await?;
        let members: Vec<(i64, &Membership)> = pairs
            .iter()
            .flat_map(|(u, id)| u.record.departments.iter().map(move |m| (*id, m)))
            .collect();
        self.tx.insert_memberships(self.tenant_id, &members).await?;
        self.written.extend(pairs.iter().map(|(u, id)| Ahead {
            key: key_print(&u.key),
            row: u.row_print(),
            id: *id,
        }));
        Ok(())
    }

    /// Rows written so far.
    pub fn written(&self) -> usize {
        self.written.len()
    }

    /// Whether this apply is for `tenant_id` and `corpid`.
    pub(super) fn is_for(&self, tenant_id: i64, corpid: &str) -> bool {
        self.tenant_id == tenant_id && self.corpid == corpid
    }
}

/// The rows written ahead, by key print, to be matched against the diff's new users.
pub(super) struct AheadRows(Vec<Ahead>);

impl AheadRows {
    /// The id of the row written ahead for `u`, if one matches it whole; each is taken
    /// once.
    pub fn take(&mut self, u: &NewUser) -> Option<i64> {
        let key = key_print(&u.key);
        let row = u.row_print();
        let from = self.0.partition_point(|a| a.key < key);
        self.0[from..]
            .iter_mut()
            .take_while(|a| a.key == key)
            .find(|a| a.row == row && a.id != 0)
            .map(|a| std::mem::replace(&mut a.id, 0))
    }

    /// Ids of rows no new user of the diff took: to be removed before the commit.
    pub fn untaken(&self) -> Vec<i64> {
        self.0.iter().filter(|a| a.id != 0).map(|a| a.id).collect()
    }
}

/// How each engine's pool begins an apply: in a transaction opened ahead, if any.
pub(super) trait BeginApply {
    type Db: sqlx::Database;
    async fn begin_apply(
        &self,
        open: Option<OpenApply>,
    ) -> Result<(Transaction<'static, Self::Db>, AheadRows)>;
}

impl BeginApply for SqlitePool {
    type Db = Sqlite;
    async fn begin_apply(
        &self,
        open: Option<OpenApply>,
    ) -> Result<(Transaction<'static, Sqlite>, AheadRows)> {
        // Never opened on SQLite ([`Store::open_apply`]); one given is dropped unused.
        drop(open);
        Ok((self.begin().await?, AheadRows(Vec::new())))
    }
}

impl BeginApply for PgPool {
    type Db = Postgres;
    async fn begin_apply(
        &self,
        open: Option<OpenApply>,
    ) -> Result<(Transaction<'static, Postgres>, AheadRows)> {
        Ok(match open {
            Some(mut o) => {
                o.written.sort_unstable_by_key(|a| a.key);
                (o.tx, AheadRows(o.written))
            }
            None => (self.begin().await?, AheadRows(Vec::new())),
        })
    }
}
