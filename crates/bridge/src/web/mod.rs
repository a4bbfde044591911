//! HTTP: the router, shared extractors, static files.

pub mod admin_session;
pub mod api_keys;
pub mod api_v1;
pub mod app_binding;
pub mod apps;
pub mod audit;
pub mod console;
pub mod cookies;
pub mod error;
pub mod i18n;
pub mod labels;
pub mod login;
pub mod login_config;
pub mod oidc_clients;
pub mod outcome;
pub mod pages;
pub mod security_headers;
pub mod serve;
pub mod settings;
pub mod sync;
pub mod tenant;
pub mod time;
pub mod users;
pub mod users_import;
pub mod wecom_routes;
pub mod workbench;

use crate::app::AppState;
use crate::domain::console_values::{HOME_PATH, OAUTH_CALLBACK_PATH};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::convert::Infallible;
use std::net::SocketAddr;

/// The client's address, for audit entries and sign-in throttling: the TCP peer, or
/// behind a trusted reverse proxy (`trusted_proxies`) the address it forwarded.
pub struct ClientIp(pub Option<String>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Infallible> {
        let Some(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
        else {
            return Ok(ClientIp(None));
        };
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(ClientIp(Some(
            client_ip(peer, &forwarded, &st.cfg.trusted_proxies).to_string(),
        )))
    }
}

/// The client behind `peer`: when `peer` is a trusted proxy, the right-most
/// `X-Forwarded-For` address that is not (a client can prepend anything, so only what
/// the trusted proxies appended counts); otherwise `peer` itself.
pub fn client_ip(
    peer: std::net::IpAddr,
    forwarded: &[&str],
    trusted: &[String],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| {
        trusted
            .iter()
            .filter_map(|t| t.trim().parse::<std::net::IpAddr>().ok())
            .any(|t| t.to_canonical() == ip.to_canonical())
    };
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops = forwarded.iter().flat_map(|h| h.split(',')).map(str::trim);
    for hop in hops.collect::<Vec<_>>().into_iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    return client;
                }
            }
            Err(_) => return client,
        }
    }
    client
}

const CSS: &str = include_str!("../../static/console.css");
const JS: &str = include_str!("../../static/console.js");

async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        JS,
    )
}

async fn root_file(
    st: axum::extract::State<AppState>,
    t: tenant::CurrentTenant,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Result<axum::response::Response, error::WebError> {
    if file.starts_with("WW_verify_") {
        wecom_routes::verify_file(st, t, axum::extract::Path(file)).await
    } else {
        Err(error::WebError::NotFound(format!("/{file}")))
    }
}

pub fn router(st: AppState) -> Router {
    let limit = st.cfg.max_body_bytes;
    Router::new()
        // The workbench for signed-in members; everyone else goes to /login.
        .route("/", get(workbench::home))
        .route("/login", get(login::login_page))
        .route("/login/wecom", get(login::login_wecom))
        .route("/logout", post(login::logout))
        .route(HOME_PATH, get(login::wecom_home))
        .route(OAUTH_CALLBACK_PATH, get(login::callback))
        .route(
            login_config::PATH,
            get(login_config::page).post(login_config::save),
        )
        .route("/console/users", get(users::list).post(users::bulk))
        .route("/console/users/export.csv", get(users::export))
        .route("/console/users/import", get(users_import::form))
        .route("/console/users/{id}", get(users::detail))
        .route("/console/users/{id}/notes", post(users::save_notes))
        .route(
            "/console/users/{id}/sessions/revoke",
            post(users::revoke_session),
        )
        .route(apps::PATH, get(apps::list).post(apps::create))
        .route("/console/apps/new", get(apps::new_page))
        .route("/console/apps/{id}", get(apps::edit).post(apps::update))
        .route("/console/apps/{id}/delete", post(apps::delete))
        .route("/console/apps/{id}/icon", post(apps::upload_icon))
        .route("/console/apps/{id}/wecom", post(app_binding::bind))
        .route("/console/apps/{id}/wecom/unbind", post(app_binding::unbind))
        .route("/apps/{slug}", get(apps::home))
        .route("/apps/{slug}/open", get(apps::open))
        .route("/apps/{slug}/icon", get(apps::uploaded_icon))
        .route("/auth/verify", get(apps::verify))
        .route("/static/icons/{file}", get(apps::builtin_icon))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .route("/{file}", get(root_file))
        .route("/console", get(console::home))
        .route(
            "/console/login",
            get(console::login_page).post(console::login),
        )
        .route("/console/logout", post(console::logout))
        .route(
            "/console/password",
            get(console::password_page).post(console::change_password),
        )
        .route(
            settings::TIME_ZONE_PATH,
            get(settings::time_zone_page).post(settings::save_time_zone),
        )
        .route("/console/setup", get(console::setup_index))
        .route(
            "/console/setup/{step}",
            get(console::setup_step).post(console::setup_post),
        )
        .route("/console/setup/verify-file", post(console::add_verify_file))
        .route(
            "/console/setup/verify-file/delete",
            post(console::delete_verify_file),
        )
        .route(sync::PATH, get(sync::page))
        .route("/console/sync/run", post(sync::start))
        .route("/console/sync/policy", post(sync::save_policy))
        .route("/console/sync/runs/{id}", get(sync::run_page))
        .route("/console/sync/runs/{id}/progress", get(sync::progress))
        .route("/console/sync/runs/{id}/cancel", post(sync::cancel))
        .route("/console/doctor", get(console::doctor_page))
        .route("/console/audit", get(audit::page))
        .route("/console/audit/export.csv", get(audit::export))
        .route(oidc_clients::PATH, get(oidc_clients::list))
        .route("/console/oidc/clients", post(oidc_clients::create))
        .route(
            "/console/oidc/clients/{id}/secret",
            post(oidc_clients::rotate_secret),
        )
        .route(
            "/console/oidc/clients/{id}/delete",
            post(oidc_clients::delete),
        )
        .route("/console/oidc/keys/rotate", post(oidc_clients::rotate_keys))
        .route(api_keys::PATH, get(api_keys::list).post(api_keys::create))
        .route("/console/api-keys/{id}/revoke", post(api_keys::revoke))
        .merge(crate::oidc::routes())
        .merge(crate::ops::routes(&st))
        .merge(api_v1::router(&st))
        .route(
            "/wecom/callback",
            get(wecom_routes::callback_verify).post(wecom_routes::callback_event),
        )
        .route(
            "/wecom/callback/{agentid}",
            get(wecom_routes::callback_verify_app).post(wecom_routes::callback_event_app),
        )
        .fallback(|uri: axum::http::Uri| async move {
            error::WebError::NotFound(uri.path().to_string())
        })
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limit))
        // An import file is larger than any form: its two posts have their own limit.
        .merge(users_import::upload_routes())
        // A stalled body (or a handler stuck on a peer) ends in 408, not a held task.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_millis(st.cfg.request_timeout_ms.max(1)),
        ))
        .layer(axum::middleware::from_fn(i18n::remember_choice))
        .layer(axum::middleware::from_fn_with_state(
            security_headers::SecurityHeaders {
                https: st.cfg.https(),
            },
            security_headers::add,
        ))
        // This instance's member-session checker (signing key, revocation log).
        .layer(axum::Extension(crate::auth::MemberSessions::new(&st.cfg)))
        // This instance's copies of the app catalogue and members' cards (forward auth).
        .layer(axum::Extension(crate::apps::Gate::new()))
        // This instance's opened ID-token signing keys.
        .layer(axum::Extension(crate::oidc::Provider::new()))
        // Outermost: the request id and span around everything, the route's metrics.
        .layer(axum::middleware::from_fn(crate::ops::request::layer))
        .with_state(st)
}

#[cfg(test)]
mod client_ip_tests {
    use super::client_ip;

    #[test]
    fn only_trusted_proxies_are_looked_through() {
        let peer = "10.0.0.2".parse().unwrap();
        let trusted = vec!["10.0.0.2".to_string(), "10.0.0.3".to_string()];
        let ip = |f: &[&str], t: &[String]| client_ip(peer, f, t).to_string();
        // No trusted proxies: the peer, whatever the header says.
        assert_eq!(ip(&["203.0.113.5"], &[]), "10.0.0.2");
        // Behind one trusted proxy: the address it appended.
        assert_eq!(ip(&["203.0.113.5"], &trusted), "203.0.113.5");
        // A client-chosen prefix is ignored: the right-most untrusted address counts.
        assert_eq!(ip(&["1.2.3.4, 203.0.113.5"], &trusted), "203.0.113.5");
        assert_eq!(
            ip(&["1.2.3.4", "203.0.113.5, 10.0.0.3"], &trusted),
            "203.0.113.5"
        );
        // Garbage stops the walk at the last good hop; no header: the proxy itself.
        assert_eq!(ip(&["203.0.113.5, junk"], &trusted), "10.0.0.2");
        assert_eq!(ip(&[], &trusted), "10.0.0.2");
        // IPv4-mapped IPv6 is the IPv4 address.
        assert_eq!(ip(&["::ffff:203.0.113.5"], &trusted), "203.0.113.5");
    }
}
