//! The request flow driven through an in-memory host.

use crate::config::{compile, PluginConfig};
use crate::flow::{StreamFlow, Verdict, CLUSTER_HEADER, TARGET_HEADER};
use crate::host::{Host, LogLevel};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::rc::Rc;

#[derive(Default)]
struct FakeHost {
    req_headers: BTreeMap<String, String>,
    req_body: Vec<u8>,
    resp_headers: BTreeMap<String, String>,
    resp_body: Vec<u8>,
    sent: Option<(u16, Vec<u8>)>,
}

impl Host for FakeHost {
    fn request_header(&self, name: &str) -> Option<String> {
        self.req_headers.get(name).cloned()
    }
    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(v) => self.req_headers.insert(name.into(), v.into()),
            None => self.req_headers.remove(name),
        };
    }
    fn request_body(&self, len: usize) -> Option<Vec<u8>> {
        Some(self.req_body[..len.min(self.req_body.len())].to_vec())
    }
    fn set_request_body(&mut self, body: &[u8]) {
        self.req_body = body.to_vec();
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.resp_headers.get(name).cloned()
    }
    fn set_response_header(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(v) => self.resp_headers.insert(name.into(), v.into()),
            None => self.resp_headers.remove(name),
        };
    }
    fn response_body(&self, len: usize) -> Option<Vec<u8>> {
        Some(self.resp_body[..len.min(self.resp_body.len())].to_vec())
    }
    fn set_response_body(&mut self, body: &[u8]) {
        self.resp_body = body.to_vec();
    }
    fn send_response(&mut self, status: u16, _headers: &[(&str, &str)], body: &[u8]) {
        assert!(self.sent.is_none(), "answered twice");
        self.sent = Some((status, body.to_vec()));
    }
    fn log(&self, _level: LogLevel, _message: &str) {}
}

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

fn request(method: &str, path: &str, body: &str) -> FakeHost {
    let mut h = FakeHost::default();
    for (k, v) in [
        (":method", method),
        (":path", path),
        (":authority", "gateway.local"),
        ("authorization", "Bearer client-key"),
        (CLUSTER_HEADER, "attacker_cluster"),
        ("content-length", &body.len().to_string()),
    ] {
        h.req_headers.insert(k.into(), v.into());
    }
    h.req_body = body.as_bytes().to_vec();
    h
}

/// Runs the request side; returns the verdict of the last callback.
fn run(flow: &mut StreamFlow, h: &mut FakeHost) -> Verdict {
    let eos = h.req_body.is_empty();
    let v = flow.on_request_headers(h, eos);
    if h.sent.is_some() || eos {
        return v;
    }
    assert_eq!(v, Verdict::Pause, "headers must be held for the body");
    let len = h.req_body.len();
    let half = len / 2;
    assert_eq!(flow.on_request_body(h, half, false), Verdict::Pause);
    flow.on_request_body(h, len, true)
}

fn sent_error(h: &FakeHost) -> (u16, Value) {
    let (status, body) = h.sent.clone().expect("no local reply");
    (status, serde_json::from_slice(&body).unwrap())
}

#[test]
fn chat_is_rewritten_for_the_provider() {
    let mut f = flow();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"logprobs":true}"#;
    let mut h = request("POST", "/v1/chat/completions", body);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert!(h.sent.is_none());
    assert_eq!(h.req_headers[":path"], "/v1/chat/completions");
    assert_eq!(h.req_headers[":authority"], "127.0.0.1:18080");
    assert_eq!(h.req_headers[CLUSTER_HEADER], "llmgw_mock");
    assert_eq!(h.req_headers["authorization"], "Bearer sk-upstream-secret");
    let sent: Value = serde_json::from_slice(&h.req_body).unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(sent["logprobs"], true);
    assert_eq!(
        h.req_headers["content-length"],
        h.req_body.len().to_string()
    );

    h.resp_headers.insert(":status".into(), "200".into());
    assert_eq!(f.on_response_headers(&mut h), Verdict::Continue);
    assert_eq!(h.resp_headers[TARGET_HEADER], "mock/gpt-4o-mini-2024-07-18");
    assert_eq!(f.on_response_body(&mut h, 10, false), Verdict::Continue);
}

#[test]
fn keyless_provider_gets_no_credentials() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/embeddings?x=1",
        r#"{"model":"llama","input":"hello"}"#,
    );
    h.req_headers.insert("x-api-key".into(), "client".into());
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(h.req_headers[":path"], "/v1/embeddings");
    assert_eq!(h.req_headers[":authority"], "127.0.0.1:11434");
    assert!(!h.req_headers.contains_key("authorization"));
    assert!(!h.req_headers.contains_key("x-api-key"));
}

#[test]
fn models_are_listed_from_config() {
    let mut f = flow();
    let mut h = request("GET", "/v1/models", "");
    assert_eq!(run(&mut f, &mut h), Verdict::Pause);
    let (status, v) = sent_error(&h);
    assert_eq!(status, 200);
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    // qwen-plus is hidden: its provider has no key.
    assert_eq!(ids, ["gpt-4o-mini", "llama"]);
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["owned_by"], "mock");
    assert!(!h.req_headers.contains_key(CLUSTER_HEADER));

    let mut f = flow();
    let mut h = request("GET", "/v1/models/llama", "");
    run(&mut f, &mut h);
    assert_eq!(sent_error(&h).1["id"], "llama");
    let mut f = flow();
    let mut h = request("GET", "/v1/models/nope", "");
    run(&mut f, &mut h);
    assert_eq!(sent_error(&h).0, 404);
}

#[test]
fn errors_are_openai_shaped() {
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        ("POST", "/v1/chat/completions", "{", 400, "could not parse"),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"x","messages":[{"role":"user","content":"a"}]}"#,
            404,
            "Available models: gpt-4o-mini, llama.",
        ),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"qwen-plus","messages":[{"role":"user","content":"a"}]}"#,
            503,
            "DASHSCOPE_API_KEY is not set",
        ),
        ("POST", "/v1/chat/completions", "", 400, "body is empty"),
        ("GET", "/v1/chat/completions", "", 405, "use POST"),
        ("POST", "/v1/models", "{}", 405, "use GET"),
        (
            "POST",
            "/v2/other",
            "{}",
            404,
            "Unknown request URL: POST /v2/other",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let mut f = flow();
        let mut h = request(method, path, body);
        run(&mut f, &mut h);
        let (got, v) = sent_error(&h);
        assert_eq!(got, *status, "{method} {path} {body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
        assert!(v["error"]["type"].is_string());
        assert!(!h.req_headers.contains_key(CLUSTER_HEADER));
        // The local reply passes back through the filter untouched.
        h.resp_headers.insert(":status".into(), got.to_string());
        f.on_response_headers(&mut h);
        assert!(!h.resp_headers.contains_key(TARGET_HEADER));
    }
}

#[test]
fn oversized_bodies_get_413() {
    // Declared too large: refused before any byte is buffered.
    let big = format!(
        r#"{{"model":"llama","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4000)
    );
    let mut f = flow();
    let mut h = request("POST", "/v1/chat/completions", &big);
    assert_eq!(f.on_request_headers(&mut h, false), Verdict::Pause);
    assert_eq!(sent_error(&h).0, 413);

    // Chunked (no content-length): refused once the buffer passes the limit.
    let mut f = flow();
    let mut h = request("POST", "/v1/chat/completions", &big);
    h.req_headers.remove("content-length");
    assert_eq!(f.on_request_headers(&mut h, false), Verdict::Pause);
    assert!(h.sent.is_none());
    assert_eq!(f.on_request_body(&mut h, 1000, false), Verdict::Pause);
    assert_eq!(f.on_request_body(&mut h, 3000, false), Verdict::Pause);
    let (status, v) = sent_error(&h);
    assert_eq!(status, 413);
    assert_eq!(v["error"]["code"], "request_too_large");
    // Later body callbacks are swallowed.
    assert_eq!(f.on_request_body(&mut h, 4000, true), Verdict::Pause);
}

#[test]
fn upstream_errors_are_normalized_and_scrubbed() {
    let mut f = flow();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let mut h = request("POST", "/v1/chat/completions", body);
    run(&mut f, &mut h);
    h.resp_headers.insert(":status".into(), "401".into());
    h.resp_headers
        .insert("content-type".into(), "text/plain".into());
    h.resp_headers.insert("content-length".into(), "99".into());
    f.on_response_headers(&mut h);
    assert_eq!(h.resp_headers["content-type"], "application/json");
    assert!(!h.resp_headers.contains_key("content-length"));
    h.resp_body = b"bad key sk-upstream-secret".to_vec();
    assert_eq!(f.on_response_body(&mut h, 5, false), Verdict::Pause);
    assert_eq!(f.on_response_body(&mut h, 26, true), Verdict::Continue);
    let v: Value = serde_json::from_slice(&h.resp_body).unwrap();
    assert_eq!(
        v,
        json!({"error":{"message":"Upstream returned HTTP 401: bad key [redacted]","type":"authentication_error","param":null,"code":null}})
    );
}
