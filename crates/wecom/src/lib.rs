//! Typed client for the WeCom (企业微信) server API, as a self-built app sees it.
//!
//! No database and no web server here: the token cache, the calls and their errcodes,
//! bounded retries, the callback crypto (WXBizMsgCrypt), change_contact parsing,
//! the JS-SDK signature and the OAuth URL builders.

pub mod crypto;
pub mod event;
pub mod jssdk;
pub mod oauth;
pub mod ua;
