//! Every published callback-crypto vector of §14 (A–E), plus malformed inputs and the error each gives.

use aes::Aes256;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use wecom::crypto::{CryptoError, MsgCrypt};
use wecom::event::{parse_event, ContactChange, EventKind};

// A. Official Python SDK.
const A_TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
const A_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
const A_CORP: &str = "ww1436e0e65a779aee";
const A_ECHOSTR: &str =
    "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
const A_ENCRYPT: &str = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+";
const A_MSG: &str = "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>";

// B. Official doc worked example.
const B_TOKEN: &str = "QDG6eK";
const B_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const B_CORP: &str = "wx5823bf96d3bd56c7";
const B_ECHOSTR: &str =
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
const B_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";
const B_MSG: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>";

// C. wechatpy tests/test_crypto.py.
const C_TOKEN: &str = "123456";
const C_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const C_CORP: &str = "wx49f0ab532d5d035a";
const C_ECHOSTR: &str =
    "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";
const C_DECRYPT: &str = "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=";
const C_ENC_MSG: &str = "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>";
const C_ENCRYPT: &str = "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3";

// D. go-workwx real capture.
const D_TOKEN: &str = "kjr2TKI8umCBfVF3wAHk8JiPwma5VBme";
const D_KEY: &str = "4Ma3YBrSBbX2aez8MJpXGBne5LSDwgGqHbhM9WPYIws";
const D_CORP: &str = "ww6a112864f8022910";
/// As it appears in the GET query: percent-encoded.
const D_ECHOSTR_QUERY: &str = "6KmUQuPVu7UhjyVqRdbo5SfcRqaHvbUlKSHFvBV2ZuR6TIlKsygcfeSd1GDplg1C5KSKr6UPHCaC%2FnIX3ZNt9w%3D%3D";

// E. Computed with vector A's settings.
const E1_MSG: &str = "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID></xml>";
const E1_ENCRYPT: &str = "scEag1243Fmy/fYz4Ux8Dxvvexg7xGLX8vQ8OMLbLH7d2NeGEoYxh2WV2PJLfi9u6IkoyLX8YpAOVSZ07OGw7Mza+A3Ad8pdYct59sbWsJZ9DBSGlWNcNOJxeL07sDg4X3X6y40Xs02CCK2OzKeIyg/2OuTX4Bhzt0mTfw226wWOpEYSKLZE4ecCAh10BYfr1p2JBW4cznK+xxZXR2jQWt3qFkUyL5nF0V3PUZvXkpRq3qD4S1/KAxSe0PKo2lJ06EH6LD0Qt/8Boz2yt3BAfgLgyR0VyTWbDGjtfxcJ8gj14MZIugUu+r5Ze1cI60DMfflkusgXw6k6Ls5EtkRJmSsmTPq5jk6OV8R0tDjBWtWf1SCggLtQV9vtBBzQn+PWb0ExUCNRd3HAWwQrh3EyvgWiKfOH7l9Ah8vPxYQZVxlOL9b5vVuj50hbKzwCTIl8kdsvdCzhM5zCvXae3Xjcow==";
const E2_ENCRYPT: &str = "scEag1243Fmy/fYz4Ux8D1JqlfrdBfE8w9ilHbiAKXp3qTtTeU3NocfI36A9eudRn08T3oN072XfoBw9EPYuCrYVNdHZZMmeibHdUn6BND6ff/UE6qJyeIkm3S86rFNw";

fn a() -> MsgCrypt {
    MsgCrypt::new(A_TOKEN, A_KEY, A_CORP).unwrap()
}

/// The 32-byte AES key, decoded the way every other SDK does (`key + "="`, trailing bits ignored).
fn aes_key(encoding_aes_key: &str) -> [u8; 32] {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    lenient
        .decode(encoding_aes_key)
        .unwrap()
        .try_into()
        .unwrap()
}

/// The raw decrypted buffer (random | len | msg | receive_id | padding), to check pad and prefix.
fn raw_plain(encoding_aes_key: &str, encrypt: &str) -> Vec<u8> {
    let key = aes_key(encoding_aes_key);
    cbc::Decryptor::<Aes256>::new(&key.into(), key[..16].into())
        .decrypt_padded_vec_mut::<NoPadding>(&STANDARD.decode(encrypt).unwrap())
        .unwrap()
}

/// Encrypts an arbitrary (already block-aligned) buffer, to forge malformed plaintexts.
fn raw_encrypt(encoding_aes_key: &str, plain: &[u8]) -> String {
    let key = aes_key(encoding_aes_key);
    STANDARD.encode(
        cbc::Encryptor::<Aes256>::new(&key.into(), key[..16].into())
            .encrypt_padded_vec_mut::<NoPadding>(plain),
    )
}

fn random_of(encoding_aes_key: &str, encrypt: &str) -> [u8; 16] {
    raw_plain(encoding_aes_key, encrypt)[..16]
        .try_into()
        .unwrap()
}

fn pad_of(encoding_aes_key: &str, encrypt: &str) -> u8 {
    *raw_plain(encoding_aes_key, encrypt).last().unwrap()
}

fn envelope(to: &str, encrypt: &str, agent: &str) -> String {
    format!("<xml><ToUserName><![CDATA[{to}]]></ToUserName><AgentID><![CDATA[{agent}]]></AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
}

// ---- A -------------------------------------------------------------------------------------

#[test]
fn a_verify_url() {
    let c = a();
    let plain = c
        .verify_url(
            "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
            "1476416373",
            "47744683",
            A_ECHOSTR,
        )
        .unwrap();
    assert_eq!(plain, "1288432023552776189");
    assert_eq!(STANDARD.decode(A_ECHOSTR).unwrap().len(), 64);
    assert_eq!(pad_of(A_KEY, A_ECHOSTR), 7);
    assert_eq!(&random_of(A_KEY, A_ECHOSTR), b"8908d0ff052afda0");
    // Re-encrypting with the captured prefix reproduces the ciphertext byte for byte.
    assert_eq!(
        c.encrypt_with_random(&plain, b"8908d0ff052afda0"),
        A_ECHOSTR
    );
}

#[test]
fn a_decrypt_msg() {
    let c = a();
    let body = envelope(A_CORP, A_ENCRYPT, "1000002");
    let msg = c
        .decrypt_message(
            "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
            "1476422779",
            "1597212914",
            &body,
        )
        .unwrap();
    assert_eq!(msg, A_MSG);
    assert_eq!(msg.len(), 228);
    assert_eq!(STANDARD.decode(A_ENCRYPT).unwrap().len(), 288);
    assert_eq!(pad_of(A_KEY, A_ENCRYPT), 22);
    let random = random_of(A_KEY, A_ENCRYPT);
    assert_eq!(c.encrypt_with_random(&msg, &random), A_ENCRYPT);
}

// ---- B -------------------------------------------------------------------------------------

#[test]
fn b_verify_url_from_query() {
    let c = MsgCrypt::new(B_TOKEN, B_KEY, B_CORP).unwrap();
    let query = "P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D";
    let echostr = percent_encoding::percent_decode_str(query)
        .decode_utf8()
        .unwrap();
    assert_eq!(echostr, B_ECHOSTR);
    let plain = c
        .verify_url(
            "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
            "1409659589",
            "263014780",
            &echostr,
        )
        .unwrap();
    assert_eq!(plain, "1616140317555161061");
    // A form decoder turning `+` into a space breaks it (§12.4).
    assert_eq!(
        c.verify_url(
            "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
            "1409659589",
            "263014780",
            &B_ECHOSTR.replace('+', " "),
        ),
        Err(CryptoError::InvalidSignature)
    );
}

#[test]
fn b_decrypt_msg() {
    let c = MsgCrypt::new(B_TOKEN, B_KEY, B_CORP).unwrap();
    // Sorted inputs: 1372623149 < 1409659813 < QDG6eK < RypE….
    assert_eq!(
        c.signature("1409659813", "1372623149", B_ENCRYPT),
        "477715d11cdb4164915debcba66cb864d751f3e6"
    );
    // Plain (non-CDATA) Encrypt, newlines, another element order.
    let body = format!("<xml>\n<Encrypt>{B_ENCRYPT}</Encrypt>\n<ToUserName>{B_CORP}</ToUserName>\n<AgentID>218</AgentID>\n</xml>");
    let msg = c
        .decrypt_message(
            "477715d11cdb4164915debcba66cb864d751f3e6",
            "1409659813",
            "1372623149",
            &body,
        )
        .unwrap();
    assert_eq!(msg, B_MSG);
    assert_eq!(msg.len(), 284);
    assert_eq!(STANDARD.decode(B_ENCRYPT).unwrap().len(), 352);
    assert_eq!(pad_of(B_KEY, B_ENCRYPT), 30);
    assert_eq!(&random_of(B_KEY, B_ENCRYPT), b"0960688932c47ef1");
    assert_eq!(c.encrypt_with_random(&msg, b"0960688932c47ef1"), B_ENCRYPT);
    let ev = parse_event(&msg).unwrap();
    assert_eq!(ev.from_user_name, "mycreate");
    assert_eq!(ev.agent_id, Some(218));
}

// ---- C -------------------------------------------------------------------------------------

fn c() -> MsgCrypt {
    MsgCrypt::new(C_TOKEN, C_KEY, C_CORP).unwrap()
}

#[test]
fn c_check_signature_and_negative_nonce() {
    let c = c();
    let sig = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96";
    assert_eq!(
        c.verify_url(sig, "1411443780", "437374425", C_ECHOSTR)
            .unwrap(),
        "5927782489442352469"
    );
    let err = c
        .verify_url(sig, "1411443780", "437374424", C_ECHOSTR)
        .unwrap_err();
    assert_eq!(err, CryptoError::InvalidSignature);
    assert_eq!(err.code(), -40001);
}

#[test]
fn c_decrypt_message_pad_1() {
    let c = c();
    let body = envelope(C_CORP, C_DECRYPT, "1");
    let msg = c
        .decrypt_message(
            "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
            "1411525903",
            "461056294",
            &body,
        )
        .unwrap();
    assert_eq!(msg.len(), 281);
    assert_eq!(pad_of(C_KEY, C_DECRYPT), 1, "the smallest padding");
    let ev = parse_event(&msg).unwrap();
    assert_eq!(ev.from_user_name, "messense");
    assert_eq!(ev.msg_type, "text");
    assert_eq!(ev.agent_id, Some(1));
    assert!(msg.contains("<![CDATA[test]]>") && msg.contains("4363689963896700987"));
    assert_eq!(
        c.encrypt_with_random(&msg, &random_of(C_KEY, C_DECRYPT)),
        C_DECRYPT
    );
}

#[test]
fn c_encrypt_message_byte_for_byte() {
    let c = c();
    assert_eq!(C_ENC_MSG.len(), 247);
    let m =
        c.encrypt_message_with_random(C_ENC_MSG, "1411525903", "461056294", b"1234567890123456");
    assert_eq!(m.encrypt, C_ENCRYPT);
    assert_eq!(m.msg_signature, "407518b7649e86ef23978113f92d27afa9296533");
    assert_eq!(m.timestamp, "1411525903");
    assert_eq!(m.nonce, "461056294");
    assert_eq!(pad_of(C_KEY, C_ENCRYPT), 3);
    // And it reads back through the passive-reply form.
    assert_eq!(
        c.decrypt_message(&m.msg_signature, "1411525903", "461056294", &m.reply_xml())
            .unwrap(),
        C_ENC_MSG
    );
}

// ---- D -------------------------------------------------------------------------------------

#[test]
fn d_real_capture() {
    let c = MsgCrypt::new(D_TOKEN, D_KEY, D_CORP).unwrap();
    let echostr = percent_encoding::percent_decode_str(D_ECHOSTR_QUERY)
        .decode_utf8()
        .unwrap();
    let plain = c
        .verify_url(
            "1ba3cb09c0d2c2b3ed6900d37f91a6efae6cb011",
            "1583940690",
            "VHh7ymSeb0jc4lSb",
            &echostr,
        )
        .unwrap();
    assert_eq!(plain, "94966531020182955848408");
    assert_eq!(pad_of(D_KEY, &echostr), 3);
    assert_eq!(&random_of(D_KEY, &echostr), b"5QMsYcwjR95t2vmC");
    assert_eq!(c.encrypt_with_random(&plain, b"5QMsYcwjR95t2vmC"), echostr);
    // The receive id is only known from the plaintext: another one is −40005.
    let other = MsgCrypt::new(D_TOKEN, D_KEY, "ww0000000000000000").unwrap();
    let err = other
        .verify_url(
            "1ba3cb09c0d2c2b3ed6900d37f91a6efae6cb011",
            "1583940690",
            "VHh7ymSeb0jc4lSb",
            &echostr,
        )
        .unwrap_err();
    assert_eq!(err.code(), -40005);
    assert_eq!(
        err,
        CryptoError::InvalidReceiveId {
            expected: "ww0000000000000000".into(),
            actual: D_CORP.into()
        }
    );
}

// ---- E -------------------------------------------------------------------------------------

#[test]
fn e1_change_contact() {
    let c = a();
    assert_eq!(E1_MSG.len(), 307);
    let m = c.encrypt_message_with_random(E1_MSG, "1700000000", "1234567890", b"0123456789abcdef");
    assert_eq!(m.encrypt, E1_ENCRYPT);
    assert_eq!(m.msg_signature, "73d89c63e4c4c94daea7881ebe0380dbdc927794");
    assert_eq!(pad_of(A_KEY, E1_ENCRYPT), 7);
    let body = m.envelope_xml(A_CORP, "1000002");
    let msg = c
        .decrypt_message(&m.msg_signature, "1700000000", "1234567890", &body)
        .unwrap();
    assert_eq!(msg, E1_MSG);
    assert_eq!(
        parse_event(&msg).unwrap().kind,
        EventKind::ChangeContact(ContactChange::DeleteUser {
            user_id: "zhangsan".into()
        })
    );
}

#[test]
fn e2_full_block_padding() {
    let c = a();
    let msg = "abcdefghijklmnopqrstuvwxyz";
    let m = c.encrypt_message_with_random(msg, "1700000000", "nonce42", b"0123456789abcdef");
    assert_eq!(m.encrypt, E2_ENCRYPT);
    assert_eq!(m.msg_signature, "e35ab72fbc15a5da8aa7a3cf6adbdb8a2bc5c8d2");
    assert_eq!(STANDARD.decode(E2_ENCRYPT).unwrap().len(), 96);
    assert_eq!(pad_of(A_KEY, E2_ENCRYPT), 32, "a whole block of padding");
    assert_eq!(
        c.decrypt_message(
            &m.msg_signature,
            "1700000000",
            "nonce42",
            &m.envelope_xml(A_CORP, "1")
        )
        .unwrap(),
        msg
    );
}

// ---- malformed input -----------------------------------------------------------------------

/// `random | len | msg | receive_id` with a given padding byte and count, AES-encrypted under key A.
fn forge(
    msg_len_field: u32,
    msg: &[u8],
    receive_id: &[u8],
    pad_byte: u8,
    pad_count: usize,
) -> String {
    let mut buf = b"0123456789abcdef".to_vec();
    buf.extend_from_slice(&msg_len_field.to_be_bytes());
    buf.extend_from_slice(msg);
    buf.extend_from_slice(receive_id);
    buf.extend(std::iter::repeat_n(pad_byte, pad_count));
    assert_eq!(buf.len() % 32, 0, "forged buffer must stay block-aligned");
    raw_encrypt(A_KEY, &buf)
}

/// Pads `16 + 4 + msg + id` to 32 with `pad` correct bytes; returns the count.
fn pad_needed(msg: &[u8], id: &[u8]) -> usize {
    32 - (20 + msg.len() + id.len()) % 32
}

#[test]
fn forge_helper_matches_real_encryption() {
    let (msg, id) = (b"hello".as_slice(), A_CORP.as_bytes());
    let n = pad_needed(msg, id);
    assert_eq!(
        forge(5, msg, id, n as u8, n),
        a().encrypt_with_random("hello", b"0123456789abcdef")
    );
}

#[test]
fn bad_signature() {
    let c = a();
    let body = envelope(A_CORP, A_ENCRYPT, "1000002");
    for sig in [
        "0c3914025cb4b4d68103f6bfc8db550f79dcf48f",
        "",
        "0C3914025CB4B4D68103F6BFC8DB550F79DCF48E",
    ] {
        assert_eq!(
            c.decrypt_message(sig, "1476422779", "1597212914", &body),
            Err(CryptoError::InvalidSignature)
        );
    }
    // Another timestamp or token breaks it too.
    assert_eq!(
        c.decrypt_message(
            "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
            "1476422780",
            "1597212914",
            &body
        ),
        Err(CryptoError::InvalidSignature)
    );
    let wrong_token = MsgCrypt::new("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYO", A_KEY, A_CORP).unwrap();
    assert_eq!(
        wrong_token.decrypt_message(
            "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
            "1476422779",
            "1597212914",
            &body
        ),
        Err(CryptoError::InvalidSignature)
    );
}

#[test]
fn signature_is_checked_before_decrypting() {
    // Garbage ciphertext with a wrong signature reports the signature, not the garbage.
    let c = a();
    let body = envelope(A_CORP, "!!!not base64!!!", "1");
    assert_eq!(
        c.decrypt_message(&"0".repeat(40), "1", "2", &body),
        Err(CryptoError::InvalidSignature)
    );
    assert_eq!(
        c.verify_url(&"0".repeat(40), "1", "2", "%%%"),
        Err(CryptoError::InvalidSignature)
    );
}

#[test]
fn wrong_receive_id() {
    let other = MsgCrypt::new(A_TOKEN, A_KEY, "ww1436e0e65a779aeF").unwrap();
    let err = other
        .decrypt_message(
            "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
            "1476422779",
            "1597212914",
            &envelope(A_CORP, A_ENCRYPT, "1000002"),
        )
        .unwrap_err();
    assert_eq!(err.code(), -40005);
    // A receive id that is only a prefix, or empty, is a mismatch too (exact bytes).
    for id in ["ww1436e0e65a779ae", "", "ww1436e0e65a779aee "] {
        let c = MsgCrypt::new(A_TOKEN, A_KEY, id).unwrap();
        assert!(
            matches!(
                c.decrypt(A_ENCRYPT),
                Err(CryptoError::InvalidReceiveId { .. })
            ),
            "{id:?}"
        );
    }
    // The personal-entity / robot case: an empty receive id on both sides is fine.
    let empty = MsgCrypt::new(A_TOKEN, A_KEY, "").unwrap();
    assert_eq!(empty.decrypt(&empty.encrypt("x")).unwrap(), "x");
}

#[test]
fn truncated_or_bad_base64() {
    let c = a();
    for (input, code) in [
        (&A_ENCRYPT[..A_ENCRYPT.len() - 1], -40010), // cut mid-quantum
        (&A_ENCRYPT[..A_ENCRYPT.len() - 2], -40010), //
        ("Kl7k joSf", -40010),                       // a space (form-decoded `+`)
        ("Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOn", -40007), // 24 bytes: not AES blocks
        (&A_ENCRYPT[..64], -40008),                  // 48 bytes: AES ok, not 32-aligned
        ("", -40008),                                // nothing at all
        (&A_ENCRYPT[..A_ENCRYPT.len() - 128], -40008), // 96 bytes cut: no padding at the end
    ] {
        let err = c.decrypt(input).unwrap_err();
        assert_eq!(err.code(), code, "{input:?}: {err}");
    }
    // Through the POST path with a valid signature over the damaged value.
    let cut = &A_ENCRYPT[..A_ENCRYPT.len() - 1];
    let sig = c.signature("1", "2", cut);
    assert_eq!(
        c.decrypt_message(&sig, "1", "2", &envelope(A_CORP, cut, "1"))
            .unwrap_err()
            .code(),
        -40010
    );
}

#[test]
fn padding_byte_out_of_range() {
    let c = a();
    let (msg, id) = (b"hi".as_slice(), A_CORP.as_bytes());
    let n = pad_needed(msg, id); // 32 - (20 + 2 + 18) % 32 = 24
    assert_eq!(n, 24);
    for pad_byte in [0u8, 33, 255] {
        let err = c.decrypt(&forge(2, msg, id, pad_byte, n)).unwrap_err();
        assert_eq!(
            err,
            CryptoError::IllegalBuffer("padding byte outside 1..=32")
        );
    }
    // Last byte in range but the other padding bytes disagree.
    let mut plain = b"0123456789abcdef".to_vec();
    plain.extend_from_slice(&2u32.to_be_bytes());
    plain.extend_from_slice(b"hi");
    plain.extend_from_slice(id);
    plain.extend(std::iter::repeat_n(23u8, 23));
    plain.push(24);
    assert_eq!(
        c.decrypt(&raw_encrypt(A_KEY, &plain)).unwrap_err().code(),
        -40008
    );
    // Sanity: the correct padding decrypts.
    assert_eq!(c.decrypt(&forge(2, msg, id, n as u8, n)).unwrap(), "hi");
}

#[test]
fn pad_32_and_pad_1_decrypt() {
    let c = a();
    let id = A_CORP.as_bytes();
    // 20 + 26 + 18 = 64 → a whole extra block of 32.
    let msg = b"abcdefghijklmnopqrstuvwxyz";
    assert_eq!(pad_needed(msg, id), 32);
    assert_eq!(
        c.decrypt(&forge(26, msg, id, 32, 32)).unwrap(),
        "abcdefghijklmnopqrstuvwxyz"
    );
    // 20 + 25 + 18 = 63 → one byte.
    let msg = b"abcdefghijklmnopqrstuvwxy";
    assert_eq!(pad_needed(msg, id), 1);
    assert_eq!(
        c.decrypt(&forge(25, msg, id, 1, 1)).unwrap(),
        "abcdefghijklmnopqrstuvwxy"
    );
}

#[test]
fn msg_len_too_long() {
    let c = a();
    let (msg, id) = (b"hi".as_slice(), A_CORP.as_bytes());
    let n = pad_needed(msg, id);
    // 2 + 18 bytes remain: 20 is the most msg_len may claim (then the receive id is empty → −40005).
    for claimed in [21u32, 1000, u32::MAX] {
        assert_eq!(
            c.decrypt(&forge(claimed, msg, id, n as u8, n)),
            Err(CryptoError::IllegalBuffer(
                "message length exceeds the decrypted data"
            )),
            "{claimed}"
        );
    }
    assert_eq!(
        c.decrypt(&forge(20, msg, id, n as u8, n))
            .unwrap_err()
            .code(),
        -40005
    );
    // A claimed length shorter than the message leaves bytes in front of the receive id.
    assert_eq!(
        c.decrypt(&forge(1, msg, id, n as u8, n))
            .unwrap_err()
            .code(),
        -40005
    );
    // Valid-looking padding that eats into random|len leaves too little.
    let mut plain = b"0123456789abcdef".to_vec();
    plain.extend(std::iter::repeat_n(16u8, 16));
    assert_eq!(
        c.decrypt(&raw_encrypt(A_KEY, &plain)),
        Err(CryptoError::IllegalBuffer(
            "plaintext shorter than random and length"
        ))
    );
}

#[test]
fn message_not_utf8() {
    let c = a();
    let (msg, id) = ([0xffu8, 0xfe].as_slice(), A_CORP.as_bytes());
    let n = pad_needed(msg, id);
    assert_eq!(
        c.decrypt(&forge(2, msg, id, n as u8, n)),
        Err(CryptoError::IllegalBuffer("message is not valid UTF-8"))
    );
}

#[test]
fn wrong_key_is_not_a_signature_error() {
    // Right token, wrong key: the signature passes and decryption then fails (−40008 or −40005).
    let wrong_key = MsgCrypt::new(A_TOKEN, B_KEY, A_CORP).unwrap();
    let err = wrong_key
        .decrypt_message(
            "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
            "1476422779",
            "1597212914",
            &envelope(A_CORP, A_ENCRYPT, "1000002"),
        )
        .unwrap_err();
    assert!(matches!(err.code(), -40008 | -40005), "{err}");
}

#[test]
fn key_of_wrong_length() {
    for key in [
        "",
        "abc",
        &A_KEY[..42],
        &format!("{A_KEY}x"),
        &format!("{A_KEY}="),
        "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhU",
    ] {
        let err = MsgCrypt::new(A_TOKEN, key, A_CORP).unwrap_err();
        assert!(matches!(err, CryptoError::InvalidAesKey(_)), "{key:?}");
        assert_eq!(err.code(), -40004);
    }
    // 43 characters, but not base64.
    let err = MsgCrypt::new(A_TOKEN, &format!("{}-", &A_KEY[..42]), A_CORP).unwrap_err();
    assert_eq!(err.code(), -40004);
}

#[test]
fn missing_or_broken_envelope() {
    let c = a();
    for body in [
        "",
        "<xml><ToUserName>x</ToUserName></xml>",
        "<xml><Encrypt>abc",
        "{\"Encrypt\":\"abc\"}",
    ] {
        let err = c.decrypt_message("x", "1", "2", body).unwrap_err();
        assert_eq!(err.code(), -40002, "{body:?}");
    }
}
