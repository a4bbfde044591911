//! Simulator knobs: every "Simulator rule" of wecom-api.md that has a setting (§17).
//! Defaults are WeCom's behaviour as the reference describes it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    // --- tokens (§3) ---
    pub token_lifetime_secs: u64,
    /// `true` = constant `expires_in` (the full lifetime) instead of the remaining seconds.
    pub token_expires_in_full: bool,
    pub secret_reset_revokes_tokens: bool,

    // --- contacts (§5) ---
    /// Withheld fields come back as empty strings instead of being absent.
    pub withheld_as_empty: bool,
    pub honour_fetch_child: bool,
    /// 45029 when a user/list answer would hold more members (0 = off).
    pub max_list_members: usize,
    pub omit_last_cursor: bool,

    // --- network (§8) ---
    /// Header naming the caller's IP (e.g. `x-sim-client-ip`); off when empty.
    pub trust_client_ip_header: String,
    pub trusted_ip_delay_secs: u64,
    /// `get_api_domain_ip` answer; empty = the sim's own address.
    pub api_domain_ips: Vec<String>,
    /// `getcallbackip` answer; empty = the sim's own address.
    pub callback_ips: Vec<String>,

    // --- OAuth (§9) ---
    pub require_wxwork_ua: bool,
    pub strict_state: bool,
    /// Web/QR login refuses members outside the scope (`deny`) or issues a code (`allow`).
    pub web_login_out_of_scope_deny: bool,
    pub code_ttl_secs: u64,
    pub user_ticket_ttl_secs: u64,

    // --- JS-SDK (§10) ---
    pub ticket_lifetime_secs: u64,
    pub jsapi_corp_tickets_per_hour: u32,
    pub jsapi_app_tickets_per_hour: u32,

    // --- callbacks (§12, §13) ---
    /// Fixed 16-char random prefix for callback encryption (deterministic tests).
    pub fixed_random: String,
    pub verify_timeout_ms: u64,
    pub delivery_timeout_ms: u64,
    pub retries: u32,
    pub retry_delays_ms: Vec<u64>,
    pub retry_resign: bool,
    pub shuffle: bool,
    pub duplicate: bool,
    /// `update_user` (default) or `delete_user` when a member leaves an app's scope.
    pub scope_exit_event: String,

    // --- rate limits (§16) ---
    pub per_corp_api_per_min: u32,
    pub per_corp_api_per_hour: u32,
    pub per_ip_api_per_min: u32,
    pub per_ip_api_per_hour: u32,
    pub wrong_secret_per_hour: u32,
    pub debug_per_min: u32,
    /// 45033 when more calls of one API run at once for a corp (0 = off).
    pub max_concurrent_per_api: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token_lifetime_secs: 7200,
            token_expires_in_full: false,
            secret_reset_revokes_tokens: false,
            withheld_as_empty: false,
            honour_fetch_child: false,
            max_list_members: 0,
            omit_last_cursor: false,
            trust_client_ip_header: String::new(),
            trusted_ip_delay_secs: 0,
            api_domain_ips: Vec::new(),
            callback_ips: Vec::new(),
            require_wxwork_ua: true,
            strict_state: false,
            web_login_out_of_scope_deny: true,
            code_ttl_secs: 300,
            user_ticket_ttl_secs: 1800,
            ticket_lifetime_secs: 7200,
            jsapi_corp_tickets_per_hour: 400,
            jsapi_app_tickets_per_hour: 100,
            fixed_random: String::new(),
            verify_timeout_ms: 1000,
            delivery_timeout_ms: 5000,
            retries: 3,
            retry_delays_ms: vec![0, 0, 0],
            retry_resign: false,
            shuffle: false,
            duplicate: false,
            scope_exit_event: "update_user".into(),
            per_corp_api_per_min: 10_000,
            per_corp_api_per_hour: 150_000,
            per_ip_api_per_min: 20_000,
            per_ip_api_per_hour: 600_000,
            wrong_secret_per_hour: 2_000,
            debug_per_min: 5,
            max_concurrent_per_api: 0,
        }
    }
}
