//! Binding a catalogue app to its own WeCom self-built app, from the app's edit page:
//! parse the form, call `crate::app_binding`, and show the page again with the outcome
//! (a refusal names every outsider; the Secret is never sent back).

use crate::app::AppState;
use crate::app_binding::{self, BindInput};
use crate::domain::apps::AppDraft;
use crate::setup::Actor;
use crate::web::admin_session::AdminForm;
use crate::web::apps::{edit_page_with, BindView, PATH};
use crate::web::error::{bind_refusal, WebError};
use crate::web::i18n::Lang;
use crate::web::ClientIp;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct BindForm {
    #[serde(default)]
    agentid: String,
    #[serde(default)]
    secret: String,
}

/// `POST /console/apps/{id}/wecom`: checks the WeCom app live and binds it.
pub async fn bind(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
    f: AdminForm<BindForm>,
) -> Result<Response, WebError> {
    let admin = &f.admin;
    let actor = Actor {
        name: admin.actor(),
        ip,
    };
    let input = BindInput {
        agentid: f.form.agentid.clone(),
        secret: f.form.secret.clone(),
    };
    let refusal = match app_binding::bind(&st, &admin.tenant, id, &input, &actor).await {
        Ok(_) => return Ok(Redirect::to(&format!("{PATH}/{id}#wecom")).into_response()),
        Err(e) => match bind_refusal(&e, l) {
            Some(r) => r,
            None => return Err(e.into()),
        },
    };
    let app = st
        .store
        .app_by_id(admin.tenant.id, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("app #{id}")))?;
    let bind = BindView {
        error: Some(refusal),
        agentid: f.form.agentid.trim().to_string(),
    };
    edit_page_with(
        &st,
        l,
        admin,
        Some(id),
        AppDraft::from(&app),
        None,
        None,
        bind,
    )
    .await
}

#[derive(Deserialize)]
pub struct Empty {}

/// `POST /console/apps/{id}/wecom/unbind`: the app's home page signs in through the main
/// app again; the WeCom app's sealed Secret is deleted.
pub async fn unbind(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<i64>,
    f: AdminForm<Empty>,
) -> Result<Response, WebError> {
    let actor = Actor {
        name: f.admin.actor(),
        ip,
    };
    app_binding::unbind(&st, &f.admin.tenant, id, &actor).await?;
    Ok(Redirect::to(&format!("{PATH}/{id}#wecom")).into_response())
}
