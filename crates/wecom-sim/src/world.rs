//! All mutable simulator state behind one lock: the corps, the sim clock, issued
//! tokens, OAuth codes and tickets, call counters, injected faults and rate-limit windows.
//!
//! Handlers take the lock, do synchronous work and release it before any await, so a
//! plain `std::sync::Mutex` is enough and keeps the hot path cheap.

use crate::model::Corp;
use crate::settings::Settings;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

/// Who a token (or ticket) belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    /// A self-built app, by agentid.
    App { agentid: u32 },
    /// The contact-sync assistant (通讯录同步).
    ContactSync,
    /// A third-party or 代开发 app (tokens minted by the admin API).
    Provider { agentid: u32 },
}

impl Owner {
    pub fn agentid(&self) -> Option<u32> {
        match self {
            Owner::App { agentid } | Owner::Provider { agentid } => Some(*agentid),
            Owner::ContactSync => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TokenInfo {
    /// Lower-cased corpid.
    pub corp: String,
    pub owner: Owner,
    pub issued_ms: u64,
    pub expires_ms: u64,
    /// Invalidated by the admin API or a secret reset: 40014 from now on.
    pub revoked: bool,
}

/// An OAuth code waiting for `auth/getuserinfo` (wecom-api.md §9.3, §17 #34).
#[derive(Clone, Debug)]
pub struct CodeInfo {
    pub corp: String,
    /// The app named by `agentid` at authorize time, if any.
    pub agentid: Option<u32>,
    /// Literal `host[:port]` of the redirect_uri.
    pub redirect_host: String,
    /// `snsapi_base`, `snsapi_privateinfo`, or `web_login`.
    pub scope: String,
    pub web_login: bool,
    /// Member key (lower-cased userid), or None for an outsider.
    pub userid: Option<String>,
    pub openid: Option<String>,
    pub issued_ms: u64,
}

#[derive(Clone, Debug)]
pub struct UserTicket {
    pub corp: String,
    pub agentid: u32,
    pub userid: String,
    pub expires_ms: u64,
}

#[derive(Clone, Debug)]
pub struct TicketInfo {
    pub ticket: String,
    pub expires_ms: u64,
}

/// An injected fault: the next `remaining` calls of `path` (e.g. `user/list`; `*` = any)
/// answer `errcode` instead of running.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fault {
    pub path: String,
    pub errcode: i64,
    pub remaining: u32,
    /// Only calls for this corp (lower-cased), if set.
    #[serde(default)]
    pub corp: Option<String>,
    /// Instead of an errcode, the call runs and its JSON answer is cut in half.
    #[serde(default)]
    pub truncate: bool,
}

/// Latency added before answering calls of `path` (`*` = any).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Latency {
    pub path: String,
    pub ms: u64,
}

/// One attempted callback delivery, kept for tests and the admin API.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRecord {
    /// The outbox sequence number of the event (commit order).
    pub seq: u64,
    pub corp: String,
    pub agentid: u32,
    pub url: String,
    pub change_type: String,
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at_ms: u64,
    /// The injected fault applied to this delivery, if any (e.g. `bad_signature`).
    pub fault: Option<String>,
}

/// open_userid → member key for one (corp, provider).
pub type OpenUseridIndex = std::sync::Arc<HashMap<String, String>>;

pub struct World {
    pub settings: Settings,
    /// Keyed by lower-cased corpid (plain corpids are case-insensitive).
    pub corps: BTreeMap<String, Corp>,
    /// Added to the wall clock; advanced through the admin API so tests never sleep.
    pub clock_offset_ms: i64,
    pub tokens: HashMap<String, TokenInfo>,
    /// The live token of each (corp, owner), reused while valid.
    pub token_of: HashMap<(String, Owner), String>,
    pub codes: HashMap<String, CodeInfo>,
    pub user_tickets: HashMap<String, UserTicket>,
    /// jsapi tickets: key (corp, None) = corp ticket, (corp, Some(agentid)) = agent_config.
    pub tickets: HashMap<(String, Option<u32>), TicketInfo>,
    /// Successful and failed calls per API path (e.g. `user/list`), for benchmarks and tests.
    pub counters: BTreeMap<String, u64>,
    pub faults: Vec<Fault>,
    pub latencies: Vec<Latency>,
    /// Rate-limit windows: key → per-second buckets (second, count).
    pub windows: HashMap<String, std::collections::VecDeque<(u64, u32)>>,
    /// Blocked keys → until (sim ms).
    pub blocks: HashMap<String, u64>,
    /// In-flight calls per (corp, path), for 45033.
    pub in_flight: HashMap<String, u32>,
    pub deliveries: Vec<DeliveryRecord>,
    /// change_contact events waiting for delivery, in commit order (callbacks.rs).
    pub outbox: crate::callbacks::Outbox,
    /// Faults applied to the next matching callback deliveries (callbacks.rs).
    pub callback_faults: VecDeque<crate::callbacks::CallbackFault>,
    /// When each trusted IP was added: (corp, agentid, ip) → sim ms (for `trusted_ip_delay_secs`).
    pub ip_added_ms: HashMap<(String, u32, String), u64>,
    /// The sim's own listening address (for the IP-list endpoints).
    pub self_ip: String,
    /// The sim's own base URL, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
    /// open_userid → member key per (corp, provider id), tagged with the corp generation it
    /// was built at; saves hashing every member on each `batch/openuserid_to_userid` call.
    pub open_userid_index: HashMap<(String, String), (u64, OpenUseridIndex)>,
}

impl World {
    pub fn new(settings: Settings) -> Self {
        World {
            settings,
            corps: BTreeMap::new(),
            clock_offset_ms: 0,
            tokens: HashMap::new(),
            token_of: HashMap::new(),
            codes: HashMap::new(),
            user_tickets: HashMap::new(),
            tickets: HashMap::new(),
            counters: BTreeMap::new(),
            faults: Vec::new(),
            latencies: Vec::new(),
            windows: HashMap::new(),
            blocks: HashMap::new(),
            in_flight: HashMap::new(),
            deliveries: Vec::new(),
            outbox: Default::default(),
            callback_faults: VecDeque::new(),
            ip_added_ms: HashMap::new(),
            self_ip: "127.0.0.1".into(),
            base_url: String::new(),
            open_userid_index: HashMap::new(),
        }
    }

    /// Sim clock in Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        (wall + self.clock_offset_ms).max(0) as u64
    }

    pub fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    pub fn corp(&self, corpid: &str) -> Option<&Corp> {
        self.corps.get(&corpid.to_ascii_lowercase())
    }

    pub fn corp_mut(&mut self, corpid: &str) -> Option<&mut Corp> {
        self.corps.get_mut(&corpid.to_ascii_lowercase())
    }

    pub fn add_corp(&mut self, mut corp: Corp) {
        corp.rebuild_index();
        self.corps.insert(corp.corpid.to_ascii_lowercase(), corp);
    }

    /// Revokes every live token of an owner (admin API "invalidate tokens", secret resets).
    pub fn revoke_tokens(&mut self, corp: &str, owner: Option<&Owner>) {
        let corp = corp.to_ascii_lowercase();
        for t in self.tokens.values_mut() {
            if t.corp == corp && owner.is_none_or(|o| *o == t.owner) {
                t.revoked = true;
            }
        }
        self.token_of
            .retain(|(c, o), _| !(*c == corp && owner.is_none_or(|x| x == o)));
    }
}

const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Random string over `[A-Za-z0-9_-]` (tokens, tickets).
pub fn random_token(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| TOKEN_CHARS[rng.gen_range(0..TOKEN_CHARS.len())] as char)
        .collect()
}

/// Random string over `[A-Za-z0-9]` (nonces, callback random prefixes).
pub fn random_alnum(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
        .collect()
}
