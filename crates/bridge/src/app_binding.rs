//! Binding a catalogue app to its own WeCom self-built app (issue 14): the AgentId and
//! Secret are checked live as in set-up step 2 (gettoken, agent/get), the app's visible
//! scope is expanded and must lie inside the main app's (wecom-api.md §4.3,
//! `domain::nested_scope`), and only then is the integration stored (role `app`, sealed)
//! and linked to the app. A refusal names every outsider.

use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::domain::doctor::{BoundAppScope, Failure};
use crate::domain::integration::{FieldErrors, IntegrationRole, WecomCredentialsInput};
use crate::domain::nested_scope::{self, AppScope, MainScope, Names, Outsiders, TagScope};
use crate::domain::tenant::Tenant;
use crate::setup::Actor;
use crate::store::StoreError;
use std::collections::BTreeSet;
use wecom::types::Agent;

/// What the admin types to bind an app: the WeCom app's AgentId and Secret (the CorpID is
/// the main app's). An empty secret keeps the stored one when re-binding the same app.
#[derive(Clone, Default)]
pub struct BindInput {
    pub agentid: String,
    pub secret: String,
}

impl std::fmt::Debug for BindInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindInput")
            .field("agentid", &self.agentid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("the tenant's main WeCom app is not set up yet")]
    NotConfigured,
    #[error("no app {0}")]
    AppNotFound(i64),
    #[error("some fields are invalid")]
    Fields(FieldErrors),
    #[error("AgentId {0} is the main (workbench) app; bind a model app to its own WeCom app")]
    IsMainApp(u32),
    #[error("{0} already exists")]
    Conflict(String),
    #[error(transparent)]
    Wecom(#[from] wecom::Error),
    /// The app's scope reaches outside the main app's: nothing was stored.
    #[error("{}", .outsiders.message_en())]
    OutsideMainScope {
        agent_name: String,
        outsiders: Outsiders,
    },
    #[error(transparent)]
    Store(StoreError),
    #[error("stored secrets cannot be opened: {0}")]
    Seal(#[from] crate::seal::SealError),
}

impl From<StoreError> for BindError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => BindError::Conflict(what),
            e => BindError::Store(e),
        }
    }
}

/// A binding that was accepted.
#[derive(Clone, Debug)]
pub struct Bound {
    pub agentid: u32,
    /// The app's `agent/get` answer at binding time.
    pub agent: Agent,
    /// Where this WeCom app's callbacks go (`web::wecom_routes::callback_path`).
    pub callback_path: String,
}

/// WeCom's answers for a member outside the caller's scope, or unknown to it (§4.2).
const OUT_OF_SCOPE: [i64; 3] = [60011, 60111, 46004];

/// Checks the WeCom app live, checks its scope against the main app's, and binds it to
/// the catalogue app `app_id`. Nothing is stored unless WeCom accepts the credentials and
/// the scope is nested.
pub async fn bind(
    st: &AppState,
    tenant: &Tenant,
    app_id: i64,
    input: &BindInput,
    actor: &Actor,
) -> Result<Bound, BindError> {
    let t = tenant.id;
    let main_rec = st
        .store
        .main_integration(t)
        .await?
        .ok_or(BindError::NotConfigured)?;
    let bound_before = match st.store.app_wecom_agentid(t, app_id).await {
        Ok(a) => a,
        Err(StoreError::NotFound(_)) => return Err(BindError::AppNotFound(app_id)),
        Err(e) => return Err(e.into()),
    };
    let main = st.open_integration(&main_rec)?;
    let typed = input.agentid.trim().parse::<i64>().ok();
    // The secret may be left empty only when re-binding the app's own WeCom app.
    let existing = match typed.filter(|a| Some(*a) == bound_before) {
        Some(a) => st
            .store
            .integration(t, a)
            .await?
            .filter(|r| r.role == IntegrationRole::App),
        None => None,
    };
    let mut creds = WecomCredentialsInput {
        corpid: main.corpid.clone(),
        agentid: input.agentid.clone(),
        secret: input.secret.clone(),
    }
    .validate(existing.is_some())
    .map_err(BindError::Fields)?;
    if creds.agentid == main.agentid {
        return Err(BindError::IsMainApp(creds.agentid));
    }
    let opened = existing
        .as_ref()
        .map(|r| st.open_integration(r))
        .transpose()?;
    if creds.secret.is_empty() {
        creds.secret = opened
            .as_ref()
            .map(|o| o.secret.clone())
            .unwrap_or_default();
    }

    let client = st.wecom.get(&creds.corpid, &creds.secret)?;
    // An explicit gettoken: a cached token must not hide a secret that was just reset.
    client.gettoken().await?;
    let agent = client.agent_get(creds.agentid).await?;
    let main_client = st.wecom.get(&main.corpid, &main.secret)?;
    let outsiders = check_nested(&main_client, main.agentid, &client, &agent).await?;
    if !outsiders.is_empty() {
        tracing::info!(
            tenant = t,
            agentid = creds.agentid,
            departments = outsiders.departments.len(),
            members = outsiders.users.len(),
            tags = outsiders.tags.len(),
            "binding refused: the app's scope is not inside the main app's"
        );
        return Err(BindError::OutsideMainScope {
            agent_name: agent.name.clone(),
            outsiders,
        });
    }

    let a = i64::from(creds.agentid);
    let record = crate::setup::sealed_record(
        st,
        t,
        IntegrationRole::App,
        &creds,
        opened.as_ref(),
        &agent,
        existing.as_ref().and_then(|e| e.callback_verified_at),
    );
    let audit = NewAudit {
        tenant_id: t,
        actor: actor.name.clone(),
        action: "app.wecom.bound",
        detail: format!(
            "app {app_id} bound to WeCom app AgentId {} ({}); its visible scope lies inside the main app's",
            creds.agentid, agent.name
        ),
        ip: actor.ip.clone(),
    };
    match st.store.bind_app_integration(&record, app_id, &audit).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Err(BindError::AppNotFound(app_id)),
        Err(e) => return Err(e.into()),
    }
    Ok(Bound {
        agentid: creds.agentid,
        agent,
        callback_path: crate::web::wecom_routes::callback_path(a),
    })
}

/// Unbinds the catalogue app from its own WeCom app: its sealed Secret is deleted and its
/// home page signs members in through the main app again. Returns the agentid it was bound
/// to (`None`: it was not bound).
pub async fn unbind(
    st: &AppState,
    tenant: &Tenant,
    app_id: i64,
    actor: &Actor,
) -> Result<Option<u32>, BindError> {
    let audit = NewAudit {
        tenant_id: tenant.id,
        actor: actor.name.clone(),
        action: "app.wecom.unbound",
        detail: format!("app {app_id} unbound from its WeCom app; its Secret was deleted"),
        ip: actor.ip.clone(),
    };
    match st
        .store
        .unbind_app_integration(tenant.id, app_id, &audit)
        .await
    {
        Ok(a) => Ok(a.and_then(|a| u32::try_from(a).ok())),
        Err(StoreError::NotFound(_)) => Err(BindError::AppNotFound(app_id)),
        Err(e) => Err(e.into()),
    }
}

/// The app's own WeCom app as the console shows it.
#[derive(Clone, Debug)]
pub struct Binding {
    pub agentid: u32,
    /// The WeCom app's name, from its `agent/get` at binding time.
    pub name: String,
    pub verified_at: Option<i64>,
}

/// The WeCom app the catalogue app `app_id` is bound to, if any.
pub async fn binding_of(
    st: &AppState,
    tenant_id: i64,
    app_id: i64,
) -> Result<Option<Binding>, StoreError> {
    let Some(a) = st.store.app_wecom_agentid(tenant_id, app_id).await? else {
        return Ok(None);
    };
    let rec = st.store.integration(tenant_id, a).await?;
    Ok(rec.map(|r| Binding {
        agentid: u32::try_from(r.agentid).unwrap_or_default(),
        name: r
            .agent_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<Agent>(j).ok())
            .map(|a| a.name)
            .unwrap_or_default(),
        verified_at: r.verified_at,
    }))
}

/// Expands both scopes through WeCom and applies the nested-scope rule.
///
/// - `Depts(main)`: the main app's `department/list` (its visible departments, closed
///   under subtrees).
/// - `Users(main)`, asked only about the members the app's scope names (individually or
///   through a tag that is not the main app's): the main app's own `allow_userinfos`, or a
///   `user/get` with the main token that is not refused as out of scope.
/// - The app's tags through `tag/get` with the app's own token (the tag is in that app's
///   scope, so the answer is not cut by the main scope); names from the app's
///   `department/list`, `tag/get` and, for outside members without one, `user/get`.
pub async fn check_nested(
    main: &wecom::Client,
    main_agentid: u32,
    app: &wecom::Client,
    agent: &Agent,
) -> Result<Outsiders, wecom::Error> {
    let main_agent = main.agent_get(main_agentid).await?;
    let main_tags: BTreeSet<u32> = main_agent.allow_tags.tagid.iter().copied().collect();
    let mut scope = MainScope {
        departments: main
            .department_list(None)
            .await?
            .iter()
            .map(|d| d.id)
            .collect(),
        users: BTreeSet::new(),
        tags: main_tags.clone(),
    };
    let mut names = Names::default();
    let mut app_scope = AppScope {
        departments: agent.allow_partys.partyid.clone(),
        users: agent.scope_users().map(str::to_string).collect(),
        tags: Vec::new(),
    };
    let needs_depts = !app_scope.departments.is_empty() || !agent.allow_tags.tagid.is_empty();
    if needs_depts {
        for d in app.department_list(None).await? {
            names.departments.insert(d.id, d.name);
        }
    }
    for &tagid in &agent.allow_tags.tagid {
        let tag = app.tag_get(tagid).await?;
        names.tags.insert(tagid, tag.tagname.clone());
        for m in &tag.userlist {
            names.users.insert(m.userid.clone(), m.name.clone());
        }
        app_scope.tags.push(TagScope {
            id: tagid,
            users: tag.userlist.into_iter().map(|m| m.userid).collect(),
            departments: tag.partylist,
        });
    }

    let main_named: BTreeSet<&str> = main_agent.scope_users().collect();
    let mut candidates: BTreeSet<&str> = app_scope.users.iter().map(String::as_str).collect();
    for t in app_scope.tags.iter().filter(|t| !main_tags.contains(&t.id)) {
        candidates.extend(t.users.iter().map(String::as_str));
    }
    for u in candidates {
        if main_named.contains(u) {
            scope.users.insert(u.to_string());
            continue;
        }
        match main.user_get(u).await {
            Ok(_) => {
                scope.users.insert(u.to_string());
            }
            Err(e) if e.errcode().is_some_and(|c| OUT_OF_SCOPE.contains(&c)) => {}
            Err(e) => return Err(e),
        }
    }

    let mut outsiders = nested_scope::outsiders(&scope, &app_scope, &names);
    // Members named only by id so far: their names through the app's own token.
    let unnamed: BTreeSet<String> = outsiders
        .users
        .iter()
        .chain(outsiders.tags.iter().flat_map(|t| t.users.iter()))
        .filter(|u| u.name == u.id)
        .map(|u| u.id.clone())
        .collect();
    if !unnamed.is_empty() {
        for u in unnamed {
            if let Ok(m) = app.user_get(&u).await {
                names.users.insert(u, m.name);
            }
        }
        outsiders = nested_scope::outsiders(&scope, &app_scope, &names);
    }
    Ok(outsiders)
}

/// Each model app's own WeCom app, its scope checked against the main app's again (the
/// nested-scope rule, wecom-api.md §4.3): a scope widened in WeCom since binding shows in
/// doctor and in the next full sync (reconcile).
pub async fn recheck_bound_apps(
    st: &AppState,
    tenant_id: i64,
    main: &wecom::Client,
    main_agentid: u32,
) -> Result<Vec<BoundAppScope>, StoreError> {
    let mut out = Vec::new();
    for rec in st.store.integrations(tenant_id).await? {
        if rec.role != IntegrationRole::App {
            continue;
        }
        let stored_name = rec
            .agent_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<wecom::types::Agent>(j).ok())
            .map(|a| a.name)
            .unwrap_or_default();
        let mut entry = BoundAppScope {
            agentid: rec.agentid,
            name: stored_name,
            outsiders: Ok(Default::default()),
        };
        let opened = match st.open_integration(&rec) {
            Ok(o) => o,
            Err(e) => {
                entry.outsiders = Err(Failure {
                    errcode: None,
                    message: e.to_string(),
                    title_zh: "无法解密已保存的 Secret".into(),
                    title_en: "The saved Secret cannot be decrypted".into(),
                    fix_zh: "实例密钥已更换或数据被改动；请重新绑定该应用。".into(),
                    fix_en: "The instance key changed or the data was altered; bind the app again."
                        .into(),
                    from_ip: None,
                });
                out.push(entry);
                continue;
            }
        };
        let checked = async {
            let client = st.wecom.get(&opened.corpid, &opened.secret)?;
            let agent = client.agent_get(opened.agentid).await?;
            let o = check_nested(main, main_agentid, &client, &agent).await?;
            Ok::<_, wecom::Error>((agent.name, o))
        }
        .await;
        match checked {
            Ok((name, o)) => {
                entry.name = name;
                entry.outsiders = Ok(o);
            }
            Err(e) => entry.outsiders = Err(crate::doctor::failure(&e)),
        }
        out.push(entry);
    }
    Ok(out)
}

/// A full sync's warning for a bound app that reaches outside the main scope now, or
/// could not be checked.
/// (English, Chinese)
pub fn drift_warning(a: &BoundAppScope) -> Option<(String, String)> {
    match &a.outsiders {
        Ok(o) if o.is_empty() => None,
        Ok(o) => Some((
            format!(
                "app AgentId {} ({}) reaches outside the main app's scope: {}",
                a.agentid,
                a.name,
                o.message_en()
            ),
            format!(
                "应用 {}（AgentId {}）：{}",
                a.name,
                a.agentid,
                o.message_zh()
            ),
        )),
        Err(f) => Some((
            format!(
                "app AgentId {} ({}): its scope could not be checked: {}",
                a.agentid, a.name, f.message
            ),
            format!(
                "应用 {}（AgentId {}）的可见范围无法检查：{}。{}",
                a.name, a.agentid, f.title_zh, f.message
            ),
        )),
    }
}
