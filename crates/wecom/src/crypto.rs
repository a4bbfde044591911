//! WXBizMsgCrypt: the callback signature and AES scheme (§12), checked against every vector of §14.
//!
//! Plaintext layout: `random(16) | msg_len (u32 BE) | msg | receive_id`, PKCS#7-padded to a multiple of
//! **32** bytes, AES-256-CBC with IV = key[..16]. `msg_signature` = SHA-1 over the byte-sorted
//! concatenation of token, timestamp, nonce and the base64 ciphertext.
//!
//! Decryption is strict (§12.2): where the official SDKs skip checks, this one rejects the buffer, and
//! every entry point that takes a signature verifies it before touching the ciphertext.

use aes::Aes256;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// The EncodingAESKey's 43rd character carries 2 bits that WeCom does not keep at zero, which the
/// `STANDARD` engine rejects (§12.1 "Rust pitfall"). Used for the key only; ciphertexts use `STANDARD`.
const AES_KEY_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// PKCS#7 block size used by WeCom: 32, not AES's 16.
const PAD_BLOCK: usize = 32;
const RANDOM_LEN: usize = 16;
const AES_BLOCK: usize = 16;

type Aes256CbcEnc = cbc::Encryptor<Aes256>;
type Aes256CbcDec = cbc::Decryptor<Aes256>;

/// Errors, one per official SDK code (`code()`); `explain()` gives an admin-facing fix.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// −40001.
    #[error("callback signature mismatch (-40001)")]
    InvalidSignature,
    /// −40002.
    #[error("callback XML parse error (-40002): {0}")]
    ParseXml(String),
    /// −40004. The reason never includes the key itself.
    #[error("invalid EncodingAESKey (-40004): {0}")]
    InvalidAesKey(&'static str),
    /// −40005. `actual` is the decrypted receive id, lossily decoded and cut to 64 bytes.
    #[error("receive id mismatch (-40005): expected {expected:?}, got {actual:?}")]
    InvalidReceiveId { expected: String, actual: String },
    /// −40007.
    #[error("AES decrypt failed (-40007): {0}")]
    DecryptAes(&'static str),
    /// −40008.
    #[error("invalid decrypted buffer (-40008): {0}")]
    IllegalBuffer(&'static str),
    /// −40010.
    #[error("base64 decode failed (-40010): {0}")]
    DecodeBase64(String),
}

impl CryptoError {
    /// The official SDK error code (negative).
    pub fn code(&self) -> i32 {
        match self {
            Self::InvalidSignature => -40001,
            Self::ParseXml(_) => -40002,
            Self::InvalidAesKey(_) => -40004,
            Self::InvalidReceiveId { .. } => -40005,
            Self::DecryptAes(_) => -40007,
            Self::IllegalBuffer(_) => -40008,
            Self::DecodeBase64(_) => -40010,
        }
    }

    /// What went wrong and how to fix it, in plain words for an IT admin: `(中文, English)`.
    pub fn explain(&self) -> (&'static str, &'static str) {
        match self {
            Self::InvalidSignature => (
                "签名验证失败：回调的签名与用本系统保存的 Token 算出的不一致。请到 应用管理 → 该应用 → 接收消息 → 设置API接收，重新复制 Token 和 EncodingAESKey 填入本系统（不要带空格）。如果两者都没错，请检查前面的代理是否改写了 URL 参数（例如把 + 变成空格），或者这个请求并非来自企业微信。",
                "Signature check failed: the callback's signature does not match the one computed with the Token saved here. Copy the Token and EncodingAESKey again from 应用管理 → the app → 接收消息 (Receive messages) → API settings, without spaces. If both are right, check that no proxy in front of the bridge rewrites the URL query (e.g. turns + into a space), or the request did not come from WeCom.",
            ),
            Self::ParseXml(_) => (
                "回调内容不是预期的 XML（缺少 Encrypt 字段或格式损坏）。通常是请求并非来自企业微信，或者前面的代理、防火墙改写了请求正文。请检查回调地址前面的代理设置。",
                "The callback body is not the expected XML (no Encrypt element, or broken). Usually the request did not come from WeCom, or a proxy or firewall in front of the bridge changed the body. Check the proxy in front of the callback URL.",
            ),
            Self::InvalidAesKey(_) => (
                "EncodingAESKey 格式不对：它必须正好是 43 个字母或数字。请到 应用管理 → 该应用 → 接收消息，重新复制 EncodingAESKey 和 Token，不要带空格或末尾的等号。",
                "The EncodingAESKey is malformed: it must be exactly 43 letters and digits. Copy the EncodingAESKey and the Token again from 应用管理 → the app → 接收消息 (Receive messages), without spaces or a trailing '='.",
            ),
            Self::InvalidReceiveId { .. } => (
                "消息是发给另一个企业的：解密出的企业ID与本系统配置的 CorpID 不同，说明本系统的 CorpID 填错了。请到 我的企业 → 企业信息 复制企业ID（以 ww 开头）填入本系统。",
                "The message is addressed to another company: the CorpID inside it differs from the CorpID configured here, so the bridge's CorpID is wrong. Copy the CorpID from 我的企业 → 企业信息 (My company → Company info; it starts with ww) into the bridge settings.",
            ),
            Self::DecryptAes(_) => (
                "无法解密回调内容（密文长度不对）。请到 应用管理 → 该应用 → 接收消息，重新复制 Token 和 EncodingAESKey；如果仍然出错，请检查前面的代理是否截断了请求。",
                "The callback could not be decrypted (the ciphertext has a wrong length). Copy the Token and EncodingAESKey again from 应用管理 → the app → 接收消息 (Receive messages); if it persists, check that no proxy truncates the request.",
            ),
            Self::IllegalBuffer(_) => (
                "解密后的内容不合法。签名已通过、说明 Token 正确，所以几乎总是 EncodingAESKey 填错了。请到 应用管理 → 该应用 → 接收消息，重新复制 EncodingAESKey。",
                "The decrypted content is invalid. The signature passed, so the Token is right and the EncodingAESKey is almost certainly wrong. Copy the EncodingAESKey again from 应用管理 → the app → 接收消息 (Receive messages).",
            ),
            Self::DecodeBase64(_) => (
                "回调中的加密内容不是合法的 Base64，可能被截断或被改写（例如 + 变成了空格）。请重新复制 Token 和 EncodingAESKey，并检查前面的代理是否改写了请求。",
                "The encrypted content is not valid Base64: it was truncated or altered (e.g. + turned into a space). Copy the Token and EncodingAESKey again, and check that no proxy in front of the bridge rewrites the request.",
            ),
        }
    }
}

/// The callback crypto of one app: Token, EncodingAESKey and the receive id (the CorpID for a
/// self-built app, §12.2).
#[derive(Clone)]
pub struct MsgCrypt {
    token: String,
    key: [u8; 32],
    receive_id: String,
}

impl std::fmt::Debug for MsgCrypt {
    // The token and key are secrets: never let them reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt")
            .field("token", &"<redacted>")
            .field("key", &"<redacted>")
            .field("receive_id", &self.receive_id)
            .finish()
    }
}

/// The output of [`MsgCrypt::encrypt_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedMessage {
    pub encrypt: String,
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
}

impl EncryptedMessage {
    /// The POST body WeCom sends (§12.5): `ToUserName`, `Encrypt`, `AgentID`, all CDATA, no whitespace.
    pub fn envelope_xml(&self, to_user_name: &str, agent_id: &str) -> String {
        format!(
            "<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt><AgentID>{}</AgentID></xml>",
            cdata(to_user_name),
            cdata(&self.encrypt),
            cdata(agent_id)
        )
    }

    /// A passive reply body (§12.5): `Encrypt`, `MsgSignature`, `TimeStamp`, `Nonce`.
    pub fn reply_xml(&self) -> String {
        format!(
            "<xml><Encrypt>{}</Encrypt><MsgSignature>{}</MsgSignature><TimeStamp>{}</TimeStamp><Nonce>{}</Nonce></xml>",
            cdata(&self.encrypt),
            cdata(&self.msg_signature),
            escape_text(&self.timestamp),
            cdata(&self.nonce)
        )
    }
}

impl MsgCrypt {
    /// `encoding_aes_key` must be the 43 characters from the console (no trailing `=`).
    pub fn new(token: &str, encoding_aes_key: &str, receive_id: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::InvalidAesKey(
                "it must be exactly 43 characters long",
            ));
        }
        let key: [u8; 32] = AES_KEY_B64
            .decode(encoding_aes_key)
            .map_err(|_| CryptoError::InvalidAesKey("it is not base64 (letters and digits only)"))?
            .try_into()
            .map_err(|_| CryptoError::InvalidAesKey("it does not decode to 32 bytes"))?;
        Ok(Self {
            token: token.to_owned(),
            key,
            receive_id: receive_id.to_owned(),
        })
    }

    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// `hex_lower(SHA1(concat(sort_bytes([token, timestamp, nonce, encrypt]))))` (§12.3).
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        // `str`'s ordering is byte order, which is what WeCom sorts by.
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypt];
        parts.sort_unstable();
        let mut sha = Sha1::new();
        for part in parts {
            sha.update(part.as_bytes());
        }
        hex::encode(sha.finalize())
    }

    /// Constant-time comparison of `msg_signature` with the expected signature.
    pub fn verify_signature(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<(), CryptoError> {
        let expected = self.signature(timestamp, nonce, encrypt);
        // `ct_eq` on slices of different lengths is false; the length itself (40) is not secret.
        if bool::from(expected.as_bytes().ct_eq(msg_signature.as_bytes())) {
            Ok(())
        } else {
            Err(CryptoError::InvalidSignature)
        }
    }

    /// URL verification (§12.4). `echostr` must already be URL-decoded (percent-decoding only: a form
    /// decoder that turns `+` into a space breaks it). Returns the plaintext to answer, byte for byte.
    pub fn verify_url(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
    ) -> Result<String, CryptoError> {
        self.verify_signature(msg_signature, timestamp, nonce, echostr)?;
        self.decrypt(echostr)
    }

    /// Event delivery (§12.5): takes `<Encrypt>` from the POST body, verifies the signature over it,
    /// then decrypts.
    pub fn decrypt_message(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        body_xml: &str,
    ) -> Result<String, CryptoError> {
        let encrypt = extract_encrypt(body_xml)?;
        self.verify_signature(msg_signature, timestamp, nonce, &encrypt)?;
        self.decrypt(&encrypt)
    }

    /// Decrypts a base64 ciphertext and checks its receive id. Does **not** check a signature: use
    /// [`verify_url`](Self::verify_url) or [`decrypt_message`](Self::decrypt_message) for input
    /// from the network.
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<String, CryptoError> {
        let ciphertext = STANDARD
            .decode(encrypt_b64)
            .map_err(|e| CryptoError::DecodeBase64(e.to_string()))?;
        if ciphertext.len() % AES_BLOCK != 0 {
            return Err(CryptoError::DecryptAes(
                "ciphertext length is not a multiple of 16",
            ));
        }
        // WeCom pads to 32 bytes, so a whole number of 32-byte blocks is required (§12.2).
        if ciphertext.is_empty() || ciphertext.len() % PAD_BLOCK != 0 {
            return Err(CryptoError::IllegalBuffer(
                "ciphertext length is not a non-zero multiple of 32",
            ));
        }
        let plain = Aes256CbcDec::new(&self.key.into(), &self.iv().into())
            .decrypt_padded_vec_mut::<NoPadding>(&ciphertext)
            .map_err(|_| CryptoError::DecryptAes("AES-CBC decryption failed"))?;

        let pad = usize::from(plain[plain.len() - 1]);
        if !(1..=PAD_BLOCK).contains(&pad) {
            return Err(CryptoError::IllegalBuffer("padding byte outside 1..=32"));
        }
        let (body, padding) = plain.split_at(plain.len() - pad);
        if padding.iter().any(|&b| usize::from(b) != pad) {
            return Err(CryptoError::IllegalBuffer("padding bytes differ"));
        }
        if body.len() < RANDOM_LEN + 4 {
            return Err(CryptoError::IllegalBuffer(
                "plaintext shorter than random and length",
            ));
        }
        let (len_bytes, rest) = body[RANDOM_LEN..].split_at(4);
        let msg_len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let msg_len = usize::try_from(msg_len)
            .map_err(|_| CryptoError::IllegalBuffer("message length too large"))?;
        if msg_len > rest.len() {
            return Err(CryptoError::IllegalBuffer(
                "message length exceeds the decrypted data",
            ));
        }
        let (msg, receive_id) = rest.split_at(msg_len);
        if receive_id != self.receive_id.as_bytes() {
            let shown = &receive_id[..receive_id.len().min(64)];
            return Err(CryptoError::InvalidReceiveId {
                expected: self.receive_id.clone(),
                actual: String::from_utf8_lossy(shown).into_owned(),
            });
        }
        String::from_utf8(msg.to_vec())
            .map_err(|_| CryptoError::IllegalBuffer("message is not valid UTF-8"))
    }

    /// Encrypts with a fresh random prefix of 16 alphanumerics (as the official SDKs do).
    pub fn encrypt(&self, msg: &str) -> String {
        let mut random = [0u8; RANDOM_LEN];
        for (slot, c) in random
            .iter_mut()
            .zip(rand::thread_rng().sample_iter(Alphanumeric))
        {
            *slot = c;
        }
        self.encrypt_with_random(msg, &random)
    }

    /// Encrypts with a given random prefix: deterministic output for tests and the simulator.
    ///
    /// # Panics
    /// If `msg` is 4 GiB or longer (its length must fit the u32 length field).
    pub fn encrypt_with_random(&self, msg: &str, random: &[u8; 16]) -> String {
        let msg_len =
            u32::try_from(msg.len()).expect("callback message must be shorter than 4 GiB");
        let mut buf =
            Vec::with_capacity(RANDOM_LEN + 4 + msg.len() + self.receive_id.len() + PAD_BLOCK);
        buf.extend_from_slice(random);
        buf.extend_from_slice(&msg_len.to_be_bytes());
        buf.extend_from_slice(msg.as_bytes());
        buf.extend_from_slice(self.receive_id.as_bytes());
        // 1..=32, a whole block when already aligned. The cast cannot truncate: pad <= 32.
        let pad = PAD_BLOCK - buf.len() % PAD_BLOCK;
        buf.resize(buf.len() + pad, pad as u8);
        let ciphertext = Aes256CbcEnc::new(&self.key.into(), &self.iv().into())
            .encrypt_padded_vec_mut::<NoPadding>(&buf);
        STANDARD.encode(ciphertext)
    }

    /// Encrypts and signs `msg` with the given timestamp and nonce (random prefix).
    pub fn encrypt_message(&self, msg: &str, timestamp: &str, nonce: &str) -> EncryptedMessage {
        self.sign(self.encrypt(msg), timestamp, nonce)
    }

    /// [`encrypt_message`](Self::encrypt_message) with a fixed random prefix.
    pub fn encrypt_message_with_random(
        &self,
        msg: &str,
        timestamp: &str,
        nonce: &str,
        random: &[u8; 16],
    ) -> EncryptedMessage {
        self.sign(self.encrypt_with_random(msg, random), timestamp, nonce)
    }

    fn sign(&self, encrypt: String, timestamp: &str, nonce: &str) -> EncryptedMessage {
        EncryptedMessage {
            msg_signature: self.signature(timestamp, nonce, &encrypt),
            encrypt,
            timestamp: timestamp.to_owned(),
            nonce: nonce.to_owned(),
        }
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }
}

/// The text of the single `<Encrypt>` child of the root element, CDATA or plain, whatever the element
/// order and whitespace. Zero or several `<Encrypt>` elements are a parse error: the signed value and
/// the decrypted value must be the same one.
pub fn extract_encrypt(body_xml: &str) -> Result<String, CryptoError> {
    let root = crate::event::parse_tree(body_xml).map_err(CryptoError::ParseXml)?;
    let mut found = root.children.iter().filter(|c| c.name == "Encrypt");
    match (found.next(), found.next()) {
        (Some(node), None) if node.children.is_empty() => Ok(node.text.trim().to_owned()),
        (Some(_), None) => Err(CryptoError::ParseXml("<Encrypt> has child elements".into())),
        (None, _) => Err(CryptoError::ParseXml("no <Encrypt> element".into())),
        (Some(_), Some(_)) => Err(CryptoError::ParseXml(
            "more than one <Encrypt> element".into(),
        )),
    }
}

/// A new EncodingAESKey: 43 alphanumerics (any 43 decode to 32 bytes with the lenient engine).
pub fn generate_encoding_aes_key() -> String {
    random_alphanumeric(43)
}

/// A new callback Token: 32 alphanumerics.
pub fn generate_token() -> String {
    random_alphanumeric(32)
}

/// A nonce as WeCom and the simulator make them: 16 alphanumerics.
pub fn generate_nonce() -> String {
    random_alphanumeric(16)
}

fn random_alphanumeric(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Wraps a value in CDATA; a `]]>` inside is split across two sections so it cannot end the first.
fn cdata(value: &str) -> String {
    format!("<![CDATA[{}]]>", value.replace("]]>", "]]]]><![CDATA[>"))
}

fn escape_text(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    // §14 A (official Python SDK).
    const A_TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
    const A_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
    const A_CORP: &str = "ww1436e0e65a779aee";

    fn a() -> MsgCrypt {
        MsgCrypt::new(A_TOKEN, A_KEY, A_CORP).unwrap()
    }

    #[test]
    fn key_with_nonzero_trailing_bits_is_accepted() {
        // All three published keys end in a character whose low 2 bits are not zero.
        for key in [
            A_KEY,
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
            "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
        ] {
            assert!(
                STANDARD.decode(format!("{key}=")).is_err(),
                "the pitfall is real"
            );
            MsgCrypt::new("t", key, "r").unwrap();
        }
    }

    #[test]
    fn bad_keys() {
        for key in [
            "",
            &A_KEY[..42],
            &format!("{A_KEY}="),
            &format!("{A_KEY}A"),
            "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqh!t",
        ] {
            let err = MsgCrypt::new("t", key, "r").unwrap_err();
            assert_eq!(err.code(), -40004, "{key:?}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let dbg = format!("{:?}", a());
        assert!(!dbg.contains(A_TOKEN));
        assert!(!dbg.contains("6qkd"));
        assert!(dbg.contains(A_CORP));
    }

    #[test]
    fn roundtrip_every_padding() {
        let c = a();
        for len in 0..80 {
            let msg: String = "x".repeat(len);
            let enc = c.encrypt(&msg);
            assert_eq!(c.decrypt(&enc).unwrap(), msg);
            assert_eq!(STANDARD.decode(&enc).unwrap().len() % 32, 0);
        }
    }

    #[test]
    fn random_prefix_is_alphanumeric_and_fresh() {
        let c = a();
        let (x, y) = (c.encrypt("same"), c.encrypt("same"));
        assert_ne!(x, y);
        let plain = Aes256CbcDec::new(&c.key.into(), &c.iv().into())
            .decrypt_padded_vec_mut::<NoPadding>(&STANDARD.decode(&x).unwrap())
            .unwrap();
        assert!(plain[..16].iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn signature_sorts_bytes() {
        // §14 D: sort order 1583940690 < 6KmU… < VHh7… < kjr2….
        let c = MsgCrypt::new(
            "kjr2TKI8umCBfVF3wAHk8JiPwma5VBme",
            "4Ma3YBrSBbX2aez8MJpXGBne5LSDwgGqHbhM9WPYIws",
            "ww6a112864f8022910",
        )
        .unwrap();
        let echostr = "6KmUQuPVu7UhjyVqRdbo5SfcRqaHvbUlKSHFvBV2ZuR6TIlKsygcfeSd1GDplg1C5KSKr6UPHCaC/nIX3ZNt9w==";
        assert_eq!(
            c.signature("1583940690", "VHh7ymSeb0jc4lSb", echostr),
            "1ba3cb09c0d2c2b3ed6900d37f91a6efae6cb011"
        );
        let mut sha = Sha1::new();
        sha.update(format!(
            "1583940690{echostr}VHh7ymSeb0jc4lSbkjr2TKI8umCBfVF3wAHk8JiPwma5VBme"
        ));
        assert_eq!(
            hex::encode(sha.finalize()),
            "1ba3cb09c0d2c2b3ed6900d37f91a6efae6cb011"
        );
    }

    #[test]
    fn verify_signature_rejects_variants() {
        let c = a();
        let good = c.signature("1", "2", "3");
        assert_eq!(c.verify_signature(&good, "1", "2", "3"), Ok(()));
        for bad in [
            String::new(),
            good[..39].to_owned(),
            format!("{good}0"),
            good.to_uppercase(),
            "0".repeat(40),
        ] {
            assert_eq!(
                c.verify_signature(&bad, "1", "2", "3"),
                Err(CryptoError::InvalidSignature)
            );
        }
    }

    #[test]
    fn extract_encrypt_forms() {
        for body in [
            "<xml><Encrypt><![CDATA[abc]]></Encrypt></xml>",
            "<xml><Encrypt>abc</Encrypt></xml>",
            "<xml>\n  <AgentID>1</AgentID>\n  <Encrypt>\n    <![CDATA[abc]]>\n  </Encrypt>\n  <ToUserName>x</ToUserName>\n</xml>",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><xml><ToUserName><![CDATA[ww]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID><Encrypt><![CDATA[abc]]></Encrypt></xml>",
        ] {
            assert_eq!(extract_encrypt(body).unwrap(), "abc", "{body}");
        }
        for body in [
            "",
            "<xml></xml>",
            "<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>",
            "<xml><Inner><Encrypt>a</Encrypt></Inner></xml>",
            "<xml><Encrypt><b>a</b></Encrypt></xml>",
            "<xml><Encrypt>abc</xml>",
            "Encrypt=abc",
        ] {
            assert_eq!(extract_encrypt(body).unwrap_err().code(), -40002, "{body}");
        }
    }

    #[test]
    fn envelope_and_reply_xml() {
        let c = a();
        let m = c.encrypt_message_with_random("hi", "1700000000", "n0nce", b"0123456789abcdef");
        let env = m.envelope_xml(A_CORP, "1000002");
        assert_eq!(
            env,
            format!(
                "<xml><ToUserName><![CDATA[{A_CORP}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>",
                m.encrypt
            )
        );
        assert_eq!(
            c.decrypt_message(&m.msg_signature, "1700000000", "n0nce", &env)
                .unwrap(),
            "hi"
        );
        let reply = m.reply_xml();
        assert_eq!(
            reply,
            format!(
                "<xml><Encrypt><![CDATA[{}]]></Encrypt><MsgSignature><![CDATA[{}]]></MsgSignature><TimeStamp>1700000000</TimeStamp><Nonce><![CDATA[n0nce]]></Nonce></xml>",
                m.encrypt, m.msg_signature
            )
        );
        assert_eq!(
            c.decrypt_message(&m.msg_signature, "1700000000", "n0nce", &reply)
                .unwrap(),
            "hi"
        );
        // A `]]>` in a value cannot break out of its CDATA section.
        let tree = crate::event::parse_tree(&m.envelope_xml("a]]><x/>", "1")).unwrap();
        assert_eq!(tree.text_of("ToUserName"), Some("a]]><x/>"));
    }

    #[test]
    fn generated_secrets() {
        let key = generate_encoding_aes_key();
        assert_eq!(key.len(), 43);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        MsgCrypt::new("t", &key, "r").unwrap();
        let token = generate_token();
        assert_eq!(token.len(), 32);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(generate_token(), token);
        assert_eq!(generate_nonce().len(), 16);
    }

    #[test]
    fn codes_and_explanations() {
        let all = [
            (CryptoError::InvalidSignature, -40001),
            (CryptoError::ParseXml(String::new()), -40002),
            (CryptoError::InvalidAesKey(""), -40004),
            (
                CryptoError::InvalidReceiveId {
                    expected: String::new(),
                    actual: String::new(),
                },
                -40005,
            ),
            (CryptoError::DecryptAes(""), -40007),
            (CryptoError::IllegalBuffer(""), -40008),
            (CryptoError::DecodeBase64(String::new()), -40010),
        ];
        for (err, code) in all {
            assert_eq!(err.code(), code);
            assert!(err.to_string().contains(&code.to_string()));
            let (zh, en) = err.explain();
            assert!(!zh.is_empty() && !en.is_empty());
        }
        assert!(CryptoError::InvalidReceiveId {
            expected: String::new(),
            actual: String::new()
        }
        .explain()
        .1
        .contains("CorpID"));
        assert!(CryptoError::InvalidSignature.explain().0.contains("Token"));
    }
}
