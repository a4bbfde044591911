//! change_contact callbacks (wecom-api.md §12, §13): which apps receive an org change,
//! the event XML per field profile, encryption with the app's Token/EncodingAESKey,
//! and in-order delivery with retries; plus the URL-verification handshake.
//!
//! Interface used by the admin API: take [`snapshot_scopes`] before a mutation, apply it,
//! then call [`emit`] with the change; after releasing the world lock call
//! `Sim::kick_outbox()`.

use crate::model::{Department, Member, Tag, VisibleScope};
use crate::world::World;
use crate::Sim;
use std::collections::HashMap;
use std::sync::Arc;

/// One org change, as the admin API applied it.
#[derive(Clone, Debug)]
pub enum Change {
    /// Create (before None), update (both; a userid change when the userids differ), delete (after None).
    User {
        before: Option<Member>,
        after: Option<Member>,
    },
    Party {
        before: Option<Department>,
        after: Option<Department>,
    },
    Tag {
        before: Option<Tag>,
        after: Option<Tag>,
    },
}

/// Scopes of every app of the corp that has a callback URL, before a change.
pub fn snapshot_scopes(_w: &mut World, _corp: &str) -> HashMap<u32, Arc<VisibleScope>> {
    HashMap::new()
}

/// Queues the events `change` causes for every app whose scope held the object before
/// or after it.
pub fn emit(
    _w: &mut World,
    _corp: &str,
    _change: Change,
    _before: HashMap<u32, Arc<VisibleScope>>,
) {
}

/// Runs WeCom's URL-verification handshake against `url` with the given settings.
pub async fn verify_url(
    _sim: &Sim,
    _corpid: &str,
    _url: &str,
    _token: &str,
    _encoding_aes_key: &str,
) -> Result<(), String> {
    Err("not implemented".into())
}

/// Starts the delivery worker (one per launched simulator).
pub fn spawn_worker(_sim: Sim) {}
