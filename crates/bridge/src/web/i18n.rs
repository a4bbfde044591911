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

/// `?lang=` wins, then the `lang` cookie (the person's own choice), then the browser's
/// `Accept-Language`; Chinese otherwise.
impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::of_request(&parts.uri, &parts.headers))
    }
}

impl Lang {
    /// The language of a request, as the extractor picks it.
    pub fn of_request(uri: &axum::http::Uri, headers: &axum::http::HeaderMap) -> Lang {
        if let Some(q) = uri.query() {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                if k == "lang" {
                    if let Some(l) = Lang::parse(&v) {
                        return l;
                    }
                }
            }
        }
        crate::web::cookies::get(headers, "lang")
            .and_then(|v| Lang::parse(&v))
            .or_else(|| {
                headers
                    .get(axum::http::header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(from_accept_language)
            })
            .unwrap_or_default()
    }
}

/// The preferred of Chinese and English in an `Accept-Language` header (RFC 9110: the
/// highest `q`, the first listed on a tie); `None` when it names neither.
pub fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, u16)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .next()
            .map(|q| (q.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0) * 1000.0) as u16)
            .unwrap_or(1000);
        let primary = tag.split('-').next().unwrap_or("");
        let lang = match primary {
            "zh" => Lang::Zh,
            "en" => Lang::En,
            _ => continue,
        };
        if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((lang, q));
        }
    }
    best.map(|(l, _)| l)
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
    // Pages follow Accept-Language (until a choice is made): caches must know.
    let html = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        resp.headers_mut().append(
            axum::http::header::VARY,
            axum::http::HeaderValue::from_static("Accept-Language, Cookie"),
        );
    }
    if let Some(l) = chosen {
        let cookie = format!("lang={}; Path=/; Max-Age=31536000; SameSite=Lax", l.code());
        if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(axum::http::header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_zh_and_en() {
        assert_eq!(from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(
            from_accept_language("fr-FR, en;q=0.5, zh;q=0.4"),
            Some(Lang::En)
        );
        assert_eq!(
            from_accept_language("en;q=0.2, zh-TW;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(from_accept_language("de, fr;q=0.5"), None);
        assert_eq!(from_accept_language("en;q=0, zh;q=0.1"), Some(Lang::Zh));
        assert_eq!(from_accept_language(""), None);
        assert_eq!(from_accept_language("*"), None);
    }
}
