//! The request flow driven through the in-memory host, by topic:
//! requests in, translated providers, hostile responses, limits and
//! telemetry.

mod bedrock;
mod cache;
mod client_apis;
mod golden;
mod guardrails;
mod hostile_responses;
mod limits;
mod requests;
mod shadow;
mod signing;
mod telemetry;
mod tokens;
mod translated;

use crate::config::{compile, PluginConfig};
use crate::flow::{StreamFlow, Verdict, CLUSTER_HEADER, TARGET_HEADER};
use crate::host::MetricOp;
use crate::testing::{MemStore, RecordingHost};
use serde_json::{json, Value};
use std::rc::Rc;

const CONFIG: &str = r#"{
    "providers": [
        {"name": "mock", "type": "openai", "base_url": "http://127.0.0.1:18080/v1", "api_key": "sk-upstream-secret"},
        {"name": "qwen", "type": "qwen", "api_key": "env:DASHSCOPE_API_KEY",
         "headers": [{"name": "X-DashScope-SSE", "value": "enable"}]},
        {"name": "local", "type": "ollama"}
    ],
    "models": [
        {"name": "gpt-4o-mini", "targets": [{"provider": "mock", "model": "gpt-4o-mini-2024-07-18"}]},
        {"name": "qwen-plus", "targets": [{"provider": "qwen"}]},
        {"name": "llama", "targets": [{"provider": "local", "model": "llama3.2"}]}
    ],
    "limits": {"max_request_body_bytes": 2048}
}"#;

fn flow() -> StreamFlow {
    let cfg = PluginConfig::from_json(CONFIG.as_bytes()).unwrap();
    let gw = compile(&cfg, &|_| None).unwrap();
    StreamFlow::new(Rc::new(gw), 1)
}

fn request(method: &str, path: &str, body: &str) -> RecordingHost {
    let mut h = RecordingHost::default();
    for (k, v) in [
        (":method", method),
        (":path", path),
        (":authority", "gateway.local"),
        ("authorization", "Bearer client-key"),
        (CLUSTER_HEADER, "attacker_cluster"),
        ("x-envoy-upstream-rq-timeout-ms", "1"),
        ("content-length", &body.len().to_string()),
    ] {
        h.request_headers.insert(k.into(), v.into());
    }
    h.request_body = body.as_bytes().to_vec();
    h
}

/// Runs the request side; returns the verdict of the last callback.
fn run(flow: &mut StreamFlow, h: &mut RecordingHost) -> Verdict {
    let eos = h.request_body.is_empty();
    let v = flow.on_request_headers(h, eos);
    if h.sent.is_some() || eos {
        return v;
    }
    assert_eq!(v, Verdict::Pause, "headers must be held for the body");
    let len = h.request_body.len();
    let half = len / 2;
    assert_eq!(flow.on_request_body(h, half, false), Verdict::Pause);
    flow.on_request_body(h, len, true)
}

fn sent_error(h: &RecordingHost) -> (u16, Value) {
    let (status, body) = h.sent.clone().expect("no local reply");
    (status, serde_json::from_slice(&body).unwrap())
}

/// Answers the forwarded request with `status` and the body in `chunks`
/// (`content-type` from `headers`); returns the bytes the client receives.
fn respond_with(
    f: &mut StreamFlow,
    h: &mut RecordingHost,
    status: &str,
    headers: &[(&str, &str)],
    chunks: &[&[u8]],
) -> Vec<u8> {
    h.response_headers.insert(":status".into(), status.into());
    h.response_headers
        .insert("content-length".into(), "5".into());
    for (k, v) in headers {
        h.response_headers.insert(k.to_string(), v.to_string());
    }
    let mut client = Vec::new();
    let verdict = f.on_response_headers(h, false);
    h.response_headers_sent = verdict == Verdict::Continue;
    let mut buffered = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let eos = i + 1 == chunks.len();
        buffered.extend_from_slice(c);
        h.response_body = buffered.clone();
        let v = f.on_response_body(h, buffered.len(), eos);
        if v == Verdict::Continue {
            h.response_headers_sent = true;
            client.extend_from_slice(&h.response_body);
            buffered.clear();
        }
    }
    assert!(verdict == Verdict::Continue || buffered.is_empty());
    client
}

fn respond(f: &mut StreamFlow, h: &mut RecordingHost, status: &str, chunks: &[&str]) -> Vec<u8> {
    let chunks: Vec<&[u8]> = chunks.iter().map(|c| c.as_bytes()).collect();
    respond_with(f, h, status, &[], &chunks)
}

/// A chat request for `gpt-4o-mini` answered 200 with `response` in one
/// body chunk; the stream is not logged yet.
fn passthrough_success(f: &mut StreamFlow, response: &[u8]) -> RecordingHost {
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#,
    );
    run(f, &mut h);
    h.response_headers.insert(":status".into(), "200".into());
    h.response_headers_sent = f.on_response_headers(&mut h, false) == Verdict::Continue;
    h.response_body = response.to_vec();
    assert_eq!(
        f.on_response_body(&mut h, response.len(), true),
        Verdict::Continue
    );
    h
}
