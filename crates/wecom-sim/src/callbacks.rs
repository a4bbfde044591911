//! change_contact callbacks (wecom-api.md §12, §13): which apps receive an org change,
//! the event XML per field profile, encryption with the app's Token/EncodingAESKey,
//! and in-order delivery with retries; plus the URL-verification handshake.
//!
//! Interface used by the admin API: take [`snapshot_scopes`] before a mutation, apply it,
//! then call [`emit`] with the change; after releasing the world lock call
//! `Sim::kick_outbox()`. Tests wait for delivery with [`flush`] and inject delivery
//! faults with [`push_fault`].

use crate::model::{
    key, App, CallbackConfig, Corp, Department, ExtAttr, Member, Tag, VisibleScope,
};
use crate::settings::Settings;
use crate::world::{random_alnum, DeliveryRecord, World};
use crate::Sim;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fmt::{Display, Write as _};
use std::sync::Arc;
use std::time::Duration;
use wecom::crypto::{EncryptedMessage, MsgCrypt};

/// One org change, as the admin API applied it.
// Short-lived, one per mutation: boxing the members would only complicate the callers.
#[allow(clippy::large_enum_variant)]
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

/// Which change_contact fields an app receives (§13.3 simulator rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Profile {
    /// Every field: self-built apps created before 2022-06-20.
    #[serde(rename = "legacy")]
    Legacy,
    /// No Avatar, Gender, Mobile, Email, BizMail, Address: apps created after 2022-06-20.
    #[serde(rename = "post-2022-06")]
    Post202206,
    /// IDs only: sync-assistant URLs configured after 2022-08-15.
    #[serde(rename = "sync-assistant-post-2022-08")]
    SyncAssistant202208,
}

impl Profile {
    pub fn of(app: &App) -> Profile {
        if app.post_2022 {
            Profile::Post202206
        } else {
            Profile::Legacy
        }
    }

    fn sensitive(self) -> bool {
        self == Profile::Legacy
    }

    fn ids_only(self) -> bool {
        self == Profile::SyncAssistant202208
    }
}

/// A delivery fault for tests (§12 simulator rule). Each one applies to one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `msg_signature` does not match (−40001 at the receiver).
    BadSignature,
    /// Encrypted for another receive id than the CorpID (−40005).
    WrongReceiveId,
    /// `Encrypt` cut short so it is no longer valid base64 (−40010); signed as sent.
    TruncatedBase64,
    /// The last decrypted byte (the PKCS#7 pad) is 0 (−40008); signed as sent.
    PaddingZero,
    /// The last decrypted byte is 33, beyond the 32-byte block (−40008); signed as sent.
    Padding33,
    /// The event is never sent.
    Drop,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::BadSignature => "bad_signature",
            FaultKind::WrongReceiveId => "wrong_receive_id",
            FaultKind::TruncatedBase64 => "truncated_base64",
            FaultKind::PaddingZero => "padding_zero",
            FaultKind::Padding33 => "padding_33",
            FaultKind::Drop => "drop",
        }
    }
}

/// A queued fault: applies to the next delivered event that matches the filters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackFault {
    pub kind: FaultKind,
    /// Only events for this app; any app when None.
    #[serde(default)]
    pub agentid: Option<u32>,
    /// Only events of this corp (corpid, any case); any corp when None.
    #[serde(default)]
    pub corp: Option<String>,
}

impl CallbackFault {
    pub fn new(kind: FaultKind) -> Self {
        CallbackFault {
            kind,
            agentid: None,
            corp: None,
        }
    }

    fn matches(&self, ev: &OutboxEvent) -> bool {
        self.agentid.is_none_or(|a| a == ev.agentid)
            && self
                .corp
                .as_ref()
                .is_none_or(|c| c.eq_ignore_ascii_case(&ev.corp))
    }
}

/// Queues a fault for the next matching callback delivery.
pub fn push_fault(w: &mut World, fault: CallbackFault) {
    w.callback_faults.push_back(fault);
}

/// The signed request of one delivery: query values and the envelope body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequest {
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
    pub body: String,
}

/// One change_contact event for one app, waiting in the outbox.
#[derive(Clone, Debug)]
pub struct OutboxEvent {
    pub seq: u64,
    /// Lower-cased corpid.
    pub corp: String,
    /// Stored spelling: ToUserName and the receive id.
    pub corpid: String,
    pub agentid: u32,
    pub change_type: String,
    /// The decrypted XML.
    pub plaintext: String,
    pub callback: CallbackConfig,
    /// The random prefix used for the first request (faults re-seal with it).
    pub random: [u8; 16],
    /// The request as built at commit time (timestamp = commit time).
    pub request: SignedRequest,
}

/// The FIFO of events waiting for the delivery worker.
#[derive(Debug, Default)]
pub struct Outbox {
    pub queue: VecDeque<OutboxEvent>,
    /// Events taken by the worker and not finished yet (for [`flush`]).
    pub in_flight: u32,
    pub next_seq: u64,
    /// One worker per world: a second `launch` of the same Sim must not deliver twice.
    pub worker_started: bool,
}

/// Scopes of every app of the corp that has a callback URL, before a change.
pub fn snapshot_scopes(w: &mut World, corp: &str) -> HashMap<u32, Arc<VisibleScope>> {
    let Some(c) = w.corp_mut(corp) else {
        return HashMap::new();
    };
    callback_apps(c)
        .into_iter()
        .map(|(agentid, _, _)| (agentid, c.scope_of(agentid)))
        .collect()
}

/// Enabled apps with a callback URL, by agentid.
fn callback_apps(c: &Corp) -> Vec<(u32, CallbackConfig, Profile)> {
    c.apps
        .values()
        .filter(|a| !a.close)
        .filter_map(|a| {
            a.callback
                .as_ref()
                .filter(|cb| !cb.url.is_empty())
                .map(|cb| (a.agentid, cb.clone(), Profile::of(a)))
        })
        .collect()
}

/// Queues the events `change` causes for every app whose scope held the object before
/// or after it.
pub fn emit(w: &mut World, corp: &str, change: Change, before: HashMap<u32, Arc<VisibleScope>>) {
    let now_s = w.now_secs();
    let exit_delete = w.settings.scope_exit_event == "delete_user";
    let Some(c) = w.corp_mut(corp) else {
        return;
    };
    let corpid = c.corpid.clone();
    let mut built = Vec::new();
    for (agentid, cb, profile) in callback_apps(c) {
        let after = c.scope_of(agentid);
        // An app missing from the snapshot had no callback before: its scope did not change.
        let before = before
            .get(&agentid)
            .cloned()
            .unwrap_or_else(|| after.clone());
        let ctx = Ctx {
            corp: c,
            before: &before,
            after: &after,
            profile,
            exit_delete,
        };
        if let Some((change_type, fields)) = ctx.event(&change) {
            let xml = envelope_plaintext(&corpid, now_s, change_type, &fields);
            built.push((agentid, cb.clone(), change_type, xml));
        }
    }
    for (agentid, callback, change_type, plaintext) in built {
        let random = random_prefix(&w.settings);
        let nonce = random_alnum(16);
        let request = match seal(
            &corpid,
            agentid,
            &callback,
            &plaintext,
            &now_s.to_string(),
            &nonce,
            &random,
            None,
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(agentid, "change_contact not queued: {e}");
                continue;
            }
        };
        let seq = w.outbox.next_seq;
        w.outbox.next_seq += 1;
        w.outbox.queue.push_back(OutboxEvent {
            seq,
            corp: corpid.to_ascii_lowercase(),
            corpid: corpid.clone(),
            agentid,
            change_type: change_type.to_string(),
            plaintext,
            callback,
            random,
            request,
        });
    }
}

/// What one app sees of one change.
struct Ctx<'a> {
    corp: &'a Corp,
    before: &'a VisibleScope,
    after: &'a VisibleScope,
    profile: Profile,
    exit_delete: bool,
}

type Event = (&'static str, String);

impl Ctx<'_> {
    /// The one event (if any) this app gets for `change`.
    fn event(&self, change: &Change) -> Option<Event> {
        match change {
            Change::User { before, after } => self.user(before.as_ref(), after.as_ref()),
            Change::Party { before, after } => self.party(before.as_ref(), after.as_ref()),
            Change::Tag { before, after } => self.tag(before.as_ref(), after.as_ref()),
        }
    }

    fn user(&self, before: Option<&Member>, after: Option<&Member>) -> Option<Event> {
        let held_before = before.filter(|m| self.before.has_user(&key(&m.userid)));
        let held_after = after.filter(|m| self.after.has_user(&key(&m.userid)));
        match (held_before, held_after) {
            (None, None) => None,
            (None, Some(a)) if before.is_none() => Some(("create_user", self.create_fields(a))),
            (Some(b), None) if after.is_none() || self.exit_delete => {
                let mut x = Fields::default();
                x.text("UserID", &b.userid);
                Some(("delete_user", x.0))
            }
            // Left the scope: the still-visible departments, possibly none (§13.3).
            (Some(b), None) => {
                let a = after?;
                let mut x = Fields::default();
                x.text("UserID", &b.userid);
                if a.userid != b.userid {
                    x.text("NewUserID", &a.userid);
                }
                let v = UserView::of(a, self.after);
                x.departments(&v);
                Some(("update_user", x.0))
            }
            // Entered the scope (or stayed): an update with what changed, and always the
            // departments when it is new to the app.
            (b, Some(a)) => {
                let b = b.or(before)?;
                let fields = self.update_fields(b, a, held_before.is_none());
                (!fields.is_empty()).then_some(("update_user", fields))
            }
        }
    }

    /// create_user fields: everything that is set, by profile.
    fn create_fields(&self, m: &Member) -> String {
        let v = UserView::of(m, self.after);
        let mut x = Fields::default();
        x.text("UserID", &m.userid);
        if self.profile.ids_only() {
            x.text("Department", &csv(v.depts.iter().map(|d| d.0)));
            return x.0;
        }
        let sensitive = self.profile.sensitive();
        x.text("Name", &m.name);
        x.text("Department", &csv(v.depts.iter().map(|d| d.0)));
        if let Some(main) = v.main {
            x.num("MainDepartment", main);
        }
        x.text(
            "IsLeaderInDept",
            &csv(v.depts.iter().map(|d| u8::from(d.1))),
        );
        x.set("DirectLeader", &v.leaders.join(","), true);
        x.set("Position", &m.position, true);
        x.set("Mobile", &m.mobile, sensitive);
        if sensitive {
            x.num("Gender", m.gender);
        }
        x.set("Email", &m.email, sensitive);
        x.set("BizMail", &m.biz_mail, sensitive);
        x.num("Status", m.status);
        x.set("Avatar", &m.avatar, sensitive);
        x.set("Alias", &m.alias, true);
        x.set("Telephone", &m.telephone, true);
        x.set("Address", &m.address, sensitive);
        if !m.extattr.is_empty() {
            x.ext_attr(&m.extattr);
        }
        x.0
    }

    /// update_user fields: only what changed as this app sees it; empty when nothing did.
    /// `entering`: the member is new to the app, so its departments always come.
    fn update_fields(&self, b: &Member, a: &Member, entering: bool) -> String {
        let (vb, va) = (UserView::of(b, self.before), UserView::of(a, self.after));
        let renamed = a.userid != b.userid;
        let depts_changed = entering || vb.depts != va.depts;
        let mut x = Fields::default();
        x.text("UserID", &b.userid);
        if renamed {
            x.text("NewUserID", &a.userid);
        }
        let start = x.0.len();
        if self.profile.ids_only() {
            if depts_changed {
                x.departments(&va);
            }
        } else {
            let sensitive = self.profile.sensitive();
            x.changed("Name", &b.name, &a.name, true);
            if depts_changed {
                x.text("Department", &csv(va.depts.iter().map(|d| d.0)));
            }
            if va.main != vb.main {
                if let Some(main) = va.main {
                    x.num("MainDepartment", main);
                }
            }
            if depts_changed {
                x.text(
                    "IsLeaderInDept",
                    &csv(va.depts.iter().map(|d| u8::from(d.1))),
                );
            }
            x.changed(
                "DirectLeader",
                &vb.leaders.join(","),
                &va.leaders.join(","),
                true,
            );
            x.changed("Position", &b.position, &a.position, true);
            x.changed("Mobile", &b.mobile, &a.mobile, sensitive);
            if sensitive && a.gender != b.gender {
                x.num("Gender", a.gender);
            }
            x.changed("Email", &b.email, &a.email, sensitive);
            x.changed("BizMail", &b.biz_mail, &a.biz_mail, sensitive);
            if a.status != b.status {
                x.num("Status", a.status);
            }
            x.changed("Avatar", &b.avatar, &a.avatar, sensitive);
            x.changed("Alias", &b.alias, &a.alias, true);
            x.changed("Telephone", &b.telephone, &a.telephone, true);
            x.changed("Address", &b.address, &a.address, sensitive);
            if a.extattr != b.extattr {
                x.ext_attr(&a.extattr);
            }
        }
        if x.0.len() == start && !renamed {
            return String::new();
        }
        x.0
    }

    fn party(&self, before: Option<&Department>, after: Option<&Department>) -> Option<Event> {
        let held_before = before.filter(|d| self.before.has_dept(d.id));
        let held_after = after.filter(|d| self.after.has_dept(d.id));
        let mut x = Fields::default();
        match (before, after) {
            (None, Some(a)) => {
                held_after?;
                x.num("Id", a.id);
                if !self.profile.ids_only() {
                    x.text("Name", &a.name);
                }
                x.num("ParentId", a.parentid);
                if !self.profile.ids_only() {
                    x.num("Order", a.order);
                }
                Some(("create_party", x.0))
            }
            (Some(b), None) => {
                held_before?;
                x.num("Id", b.id);
                Some(("delete_party", x.0))
            }
            (Some(b), Some(a)) => {
                if held_before.is_none() && held_after.is_none() {
                    return None;
                }
                x.num("Id", a.id);
                let start = x.0.len();
                if a.name != b.name && !self.profile.ids_only() {
                    x.text("Name", &a.name);
                }
                if a.parentid != b.parentid {
                    x.num("ParentId", a.parentid);
                }
                (x.0.len() > start).then_some(("update_party", x.0))
            }
            (None, None) => None,
        }
    }

    fn tag(&self, before: Option<&Tag>, after: Option<&Tag>) -> Option<Event> {
        let id = after.or(before)?.id;
        let empty = Tag::default();
        let (b, a) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
        // Items outside the app's scope are invisible to it, as in tag/get (§4.2).
        let user_seen = |k: &&String| {
            let k = key(k);
            self.before.has_user(&k) || self.after.has_user(&k)
        };
        let dept_seen = |d: &&u32| self.before.has_dept(**d) || self.after.has_dept(**d);
        let add_users: Vec<&String> = a.users.difference(&b.users).filter(user_seen).collect();
        let del_users: Vec<&String> = b.users.difference(&a.users).filter(user_seen).collect();
        let add_parties: Vec<&u32> = a.parties.difference(&b.parties).filter(dept_seen).collect();
        let del_parties: Vec<&u32> = b.parties.difference(&a.parties).filter(dept_seen).collect();
        let any = !(add_users.is_empty()
            && del_users.is_empty()
            && add_parties.is_empty()
            && del_parties.is_empty());
        if !any {
            return None;
        }
        let spell = |k: &String| {
            self.corp
                .member(k)
                .map(|m| m.userid.clone())
                .unwrap_or_else(|| k.clone())
        };
        let mut x = Fields::default();
        x.num("TagId", id);
        if !add_users.is_empty() {
            x.text("AddUserItems", &csv(add_users.into_iter().map(spell)));
        }
        if !del_users.is_empty() {
            x.text("DelUserItems", &csv(del_users.into_iter().map(spell)));
        }
        if !add_parties.is_empty() {
            x.text("AddPartyItems", &csv(add_parties));
        }
        if !del_parties.is_empty() {
            x.text("DelPartyItems", &csv(del_parties));
        }
        Some(("update_tag", x.0))
    }
}

/// A member as one app sees it: visible departments (with leader flags), main
/// department if visible, in-scope direct leaders.
#[derive(PartialEq)]
struct UserView<'a> {
    depts: Vec<(u32, bool)>,
    main: Option<u32>,
    leaders: Vec<&'a str>,
}

impl<'a> UserView<'a> {
    fn of(m: &'a Member, s: &VisibleScope) -> Self {
        UserView {
            depts: m
                .departments
                .iter()
                .filter(|d| s.has_dept(d.id))
                .map(|d| (d.id, d.leader))
                .collect(),
            main: m.main_department.filter(|d| s.has_dept(*d)),
            leaders: m
                .direct_leader
                .iter()
                .filter(|l| s.has_user(&key(l)))
                .map(String::as_str)
                .collect(),
        }
    }
}

fn csv<T: Display>(items: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{item}");
    }
    out
}

/// The XML elements after `ChangeType`.
#[derive(Default)]
struct Fields(String);

impl Fields {
    fn text(&mut self, name: &str, value: &str) {
        let _ = write!(self.0, "<{name}>{}</{name}>", cdata(value));
    }
    /// Create: the field when set and shown by the profile.
    fn set(&mut self, name: &str, value: &str, shown: bool) {
        if shown && !value.is_empty() {
            self.text(name, value);
        }
    }
    /// Update: the new value (possibly empty) when it changed and the profile shows it.
    fn changed(&mut self, name: &str, old: &str, new: &str, shown: bool) {
        if shown && old != new {
            self.text(name, new);
        }
    }
    fn num(&mut self, name: &str, value: impl Display) {
        let _ = write!(self.0, "<{name}>{value}</{name}>");
    }
    fn departments(&mut self, v: &UserView) {
        self.text("Department", &csv(v.depts.iter().map(|d| d.0)));
        self.text(
            "IsLeaderInDept",
            &csv(v.depts.iter().map(|d| u8::from(d.1))),
        );
    }
    fn ext_attr(&mut self, attrs: &[ExtAttr]) {
        self.0.push_str("<ExtAttr>");
        for a in attrs {
            self.0.push_str("<Item>");
            self.text("Name", &a.name);
            if let Some(url) = &a.web_url {
                self.num("Type", 1);
                self.0.push_str("<Web>");
                self.text("Title", a.web_title.as_deref().unwrap_or_default());
                self.text("Url", url);
                self.0.push_str("</Web>");
            } else {
                self.num("Type", 0);
                self.0.push_str("<Text>");
                self.text("Value", a.text.as_deref().unwrap_or_default());
                self.0.push_str("</Text>");
            }
            self.0.push_str("</Item>");
        }
        self.0.push_str("</ExtAttr>");
    }
}

/// CDATA section; a `]]>` inside is split across two sections.
fn cdata(value: &str) -> String {
    format!("<![CDATA[{}]]>", value.replace("]]>", "]]]]><![CDATA[>"))
}

/// The decrypted change_contact document (§13.1 common fields, then the change's own).
fn envelope_plaintext(corpid: &str, create_time: u64, change_type: &str, fields: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime><MsgType>{}</MsgType><Event>{}</Event><ChangeType>{}</ChangeType>{fields}</xml>",
        cdata(corpid),
        cdata("sys"),
        cdata("event"),
        cdata("change_contact"),
        cdata(change_type),
    )
}

/// `fixed_random` (padded or cut to 16 bytes) or 16 fresh alphanumerics.
fn random_prefix(settings: &Settings) -> [u8; 16] {
    let mut out = [b'0'; 16];
    if settings.fixed_random.is_empty() {
        out.copy_from_slice(random_alnum(16).as_bytes());
    } else {
        for (slot, b) in out.iter_mut().zip(settings.fixed_random.bytes()) {
            *slot = b;
        }
    }
    out
}

/// Encrypts, optionally damages (a fault), signs and wraps one event.
#[allow(clippy::too_many_arguments)]
fn seal(
    corpid: &str,
    agentid: u32,
    cb: &CallbackConfig,
    plaintext: &str,
    timestamp: &str,
    nonce: &str,
    random: &[u8; 16],
    fault: Option<FaultKind>,
) -> Result<SignedRequest, String> {
    let receive_id = if fault == Some(FaultKind::WrongReceiveId) {
        // Any other corp's id: what a misconfigured receiver would be sent.
        if corpid.eq_ignore_ascii_case("ww0000000000000000") {
            "ww1111111111111111"
        } else {
            "ww0000000000000000"
        }
    } else {
        corpid
    };
    let crypt = MsgCrypt::new(&cb.token, &cb.encoding_aes_key, receive_id)
        .map_err(|e| format!("bad callback EncodingAESKey: {e}"))?;
    let mut encrypt = crypt.encrypt_with_random(plaintext, random);
    match fault {
        Some(FaultKind::TruncatedBase64) => {
            // Cut to a length no padded base64 can have.
            let mut cut = encrypt.len() / 2;
            if cut % 4 == 0 {
                cut -= 1;
            }
            encrypt.truncate(cut);
        }
        Some(k @ (FaultKind::PaddingZero | FaultKind::Padding33)) => {
            let target: u8 = if k == FaultKind::PaddingZero { 0 } else { 33 };
            let total = 16 + 4 + plaintext.len() + receive_id.len();
            let pad = (32 - total % 32) as u8;
            let mut bytes = STANDARD.decode(&encrypt).map_err(|e| e.to_string())?;
            // CBC: flipping a byte of the previous cipher block flips the same byte of
            // the last plaintext block, so the pad byte becomes `target`.
            let idx = bytes.len() - 17;
            bytes[idx] ^= pad ^ target;
            encrypt = STANDARD.encode(bytes);
        }
        _ => {}
    }
    let mut msg_signature = crypt.signature(timestamp, nonce, &encrypt);
    if fault == Some(FaultKind::BadSignature) {
        let first = if msg_signature.starts_with('0') {
            "1"
        } else {
            "0"
        };
        msg_signature.replace_range(0..1, first);
    }
    let msg = EncryptedMessage {
        encrypt,
        msg_signature,
        timestamp: timestamp.to_string(),
        nonce: nonce.to_string(),
    };
    let body = msg.envelope_xml(corpid, &agentid.to_string());
    Ok(SignedRequest {
        msg_signature: msg.msg_signature,
        timestamp: msg.timestamp,
        nonce: msg.nonce,
        body,
    })
}

/// Runs WeCom's URL-verification handshake against `url` with the given settings:
/// GET `url?msg_signature&timestamp&nonce&echostr` with a random 19-digit plaintext;
/// passes only on HTTP 200 whose body is exactly that plaintext, within `verify_timeout_ms`.
pub async fn verify_url(
    sim: &Sim,
    corpid: &str,
    url: &str,
    token: &str,
    encoding_aes_key: &str,
) -> Result<(), String> {
    let crypt = MsgCrypt::new(token, encoding_aes_key, corpid)
        .map_err(|e| format!("invalid EncodingAESKey: {e}"))?;
    let mut target = url::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(format!(
            "the URL must start with http:// or https://: {url:?}"
        ));
    }
    let (plain, random, nonce, timestamp, timeout_ms) = {
        let w = sim.world();
        let mut rng = rand::thread_rng();
        let plain = format!(
            "{}{:018}",
            rng.gen_range(1..=9u8),
            rng.gen_range(0..1_000_000_000_000_000_000u64)
        );
        (
            plain,
            random_prefix(&w.settings),
            random_alnum(16),
            w.now_secs().to_string(),
            w.settings.verify_timeout_ms,
        )
    };
    let echostr = crypt.encrypt_with_random(&plain, &random);
    let signature = crypt.signature(&timestamp, &nonce, &echostr);
    // Form encoding turns `+`, `/`, `=` into %2B, %2F, %3D, as WeCom sends them.
    target
        .query_pairs_mut()
        .append_pair("msg_signature", &signature)
        .append_pair("timestamp", &timestamp)
        .append_pair("nonce", &nonce)
        .append_pair("echostr", &echostr);
    let fetch = async {
        let resp = sim.http().get(target).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    };
    match tokio::time::timeout(Duration::from_millis(timeout_ms), fetch).await {
        Err(_) => Err(format!("no answer within {timeout_ms} ms")),
        Ok(Err(e)) => Err(format!("request failed: {e}")),
        Ok(Ok((status, _))) if status != reqwest::StatusCode::OK => {
            Err(format!("answered HTTP {}, not 200", status.as_u16()))
        }
        Ok(Ok((_, body))) if body.as_ref() != plain.as_bytes() => {
            let shown = String::from_utf8_lossy(&body[..body.len().min(64)]).into_owned();
            Err(format!(
                "the body must be exactly the decrypted echostr {plain:?}, got {shown:?}"
            ))
        }
        Ok(Ok(_)) => Ok(()),
    }
}

/// Starts the delivery worker (one per world, however often the Sim is launched).
pub fn spawn_worker(sim: Sim) {
    {
        let mut w = sim.world();
        if w.outbox.worker_started {
            return;
        }
        w.outbox.worker_started = true;
    }
    tokio::spawn(async move {
        loop {
            let next = {
                let mut w = sim.world();
                take_next(&mut w)
            };
            match next {
                Some((ev, fault)) => {
                    deliver(&sim, &ev, fault).await;
                    let mut w = sim.world();
                    w.outbox.in_flight = w.outbox.in_flight.saturating_sub(1);
                }
                // A periodic wake-up covers an emitter that forgot to kick the outbox.
                None => {
                    tokio::select! {
                        _ = sim.outbox_ready() => {}
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    });
}

/// Takes the next event (the oldest, or a random one with `shuffle`) and its fault.
fn take_next(w: &mut World) -> Option<(OutboxEvent, Option<FaultKind>)> {
    let n = w.outbox.queue.len();
    let ev = if w.settings.shuffle && n > 1 {
        let i = rand::thread_rng().gen_range(0..n);
        w.outbox.queue.remove(i)?
    } else {
        w.outbox.queue.pop_front()?
    };
    let fault = w
        .callback_faults
        .iter()
        .position(|f| f.matches(&ev))
        .and_then(|i| w.callback_faults.remove(i))
        .map(|f| f.kind);
    w.outbox.in_flight += 1;
    Some((ev, fault))
}

/// Sends one event: POST with retries, every attempt recorded in `world.deliveries`.
async fn deliver(sim: &Sim, ev: &OutboxEvent, fault: Option<FaultKind>) {
    let (retries, delays, resign, timeout_ms, duplicate) = {
        let w = sim.world();
        let s = &w.settings;
        (
            s.retries,
            s.retry_delays_ms.clone(),
            s.retry_resign,
            s.delivery_timeout_ms,
            s.duplicate,
        )
    };
    if fault == Some(FaultKind::Drop) {
        record(
            sim,
            ev,
            0,
            None,
            Some("dropped (injected fault)".into()),
            fault,
        );
        return;
    }
    let first = match fault {
        None => ev.request.clone(),
        Some(_) => match reseal(
            ev,
            &ev.request.timestamp,
            &ev.request.nonce,
            &ev.random,
            fault,
        ) {
            Ok(r) => r,
            Err(e) => {
                record(sim, ev, 0, None, Some(e), fault);
                return;
            }
        },
    };
    for _copy in 0..if duplicate { 2 } else { 1 } {
        let mut req = first.clone();
        for attempt in 0..=retries {
            if attempt > 0 {
                let i = attempt as usize - 1;
                let delay = delays.get(i).or(delays.last()).copied().unwrap_or(0);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                if resign {
                    let (ts, nonce, random) = {
                        let w = sim.world();
                        (
                            w.now_secs().to_string(),
                            random_alnum(16),
                            random_prefix(&w.settings),
                        )
                    };
                    if let Ok(r) = reseal(ev, &ts, &nonce, &random, fault) {
                        req = r;
                    }
                }
            }
            let (status, error) = match post(sim, &ev.callback.url, &req, timeout_ms).await {
                Ok(s) => (Some(s), (s != 200).then(|| format!("HTTP {s}"))),
                Err(e) => (None, Some(e)),
            };
            record(sim, ev, attempt + 1, status, error, fault);
            if status == Some(200) {
                break;
            }
        }
    }
}

fn reseal(
    ev: &OutboxEvent,
    timestamp: &str,
    nonce: &str,
    random: &[u8; 16],
    fault: Option<FaultKind>,
) -> Result<SignedRequest, String> {
    seal(
        &ev.corpid,
        ev.agentid,
        &ev.callback,
        &ev.plaintext,
        timestamp,
        nonce,
        random,
        fault,
    )
}

async fn post(sim: &Sim, url: &str, req: &SignedRequest, timeout_ms: u64) -> Result<u16, String> {
    let mut target = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    target
        .query_pairs_mut()
        .append_pair("msg_signature", &req.msg_signature)
        .append_pair("timestamp", &req.timestamp)
        .append_pair("nonce", &req.nonce);
    let resp = sim
        .http()
        .post(target)
        .header("content-type", "text/xml")
        .body(req.body.clone())
        .timeout(Duration::from_millis(timeout_ms))
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {timeout_ms} ms")
            } else {
                format!("request failed: {e}")
            }
        })?;
    let status = resp.status().as_u16();
    if tracing::enabled!(tracing::Level::DEBUG) {
        // Any 200 counts whatever the body; the body is only logged.
        if let Ok(body) = resp.text().await {
            tracing::debug!(status, body = %body.chars().take(200).collect::<String>(), "callback answered");
        }
    }
    Ok(status)
}

fn record(
    sim: &Sim,
    ev: &OutboxEvent,
    attempt: u32,
    status: Option<u16>,
    error: Option<String>,
    fault: Option<FaultKind>,
) {
    let mut w = sim.world();
    let at_ms = w.now_ms();
    w.deliveries.push(DeliveryRecord {
        seq: ev.seq,
        corp: ev.corp.clone(),
        agentid: ev.agentid,
        url: ev.callback.url.clone(),
        change_type: ev.change_type.clone(),
        attempt,
        status,
        error,
        at_ms,
        fault: fault.map(|f| f.as_str().to_string()),
    });
}

/// Waits until every queued event has been delivered (or given up on). Needs the worker
/// of a launched simulator; wrap it in a timeout when the receiver may hang.
pub async fn flush(sim: &Sim) {
    loop {
        {
            let w = sim.world();
            if w.outbox.queue.is_empty() && w.outbox.in_flight == 0 {
                return;
            }
        }
        sim.kick_outbox();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Events still waiting or being delivered.
pub fn pending(w: &World) -> usize {
    w.outbox.queue.len() + w.outbox.in_flight as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Department, Member};
    use crate::settings::Settings;

    /// Test vector E1 of wecom-api.md §14: vector A's token, key and receive id, random
    /// prefix `0123456789abcdef`, CreateTime 1700000000, a delete_user for zhangsan.
    #[test]
    fn delete_user_matches_vector_e1() {
        let settings = Settings {
            fixed_random: "0123456789abcdef".into(),
            ..Settings::default()
        };
        let mut w = World::new(settings);
        let mut corp = Corp::new("ww1436e0e65a779aee", "示例");
        corp.departments.insert(
            1,
            Department {
                id: 1,
                name: "示例".into(),
                name_en: String::new(),
                parentid: 0,
                order: 0,
                leaders: vec![],
            },
        );
        corp.members
            .insert("zhangsan".into(), Member::new("zhangsan", "张三", &[1]));
        let mut app = App::new(1_000_002, "app", "s");
        app.scope.parties = vec![1];
        app.callback = Some(CallbackConfig {
            url: "http://127.0.0.1:9/cb".into(),
            token: "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo".into(),
            encoding_aes_key: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt".into(),
        });
        corp.apps.insert(app.agentid, app);
        w.add_corp(corp);
        // Put the sim clock half a second into 1700000000.
        w.clock_offset_ms = 1_700_000_000_500 - w.now_ms() as i64;

        let before = snapshot_scopes(&mut w, "WW1436E0E65A779AEE");
        let gone = w
            .corp_mut("ww1436e0e65a779aee")
            .and_then(|c| c.remove_member("zhangsan"));
        emit(
            &mut w,
            "ww1436e0e65a779aee",
            Change::User {
                before: gone,
                after: None,
            },
            before,
        );
        let ev = w.outbox.queue.pop_front().expect("queued");
        assert!(w.outbox.queue.is_empty());
        assert_eq!(
            ev.plaintext,
            "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID></xml>"
        );
        let e1 = "scEag1243Fmy/fYz4Ux8Dxvvexg7xGLX8vQ8OMLbLH7d2NeGEoYxh2WV2PJLfi9u6IkoyLX8YpAOVSZ07OGw7Mza+A3Ad8pdYct59sbWsJZ9DBSGlWNcNOJxeL07sDg4X3X6y40Xs02CCK2OzKeIyg/2OuTX4Bhzt0mTfw226wWOpEYSKLZE4ecCAh10BYfr1p2JBW4cznK+xxZXR2jQWt3qFkUyL5nF0V3PUZvXkpRq3qD4S1/KAxSe0PKo2lJ06EH6LD0Qt/8Boz2yt3BAfgLgyR0VyTWbDGjtfxcJ8gj14MZIugUu+r5Ze1cI60DMfflkusgXw6k6Ls5EtkRJmSsmTPq5jk6OV8R0tDjBWtWf1SCggLtQV9vtBBzQn+PWb0ExUCNRd3HAWwQrh3EyvgWiKfOH7l9Ah8vPxYQZVxlOL9b5vVuj50hbKzwCTIl8kdsvdCzhM5zCvXae3Xjcow==";
        assert_eq!(
            ev.request.body,
            format!(
                "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><Encrypt><![CDATA[{e1}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
            )
        );
        assert_eq!(ev.request.timestamp, "1700000000");
        // With nonce 1234567890 the vector's signature comes out.
        let resigned = reseal(&ev, "1700000000", "1234567890", &ev.random, None).expect("seal");
        assert_eq!(
            resigned.msg_signature,
            "73d89c63e4c4c94daea7881ebe0380dbdc927794"
        );
    }

    #[test]
    fn faults_damage_the_request_as_promised() {
        let cb = CallbackConfig {
            url: String::new(),
            token: "t".into(),
            encoding_aes_key: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt".into(),
        };
        let crypt = MsgCrypt::new("t", &cb.encoding_aes_key, "wwcorp").expect("key");
        for (msg, fault, code) in [
            ("<xml/>", FaultKind::BadSignature, -40001),
            ("<xml/>", FaultKind::WrongReceiveId, -40005),
            ("<xml/>", FaultKind::TruncatedBase64, -40010),
            ("<xml/>", FaultKind::PaddingZero, -40008),
            ("<xml/>", FaultKind::Padding33, -40008),
            // 16 + 4 + 6 + 6 = 32: a whole pad block of 32s.
            ("abcdef", FaultKind::PaddingZero, -40008),
            ("abcdef", FaultKind::Padding33, -40008),
        ] {
            let req = seal(
                "wwcorp",
                1,
                &cb,
                msg,
                "1",
                "n",
                b"0123456789abcdef",
                Some(fault),
            )
            .expect("seal");
            let err = crypt
                .decrypt_message(&req.msg_signature, &req.timestamp, &req.nonce, &req.body)
                .expect_err("must fail");
            assert_eq!(err.code(), code, "{fault:?} on {msg:?}");
        }
        let req = seal(
            "wwcorp",
            1,
            &cb,
            "abcdef",
            "1",
            "n",
            b"0123456789abcdef",
            None,
        )
        .expect("seal");
        assert_eq!(
            crypt
                .decrypt_message(&req.msg_signature, &req.timestamp, &req.nonce, &req.body)
                .as_deref(),
            Ok("abcdef")
        );
    }
}
