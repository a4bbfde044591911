//! wecom-bridge: the low-code platform's enterprise workbench and identity layer,
//! integrated with a WeCom (企业微信) self-built app.

pub mod config;
pub mod domain;
pub mod seal;
pub mod store;
pub mod testing;
