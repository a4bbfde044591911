//! change_contact callbacks applied as small diffs. The callback only says *what*
//! changed; each handler re-reads the object from WeCom (user/get, department/get,
//! tag/get) and applies its current state, so repeated and reordered events do no harm.
//! An event that cannot be applied asks for a full reconcile.

use super::{counted_client, fetch, lock, SyncError};
use crate::app::AppState;
use crate::domain::directory::{
    diff_department, diff_tag, diff_user, disable, new_user, user_key, DeptRemoval, DeptUpsert,
    DiffCounts, DiffOptions, DirectoryDiff, RunKind, RunReport, RunStatus, TagRecord, Trigger,
    UserKey,
};
use crate::domain::user::DisabledReason;
use crate::store::{NewSyncRun, SyncRunFinish};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use wecom::event::{ContactChange, EventKind, PartyChange, TagChange};

/// Stored members re-checked one by one when a department leaves the scope; beyond this a
/// full reconcile is cheaper.
const RECHECK_LIMIT: usize = 200;

/// Callbacks handled per run record.
const BATCH: i64 = 500;

struct Ctx<'a> {
    st: &'a AppState,
    tenant_id: i64,
    corpid: String,
    client: wecom::Client,
    opts: DiffOptions,
    run_id: i64,
    /// Tags in the app's scope (from the last agent/get): their changes move the scope.
    scoped_tags: HashSet<i64>,
    counts: DiffCounts,
    reconcile: bool,
}

/// Applies the tenant's pending callbacks in arrival order, under the tenant's sync lock
/// (waiting for a running sync to finish). Returns how many were handled, and whether a
/// full reconcile is needed.
pub async fn process_pending(st: &AppState, tenant_id: i64) -> Result<(usize, bool), SyncError> {
    let guard = lock::acquire(&st.store, tenant_id, true)
        .await?
        .ok_or(SyncError::Busy)?;
    let r = process_locked(st, tenant_id).await;
    guard.release().await;
    r
}

async fn process_locked(st: &AppState, tenant_id: i64) -> Result<(usize, bool), SyncError> {
    let mut handled = 0;
    let mut reconcile = false;
    loop {
        let pending = st.store.pending_callbacks(tenant_id, BATCH).await?;
        if pending.is_empty() {
            return Ok((handled, reconcile));
        }
        let Some(rec) = st.store.main_integration(tenant_id).await? else {
            for p in &pending {
                st.store
                    .mark_callback(p.id, "failed", Some("no WeCom integration"))
                    .await?;
            }
            return Ok((handled + pending.len(), false));
        };
        let opened = st.open_integration(&rec)?;
        let stats = Arc::new(wecom::CallStats::new());
        let run_id = st
            .store
            .create_sync_run(&NewSyncRun {
                tenant_id,
                trigger: Trigger::Callback,
                kind: RunKind::Incremental,
                actor: "wecom".into(),
                forced: false,
            })
            .await?;
        // This pass holds the tenant's lock: another run still `running` was cut short.
        st.store.interrupt_stale_runs(tenant_id, run_id).await?;
        let scoped_tags = rec
            .agent_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<wecom::types::Agent>(j).ok())
            .map(|a| a.allow_tags.tagid.iter().map(|t| i64::from(*t)).collect())
            .unwrap_or_default();
        let mut ctx = Ctx {
            st,
            tenant_id,
            corpid: opened.corpid.clone(),
            client: counted_client(st, &opened.corpid, &opened.secret, stats.clone())?,
            opts: DiffOptions {
                new_user_status: st.store.directory_policy(tenant_id).await?.new_user_status,
            },
            run_id,
            scoped_tags,
            counts: DiffCounts::default(),
            reconcile: false,
        };
        let mut report = RunReport::default();
        let total = pending.len() as i64;
        for (done, p) in (1..).zip(&pending) {
            let r = match wecom::event::parse_event(&p.payload) {
                Ok(ev) => match ev.kind {
                    EventKind::ChangeContact(c) => apply_change(&mut ctx, &c).await,
                    EventKind::Other { .. } => Ok(()),
                },
                Err(e) => {
                    ctx.reconcile = true;
                    Err(SyncError::Store(crate::store::StoreError::Corrupt(
                        e.to_string(),
                    )))
                }
            };
            let (status, error) = match r {
                Ok(()) => ("applied", None),
                Err(e) => {
                    // Whatever could not be applied is caught by a full reconcile.
                    ctx.reconcile = true;
                    let (en, zh) = e.explain();
                    tracing::warn!(tenant = tenant_id, change = %p.change_type, error = %en, "callback not applied");
                    report.error(
                        format!("{}: {en}", p.change_type),
                        format!("{}：{zh}", p.change_type),
                    );
                    ("failed", Some(en))
                }
            };
            st.store
                .mark_callback_in_run(
                    p.id,
                    status,
                    error.as_deref(),
                    run_id,
                    done,
                    total,
                    &ctx.counts,
                )
                .await?;
            crate::ops::metrics::callback_handled(status, crate::domain::now_ms() - p.received_at);
            handled += 1;
        }
        reconcile |= ctx.reconcile;
        report.api_calls = super::calls_by_endpoint(&stats);
        report.diff.counts = ctx.counts;
        if ctx.reconcile {
            report.warn(
                "a full reconcile was requested".into(),
                "已请求一次完整核对".into(),
            );
        }
        let c = ctx.counts;
        st.store
            .finish_sync_run(
                run_id,
                &SyncRunFinish {
                    status: if report.errors.is_empty() {
                        RunStatus::Succeeded
                    } else {
                        RunStatus::Failed
                    },
                    users_added: c.users_added as i64,
                    users_updated: c.users_updated as i64,
                    users_disabled: c.users_disabled as i64,
                    users_moved: c.users_moved as i64,
                    api_calls: stats.total_calls() as i64,
                    api_calls_json: serde_json::to_string(&report.api_calls).unwrap_or_default(),
                    error: report.errors.first().cloned(),
                    report_json: serde_json::to_string(&report).ok(),
                },
            )
            .await?;
    }
}

fn add_counts(a: &mut DiffCounts, b: DiffCounts) {
    a.departments_added += b.departments_added;
    a.departments_updated += b.departments_updated;
    a.departments_removed += b.departments_removed;
    a.users_added += b.users_added;
    a.users_updated += b.users_updated;
    a.users_moved += b.users_moved;
    a.users_disabled += b.users_disabled;
    a.users_reenabled += b.users_reenabled;
    a.tags_added += b.tags_added;
    a.tags_updated += b.tags_updated;
    a.tags_removed += b.tags_removed;
}

impl Ctx<'_> {
    async fn apply(&mut self, diff: DirectoryDiff) -> Result<(), SyncError> {
        if diff.is_empty() {
            return Ok(());
        }
        add_counts(&mut self.counts, diff.counts());
        super::apply(
            self.st,
            self.tenant_id,
            &self.corpid,
            self.run_id,
            &diff,
            None,
        )
        .await?;
        Ok(())
    }
}

async fn apply_change(ctx: &mut Ctx<'_>, c: &ContactChange) -> Result<(), SyncError> {
    match c {
        ContactChange::CreateUser(u) | ContactChange::UpdateUser(u) => {
            let new = u.new_user_id.as_deref().unwrap_or(&u.user_id);
            sync_user(ctx, &u.user_id, new).await
        }
        ContactChange::DeleteUser { user_id } => sync_user(ctx, user_id, user_id).await,
        ContactChange::CreateParty(p) => sync_party(ctx, p, false).await,
        ContactChange::UpdateParty(p) => sync_party(ctx, p, true).await,
        ContactChange::DeleteParty { id } => {
            let p = PartyChange {
                id: *id,
                ..Default::default()
            };
            sync_party(ctx, &p, false).await
        }
        ContactChange::UpdateTag(t) => sync_tag(ctx, t).await,
        ContactChange::Unknown { change_type } => {
            tracing::info!(change_type, "unknown change_contact type: reconciling");
            ctx.reconcile = true;
            Ok(())
        }
    }
}

/// Brings one member up to date: `old` is the userid the store may know, `new` the one
/// WeCom uses now (they differ after a userid change, which keeps the internal user).
async fn sync_user(ctx: &mut Ctx<'_>, old: &str, new: &str) -> Result<(), SyncError> {
    let keys: Vec<UserKey> = if user_key(old) == user_key(new) {
        vec![user_key(old)]
    } else {
        vec![user_key(old), user_key(new)]
    };
    let found = ctx
        .st
        .store
        .load_users(ctx.tenant_id, &ctx.corpid, Some(&keys))
        .await?;
    // Prefer the identity under the old userid: that is the person being renamed.
    let cur = found
        .iter()
        .find(|u| u.key.as_deref() == Some(keys[0].as_str()))
        .or_else(|| found.first());
    let mut diff = DirectoryDiff::default();
    match ctx.client.user_get(new).await {
        Ok(m) => {
            let want = fetch::user_record(&m);
            ensure_departments(
                ctx,
                &want
                    .departments
                    .iter()
                    .map(|d| d.department_id)
                    .collect::<Vec<_>>(),
            )
            .await?;
            match cur {
                Some(cur) => {
                    if let Some(u) = diff_user(cur, &want, ctx.opts) {
                        diff.users_updated.push(u);
                    }
                }
                None => {
                    let key = user_key(&want.userid);
                    if !left_to_matching(ctx, &key, &want).await? {
                        diff.users_added.push(new_user(key, want, ctx.opts));
                    }
                }
            }
        }
        Err(e) => {
            let reason = match e.errcode() {
                Some(60111) => DisabledReason::LeftWecom,
                Some(60011) => DisabledReason::LeftScope,
                _ => return Err(e.into()),
            };
            if let Some(d) = cur.and_then(|c| disable(c, reason)) {
                diff.users_disabled.push(d);
            }
        }
    }
    ctx.apply(diff).await
}

/// Departments a member belongs to that the store does not have active yet (created or
/// moved into the scope, the event not seen yet): read and store them.
async fn ensure_departments(ctx: &mut Ctx<'_>, ids: &[i64]) -> Result<(), SyncError> {
    let mut diff = DirectoryDiff::default();
    for id in ids {
        let known = ctx.st.store.load_department(ctx.tenant_id, *id).await?;
        if known.as_ref().is_some_and(|d| d.active) {
            continue;
        }
        let d = ctx.client.department_get(*id as u32).await?;
        let want = fetch::dept_record(&d);
        let up = match &known {
            Some(k) => diff_department(&k.record, k.active, &want),
            None => Some(DeptUpsert {
                record: want,
                added: true,
                changes: Vec::new(),
            }),
        };
        diff.departments_upsert.extend(up);
    }
    ctx.apply(diff).await
}

async fn sync_party(ctx: &mut Ctx<'_>, p: &PartyChange, moved: bool) -> Result<(), SyncError> {
    let id = i64::from(p.id);
    let known = ctx.st.store.load_department(ctx.tenant_id, id).await?;
    let was_active = known.as_ref().is_some_and(|d| d.active);
    match ctx.client.department_get(p.id).await {
        Ok(d) => {
            let want = fetch::dept_record(&d);
            let mut diff = DirectoryDiff::default();
            diff.departments_upsert.extend(match &known {
                Some(k) => diff_department(&k.record, k.active, &want),
                None => Some(DeptUpsert {
                    record: want,
                    added: true,
                    changes: Vec::new(),
                }),
            });
            ctx.apply(diff).await?;
            // Moved into the scope: its subtree and members are new to us.
            if moved && !was_active {
                import_subtree(ctx, p.id).await?;
            }
            Ok(())
        }
        Err(e) if matches!(e.errcode(), Some(60003 | 60011)) => {
            // Deleted (WeCom deletes only empty departments) or out of the scope.
            if let Some(k) = known.filter(|k| k.active) {
                let mut diff = DirectoryDiff::default();
                diff.departments_removed.push(DeptRemoval {
                    id,
                    name: k.record.name.clone(),
                });
                ctx.apply(diff).await?;
            }
            // A department out of the scope takes its subtree with it: re-read the scope.
            if e.errcode() == Some(60011) {
                ctx.reconcile = true;
                return Ok(());
            }
            // Deleted: whoever the store still has in it is re-read (moved meanwhile).
            let members = ctx
                .st
                .store
                .department_member_keys(ctx.tenant_id, &ctx.corpid, id)
                .await?;
            if members.len() > RECHECK_LIMIT {
                ctx.reconcile = true;
                return Ok(());
            }
            for k in members {
                sync_user(ctx, &k, &k).await?;
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A department new to the scope: its subtree and their direct members.
async fn import_subtree(ctx: &mut Ctx<'_>, id: u32) -> Result<(), SyncError> {
    let depts = ctx.client.department_list(Some(id)).await?;
    let mut diff = DirectoryDiff::default();
    for d in &depts {
        let want = fetch::dept_record(d);
        let known = ctx.st.store.load_department(ctx.tenant_id, want.id).await?;
        diff.departments_upsert.extend(match known {
            Some(k) => diff_department(&k.record, k.active, &want),
            None => Some(DeptUpsert {
                record: want,
                added: true,
                changes: Vec::new(),
            }),
        });
    }
    ctx.apply(diff).await?;
    let mut seen = BTreeSet::new();
    for d in &depts {
        for m in ctx.client.user_list(d.id).await? {
            if seen.insert(user_key(&m.userid)) {
                upsert_member(ctx, &m).await?;
            }
        }
    }
    Ok(())
}

async fn upsert_member(ctx: &mut Ctx<'_>, m: &wecom::types::Member) -> Result<(), SyncError> {
    let want = fetch::user_record(m);
    let key = user_key(&want.userid);
    let found = ctx
        .st
        .store
        .load_users(ctx.tenant_id, &ctx.corpid, Some(std::slice::from_ref(&key)))
        .await?;
    let mut diff = DirectoryDiff::default();
    match found.first() {
        Some(cur) => diff.users_updated.extend(diff_user(cur, &want, ctx.opts)),
        None => {
            if !left_to_matching(ctx, &key, &want).await? {
                diff.users_added.push(new_user(key, want, ctx.opts));
            }
        }
    }
    ctx.apply(diff).await
}

/// A member about to be created whom the tenant's match rule finds among the stored
/// people without a WeCom identity (or finds ambiguously): not created here, so no
/// duplicate; the full reconcile this asks for links them, or reports the ambiguity
/// (issue 20).
async fn left_to_matching(
    ctx: &mut Ctx<'_>,
    key: &UserKey,
    want: &crate::domain::directory::UserRecord,
) -> Result<bool, SyncError> {
    let users = ctx.st.store.unlinked_users(ctx.tenant_id).await?;
    if users.is_empty() {
        return Ok(false);
    }
    let keys = ctx.st.store.import_keys(ctx.tenant_id).await?;
    let rule = ctx.st.store.match_rule(ctx.tenant_id).await?;
    let mut current = crate::domain::directory::CurrentDirectory {
        users,
        ..Default::default()
    };
    let mut desired = crate::domain::directory::DesiredDirectory::default();
    desired.users.insert(key.clone(), Box::new(want.clone()));
    let out =
        crate::domain::directory::matching::match_existing(&desired, &mut current, &keys, &rule);
    let found = out.report.matched > 0 || !out.report.ambiguous.is_empty();
    ctx.reconcile |= found;
    Ok(found)
}

async fn sync_tag(ctx: &mut Ctx<'_>, t: &TagChange) -> Result<(), SyncError> {
    let id = i64::from(t.tag_id);
    let known = ctx
        .st
        .store
        .load_tags(ctx.tenant_id, &ctx.corpid, Some(id))
        .await?
        .remove(&id);
    let scoped = ctx.scoped_tags.contains(&id);
    match ctx.client.tag_get(t.tag_id).await {
        Ok(g) => {
            let want = TagRecord {
                id,
                name: if g.tagname.is_empty() {
                    known
                        .as_ref()
                        .map(|k| k.record.name.clone())
                        .unwrap_or_default()
                } else {
                    g.tagname.clone()
                },
                users: g.userlist.iter().map(|u| user_key(&u.userid)).collect(),
                departments: g.partylist.iter().map(|d| i64::from(*d)).collect(),
            };
            let old_users = known
                .as_ref()
                .map(|k| k.record.users.clone())
                .unwrap_or_default();
            let old_depts = known
                .as_ref()
                .map(|k| k.record.departments.clone())
                .unwrap_or_default();
            // Members new to the store came into the scope through this tag; members who
            // left a scoped tag may have left the scope. user/get tells either way.
            let named: Vec<UserKey> = want
                .users
                .iter()
                .cloned()
                .chain(t.add_user_items.iter().map(|u| user_key(u)))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut active: HashSet<UserKey> = HashSet::new();
            for chunk in named.chunks(10_000) {
                for u in ctx
                    .st
                    .store
                    .load_users(ctx.tenant_id, &ctx.corpid, Some(chunk))
                    .await?
                {
                    if u.status != crate::domain::user::UserStatus::Disabled {
                        active.extend(u.key);
                    }
                }
            }
            let mut recheck: BTreeSet<UserKey> =
                named.into_iter().filter(|k| !active.contains(k)).collect();
            if scoped {
                recheck.extend(old_users.difference(&want.users).cloned());
                recheck.extend(t.del_user_items.iter().map(|u| user_key(u)));
                for d in want.departments.difference(&old_depts) {
                    import_subtree(ctx, *d as u32).await?;
                }
                if !old_depts
                    .difference(&want.departments)
                    .collect::<Vec<_>>()
                    .is_empty()
                    || !t.del_party_items.is_empty()
                {
                    ctx.reconcile = true;
                }
            }
            for k in recheck {
                sync_user(ctx, &k, &k).await?;
            }
            let mut diff = DirectoryDiff::default();
            match &known {
                Some(k) => diff
                    .tags_upsert
                    .extend(diff_tag(&k.record, k.active, &want)),
                None => diff.tags_upsert.push(crate::domain::directory::TagUpsert {
                    record: want,
                    added: true,
                    changes: Vec::new(),
                    members_changed: true,
                    users_delta: None,
                }),
            }
            ctx.apply(diff).await
        }
        Err(e) if e.errcode() == Some(40068) => {
            if let Some(k) = known.filter(|k| k.active) {
                let mut diff = DirectoryDiff::default();
                diff.tags_removed.push((id, k.record.name.clone()));
                ctx.apply(diff).await?;
            }
            ctx.reconcile |= scoped;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// What became of a received callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored; it is applied in the background.
    Queued,
    /// The same decrypted XML was received before (a WeCom retry).
    Duplicate,
    /// Not a change_contact event.
    Ignored,
}

/// Stores a decrypted, signature-checked callback durably and wakes the worker. The
/// caller answers WeCom's 200 right after, before the change is applied.
pub async fn receive(st: &AppState, tenant_id: i64, xml: &str) -> Result<Received, SyncError> {
    use sha2::{Digest, Sha256};
    let change_type = match wecom::event::parse_event(xml) {
        Ok(ev) => match ev.kind {
            EventKind::ChangeContact(c) => change_type(&c).to_string(),
            EventKind::Other { .. } => return Ok(Received::Ignored),
        },
        // Kept: processing it fails and asks for a reconcile.
        Err(_) => "unparsable".to_string(),
    };
    let hash = hex::encode(Sha256::digest(xml.as_bytes()));
    if !st
        .store
        .enqueue_callback(tenant_id, &hash, &change_type, xml)
        .await?
    {
        return Ok(Received::Duplicate);
    }
    super::background::kick(st, tenant_id);
    Ok(Received::Queued)
}

fn change_type(c: &ContactChange) -> &str {
    match c {
        ContactChange::CreateUser(_) => "create_user",
        ContactChange::UpdateUser(_) => "update_user",
        ContactChange::DeleteUser { .. } => "delete_user",
        ContactChange::CreateParty(_) => "create_party",
        ContactChange::UpdateParty(_) => "update_party",
        ContactChange::DeleteParty { .. } => "delete_party",
        ContactChange::UpdateTag(_) => "update_tag",
        ContactChange::Unknown { change_type } => change_type,
    }
}
