//! Plain types and rules of the product: tenants and editions, the WeCom integration
//! settings, what the admin must paste into WeCom, doctor checks, audit entries.
//! No HTTP and no SQL here.

pub mod api_key;
pub mod apps;
pub mod audit;
pub mod consent;
pub mod console_values;
pub mod directory;
pub mod doctor;
pub mod integration;
pub mod login;
pub mod nested_scope;
pub mod oauth_state;
pub mod oidc;
pub mod return_path;
pub mod setup_progress;
pub mod tenant;
pub mod throttle;
pub mod user;

/// Unix milliseconds.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
