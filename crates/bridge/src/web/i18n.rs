//! Chinese (default for a WeCom tenant) and English. Templates show both strings at
//! each place and pick one with `l.t("中文", "English")`, which keeps each text next to
//! its translation.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
    pub fn html_lang(&self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
    pub fn is_zh(&self) -> bool {
        *self == Lang::Zh
    }
    fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// `?lang=` wins, then the `lang` cookie; Chinese otherwise.
impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(q) = parts.uri.query() {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                if k == "lang" {
                    if let Some(l) = Lang::parse(&v) {
                        return Ok(l);
                    }
                }
            }
        }
        Ok(crate::web::cookies::get(&parts.headers, "lang")
            .and_then(|v| Lang::parse(&v))
            .unwrap_or_default())
    }
}

/// Makes `?lang=zh|en` stick: the choice is remembered in the `lang` cookie, so the next
/// link or form post stays in the same language.
pub async fn remember_choice(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let chosen = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::parse(&v))
    });
    let mut resp = next.run(req).await;
    if let Some(l) = chosen {
        let cookie = format!("lang={}; Path=/; Max-Age=31536000; SameSite=Lax", l.code());
        if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(axum::http::header::SET_COOKIE, v);
        }
    }
    resp
}
