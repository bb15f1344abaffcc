//! `enc:v1:<base64>`: a secret encrypted with AES-256-GCM under a master key
//! held in Envoy's environment, so the configuration (and Envoy's
//! `/config_dump`) carries only ciphertext.
//!
//! Layout after base64 (standard alphabet, padded): key id (4 bytes: the
//! first bytes of SHA-256 of a label and the master key, naming which
//! master key sealed it without revealing it) ‖ nonce (12 random bytes) ‖
//! ciphertext ‖ tag (16). The associated data names what the secret belongs
//! to (`provider:<name>`, `consumer:<name>`), so a value copied to another
//! provider does not open. The filter only decrypts; `llm-gateway-render
//! keys` encrypts, with randomness drawn there.

use super::Secret;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const PREFIX: &str = "enc:";
const V1: &str = "v1:";
/// The master key, base64 of 32 bytes.
pub const MASTER_KEY_ENV: &str = "LLMGW_MASTER_KEY";
/// The master key being retired during a rotation (optional).
pub const PREVIOUS_MASTER_KEY_ENV: &str = "LLMGW_MASTER_KEY_PREVIOUS";
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// What a secret belongs to: its associated data.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    Provider(&'a str),
    Consumer(&'a str),
}

impl Purpose<'_> {
    fn aad(&self) -> Vec<u8> {
        let (kind, name) = match self {
            Purpose::Provider(n) => ("provider", n),
            Purpose::Consumer(n) => ("consumer", n),
        };
        format!("llm-gateway enc:v1 {kind}:{name}").into_bytes()
    }
}

/// One master key and its id.
pub struct MasterKey {
    id: [u8; KEY_ID_LEN],
    key: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    /// Parses base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().ok()?;
        let mut h = Sha256::new();
        h.update(b"llm-gateway master key id");
        h.update(key);
        let digest = h.finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Some(Self {
            id,
            key: Zeroizing::new(key),
        })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.key.as_slice().into())
    }

    /// Seals `plain` with the given nonce (the caller draws it at random).
    pub fn encrypt(&self, plain: &str, purpose: Purpose, nonce: [u8; NONCE_LEN]) -> String {
        let aad = purpose.aad();
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + sealed.len());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{V1}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }
}

/// The master keys a filter or the CLI may open values with.
#[derive(Default)]
pub struct MasterKeys(Vec<MasterKey>);

/// Why a value does not open. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// No master key is configured (`LLMGW_MASTER_KEY` unset).
    NoMasterKey,
    /// A master key variable is set but not base64 of 32 bytes.
    BadMasterKey(&'static str),
    UnknownVersion(String),
    Malformed,
    Truncated,
    /// Sealed by a master key that is not configured.
    WrongMasterKey,
    /// The key matches but the value does not open: changed, or sealed for
    /// something else (another provider).
    Tampered,
    NotUtf8,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NoMasterKey => write!(f, "is encrypted but {MASTER_KEY_ENV} is not set"),
            OpenError::BadMasterKey(var) => {
                write!(f, "cannot be decrypted: {var} must be base64 of 32 bytes")
            }
            OpenError::UnknownVersion(v) => {
                write!(f, "unknown encryption version '{v}' (this build reads enc:v1)")
            }
            OpenError::Malformed => write!(f, "is not valid enc:v1 base64"),
            OpenError::Truncated => write!(f, "is truncated"),
            OpenError::WrongMasterKey => {
                write!(f, "cannot be decrypted with the configured master key")
            }
            OpenError::Tampered => write!(
                f,
                "cannot be decrypted with the configured master key (altered, or encrypted for another name)"
            ),
            OpenError::NotUtf8 => write!(f, "decrypts to something that is not text"),
        }
    }
}

impl MasterKeys {
    /// Reads `LLMGW_MASTER_KEY` and `LLMGW_MASTER_KEY_PREVIOUS` through `env`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, OpenError> {
        let mut keys = Vec::new();
        for var in [MASTER_KEY_ENV, PREVIOUS_MASTER_KEY_ENV] {
            if let Some(text) = env(var).filter(|t| !t.trim().is_empty()) {
                keys.push(MasterKey::parse(&text).ok_or(OpenError::BadMasterKey(var))?);
            }
        }
        Ok(Self(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key new values are sealed with (`LLMGW_MASTER_KEY`).
    pub fn current(&self) -> Option<&MasterKey> {
        self.0.first()
    }

    /// Opens an `enc:` value.
    pub fn open(&self, value: &str, purpose: Purpose) -> Result<Secret, OpenError> {
        let rest = value.strip_prefix(PREFIX).ok_or(OpenError::Malformed)?;
        let Some(body) = rest.strip_prefix(V1) else {
            let version = rest.split(':').next().unwrap_or_default();
            return Err(OpenError::UnknownVersion(
                version.chars().take(16).collect(),
            ));
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < KEY_ID_LEN + NONCE_LEN + TAG_LEN {
            return Err(OpenError::Truncated);
        }
        if self.0.is_empty() {
            return Err(OpenError::NoMasterKey);
        }
        let (id, rest) = bytes.split_at(KEY_ID_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let key = self
            .0
            .iter()
            .find(|k| k.id == id)
            .ok_or(OpenError::WrongMasterKey)?;
        let aad = purpose.aad();
        let plain = key
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Tampered)?;
        let text = std::str::from_utf8(&plain).map_err(|_| OpenError::NotUtf8)?;
        Ok(Zeroizing::new(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const OTHER: &str = "HxwdHhkaGxgXFBUWERITEA8MDQ4LCAkKBwQFBgMAAQI=";

    fn keys(vars: &[(&str, &str)]) -> MasterKeys {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        MasterKeys::from_env(&|n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
            .unwrap()
    }

    #[test]
    fn nist_aes_256_gcm_vector() {
        // NIST GCM test vectors (gcmEncryptExtIV256), Count = 0 with a
        // 128-bit plaintext and no AAD.
        let key = hex("31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22");
        let iv = hex("0d18e06c7c725ac9e362e1ce");
        let pt = hex("2db5168e932556f8089a0622981d017d");
        let sealed = Aes256Gcm::new(key.as_slice().into())
            .encrypt(Nonce::from_slice(&iv), pt.as_slice())
            .unwrap();
        assert_eq!(
            sealed,
            [
                hex("fa4362189661d163fcd6a56d8bf0405a"),
                hex("d636ac1bbedd5cc3ee727dc2ab4a9489")
            ]
            .concat()
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn round_trip_and_rotation() {
        let k = keys(&[(MASTER_KEY_ENV, MASTER)]);
        let sealed = k
            .current()
            .unwrap()
            .encrypt("sk-live", Purpose::Provider("openai"), [7; 12]);
        assert!(sealed.starts_with("enc:v1:"));
        assert!(!sealed.contains("sk-live"));
        assert_eq!(
            k.open(&sealed, Purpose::Provider("openai"))
                .unwrap()
                .as_str(),
            "sk-live"
        );
        // During a rotation the old master key is the previous one: values
        // sealed by either open.
        let rotating = keys(&[(MASTER_KEY_ENV, OTHER), (PREVIOUS_MASTER_KEY_ENV, MASTER)]);
        assert_eq!(
            rotating
                .open(&sealed, Purpose::Provider("openai"))
                .unwrap()
                .as_str(),
            "sk-live"
        );
        let resealed =
            rotating
                .current()
                .unwrap()
                .encrypt("sk-live", Purpose::Provider("openai"), [8; 12]);
        assert_eq!(
            keys(&[(MASTER_KEY_ENV, OTHER)])
                .open(&resealed, Purpose::Provider("openai"))
                .unwrap()
                .as_str(),
            "sk-live"
        );
    }

    #[test]
    fn every_failure_is_named_and_never_shows_the_secret() {
        let k = keys(&[(MASTER_KEY_ENV, MASTER)]);
        let sealed = k
            .current()
            .unwrap()
            .encrypt("sk-live", Purpose::Provider("a"), [1; 12]);
        let p = Purpose::Provider("a");
        // Another provider's name is other associated data.
        assert_eq!(
            k.open(&sealed, Purpose::Provider("b")).unwrap_err(),
            OpenError::Tampered
        );
        assert_eq!(
            k.open(&sealed, Purpose::Consumer("a")).unwrap_err(),
            OpenError::Tampered
        );
        assert_eq!(
            keys(&[(MASTER_KEY_ENV, OTHER)])
                .open(&sealed, p)
                .unwrap_err(),
            OpenError::WrongMasterKey
        );
        assert_eq!(
            MasterKeys::default().open(&sealed, p).unwrap_err(),
            OpenError::NoMasterKey
        );
        // One bit changed anywhere after the key id.
        let body = base64::engine::general_purpose::STANDARD
            .decode(sealed.strip_prefix("enc:v1:").unwrap())
            .unwrap();
        for i in KEY_ID_LEN..body.len() {
            let mut t = body.clone();
            t[i] ^= 1;
            let v = format!(
                "enc:v1:{}",
                base64::engine::general_purpose::STANDARD.encode(&t)
            );
            assert_eq!(k.open(&v, p).unwrap_err(), OpenError::Tampered, "byte {i}");
        }
        let short = format!(
            "enc:v1:{}",
            base64::engine::general_purpose::STANDARD.encode(&body[..KEY_ID_LEN + NONCE_LEN + 15])
        );
        assert_eq!(k.open(&short, p).unwrap_err(), OpenError::Truncated);
        assert_eq!(
            k.open("enc:v1:!!notbase64", p).unwrap_err(),
            OpenError::Malformed
        );
        assert_eq!(
            k.open("enc:v2:AAAA", p).unwrap_err(),
            OpenError::UnknownVersion("v2".into())
        );
        let bad = MasterKeys::from_env(&|n| (n == MASTER_KEY_ENV).then(|| "c2hvcnQ=".to_string()));
        assert_eq!(bad.err(), Some(OpenError::BadMasterKey(MASTER_KEY_ENV)));
        for e in [
            OpenError::Tampered,
            OpenError::WrongMasterKey,
            OpenError::Truncated,
        ] {
            assert!(!e.to_string().contains("sk-live"));
        }
    }
}
