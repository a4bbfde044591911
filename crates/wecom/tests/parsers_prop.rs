//! Property tests of the callback parsers (issue 19), a fixed number of cases each:
//! the envelope (`<Encrypt>` extraction and the signature check before anything else),
//! the decrypted event XML, and the crypto (key, base64, AES, padding, length, receive
//! id). Inputs are arbitrary bytes or arbitrary mutations of valid input; expected: no
//! panic, and exactly the error the input deserves.

use proptest::prelude::*;
use wecom::crypto::{extract_encrypt, CryptoError, MsgCrypt};
use wecom::event::{parse_event, EventParseError};

const TOKEN: &str = "QDG6eK";
const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP: &str = "wx5823bf96d3bd56c7";

fn crypt() -> MsgCrypt {
    MsgCrypt::new(TOKEN, KEY, CORP).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const EVENT: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\
<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1403610513</CreateTime>\
<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>\
<ChangeType>update_user</ChangeType><UserID><![CDATA[zhangsan]]></UserID>\
<Department><![CDATA[1,2]]></Department><MainDepartment>1</MainDepartment></xml>";

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    /// Any body: the `<Encrypt>` text or a -40002 parse error, nothing else.
    #[test]
    fn envelope_of_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        match extract_encrypt(&text(&bytes)) {
            Ok(_) | Err(CryptoError::ParseXml(_)) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    /// Arbitrary text inside a well-formed envelope comes back trimmed and unescaped.
    #[test]
    fn envelope_keeps_the_encrypt_text(s in "[A-Za-z0-9+/=]{0,200}", order in any::<bool>()) {
        let enc = format!("<Encrypt><![CDATA[{s}]]></Encrypt>");
        let other = "<ToUserName><![CDATA[x]]></ToUserName><AgentID>1</AgentID>";
        let body = if order { format!("<xml>{enc}{other}</xml>") } else { format!("<xml>\n {other}\n{enc}</xml>") };
        prop_assert_eq!(extract_encrypt(&body), Ok(s));
    }

    /// A signature that is not the right one is refused before the body is decrypted,
    /// whatever the body holds (-40001, never a decrypt error).
    #[test]
    fn a_wrong_signature_is_refused_first(
        sig in "[0-9a-f]{0,48}",
        encrypt in "[A-Za-z0-9+/=!]{0,120}",
        ts in "[0-9]{0,12}",
        nonce in "[A-Za-z0-9]{0,16}",
    ) {
        let c = crypt();
        prop_assume!(sig != c.signature(&ts, &nonce, &encrypt));
        let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        prop_assert_eq!(c.decrypt_message(&sig, &ts, &nonce, &body), Err(CryptoError::InvalidSignature));
        prop_assert_eq!(c.verify_url(&sig, &ts, &nonce, &encrypt), Err(CryptoError::InvalidSignature));
    }

    /// Decrypting arbitrary text: base64 first (-40010), then the AES block size
    /// (-40007), then WeCom's 32-byte padding, length and receive id (-40008/-40005).
    #[test]
    fn decrypt_of_arbitrary_input(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let s = text(&bytes);
        match crypt().decrypt(&s) {
            Err(CryptoError::DecodeBase64(_)) => {
                use base64::Engine;
                prop_assert!(base64::engine::general_purpose::STANDARD.decode(&s).is_err());
            }
            Err(CryptoError::DecryptAes(_)) | Err(CryptoError::IllegalBuffer(_)) | Err(CryptoError::InvalidReceiveId { .. }) => {}
            other => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    /// Arbitrary ciphertext bytes, well base64-encoded: the error follows the length.
    #[test]
    fn decrypt_of_arbitrary_ciphertext(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let r = crypt().decrypt(&b64);
        if bytes.len() % 16 != 0 {
            prop_assert!(matches!(r, Err(CryptoError::DecryptAes(_))), "{r:?}");
        } else if bytes.is_empty() || bytes.len() % 32 != 0 {
            prop_assert!(matches!(r, Err(CryptoError::IllegalBuffer(_))), "{r:?}");
        } else {
            prop_assert!(
                matches!(r, Err(CryptoError::IllegalBuffer(_)) | Err(CryptoError::InvalidReceiveId { .. })),
                "{r:?}"
            );
        }
    }

    /// What we encrypt decrypts to itself, through the signed envelope too.
    #[test]
    fn encrypt_then_decrypt(msg in any::<String>(), random in any::<[u8; 16]>()) {
        let c = crypt();
        let m = c.encrypt_message_with_random(&msg, "1409659813", "nonce", &random);
        let body = m.envelope_xml(CORP, "1000002");
        prop_assert_eq!(c.decrypt_message(&m.msg_signature, &m.timestamp, &m.nonce, &body), Ok(msg));
    }

    /// Another corp's message: -40005, never its content.
    #[test]
    fn another_receive_id_is_refused(msg in any::<String>(), other in "[a-z0-9]{1,20}") {
        prop_assume!(other != CORP);
        let theirs = MsgCrypt::new(TOKEN, KEY, &other).unwrap();
        let r = crypt().decrypt(&theirs.encrypt(&msg));
        prop_assert!(matches!(r, Err(CryptoError::InvalidReceiveId { .. })), "{r:?}");
    }

    /// EncodingAESKey: 43 characters of base64 or -40004.
    #[test]
    fn arbitrary_aes_keys(key in proptest::collection::vec(any::<u8>(), 0..64)) {
        let key = text(&key);
        match MsgCrypt::new(TOKEN, &key, CORP) {
            Ok(_) => prop_assert_eq!(key.len(), 43),
            Err(CryptoError::InvalidAesKey(_)) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    /// Any decrypted payload: an event or one of the three parse errors, never a panic;
    /// what is not XML at all is an XML error.
    #[test]
    fn event_of_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let s = text(&bytes);
        let r = parse_event(&s);
        if !s.contains('<') && !s.trim().is_empty() {
            prop_assert!(matches!(r, Err(EventParseError::Xml(_))), "{r:?}");
        }
    }

    /// The valid event cut anywhere: an error, never a panic.
    #[test]
    fn event_cut_short(at in 0..EVENT.len()) {
        prop_assume!(EVENT.is_char_boundary(at));
        prop_assert!(parse_event(&EVENT[..at]).is_err());
    }

    /// A required element missing: exactly MissingField with its name.
    #[test]
    fn event_without_a_required_element(i in 0usize..4) {
        let name = ["ToUserName", "FromUserName", "CreateTime", "MsgType"][i];
        let start = EVENT.find(&format!("<{name}>")).unwrap();
        let end = EVENT.find(&format!("</{name}>")).unwrap() + name.len() + 3;
        let xml = format!("{}{}", &EVENT[..start], &EVENT[end..]);
        prop_assert_eq!(parse_event(&xml).unwrap_err(), EventParseError::MissingField(name));
    }

    /// A number that is not one: exactly InvalidField with the field and the value.
    #[test]
    fn event_with_a_bad_number(v in "[^<&0-9 \\t\\r\\n][^<&]{0,20}", field in 0usize..2) {
        let (name, old) = [("CreateTime", "1403610513"), ("MainDepartment", "1")][field];
        let xml = EVENT.replacen(&format!("<{name}>{old}</{name}>"), &format!("<{name}><![CDATA[{v}]]></{name}>"), 1);
        prop_assume!(v.trim().parse::<u64>().is_err());
        prop_assert_eq!(
            parse_event(&xml).unwrap_err(),
            EventParseError::InvalidField { field: name, value: v.clone() }
        );
    }
}

#[test]
fn the_valid_event_parses() {
    let e = parse_event(EVENT).unwrap();
    assert_eq!(e.create_time, 1403610513);
}
