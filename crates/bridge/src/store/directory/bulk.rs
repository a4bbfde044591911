//! The engine-specific half of the apply: writing many rows in its transaction.
//!
//! SQLite takes each batch as one JSON text that the database unpacks in C (binding each
//! value through sqlx costs microseconds apiece). PostgreSQL takes new rows through
//! `COPY … FROM STDIN` straight into their tables, and upserts and updates through one
//! statement over `UNNEST` arrays: a round trip per table instead of one per batch or per
//! row, and no JSON for the server to parse.

use super::Result;
use crate::domain::directory::{DeptUpsert, Membership, NewUser, UserUpdate};
use crate::store::StoreError;
use sqlx::postgres::PgConnection;
use sqlx::{Postgres, Sqlite, Transaction};

/// Rows per SQLite JSON batch.
const JSON_ROWS: usize = 5_000;
/// Bytes of COPY data per message to the server: bounds the buffer, not the statement.
const COPY_CHUNK: usize = 1 << 20;

/// Which tag table [`BulkWrite::insert_tag_links`] fills.
#[derive(Clone, Copy, Debug)]
pub(super) enum TagLinks {
    Users,
    Departments,
}

impl TagLinks {
    fn table_and_column(self) -> (&'static str, &'static str) {
        match self {
            TagLinks::Users => ("tag_users", "user_id"),
            TagLinks::Departments => ("tag_departments", "department_id"),
        }
    }
}

/// One engine's way of writing many rows, implemented for each engine's transaction so
/// that the apply's body (expanded once per engine by `on_pool!`) picks its own.
pub(super) trait BulkWrite {
    /// `n` ids for new users, unused so far.
    async fn reserve_user_ids(&mut self, n: usize) -> Result<Vec<i64>>;
    /// Departments in scope: inserted, or updated and active again.
    async fn upsert_departments(
        &mut self,
        tenant_id: i64,
        now: i64,
        rows: &[DeptUpsert],
    ) -> Result<()>;
    /// New users with their reserved ids: their `users` rows and WeCom identities.
    async fn insert_users(
        &mut self,
        tenant_id: i64,
        corpid: &str,
        now: i64,
        rows: &[(&NewUser, i64)],
    ) -> Result<()>;
    /// `user_departments` rows: (user id, membership).
    async fn insert_memberships(
        &mut self,
        tenant_id: i64,
        rows: &[(i64, &Membership)],
    ) -> Result<()>;
    /// (tag id, user or department id) rows.
    async fn insert_tag_links(
        &mut self,
        tenant_id: i64,
        links: TagLinks,
        rows: &[(i64, i64)],
    ) -> Result<()>;
    /// Removes (tag id, user id) links.
    async fn delete_tag_users(&mut self, tenant_id: i64, rows: &[(i64, i64)]) -> Result<()>;
    /// The `users` columns WeCom owns, of updated users (the status is set apart).
    async fn update_user_rows(
        &mut self,
        tenant_id: i64,
        now: i64,
        rows: &[&UserUpdate],
    ) -> Result<()>;
}

/// Rows for [`json_source`]: a JSON array of arrays.
fn json_rows<T: serde::Serialize>(rows: impl Iterator<Item = T>) -> Result<String> {
    let rows: Vec<T> = rows.collect();
    serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(format!("rows to write: {e}")))
}

/// SQLite: a table of the rows bound as JSON text to `?param`, one row per inner array.
/// `jsonb_each` hands out parsed binary JSON; `json_each` hands out text that each `->>`
/// parses again, 3x slower.
fn json_source(param: usize) -> String {
    format!("jsonb_each(?{param}) AS j")
}

/// Elements `from..from + n` of a [`json_source`] row; SQLite's `->>` gives an integer or
/// text by the JSON type, so no casts.
fn json_cols(from: usize, n: usize) -> String {
    let cols: Vec<String> = (from..from + n).map(|i| format!("j.value->>{i}")).collect();
    cols.join(", ")
}

impl BulkWrite for Transaction<'_, Sqlite> {
    async fn reserve_user_ids(&mut self, n: usize) -> Result<Vec<i64>> {
        // The apply's transaction holds the write lock, so MAX(id) is stable.
        let m: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM users")
            .fetch_one(&mut **self)
            .await?;
        Ok((m + 1..=m + n as i64).collect())
    }

    async fn upsert_departments(
        &mut self,
        tenant_id: i64,
        now: i64,
        rows: &[DeptUpsert],
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO departments (tenant_id, id, parent_id, name, name_en, sort_order, leaders, active, updated_at)
             SELECT ?1, {}, TRUE, ?2 FROM {} WHERE TRUE
             ON CONFLICT (tenant_id, id) DO UPDATE SET parent_id = excluded.parent_id,
                name = excluded.name, name_en = excluded.name_en, sort_order = excluded.sort_order,
                leaders = excluded.leaders, active = excluded.active, updated_at = excluded.updated_at",
            json_cols(0, 6),
            json_source(3)
        );
        for chunk in rows.chunks(JSON_ROWS) {
            let rows = json_rows(chunk.iter().map(|d| {
                let r = &d.record;
                (
                    r.id,
                    r.parent_id,
                    &r.name,
                    &r.name_en,
                    r.sort_order,
                    &r.leaders,
                )
            }))?;
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(tenant_id)
                .bind(now)
                .bind(rows)
                .execute(&mut **self)
                .await?;
        }
        Ok(())
    }

    async fn insert_users(
        &mut self,
        tenant_id: i64,
        corpid: &str,
        now: i64,
        rows: &[(&NewUser, i64)],
    ) -> Result<()> {
        let user_sql = format!(
            "INSERT INTO users (id, tenant_id, name, status, disabled_reason, position, alias, telephone,
                mobile, email, main_department, wecom_status, direct_leader, extattr, created_at, updated_at)
             SELECT j.value->>0, ?1, {}, ?2, ?2 FROM {}",
            json_cols(1, 12),
            json_source(3)
        );
        let identity_sql = format!(
            "INSERT INTO user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, created_at)
             SELECT ?1, 'wecom', ?2, {}, ?3 FROM {}",
            json_cols(0, 3),
            json_source(4)
        );
        for chunk in rows.chunks(JSON_ROWS) {
            let rows = json_rows(chunk.iter().map(|(u, id)| {
                let r = &u.record;
                (
                    id,
                    &r.name,
                    u.status.as_str(),
                    u.disabled_reason.map(|d| d.as_str()),
                    &r.position,
                    &r.alias,
                    &r.telephone,
                    &r.mobile,
                    &r.email,
                    r.main_department,
                    r.wecom_status,
                    &r.direct_leader,
                    &r.extattr,
                )
            }))?;
            sqlx::query(sqlx::AssertSqlSafe(user_sql.clone()))
                .bind(tenant_id)
                .bind(now)
                .bind(rows)
                .execute(&mut **self)
                .await?;
            let rows = json_rows(chunk.iter().map(|(u, id)| (&u.key, id, &u.record.userid)))?;
            sqlx::query(sqlx::AssertSqlSafe(identity_sql.clone()))
                .bind(tenant_id)
                .bind(corpid)
                .bind(now)
                .bind(rows)
                .execute(&mut **self)
                .await?;
        }
        Ok(())
    }

    async fn insert_memberships(
        &mut self,
        tenant_id: i64,
        rows: &[(i64, &Membership)],
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO user_departments (tenant_id, user_id, department_id, sort_order, is_leader)
             SELECT ?1, {} FROM {}",
            json_cols(0, 4),
            json_source(2)
        );
        for chunk in rows.chunks(JSON_ROWS) {
            let rows = json_rows(
                chunk
                    .iter()
                    .map(|(id, m)| (id, m.department_id, m.sort_order, m.is_leader)),
            )?;
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(tenant_id)
                .bind(rows)
                .execute(&mut **self)
                .await?;
        }
        Ok(())
    }

    async fn insert_tag_links(
        &mut self,
        tenant_id: i64,
        links: TagLinks,
        rows: &[(i64, i64)],
    ) -> Result<()> {
        let (table, col) = links.table_and_column();
        let sql = format!(
            "INSERT INTO {table} (tenant_id, tag_id, {col}) SELECT ?1, {} FROM {}",
            json_cols(0, 2),
            json_source(2)
        );
        for chunk in rows.chunks(JSON_ROWS) {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(tenant_id)
                .bind(json_rows(chunk.iter())?)
                .execute(&mut **self)
                .await?;
        }
        Ok(())
    }

    async fn delete_tag_users(&mut self, tenant_id: i64, rows: &[(i64, i64)]) -> Result<()> {
        let sql = format!(
            "DELETE FROM tag_users WHERE tenant_id = ?1 AND (tag_id, user_id) IN (SELECT {} FROM {})",
            json_cols(0, 2),
            json_source(2)
        );
        for chunk in rows.chunks(JSON_ROWS) {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(tenant_id)
                .bind(json_rows(chunk.iter())?)
                .execute(&mut **self)
                .await?;
        }
        Ok(())
    }

    /// One statement each: a re-sync changes few, and SQLite's statements cost no round trip.
    async fn update_user_rows(
        &mut self,
        tenant_id: i64,
        now: i64,
        rows: &[&UserUpdate],
    ) -> Result<()> {
        for u in rows {
            let r = &u.record;
            sqlx::query(
                "UPDATE users SET name = $1, position = $2, alias = $3, telephone = $4, mobile = $5, email = $6,
                    main_department = $7, wecom_status = $8, direct_leader = $9, extattr = $10, updated_at = $11
                 WHERE tenant_id = $12 AND id = $13",
            )
            .bind(&r.name)
            .bind(&r.position)
            .bind(&r.alias)
            .bind(&r.telephone)
            .bind(&r.mobile)
            .bind(&r.email)
            .bind(r.main_department)
            .bind(r.wecom_status)
            .bind(&r.direct_leader)
            .bind(&r.extattr)
            .bind(now)
            .bind(tenant_id)
            .bind(u.user_id)
            .execute(&mut **self)
            .await?;
        }
        Ok(())
    }
}

/// Rows in COPY's text format: columns separated by tabs, rows ended by newlines, `\N`
/// for NULL, and backslash, tab, newline and carriage return escaped with a backslash
/// (the only bytes the format gives a meaning; everything else, `\N` spelled out in a
/// value included, then arrives as it was sent).
#[derive(Default)]
pub(crate) struct CopyText {
    buf: Vec<u8>,
    in_row: bool,
}

impl CopyText {
    fn sep(&mut self) {
        if self.in_row {
            self.buf.push(b'\t');
        }
        self.in_row = true;
    }

    pub(crate) fn int(&mut self, v: i64) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(v.to_string().as_bytes());
        self
    }

    pub(crate) fn bool(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.buf.push(if v { b't' } else { b'f' });
        self
    }

    pub(crate) fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
        let special = |b: &u8| matches!(b, b'\\' | b'\t' | b'\n' | b'\r');
        if !s.as_bytes().iter().any(special) {
            self.buf.extend_from_slice(s.as_bytes());
            return self;
        }
        for &b in s.as_bytes() {
            match b {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                _ => self.buf.push(b),
            }
        }
        self
    }

    fn null(&mut self) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(b"\\N");
        self
    }

    pub(crate) fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    pub(crate) fn opt_int(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    pub(crate) fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.in_row = false;
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// `COPY {into} FROM STDIN` of `rows`, each written by `row`, sent in [`COPY_CHUNK`]s.
/// A failure drops the `PgCopyIn`, which aborts the COPY; the transaction then fails.
async fn copy_in<T>(
    conn: &mut PgConnection,
    into: &str,
    rows: impl IntoIterator<Item = T>,
    mut row: impl FnMut(&mut CopyText, T),
) -> Result<()> {
    let mut copy = conn.copy_in_raw(&format!("COPY {into} FROM STDIN")).await?;
    let mut text = CopyText::default();
    for r in rows {
        row(&mut text, r);
        text.end_row();
        if text.buf.len() >= COPY_CHUNK {
            copy.send(text.as_bytes()).await?;
            text.buf.clear();
        }
    }
    if !text.buf.is_empty() {
        copy.send(text.as_bytes()).await?;
    }
    copy.finish().await?;
    Ok(())
}

impl BulkWrite for Transaction<'_, Postgres> {
    async fn reserve_user_ids(&mut self, n: usize) -> Result<Vec<i64>> {
        let ids = sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, $1)",
        )
        .bind(n as i64)
        .fetch_all(&mut **self)
        .await?;
        Ok(ids)
    }

    async fn upsert_departments(
        &mut self,
        tenant_id: i64,
        now: i64,
        rows: &[DeptUpsert],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let r = rows.iter().map(|d| &d.record);
        let ids: Vec<i64> = r.clone().map(|d| d.id).collect();
        let parents: Vec<i64> = r.clone().map(|d| d.parent_id).collect();
        let names: Vec<&str> = r.clone().map(|d| d.name.as_str()).collect();
        let names_en: Vec<&str> = r.clone().map(|d| d.name_en.as_str()).collect();
        let orders: Vec<i64> = r.clone().map(|d| d.sort_order).collect();
        let leaders: Vec<&str> = r.map(|d| d.leaders.as_str()).collect();
        sqlx::query(
            "INSERT INTO departments (tenant_id, id, parent_id, name, name_en, sort_order, leaders, active, updated_at)
             SELECT $1, v.id, v.parent_id, v.name, v.name_en, v.sort_order, v.leaders, TRUE, $2
             FROM UNNEST($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::text[])
                AS v(id, parent_id, name, name_en, sort_order, leaders)
             ON CONFLICT (tenant_id, id) DO UPDATE SET parent_id = excluded.parent_id,
                name = excluded.name, name_en = excluded.name_en, sort_order = excluded.sort_order,
                leaders = excluded.leaders, active = excluded.active, updated_at = excluded.updated_at",
        )
        .bind(tenant_id)
        .bind(now)
        .bind(ids)
        .bind(parents)
        .bind(names)
        .bind(names_en)
        .bind(orders)
        .bind(leaders)
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    async fn insert_users(
        &mut self,
        tenant_id: i64,
        corpid: &str,
        now: i64,
        rows: &[(&NewUser, i64)],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        copy_in(
            self,
            "users (id, tenant_id, name, status, disabled_reason, position, alias, telephone, mobile,
                email, main_department, wecom_status, direct_leader, extattr, created_at, updated_at)",
            rows,
            |t, (u, id)| {
                let r = &u.record;
                t.int(*id)
                    .int(tenant_id)
                    .text(&r.name)
                    .text(u.status.as_str())
                    .opt_text(u.disabled_reason.map(|d| d.as_str()))
                    .text(&r.position)
                    .text(&r.alias)
                    .text(&r.telephone)
                    .opt_text(r.mobile.as_deref())
                    .opt_text(r.email.as_deref())
                    .opt_int(r.main_department)
                    .int(r.wecom_status)
                    .text(&r.direct_leader)
                    .text(&r.extattr)
                    .int(now)
                    .int(now);
            },
        )
        .await?;
        copy_in(
            self,
            "user_identities (tenant_id, kind, corpid, external_id, user_id, display_id, created_at)",
            rows,
            |t, (u, id)| {
                t.int(tenant_id)
                    .text("wecom")
                    .text(corpid)
                    .text(&u.key)
                    .int(*id)
                    .text(&u.record.userid)
                    .int(now);
            },
        )
        .await
    }

    async fn insert_memberships(
        &mut self,
        tenant_id: i64,
        rows: &[(i64, &Membership)],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        copy_in(
            self,
            "user_departments (tenant_id, user_id, department_id, sort_order, is_leader)",
            rows,
            |t, (id, m)| {
                t.int(tenant_id)
                    .int(*id)
                    .int(m.department_id)
                    .int(m.sort_order)
                    .bool(m.is_leader);
            },
        )
        .await
    }

    async fn insert_tag_links(
        &mut self,
        tenant_id: i64,
        links: TagLinks,
        rows: &[(i64, i64)],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (table, col) = links.table_and_column();
        copy_in(
            self,
            &format!("{table} (tenant_id, tag_id, {col})"),
            rows,
            |t, (tag, id)| {
                t.int(tenant_id).int(*tag).int(*id);
            },
        )
        .await
    }

    async fn delete_tag_users(&mut self, tenant_id: i64, rows: &[(i64, i64)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let tags: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let users: Vec<i64> = rows.iter().map(|r| r.1).collect();
        sqlx::query(
            "DELETE FROM tag_users t USING UNNEST($2::bigint[], $3::bigint[]) AS x(tag_id, user_id)
             WHERE t.tenant_id = $1 AND t.tag_id = x.tag_id AND t.user_id = x.user_id",
        )
        .bind(tenant_id)
        .bind(&tags)
        .bind(&users)
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    async fn update_user_rows(
        &mut self,
        tenant_id: i64,
        now: i64,
        rows: &[&UserUpdate],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let r = rows.iter().map(|u| (u.user_id, &u.record));
        let col = |f: fn(&crate::domain::directory::UserRecord) -> &str| -> Vec<&str> {
            rows.iter().map(|u| f(&u.record)).collect()
        };
        let ids: Vec<i64> = r.clone().map(|(id, _)| id).collect();
        let mobiles: Vec<Option<&str>> = r.clone().map(|(_, u)| u.mobile.as_deref()).collect();
        let emails: Vec<Option<&str>> = r.clone().map(|(_, u)| u.email.as_deref()).collect();
        let mains: Vec<Option<i64>> = r.clone().map(|(_, u)| u.main_department).collect();
        let statuses: Vec<i64> = r.map(|(_, u)| u.wecom_status).collect();
        sqlx::query(
            "UPDATE users AS u SET name = v.name, position = v.position, alias = v.alias,
                telephone = v.telephone, mobile = v.mobile, email = v.email,
                main_department = v.main_department, wecom_status = v.wecom_status,
                direct_leader = v.direct_leader, extattr = v.extattr, updated_at = $1
             FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                    $9::text[], $10::bigint[], $11::bigint[], $12::text[], $13::text[])
                AS v(id, name, position, alias, telephone, mobile, email, main_department,
                    wecom_status, direct_leader, extattr)
             WHERE u.tenant_id = $2 AND u.id = v.id",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(ids)
        .bind(col(|u| &u.name))
        .bind(col(|u| &u.position))
        .bind(col(|u| &u.alias))
        .bind(col(|u| &u.telephone))
        .bind(mobiles)
        .bind(emails)
        .bind(mains)
        .bind(statuses)
        .bind(col(|u| &u.direct_leader))
        .bind(col(|u| &u.extattr))
        .execute(&mut **self)
        .await?;
        Ok(())
    }
}
