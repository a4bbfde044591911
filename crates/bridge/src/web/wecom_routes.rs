//! What WeCom itself requests on the tenant's domain: the domain-verification file at
//! the root, and the callback URL's verification handshake.

use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::domain::integration::{callback_timestamp_fresh, IntegrationRole, CALLBACK_WINDOW_SECS};
use crate::domain::now_ms;
use crate::store::IntegrationRecord;
use crate::web::error::WebError;
use crate::web::tenant::CurrentTenant;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

/// `GET /WW_verify_<token>.txt`: the body is the token, as plain text.
pub async fn verify_file(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    Path(file): Path<String>,
) -> Result<Response, WebError> {
    let content = st
        .store
        .verify_file(t.id, &file)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("/{file}")))?;
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], content).into_response())
}

/// Query parameters WeCom sends, percent-decoded exactly once. A form decoder would turn
/// `+` into a space and break the echostr (wecom-api.md §12.4), so `+` stays `+`.
pub fn callback_params(raw: &str) -> std::collections::HashMap<String, String> {
    raw.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

// Callbacks per app: one callback URL per WeCom app, `/wecom/callback/{agentid}`, with
// `/wecom/callback` kept for the main app (wecom-api.md §12.4, §12.5). Not one URL routing
// by the envelope's AgentID, because:
// - the URL verification GET (§12.4) carries no envelope: only msg_signature, timestamp,
//   nonce and echostr. One shared URL would have to try every app's Token until a
//   signature matched;
// - on POST only `<Encrypt>` is signed (§12.5): `<AgentID>` is unauthenticated routing
//   data, and each app has its own Token and EncodingAESKey, so the keys to check the
//   signature with must be chosen before anything in the body can be trusted;
// - callbacks without an AgentID (the contact-sync URL, §12.2) would need a special case.
// With the agentid in the path, the integration and its keys are known from the URL alone,
// for GET and POST alike, and a wrong or unknown agentid is a plain 404.

/// Where WeCom should send `agentid`'s callbacks (the main app also answers on the
/// historical `/wecom/callback`).
pub fn callback_path(agentid: i64) -> String {
    format!("/wecom/callback/{agentid}")
}

/// The integration a callback URL serves and its message crypt.
async fn callback_crypt(
    st: &AppState,
    tenant_id: i64,
    agentid: Option<&str>,
) -> Result<(IntegrationRecord, wecom::crypto::MsgCrypt), WebError> {
    let rec = match agentid {
        None => st.store.main_integration(tenant_id).await?.ok_or_else(|| {
            WebError::NotFound("no WeCom integration is configured for this tenant".into())
        })?,
        Some(a) => {
            let unknown = || WebError::NotFound(format!("no WeCom app {a:?} for this tenant"));
            let a = a.parse::<i64>().map_err(|_| unknown())?;
            st.store
                .integration(tenant_id, a)
                .await?
                .ok_or_else(unknown)?
        }
    };
    let opened = st
        .open_integration(&rec)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let crypt = wecom::crypto::MsgCrypt::new(
        &opened.callback_token,
        &opened.callback_aes_key,
        &opened.corpid,
    )
    .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok((rec, crypt))
}

/// `GET /wecom/callback`: the main app's URL verification.
pub async fn callback_verify(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    verify(&st, t.id, None, q).await
}

/// `GET /wecom/callback/{agentid}`: one app's URL verification.
pub async fn callback_verify_app(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    Path(agentid): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    verify(&st, t.id, Some(&agentid), q).await
}

/// `POST /wecom/callback`: an event for the main app.
pub async fn callback_event(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    RawQuery(q): RawQuery,
    body: String,
) -> Result<Response, WebError> {
    event(&st, t.id, None, q, &body).await
}

/// `POST /wecom/callback/{agentid}`: an event for one app.
pub async fn callback_event_app(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    Path(agentid): Path<String>,
    RawQuery(q): RawQuery,
    body: String,
) -> Result<Response, WebError> {
    event(&st, t.id, Some(&agentid), q, &body).await
}

/// WeCom's URL verification. Signature first, then decrypt and answer the plaintext byte
/// for byte.
async fn verify(
    st: &AppState,
    tenant_id: i64,
    agentid: Option<&str>,
    q: Option<String>,
) -> Result<Response, WebError> {
    let p = callback_params(q.as_deref().unwrap_or(""));
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let (rec, crypt) = callback_crypt(st, tenant_id, agentid).await?;
    match crypt.verify_url(
        get("msg_signature"),
        get("timestamp"),
        get("nonce"),
        get("echostr"),
    ) {
        Ok(_) if !callback_timestamp_fresh(get("timestamp"), now_ms()) => {
            Err(stale(tenant_id, get("timestamp")))
        }
        Ok(plain) => {
            st.store
                .set_callback_verified(tenant_id, rec.agentid, now_ms())
                .await?;
            let detail = match rec.role {
                IntegrationRole::Main => "WeCom verified the callback URL".to_string(),
                IntegrationRole::App => {
                    format!("WeCom verified the callback URL of app {}", rec.agentid)
                }
            };
            st.store
                .audit(&NewAudit {
                    tenant_id,
                    actor: "wecom".into(),
                    action: "wecom.callback.verified",
                    detail,
                    ip: None,
                })
                .await?;
            Ok(([(CONTENT_TYPE, "text/plain")], plain).into_response())
        }
        Err(e) => {
            tracing::warn!(
                tenant = tenant_id,
                agentid = rec.agentid,
                code = e.code(),
                "callback URL verification refused"
            );
            Err(WebError::Forbidden(format!(
                "callback verification failed ({}): {}",
                e.code(),
                e.explain().1
            )))
        }
    }
}

/// An encrypted event. The signature is checked first (a bad one changes nothing: 403),
/// then the message is decrypted (receive id = CorpID) and stored; WeCom gets its 200 at
/// once and the change is applied in the background.
async fn event(
    st: &AppState,
    tenant_id: i64,
    agentid: Option<&str>,
    q: Option<String>,
    body: &str,
) -> Result<Response, WebError> {
    let p = callback_params(q.as_deref().unwrap_or(""));
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let (rec, crypt) = callback_crypt(st, tenant_id, agentid).await?;
    let refuse = |e: wecom::crypto::CryptoError, forbidden: bool| {
        tracing::warn!(
            tenant = tenant_id,
            agentid = rec.agentid,
            code = e.code(),
            "callback event refused"
        );
        let msg = format!("callback refused ({}): {}", e.code(), e.explain().1);
        if forbidden {
            WebError::Forbidden(msg)
        } else {
            WebError::BadRequest(msg)
        }
    };
    let encrypt = wecom::crypto::extract_encrypt(body).map_err(|e| refuse(e, false))?;
    crypt
        .verify_signature(
            get("msg_signature"),
            get("timestamp"),
            get("nonce"),
            &encrypt,
        )
        .map_err(|e| refuse(e, true))?;
    // Checked after the signature, so the timestamp is WeCom's own. A re-delivery within
    // the window is a duplicate, which `receive` keeps idempotent.
    if !callback_timestamp_fresh(get("timestamp"), now_ms()) {
        return Err(stale(tenant_id, get("timestamp")));
    }
    let xml = crypt.decrypt(&encrypt).map_err(|e| refuse(e, false))?;
    match rec.role {
        IntegrationRole::Main => {
            crate::sync::incremental::receive(st, tenant_id, &xml)
                .await
                .map_err(|e| WebError::Internal(e.explain().0))?;
        }
        // The directory follows the main app's callbacks: a model app's scope lies inside
        // the main app's, and WeCom sends a change to every app whose scope holds the
        // object, so the main app hears it too. A model app's events are verified and
        // acknowledged here; re-checking its nested scope on them is issue 14's drift work.
        IntegrationRole::App => {
            tracing::debug!(
                tenant = tenant_id,
                agentid = rec.agentid,
                "callback of a model app acknowledged"
            );
        }
    }
    Ok(([(CONTENT_TYPE, "text/plain")], "").into_response())
}

/// A correctly signed callback from outside the time window: a captured request replayed.
fn stale(tenant_id: i64, timestamp: &str) -> WebError {
    tracing::warn!(
        tenant = tenant_id,
        timestamp,
        "callback refused: its timestamp is more than a day from now (a replayed request?)"
    );
    WebError::Forbidden(format!(
        "callback refused: timestamp {timestamp:?} is more than {} hours from this server's clock",
        CALLBACK_WINDOW_SECS / 3600
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn plus_survives_decoding() {
        let p = super::callback_params("echostr=a%2Bb+c%3D&nonce=1");
        assert_eq!(p["echostr"], "a+b+c=");
        assert_eq!(p["nonce"], "1");
    }
}
