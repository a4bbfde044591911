//! Cross-checks `wecom::crypto` against wechatpy (an independent Python implementation), both ways.
//!
//! Each test starts ONE `python3 tests/wechatpy_crosscheck.py` and exchanges a batch of cases as JSON
//! over stdin/stdout. Inputs come from a seeded RNG, so a failure reproduces. A missing python3 or
//! wechatpy is a test failure (never a skip): install with `python3 -m pip install -r requirements-dev.txt`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use wecom::crypto::{extract_encrypt, CryptoError, MsgCrypt};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wechatpy_crosscheck.py");
const HINT: &str = "The callback-crypto cross-check needs python3 with wechatpy 2.0.0a26. \
                    Run: python3 -m pip install -r requirements-dev.txt (from the repository root)";

/// Runs the Python side once for a whole batch and returns one result per case.
fn wechatpy(op: &str, cases: &[Value]) -> Vec<Value> {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start python3: {e}.\n{HINT}"));
    let request = serde_json::to_vec(&json!({ "op": op, "cases": cases })).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A script that exits early (wechatpy missing) closes the pipe: its stderr says why, below.
    let _ = stdin.write_all(&request);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "wechatpy_crosscheck.py failed ({}):\n{stderr}\n{HINT}",
        out.status
    );
    let response: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("bad JSON from wechatpy_crosscheck.py ({e}); stderr:\n{stderr}")
    });
    let version = response["version"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("2."),
        "wechatpy {version} found, 2.x expected.\n{HINT}"
    );
    let results = response["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), cases.len(), "one result per case");
    results
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn alnum(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(*ALNUM.choose(rng).unwrap()))
        .collect()
}

fn digits(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// One app's callback settings. Receive ids vary in form and length (CorpID, SuiteID, empty for
/// robots), which moves the padding around.
struct App {
    token: String,
    key: String,
    receive_id: String,
}

impl App {
    fn random(rng: &mut StdRng) -> Self {
        let receive_id = match rng.gen_range(0..4) {
            0 => format!("ww{}", hex::encode(rng.gen::<[u8; 8]>())),
            1 => format!("wx{}", hex::encode(rng.gen::<[u8; 8]>())),
            2 => {
                let len = rng.gen_range(1..40);
                alnum(rng, len)
            }
            _ => String::new(),
        };
        let token_len = rng.gen_range(3..=32);
        Self {
            token: alnum(rng, token_len),
            key: alnum(rng, 43),
            receive_id,
        }
    }

    fn crypt(&self) -> MsgCrypt {
        MsgCrypt::new(&self.token, &self.key, &self.receive_id).unwrap()
    }

    fn json(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("token".into(), self.token.clone().into());
        m.insert("key".into(), self.key.clone().into());
        m.insert("receive_id".into(), self.receive_id.clone().into());
        m
    }
}

/// A string of exactly `len` UTF-8 bytes mixing ASCII (incl. XML specials), 2-byte, CJK and emoji.
fn message(rng: &mut StdRng, len: usize) -> String {
    const POOL: &[&str] = &[
        "a", "Z", "7", " ", "\n", "<", ">", "&", "]]>", "\"", "'", "é", "ж", "中", "文", "李",
        "四", "。", "😀", "🚀", "👍🏽",
    ];
    let mut s = String::with_capacity(len);
    while s.len() < len {
        let room = len - s.len();
        let piece = POOL.choose(rng).unwrap();
        if piece.len() <= room {
            s.push_str(piece);
        } else {
            s.push(char::from(*ALNUM.choose(rng).unwrap()));
        }
    }
    assert_eq!(s.len(), len);
    s
}

fn pad_of(msg: &str, receive_id: &str) -> usize {
    32 - (16 + 4 + msg.len() + receive_id.len()) % 32
}

/// Messages covering every length mod 32 (three times each) and every padding value 1..=32 (twice
/// each), plus empty, long, and XML-shaped ones; each with its own random app.
fn corpus(seed: u64) -> Vec<(App, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cases = Vec::new();
    for round in 0..3 {
        for residue in 0..32 {
            let app = App::random(&mut rng);
            let len = residue + 32 * rng.gen_range(0..10) + if round == 2 { 1024 } else { 0 };
            let msg = message(&mut rng, len);
            cases.push((app, msg));
        }
    }
    for _ in 0..2 {
        for pad in 1..=32usize {
            let app = App::random(&mut rng);
            // Choose the length so that 20 + len + receive_id is `pad` short of a 32-byte block.
            let used = 20 + app.receive_id.len();
            let base = (32 - pad + 32 * 4 - used % 32) % 32;
            let len = base + 32 * rng.gen_range(0..4);
            let msg = message(&mut rng, len);
            assert_eq!(pad_of(&msg, &app.receive_id), pad);
            cases.push((app, msg));
        }
    }
    let app = App::random(&mut rng);
    cases.push((app, String::new()));
    let app = App::random(&mut rng);
    let long = message(&mut rng, 20_000);
    cases.push((app, long));
    let app = App::random(&mut rng);
    let xml = format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1732400000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[create_user]]></ChangeType><UserID><![CDATA[lisi]]></UserID><Name><![CDATA[李四 😀]]></Name><Department><![CDATA[2,5]]></Department></xml>",
        app.receive_id
    );
    cases.push((app, xml));

    let mut by_len = BTreeMap::<usize, usize>::new();
    let mut by_pad = BTreeMap::<usize, usize>::new();
    for (app, msg) in &cases {
        *by_len.entry(msg.len() % 32).or_default() += 1;
        *by_pad.entry(pad_of(msg, &app.receive_id)).or_default() += 1;
    }
    assert!(
        (0..32).all(|r| by_len.get(&r).copied().unwrap_or(0) >= 2),
        "length residues: {by_len:?}"
    );
    assert!(
        (1..=32).all(|p| by_pad.get(&p).copied().unwrap_or(0) >= 2),
        "paddings: {by_pad:?}"
    );
    assert!(cases
        .iter()
        .any(|(_, m)| m.chars().any(|c| c.len_utf8() == 4)));
    assert!(cases.iter().any(|(_, m)| m.contains('中')));
    cases
}

fn plaintext(result: &Value) -> Result<&str, &str> {
    match (result["plaintext"].as_str(), result["error"].as_str()) {
        (Some(p), _) => Ok(p),
        (None, Some(e)) => Err(e),
        _ => panic!("malformed result {result}"),
    }
}

/// (a) Rust encrypts and signs; wechatpy verifies and decrypts. Tampered cases must be refused.
#[test]
fn rust_encrypts_wechatpy_decrypts() {
    let corpus = corpus(0x5745_434f_4d01);
    let mut rng = StdRng::seed_from_u64(1);
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for (app, msg) in &corpus {
        let timestamp = rng.gen_range(1_400_000_000u64..2_000_000_000).to_string();
        let nonce = if rng.gen() {
            alnum(&mut rng, 16)
        } else {
            digits(&mut rng, 10)
        };
        let sealed = app.crypt().encrypt_message(msg, &timestamp, &nonce);
        let mut case = app.json();
        case.insert("signature".into(), sealed.msg_signature.clone().into());
        case.insert("timestamp".into(), timestamp.into());
        case.insert("nonce".into(), nonce.into());
        case.insert(
            "body".into(),
            sealed.envelope_xml(&app.receive_id, "1000002").into(),
        );
        cases.push(Value::Object(case.clone()));
        expected.push(Ok(msg.as_str()));

        // Negative controls, every fifth message: a wrong signature, and a wrong receive id.
        if cases.len() % 5 == 1 {
            let mut bad_sig = case.clone();
            let mut flipped = sealed.msg_signature.clone();
            let last = flipped.pop();
            flipped.push(if last == Some('0') { '1' } else { '0' });
            bad_sig.insert("signature".into(), flipped.into());
            cases.push(Value::Object(bad_sig));
            expected.push(Err("InvalidSignatureException"));

            let mut bad_id = case;
            bad_id.insert("receive_id".into(), format!("{}x", app.receive_id).into());
            cases.push(Value::Object(bad_id));
            expected.push(Err("InvalidCorpIdException"));
        }
    }
    let results = wechatpy("decrypt", &cases);
    for (i, (result, want)) in results.iter().zip(&expected).enumerate() {
        assert_eq!(plaintext(result), *want, "case {i}: {}", cases[i]);
    }
}

/// (b) wechatpy encrypts (with its own random prefix) and signs; Rust verifies and decrypts.
#[test]
fn wechatpy_encrypts_rust_decrypts() {
    let corpus = corpus(0x5745_434f_4d02);
    let mut rng = StdRng::seed_from_u64(2);
    let mut cases = Vec::new();
    for (app, msg) in &corpus {
        let mut case = app.json();
        case.insert("msg".into(), msg.clone().into());
        case.insert("nonce".into(), alnum(&mut rng, 16).into());
        let timestamp = rng.gen_range(1_400_000_000u64..2_000_000_000).to_string();
        case.insert("timestamp".into(), timestamp.into());
        cases.push(Value::Object(case));
    }
    // The first case once more: wechatpy's own random prefix must make the ciphertext differ.
    cases.push(cases[0].clone());
    let mut results = wechatpy("encrypt", &cases);
    let again = results.pop().unwrap();
    assert_ne!(
        again["encrypt"], results[0]["encrypt"],
        "fresh random prefix"
    );
    for (i, ((app, msg), r)) in corpus.iter().zip(&results).enumerate() {
        assert!(r["error"].is_null(), "case {i}: wechatpy failed: {r}");
        let field = |k: &str| {
            r[k].as_str()
                .unwrap_or_else(|| panic!("case {i}: no {k} in {r}"))
        };
        let (xml, sig, ts, nonce) = (
            field("xml"),
            field("signature"),
            field("timestamp"),
            field("nonce"),
        );
        assert_eq!(extract_encrypt(xml).unwrap(), field("encrypt"), "case {i}");
        let crypt = app.crypt();
        assert_eq!(
            crypt.signature(ts, nonce, field("encrypt")),
            sig,
            "case {i}"
        );
        assert_eq!(
            crypt.decrypt_message(sig, ts, nonce, xml).as_deref(),
            Ok(msg.as_str()),
            "case {i}"
        );

        // The same ciphertext must be refused with a tampered nonce or another receive id.
        assert_eq!(
            crypt.decrypt_message(sig, ts, &format!("{nonce}x"), xml),
            Err(CryptoError::InvalidSignature),
            "case {i}"
        );
        let other = MsgCrypt::new(&app.token, &app.key, &format!("{}x", app.receive_id)).unwrap();
        assert!(
            matches!(
                other.decrypt_message(sig, ts, nonce, xml),
                Err(CryptoError::InvalidReceiveId { .. })
            ),
            "case {i}"
        );
    }
}

/// (c) URL verification (GET echostr), both ways, including the query's percent-encoding.
#[test]
fn echostr_both_ways() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut plaintexts: Vec<String> = (0..64)
        .map(|i| {
            let len = 19 + i % 5; // 19–23 digits, as seen from WeCom
            digits(&mut rng, len)
        })
        .collect();
    plaintexts.extend((0..32).map(|len| message(&mut rng, len)));
    let apps: Vec<App> = plaintexts.iter().map(|_| App::random(&mut rng)).collect();

    // Rust → wechatpy.
    let mut cases = Vec::new();
    for (app, plain) in apps.iter().zip(&plaintexts) {
        let timestamp = rng.gen_range(1_400_000_000u64..2_000_000_000).to_string();
        let nonce = digits(&mut rng, 9);
        let echostr = app.crypt().encrypt(plain);
        let mut case = app.json();
        case.insert(
            "signature".into(),
            app.crypt().signature(&timestamp, &nonce, &echostr).into(),
        );
        case.insert("timestamp".into(), timestamp.into());
        case.insert("nonce".into(), nonce.into());
        case.insert("echostr".into(), echostr.into());
        cases.push(Value::Object(case));
    }
    for (i, (r, want)) in wechatpy("check_signature", &cases)
        .iter()
        .zip(&plaintexts)
        .enumerate()
    {
        assert_eq!(plaintext(r), Ok(want.as_str()), "case {i}: {}", cases[i]);
    }

    // wechatpy → Rust, through a percent-encoded GET query as WeCom sends it (§12.4).
    let mut cases = Vec::new();
    for (app, plain) in apps.iter().zip(&plaintexts) {
        let mut case = app.json();
        case.insert("plaintext".into(), plain.clone().into());
        case.insert("timestamp".into(), digits(&mut rng, 10).into());
        case.insert("nonce".into(), alnum(&mut rng, 16).into());
        cases.push(Value::Object(case));
    }
    let results = wechatpy("make_echostr", &cases);
    for (i, ((app, plain), r)) in apps.iter().zip(&plaintexts).zip(&results).enumerate() {
        let (echostr, sig) = (
            r["echostr"].as_str().unwrap(),
            r["signature"].as_str().unwrap(),
        );
        let (ts, nonce) = (
            cases[i]["timestamp"].as_str().unwrap(),
            cases[i]["nonce"].as_str().unwrap(),
        );
        let query = format!(
            "msg_signature={sig}&timestamp={ts}&nonce={nonce}&echostr={}",
            percent_encoding::utf8_percent_encode(echostr, percent_encoding::NON_ALPHANUMERIC)
        );
        let encoded = query.rsplit_once("echostr=").unwrap().1;
        let decoded = percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .unwrap();
        assert_eq!(
            app.crypt().verify_url(sig, ts, nonce, &decoded).as_deref(),
            Ok(plain.as_str()),
            "case {i}"
        );
    }
}
