//! What WeCom itself requests on the tenant's domain: the domain-verification file at
//! the root, and the callback URL's verification handshake.

use crate::app::AppState;
use crate::domain::audit::NewAudit;
use crate::domain::integration::{callback_timestamp_fresh, CALLBACK_WINDOW_SECS};
use crate::domain::now_ms;
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

/// `GET /wecom/callback`: WeCom's URL verification. Signature first, then decrypt and
/// answer the plaintext byte for byte.
pub async fn callback_verify(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let p = callback_params(q.as_deref().unwrap_or(""));
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let rec = st.store.integration(t.id).await?.ok_or_else(|| {
        WebError::NotFound("no WeCom integration is configured for this tenant".into())
    })?;
    let opened = st
        .open_integration(&rec)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let crypt = wecom::crypto::MsgCrypt::new(
        &opened.callback_token,
        &opened.callback_aes_key,
        &opened.corpid,
    )
    .map_err(|e| WebError::Internal(e.to_string()))?;
    match crypt.verify_url(
        get("msg_signature"),
        get("timestamp"),
        get("nonce"),
        get("echostr"),
    ) {
        Ok(_) if !callback_timestamp_fresh(get("timestamp"), now_ms()) => {
            Err(stale(t.id, get("timestamp")))
        }
        Ok(plain) => {
            st.store.set_callback_verified(t.id, now_ms()).await?;
            st.store
                .audit(&NewAudit {
                    tenant_id: t.id,
                    actor: "wecom".into(),
                    action: "wecom.callback.verified",
                    detail: "WeCom verified the callback URL".into(),
                    ip: None,
                })
                .await?;
            Ok(([(CONTENT_TYPE, "text/plain")], plain).into_response())
        }
        Err(e) => {
            tracing::warn!(
                tenant = t.id,
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

/// `POST /wecom/callback`: an encrypted event. The signature is checked first (a bad
/// one changes nothing: 403), then the message is decrypted (receive id = CorpID) and
/// stored; WeCom gets its 200 at once and the change is applied in the background.
pub async fn callback_event(
    State(st): State<AppState>,
    CurrentTenant(t): CurrentTenant,
    RawQuery(q): RawQuery,
    body: String,
) -> Result<Response, WebError> {
    let p = callback_params(q.as_deref().unwrap_or(""));
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let rec = st.store.integration(t.id).await?.ok_or_else(|| {
        WebError::NotFound("no WeCom integration is configured for this tenant".into())
    })?;
    let opened = st
        .open_integration(&rec)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let crypt = wecom::crypto::MsgCrypt::new(
        &opened.callback_token,
        &opened.callback_aes_key,
        &opened.corpid,
    )
    .map_err(|e| WebError::Internal(e.to_string()))?;
    let refuse = |e: wecom::crypto::CryptoError, forbidden: bool| {
        tracing::warn!(tenant = t.id, code = e.code(), "callback event refused");
        let msg = format!("callback refused ({}): {}", e.code(), e.explain().1);
        if forbidden {
            WebError::Forbidden(msg)
        } else {
            WebError::BadRequest(msg)
        }
    };
    let encrypt = wecom::crypto::extract_encrypt(&body).map_err(|e| refuse(e, false))?;
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
        return Err(stale(t.id, get("timestamp")));
    }
    let xml = crypt.decrypt(&encrypt).map_err(|e| refuse(e, false))?;
    crate::sync::incremental::receive(&st, t.id, &xml)
        .await
        .map_err(|e| WebError::Internal(e.explain().0))?;
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
