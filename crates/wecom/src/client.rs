//! The WeCom API client for one (corp, app secret).
//!
//! Every call goes through [`Client::call`]: token from the cache (single-flight
//! refresh), one HTTP request with a timeout, errcode check, and the retry policy of
//! wecom-api.md §15: refresh-and-retry-once on 40014/42001, bounded backoff with jitter
//! on -1/45033 and transport errors, never a retry on configuration errors.
//!
//! Before each call the client takes one call of its (corp, API) budget from its
//! [`Pacer`] (wecom-api.md §16), waiting while the budget is spent. A 45009 from WeCom
//! blocks the (corp, API) for its minute window and the call waits and goes on, within
//! the client's `max_rate_wait`; gettoken's 45009 (maybe the 1-hour ban after wrong
//! secrets) is reported at once.

use crate::pace::Pacer;
use crate::stats::CallStats;
use crate::token::{now_ms, CachedToken, MemoryTokenCache, TokenCache};
use crate::types::*;
use crate::{ApiError, Error};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// WeCom's real API base.
pub const DEFAULT_API_BASE: &str = "https://qyapi.weixin.qq.com/cgi-bin/";

/// How failed calls are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt for transient failures (-1, 45033, transport).
    /// 45009 is not retried here: the call waits out the limit's window (see [`Pacer`]).
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in [0, min(max, base·2^attempt)], so synchronized callers spread out.
    fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let ms = cap.as_millis() as u64;
        Duration::from_millis(if ms == 0 {
            0
        } else {
            rand::thread_rng().gen_range(ms / 2..=ms)
        })
    }
}

/// An app secret that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

pub struct ClientBuilder {
    corpid: String,
    secret: Secret,
    api_base: String,
    cache: Option<Arc<dyn TokenCache>>,
    stats: Option<Arc<CallStats>>,
    http: Option<reqwest::Client>,
    timeout: Duration,
    retry: RetryPolicy,
    pacer: Option<Arc<Pacer>>,
    max_rate_wait: Duration,
}

impl ClientBuilder {
    /// The API base, e.g. `https://qyapi.weixin.qq.com/cgi-bin/` or the simulator's.
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into();
        self
    }
    /// Shares tokens with other clients or instances (e.g. a database-backed cache).
    pub fn token_cache(mut self, cache: Arc<dyn TokenCache>) -> Self {
        self.cache = Some(cache);
        self
    }
    /// Counts calls into an existing counter (e.g. one per sync run).
    pub fn stats(mut self, stats: Arc<CallStats>) -> Self {
        self.stats = Some(stats);
        self
    }
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }
    /// Per-request timeout (default 10 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }
    /// Paces calls under a shared budget (default: this client's own, in memory, at
    /// WeCom's limits on the system clock).
    pub fn pacer(mut self, p: Arc<Pacer>) -> Self {
        self.pacer = Some(p);
        self
    }
    /// The longest one call waits for WeCom's rate limits in all (default 10 s: an
    /// interactive call fails with 45009 rather than hang; a sync allows an hour's window).
    pub fn max_rate_wait(mut self, d: Duration) -> Self {
        self.max_rate_wait = d;
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let mut base = url::Url::parse(&self.api_base)
            .map_err(|e| Error::Config(format!("API base URL {:?}: {e}", self.api_base)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "API base URL {:?} must be http(s)",
                self.api_base
            )));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = match self.http {
            Some(h) => h,
            None => default_http_client()?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                cache_key: format!(
                    "{}/{}",
                    self.corpid.to_ascii_lowercase(),
                    secret_fingerprint(&self.secret)
                ),
                corpid: self.corpid,
                secret: self.secret,
                base,
                cache: self
                    .cache
                    .unwrap_or_else(|| Arc::new(MemoryTokenCache::new())),
                stats: self.stats.unwrap_or_default(),
                http,
                timeout: self.timeout,
                retry: self.retry,
                pacer: self.pacer.unwrap_or_else(|| Arc::new(Pacer::in_memory())),
                max_rate_wait: self.max_rate_wait,
                jsapi_ticket: tokio::sync::Mutex::new(None),
                agent_ticket: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

/// A reqwest client with rustls on ring (no OpenSSL anywhere in the tree).
pub fn default_http_client() -> Result<reqwest::Client, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))
}

/// Cache keys hold a short digest of the secret, so a new secret never reuses the old
/// secret's token and the secret itself is never a key.
fn secret_fingerprint(secret: &Secret) -> String {
    use sha1::{Digest, Sha1};
    let d = Sha1::digest(secret.expose().as_bytes());
    hex::encode(&d[..8])
}

/// A cheap-to-clone client for one (corp, secret).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    corpid: String,
    secret: Secret,
    base: url::Url,
    cache_key: String,
    cache: Arc<dyn TokenCache>,
    stats: Arc<CallStats>,
    http: reqwest::Client,
    timeout: Duration,
    retry: RetryPolicy,
    pacer: Arc<Pacer>,
    max_rate_wait: Duration,
    jsapi_ticket: tokio::sync::Mutex<Option<CachedToken>>,
    agent_ticket: tokio::sync::Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("corpid", &self.inner.corpid)
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
}

enum Method<'a> {
    Get,
    Post(&'a Value),
}

impl Client {
    pub fn builder(corpid: impl Into<String>, secret: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            corpid: corpid.into(),
            secret: Secret::new(secret),
            api_base: DEFAULT_API_BASE.into(),
            cache: None,
            stats: None,
            http: None,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            pacer: None,
            max_rate_wait: Duration::from_secs(10),
        }
    }

    pub fn corpid(&self) -> &str {
        &self.inner.corpid
    }

    pub fn api_base(&self) -> &str {
        self.inner.base.as_str()
    }

    /// Per-endpoint call counters of this client.
    pub fn stats(&self) -> &Arc<CallStats> {
        &self.inner.stats
    }

    /// A valid access token: cached, or fetched once for all concurrent callers.
    pub async fn access_token(&self) -> Result<String, Error> {
        if let Some(t) = self.inner.cache.get(&self.inner.cache_key).await {
            return Ok(t.token);
        }
        self.refresh_token(None).await
    }

    async fn refresh_token(&self, stale: Option<&str>) -> Result<String, Error> {
        let fetch = Box::pin(self.gettoken());
        let t = self
            .inner
            .cache
            .refresh(&self.inner.cache_key, stale, fetch)
            .await?;
        Ok(t.token)
    }

    /// `gettoken`, bypassing the cache (the cache calls this). Retries only transient
    /// failures: a wrong corpid or secret is never retried, since every wrong-secret
    /// call moves this IP toward WeCom's 1-hour ban.
    pub async fn gettoken(&self) -> Result<CachedToken, Error> {
        let query = [
            ("corpid", self.inner.corpid.as_str()),
            ("corpsecret", self.inner.secret.expose()),
        ];
        let mut attempt = 0;
        loop {
            let r: Result<TokenResponse, Error> = self.send("gettoken", &query, &Method::Get).await;
            match r {
                Ok(t) if !t.access_token.is_empty() => {
                    metrics::counter!("wecom_token_refreshes_total", "outcome" => "ok")
                        .increment(1);
                    return Ok(CachedToken::from_expires_in(
                        t.access_token,
                        t.expires_in,
                        now_ms(),
                    ));
                }
                Ok(_) => {
                    return Err(Error::Decode {
                        endpoint: "gettoken",
                        detail: "empty access_token".into(),
                    })
                }
                // 45009 at gettoken may be the wrong-secret IP ban: report it, don't retry into it.
                Err(e)
                    if e.is_transient()
                        && e.errcode() != Some(45009)
                        && attempt < self.inner.retry.max_retries =>
                {
                    self.inner.stats.record_retry("gettoken");
                    self.sleep(self.inner.retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    metrics::counter!("wecom_token_refreshes_total", "outcome" => "error")
                        .increment(1);
                    return Err(e);
                }
            }
        }
    }

    /// One authenticated call with the whole retry policy.
    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        params: &[(&str, &str)],
        method: Method<'_>,
    ) -> Result<T, Error> {
        let mut token = self.access_token().await?;
        let mut refreshed = false;
        let mut attempt = 0;
        // Valid sign-in codes are exempt from the limits (§16); the code is one-time anyway.
        let paced = endpoint != "auth/getuserinfo";
        let budget_key = format!("{}/{endpoint}", self.inner.corpid.to_ascii_lowercase());
        let mut waited = Duration::ZERO;
        let mut refused: Option<ApiError> = None;
        loop {
            let permit = if paced {
                let p = self
                    .inner
                    .pacer
                    .acquire(
                        &budget_key,
                        endpoint,
                        &self.inner.stats,
                        self.inner.max_rate_wait,
                        &mut waited,
                    )
                    .await
                    .map_err(|t| {
                        if let Some(e) = refused.take() {
                            return Error::Api(e);
                        }
                        let secs = t.until_ms.saturating_sub(self.inner.pacer.clock().now_ms()) / 1000;
                        Error::Api(ApiError {
                            errcode: 45009,
                            errmsg: format!(
                                "api freq out of limit (the bridge's pacing: the next {endpoint} call is allowed in {secs} s)"
                            ),
                            endpoint,
                        })
                    })?;
                Some(p)
            } else {
                None
            };
            let mut query: Vec<(&str, &str)> = Vec::with_capacity(params.len() + 1);
            query.push(("access_token", token.as_str()));
            query.extend_from_slice(params);
            let sent = self.send::<T>(endpoint, &query, &method).await;
            // Not in flight any more: a wait below must not wait for this call.
            drop(permit);
            match sent {
                Ok(v) => return Ok(v),
                Err(Error::Api(e)) if matches!(e.errcode, 40014 | 42001) && !refreshed => {
                    // Expired or revoked early: drop exactly this token, refresh once, retry once.
                    refreshed = true;
                    self.inner.stats.record_retry(endpoint);
                    self.inner
                        .cache
                        .invalidate(&self.inner.cache_key, &token)
                        .await;
                    token = self.refresh_token(Some(&token)).await?;
                }
                // Over a rate limit: everyone waits out the window, then this call goes on
                // (the pacer bounds the wait by max_rate_wait).
                Err(Error::Api(e)) if e.errcode == 45009 && paced => {
                    self.inner.stats.record_retry(endpoint);
                    tracing::warn!(
                        endpoint,
                        "WeCom answered 45009: waiting for the rate-limit window"
                    );
                    self.inner.pacer.blocked(&budget_key).await;
                    refused = Some(e);
                }
                Err(e) if e.is_transient() && attempt < self.inner.retry.max_retries => {
                    self.inner.stats.record_retry(endpoint);
                    self.sleep(self.inner.retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn sleep(&self, d: Duration) {
        self.inner.pacer.clock().sleep(d).await
    }

    /// One HTTP request and its decoding; counts the call (here and in the `metrics`
    /// facade: calls by endpoint and errcode, and their latency).
    async fn send<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        query: &[(&str, &str)],
        method: &Method<'_>,
    ) -> Result<T, Error> {
        let started = std::time::Instant::now();
        let r = self.send_once(endpoint, query, method).await;
        let errcode = match &r {
            Ok(_) => "0".to_string(),
            Err(Error::Api(e)) => e.errcode.to_string(),
            Err(Error::Transport { .. }) => "transport".to_string(),
            Err(_) => "invalid_answer".to_string(),
        };
        metrics::counter!("wecom_api_calls_total", "endpoint" => endpoint, "errcode" => errcode)
            .increment(1);
        metrics::histogram!("wecom_api_call_duration_seconds", "endpoint" => endpoint)
            .record(started.elapsed().as_secs_f64());
        r
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        query: &[(&str, &str)],
        method: &Method<'_>,
    ) -> Result<T, Error> {
        let url = self
            .inner
            .base
            .join(endpoint)
            .map_err(|e| Error::Config(format!("endpoint {endpoint}: {e}")))?;
        self.inner.stats.record_call(endpoint);
        let started = std::time::Instant::now();
        let req = match method {
            Method::Get => self.inner.http.get(url.clone()),
            Method::Post(body) => self.inner.http.post(url.clone()).json(body),
        };
        let transport = |e: reqwest::Error| {
            // Never the full URL: the query holds the token or the secret. The causes
            // say what happened ("operation timed out", "Connection refused").
            let timeout = e.is_timeout();
            let e = e.without_url();
            let mut detail = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                detail.push_str(": ");
                detail.push_str(&c.to_string());
                cause = c.source();
            }
            if timeout && !detail.contains("timed out") {
                detail.push_str(" (timed out)");
            }
            Error::Transport {
                url: format!("{}{}", self.inner.base, endpoint),
                detail,
            }
        };
        let resp = req
            .query(query)
            .timeout(self.inner.timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        self.inner.stats.record_latency(endpoint, started.elapsed());
        if !status.is_success() {
            self.inner.stats.record_error(endpoint);
            return Err(Error::Decode {
                endpoint,
                detail: format!("HTTP {status}"),
            });
        }
        // Two passes over the bytes, no intermediate Value: the head first (cheap, it
        // skips the rest), then the typed body only on success.
        let head: Head = serde_json::from_slice(&bytes).map_err(|e| {
            self.inner.stats.record_error(endpoint);
            Error::Decode {
                endpoint,
                detail: format!("not JSON: {e}"),
            }
        })?;
        if let Some(code) = head.errcode.filter(|c| *c != 0) {
            self.inner.stats.record_error(endpoint);
            return Err(Error::Api(ApiError {
                errcode: code,
                errmsg: head.errmsg.unwrap_or_default(),
                endpoint,
            }));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            self.inner.stats.record_error(endpoint);
            Error::Decode {
                endpoint,
                detail: e.to_string(),
            }
        })
    }

    // ----- the app -----

    /// `agent/get`: the app's visible scope, domains and home page.
    pub async fn agent_get(&self, agentid: u32) -> Result<Agent, Error> {
        let id = agentid.to_string();
        self.call("agent/get", &[("agentid", &id)], Method::Get)
            .await
    }

    // ----- departments -----

    /// `department/list`: `id` and its descendants, or everything in scope.
    pub async fn department_list(&self, id: Option<u32>) -> Result<Vec<Department>, Error> {
        let id = id.map(|i| i.to_string());
        let params: Vec<(&str, &str)> = id.iter().map(|i| ("id", i.as_str())).collect();
        let r: DepartmentList = self.call("department/list", &params, Method::Get).await?;
        Ok(r.department)
    }

    /// `department/simplelist`: ids, parents and order only.
    pub async fn department_simplelist(
        &self,
        id: Option<u32>,
    ) -> Result<Vec<DepartmentRef>, Error> {
        let id = id.map(|i| i.to_string());
        let params: Vec<(&str, &str)> = id.iter().map(|i| ("id", i.as_str())).collect();
        let r: DepartmentSimpleList = self
            .call("department/simplelist", &params, Method::Get)
            .await?;
        Ok(r.department_id)
    }

    pub async fn department_get(&self, id: u32) -> Result<Department, Error> {
        let id = id.to_string();
        let r: DepartmentGet = self
            .call("department/get", &[("id", &id)], Method::Get)
            .await?;
        Ok(r.department)
    }

    // ----- members -----

    pub async fn user_get(&self, userid: &str) -> Result<Member, Error> {
        self.call("user/get", &[("userid", userid)], Method::Get)
            .await
    }

    /// `user/list`: full member objects of the department's **direct** members.
    pub async fn user_list(&self, department_id: u32) -> Result<Vec<Member>, Error> {
        let id = department_id.to_string();
        let r: UserList<Member> = self
            .call("user/list", &[("department_id", &id)], Method::Get)
            .await?;
        Ok(r.userlist)
    }

    pub async fn user_simplelist(&self, department_id: u32) -> Result<Vec<SimpleMember>, Error> {
        let id = department_id.to_string();
        let r: UserList<SimpleMember> = self
            .call("user/simplelist", &[("department_id", &id)], Method::Get)
            .await?;
        Ok(r.userlist)
    }

    /// One page of `user/list_id` (contact-sync secret only).
    pub async fn user_list_id(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ListIdPage, Error> {
        let mut body = serde_json::Map::new();
        if let Some(c) = cursor.filter(|c| !c.is_empty()) {
            body.insert("cursor".into(), json!(c));
        }
        if let Some(l) = limit {
            body.insert("limit".into(), json!(l));
        }
        let body = Value::Object(body);
        self.call("user/list_id", &[], Method::Post(&body)).await
    }

    /// Every (member, department) row of `user/list_id`, following the cursor to the end.
    pub async fn user_list_id_all(&self) -> Result<Vec<DeptUser>, Error> {
        let mut rows = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.user_list_id(Some(&cursor), None).await?;
            rows.extend(page.dept_user);
            if page.next_cursor.is_empty() {
                return Ok(rows);
            }
            cursor = page.next_cursor;
        }
    }

    // ----- tags -----

    pub async fn tag_list(&self) -> Result<Vec<TagRef>, Error> {
        let r: TagList = self.call("tag/list", &[], Method::Get).await?;
        Ok(r.taglist)
    }

    pub async fn tag_get(&self, tagid: u32) -> Result<Tag, Error> {
        let id = tagid.to_string();
        self.call("tag/get", &[("tagid", &id)], Method::Get).await
    }

    // ----- sign-in -----

    /// `auth/getuserinfo`: exchanges a one-time OAuth code. A member comes back whether or
    /// not they are in the app's visible scope: the caller checks scope itself.
    pub async fn auth_getuserinfo(&self, code: &str) -> Result<UserInfo, Error> {
        let r: RawUserInfo = self
            .call("auth/getuserinfo", &[("code", code)], Method::Get)
            .await?;
        match (r.userid, r.openid) {
            (Some(userid), _) => Ok(UserInfo::Member {
                userid,
                user_ticket: r.user_ticket,
            }),
            (None, Some(openid)) => Ok(UserInfo::NonMember {
                openid,
                external_userid: r.external_userid,
            }),
            (None, None) => Err(Error::Decode {
                endpoint: "auth/getuserinfo",
                detail: "neither userid nor openid".into(),
            }),
        }
    }

    /// `auth/getuserdetail` with a `user_ticket` from a `snsapi_privateinfo` sign-in.
    pub async fn auth_getuserdetail(&self, user_ticket: &str) -> Result<UserDetail, Error> {
        let body = json!({ "user_ticket": user_ticket });
        self.call("auth/getuserdetail", &[], Method::Post(&body))
            .await
    }

    // ----- ids -----

    /// `batch/openuserid_to_userid` for up to 1,000 ids obtained by the app `source_agentid`.
    pub async fn openuserid_to_userid(
        &self,
        open_userids: &[String],
        source_agentid: u32,
    ) -> Result<OpenUserIdConversion, Error> {
        let body = json!({ "open_userid_list": open_userids, "source_agentid": source_agentid });
        self.call("batch/openuserid_to_userid", &[], Method::Post(&body))
            .await
    }

    // ----- network -----

    /// `get_api_domain_ip`: what the API domain resolves to.
    pub async fn get_api_domain_ip(&self) -> Result<Vec<String>, Error> {
        let r: IpList = self.call("get_api_domain_ip", &[], Method::Get).await?;
        Ok(r.ip_list)
    }

    /// `getcallbackip`: the source addresses of WeCom's callbacks.
    pub async fn getcallbackip(&self) -> Result<Vec<String>, Error> {
        let r: IpList = self.call("getcallbackip", &[], Method::Get).await?;
        Ok(r.ip_list)
    }

    // ----- JS-SDK tickets -----

    /// `get_jsapi_ticket` (corp ticket), raw: no caching.
    pub async fn get_jsapi_ticket(&self) -> Result<Ticket, Error> {
        self.call("get_jsapi_ticket", &[], Method::Get).await
    }

    /// `ticket/get?type=agent_config` (app ticket), raw: no caching.
    pub async fn get_agent_config_ticket(&self) -> Result<Ticket, Error> {
        self.call("ticket/get", &[("type", "agent_config")], Method::Get)
            .await
    }

    /// The corp jsapi ticket, cached until shortly before expiry (WeCom allows 400/hour per corp).
    pub async fn jsapi_ticket(&self) -> Result<String, Error> {
        let mut slot = self.inner.jsapi_ticket.lock().await;
        self.cached_ticket(&mut slot, false).await
    }

    /// The app's agent_config ticket, cached (100/hour per app).
    pub async fn agent_config_ticket(&self) -> Result<String, Error> {
        let mut slot = self.inner.agent_ticket.lock().await;
        self.cached_ticket(&mut slot, true).await
    }

    async fn cached_ticket(
        &self,
        slot: &mut Option<CachedToken>,
        agent: bool,
    ) -> Result<String, Error> {
        if let Some(t) = slot.as_ref().filter(|t| t.is_fresh(now_ms())) {
            return Ok(t.token.clone());
        }
        let t = if agent {
            self.get_agent_config_ticket().await?
        } else {
            self.get_jsapi_ticket().await?
        };
        let c = CachedToken::from_expires_in(t.ticket, t.expires_in, now_ms());
        *slot = Some(c.clone());
        Ok(c.token)
    }
}
