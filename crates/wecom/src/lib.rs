//! Typed client for the WeCom (企业微信) server API, as a self-built app sees it.
//!
//! No database and no web server here: the token cache, the calls and their errcodes,
//! bounded retries, the callback crypto (WXBizMsgCrypt), change_contact parsing,
//! the JS-SDK signature and the OAuth URL builders.

mod client;
mod error;
pub mod pace;
pub mod stats;
pub mod token;
pub mod types;

pub mod crypto;
pub mod event;
pub mod jssdk;
pub mod oauth;
pub mod ua;

pub use client::{
    default_http_client, Client, ClientBuilder, RetryPolicy, Secret, DEFAULT_API_BASE,
};
pub use error::{explain, ApiError, Error, Explanation};
pub use pace::{CallBudget, Clock, Lease, MemoryCallBudget, Pacer, RateLimits, SystemClock};
pub use stats::{CallStats, EndpointStats, RateWait};
pub use token::{CachedToken, MemoryTokenCache, TokenCache};
