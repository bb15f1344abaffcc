//! Access tokens of providers that exchange credentials for a short-lived
//! token (Baidu ERNIE v1's OAuth `client_credentials`): the config shape,
//! the exchange (request and answer), and the token cache in shared data
//! every worker reads (`cache`). The refresh runs from the root context on
//! its timer; requests only read the cache, or wait for it.

pub mod cache;

use crate::error::ConfigError;
use crate::secrets::Secret;
use serde::{Deserialize, Serialize};

/// `providers[].token`: the credentials exchanged for access tokens.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Baidu's API Key: a literal, `env:NAME` or an encrypted key.
    pub client_id: String,
    /// Baidu's Secret Key, likewise.
    pub client_secret: String,
    /// The token endpoint's path on the provider's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How long a request waits for a token being fetched (0: fail at once).
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u64,
    /// The token call's timeout.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u32,
}

fn default_wait_ms() -> u64 {
    5_000
}
fn default_timeout_ms() -> u32 {
    5_000
}

/// Baidu's OAuth endpoint path.
pub const BAIDU_TOKEN_PATH: &str = "/oauth/2.0/token";
/// A refresh in flight is presumed dead after this.
pub const LEASE_NS: u64 = 30_000_000_000;

/// How a provider's requests get an access token.
#[derive(Debug, Clone)]
pub struct TokenSource {
    pub provider: String,
    /// The shared-data key of the token.
    pub key: String,
    pub client_id: Secret,
    pub client_secret: Secret,
    /// Where the exchange goes (the provider's own cluster and host).
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub wait_ns: u64,
    pub timeout_ms: u32,
}

/// A token the exchange returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    pub expires_ns: u64,
    /// When to start refreshing it: a tenth of its life ahead of expiry,
    /// at most an hour, at least a second.
    pub refresh_ns: u64,
}

/// RFC 3986 query-component encoding.
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A short digest naming the credentials (never the credentials).
fn credential_id(client_id: &Secret) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(client_id.as_str().as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl TokenSource {
    /// Checks the config and names the exchange's target.
    pub fn compile(
        c: &TokenConfig,
        field: &str,
        provider: &str,
        cluster: &str,
        authority: &str,
        client_id: Secret,
        client_secret: Secret,
    ) -> Result<Self, ConfigError> {
        let path = c.path.clone().unwrap_or_else(|| BAIDU_TOKEN_PATH.into());
        let valid_path = path.starts_with('/')
            && path.len() <= 256
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
        if !valid_path {
            return Err(ConfigError::new(
                format!("{field}.path"),
                "must be an absolute path of letters, digits and / - _ . ~",
            ));
        }
        if c.wait_ms > 60_000 {
            return Err(ConfigError::new(
                format!("{field}.wait_ms"),
                "must be at most 60000",
            ));
        }
        if !(100..=60_000).contains(&c.timeout_ms) {
            return Err(ConfigError::new(
                format!("{field}.timeout_ms"),
                "must be between 100 and 60000",
            ));
        }
        Ok(Self {
            provider: provider.to_string(),
            key: crate::state::keys::access_token(provider, &credential_id(&client_id)),
            client_id,
            client_secret,
            cluster: cluster.to_string(),
            authority: authority.to_string(),
            path,
            wait_ns: c.wait_ms.saturating_mul(1_000_000),
            timeout_ms: c.timeout_ms,
        })
    }

    /// The exchange call's headers (the credentials travel in the query,
    /// as Baidu's OAuth takes them).
    pub fn request_headers(&self) -> Vec<(String, String)> {
        let path = format!(
            "{}?grant_type=client_credentials&client_id={}&client_secret={}",
            self.path,
            encode_query(self.client_id.as_str()),
            encode_query(self.client_secret.as_str()),
        );
        vec![
            (":method".into(), "POST".into()),
            (":path".into(), path),
            (":authority".into(), self.authority.clone()),
            ("accept".into(), "application/json".into()),
            ("content-length".into(), "0".into()),
        ]
    }

    /// Reads the exchange's answer (`status` None: no answer, e.g. the
    /// timeout). The error says what went wrong without the credentials.
    pub fn parse(&self, status: Option<u16>, body: &[u8], now_ns: u64) -> Result<Issued, String> {
        let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| v.as_ref().and_then(|v| v.get(name));
        let status = status.ok_or("the token endpoint did not answer")?;
        if let Some(e) = field("error").and_then(|e| e.as_str()) {
            let what = field("error_description")
                .and_then(|d| d.as_str())
                .unwrap_or_default();
            let text: String = format!("{e}: {what}").chars().take(200).collect();
            return Err(format!("the token endpoint refused ({status}): {text}"));
        }
        if status != 200 {
            return Err(format!("the token endpoint answered HTTP {status}"));
        }
        let token = field("access_token")
            .and_then(|t| t.as_str())
            .filter(|t| {
                !t.is_empty()
                    && t.len() <= cache::MAX_TOKEN_BYTES
                    && t.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or("the token endpoint's answer has no usable access_token")?;
        let life_s = field("expires_in")
            .and_then(|e| e.as_u64())
            .filter(|s| *s > 0)
            .ok_or("the token endpoint's answer has no expires_in")?;
        let life_ns = life_s.saturating_mul(1_000_000_000);
        let ahead = (life_ns / 10).clamp(1_000_000_000.min(life_ns / 2), 3_600_000_000_000);
        Ok(Issued {
            token: token.to_string(),
            expires_ns: now_ns.saturating_add(life_ns),
            refresh_ns: now_ns.saturating_add(life_ns - ahead),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn source() -> TokenSource {
        let c = TokenConfig {
            client_id: "ak".into(),
            client_secret: "s/k+1".into(),
            path: None,
            wait_ms: 5_000,
            timeout_ms: 5_000,
        };
        TokenSource::compile(
            &c,
            "providers[0].token",
            "ernie",
            "llmgw_ernie",
            "aip.baidubce.com",
            Secret::new("ak".into()),
            Secret::new("s/k+1".into()),
        )
        .unwrap()
    }

    #[test]
    fn the_exchange_asks_baidu_with_encoded_credentials() {
        let h = source().request_headers();
        assert!(h.contains(&(
            ":path".into(),
            "/oauth/2.0/token?grant_type=client_credentials&client_id=ak&client_secret=s%2Fk%2B1"
                .into()
        )));
        assert!(h.contains(&(":authority".into(), "aip.baidubce.com".into())));
        assert!(
            source().key.starts_with("llmgw/token/ernie/"),
            "{}",
            source().key
        );
        assert_eq!(source().key.len(), "llmgw/token/ernie/".len() + 12);
    }

    #[test]
    fn answers_become_tokens_refreshed_ahead_or_errors_without_secrets() {
        let s = source();
        let ok = br#"{"access_token":"24.abc","expires_in":2592000,"refresh_token":"25.x"}"#;
        let issued = s.parse(Some(200), ok, 10 * S).unwrap();
        assert_eq!(issued.token, "24.abc");
        assert_eq!(issued.expires_ns, 10 * S + 2_592_000 * S);
        assert_eq!(issued.refresh_ns, issued.expires_ns - 3600 * S);
        let short = s
            .parse(Some(200), br#"{"access_token":"t","expires_in":4}"#, 0)
            .unwrap();
        assert_eq!(short.refresh_ns, 3 * S);
        let e = s
            .parse(
                Some(401),
                br#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
                0,
            )
            .unwrap_err();
        assert!(
            e.contains("invalid_client: Client authentication failed"),
            "{e}"
        );
        assert!(s
            .parse(None, b"", 0)
            .unwrap_err()
            .contains("did not answer"));
        assert!(s
            .parse(Some(502), b"<html>", 0)
            .unwrap_err()
            .contains("HTTP 502"));
        assert!(s
            .parse(Some(200), br#"{"access_token":"a b","expires_in":5}"#, 0)
            .is_err());
        assert!(s.parse(Some(200), br#"{"access_token":"ab"}"#, 0).is_err());
    }
}
