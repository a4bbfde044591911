//! The demo's sample app behind forward auth: a tiny web app that knows nothing of WeCom.
//! Like nginx's `auth_request`, it asks the bridge's `/auth/verify` about every request,
//! passing the browser's cookies, and shows the identity headers it gets back — so a
//! newcomer sees who they are, and their groups, arrive in an app.

use askama::Template;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use std::net::SocketAddr;

/// The sample app's short name in the catalogue.
pub const SLUG: &str = "hello";

#[derive(Clone)]
struct Proxy {
    /// Where the bridge listens, and the tenant's domain (its Host).
    bridge: SocketAddr,
    domain: String,
    http: reqwest::Client,
}

#[derive(Template)]
#[template(path = "sample_app.html")]
struct Hello {
    user: String,
    name: String,
    email: String,
    groups: Vec<String>,
    workbench: String,
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> String {
    h.get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

async fn page(State(p): State<Proxy>, uri: Uri, headers: HeaderMap) -> Response {
    let mut req = p
        .http
        .get(format!("http://{}/auth/verify?app={SLUG}&rd=1", p.bridge))
        .header(HOST.as_str(), &p.domain)
        .header(
            "x-forwarded-uri",
            uri.path_and_query().map(|x| x.as_str()).unwrap_or("/"),
        )
        .header("x-forwarded-method", "GET");
    for name in [COOKIE, ACCEPT] {
        if let Some(v) = headers.get(&name) {
            req = req.header(name.as_str(), v.as_bytes());
        }
    }
    let answer = match req.send().await {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("the bridge did not answer forward auth: {e}"),
            )
                .into_response()
        }
    };
    let status = answer.status().as_u16();
    let h = answer.headers().clone();
    match status {
        200 => {
            let groups = header(&h, "remote-groups");
            let mut r = Html(
                Hello {
                    user: header(&h, "remote-user"),
                    name: header(&h, "remote-name"),
                    email: header(&h, "remote-email"),
                    groups: groups
                        .split(',')
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect(),
                    workbench: format!("http://{}/", p.domain),
                }
                .render()
                .unwrap_or_else(|e| format!("template error: {e}")),
            )
            .into_response();
            // A renewed session cookie, as nginx passes it on with `auth_request_set`.
            for c in h.get_all(SET_COOKIE.as_str()) {
                if let Ok(v) = HeaderValue::from_bytes(c.as_bytes()) {
                    r.headers_mut().append(SET_COOKIE, v);
                }
            }
            r
        }
        // Sign-in lives on the bridge's origin: make its relative answer absolute.
        302 => {
            let loc = header(&h, "location");
            let to = if loc.starts_with('/') {
                format!("http://{}{loc}", p.domain)
            } else {
                loc
            };
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(LOCATION, v);
            }
            r
        }
        _ => {
            let ct = header(&h, "content-type");
            let body = answer.bytes().await.unwrap_or_default();
            let mut r = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                body,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&ct) {
                r.headers_mut().insert(CONTENT_TYPE, v);
            }
            r
        }
    }
}

/// Serves the sample app on `listener` until the task is dropped or aborted.
pub fn spawn(
    listener: tokio::net::TcpListener,
    bridge: SocketAddr,
    domain: String,
) -> tokio::task::JoinHandle<()> {
    let proxy = Proxy {
        bridge,
        domain,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default(),
    };
    let app = Router::new().fallback(page).with_state(proxy);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}
