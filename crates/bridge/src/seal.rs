//! Secrets at rest (app secrets, callback Token and EncodingAESKey) are sealed with
//! AES-256-GCM under the instance key. The associated data names the row and field,
//! so a sealed value copied into another tenant's row or field does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::Path;

/// Version byte of the sealed format: `0x01 | nonce (12) | ciphertext+tag`.
const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("instance key must be 32 bytes, base64-encoded (got {0} bytes)")]
    BadKeyLength(usize),
    #[error("instance key is not valid base64")]
    BadKeyEncoding,
    #[error("cannot read or create the instance key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "a sealed secret could not be opened: wrong instance key, or the value was tampered with"
    )]
    Open,
    #[error("a sealed secret has an unknown format")]
    Format,
}

/// The instance key. Never printed.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    /// Root of the keys derived for other purposes ([`Sealer::derive_key`]).
    derive_root: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<instance key>)")
    }
}

impl Sealer {
    pub fn from_key(key: &[u8]) -> Result<Self, SealError> {
        if key.len() != 32 {
            return Err(SealError::BadKeyLength(key.len()));
        }
        let cipher =
            Aes256Gcm::new_from_slice(key).map_err(|_| SealError::BadKeyLength(key.len()))?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(b"wecom-bridge key derivation v1");
        let derive_root = mac.finalize().into_bytes().into();
        Ok(Sealer {
            cipher,
            derive_root,
        })
    }

    pub fn from_base64(b64: &str) -> Result<Self, SealError> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| SealError::BadKeyEncoding)?;
        Self::from_key(&key)
    }

    /// Reads `instance.key` from the data directory, creating it (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SealError> {
        let path = data_dir.join("instance.key");
        let io = |source| SealError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(io)?;
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                let text = base64::engine::general_purpose::STANDARD.encode(key);
                write_private(&path, text.as_bytes()).map_err(io)?;
                Self::from_key(&key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Seals `plaintext`; `context` (e.g. `tenant:7:wecom:1000002:secret`) must be given again to open.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != FORMAT_V1 {
            return Err(SealError::Format);
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&sealed[1..13]),
                Payload {
                    msg: &sealed[13..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }

    /// A 32-byte key for `purpose` (e.g. `oauth-state`), derived from the instance key
    /// (HMAC-SHA256): the same on every instance sharing the instance key, independent
    /// of the sealing key and of every other purpose's key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.derive_root).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn seal_str(&self, context: &str, s: &str) -> Vec<u8> {
        self.seal(context, s.as_bytes())
    }

    pub fn open_string(&self, context: &str, sealed: &[u8]) -> Result<String, SealError> {
        String::from_utf8(self.open(context, sealed)?).map_err(|_| SealError::Format)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let s = Sealer::from_key(&[7u8; 32]).unwrap();
        let sealed = s.seal_str("tenant:1:secret", "topsecret");
        assert!(!sealed.windows(9).any(|w| w == b"topsecret"));
        assert_eq!(
            s.open_string("tenant:1:secret", &sealed).unwrap(),
            "topsecret"
        );
        assert!(matches!(
            s.open("tenant:2:secret", &sealed),
            Err(SealError::Open)
        ));
        let other = Sealer::from_key(&[8u8; 32]).unwrap();
        assert!(other.open("tenant:1:secret", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(s.open("tenant:1:secret", &tampered).is_err());
        assert!(matches!(s.open("x", b"short"), Err(SealError::Format)));
    }

    #[test]
    fn derived_keys_follow_the_instance_key_and_purpose() {
        let a = Sealer::from_key(&[7u8; 32]).unwrap();
        let b = Sealer::from_key(&[7u8; 32]).unwrap();
        let c = Sealer::from_key(&[8u8; 32]).unwrap();
        assert_eq!(a.derive_key("oauth-state"), b.derive_key("oauth-state"));
        assert_ne!(a.derive_key("oauth-state"), c.derive_key("oauth-state"));
        assert_ne!(a.derive_key("oauth-state"), a.derive_key("other"));
        assert_ne!(a.derive_key("oauth-state"), [7u8; 32]);
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("seal-test-{}", rand::random::<u64>()));
        let a = Sealer::load_or_create(&dir).unwrap();
        let sealed = a.seal_str("c", "v");
        let b = Sealer::load_or_create(&dir).unwrap();
        assert_eq!(b.open_string("c", &sealed).unwrap(), "v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("instance.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).ok();
        assert!(matches!(
            Sealer::from_base64("AAAA"),
            Err(SealError::BadKeyLength(3))
        ));
    }
}
