mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const MODEL_PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";
const MODEL_ID: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const KEY1: (&str, &str) = (
    "AKIAMOCKEXAMPLE00001",
    "mock+secret/KEY0000000000000000000001",
);
const KEY2: (&str, &str) = (
    "ASIAMOCKEXAMPLE00002",
    "mock+secret/KEY0000000000000000000002",
);
const TOKEN2: &str = "mock-session-token-2";

// ---------------------------------------------------------------------------
// A tiny SigV4 signer, independent of the mock's verifier.

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac key");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn amz_date(unix: i64) -> String {
    // Days → civil date (Howard Hinnant's algorithm).
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

struct Signing<'a> {
    key: (&'a str, &'a str),
    token: Option<&'a str>,
    date: String,
    service: &'a str,
}

impl Signing<'_> {
    fn key1() -> Signing<'static> {
        Signing {
            key: KEY1,
            token: None,
            date: amz_date(now()),
            service: "bedrock",
        }
    }
}

/// The headers to send for a signed `POST path` with `body` (host `mock`, as
/// the test client sends it).
fn sign(s: &Signing<'_>, path: &str, body: &[u8]) -> Vec<(String, String)> {
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("host".to_string(), "mock".to_string()),
        ("x-amz-date".to_string(), s.date.clone()),
    ];
    if let Some(t) = s.token {
        headers.push(("x-amz-security-token".to_string(), t.to_string()));
    }
    let uri: Vec<String> = path.split('/').map(encode_segment).collect();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let creq = format!(
        "POST\n{}\n\n{canonical_headers}\n{signed}\n{}",
        uri.join("/"),
        hex(&Sha256::digest(body))
    );
    let day = &s.date[..8];
    let scope = format!("{day}/us-east-1/{}/aws4_request", s.service);
    let sts = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        s.date,
        hex(&Sha256::digest(creq.as_bytes()))
    );
    let mut k = hmac(format!("AWS4{}", s.key.1).as_bytes(), day);
    for part in ["us-east-1", s.service, "aws4_request"] {
        k = hmac(&k, part);
    }
    let sig = hex(&hmac(&k, &sts));
    headers.retain(|(k, _)| k != "host");
    headers.push((
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
            s.key.0
        ),
    ));
    headers
}

fn send(
    server: &Server,
    path: &str,
    headers: &[(String, String)],
    extra: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    h.extend_from_slice(extra);
    server.conn().send("POST", path, &h, body)
}

fn signed_post(server: &Server, path: &str, extra: &[(&str, &str)], body: &Value) -> Resp {
    let body = body.to_string();
    let headers = sign(&Signing::key1(), path, body.as_bytes());
    send(server, path, &headers, extra, body.as_bytes())
}

fn body() -> Value {
    json!({
        "messages": [{"role": "user", "content": [{"text": "Tell me a joke"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 512}
    })
}

fn assert_aws_error(r: &Resp, status: u16, name: &str) -> String {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-amzn-errortype"), Some(name));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
    v["message"].as_str().expect("message").to_string()
}

// ---------------------------------------------------------------------------
// Event-stream decoding (both CRCs checked).

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

struct Message {
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).expect("payload JSON")
    }
}

fn decode(mut b: &[u8]) -> Vec<Message> {
    let be = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
    let mut out = Vec::new();
    while !b.is_empty() {
        assert!(b.len() >= 16, "truncated message");
        let total = be(&b[0..4]);
        let hlen = be(&b[4..8]);
        assert_eq!(be(&b[8..12]) as u32, crc32(&b[..8]), "prelude CRC");
        assert_eq!(
            be(&b[total - 4..total]) as u32,
            crc32(&b[..total - 4]),
            "message CRC"
        );
        let mut h = &b[12..12 + hlen];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8(h[1..1 + n].to_vec()).expect("name");
            assert_eq!(h[1 + n], 7, "string header");
            let len = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
            let value = String::from_utf8(h[4 + n..4 + n + len].to_vec()).expect("value");
            headers.push((name, value));
            h = &h[4 + n + len..];
        }
        out.push(Message {
            headers,
            payload: b[12 + hlen..total - 4].to_vec(),
        });
        b = &b[total..];
    }
    out
}

/// `(event type, payload without "p")` of a stream of events; checks headers
/// and the padding field.
fn events(r: &Resp) -> Vec<(String, Value)> {
    decode(&r.body)
        .into_iter()
        .map(|m| {
            assert_eq!(m.header(":message-type"), Some("event"));
            assert_eq!(m.header(":content-type"), Some("application/json"));
            let mut v = m.json();
            let p = v
                .as_object_mut()
                .and_then(|o| o.remove("p"))
                .expect("padding field");
            let p = p.as_str().expect("padding string");
            assert!(!p.is_empty() && p.chars().all(|c| c.is_ascii_alphabetic()));
            (m.header(":event-type").expect("event type").to_string(), v)
        })
        .collect()
}

// ---------------------------------------------------------------------------

#[test]
fn signed_converse_exact() {
    let s = Server::start();
    let r = signed_post(&s, MODEL_PATH, &[], &body());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-mock-model-id"), Some(MODEL_ID));
    assert_eq!(r.header("x-amzn-requestid"), Some("mock-request-1"));
    assert_eq!(
        r.json(),
        json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "Hello from mock-provider! You said: Tell me a joke"}
            ]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 6, "outputTokens": 9, "totalTokens": 15},
            "metrics": {"latencyMs": 1}
        })
    );
}

#[test]
fn session_token_key_and_inference_profile_arn() {
    let s = Server::start();
    let path = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";
    let b = body().to_string();
    let signing = Signing {
        key: KEY2,
        token: Some(TOKEN2),
        ..Signing::key1()
    };
    let r = send(
        &s,
        path,
        &sign(&signing, path, b.as_bytes()),
        &[],
        b.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("x-mock-model-id"),
        Some("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0")
    );

    // The same key without its session token, or with a wrong one.
    let no_token = Signing {
        key: KEY2,
        ..Signing::key1()
    };
    let r = send(
        &s,
        path,
        &sign(&no_token, path, b.as_bytes()),
        &[],
        b.as_bytes(),
    );
    let msg = assert_aws_error(&r, 403, "UnrecognizedClientException");
    assert_eq!(
        msg,
        "The security token included in the request is invalid."
    );
    let wrong = Signing {
        key: KEY2,
        token: Some("other-token"),
        ..Signing::key1()
    };
    let r = send(
        &s,
        path,
        &sign(&wrong, path, b.as_bytes()),
        &[],
        b.as_bytes(),
    );
    assert_aws_error(&r, 403, "UnrecognizedClientException");
}

#[test]
fn signed_converse_stream_frames() {
    let s = Server::start();
    let path = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream";
    let r = signed_post(
        &s,
        path,
        &[("x-mock-content", "Why did the chicken")],
        &body(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.amazon.eventstream")
    );
    assert_eq!(r.header("x-mock-model-id"), Some(MODEL_ID));
    let ev = events(&r);
    let expected = vec![
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Why did "}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "the chic"}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "ken"}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("messageStop", json!({"stopReason": "end_turn"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 6, "outputTokens": 4, "totalTokens": 10},
                   "metrics": {"latencyMs": 1}}),
        ),
    ];
    let got: Vec<(&str, Value)> = ev.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    assert_eq!(got, expected);
}

#[test]
fn stream_with_reasoning_and_tool_call() {
    let s = Server::start();
    let path = "/model/m/converse-stream";
    let mut b = body();
    b["additionalModelRequestFields"] =
        json!({"thinking": {"type": "enabled", "budget_tokens": 1024}});
    let r = signed_post(
        &s,
        path,
        &[
            ("x-mock-reasoning", "Let me think"),
            ("x-mock-tool-call", "get_weather"),
            ("x-mock-tool-args", r#"{"city":"Paris"}"#),
        ],
        &b,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let ev = events(&r);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "contentBlockStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    assert_eq!(
        ev[1].1,
        json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Let me t"}}})
    );
    assert_eq!(
        ev[3].1,
        json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "mock-signature"}}})
    );
    assert_eq!(
        ev[5].1,
        json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_mock_1", "name": "get_weather"}}})
    );
    let input: String = ev[6..8]
        .iter()
        .map(|(_, v)| {
            v["delta"]["toolUse"]["input"]
                .as_str()
                .expect("input piece")
        })
        .collect();
    assert_eq!(input, r#"{"city":"Paris"}"#);
    assert_eq!(ev[9].1, json!({"stopReason": "tool_use"}));

    // Non-stream: the same content as blocks.
    let r = signed_post(
        &s,
        "/model/m/converse",
        &[
            ("x-mock-reasoning", "Let me think"),
            ("x-mock-tool-call", "get_weather"),
            ("x-mock-tool-args", r#"{"city":"Paris"}"#),
        ],
        &b,
    );
    let v = r.json();
    assert_eq!(
        v["output"]["message"]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "Let me think", "signature": "mock-signature"}}},
            {"toolUse": {"toolUseId": "tooluse_mock_2", "name": "get_weather", "input": {"city": "Paris"}}}
        ])
    );
    assert_eq!(v["stopReason"], "tool_use");
}

#[test]
fn length_and_stop_sequence_cuts() {
    let s = Server::start();
    let mut b = body();
    b["inferenceConfig"] = json!({"maxTokens": 3});
    let v = signed_post(&s, MODEL_PATH, &[], &b).json();
    assert_eq!(
        v["output"]["message"]["content"],
        json!([{"text": "Hello from mock-provider!"}])
    );
    assert_eq!(v["stopReason"], "max_tokens");
    b["inferenceConfig"] = json!({"stopSequences": ["mock"]});
    b["additionalModelResponseFieldPaths"] = json!(["/stop_sequence"]);
    let v = signed_post(&s, MODEL_PATH, &[], &b).json();
    assert_eq!(v["stopReason"], "stop_sequence");
    assert_eq!(
        v["additionalModelResponseFields"],
        json!({"stop_sequence": "mock"})
    );
}

#[test]
fn auth_failures() {
    let s = Server::start();
    let b = body().to_string();

    // Unsigned.
    let r = s.conn().send("POST", MODEL_PATH, &[JSON], b.as_bytes());
    let msg = assert_aws_error(&r, 403, "MissingAuthenticationTokenException");
    assert_eq!(msg, "Missing Authentication Token");

    // Signed, then one body byte changed.
    let headers = sign(&Signing::key1(), MODEL_PATH, b.as_bytes());
    let tampered = b.replace("joke", "jokf");
    let r = send(&s, MODEL_PATH, &headers, &[], tampered.as_bytes());
    let msg = assert_aws_error(&r, 403, "InvalidSignatureException");
    assert!(msg.starts_with("The request signature we calculated does not match"));
    // Untouched, the same headers pass.
    assert_eq!(
        send(&s, MODEL_PATH, &headers, &[], b.as_bytes()).status,
        200
    );

    // Unknown key id.
    let unknown = Signing {
        key: ("AKIAUNKNOWN000000000", "x"),
        ..Signing::key1()
    };
    let r = send(
        &s,
        MODEL_PATH,
        &sign(&unknown, MODEL_PATH, b.as_bytes()),
        &[],
        b.as_bytes(),
    );
    assert_aws_error(&r, 403, "UnrecognizedClientException");

    // Signed for another service.
    let other = Signing {
        service: "s3",
        ..Signing::key1()
    };
    let r = send(
        &s,
        MODEL_PATH,
        &sign(&other, MODEL_PATH, b.as_bytes()),
        &[],
        b.as_bytes(),
    );
    let msg = assert_aws_error(&r, 403, "IncompleteSignatureException");
    assert!(msg.contains("'bedrock'"), "{msg}");

    // Ten minutes old.
    let old = Signing {
        date: amz_date(now() - 600),
        ..Signing::key1()
    };
    let r = send(
        &s,
        MODEL_PATH,
        &sign(&old, MODEL_PATH, b.as_bytes()),
        &[],
        b.as_bytes(),
    );
    let msg = assert_aws_error(&r, 403, "InvalidSignatureException");
    assert!(msg.starts_with("Signature expired: "), "{msg}");

    // Malformed authorization header.
    let r = s.conn().send(
        "POST",
        MODEL_PATH,
        &[
            ("authorization", "AWS4-HMAC-SHA256 Credential=x"),
            ("x-amz-date", "20240101T000000Z"),
        ],
        b.as_bytes(),
    );
    assert_aws_error(&r, 403, "IncompleteSignatureException");
}

#[test]
fn validation_errors_after_auth() {
    let s = Server::start();
    let r = signed_post(&s, MODEL_PATH, &[], &json!({"messages": []}));
    let msg = assert_aws_error(&r, 400, "ValidationException");
    assert!(msg.contains("'messages'"), "{msg}");
    let r = signed_post(
        &s,
        MODEL_PATH,
        &[],
        &json!({"inferenceConfig": {"maxTokens": 5}}),
    );
    let msg = assert_aws_error(&r, 400, "ValidationException");
    assert_eq!(
        msg,
        "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null"
    );
    // Double-encoded model id: decodes to something with '%'.
    let r = signed_post(&s, "/model/m%253A0/converse", &[], &body());
    assert_eq!(
        assert_aws_error(&r, 400, "ValidationException"),
        "The provided model identifier is invalid."
    );
    // Unknown operation (no auth needed to learn that).
    let r = s.conn().send("POST", "/model/m/invoke-foo", &[JSON], b"{}");
    assert_aws_error(&r, 404, "UnknownOperationException");
}

#[test]
fn status_knob_is_answered_before_auth() {
    let s = Server::start();
    let r = s.conn().send(
        "POST",
        MODEL_PATH,
        &[("x-mock-status", "429"), ("x-mock-retry-after", "3")],
        b"{}",
    );
    assert_aws_error(&r, 429, "ThrottlingException");
    assert_eq!(r.header("retry-after"), Some("3"));
    for (status, name) in [
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (404, "ResourceNotFoundException"),
        (408, "ModelTimeoutException"),
        (424, "ModelErrorException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
        (502, "InternalServerException"),
        (409, "ValidationException"),
    ] {
        let st = status.to_string();
        let r = s
            .conn()
            .send("POST", MODEL_PATH, &[("x-mock-status", st.as_str())], b"{}");
        assert_aws_error(&r, status, name);
    }
}

#[test]
fn stream_knobs_split_inject_reset() {
    let s = Server::start();
    let path = "/model/m/converse-stream";
    // Split into 7-byte frames: the messages are cut anywhere but decode whole.
    let r = signed_post(&s, path, &[("x-mock-split-bytes", "7")], &body());
    assert!(r.chunks.len() > 10);
    assert!(r.chunks[..r.chunks.len() - 1].iter().all(|c| c.len() == 7));
    let ev = events(&r);
    assert_eq!(ev.last().map(|(n, _)| n.as_str()), Some("metadata"));

    // An in-band exception before the third message; the stream then ends.
    let r = signed_post(
        &s,
        path,
        &[("x-mock-sse-inject", "error:throttlingException@2")],
        &body(),
    );
    assert!(r.complete);
    let msgs = decode(&r.body);
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[2].header(":message-type"), Some("exception"));
    assert_eq!(
        msgs[2].header(":exception-type"),
        Some("throttlingException")
    );
    assert_eq!(msgs[2].header(":content-type"), Some("application/json"));
    assert!(msgs[2].json()["message"].is_string());
    let r = signed_post(&s, path, &[("x-mock-sse-inject", "error@0")], &body());
    let msgs = decode(&r.body);
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].header(":exception-type"),
        Some("modelStreamErrorException")
    );

    // Reset after two messages: exactly those arrive, then the connection drops.
    let r = signed_post(&s, path, &[("x-mock-reset-after", "2")], &body());
    assert!(!r.complete);
    assert_eq!(decode(&r.body).len(), 2);
}

#[test]
fn extra_credentials_flag() {
    let s = Server::start_with(&["--aws-credentials", "AKIAEXTRA0000000001:extra/secret+1"]);
    let b = body().to_string();
    let signing = Signing {
        key: ("AKIAEXTRA0000000001", "extra/secret+1"),
        ..Signing::key1()
    };
    let r = send(
        &s,
        MODEL_PATH,
        &sign(&signing, MODEL_PATH, b.as_bytes()),
        &[],
        b.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // The built-in keys still work.
    assert_eq!(signed_post(&s, MODEL_PATH, &[], &body()).status, 200);
}

#[test]
fn requests_are_recorded() {
    let s = Server::start();
    signed_post(&s, MODEL_PATH, &[], &body());
    let rec = s.get("/__mock/requests").json();
    assert_eq!(rec[0]["path"], MODEL_PATH);
    assert!(rec[0]["headers"]["authorization"]
        .as_str()
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 Credential=AKIAMOCKEXAMPLE00001/")));
}
