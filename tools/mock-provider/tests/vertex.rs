//! Google's OAuth token endpoint (JWT bearer grant), the GCE metadata
//! server, and Vertex AI (Gemini and Claude) checking their tokens.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::PrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;

const EMAIL: &str = "gateway@llmgw-test.iam.gserviceaccount.com";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const AUD: &str = "https://oauth2.googleapis.com/token";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/vertex");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

const BASE: &str = "/v1/projects/llmgw-test/locations/us-central1/publishers";
const MISSING: &str = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.";
const INVALID: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.";

fn gemini_path(method: &str) -> String {
    format!("{BASE}/google/models/gemini-2.5-flash:{method}")
}

fn claude_path(method: &str) -> String {
    format!("{BASE}/anthropic/models/claude-sonnet-4-5@20250929:{method}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn key() -> SigningKey<Sha256> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/service-account.json"))
        .expect("read the service account fixture");
    let sa: Value = serde_json::from_str(&text).expect("JSON");
    let pem = sa["private_key"].as_str().expect("private_key");
    SigningKey::new(PrivateKey::from_pkcs8_pem(pem).expect("PKCS#8 key"))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwt_with(claims: &Value) -> String {
    let header =
        json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef0123456789abcdef01234567"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key().sign(input.as_bytes()).to_vec();
    format!("{input}.{}", b64(&sig))
}

fn claims_for(iss: &str) -> Value {
    let t = now();
    json!({"iss": iss, "scope": SCOPE, "aud": AUD, "iat": t, "exp": t + 3600})
}

fn jwt() -> String {
    jwt_with(&claims_for(EMAIL))
}

fn grant(s: &Server, assertion: &str) -> Resp {
    s.request(
        "POST",
        "/token",
        &[FORM],
        &format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        ),
    )
}

fn token_of(r: &Resp, ttl: u64) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"]);
    assert_eq!(v["expires_in"], ttl);
    assert_eq!(v["token_type"], "Bearer");
    let t = v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let hex = t.strip_prefix("ya29.mock-").expect("ya29.mock- prefix");
    assert!(
        hex.len() >= 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{t}"
    );
    t
}

fn token(s: &Server) -> String {
    token_of(&grant(s, &jwt()), 3599)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn gemini_body() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Tell me a joke"}]}]})
}

fn claude_body() -> Value {
    json!({
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Tell me a joke"}]
    })
}

fn with(mut b: Value, key: &str, v: Value) -> Value {
    b[key] = v;
    b
}

fn assert_google_error(r: &Resp, code: u16, status: &str, message: &str) {
    assert_eq!(r.status, code, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"error": {"code": code, "message": message, "status": status}})
    );
}

fn assert_grant_error(r: &Resp, error: &str, description: &str) {
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"error": error, "error_description": description})
    );
}

fn tokens_admin(s: &Server) -> Value {
    let r = s.get("/__mock/google/tokens");
    assert_eq!(r.status, 200);
    r.json()
}

#[test]
fn jwt_grant_then_vertex_gemini() {
    let s = Server::start();
    let t = token(&s);
    let auth = bearer(&t);
    let h = [("authorization", auth.as_str()), JSON];

    let r = s.post(&gemini_path("generateContent"), &h, &gemini_body());
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let id = v["responseId"].as_str().expect("responseId").to_string();
    assert!(id.starts_with("mock-response-"), "{id}");
    assert_eq!(
        v,
        json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": "Hello from mock-provider! You said: Tell me a joke"}]},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 9, "totalTokenCount": 13},
            "modelVersion": "gemini-2.5-flash",
            "responseId": id
        })
    );

    let r = s.post(
        &format!("{}?alt=sse", gemini_path("streamGenerateContent")),
        &[h[0], ("x-mock-content", "Meow meow, human friend")],
        &gemini_body(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = gemini_events(&r.text());
    assert!(events.len() > 1);
    let text: String = events
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .expect("text")
        })
        .collect();
    assert_eq!(text, "Meow meow, human friend");
    let last = events.last().expect("events");
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 4);
    assert_eq!(last["modelVersion"], "gemini-2.5-flash");

    // Without alt=sse: a streamed JSON array.
    let r = s.post(&gemini_path("streamGenerateContent"), &h, &gemini_body());
    assert_eq!(r.status, 200);
    let arr: Value = serde_json::from_slice(&r.body).expect("JSON array");
    assert!(arr.as_array().is_some_and(|a| !a.is_empty()));

    let r = s.post(&gemini_path("countTokens"), &h, &gemini_body());
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"totalTokens": 4}));

    // The location may be global; v1beta1 works too.
    let r = s.post(
        "/v1beta1/projects/p/locations/global/publishers/google/models/gemini-2.5-pro:generateContent",
        &h,
        &gemini_body(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["modelVersion"], "gemini-2.5-pro");

    assert_eq!(tokens_admin(&s), json!({"issued": 1, "valid": 1}));
}

#[test]
fn vertex_gemini_requires_roles_and_a_known_route() {
    let s = Server::start();
    let auth = bearer(&token(&s));
    let h = [("authorization", auth.as_str())];
    for contents in [
        json!([{"parts": [{"text": "hi"}]}]),
        json!([{"role": "", "parts": [{"text": "hi"}]}]),
        json!([{"role": "user", "parts": [{"text": "hi"}]}, {"parts": [{"text": "ho"}]}]),
    ] {
        let r = s.post(
            &gemini_path("generateContent"),
            &h,
            &json!({"contents": contents}),
        );
        assert_google_error(
            &r,
            400,
            "INVALID_ARGUMENT",
            "Please use a valid role: user, model.",
        );
    }
    let r = s.post(
        &gemini_path("countTokens"),
        &h,
        &json!({"contents": [{"parts": [{"text": "hi"}]}]}),
    );
    assert_eq!(r.status, 400);
    // systemInstruction needs no role.
    let b = with(
        gemini_body(),
        "systemInstruction",
        json!({"parts": [{"text": "Be a cat."}]}),
    );
    assert_eq!(s.post(&gemini_path("generateContent"), &h, &b).status, 200);
    // The Gemini API itself still takes a content without a role.
    let r = s.post(
        "/v1beta/models/gemini-2.5-flash:generateContent",
        &[("x-goog-api-key", "k")],
        &json!({"contents": [{"parts": [{"text": "hi"}]}]}),
    );
    assert_eq!(r.status, 200);

    for loc in ["us-central", "US-central1", "us", "europe-west4-a"] {
        let r = s.post(
            &format!("/v1/projects/p/locations/{loc}/publishers/google/models/m:generateContent"),
            &h,
            &gemini_body(),
        );
        assert_eq!(r.status, 400, "{loc}");
        assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    }
    let r = s.post(
        "/v1/projects//locations/global/publishers/google/models/m:generateContent",
        &h,
        &gemini_body(),
    );
    assert_eq!(r.status, 400);
    for path in [
        gemini_path("embedContent"),
        gemini_path("rawPredict"),
        claude_path("generateContent"),
        format!("{BASE}/meta/models/llama:rawPredict"),
        "/v1/projects/p/locations/global/models/m:generateContent".to_string(),
    ] {
        let r = s.post(&path, &h, &gemini_body());
        assert_google_error(&r, 404, "NOT_FOUND", "Requested entity was not found.");
    }
    let r = s.request("GET", &gemini_path("generateContent"), &h, "");
    assert_eq!(r.status, 404);
}

#[test]
fn claude_raw_predict_and_stream() {
    let s = Server::start();
    let auth = bearer(&token(&s));
    let h = [("authorization", auth.as_str()), JSON];

    let r = s.post(&claude_path("rawPredict"), &h, &claude_body());
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let id = v["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("msg_mock_"), "{id}");
    assert_eq!(
        v,
        json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5@20250929",
            "content": [{"type": "text", "text": "Hello from mock-provider! You said: Tell me a joke"}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 4, "output_tokens": 9,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        })
    );

    let r = s.post(
        &claude_path("streamRawPredict"),
        &[h[0], ("x-mock-content", "Why did the chicken")],
        &with(claude_body(), "stream", json!(true)),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let events = anthropic_events(&r.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "message_start");
    assert_eq!(
        events[0].1["message"]["model"],
        "claude-sonnet-4-5@20250929"
    );
    assert_eq!(names.last(), Some(&"message_stop"));
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| v["delta"]["text"].as_str().expect("text"))
        .collect();
    assert_eq!(text, "Why did the chicken");

    // rawPredict streams too when the body asks for it.
    let r = s.post(
        &claude_path("rawPredict"),
        &h,
        &with(claude_body(), "stream", json!(true)),
    );
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream")));
    // streamRawPredict wants stream: true.
    let r = s.post(&claude_path("streamRawPredict"), &h, &claude_body());
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    // Percent-encoded @ in the model.
    let r = s.post(
        &format!("{BASE}/anthropic/models/claude-3-5-haiku%4020241022:rawPredict"),
        &h,
        &claude_body(),
    );
    assert_eq!(r.json()["model"], "claude-3-5-haiku@20241022");
    // No x-api-key or anthropic-version header needed, and none looked at.
    let r = s.post(
        &claude_path("rawPredict"),
        &[h[0], ("x-api-key", "ignored")],
        &claude_body(),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn claude_body_rules() {
    let s = Server::start();
    let auth = bearer(&token(&s));
    let h = [("authorization", auth.as_str())];
    let anthropic_error = |b: Value, message: &str| {
        let r = s.post(&claude_path("rawPredict"), &h, &b);
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
        );
    };
    anthropic_error(
        with(claude_body(), "model", json!("claude-sonnet-4-5")),
        "model: Extra inputs are not permitted",
    );
    let mut no_version = claude_body();
    no_version
        .as_object_mut()
        .expect("object")
        .remove("anthropic_version");
    anthropic_error(no_version, "anthropic_version: Field required");
    anthropic_error(
        with(claude_body(), "anthropic_version", json!("2023-06-01")),
        "anthropic_version: Input should be 'vertex-2023-10-16'",
    );
    // The Messages API's own checks still apply.
    let mut no_max = claude_body();
    no_max.as_object_mut().expect("object").remove("max_tokens");
    anthropic_error(no_max, "max_tokens: Field required");
}

#[test]
fn metadata_server_token() {
    let s = Server::start();
    let path = "/computeMetadata/v1/instance/service-accounts/default/token";
    let r = s.get(path);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    assert!(r.text().contains("Missing Metadata-Flavor:Google header"));

    let flavor = ("Metadata-Flavor", "Google");
    let r = s.request("GET", path, &[flavor], "");
    assert_eq!(r.header("metadata-flavor"), Some("Google"));
    let t = token_of(&r, 3599);
    let r = s.request(
        "GET",
        &format!("{path}?scopes=https://www.googleapis.com/auth/cloud-platform"),
        &[flavor],
        "",
    );
    let t2 = token_of(&r, 3599);
    assert_ne!(t, t2);
    let auth = bearer(&t);
    let r = s.post(
        &claude_path("rawPredict"),
        &[("authorization", &auth)],
        &claude_body(),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let r = s.request(
        "GET",
        "/computeMetadata/v1/project/project-id",
        &[flavor],
        "",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "llmgw-test"));
    let r = s.request(
        "GET",
        "/computeMetadata/v1/instance/service-accounts/default/email",
        &[flavor],
        "",
    );
    assert_eq!(r.text(), EMAIL);
    let r = s.request("GET", "/computeMetadata/v1/instance/zone", &[flavor], "");
    assert_eq!(r.status, 404);
    let r = s.request("POST", path, &[flavor], "");
    assert_eq!(r.status, 405);
    assert_eq!(tokens_admin(&s), json!({"issued": 2, "valid": 2}));
}

#[test]
fn missing_unknown_and_revoked_tokens_are_401() {
    let s = Server::start();
    let r = s.post(&gemini_path("generateContent"), &[], &gemini_body());
    assert_google_error(&r, 401, "UNAUTHENTICATED", MISSING);
    assert!(r.header("www-authenticate").is_some());
    let r = s.post(&claude_path("rawPredict"), &[], &claude_body());
    assert_google_error(&r, 401, "UNAUTHENTICATED", MISSING);
    for auth in ["Bearer ya29.mock-0000", "Bearer ", "Basic abc", "ya29.x"] {
        let r = s.post(
            &gemini_path("generateContent"),
            &[("authorization", auth)],
            &gemini_body(),
        );
        assert_google_error(&r, 401, "UNAUTHENTICATED", INVALID);
    }
    // An API key is no credential for Vertex.
    let r = s.post(
        &gemini_path("generateContent"),
        &[("x-goog-api-key", "AIza")],
        &gemini_body(),
    );
    assert_google_error(&r, 401, "UNAUTHENTICATED", MISSING);

    let t1 = token(&s);
    let t2 = token(&s);
    let auth1 = bearer(&t1);
    assert_eq!(
        s.post(
            &gemini_path("generateContent"),
            &[("authorization", &auth1)],
            &gemini_body()
        )
        .status,
        200
    );
    assert_eq!(tokens_admin(&s), json!({"issued": 2, "valid": 2}));
    let r = s.request("POST", "/__mock/google/revoke", &[], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"revoked": 2}));
    assert_eq!(tokens_admin(&s), json!({"issued": 2, "valid": 0}));
    for t in [&t1, &t2] {
        let auth = bearer(t);
        let r = s.post(
            &claude_path("rawPredict"),
            &[("authorization", &auth)],
            &claude_body(),
        );
        assert_google_error(&r, 401, "UNAUTHENTICATED", INVALID);
    }
    // A new token works again.
    let auth = bearer(&token(&s));
    let r = s.post(
        &claude_path("rawPredict"),
        &[("authorization", &auth)],
        &claude_body(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(tokens_admin(&s), json!({"issued": 3, "valid": 1}));
    // ERNIE's store is a different one.
    assert_eq!(
        s.get("/__mock/ernie/tokens").json(),
        json!({"issued": 0, "valid": 0})
    );
    assert_eq!(
        s.request("GET", "/__mock/google/revoke", &[], "").status,
        405
    );
    assert_eq!(
        s.request("POST", "/__mock/google/tokens", &[], "").status,
        405
    );
}

#[test]
fn tokens_expire_with_the_ttl() {
    let s = Server::start_with(&["--google-token-ttl", "1"]);
    let t = token_of(&grant(&s, &jwt()), 1);
    let auth = bearer(&t);
    let call = || {
        s.post(
            &gemini_path("generateContent"),
            &[("authorization", auth.as_str())],
            &gemini_body(),
        )
    };
    assert_eq!(call().status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    assert_google_error(&call(), 401, "UNAUTHENTICATED", INVALID);
    assert_eq!(tokens_admin(&s), json!({"issued": 1, "valid": 0}));
    let r = s.request(
        "GET",
        "/computeMetadata/v1/instance/service-accounts/default/token",
        &[("Metadata-Flavor", "Google")],
        "",
    );
    token_of(&r, 1);
}

#[test]
fn grant_errors() {
    let s = Server::start();
    // A flipped signature byte.
    let good = jwt();
    let (input, sig) = good.rsplit_once('.').expect("three parts");
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).expect("base64url");
    bytes[0] ^= 0x80;
    let bad = format!("{input}.{}", b64(&bytes));
    assert_grant_error(&grant(&s, &bad), "invalid_grant", "Invalid JWT Signature.");

    let mut c = claims_for(EMAIL);
    c["aud"] = json!("https://example.com/token");
    assert_grant_error(
        &grant(&s, &jwt_with(&c)),
        "invalid_grant",
        "Invalid JWT: Failed audience check. The right audience is https://oauth2.googleapis.com/token",
    );
    let mut c = claims_for(EMAIL);
    c["iat"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3600);
    assert_grant_error(
        &grant(&s, &jwt_with(&c)),
        "invalid_grant",
        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
    );
    assert_grant_error(
        &grant(
            &s,
            &jwt_with(&claims_for("nobody@x.iam.gserviceaccount.com")),
        ),
        "invalid_grant",
        "Invalid grant: account not found",
    );
    let r = grant(&s, "not-a-jwt");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_grant");

    let r = s.request(
        "POST",
        "/token",
        &[FORM],
        "grant_type=client_credentials&client_id=x",
    );
    assert_grant_error(
        &r,
        "unsupported_grant_type",
        "Invalid grant_type: client_credentials",
    );
    let r = s.request("POST", "/token", &[FORM], "");
    assert_grant_error(&r, "unsupported_grant_type", "Invalid grant_type: ");
    let r = s.request(
        "POST",
        "/token",
        &[FORM],
        "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer",
    );
    assert_grant_error(
        &r,
        "invalid_request",
        "Missing required parameter: assertion",
    );
    assert_eq!(s.request("GET", "/token", &[], "").status, 405);
    assert_eq!(tokens_admin(&s), json!({"issued": 0, "valid": 0}));
}

#[test]
fn extra_service_accounts() {
    let other = "other@llmgw-test.iam.gserviceaccount.com";
    let arg = format!("{other}:{FIXTURES}/public-key.pem");
    let s = Server::start_with(&["--google-service-account", &arg]);
    token_of(&grant(&s, &jwt_with(&claims_for(other))), 3599);
    token_of(&grant(&s, &jwt()), 3599);
}

#[test]
fn knobs() {
    let s = Server::start();
    let t = token(&s);
    let auth = bearer(&t);
    let a = ("authorization", auth.as_str());

    // x-mock-status: Google's shape for both publishers.
    let r = s.post(
        &claude_path("rawPredict"),
        &[a, ("x-mock-status", "429")],
        &claude_body(),
    );
    assert_google_error(
        &r,
        429,
        "RESOURCE_EXHAUSTED",
        "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
    );
    let r = s.post(
        &gemini_path("generateContent"),
        &[a, ("x-mock-status", "503")],
        &gemini_body(),
    );
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["status"], "UNAVAILABLE");
    // On the token endpoint: an OAuth error.
    let r = s.request("POST", "/token", &[FORM, ("x-mock-status", "500")], "");
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"], "server_error");

    // x-mock-echo-key: the bearer token.
    let r = s.post(
        &gemini_path("generateContent"),
        &[a, ("x-mock-echo-key", "1")],
        &gemini_body(),
    );
    let text = r.json()["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(text.ends_with(&format!("(api key: {t})")), "{text}");
    let r = s.post(
        &claude_path("rawPredict"),
        &[a, ("x-mock-echo-key", "1"), ("x-mock-status", "401")],
        &claude_body(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["status"], t.as_str());
    let r = s.request(
        "POST",
        "/token",
        &[FORM, ("x-mock-echo-key", "1"), ("x-mock-status", "400")],
        "grant_type=x&assertion=the-assertion",
    );
    assert_eq!(r.json()["error"], "the-assertion");

    // x-mock-sse-inject with each publisher's framing.
    let r = s.post(
        &claude_path("streamRawPredict"),
        &[a, ("x-mock-sse-inject", "error@1")],
        &with(claude_body(), "stream", json!(true)),
    );
    assert_eq!(r.status, 200);
    let events = anthropic_events(&r.text());
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].0, "error");
    assert_eq!(events[1].1["error"]["type"], "overloaded_error");
    let r = s.post(
        &format!("{}?alt=sse", gemini_path("streamGenerateContent")),
        &[a, ("x-mock-sse-inject", "error@1")],
        &gemini_body(),
    );
    let events = gemini_events(&r.text());
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["error"]["status"], "UNAVAILABLE");

    // x-mock-chunk-chars / x-mock-split-bytes shape the stream as elsewhere.
    let r = s.post(
        &claude_path("streamRawPredict"),
        &[
            a,
            ("x-mock-chunk-chars", "3"),
            ("x-mock-content", "abcdefg"),
        ],
        &with(claude_body(), "stream", json!(true)),
    );
    let deltas = anthropic_events(&r.text())
        .into_iter()
        .filter(|(n, _)| n == "content_block_delta")
        .count();
    assert_eq!(deltas, 3);
    let r = s.post(
        &format!("{}?alt=sse", gemini_path("streamGenerateContent")),
        &[a, ("x-mock-split-bytes", "5")],
        &gemini_body(),
    );
    assert!(r.chunks.iter().all(|c| c.len() <= 5));
    gemini_events(&r.text());
}
