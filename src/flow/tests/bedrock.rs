//! Amazon Bedrock through the flow: requests signed per request (SigV4)
//! over the path, host and body sent, event-stream answers translated.

use super::*;
use crate::providers::aws::AwsSigner;
use crate::wire::eventstream::{encode, event};

const CFG: &str = r#"{
    "providers": [
        {"name": "br", "type": "bedrock", "base_url": "http://127.0.0.1:9/",
         "aws": {"region": "eu-west-3", "access_key_id": "AKIAMOCK", "secret_access_key": "s3cr3t/KEY",
                 "session_token": "env:TOKEN"}},
        {"name": "unset", "type": "bedrock", "aws": {"region": "us-east-1"}}
    ],
    "models": [
        {"name": "claude", "targets": [{"provider": "br", "model": "anthropic.claude-sonnet-4-20250514-v1:0"}]},
        {"name": "nova", "targets": [{"provider": "unset", "model": "us.amazon.nova-pro-v1:0"}]}
    ]
}"#;

fn flow() -> StreamFlow {
    let cfg = PluginConfig::from_json(CFG.as_bytes()).unwrap();
    let env = |name: &str| (name == "TOKEN").then(|| "session-token".to_string());
    StreamFlow::new(Rc::new(compile(&cfg, &env).unwrap()), 3)
}

fn signer() -> AwsSigner {
    let cfg = PluginConfig::from_json(CFG.as_bytes()).unwrap();
    let env = |name: &str| (name == "TOKEN").then(|| "session-token".to_string());
    compile(&cfg, &env).unwrap().providers[0]
        .signer
        .clone()
        .unwrap()
}

#[test]
fn requests_are_signed_over_what_is_sent() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        r#"{"model":"claude","messages":[{"role":"user","content":"hi"}]}"#,
    );
    h.request_headers
        .insert("x-amz-security-token".into(), "client-token".into());
    h.request_headers
        .insert("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into());
    h.clock_ns.set(1_440_938_160 * 1_000_000_000);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    let path = "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
    assert_eq!(h.request_headers[":path"], path);
    assert_eq!(h.request_headers[":authority"], "127.0.0.1:9");
    assert_eq!(h.request_headers["x-amz-date"], "20150830T123600Z");
    assert_eq!(h.request_headers["x-amz-security-token"], "session-token");
    assert!(!h.request_headers.contains_key("x-amz-content-sha256"));
    let body: Value = serde_json::from_slice(&h.request_body).unwrap();
    assert_eq!(body["messages"][0]["content"][0]["text"], "hi");
    // The signature is the one of this body, host, path and time.
    let expected = signer().headers(
        "127.0.0.1:9",
        path,
        "application/json",
        &h.request_body,
        1_440_938_160,
    );
    let auth = expected.iter().find(|(k, _)| k == "authorization").unwrap();
    assert_eq!(h.request_headers["authorization"], auth.1);
    assert!(auth.1.contains("/20150830/eu-west-3/bedrock/aws4_request"));
    assert_eq!(h.request_headers["content-type"], "application/json");
}

#[test]
fn streams_from_the_event_stream_reach_an_anthropic_client() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/messages",
        r#"{"model":"claude","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert!(h.request_headers[":path"].ends_with("/converse-stream"));
    let mut bytes = Vec::new();
    for (name, json) in [
        ("messageStart", r#"{"role":"assistant","p":"ab"}"#),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Bonjour"},"p":"abc"}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        ("messageStop", r#"{"stopReason":"end_turn"}"#),
        (
            "metadata",
            r#"{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4}}"#,
        ),
    ] {
        bytes.extend(encode(&event(name, json.as_bytes())));
    }
    let (a, b) = bytes.split_at(37);
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "application/vnd.amazon.eventstream")],
        &[a, b],
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(h.response_headers["content-type"], "text/event-stream");
    assert!(text.contains("event: message_start"), "{text}");
    assert!(text.contains(r#""text":"Bonjour""#), "{text}");
    assert!(text.contains(r#""stop_reason":"end_turn""#), "{text}");
    assert!(
        text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
}

#[test]
fn a_stream_answered_as_sse_is_refused() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        r#"{"model":"claude","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    run(&mut f, &mut h);
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "text/event-stream")],
        &[b"data: {}\n\n"],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("instead of an event stream"), "{text}");
}

#[test]
fn a_provider_without_credentials_names_the_variables() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        r#"{"model":"nova","messages":[{"role":"user","content":"hi"}]}"#,
    );
    run(&mut f, &mut h);
    let (status, v) = sent_error(&h);
    assert_eq!(status, 503);
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY is not set"),
        "{m}"
    );
    assert!(!m.contains("AWS_SESSION_TOKEN"), "{m}");
}

#[test]
fn config_errors_name_the_field() {
    for (json, field) in [
        (r#"{"name":"b","type":"bedrock"}"#, "providers[0].aws"),
        (
            r#"{"name":"b","type":"bedrock","aws":{"region":"us-east-1.evil.com"}}"#,
            "providers[0].aws.region",
        ),
        (
            r#"{"name":"b","type":"openai","aws":{"region":"us-east-1"}}"#,
            "providers[0].aws",
        ),
        (
            r#"{"name":"b","type":"bedrock","aws":{"region":"us-east-1","access_key_id":"AK IA","secret_access_key":"x"}}"#,
            "providers[0].aws.access_key_id",
        ),
        (
            r#"{"name":"b","type":"bedrock","aws":{"region":"us-east-1","secret_access_key":"file:k"}}"#,
            "providers[0].aws.secret_access_key",
        ),
        (
            r#"{"name":"b","type":"bedrock","aws":{"region":"us-east-1","regoin":"x"}}"#,
            "regoin",
        ),
    ] {
        let text = format!(r#"{{"providers":[{json}],"models":[]}}"#);
        let e = PluginConfig::from_json(text.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|c| {
                compile(&c, &|_| None)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .unwrap_err();
        assert!(e.contains(field), "{field}: {e}");
    }
    // A model name that could leave its path segment.
    let text = r#"{"providers":[{"name":"b","type":"bedrock","aws":{"region":"us-east-1"}}],
        "models":[{"name":"m","targets":[{"provider":"b","model":"a/../../x"}]}]}"#;
    let e = compile(&PluginConfig::from_json(text.as_bytes()).unwrap(), &|_| {
        None
    })
    .unwrap_err();
    assert!(e.to_string().contains("targets[0].model"), "{e}");
    // A Bedrock API key is a bearer token; the region still picks the URL.
    let text = r#"{"providers":[{"name":"b","type":"bedrock","api_key":"ABSK-key","aws":{"region":"ap-northeast-1"}}],
        "models":[{"name":"m","targets":[{"provider":"b","model":"apac.amazon.nova-lite-v1:0"}]}]}"#;
    let gw = compile(&PluginConfig::from_json(text.as_bytes()).unwrap(), &|_| {
        None
    })
    .unwrap();
    assert!(gw.providers[0].signer.is_none());
    assert_eq!(
        gw.providers[0].endpoint.authority(),
        "bedrock-runtime.ap-northeast-1.amazonaws.com"
    );
}
