//! Console → OIDC clients: register relying parties, rotate their secrets, rotate the
//! signing keys. Handlers parse, call `oidc::clients`, render.

use crate::app::AppState;
use crate::domain::oidc::{Client, ClientKind, SigningAlg};
use crate::oidc::clients::{self, NewClient};
use crate::web::admin_session::{Admin, AdminForm};
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::pages::{render, Nav};
use crate::web::ClientIp;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub const PATH: &str = "/console/oidc";

#[derive(Template)]
#[template(path = "oidc_clients.html")]
pub struct ClientsPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub issuer: String,
    pub clients: Vec<Client>,
    /// (client_id, secret) just created or rotated: shown once.
    pub shown_secret: Option<(String, Option<String>)>,
    pub error: Option<String>,
}

async fn page(
    st: &AppState,
    l: Lang,
    admin: &Admin,
    shown_secret: Option<(String, Option<String>)>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let clients = st.store.list_oidc_clients(admin.tenant.id).await?;
    let issuer = crate::oidc::issuer(st, &admin.tenant).unwrap_or_default();
    let mut r = render(&ClientsPage {
        l,
        nav: Some(admin.nav("oidc")),
        csrf: admin.csrf().to_string(),
        issuer,
        clients,
        error: error.clone(),
        shown_secret: shown_secret.clone(),
    });
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    if shown_secret.is_some() {
        r.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
    Ok(r)
}

pub async fn list(State(st): State<AppState>, l: Lang, admin: Admin) -> Result<Response, WebError> {
    page(&st, l, &admin, None, None).await
}

#[derive(Deserialize)]
pub struct ClientForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    #[serde(default)]
    id_token_alg: String,
    #[serde(default)]
    synthesize_email: Option<String>,
    #[serde(default)]
    email_domain: String,
    #[serde(default)]
    groups_full_path: Option<String>,
}

pub async fn create(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<ClientForm>,
) -> Result<Response, WebError> {
    let form = &f.form;
    let app_id = match form.app_id.trim() {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                return page(
                    &st,
                    l,
                    &f.admin,
                    None,
                    Some("the app id must be a number".into()),
                )
                .await
            }
        },
    };
    let n = NewClient {
        name: form.name.clone(),
        app_id,
        kind: ClientKind::parse(&form.kind),
        redirect_uris: form.redirect_uris.clone(),
        post_logout_redirect_uris: form.post_logout_redirect_uris.clone(),
        id_token_alg: SigningAlg::parse(&form.id_token_alg),
        synthesize_email: form.synthesize_email.is_some(),
        email_domain: form.email_domain.clone(),
        groups_full_path: form.groups_full_path.is_some(),
    };
    match clients::register(&st, f.admin.tenant.id, &f.admin.actor(), ip, &n).await? {
        Ok(reg) => {
            page(
                &st,
                l,
                &f.admin,
                Some((reg.client.client_id, reg.secret)),
                None,
            )
            .await
        }
        Err(e) => page(&st, l, &f.admin, None, Some(e)).await,
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn rotate_secret(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    Path(client_id): Path<String>,
    f: AdminForm<Empty>,
) -> Result<Response, WebError> {
    let secret =
        clients::rotate_secret(&st, f.admin.tenant.id, &client_id, &f.admin.actor(), ip).await?;
    match secret {
        Some(s) => page(&st, l, &f.admin, Some((client_id, Some(s))), None).await,
        None => Err(WebError::NotFound(format!(
            "confidential client {client_id}"
        ))),
    }
}

pub async fn delete(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(client_id): Path<String>,
    f: AdminForm<Empty>,
) -> Result<Response, WebError> {
    clients::delete(&st, f.admin.tenant.id, &client_id, &f.admin.actor(), ip).await?;
    Ok(Redirect::to(PATH).into_response())
}

pub async fn rotate_keys(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    f: AdminForm<Empty>,
) -> Result<Response, WebError> {
    let now = crate::oidc::now_ms(&st);
    let mut kids = Vec::new();
    for alg in SigningAlg::ALL {
        kids.push(crate::oidc::keys::rotate(&st, f.admin.tenant.id, alg, now).await?);
    }
    st.store
        .audit(&crate::domain::audit::NewAudit {
            tenant_id: f.admin.tenant.id,
            actor: f.admin.actor(),
            action: "oidc.keys_rotated",
            detail: kids.join(", "),
            ip,
        })
        .await?;
    Ok(Redirect::to(PATH).into_response())
}
