//! Applying a directory diff: one transaction, batched statements.

use super::ahead::BeginApply;
use super::bulk::{BulkWrite, TagLinks};
use super::*;
use crate::domain::directory::{DirectoryDiff, Membership, NewUser, UserUpdate};
use crate::domain::now_ms;
use crate::domain::user::{DisabledReason, UserStatus};
use crate::store::audit::insert_audit;
use crate::store::sync_runs::finish_query;
use crate::store::{on_pool, Result, Store, StoreError, SyncRunFinish};
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};

/// `DELETE FROM $table WHERE tenant_id = … AND $col IN ($ids)`, a chunk of `$max` ids
/// a statement: a macro, as it runs on whichever engine's transaction `on_pool!` gave.
macro_rules! delete_in {
    ($tx:ident, $pg:expr, $max:expr, $tenant:expr, $table:expr, $col:expr, $ids:expr) => {
        for chunk in $ids.chunks($max) {
            let sql = format!(
                "DELETE FROM {} WHERE tenant_id = $1 AND {} IN ({})",
                $table,
                $col,
                in_list(2, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(eng($pg, sql))).bind($tenant);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *$tx).await?;
        }
    };
}

impl Store {
    /// Applies a diff in one transaction. `run_id`'s record is touched first, which also
    /// takes SQLite's write lock before the new user ids are reserved. What else it does
    /// is in `with` ([`ApplyWith`]).
    pub async fn apply_directory_diff(
        &self,
        tenant_id: i64,
        corpid: &str,
        run_id: i64,
        diff: &DirectoryDiff,
        with: ApplyWith<'_>,
    ) -> Result<()> {
        let ApplyWith { retire, end, open } = with;
        let now = now_ms();
        let corpid = corpid.to_ascii_lowercase();
        let pg = matches!(self, Store::Postgres(_));
        let max_binds = if pg { PG_MAX_BINDS } else { MAX_BINDS };
        // Opened for another tenant or corp: not this apply's (rolled back unused).
        let open = open.filter(|o| o.is_for(tenant_id, &corpid));
        on_pool!(self, |p| {
            let (mut tx, mut ahead) = p.begin_apply(open).await?;
            sqlx::query("UPDATE sync_runs SET phase = 'applying', heartbeat_at = $1 WHERE id = $2")
                .bind(now)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;

            // Departments: upserts, removals by id.
            tx.upsert_departments(tenant_id, now, &diff.departments_upsert)
                .await?;
            for chunk in diff.departments_removed.chunks(max_binds) {
                let sql = format!(
                    "UPDATE departments SET active = FALSE, updated_at = $2 WHERE tenant_id = $1 AND id IN ({})",
                    in_list(3, chunk.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)))
                    .bind(tenant_id)
                    .bind(now);
                for d in chunk {
                    q = q.bind(d.id);
                }
                q.execute(&mut *tx).await?;
            }

            // New users: those written ahead (during the fetch) keep their rows; the rest
            // get ids reserved now, then users, identities and memberships in batches.
            let mut ids: HashMap<&str, i64> = HashMap::new();
            let mut member_rows: Vec<(i64, &Membership)> = Vec::new();
            let mut added: Vec<&NewUser> = Vec::with_capacity(diff.users_added.len());
            for u in &diff.users_added {
                match ahead.take(u) {
                    Some(id) => {
                        ids.insert(u.key.as_str(), id);
                    }
                    None => added.push(u),
                }
            }
            // Written ahead for members the diff does not add as they were (none unless
            // the store changed during the fetch): removed, so only the diff commits.
            let untaken = ahead.untaken();
            for (table, col) in [
                ("user_departments", "user_id"),
                ("user_identities", "user_id"),
                ("users", "id"),
            ] {
                delete_in!(tx, pg, max_binds, tenant_id, table, col, untaken);
            }
            if !added.is_empty() {
                let n = added.len();
                let reserved = tx.reserve_user_ids(n).await?;
                // In key order, so ids rise with the identities' primary key: every index
                // of the new rows grows at its end instead of at random pages.
                added.sort_unstable_by(|a, b| a.key.cmp(&b.key));
                let pairs: Vec<_> = added.into_iter().zip(reserved.iter().copied()).collect();
                for (u, id) in &pairs {
                    ids.insert(u.key.as_str(), *id);
                    member_rows.extend(u.record.departments.iter().map(|m| (*id, m)));
                }
                tx.insert_users(tenant_id, &corpid, now, &pairs).await?;
            }

            // Memberships of new users not written ahead (above), and of updated users
            // whose memberships changed.
            let moved: Vec<i64> = diff
                .users_updated
                .iter()
                .filter(|u| u.departments_changed)
                .map(|u| u.user_id)
                .collect();
            delete_in!(
                tx,
                pg,
                max_binds,
                tenant_id,
                "user_departments",
                "user_id",
                moved
            );
            for u in diff.users_updated.iter().filter(|u| u.departments_changed) {
                member_rows.extend(u.record.departments.iter().map(|m| (u.user_id, m)));
            }
            // In primary-key order: the inserts append to the index instead of scattering.
            member_rows.sort_unstable_by_key(|(id, m)| (*id, m.department_id));
            tx.insert_memberships(tenant_id, &member_rows).await?;

            // Updated users: their rows, then status and identity changes one by one (few).
            let changed: Vec<&UserUpdate> = diff
                .users_updated
                .iter()
                .filter(|u| u.row_changed())
                .collect();
            tx.update_user_rows(tenant_id, now, &changed).await?;
            for u in &diff.users_updated {
                if let Some((status, reason)) = u.status {
                    sqlx::query("UPDATE users SET status = $1, disabled_reason = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5")
                        .bind(status.as_str())
                        .bind(reason.map(|r| r.as_str()))
                        .bind(now)
                        .bind(tenant_id)
                        .bind(u.user_id)
                        .execute(&mut *tx)
                        .await?;
                    if status == UserStatus::Disabled {
                        sqlx::query(
                            "DELETE FROM user_sessions WHERE tenant_id = $1 AND user_id = $2",
                        )
                        .bind(tenant_id)
                        .bind(u.user_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                if u.link_identity {
                    sqlx::query(
                        "INSERT INTO user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, created_at)
                         VALUES ($1, 'wecom', $2, $3, $4, $5, $6)",
                    )
                    .bind(tenant_id)
                    .bind(&corpid)
                    .bind(&u.key)
                    .bind(u.user_id)
                    .bind(&u.record.userid)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::unique(e, format!("WeCom userid {}", u.record.userid)))?;
                } else if u.display_changed {
                    // A userid change (or a new spelling): same internal user, new key.
                    sqlx::query(
                        "UPDATE user_identities SET external_id = $1, display_id = $2
                         WHERE tenant_id = $3 AND kind = 'wecom' AND corpid = $4 AND user_id = $5",
                    )
                    .bind(&u.key)
                    .bind(&u.record.userid)
                    .bind(tenant_id)
                    .bind(&corpid)
                    .bind(u.user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        StoreError::unique(e, format!("WeCom userid {}", u.record.userid))
                    })?;
                }
            }

            // Disabled users, grouped by reason; their sessions end in this transaction.
            for reason in [
                DisabledReason::LeftScope,
                DisabledReason::LeftWecom,
                DisabledReason::WecomDisabled,
                DisabledReason::Admin,
            ] {
                let group: Vec<_> = diff
                    .users_disabled
                    .iter()
                    .filter(|d| d.reason == reason)
                    .collect();
                for chunk in group.chunks(max_binds) {
                    let list = in_list(4, chunk.len());
                    let sql = format!(
                        "UPDATE users SET status = 'disabled', disabled_reason = $2, updated_at = $3
                         WHERE tenant_id = $1 AND id IN ({list})"
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)))
                        .bind(tenant_id)
                        .bind(reason.as_str())
                        .bind(now);
                    for d in chunk {
                        q = q.bind(d.user_id);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            let ended: Vec<i64> = diff.users_disabled.iter().map(|d| d.user_id).collect();
            let cleared: Vec<i64> = diff
                .users_disabled
                .iter()
                .filter(|d| d.clear_memberships)
                .map(|d| d.user_id)
                .collect();
            for (table, set) in [
                ("user_sessions", &ended),
                ("user_departments", &cleared),
                ("tag_users", &cleared),
            ] {
                delete_in!(tx, pg, max_binds, tenant_id, table, "user_id", set);
            }

            // Tags: upsert; write the member links that changed (all of a new or
            // reactivated tag's); deactivate removed ones.
            if !diff.tags_upsert.is_empty() || !diff.tags_removed.is_empty() {
                // Member keys → internal ids: new users above, the rest from the store.
                // The switch links users to WeCom userids in this run: their stored links
                // had no key to compare, so its tags are written whole.
                let whole = retire.is_some();
                let mut want: BTreeSet<&str> = BTreeSet::new();
                for t in diff.tags_upsert.iter().filter(|t| t.members_changed) {
                    let keys: Box<dyn Iterator<Item = &String>> = match tag_delta(t, whole) {
                        Some((added, removed)) => Box::new(added.iter().chain(removed)),
                        None => Box::new(t.record.users.iter()),
                    };
                    want.extend(keys.map(String::as_str).filter(|k| !ids.contains_key(k)));
                }
                let want: Vec<&str> = want.into_iter().collect();
                let mut stored: HashMap<String, i64> = HashMap::with_capacity(want.len());
                for chunk in want.chunks(max_binds) {
                    let sql = format!(
                        "SELECT external_id, user_id FROM user_identities
                         WHERE tenant_id = $1 AND kind = 'wecom' AND corpid = $2 AND external_id IN ({})",
                        in_list(3, chunk.len())
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)))
                        .bind(tenant_id)
                        .bind(&corpid);
                    for k in chunk {
                        q = q.bind(*k);
                    }
                    for r in q.fetch_all(&mut *tx).await? {
                        stored.insert(r.try_get("external_id")?, r.try_get("user_id")?);
                    }
                }
                for chunk in diff.tags_upsert.chunks(max_binds / 4) {
                    let sql = format!(
                        "INSERT INTO tags (tenant_id, id, name, active) VALUES {}
                         ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, active = excluded.active",
                        values(chunk.len(), 4, 1)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                    for t in chunk {
                        q = q
                            .bind(tenant_id)
                            .bind(t.record.id)
                            .bind(&t.record.name)
                            .bind(true);
                    }
                    q.execute(&mut *tx).await?;
                }
                let rewritten: Vec<i64> = diff
                    .tags_upsert
                    .iter()
                    .filter(|t| t.members_changed)
                    .map(|t| t.record.id)
                    .chain(diff.tags_removed.iter().map(|t| t.0))
                    .collect();
                // Every user link of removed tags and of tags written whole.
                let users_rewritten: Vec<i64> = diff
                    .tags_upsert
                    .iter()
                    .filter(|t| t.members_changed && tag_delta(t, whole).is_none())
                    .map(|t| t.record.id)
                    .chain(diff.tags_removed.iter().map(|t| t.0))
                    .collect();
                for (table, tags) in [
                    ("tag_users", &users_rewritten),
                    ("tag_departments", &rewritten),
                ] {
                    delete_in!(tx, pg, max_binds, tenant_id, table, "tag_id", tags);
                }
                let mut tu: Vec<(i64, i64)> = Vec::new();
                let mut unlink: Vec<(i64, i64)> = Vec::new();
                let mut td: Vec<(i64, i64)> = Vec::new();
                let id_of = |k: &String| ids.get(k.as_str()).or_else(|| stored.get(k)).copied();
                for t in diff.tags_upsert.iter().filter(|t| t.members_changed) {
                    let tag = t.record.id;
                    match tag_delta(t, whole) {
                        Some((added, removed)) => {
                            tu.extend(added.iter().filter_map(id_of).map(|id| (tag, id)));
                            unlink.extend(removed.iter().filter_map(id_of).map(|id| (tag, id)));
                        }
                        None => {
                            tu.extend(t.record.users.iter().filter_map(id_of).map(|id| (tag, id)))
                        }
                    }
                    td.extend(t.record.departments.iter().map(|d| (tag, *d)));
                }
                tx.delete_tag_users(tenant_id, &unlink).await?;
                tx.insert_tag_links(tenant_id, TagLinks::Users, &tu).await?;
                tx.insert_tag_links(tenant_id, TagLinks::Departments, &td)
                    .await?;
                for chunk in diff.tags_removed.chunks(max_binds) {
                    let sql = format!(
                        "UPDATE tags SET active = FALSE WHERE tenant_id = $1 AND id IN ({})",
                        in_list(2, chunk.len())
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql))).bind(tenant_id);
                    for t in chunk {
                        q = q.bind(t.0);
                    }
                    q.execute(&mut *tx).await?;
                }
            }

            // The switch: third-party identities leave user_identities (no more sign-in
            // through them) and are kept in retired_identities for the record.
            if let Some(ret) = retire {
                let rows = sqlx::query(
                    "SELECT corpid, external_id, user_id, display_id, source_agentid FROM user_identities
                     WHERE tenant_id = $1 AND kind = 'wecom_open'",
                )
                .bind(tenant_id)
                .fetch_all(&mut *tx)
                .await?;
                for r in &rows {
                    let ext: String = r.try_get("external_id")?;
                    sqlx::query(
                        "INSERT INTO retired_identities (tenant_id, kind, corpid, external_id, user_id, display_id,
                            source_agentid, relinked_userid, retired_at, run_id)
                         VALUES ($1, 'wecom_open', $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (tenant_id, kind, corpid, external_id) DO UPDATE SET
                            relinked_userid = excluded.relinked_userid, retired_at = excluded.retired_at, run_id = excluded.run_id",
                    )
                    .bind(tenant_id)
                    .bind(r.try_get::<String, _>("corpid")?)
                    .bind(&ext)
                    .bind(r.try_get::<i64, _>("user_id")?)
                    .bind(r.try_get::<String, _>("display_id")?)
                    .bind(r.try_get::<Option<i64>, _>("source_agentid")?)
                    .bind(ret.relinked.get(&ext))
                    .bind(now)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "DELETE FROM user_identities WHERE tenant_id = $1 AND kind = 'wecom_open'",
                )
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
            }

            // The run's end, in the same transaction as its changes.
            if let Some(end) = end {
                if let Some((agentid, agent)) = end.agent_json {
                    sqlx::query("UPDATE wecom_integrations SET agent_json = $1, verified_at = $2 WHERE tenant_id = $3 AND agentid = $4")
                        .bind(agent)
                        .bind(now)
                        .bind(tenant_id)
                        .bind(agentid)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(mode) = end.integration_mode {
                    sqlx::query("UPDATE tenants SET integration_mode = $1 WHERE id = $2")
                        .bind(mode.as_str())
                        .bind(tenant_id)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(a) = end.audit {
                    insert_audit!(&mut *tx, &a, now);
                }
                let ended = finish_query!(end.finish, now, run_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if ended != 1 {
                    // No record to end: apply nothing rather than changes no run accounts for.
                    return Err(StoreError::NotFound(format!("sync run {run_id}")));
                }
                // What the run read is now the directory: a later run reads afresh.
                if end.finish.status == crate::domain::directory::RunStatus::Succeeded {
                    sqlx::query("DELETE FROM sync_checkpoints WHERE tenant_id = $1")
                        .bind(tenant_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// The member links to write and remove for a tag, unless it is written `whole`.
fn tag_delta(
    t: &crate::domain::directory::TagUpsert,
    whole: bool,
) -> Option<&(Vec<String>, Vec<String>)> {
    t.users_delta.as_ref().filter(|_| !whole)
}
