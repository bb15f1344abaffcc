//! Access tokens of providers that exchange credentials for a short-lived
//! token (Baidu ERNIE v1's OAuth `client_credentials`): the config shape,
//! the exchange (request and answer), and the token cache in shared data
//! every worker reads (`cache`). The refresh runs from the root context on
//! its timer; requests only read the cache, or wait for it.

pub mod cache;
mod der;
mod service_account;

pub use service_account::ServiceAccount;

use crate::error::ConfigError;
use crate::secrets::Secret;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// `providers[].token`: what is exchanged for access tokens, and where.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Baidu's API Key: a literal, `env:NAME` or an encrypted key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Baidu's Secret Key, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A Google service account's JSON key (`env:NAME`, `file:PATH` read
    /// by the renderer, an encrypted key, or the JSON itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The token endpoint. Defaults: Baidu's on the provider's host;
    /// Google's `https://oauth2.googleapis.com/token` with a service
    /// account. Without credentials, a metadata server's token URL (GKE,
    /// GCE: `http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// OAuth scope asked for with a service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
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
/// Google's OAuth token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// A refresh in flight is presumed dead after this.
pub const LEASE_NS: u64 = 30_000_000_000;

/// How credentials become a token.
#[derive(Clone)]
pub enum Exchange {
    /// Baidu OAuth `client_credentials`, the credentials in the query.
    Baidu {
        client_id: Secret,
        client_secret: Secret,
    },
    /// Google's JWT bearer grant: a JWT signed RS256 with the service
    /// account's key.
    ServiceAccount(Rc<ServiceAccount>),
    /// A metadata server hands out the token of the machine's account.
    Metadata,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Baidu { .. } => "Baidu",
            Self::ServiceAccount(_) => "ServiceAccount",
            Self::Metadata => "Metadata",
        })
    }
}

/// Where the token goes in a provider request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `?access_token=` (Baidu).
    Query,
    /// `Authorization: Bearer` (Google).
    Bearer,
}

/// How a provider's requests get an access token.
#[derive(Debug, Clone)]
pub struct TokenSource {
    pub provider: String,
    /// The shared-data key of the token.
    pub key: String,
    pub exchange: Exchange,
    pub placement: Placement,
    /// Where the exchange goes: its Envoy cluster, host and path (query
    /// included).
    pub cluster: String,
    pub authority: String,
    pub path: String,
    /// The full token URL (a JWT's audience).
    pub url: String,
    pub scope: String,
    pub wait_ns: u64,
    pub timeout_ms: u32,
}

/// Where the token endpoint is, as the config compiler resolved it.
pub struct Target {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub url: String,
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
fn credential_id(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl TokenSource {
    /// Checks the config's bounds and names the exchange's target.
    pub fn compile(
        c: &TokenConfig,
        field: &str,
        provider: &str,
        exchange: Exchange,
        target: Target,
    ) -> Result<Self, ConfigError> {
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
        let scope = c
            .scope
            .clone()
            .unwrap_or_else(|| CLOUD_PLATFORM_SCOPE.into());
        if scope.is_empty() || scope.chars().any(|ch| ch.is_control()) {
            return Err(ConfigError::new(
                format!("{field}.scope"),
                "must be OAuth scopes",
            ));
        }
        let (placement, who) = match &exchange {
            Exchange::Baidu { client_id, .. } => (Placement::Query, client_id.as_str().to_string()),
            Exchange::ServiceAccount(sa) => (Placement::Bearer, sa.email.clone()),
            Exchange::Metadata => (Placement::Bearer, target.url.clone()),
        };
        Ok(Self {
            provider: provider.to_string(),
            key: crate::state::keys::access_token(provider, &credential_id(&who)),
            exchange,
            placement,
            cluster: target.cluster,
            authority: target.authority,
            path: target.path,
            url: target.url,
            scope,
            wait_ns: c.wait_ms.saturating_mul(1_000_000),
            timeout_ms: c.timeout_ms,
        })
    }

    /// The secrets to mask in what clients receive.
    pub fn secrets(&self) -> Vec<&str> {
        match &self.exchange {
            Exchange::Baidu { client_secret, .. } => vec![client_secret.as_str()],
            Exchange::ServiceAccount(_) | Exchange::Metadata => Vec::new(),
        }
    }

    /// The exchange call at `now`: headers and body.
    pub fn request(&self, now_ns: u64) -> (Vec<(String, String)>, Vec<u8>) {
        let mut headers = vec![
            (":authority".to_string(), self.authority.clone()),
            ("accept".to_string(), "application/json".to_string()),
        ];
        let (method, path, body) = match &self.exchange {
            Exchange::Baidu {
                client_id,
                client_secret,
            } => {
                let sep = if self.path.contains('?') { '&' } else { '?' };
                let path = format!(
                    "{}{sep}grant_type=client_credentials&client_id={}&client_secret={}",
                    self.path,
                    encode_query(client_id.as_str()),
                    encode_query(client_secret.as_str()),
                );
                ("POST", path, Vec::new())
            }
            Exchange::ServiceAccount(sa) => {
                let jwt = sa.assertion(&self.scope, now_ns / 1_000_000_000);
                let body = format!(
                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
                );
                headers.push((
                    "content-type".to_string(),
                    "application/x-www-form-urlencoded".to_string(),
                ));
                ("POST", self.path.clone(), body.into_bytes())
            }
            Exchange::Metadata => {
                headers.push(("metadata-flavor".to_string(), "Google".to_string()));
                ("GET", self.path.clone(), Vec::new())
            }
        };
        headers.push((":method".to_string(), method.to_string()));
        headers.push((":path".to_string(), path));
        headers.push(("content-length".to_string(), body.len().to_string()));
        (headers, body)
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

    fn config() -> TokenConfig {
        TokenConfig {
            client_id: Some("ak".into()),
            client_secret: Some("s/k+1".into()),
            service_account: None,
            url: None,
            scope: None,
            wait_ms: 5_000,
            timeout_ms: 5_000,
        }
    }

    fn target(url: &str, authority: &str, path: &str) -> Target {
        Target {
            cluster: "llmgw_p".into(),
            authority: authority.into(),
            path: path.into(),
            url: url.into(),
        }
    }

    fn source() -> TokenSource {
        let exchange = Exchange::Baidu {
            client_id: Secret::new("ak".into()),
            client_secret: Secret::new("s/k+1".into()),
        };
        let t = target(
            "https://aip.baidubce.com/oauth/2.0/token",
            "aip.baidubce.com",
            BAIDU_TOKEN_PATH,
        );
        TokenSource::compile(&config(), "providers[0].token", "ernie", exchange, t).unwrap()
    }

    #[test]
    fn google_exchanges_sign_a_jwt_or_ask_the_metadata_server() {
        let sa = ServiceAccount::parse(include_str!(
            "../../tests/fixtures/vertex/service-account.json"
        ))
        .unwrap();
        let t = target(GOOGLE_TOKEN_URL, "oauth2.googleapis.com", "/token");
        let s = TokenSource::compile(
            &config(),
            "f",
            "vertex",
            Exchange::ServiceAccount(Rc::new(sa)),
            t,
        )
        .unwrap();
        assert_eq!(s.placement, Placement::Bearer);
        let (h, body) = s.request(1_700_000_000 * 1_000_000_000);
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.starts_with(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey"
            ),
            "{body}"
        );
        assert!(h.contains(&(
            "content-type".into(),
            "application/x-www-form-urlencoded".into()
        )));
        assert!(h.contains(&(":path".into(), "/token".into())));
        assert!(s.secrets().is_empty());
        let url = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";
        let t = target(
            url,
            "metadata.google.internal",
            "/computeMetadata/v1/instance/service-accounts/default/token",
        );
        let m = TokenSource::compile(&config(), "f", "vertex", Exchange::Metadata, t).unwrap();
        let (h, body) = m.request(0);
        assert!(body.is_empty());
        assert!(h.contains(&(":method".into(), "GET".into())));
        assert!(h.contains(&("metadata-flavor".into(), "Google".into())));
        // Different credentials, different cache keys.
        assert_ne!(m.key, s.key);
        let google = br#"{"access_token":"ya29.a","expires_in":3599,"token_type":"Bearer"}"#;
        assert_eq!(m.parse(Some(200), google, 0).unwrap().token, "ya29.a");
    }

    #[test]
    fn the_exchange_asks_baidu_with_encoded_credentials() {
        let (h, body) = source().request(0);
        assert!(body.is_empty());
        assert!(h.contains(&(":method".into(), "POST".into())));
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
