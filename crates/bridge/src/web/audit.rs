//! The console's audit log: the entries, filtered by who, what and day (in the
//! tenant's time zone), paged back, exported as CSV, with the retention period.

use crate::admin::export::{export_csv, EXPORT_MAX};
use crate::app::AppState;
use crate::store::AuditQuery;
use crate::web::admin_session::Admin;
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::labels;
use crate::web::pages::{render, AuditRow, Nav};
use crate::web::time::Clock;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

type Result<T> = std::result::Result<T, WebError>;

const PAGE: i64 = 50;

/// The filter as the form sends it (blank = any).
#[derive(Deserialize, Default, Clone)]
pub struct AuditParams {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    /// `YYYY-MM-DD`, the tenant's days.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    pub before: Option<i64>,
}

impl AuditParams {
    /// The store's query; `Err` names the date field that is no date. `who` holds the
    /// stored actors of the chosen person (see [`Who`]).
    fn query(&self, clock: &Clock, who: &Who) -> std::result::Result<AuditQuery, &'static str> {
        let day = |v: &str, f: fn(&Clock, &str) -> Option<i64>, field| match v.trim() {
            "" => Ok(None),
            d => f(clock, d).map(Some).ok_or(field),
        };
        let chosen = self.actor.trim();
        Ok(AuditQuery {
            actors: match chosen {
                "" => Vec::new(),
                key => who.actors_of(key).unwrap_or_else(|| vec![key.to_string()]),
            },
            action: Some(self.action.trim().to_string()).filter(|s| !s.is_empty()),
            from_ms: day(&self.from, Clock::day_start, "from")?,
            to_ms: day(&self.to, Clock::day_end, "to")?,
            before_id: self.before,
            limit: PAGE,
            ..AuditQuery::default()
        })
    }

    /// The filter as a query string (no cursor), for the pager and the export link.
    fn encoded(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                s.append_pair(k, v.trim());
            }
        }
        s.finish()
    }

    fn any(&self) -> bool {
        [&self.actor, &self.action, &self.from, &self.to]
            .iter()
            .any(|v| !v.trim().is_empty())
    }
}

/// The actors of the tenant's log, grouped by person: a member recorded as `user:3` in
/// one entry and `wecom:lisi` in another is one choice, `member:3`.
pub struct Who {
    groups: std::collections::BTreeMap<String, Vec<String>>,
}

impl Who {
    async fn of(st: &AppState, tenant_id: i64, actors: Vec<String>) -> Result<Who> {
        let (_, userids) = labels::actor_refs(actors.iter().map(String::as_str));
        let ids: std::collections::HashMap<String, i64> = st
            .store
            .users_by_wecom_userids(tenant_id, &userids)
            .await?
            .into_iter()
            .map(|(u, id)| (u.to_ascii_lowercase(), id))
            .collect();
        let mut groups = std::collections::BTreeMap::<String, Vec<String>>::new();
        for a in actors {
            let member = a
                .strip_prefix("user:")
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| {
                    ids.get(&a.strip_prefix("wecom:")?.to_ascii_lowercase())
                        .copied()
                });
            let key = member.map_or_else(|| a.clone(), |id| format!("member:{id}"));
            groups.entry(key).or_default().push(a);
        }
        Ok(Who { groups })
    }

    /// The stored actors behind a choice's value; `None` for a value not in the log.
    fn actors_of(&self, key: &str) -> Option<Vec<String>> {
        self.groups.get(key).cloned()
    }
}

/// A choice in a filter's list: the stored value and what a person reads.
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub entries: Vec<AuditRow>,
    /// The query string of the next (older) page, if there is one.
    pub older: Option<String>,
    /// The time zone of the times shown.
    pub zone: String,
    pub filter: AuditParams,
    pub filtered: bool,
    /// The filter as a query string, for the export link.
    pub filter_query: String,
    pub actors: Vec<Choice>,
    pub actions: Vec<Choice>,
    /// Why the filter was refused (a date that is no date).
    pub error: Option<String>,
    /// Days entries are kept; 0: kept until deleted by hand.
    pub retention_days: u64,
    pub export_max: usize,
}

pub async fn page(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    q: std::result::Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(filter) = q?;
    let t = &admin.tenant;
    let clock = Clock::of(t);
    let (actor_values, action_values) = st.store.audit_facets(t.id).await?;
    let people = people_of(&st, t.id, actor_values.iter().map(String::as_str)).await?;
    let who = Who::of(&st, t.id, actor_values).await?;
    let (query, error) = match filter.query(&clock, &who) {
        Ok(q) => (Some(q), None),
        Err(field) => (None, Some(date_error(l, field, &filter))),
    };
    let entries = match &query {
        Some(q) => st.store.audit_by_filter(t.id, q).await?,
        None => Vec::new(),
    };
    let older = (entries.len() as i64 == PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|id| {
            let f = filter.encoded();
            if f.is_empty() {
                format!("before={id}")
            } else {
                format!("{f}&before={id}")
            }
        });
    let rows_people = people_of(&st, t.id, entries.iter().map(|e| e.actor.as_str())).await?;
    let mut actors: Vec<Choice> = who
        .groups
        .iter()
        .map(|(key, stored)| Choice {
            label: labels::actor(l, &stored[0], &people),
            value: key.clone(),
        })
        .collect();
    actors.sort_by(|a, b| a.label.cmp(&b.label));
    let mut actions: Vec<Choice> = action_values
        .into_iter()
        .map(|a| Choice {
            label: labels::audit_action(l, &a),
            value: a,
        })
        .collect();
    actions.sort_by(|a, b| a.label.cmp(&b.label));
    let mut resp = render(&AuditPage {
        l,
        nav: Some(admin.nav("audit")),
        entries: entries
            .into_iter()
            .map(|e| AuditRow::new(l, &clock, &rows_people, e))
            .collect(),
        older,
        zone: clock.name().to_string(),
        filtered: filter.any(),
        filter_query: filter.encoded(),
        filter,
        actors,
        actions,
        retention_days: st.cfg.audit_retention_days,
        export_max: EXPORT_MAX,
        error: error.clone(),
    });
    if error.is_some() {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(resp)
}

/// `GET /console/audit/export.csv`: the filtered entries as CSV, times in the tenant's
/// zone with their offset (`2026-12-06 21:05:00 +08:00`).
pub async fn export(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    q: std::result::Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(filter) = q?;
    let t = &admin.tenant;
    let (actor_values, _) = st.store.audit_facets(t.id).await?;
    let who = Who::of(&st, t.id, actor_values).await?;
    let clock = Clock::of(t);
    let query = filter
        .query(&clock, &who)
        .map_err(|field| WebError::BadRequest(date_error(l, field, &filter)))?;
    let csv = export_csv(&st, t.id, query, |ms| clock.show(ms)).await?;
    let name = format!("audit-{}.csv", t.slug);
    Ok(crate::web::pages::csv_response(&name, csv))
}

fn date_error(l: Lang, field: &str, f: &AuditParams) -> String {
    let v = if field == "from" { &f.from } else { &f.to };
    if l.is_zh() {
        format!("“{}” 不是日期，请按 2026-12-06 的格式填写。", v.trim())
    } else {
        format!("“{}” is not a date; write it as 2026-12-06.", v.trim())
    }
}

/// The names of the members the actors point at (`user:3`, `wecom:lisi`), so one person
/// reads as one name however the entry recorded them.
pub async fn people_of<'a>(
    st: &AppState,
    tenant_id: i64,
    actors: impl Iterator<Item = &'a str>,
) -> Result<labels::People> {
    let (ids, userids) = labels::actor_refs(actors);
    let mut people = labels::People::default();
    for (userid, id) in st.store.users_by_wecom_userids(tenant_id, &userids).await? {
        if let Some(u) = st.store.user_by_id(tenant_id, id).await? {
            people.by_wecom.insert(userid.to_ascii_lowercase(), u.name);
        }
    }
    for id in ids {
        if let Some(u) = st.store.user_by_id(tenant_id, id).await? {
            people.by_id.insert(id, u.name);
        }
    }
    Ok(people)
}
