//! A Google service account's JSON key, and the JWT (RS256) it signs for
//! Google's OAuth JWT bearer grant (RFC 7523).

use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::{BoxedUint, PrivateKey};
use serde::Deserialize;
use sha2::Sha256;

/// A service account's email and key, parsed once at configure time.
pub struct ServiceAccount {
    pub email: String,
    /// The key file's `token_uri`: the audience of its JWTs (also when the
    /// call goes through another URL, a private endpoint say).
    pub audience: String,
    key: SigningKey<Sha256>,
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl ServiceAccount {
    /// Reads a JSON key file's text. The error never quotes the key.
    pub fn parse(json: &str) -> Result<Self, String> {
        let file: KeyFile = serde_json::from_str(json).map_err(|e| {
            format!(
                "is not a service account's JSON key ({})",
                e.classify_name()
            )
        })?;
        if file.kind.as_deref().is_some_and(|k| k != "service_account") {
            return Err("is a JSON key of another type than service_account".into());
        }
        let email = file
            .client_email
            .filter(|e| e.contains('@') && e.len() <= 256 && !e.chars().any(char::is_control))
            .ok_or("has no client_email")?;
        let pem = file.private_key.ok_or("has no private_key")?;
        let not_rsa = || "has a private_key that is not a PKCS#8 RSA key".to_string();
        let parts = super::der::rsa_private_key(&pem).ok_or_else(not_rsa)?;
        let int = |b: &[u8]| BoxedUint::from_be_slice_vartime(b);
        let key = PrivateKey::from_components(
            int(&parts.n),
            int(&parts.e),
            int(&parts.d),
            vec![int(&parts.p), int(&parts.q)],
        )
        .map_err(|_| not_rsa())?;
        let audience = file
            .token_uri
            .filter(|u| {
                u.starts_with("https://") && u.len() <= 256 && !u.chars().any(char::is_control)
            })
            .unwrap_or_else(|| super::GOOGLE_TOKEN_URL.to_string());
        Ok(Self {
            email,
            audience,
            key: SigningKey::<Sha256>::new(key),
        })
    }

    /// The signed JWT asking for `scope`, valid for an hour from `now_s`.
    pub fn assertion(&self, scope: &str, now_s: u64) -> String {
        let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": self.email,
            "scope": scope,
            "aud": self.audience,
            "iat": now_s,
            "exp": now_s + 3600,
        });
        let signing_input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        let signature = self.key.sign(signing_input.as_bytes()).to_vec();
        format!("{signing_input}.{}", b64(&signature))
    }
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "wrong field types",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;

    const KEY_FILE: &str = include_str!("../../tests/fixtures/vertex/service-account.json");

    #[test]
    fn signs_a_jwt_its_public_key_verifies() {
        let sa = ServiceAccount::parse(KEY_FILE).unwrap();
        assert_eq!(sa.email, "gateway@llmgw-test.iam.gserviceaccount.com");
        let jwt = sa.assertion("s1 s2", 1_700_000_000);
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |p: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap()
        };
        let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
        assert_eq!(claims["iss"], "gateway@llmgw-test.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(
            (claims["iat"].as_u64(), claims["exp"].as_u64()),
            (Some(1_700_000_000), Some(1_700_003_600))
        );
        let header: serde_json::Value = serde_json::from_slice(&dec(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
        // Checked with the public half, as Google (and the mock) do.
        let verifier = VerifyingKey::<Sha256>::from(sa.key.as_ref().to_public_key());
        let signature = Signature::try_from(dec(parts[2]).as_slice()).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        verifier.verify(input.as_bytes(), &signature).unwrap();
        assert!(verifier.verify(b"other", &signature).is_err());
    }

    #[test]
    fn bad_key_files_say_what_is_wrong_without_the_key() {
        for (text, want) in [
            ("not json", "not a service account"),
            (r#"{"type":"authorized_user"}"#, "another type"),
            (
                r#"{"type":"service_account","private_key":"x"}"#,
                "no client_email",
            ),
            (
                r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#,
                "not a PKCS#8 RSA key",
            ),
        ] {
            let e = ServiceAccount::parse(text).err().unwrap();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("AAAA"));
        }
    }
}
