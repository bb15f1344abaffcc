//! Google's access tokens, as Vertex AI takes them: the OAuth token endpoint
//! (`POST /token`, as `https://oauth2.googleapis.com/token`) with the
//! service-account JWT bearer grant (RFC 7523; the JWT is verified RS256
//! against the account's public key), and the GCE/GKE metadata server's
//! `GET /computeMetadata/v1/instance/service-accounts/default/token`. Both
//! issue `ya29.mock-<hex>` tokens into one store (`--google-token-ttl`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::PublicKey;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::common::{as_uint, bytes_resp, json_resp, now_secs, with_key, Ctx, Resp};
use crate::oauth;

/// The token endpoint's path (Google's is `https://oauth2.googleapis.com/token`).
pub const TOKEN_PATH: &str = "/token";
/// The `aud` a grant's JWT must name.
pub const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The scope Vertex AI needs; the JWT's `scope` must include it.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The only `grant_type` the token endpoint knows.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Everything under this prefix is the metadata server.
pub const METADATA_PREFIX: &str = "/computeMetadata/";
const METADATA_TOKEN: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
const METADATA_EMAIL: &str = "/computeMetadata/v1/instance/service-accounts/default/email";
const METADATA_PROJECT: &str = "/computeMetadata/v1/project/project-id";

/// Default lifetime of an access token (`expires_in`), as Google issues them.
pub const DEFAULT_TOKEN_TTL: u64 = 3599;
/// A JWT may ask for at most an hour (`exp - iat`).
const MAX_JWT_LIFETIME: u64 = 3600;
/// How far in the future `iat` may lie (clock skew).
const MAX_IAT_SKEW: u64 = 300;

/// The service account every mock knows (the metadata server's `default`
/// account, too), and its project.
pub const BUILTIN_EMAIL: &str = "gateway@llmgw-test.iam.gserviceaccount.com";
pub const BUILTIN_PROJECT: &str = "llmgw-test";
/// The public half of the throwaway test key in
/// `tests/fixtures/vertex/service-account.json` (see the README there): it
/// grants nothing anywhere.
pub const BUILTIN_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAweJ6tFJJqCk2vVk0bQtT
5MNpOIiAvp1fqSMPai9BymOF9KJZnr+GOk0jOZR604pK7m/J0WD94QoW+V8YvTZZ
x+u6MsgZ83aB8GryyjYtqqwbh0X6cnJznIll9V7F3JYbjWPXeshPg8N2+pHgDgSr
i60SCl9N+B6M1KbhPtRcNIrUo1Y2psYt+13KX3HYiBXrbXSTN4ix5JIBP86SvMq2
/WNOSMHysVCuk2B4ebGym7/jOSFZt1kCj4darNOTKu2HYOGQcOYL2LM9DB+PKIBq
cliSK7sCmgz4jUCxALMtrJfBlYDWmOqgDqsmi8GTVy171CaLgIFMpxBxWPq68Gzc
CQIDAQAB
-----END PUBLIC KEY-----
";

const MSG_BAD_SIGNATURE: &str = "Invalid JWT Signature.";
const MSG_BAD_TIMES: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";

/// The Google access tokens issued (`--google-token-ttl` is their lifetime).
pub type Tokens = oauth::Tokens;

// ---------------------------------------------------------------------------
// Service accounts

/// A service account the token endpoint accepts JWTs from.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub email: String,
    key: PublicKey,
}

impl ServiceAccount {
    /// `pem`: an RSA public key, `BEGIN PUBLIC KEY` (SPKI) or `BEGIN RSA PUBLIC KEY` (PKCS#1).
    pub fn new(email: &str, pem: &str) -> Result<ServiceAccount, String> {
        if email.is_empty() || !email.contains('@') {
            return Err(format!("not a service account email: {email:?}"));
        }
        let pem = pem.trim();
        let key = PublicKey::from_public_key_pem(pem)
            .or_else(|_| PublicKey::from_pkcs1_pem(pem))
            .map_err(|_| format!("no RSA public key in PEM form for {email}"))?;
        Ok(ServiceAccount {
            email: email.to_string(),
            key,
        })
    }

    pub fn builtin() -> Result<ServiceAccount, String> {
        ServiceAccount::new(BUILTIN_EMAIL, BUILTIN_PUBLIC_KEY_PEM)
    }
}

// ---------------------------------------------------------------------------
// JWT bearer grant

fn b64(part: &str, what: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| format!("Invalid JWT: the {what} is not base64url without padding."))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(format!("Invalid JWT: the {what} is not a JSON object.")),
    }
}

/// Check a grant's JWT at time `now` (Unix seconds); `Ok(email)` of the
/// signing account, `Err(error_description)` for an `invalid_grant`.
pub fn verify_assertion(
    accounts: &[ServiceAccount],
    jwt: &str,
    now: u64,
) -> Result<String, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err("Invalid JWT: expected three base64url parts separated by '.'.".into());
    };
    let h = json_object(&b64(header, "header")?, "header")?;
    let c = json_object(&b64(claims, "claim set")?, "claim set")?;
    let sig = b64(signature, "signature")?;

    if h.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("Invalid JWT: the header's alg must be RS256.".into());
    }
    if h.get("typ").is_some_and(|t| t.as_str() != Some("JWT")) {
        return Err("Invalid JWT: the header's typ must be JWT.".into());
    }
    if h.get("kid").is_some_and(|k| !k.is_string()) {
        return Err("Invalid JWT: the header's kid must be a string.".into());
    }

    let Some(iss) = c.get("iss").and_then(Value::as_str) else {
        return Err("Invalid JWT: the claim set has no iss.".into());
    };
    // A later `--google-service-account` for the same email wins.
    let Some(account) = accounts.iter().rev().find(|a| a.email == iss) else {
        return Err("Invalid grant: account not found".into());
    };
    let signing_input = &jwt[..header.len() + 1 + claims.len()];
    let sig = Signature::try_from(sig.as_slice()).map_err(|_| MSG_BAD_SIGNATURE.to_string())?;
    VerifyingKey::<Sha256>::new(account.key.clone())
        .verify(signing_input.as_bytes(), &sig)
        .map_err(|_| MSG_BAD_SIGNATURE.to_string())?;

    if c.get("aud").and_then(Value::as_str) != Some(TOKEN_URL) {
        return Err(format!(
            "Invalid JWT: Failed audience check. The right audience is {TOKEN_URL}"
        ));
    }
    let scope = c.get("scope").and_then(Value::as_str).unwrap_or("");
    if !scope.split_whitespace().any(|s| s == CLOUD_PLATFORM_SCOPE) {
        return Err(format!(
            "Invalid JWT: the scope claim must include {CLOUD_PLATFORM_SCOPE}."
        ));
    }
    let time = |name: &str| {
        c.get(name).and_then(|v| as_uint(v, false)).ok_or_else(|| {
            format!("Invalid JWT: {name} must be a number of seconds since the epoch.")
        })
    };
    let (iat, exp) = (time("iat")?, time("exp")?);
    let reasonable = iat < exp
        && exp - iat <= MAX_JWT_LIFETIME
        && iat <= now.saturating_add(MAX_IAT_SKEW)
        && exp >= now;
    if !reasonable {
        return Err(MSG_BAD_TIMES.into());
    }
    Ok(iss.to_string())
}

fn issue(tokens: &Tokens) -> String {
    tokens.issue(|i| format!("ya29.mock-{}", i.unique))
}

/// A new token, answered as both endpoints answer it.
fn token_answer(tokens: &Tokens) -> Resp {
    let token = issue(tokens);
    json_resp(
        200,
        &json!({"access_token": token, "expires_in": tokens.ttl(), "token_type": "Bearer"}),
    )
}

/// The credential `x-mock-echo-key` echoes on the token endpoint: the assertion.
pub fn assertion_credential(content_type: Option<&str>, body: &[u8]) -> String {
    oauth::form_param(content_type, body, "assertion").unwrap_or_default()
}

/// `POST /token`.
pub fn handle_token(ctx: &Ctx<'_>) -> Resp {
    if ctx.method != Method::POST {
        return oauth::error(
            405,
            "invalid_request",
            &format!("method {} not allowed", ctx.method),
        );
    }
    let ct = ctx.header("content-type");
    let param = |name: &str| oauth::form_param(ct, ctx.body, name);
    let grant = param("grant_type").unwrap_or_default();
    if grant != JWT_BEARER {
        return oauth::error(
            400,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {grant}"),
        );
    }
    let Some(assertion) = param("assertion").filter(|a| !a.is_empty()) else {
        return oauth::error(
            400,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    match verify_assertion(&ctx.state.google_accounts, &assertion, now_secs()) {
        Ok(_) => token_answer(&ctx.state.google_tokens),
        Err(description) => oauth::error(400, "invalid_grant", &description),
    }
}

// ---------------------------------------------------------------------------
// Metadata server

fn with_flavor(mut resp: Resp) -> Resp {
    resp.headers_mut().insert(
        HeaderName::from_static("metadata-flavor"),
        HeaderValue::from_static("Google"),
    );
    resp
}

fn metadata_page(status: u16, reason: &str, what: &str) -> Resp {
    let body = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error {status} ({reason})!!1</title>\n  <p><b>{status}.</b> <ins>That\u{2019}s an error.</ins>\n  <p>{what} <ins>That\u{2019}s all we know.</ins>\n"
    );
    bytes_resp(status, "text/html; charset=UTF-8", body)
}

/// A generic metadata-server error (knob parse errors, 413): a text body.
pub fn metadata_error(status: u16, message: &str) -> Resp {
    with_flavor(bytes_resp(
        status,
        "text/plain; charset=utf-8",
        format!("{message}\n"),
    ))
}

/// Default body of `x-mock-status` on the metadata server: a text body
/// (with `x-mock-echo-key`, ending in the credential).
pub fn metadata_status_error(status: u16, key: Option<&str>) -> Resp {
    let reason = crate::common::status_code(status)
        .canonical_reason()
        .unwrap_or("Error");
    match key {
        Some(k) => metadata_error(status, &with_key(reason, k)),
        None => metadata_error(status, reason),
    }
}

/// `GET /computeMetadata/v1/…`: the default service account's token (and,
/// for clients that look them up, its email and the project id).
pub fn handle_metadata(ctx: &Ctx<'_>) -> Resp {
    if ctx.header("metadata-flavor").map(str::trim) != Some("Google") {
        return metadata_page(
            403,
            "Forbidden",
            &format!(
                "Your client does not have permission to get URL <code>{}</code> from this server. Missing Metadata-Flavor:Google header.",
                ctx.path
            ),
        );
    }
    let resp = match (ctx.method, ctx.path) {
        (&Method::GET, METADATA_TOKEN) => token_answer(&ctx.state.google_tokens),
        (&Method::GET, METADATA_EMAIL) => bytes_resp(200, "application/text", BUILTIN_EMAIL),
        (&Method::GET, METADATA_PROJECT) => bytes_resp(200, "application/text", BUILTIN_PROJECT),
        (_, METADATA_TOKEN | METADATA_EMAIL | METADATA_PROJECT) => {
            metadata_page(405, "Method Not Allowed", "Method not allowed.")
        }
        _ => metadata_page(
            404,
            "Not Found",
            &format!(
                "The requested URL <code>{}</code> was not found on this server.",
                ctx.path
            ),
        ),
    };
    with_flavor(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::PrivateKey;

    const NOW: u64 = 1_750_000_000;

    fn enc(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn signing_key() -> rsa::pkcs1v15::SigningKey<Sha256> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/vertex/service-account.json"
        );
        let text = std::fs::read_to_string(path).expect("read the fixture");
        let sa: Value = serde_json::from_str(&text).expect("fixture JSON");
        let pem = sa["private_key"].as_str().expect("private_key");
        let key = PrivateKey::from_pkcs8_pem(pem).expect("PKCS#8 key");
        rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
    }

    fn jwt(key: &rsa::pkcs1v15::SigningKey<Sha256>, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            enc(header.to_string().as_bytes()),
            enc(claims.to_string().as_bytes())
        );
        let sig = key.sign(input.as_bytes()).to_vec();
        format!("{input}.{}", enc(&sig))
    }

    fn header() -> Value {
        json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef0123456789abcdef01234567"})
    }

    fn claims() -> Value {
        json!({
            "iss": BUILTIN_EMAIL,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": TOKEN_URL,
            "iat": NOW,
            "exp": NOW + 3600,
        })
    }

    fn accounts() -> Vec<ServiceAccount> {
        vec![ServiceAccount::builtin().expect("built-in key")]
    }

    #[test]
    fn builtin_key_is_the_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/vertex/public-key.pem"
        );
        let pem = std::fs::read_to_string(path).expect("read the fixture");
        assert_eq!(pem.trim(), BUILTIN_PUBLIC_KEY_PEM.trim());
        assert!(ServiceAccount::new("a@b", "not a pem").is_err());
        assert!(ServiceAccount::new("nobody", BUILTIN_PUBLIC_KEY_PEM).is_err());
    }

    #[test]
    fn a_signed_jwt_verifies() {
        let key = signing_key();
        let good = jwt(&key, &header(), &claims());
        assert_eq!(
            verify_assertion(&accounts(), &good, NOW),
            Ok(BUILTIN_EMAIL.to_string())
        );
        // Without kid and typ, several scopes, iat a little in the future.
        let mut c = claims();
        c["scope"] = json!(format!("openid {CLOUD_PLATFORM_SCOPE}"));
        c["iat"] = json!(NOW + 200);
        c["exp"] = json!(NOW + 200 + 3600);
        let t = jwt(&key, &json!({"alg": "RS256"}), &c);
        assert!(verify_assertion(&accounts(), &t, NOW).is_ok());
    }

    #[test]
    fn a_flipped_signature_byte_fails() {
        let key = signing_key();
        let good = jwt(&key, &header(), &claims());
        let (input, sig) = good.rsplit_once('.').expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).expect("base64url");
        bytes[17] ^= 0x01;
        let bad = format!("{input}.{}", enc(&bytes));
        assert_eq!(
            verify_assertion(&accounts(), &bad, NOW),
            Err(MSG_BAD_SIGNATURE.to_string())
        );
        // Claims changed after signing.
        let mut c = claims();
        c["scope"] = json!("https://www.googleapis.com/auth/other");
        let forged = format!(
            "{}.{}.{sig}",
            enc(header().to_string().as_bytes()),
            enc(c.to_string().as_bytes())
        );
        assert_eq!(
            verify_assertion(&accounts(), &forged, NOW),
            Err(MSG_BAD_SIGNATURE.to_string())
        );
    }

    #[test]
    fn an_expired_jwt_fails() {
        let key = signing_key();
        let t = jwt(&key, &header(), &claims());
        assert!(verify_assertion(&accounts(), &t, NOW + 3600).is_ok());
        assert_eq!(
            verify_assertion(&accounts(), &t, NOW + 3601),
            Err(MSG_BAD_TIMES.to_string())
        );
        // Too long a lifetime, exp before iat, iat too far ahead.
        for (iat, exp) in [
            (NOW, NOW + 3601),
            (NOW, NOW),
            (NOW + 10, NOW + 5),
            (NOW + 301, NOW + 900),
        ] {
            let mut c = claims();
            c["iat"] = json!(iat);
            c["exp"] = json!(exp);
            let t = jwt(&key, &header(), &c);
            assert_eq!(
                verify_assertion(&accounts(), &t, NOW),
                Err(MSG_BAD_TIMES.to_string()),
                "iat {iat} exp {exp}"
            );
        }
    }

    #[test]
    fn a_wrong_aud_fails() {
        let key = signing_key();
        let mut c = claims();
        c["aud"] = json!("https://www.googleapis.com/oauth2/v4/token");
        let t = jwt(&key, &header(), &c);
        let err = verify_assertion(&accounts(), &t, NOW).expect_err("wrong aud");
        assert!(err.contains("Failed audience check"), "{err}");
    }

    #[test]
    fn other_bad_jwts_fail() {
        let key = signing_key();
        let cases: Vec<(Value, Value, &str)> = vec![
            (json!({"alg": "HS256"}), claims(), "alg must be RS256"),
            (json!({"alg": "RS256", "typ": "JOSE"}), claims(), "typ"),
            (header(), json!({"iss": 1}), "no iss"),
            (
                header(),
                {
                    let mut c = claims();
                    c["iss"] = json!("someone@else.iam.gserviceaccount.com");
                    c
                },
                "account not found",
            ),
            (
                header(),
                {
                    let mut c = claims();
                    c["scope"] = json!("https://www.googleapis.com/auth/devstorage.read_only");
                    c
                },
                "scope",
            ),
            (
                header(),
                {
                    let mut c = claims();
                    c["iat"] = json!("now");
                    c
                },
                "iat must be",
            ),
        ];
        for (h, c, want) in cases {
            let t = jwt(&key, &h, &c);
            let err = verify_assertion(&accounts(), &t, NOW).expect_err(want);
            assert!(err.contains(want), "{err} should contain {want}");
        }
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.e30", "e30=.e30.e30"] {
            let err = verify_assertion(&accounts(), bad, NOW).expect_err(bad);
            assert!(err.starts_with("Invalid JWT"), "{bad}: {err}");
        }
        // A later account with the same email (another key) wins.
        let mut accts = accounts();
        accts.push(accts[0].clone());
        let t = jwt(&key, &header(), &claims());
        assert!(verify_assertion(&accts, &t, NOW).is_ok());
    }
}
