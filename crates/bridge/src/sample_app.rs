//! The demo's sample app: a tiny web app that knows nothing of WeCom, reached two ways.
//!
//! - Behind forward auth: like nginx's `auth_request`, it asks the bridge's `/auth/verify`
//!   about every request, passing the browser's cookies, and shows the identity headers it
//!   gets back.
//! - As an OpenID Connect client (`/oidc/login`): the authorization code flow with PKCE
//!   against the bridge, then the ID token's claims and userinfo.
//!
//! So a newcomer sees who they are, and their groups, arrive in an app.

use askama::Template;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The sample app's short name in the catalogue.
pub const SLUG: &str = "hello";

/// The sample app's registration as an OIDC client of the bridge.
#[derive(Clone, Debug)]
pub struct SampleOidc {
    pub client_id: String,
    pub client_secret: String,
    /// `{sample app}/oidc/callback`, registered exactly.
    pub redirect_uri: String,
}

#[derive(Clone)]
struct Proxy {
    /// Where the bridge listens, and the tenant's domain (its Host).
    bridge: SocketAddr,
    domain: String,
    http: reqwest::Client,
    oidc: Option<SampleOidc>,
    /// Sign-ins in progress: state → (PKCE verifier, nonce).
    pending: Arc<Mutex<HashMap<String, (String, String)>>>,
}

#[derive(Template)]
#[template(path = "sample_app.html")]
struct Hello {
    user: String,
    name: String,
    email: String,
    groups: Vec<String>,
    workbench: String,
    oidc: bool,
}

#[derive(Template)]
#[template(path = "sample_app_oidc.html")]
struct OidcHello {
    claims: Vec<(String, String)>,
    userinfo: Vec<(String, String)>,
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
                    oidc: p.oidc.is_some(),
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

fn random() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    B64.encode(b)
}

fn bad(status: StatusCode, why: String) -> Response {
    (status, why).into_response()
}

/// Starts the code flow: PKCE S256, a nonce, and the state kept here for the callback.
async fn oidc_login(State(p): State<Proxy>) -> Response {
    let Some(o) = &p.oidc else {
        return bad(
            StatusCode::NOT_FOUND,
            "OpenID Connect is not set up for the sample app".into(),
        );
    };
    let (state, nonce, verifier) = (random(), random(), format!("{}{}", random(), random()));
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    p.pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(state.clone(), (verifier, nonce.clone()));
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", &o.client_id)
        .append_pair("redirect_uri", &o.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email groups")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let to = format!(
        "http://{}{}?{}",
        p.domain,
        crate::oidc::AUTHORIZE_PATH,
        q.finish()
    );
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    iss: String,
    #[serde(default)]
    error: String,
}

fn flatten(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let shown = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), shown)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The redirect back: the state (once), the issuer (RFC 9207), the code exchanged at the
/// token endpoint with the client secret, the nonce and audience checked, then userinfo.
/// The ID token arrives over the direct back channel, so its issuer is the server we asked
/// (OIDC Core 3.1.3.7); the certified client in e2e/oidc.test.js checks signatures too.
async fn oidc_callback(
    State(p): State<Proxy>,
    axum::extract::Query(q): axum::extract::Query<CallbackQuery>,
) -> Response {
    let Some(o) = &p.oidc else {
        return bad(
            StatusCode::NOT_FOUND,
            "OpenID Connect is not set up for the sample app".into(),
        );
    };
    let issuer = format!("http://{}", p.domain);
    if !q.error.is_empty() {
        return bad(
            StatusCode::FORBIDDEN,
            format!("the bridge answered {}", q.error),
        );
    }
    let Some((verifier, nonce)) = p
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&q.state)
    else {
        return bad(StatusCode::BAD_REQUEST, "unknown or used state".into());
    };
    if q.iss != issuer {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("unexpected issuer {:?}", q.iss),
        );
    }
    let token = p
        .http
        .post(format!("http://{}{}", p.bridge, crate::oidc::TOKEN_PATH))
        .header(HOST.as_str(), &p.domain)
        .basic_auth(&o.client_id, Some(&o.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q.code.as_str()),
            ("redirect_uri", o.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await;
    let token: serde_json::Value = match token {
        Ok(r) if r.status().is_success() => r.json().await.unwrap_or_default(),
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            return bad(
                StatusCode::BAD_GATEWAY,
                format!("token endpoint {status}: {body}"),
            );
        }
        Err(e) => return bad(StatusCode::BAD_GATEWAY, format!("token endpoint: {e}")),
    };
    let id_token = token["id_token"].as_str().unwrap_or_default();
    let claims: serde_json::Value = id_token
        .split('.')
        .nth(1)
        .and_then(|b| B64.decode(b).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if claims["nonce"] != nonce.as_str()
        || claims["aud"] != o.client_id.as_str()
        || claims["iss"] != issuer.as_str()
    {
        return bad(
            StatusCode::BAD_GATEWAY,
            "the ID token's nonce, audience or issuer is wrong".into(),
        );
    }
    let userinfo: serde_json::Value = match p
        .http
        .get(format!("http://{}{}", p.bridge, crate::oidc::USERINFO_PATH))
        .header(HOST.as_str(), &p.domain)
        .bearer_auth(token["access_token"].as_str().unwrap_or_default())
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(e) => return bad(StatusCode::BAD_GATEWAY, format!("userinfo: {e}")),
    };
    Html(
        OidcHello {
            claims: flatten(&claims),
            userinfo: flatten(&userinfo),
            workbench: format!("http://{}/", p.domain),
        }
        .render()
        .unwrap_or_else(|e| format!("template error: {e}")),
    )
    .into_response()
}

/// Serves the sample app on `listener` until the task is dropped or aborted.
pub fn spawn(
    listener: tokio::net::TcpListener,
    bridge: SocketAddr,
    domain: String,
    oidc: Option<SampleOidc>,
) -> tokio::task::JoinHandle<()> {
    let proxy = Proxy {
        bridge,
        domain,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default(),
        oidc,
        pending: Arc::default(),
    };
    let app = Router::new()
        .route("/oidc/login", axum::routing::get(oidc_login))
        .route("/oidc/callback", axum::routing::get(oidc_callback))
        .fallback(page)
        .with_state(proxy);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

/// The sample app's client name in the console.
pub const CLIENT_NAME: &str = "你好应用 · sample app (OIDC)";

/// Registers the sample app as a confidential OIDC client of `app_id` (replacing an
/// earlier registration, whose secret this process cannot know: only its hash is stored).
pub async fn register_oidc_client(
    st: &crate::app::AppState,
    tenant_id: i64,
    app_id: i64,
    sample_url: &str,
) -> Result<SampleOidc, String> {
    use crate::oidc::clients;
    for c in st
        .store
        .list_oidc_clients(tenant_id)
        .await
        .map_err(|e| e.to_string())?
    {
        if c.name == CLIENT_NAME {
            clients::delete(st, tenant_id, &c.client_id, "demo", None)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let redirect_uri = format!("{}/oidc/callback", sample_url.trim_end_matches('/'));
    let reg = clients::register(
        st,
        tenant_id,
        "demo",
        None,
        &clients::NewClient {
            name: CLIENT_NAME.into(),
            app_id: Some(app_id),
            kind: Some(crate::domain::oidc::ClientKind::Confidential),
            redirect_uris: redirect_uri.clone(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| e.to_string())??;
    Ok(SampleOidc {
        client_id: reg.client.client_id,
        client_secret: reg.secret.ok_or("a confidential client has a secret")?,
        redirect_uri,
    })
}
