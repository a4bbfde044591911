//! The member sign-in's OAuth `state`, stateless and MAC'd (issue 19 items 6-8).
//!
//! Starting a sign-in writes nothing: the `state` sent to WeCom carries what the
//! callback needs, under an HMAC-SHA256 tag with a key derived from the instance key:
//!
//! - the tenant, the WeCom app (agentid) and the flow (in-client or QR);
//! - when it was issued (it works for [`TTL_MS`]);
//! - a random nonce, which names the state once it is redeemed (the store keeps only
//!   redeemed ids, until they expire, so each state works once);
//! - a hash of the browser binding: a fresh random value per sign-in, set as a cookie
//!   together with the return path. A callback from a browser without that cookie is
//!   refused before anything is consumed, so a callback URL opened by someone else
//!   neither signs them in nor uses the state up.
//!
//! WeCom accepts a `state` of at most 128 bytes of `a-zA-Z0-9` (shared/wecom-api.md
//! §9.1), too small for a return path of up to 1 KiB: the return path rides in the
//! binding cookie, which the state's binding hash covers, so it cannot be swapped.
//! The state is 70 bytes in lower-case base32 (112 characters).
//!
//! Pure: no I/O, no clock and no randomness of its own (the caller passes them in).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a sign-in may take between leaving for WeCom and coming back.
pub const TTL_MS: i64 = 10 * 60 * 1000;
/// A state issued this far ahead of the checking instance's clock is still accepted
/// (clock skew between instances); further ahead it is refused.
pub const MAX_SKEW_MS: i64 = 60 * 1000;
/// WeCom's limit on `state`.
pub const MAX_STATE_LEN: usize = 128;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;
const BINDING_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// version, flow, tenant, agentid, issued at, nonce, binding hash.
const BODY_LEN: usize = 1 + 1 + 8 + 4 + 8 + NONCE_LEN + BINDING_LEN;
const RAW_LEN: usize = BODY_LEN + TAG_LEN;
/// Characters of the encoded state.
pub const STATE_LEN: usize = (RAW_LEN * 8).div_ceil(5);
/// The binding cookie's random part: 32 bytes, base64url.
const BINDING_SECRET_LEN: usize = 43;

type HmacSha256 = Hmac<Sha256>;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How the member reached WeCom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Silent authorization inside the WeCom client.
    Client,
    /// QR code / web login in a browser.
    Qr,
}

impl Flow {
    fn byte(self) -> u8 {
        match self {
            Flow::Client => 0,
            Flow::Qr => 1,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Flow::Client),
            1 => Some(Flow::Qr),
            _ => None,
        }
    }

    /// As recorded on the session (`user_sessions.via`).
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Client => "wecom_client",
            Flow::Qr => "wecom_qr",
        }
    }
}

/// What a state says, once its tag checks out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthState {
    pub tenant_id: i64,
    pub agentid: u32,
    pub flow: Flow,
    /// Unix milliseconds.
    pub issued_at: i64,
    pub nonce: [u8; NONCE_LEN],
    /// [`binding_hash`] of the browser's binding cookie.
    pub binding: [u8; BINDING_LEN],
}

/// Why a `state` was refused, in the order the checks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is not {STATE_LEN} base32 characters")]
    Encoding,
    #[error("the state has an unknown version")]
    Version,
    #[error("the state's tag does not verify (altered, or issued by another instance key)")]
    Tag,
    #[error("the state names an unknown flow")]
    Flow,
    #[error("the state has expired")]
    Expired,
    #[error("the state was issued in the future")]
    Future,
}

/// Why a state does not belong to this request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("this browser has no binding cookie")]
    Missing,
    #[error("the sign-in was started for another organisation")]
    OtherTenant,
    #[error("the sign-in was started in another browser")]
    OtherBrowser,
}

impl OAuthState {
    fn body(&self) -> [u8; BODY_LEN] {
        let mut b = [0u8; BODY_LEN];
        b[0] = VERSION;
        b[1] = self.flow.byte();
        b[2..10].copy_from_slice(&self.tenant_id.to_be_bytes());
        b[10..14].copy_from_slice(&self.agentid.to_be_bytes());
        b[14..22].copy_from_slice(&self.issued_at.to_be_bytes());
        b[22..22 + NONCE_LEN].copy_from_slice(&self.nonce);
        b[22 + NONCE_LEN..].copy_from_slice(&self.binding);
        b
    }

    /// The `state` parameter: body and tag, lower-case base32 (`a-z2-7`, WeCom's charset).
    pub fn encode(&self, key: &[u8; 32]) -> String {
        let body = self.body();
        let mut raw = Vec::with_capacity(RAW_LEN);
        raw.extend_from_slice(&body);
        raw.extend_from_slice(&tag(key, &body));
        base32_encode(&raw)
    }

    /// Decodes a `state` and checks its tag (in constant time). Says nothing yet about
    /// its age or whose it is: see [`OAuthState::check_time`] and [`OAuthState::check_binding`].
    pub fn decode(key: &[u8; 32], state: &[u8]) -> Result<OAuthState, StateError> {
        if state.len() != STATE_LEN {
            return Err(StateError::Encoding);
        }
        let raw = base32_decode(state).ok_or(StateError::Encoding)?;
        if raw.len() != RAW_LEN {
            return Err(StateError::Encoding);
        }
        let (body, got) = raw.split_at(BODY_LEN);
        if body[0] != VERSION {
            return Err(StateError::Version);
        }
        if !bool::from(tag(key, body).ct_eq(got)) {
            return Err(StateError::Tag);
        }
        let flow = Flow::from_byte(body[1]).ok_or(StateError::Flow)?;
        let be8 = |r: std::ops::Range<usize>| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&body[r]);
            i64::from_be_bytes(a)
        };
        let mut agentid = [0u8; 4];
        agentid.copy_from_slice(&body[10..14]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&body[22..22 + NONCE_LEN]);
        let mut binding = [0u8; BINDING_LEN];
        binding.copy_from_slice(&body[22 + NONCE_LEN..]);
        Ok(OAuthState {
            tenant_id: be8(2..10),
            agentid: u32::from_be_bytes(agentid),
            flow,
            issued_at: be8(14..22),
            nonce,
            binding,
        })
    }

    /// Valid for [`TTL_MS`] from issue, on the checking instance's clock (`now`).
    pub fn check_time(&self, now: i64) -> Result<(), StateError> {
        if self.issued_at > now.saturating_add(MAX_SKEW_MS) {
            return Err(StateError::Future);
        }
        if now.saturating_sub(self.issued_at) >= TTL_MS {
            return Err(StateError::Expired);
        }
        Ok(())
    }

    /// Until when its redemption must be remembered: past this it is refused as
    /// expired anyway, on any instance within [`MAX_SKEW_MS`].
    pub fn redeemable_until(&self) -> i64 {
        self.issued_at
            .saturating_add(TTL_MS)
            .saturating_add(MAX_SKEW_MS)
    }

    /// The state's id in the redemption log (hex of the nonce).
    pub fn id(&self) -> String {
        hex::encode(self.nonce)
    }

    /// The state belongs to this tenant and this browser: `cookie` is the binding cookie
    /// the request carried. The hashes are compared in constant time.
    pub fn check_binding(&self, tenant_id: i64, cookie: Option<&str>) -> Result<(), BindingError> {
        if self.tenant_id != tenant_id {
            return Err(BindingError::OtherTenant);
        }
        let cookie = cookie
            .filter(|c| !c.is_empty())
            .ok_or(BindingError::Missing)?;
        if bool::from(binding_hash(cookie).ct_eq(&self.binding)) {
            Ok(())
        } else {
            Err(BindingError::OtherBrowser)
        }
    }
}

fn tag(key: &[u8; 32], body: &[u8]) -> [u8; TAG_LEN] {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(b"wecom-bridge oauth state\0");
    mac.update(body);
    let full = mac.finalize().into_bytes();
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&full[..TAG_LEN]);
    t
}

/// The hash of a binding cookie's value that a state carries.
pub fn binding_hash(cookie: &str) -> [u8; BINDING_LEN] {
    let mut h = Sha256::new();
    h.update(b"wecom-bridge oauth binding\0");
    h.update(cookie.as_bytes());
    let full = h.finalize();
    let mut out = [0u8; BINDING_LEN];
    out.copy_from_slice(&full[..BINDING_LEN]);
    out
}

/// The binding cookie's value for a new sign-in: the 32 random bytes the caller drew
/// (base64url) and the return path (base64url), `secret.path`.
pub fn binding_cookie(random: &[u8; 32], return_to: &str) -> String {
    use base64::Engine as _;
    format!("{}.{}", B64.encode(random), B64.encode(return_to))
}

/// The return path a binding cookie carries (the caller checks it again with the one
/// return-path check). `None` if the cookie is not one of ours.
pub fn return_path_of(cookie: &str) -> Option<String> {
    use base64::Engine as _;
    let (secret, path) = cookie.split_once('.')?;
    if secret.len() != BINDING_SECRET_LEN {
        return None;
    }
    String::from_utf8(B64.decode(path).ok()?).ok()
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity((data.len() * 8).div_ceil(5));
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
        buf &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Strict: lower-case alphabet only, and the unused low bits of the last character
/// must be zero (so each state has exactly one spelling).
fn base32_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &c in s {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
        buf &= (1 << bits) - 1;
    }
    (buf == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [9u8; 32];

    fn state() -> OAuthState {
        OAuthState {
            tenant_id: 7,
            agentid: 1_000_002,
            flow: Flow::Qr,
            issued_at: 1_700_000_000_000,
            nonce: [3u8; NONCE_LEN],
            binding: binding_hash(&binding_cookie(&[5u8; 32], "/apps?x=1")),
        }
    }

    #[test]
    fn round_trip_fits_wecom() {
        let s = state();
        let enc = s.encode(&KEY);
        assert_eq!(enc.len(), STATE_LEN);
        assert!(enc.len() <= MAX_STATE_LEN);
        assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric()), "{enc}");
        assert_eq!(OAuthState::decode(&KEY, enc.as_bytes()), Ok(s.clone()));
        assert_eq!(s.id().len(), 32);
    }

    #[test]
    fn every_altered_character_is_refused() {
        let enc = state().encode(&KEY);
        for i in 0..enc.len() {
            for c in [b'a', b'q', b'7'] {
                let mut b = enc.clone().into_bytes();
                if b[i] == c {
                    continue;
                }
                b[i] = c;
                assert!(
                    OAuthState::decode(&KEY, &b).is_err(),
                    "position {i} -> {}",
                    c as char
                );
            }
        }
        assert_eq!(
            OAuthState::decode(&[8u8; 32], enc.as_bytes()),
            Err(StateError::Tag)
        );
        assert_eq!(
            OAuthState::decode(&KEY, enc.to_uppercase().as_bytes()),
            Err(StateError::Encoding)
        );
        assert_eq!(
            OAuthState::decode(&KEY, &enc.as_bytes()[1..]),
            Err(StateError::Encoding)
        );
    }

    #[test]
    fn lifetime() {
        let s = state();
        let t = s.issued_at;
        assert_eq!(s.check_time(t), Ok(()));
        assert_eq!(s.check_time(t + TTL_MS - 1), Ok(()));
        assert_eq!(s.check_time(t + TTL_MS), Err(StateError::Expired));
        assert_eq!(s.check_time(t - MAX_SKEW_MS), Ok(()));
        assert_eq!(s.check_time(t - MAX_SKEW_MS - 1), Err(StateError::Future));
        assert_eq!(s.check_time(i64::MAX), Err(StateError::Expired));
        assert_eq!(s.check_time(i64::MIN), Err(StateError::Future));
        assert!(s.redeemable_until() > t + TTL_MS);
    }

    #[test]
    fn binding_and_tenant() {
        let s = state();
        let cookie = binding_cookie(&[5u8; 32], "/apps?x=1");
        assert_eq!(s.check_binding(7, Some(&cookie)), Ok(()));
        assert_eq!(
            s.check_binding(8, Some(&cookie)),
            Err(BindingError::OtherTenant)
        );
        assert_eq!(s.check_binding(7, None), Err(BindingError::Missing));
        assert_eq!(s.check_binding(7, Some("")), Err(BindingError::Missing));
        // Another secret, or the same secret with another return path.
        for other in [
            binding_cookie(&[6u8; 32], "/apps?x=1"),
            binding_cookie(&[5u8; 32], "/evil"),
        ] {
            assert_eq!(
                s.check_binding(7, Some(&other)),
                Err(BindingError::OtherBrowser)
            );
        }
        assert_eq!(return_path_of(&cookie).as_deref(), Some("/apps?x=1"));
        assert_eq!(return_path_of("x.L2E"), None);
        assert_eq!(return_path_of("nodot"), None);
    }

    #[test]
    fn base32_known_values() {
        // RFC 4648 test vectors, lower case and unpadded.
        for (plain, enc) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc.as_bytes()).unwrap(), plain.as_bytes());
        }
        // Non-zero trailing bits: another spelling of "f", refused.
        assert_eq!(base32_decode(b"mz"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2048,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Arbitrary bytes never panic and never verify: the answer is a typed error.
        #[test]
        fn arbitrary_bytes_are_a_typed_error(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let r = OAuthState::decode(&KEY, &b);
            proptest::prop_assert!(r.is_err(), "{r:?}");
        }

        /// Strings of the right length and alphabet reach the tag check and stop there.
        #[test]
        fn well_formed_forgeries_fail_the_tag(s in "[a-z2-7]{112}") {
            let r = OAuthState::decode(&KEY, s.as_bytes());
            proptest::prop_assert!(
                matches!(r, Err(StateError::Encoding | StateError::Version | StateError::Tag)),
                "{r:?}"
            );
        }

        /// Any state round-trips, and a one-bit change anywhere is refused.
        #[test]
        fn round_trip_and_bit_flips(
            tenant_id in proptest::prelude::any::<i64>(),
            agentid in proptest::prelude::any::<u32>(),
            qr in proptest::prelude::any::<bool>(),
            issued_at in proptest::prelude::any::<i64>(),
            nonce in proptest::prelude::any::<[u8; 16]>(),
            binding in proptest::prelude::any::<[u8; 16]>(),
            flip in 0usize..(RAW_LEN * 8),
        ) {
            let s = OAuthState {
                tenant_id, agentid, flow: if qr { Flow::Qr } else { Flow::Client },
                issued_at, nonce, binding,
            };
            let enc = s.encode(&KEY);
            proptest::prop_assert_eq!(OAuthState::decode(&KEY, enc.as_bytes()), Ok(s));
            let mut raw = base32_decode(enc.as_bytes()).unwrap();
            raw[flip / 8] ^= 1 << (flip % 8);
            let forged = base32_encode(&raw);
            proptest::prop_assert!(OAuthState::decode(&KEY, forged.as_bytes()).is_err());
        }

        #[test]
        fn cookie_return_path_round_trips(secret in proptest::prelude::any::<[u8; 32]>(), path in "\\PC{0,200}") {
            let c = binding_cookie(&secret, &path);
            proptest::prop_assert_eq!(return_path_of(&c), Some(path));
            proptest::prop_assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
        }

        #[test]
        fn arbitrary_cookies_do_not_panic(s in "\\PC{0,100}") {
            let _ = return_path_of(&s);
            let _ = state().check_binding(7, Some(&s));
        }
    }
}
