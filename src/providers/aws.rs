//! AWS credentials of a provider (Amazon Bedrock) and the per-request
//! SigV4 signer built from them.

use super::sigv4::{self, Credentials, Request, Scope};
use serde::{Deserialize, Serialize};

/// The service name Bedrock's runtime signs with.
const SERVICE: &str = "bedrock";

/// `providers[].aws`: where a Bedrock provider's requests are signed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// The AWS region, e.g. `us-east-1`; also picks the default endpoint
    /// `https://bedrock-runtime.<region>.amazonaws.com`.
    pub region: String,
    /// A literal, `env:NAME` or an encrypted key; default
    /// `env:AWS_ACCESS_KEY_ID`.
    #[serde(default = "default_access_key_id")]
    pub access_key_id: String,
    /// Default `env:AWS_SECRET_ACCESS_KEY`.
    #[serde(default = "default_secret_access_key")]
    pub secret_access_key: String,
    /// Temporary credentials' token; default `env:AWS_SESSION_TOKEN`, and
    /// an unset variable means none.
    #[serde(default = "default_session_token")]
    pub session_token: String,
}

fn default_access_key_id() -> String {
    "env:AWS_ACCESS_KEY_ID".into()
}
fn default_secret_access_key() -> String {
    "env:AWS_SECRET_ACCESS_KEY".into()
}
fn default_session_token() -> String {
    "env:AWS_SESSION_TOKEN".into()
}

/// Whether `region` looks like an AWS region (`us-east-1`,
/// `cn-northwest-1`, `us-gov-west-1`): it becomes part of a host name.
pub fn is_region(region: &str) -> bool {
    (4..=32).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// The default Bedrock runtime base URL for `region` (China regions live
/// under `amazonaws.com.cn`).
pub fn bedrock_base_url(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://bedrock-runtime.{region}.{suffix}")
}

/// Signs each request of one provider.
#[derive(Debug, Clone)]
pub struct AwsSigner {
    pub region: String,
    pub credentials: Credentials,
}

impl AwsSigner {
    /// The headers that sign a POST of `body` to `host` + `path` (query
    /// included) at `unix_secs`: `x-amz-date`, the session token if any,
    /// and `authorization`. `content-type` is signed too.
    pub fn headers(
        &self,
        host: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
        unix_secs: u64,
    ) -> Vec<(String, String)> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let amz_date = crate::calendar::amz_date(unix_secs);
        let request = Request {
            method: "POST",
            host,
            path,
            query,
            headers: &[("content-type", content_type)],
            payload: body,
        };
        let scope = Scope {
            region: &self.region,
            service: SERVICE,
            amz_date: &amz_date,
            s3: false,
            content_sha256_header: false,
        };
        sigv4::sign(&request, &scope, &self.credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    #[test]
    fn regions_and_endpoints() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "cn-northwest-1",
            "us-gov-west-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "US-EAST-1",
            "us_east_1",
            "evil.com/x",
            "-us",
            "a.b",
            "us-east-1#",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        assert_eq!(
            bedrock_base_url("us-west-2"),
            "https://bedrock-runtime.us-west-2.amazonaws.com"
        );
        assert_eq!(
            bedrock_base_url("cn-north-1"),
            "https://bedrock-runtime.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn signs_with_the_bedrock_scope_and_the_given_time() {
        let signer = AwsSigner {
            region: "us-east-1".into(),
            credentials: Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: Zeroizing::new("secret".into()),
                session_token: Some("token".into()),
            },
        };
        let headers = signer.headers(
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/a%3A0/converse",
            "application/json",
            b"{}",
            1_440_938_160,
        );
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(get("x-amz-security-token"), Some("token"));
        let auth = get("authorization").unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
        ), "{auth}");
        // Another body, another signature.
        let other = signer.headers(
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/a%3A0/converse",
            "application/json",
            b"{ }",
            1_440_938_160,
        );
        assert_ne!(other, headers);
    }
}
