//! An import of the people a previous integration knew (issue 20): what the rows' ids
//! and keys meet in the store, and the import applied in ONE transaction (all rows or
//! none). The tenant's match rule and the keys the matching reads.

use super::*;
use crate::domain::directory::import::{ExistingUser, ImportContext, ImportPlan, ImportRow};
use crate::domain::directory::matching::{MatchRule, StoredKeys};
use crate::domain::user::UserStatus;

/// Rows per `IN (…)` look-up.
const CHUNK: usize = 500;

impl Store {
    /// The tenant's (and other tenants') users with the rows' ids, and the tenant's
    /// identities with the rows' open_userids and userids. `has_integration` is left
    /// to the caller.
    pub async fn import_context(
        &self,
        tenant_id: i64,
        plan_rows: &[crate::domain::directory::import::ImportRow],
    ) -> Result<ImportContext> {
        let ids: Vec<i64> = plan_rows.iter().map(|r| r.id).collect();
        let opens: Vec<&str> = plan_rows
            .iter()
            .filter_map(|r| r.open_userid.as_deref())
            .collect();
        let userids: Vec<String> = plan_rows
            .iter()
            .filter_map(|r| r.userid.as_deref().map(|u| u.to_ascii_lowercase()))
            .collect();
        let mut ctx = ImportContext::default();
        on_pool!(self, |p| {
            let mut mine: Vec<i64> = Vec::new();
            for chunk in ids.chunks(CHUNK) {
                let sql = format!(
                    "SELECT id, tenant_id, name FROM users WHERE id IN ({})",
                    in_list(1, chunk.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(p).await? {
                    let id: i64 = r.try_get("id")?;
                    if r.try_get::<i64, _>("tenant_id")? == tenant_id {
                        mine.push(id);
                        ctx.users.insert(
                            id,
                            ExistingUser {
                                name: r.try_get("name")?,
                                linked_userid: None,
                            },
                        );
                    } else {
                        ctx.foreign_ids.insert(id);
                    }
                }
            }
            for chunk in mine.chunks(CHUNK) {
                let sql = format!(
                    "SELECT user_id, display_id FROM user_identities
                     WHERE tenant_id = $1 AND kind = 'wecom' AND user_id IN ({})",
                    in_list(2, chunk.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(p).await? {
                    let id: i64 = r.try_get("user_id")?;
                    if let Some(u) = ctx.users.get_mut(&id) {
                        u.linked_userid = Some(r.try_get("display_id")?);
                    }
                }
            }
            for chunk in opens.chunks(CHUNK) {
                let sql = format!(
                    "SELECT external_id, user_id FROM user_identities
                     WHERE tenant_id = $1 AND kind = 'wecom_open' AND external_id IN ({})",
                    in_list(2, chunk.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
                for o in chunk {
                    q = q.bind(*o);
                }
                for r in q.fetch_all(p).await? {
                    ctx.open_userids
                        .insert(r.try_get("external_id")?, r.try_get("user_id")?);
                }
            }
            for chunk in userids.chunks(CHUNK) {
                let sql = format!(
                    "SELECT external_id, user_id FROM user_identities
                     WHERE tenant_id = $1 AND kind = 'wecom' AND external_id IN ({})",
                    in_list(2, chunk.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
                for u in chunk {
                    q = q.bind(u.as_str());
                }
                for r in q.fetch_all(p).await? {
                    ctx.linked_userids
                        .insert(r.try_get("external_id")?, r.try_get("user_id")?);
                }
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(ctx)
    }

    /// Applies a valid plan in one transaction, with its audit line: new people with
    /// their given ids (status `new_status`), updated ones (name, and the email, mobile
    /// and notes the file gives), third-party identities and import keys, in batched
    /// statements. A failure (an id or open_userid taken meanwhile) leaves everything as
    /// it was.
    pub async fn apply_import(
        &self,
        tenant_id: i64,
        corpid: Option<&str>,
        plan: &ImportPlan,
        new_status: UserStatus,
        audit: &NewAudit,
    ) -> Result<()> {
        let now = now_ms();
        let created: HashSet<i64> = plan.create.iter().map(|r| r.id).collect();
        let pg = matches!(self, Store::Postgres(_));
        let max_binds = if pg { PG_MAX_BINDS } else { MAX_BINDS };
        let (creates, updates): (Vec<&ImportRow>, Vec<&ImportRow>) =
            plan.rows.iter().partition(|r| created.contains(&r.id));
        let opens: Vec<(&ImportRow, &str, i64)> = plan
            .rows
            .iter()
            .filter_map(|r| Some((r, r.open_userid.as_deref()?, r.source_agentid?)))
            .collect();
        let keyed: Vec<&ImportRow> = plan
            .rows
            .iter()
            .filter(|r| r.userid.is_some() || r.external_key.is_some())
            .collect();
        let corpid = match (corpid, opens.is_empty()) {
            (Some(c), _) => c,
            (None, true) => "",
            (None, false) => {
                return Err(StoreError::NotFound(
                    "the tenant's WeCom integration".into(),
                ))
            }
        };
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for chunk in creates.chunks(max_binds / 9) {
                let sql = format!(
                    "INSERT INTO users (id, tenant_id, name, status, email, mobile, notes, created_at, updated_at) VALUES {}",
                    values(chunk.len(), 9, 1)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                for r in chunk {
                    q = q
                        .bind(r.id)
                        .bind(tenant_id)
                        .bind(&r.name)
                        .bind(new_status.as_str())
                        .bind(&r.email)
                        .bind(&r.mobile)
                        .bind(r.notes.as_deref().unwrap_or(""))
                        .bind(now)
                        .bind(now);
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::unique(e, "a user id of the file"))?;
            }
            for chunk in updates.chunks(max_binds / 5) {
                // VALUES columns are column1… on both engines.
                let sql = format!(
                    "UPDATE users SET name = v.column2, email = COALESCE(v.column3, users.email),
                        mobile = COALESCE(v.column4, users.mobile), notes = COALESCE(v.column5, users.notes),
                        updated_at = $1
                     FROM (VALUES {}) AS v WHERE users.tenant_id = $2 AND users.id = v.column1",
                    values(chunk.len(), 5, 3)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)))
                    .bind(now)
                    .bind(tenant_id);
                for r in chunk {
                    q = q
                        .bind(r.id)
                        .bind(&r.name)
                        .bind(&r.email)
                        .bind(&r.mobile)
                        .bind(&r.notes);
                }
                let n = q.execute(&mut *tx).await?.rows_affected();
                if n != chunk.len() as u64 {
                    return Err(StoreError::NotFound(
                        "a user of the file (changed meanwhile)".into(),
                    ));
                }
            }
            // A third-party identity is added, or kept (its agentid updated) when it is
            // already this person's; another person's stops the import.
            for chunk in opens.chunks(max_binds / 8) {
                let sql = format!(
                    "INSERT INTO user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, source_agentid, created_at)
                     VALUES {}
                     ON CONFLICT (tenant_id, kind, corpid, external_id) DO UPDATE SET source_agentid = excluded.source_agentid
                     WHERE user_identities.user_id = excluded.user_id",
                    values(chunk.len(), 8, 1)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                for (r, open, agent) in chunk {
                    q = q
                        .bind(tenant_id)
                        .bind("wecom_open")
                        .bind(corpid)
                        .bind(*open)
                        .bind(r.id)
                        .bind(*open)
                        .bind(*agent)
                        .bind(now);
                }
                let n = q.execute(&mut *tx).await?.rows_affected();
                if n != chunk.len() as u64 {
                    return Err(StoreError::Conflict(
                        "an open_userid of the file (another person's)".into(),
                    ));
                }
            }
            for chunk in keyed.chunks(max_binds / 5) {
                let sql = format!(
                    "INSERT INTO user_import_keys (tenant_id, user_id, userid, external_key, imported_at)
                     VALUES {}
                     ON CONFLICT (tenant_id, user_id) DO UPDATE SET userid = excluded.userid,
                        external_key = excluded.external_key, imported_at = excluded.imported_at",
                    values(chunk.len(), 5, 1)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(eng(pg, sql)));
                for r in chunk {
                    q = q
                        .bind(tenant_id)
                        .bind(r.id)
                        .bind(&r.userid)
                        .bind(&r.external_key)
                        .bind(now);
                }
                q.execute(&mut *tx).await?;
            }
            // PostgreSQL's id sequence does not see ids given explicitly: move it past
            // them (never back), so the next sync's new users get fresh ids.
            if pg && !created.is_empty() {
                let top = created.iter().copied().max().unwrap_or(0);
                sqlx::query(
                    "SELECT setval(pg_get_serial_sequence('users', 'id'), $1)
                     WHERE $1 > COALESCE((SELECT last_value FROM pg_sequences
                                 WHERE schemaname = current_schema() AND sequencename = 'users_id_seq'), 0)",
                )
                .bind(top)
                .fetch_all(&mut *tx)
                .await?;
            }
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// The import keys of the tenant's people (for the sync's matching).
    pub async fn import_keys(&self, tenant_id: i64) -> Result<HashMap<i64, StoredKeys>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT user_id, userid, external_key FROM user_import_keys WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            let mut out = HashMap::with_capacity(rows.len());
            for r in &rows {
                out.insert(
                    r.try_get("user_id")?,
                    StoredKeys {
                        userid: r.try_get("userid")?,
                        external_key: r.try_get("external_key")?,
                    },
                );
            }
            Ok(out)
        })
    }

    /// The tenant's match rule (userid when none was chosen).
    pub async fn match_rule(&self, tenant_id: i64) -> Result<MatchRule> {
        on_pool!(self, |p| {
            let r = sqlx::query("SELECT rule FROM directory_match_rules WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(p)
                .await?;
            match r {
                None => Ok(MatchRule::default()),
                Some(r) => {
                    let s: String = r.try_get("rule")?;
                    MatchRule::parse(&s).map_err(|e| StoreError::Corrupt(e.to_string()))
                }
            }
        })
    }

    /// Saves the match rule with its audit line.
    pub async fn put_match_rule(
        &self,
        tenant_id: i64,
        rule: &MatchRule,
        audit: &NewAudit,
    ) -> Result<()> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO directory_match_rules (tenant_id, rule, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id) DO UPDATE SET rule = excluded.rule, updated_at = excluded.updated_at",
            )
            .bind(tenant_id)
            .bind(rule.as_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Saves a person's local notes with the audit line; `false`: no such user.
    pub async fn set_user_notes(
        &self,
        tenant_id: i64,
        user_id: i64,
        notes: &str,
        audit: &NewAudit,
    ) -> Result<bool> {
        let now = now_ms();
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE users SET notes = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
            )
            .bind(notes)
            .bind(now)
            .bind(tenant_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            insert_audit!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// A person's local notes (the bridge owns them; a sync never writes them).
    pub async fn user_notes(&self, tenant_id: i64, user_id: i64) -> Result<Option<String>> {
        on_pool!(self, |p| {
            Ok(
                sqlx::query("SELECT notes FROM users WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(user_id)
                    .fetch_optional(p)
                    .await?
                    .map(|r| r.try_get("notes"))
                    .transpose()?,
            )
        })
    }
}

impl Store {
    /// The tenant's people without a WeCom identity (imported, made by hand, or not
    /// re-linked by the switch), with what the match rules read (email, mobile).
    pub async fn unlinked_users(&self, tenant_id: i64) -> Result<Vec<CurrentUser>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT u.id, u.name, u.status, u.disabled_reason, u.email, u.mobile FROM users u
                 WHERE u.tenant_id = $1 AND NOT EXISTS (
                    SELECT 1 FROM user_identities i WHERE i.user_id = u.id AND i.kind = 'wecom')
                 ORDER BY u.id",
            )
            .bind(tenant_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let status: String = r.try_get("status")?;
                let reason: Option<String> = r.try_get("disabled_reason")?;
                out.push(CurrentUser {
                    id: r.try_get("id")?,
                    key: None,
                    record: UserRecord {
                        name: r.try_get("name")?,
                        email: r.try_get("email")?,
                        mobile: r.try_get("mobile")?,
                        ..Default::default()
                    },
                    status: status.parse().map_err(StoreError::Corrupt)?,
                    disabled_reason: reason
                        .map(|s| s.parse())
                        .transpose()
                        .map_err(StoreError::Corrupt)?,
                    imported: false,
                    link_identity: false,
                });
            }
            Ok(out)
        })
    }
}
