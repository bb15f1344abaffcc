//! AWS Signature Version 4, for providers that sign each request (Amazon
//! Bedrock). Pure: the caller gives the request as it will be sent and the
//! time; the signer returns the headers to add. Verified against AWS's
//! published SigV4 test suite and the S3 documentation's examples.

use crate::secrets::signature::hex;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type HmacSha256 = hmac::Hmac<Sha256>;

/// An access key (and, for temporary credentials, its session token).
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A request as it will be sent.
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    /// The path as sent (already percent-encoded where needed).
    pub path: &'a str,
    /// The query as sent, without `?` (may be empty).
    pub query: &'a str,
    /// Other headers to sign (`content-type`, say); `host` and the
    /// `x-amz-*` headers the signer adds are signed anyway.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// Where and when the request is signed.
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, UTC.
    pub amz_date: &'a str,
    /// S3 signs the path as sent; every other service encodes it again.
    pub s3: bool,
    /// Adds `x-amz-content-sha256` (S3 requires it).
    pub content_sha256_header: bool,
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, every
/// other byte `%XX` (upper case); `/` kept when `keep_slash`.
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-decoding of a query component as sent (`+` stays `+`).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_at = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (bytes[i], hex_at(i + 1), hex_at(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_uri(path: &str, s3: bool) -> String {
    let path = if path.is_empty() { "/" } else { path };
    if s3 {
        path.to_string()
    } else {
        encode(path, true)
    }
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Header values trimmed, inner runs of spaces collapsed.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The headers to add to the request: `x-amz-date`, the session token and
/// the payload hash when they apply, and `authorization`.
pub fn sign(req: &Request, scope: &Scope, creds: &Credentials) -> Vec<(String, String)> {
    let payload_hash = sha256_hex(req.payload);
    let mut added: Vec<(String, String)> = vec![("x-amz-date".into(), scope.amz_date.into())];
    if scope.content_sha256_header {
        added.push(("x-amz-content-sha256".into(), payload_hash.clone()));
    }
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token".into(), token.clone()));
    }
    let mut headers: Vec<(String, String)> = vec![("host".into(), canonical_value(req.host))];
    for (k, v) in req.headers {
        headers.push((k.to_ascii_lowercase(), canonical_value(v)));
    }
    headers.extend(added.iter().cloned());
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers.dedup_by(|a, b| a.0 == b.0);
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
        req.method,
        canonical_uri(req.path, scope.s3),
        canonical_query(req.query),
    );
    let date = scope.amz_date.get(..8).unwrap_or(scope.amz_date);
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        scope.amz_date,
        sha256_hex(canonical_request.as_bytes())
    );
    let secret = Zeroizing::new(format!("AWS4{}", creds.secret_access_key.as_str()));
    let k_date = Zeroizing::new(hmac(secret.as_bytes(), date.as_bytes()));
    let k_region = Zeroizing::new(hmac(&k_date, scope.region.as_bytes()));
    let k_service = Zeroizing::new(hmac(&k_region, scope.service.as_bytes()));
    let k_signing = Zeroizing::new(hmac(&k_service, b"aws4_request"));
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    added.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed}, Signature={signature}",
            creds.access_key_id
        ),
    ));
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &[u8] = b"";

    fn suite() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Zeroizing::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
            session_token: None,
        }
    }

    fn suite_scope() -> Scope<'static> {
        Scope {
            region: "us-east-1",
            service: "service",
            amz_date: "20150830T123600Z",
            s3: false,
            content_sha256_header: false,
        }
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        &headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .expect("authorization")
            .1
    }

    fn vanilla(method: &'static str, query: &'static str) -> Request<'static> {
        Request {
            method,
            host: "example.amazonaws.com",
            path: "/",
            query,
            headers: &[],
            payload: EMPTY,
        }
    }

    /// AWS's SigV4 test suite (aws-sig-v4-test-suite): get-vanilla,
    /// post-vanilla, get-vanilla-query-order-key-case.
    #[test]
    fn signs_the_aws_test_suite_vectors() {
        let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=";
        for (req, signature) in [
            (
                vanilla("GET", ""),
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                vanilla("POST", ""),
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                vanilla("GET", "Param2=value2&Param1=value1"),
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ] {
            let headers = sign(&req, &suite_scope(), &suite());
            assert_eq!(authorization(&headers), format!("{prefix}{signature}"));
            assert_eq!(headers[0], ("x-amz-date".into(), "20150830T123600Z".into()));
        }
    }

    /// The S3 documentation's examples ("Signature Calculations for the
    /// Authorization Header"): a signed range, a payload, a query.
    #[test]
    fn signs_the_s3_documentation_examples() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Zeroizing::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
            session_token: None,
        };
        let scope = Scope {
            region: "us-east-1",
            service: "s3",
            amz_date: "20130524T000000Z",
            s3: true,
            content_sha256_header: true,
        };
        let host = "examplebucket.s3.amazonaws.com";
        let ranged = Request {
            method: "GET",
            host,
            path: "/test.txt",
            query: "",
            headers: &[("Range", "bytes=0-9")],
            payload: EMPTY,
        };
        assert!(authorization(&sign(&ranged, &scope, &creds)).ends_with(
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ));
        let put = Request {
            method: "PUT",
            host,
            path: "/test%24file.text",
            query: "",
            headers: &[
                ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            payload: b"Welcome to Amazon S3.",
        };
        assert!(authorization(&sign(&put, &scope, &creds)).ends_with(
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        ));
        let list = Request {
            method: "GET",
            host,
            path: "/",
            query: "max-keys=2&prefix=J",
            headers: &[],
            payload: EMPTY,
        };
        assert!(authorization(&sign(&list, &scope, &creds)).ends_with(
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        ));
    }

    #[test]
    fn bedrock_paths_are_encoded_twice_and_tokens_are_signed() {
        // A model id with ':' is sent as %3A and signed as %253A.
        assert_eq!(
            canonical_uri(
                "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
                false
            ),
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"
        );
        let mut creds = suite();
        creds.session_token = Some("FQoGZXIvYXdzE-token".into());
        let req = Request {
            method: "POST",
            host: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/m/converse",
            query: "",
            headers: &[("content-type", "application/json")],
            payload: b"{}",
        };
        let headers = sign(&req, &suite_scope(), &creds);
        assert!(headers.contains(&("x-amz-security-token".into(), "FQoGZXIvYXdzE-token".into())));
        assert!(authorization(&headers)
            .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"));
        // The secret never shows in the debug form.
        assert!(!format!("{creds:?}").contains("wJalr"));
    }

    #[test]
    fn query_components_are_decoded_then_encoded_strictly() {
        assert_eq!(canonical_query("b=2&a=x%2Fy&a=%41+"), "a=A%2B&a=x%2Fy&b=2");
        assert_eq!(canonical_query("flag"), "flag=");
        assert_eq!(canonical_query(""), "");
        assert_eq!(encode("a b/é~", true), "a%20b/%C3%A9~");
    }
}
