//! The request flow driven through an in-memory host.

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

#[test]
fn chat_is_rewritten_for_the_provider() {
    let mut f = flow();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"logprobs":true}"#;
    let mut h = request("POST", "/v1/chat/completions", body);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert!(h.sent.is_none());
    assert_eq!(h.request_headers[":path"], "/v1/chat/completions");
    assert_eq!(h.request_headers[":authority"], "127.0.0.1:18080");
    assert_eq!(h.request_headers[CLUSTER_HEADER], "llmgw_mock");
    // The route is looked up again with the routing header set.
    assert!(h.route_cleared);
    assert!(!h
        .request_headers
        .contains_key("x-envoy-upstream-rq-timeout-ms"));
    assert_eq!(
        h.request_headers["authorization"],
        "Bearer sk-upstream-secret"
    );
    let sent: Value = serde_json::from_slice(&h.request_body).unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(sent["logprobs"], true);
    assert_eq!(
        h.request_headers["content-length"],
        h.request_body.len().to_string()
    );

    h.response_headers.insert(":status".into(), "200".into());
    assert_eq!(f.on_response_headers(&mut h, false), Verdict::Continue);
    assert_eq!(
        h.response_headers[TARGET_HEADER],
        "mock/gpt-4o-mini-2024-07-18"
    );
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
    h.request_headers
        .insert("x-api-key".into(), "client".into());
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(h.request_headers[":path"], "/v1/embeddings");
    assert_eq!(h.request_headers[":authority"], "127.0.0.1:11434");
    assert!(!h.request_headers.contains_key("authorization"));
    assert!(!h.request_headers.contains_key("x-api-key"));
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
    assert!(!h.request_headers.contains_key(CLUSTER_HEADER));

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
        assert!(!h.request_headers.contains_key(CLUSTER_HEADER));
        // The local reply passes back through the filter untouched.
        h.response_headers.insert(":status".into(), got.to_string());
        f.on_response_headers(&mut h, false);
        assert!(!h.response_headers.contains_key(TARGET_HEADER));
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
    h.request_headers.remove("content-length");
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
    h.response_headers.insert(":status".into(), "401".into());
    h.response_headers
        .insert("content-type".into(), "text/plain".into());
    h.response_headers
        .insert("content-length".into(), "99".into());
    f.on_response_headers(&mut h, false);
    assert_eq!(h.response_headers["content-type"], "application/json");
    assert!(!h.response_headers.contains_key("content-length"));
    h.response_body = b"bad key sk-upstream-secret".to_vec();
    assert_eq!(f.on_response_body(&mut h, 5, false), Verdict::Pause);
    assert_eq!(f.on_response_body(&mut h, 26, true), Verdict::Continue);
    let v: Value = serde_json::from_slice(&h.response_body).unwrap();
    assert_eq!(
        v,
        json!({"error":{"message":"Upstream returned HTTP 401: bad key [redacted]","type":"authentication_error","param":null,"code":null}})
    );
}

mod translated {
    use super::respond;
    use super::*;
    use crate::config::Dialect;
    use crate::error::ApiError;
    use crate::hub::{
        ChatRequest, ChatResponse, Choice, FinishReason, ResponseContext, StreamDecoder,
        StreamEvent, Translator,
    };
    use crate::providers::Operation;
    use crate::sse::SseEvent;

    /// A provider whose stream events carry plain text and end with `end`.
    struct Echo;

    struct EchoDecoder {
        ended: bool,
    }

    impl StreamDecoder for EchoDecoder {
        fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
            if event.data == "end" {
                self.ended = true;
                out.push(StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::Stop,
                });
            } else {
                out.push(StreamEvent::Text {
                    choice: 0,
                    text: event.data.clone(),
                });
            }
        }
        fn finish(&mut self, out: &mut Vec<StreamEvent>) {
            if !self.ended {
                out.push(StreamEvent::Error(ApiError::new(
                    502,
                    "api_error",
                    "cut short",
                )));
            }
        }
    }

    impl Translator for Echo {
        fn path(&self, _op: Operation, prefix: &str, model: &str, stream: bool) -> String {
            format!("{prefix}/echo/{model}?stream={stream}")
        }
        fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
            if req.n == Some(2) {
                return Err(ApiError::invalid_request("echo cannot do n=2").with_param("n"));
            }
            Ok(format!(
                "{}|{}|{:?}",
                req.model,
                req.messages[0].text(),
                req.max_tokens
            )
            .into_bytes())
        }
        fn decode_response(
            &self,
            body: &[u8],
            ctx: &ResponseContext,
        ) -> Result<ChatResponse, ApiError> {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::new(502, "api_error", "not utf-8"))?;
            Ok(ChatResponse {
                id: format!("echo-{}", ctx.request_id),
                model: ctx.model.clone(),
                created: ctx.created,
                choices: vec![Choice {
                    content: Some(text.into()),
                    finish_reason: Some(FinishReason::Stop),
                    ..Choice::default()
                }],
                usage: None,
            })
        }
        fn stream_decoder(&self, _ctx: &ResponseContext) -> Box<dyn StreamDecoder> {
            Box::new(EchoDecoder { ended: false })
        }
        fn decode_error(&self, status: u16, body: &[u8]) -> ApiError {
            ApiError::new(
                status,
                "echo_error",
                String::from_utf8_lossy(body).to_string(),
            )
        }
    }

    const CFG: &str = r#"{
        "providers": [
            {"name": "echo", "type": "openai", "base_url": "https://echo.test/v9", "api_key": "k"},
            {"name": "az", "type": "azure", "base_url": "https://res.openai.azure.com", "api_key": "azk", "api_version": "2025-01-01-preview"}
        ],
        "models": [
            {"name": "e", "targets": [{"provider": "echo", "model": "echo-1", "max_tokens": 64}]},
            {"name": "gpt-4o", "targets": [{"provider": "az", "model": "my-deploy"}]}
        ]
    }"#;

    fn flow() -> StreamFlow {
        let cfg = PluginConfig::from_json(CFG.as_bytes()).unwrap();
        let mut gw = compile(&cfg, &|_| None).unwrap();
        gw.providers[0].dialect = Dialect::Translated(Rc::new(Echo));
        StreamFlow::new(Rc::new(gw), 9)
    }

    #[test]
    fn non_streaming_is_translated_with_headers_held() {
        let mut f = flow();
        let mut h = request(
            "POST",
            "/v1/chat/completions",
            r#"{"model":"e","messages":[{"role":"user","content":"hey"}]}"#,
        );
        h.request_headers
            .insert("accept-encoding".into(), "gzip".into());
        assert_eq!(run(&mut f, &mut h), Verdict::Continue);
        assert_eq!(h.request_headers[":path"], "/v9/echo/echo-1?stream=false");
        assert!(!h.request_headers.contains_key("accept-encoding"));
        // The target's max_tokens default reached the translator.
        assert_eq!(h.request_body, b"echo-1|hey|Some(64)");

        h.response_headers.insert(":status".into(), "200".into());
        assert_eq!(f.on_response_headers(&mut h, false), Verdict::Pause);
        assert!(!h.response_headers.contains_key("content-length"));
        h.response_body = b"hel".to_vec();
        assert_eq!(f.on_response_body(&mut h, 3, false), Verdict::Pause);
        h.response_body = b"hello".to_vec();
        assert_eq!(f.on_response_body(&mut h, 5, true), Verdict::Continue);
        let v: Value = serde_json::from_slice(&h.response_body).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "hello");
        assert_eq!(v["created"], 1_700_000_000);
        assert_eq!(
            h.response_headers["content-length"],
            h.response_body.len().to_string()
        );
        assert_eq!(h.response_headers["content-type"], "application/json");
    }

    #[test]
    fn untranslatable_body_becomes_502() {
        let mut f = flow();
        let mut h = request(
            "POST",
            "/v1/chat/completions",
            r#"{"model":"e","messages":[{"role":"user","content":"x"}]}"#,
        );
        run(&mut f, &mut h);
        h.response_headers.insert(":status".into(), "200".into());
        f.on_response_headers(&mut h, false);
        h.response_body = vec![0xff, 0xfe];
        f.on_response_body(&mut h, 2, true);
        assert_eq!(h.response_headers[":status"], "502");
        let v: Value = serde_json::from_slice(&h.response_body).unwrap();
        assert_eq!(v["error"]["message"], "not utf-8");
    }

    #[test]
    fn streams_are_translated_chunk_by_chunk() {
        let mut f = flow();
        let mut h = request(
            "POST",
            "/v1/chat/completions",
            r#"{"model":"e","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
        );
        run(&mut f, &mut h);
        assert_eq!(h.request_headers[":path"], "/v9/echo/echo-1?stream=true");
        let out = respond(
            &mut f,
            &mut h,
            "200",
            &["data: Hel", "lo\n\ndata: wor", "ld\n\n", "data: end\n\n"],
        );
        assert_eq!(h.response_headers["content-type"], "text/event-stream");
        assert!(!h.response_headers.contains_key("content-length"));
        let text = String::from_utf8(out).unwrap();
        let contents: Vec<String> = text
            .split("\n\n")
            .filter_map(|f| f.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string()
            })
            .collect();
        assert_eq!(contents, ["", "Hello", "world", "-"]);
        assert!(text.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn a_stream_cut_short_ends_with_an_error_event() {
        let mut f = flow();
        let mut h = request(
            "POST",
            "/v1/chat/completions",
            r#"{"model":"e","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
        );
        run(&mut f, &mut h);
        let out =
            String::from_utf8(respond(&mut f, &mut h, "200", &["data: a\n\n", "data: b"])).unwrap();
        let last = out.trim_end().rsplit("\n\n").next().unwrap();
        let v: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["error"]["message"], "cut short");
        assert!(!out.contains("[DONE]"));
    }

    #[test]
    fn provider_errors_and_refusals() {
        let mut f = flow();
        let mut h = request(
            "POST",
            "/v1/chat/completions",
            r#"{"model":"e","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
        );
        run(&mut f, &mut h);
        let out = respond(&mut f, &mut h, "429", &["slow ", "down"]);
        assert_eq!(h.response_headers["content-type"], "application/json");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["type"], "echo_error");
        assert_eq!(v["error"]["message"], "slow down");

        let mut f = flow();
        let mut h = request(
            "POST",
            "/v1/chat/completions",
            r#"{"model":"e","n":2,"messages":[{"role":"user","content":"x"}]}"#,
        );
        run(&mut f, &mut h);
        let (status, v) = sent_error(&h);
        assert_eq!(status, 400);
        assert_eq!(v["error"]["param"], "n");
        assert!(!h.request_headers.contains_key(CLUSTER_HEADER));
    }

    #[test]
    fn azure_uses_deployment_path_and_api_key() {
        let mut f = flow();
        let mut h = request(
            "POST",
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#,
        );
        assert_eq!(run(&mut f, &mut h), Verdict::Continue);
        assert_eq!(
            h.request_headers[":path"],
            "/openai/deployments/my-deploy/chat/completions?api-version=2025-01-01-preview"
        );
        assert_eq!(h.request_headers[":authority"], "res.openai.azure.com");
        assert_eq!(h.request_headers["api-key"], "azk");
        assert!(!h.request_headers.contains_key("authorization"));
        // Azure bodies pass through untranslated, held until they are
        // known to be whole JSON.
        h.response_headers.insert(":status".into(), "200".into());
        assert_eq!(f.on_response_headers(&mut h, false), Verdict::Pause);
    }
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

#[test]
fn every_stream_records_metrics_and_log_fields() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#,
    );
    run(&mut f, &mut h);
    f.on_log(&mut h);
    let counter = h.metrics.iter().find_map(|m| match m {
        MetricOp::Counter { name, delta } if name.starts_with(crate::metrics::REQUESTS) => {
            Some((name.as_str().to_string(), *delta))
        }
        _ => None,
    });
    assert_eq!(
        counter,
        Some((
            "llm_gateway_requests_total;gen_ai_operation_name=chat;gen_ai_provider_name=none;gen_ai_request_model=unknown;http_response_status_class=4xx;error_type=invalid_request_error".into(),
            1
        ))
    );
    assert_eq!(h.stream_values["llmgw.model"], "unknown");
    assert_eq!(h.stream_values["llmgw.error"], "invalid_request_error");

    // A passthrough success: usage read from the body as it passed.
    let mut f = flow();
    let mut h = passthrough_success(
        &mut f,
        br#"{"usage":{"prompt_tokens":1000,"completion_tokens":10}}"#,
    );
    assert_eq!(h.stream_values["llmgw.tokens_in"], "1000");
    assert_eq!(h.stream_values["llmgw.provider"], "mock");
    // gpt-4o-mini default price: 1000 × 0.15 + 10 × 0.60 = 156 µUSD.
    assert_eq!(h.stream_values["llmgw.cost_usd"], "0.000156");
    f.on_log(&mut h);
    assert!(h.metrics.iter().any(|m| matches!(m, MetricOp::Counter { name, delta: 156 } if name.starts_with(crate::metrics::COST))));
}

#[test]
fn log_fields_can_be_switched_off() {
    let mut cfg = PluginConfig::from_json(CONFIG.as_bytes()).unwrap();
    cfg.log_fields = Some(false);
    let gw = Rc::new(compile(&cfg, &|_| None).unwrap());
    let mut f = StreamFlow::new(gw, 1);
    let mut h = passthrough_success(
        &mut f,
        br#"{"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
    );
    f.on_log(&mut h);
    assert!(h.stream_values.is_empty(), "{:?}", h.stream_values);
    // Metrics are unaffected.
    assert!(h.metrics.iter().any(|m| matches!(m, MetricOp::Counter { name, delta: 3 } if name.starts_with(crate::metrics::TOKENS))));
}

#[test]
fn passthrough_keeps_the_clients_bytes_but_the_model() {
    let mut f = flow();
    let body = "{ \"messages\" : [{\"role\":\"user\",\"content\":\"x\",\"model\":\"inner\"}],\n \"temperature\": 1.0,\"model\":\"gpt-4o-mini\",\"zz_vendor\":{\"b\":1,\"a\":2} }";
    let mut h = request("POST", "/v1/chat/completions", body);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    let sent = String::from_utf8(h.request_body.clone()).unwrap();
    let upstream = "gpt-4o-mini-2024-07-18";
    assert_eq!(
        sent,
        body.replace(
            "\"model\":\"gpt-4o-mini\"",
            &format!("\"model\":\"{upstream}\"")
        )
    );
    assert_eq!(h.request_headers["content-length"], sent.len().to_string());
}

#[test]
fn client_ip_trusts_only_configured_hops() {
    use crate::flow::client_ip;
    let mut h = RecordingHost::default();
    h.request_headers
        .insert("x-forwarded-for".into(), "203.0.113.9, 198.51.100.2".into());
    // No trusted hops: the header is ignored, the TCP peer counts.
    assert_eq!(client_ip(&h, 0).as_deref(), Some("192.0.2.7"));
    // One proxy appended the client it saw; two: the entry before.
    assert_eq!(client_ip(&h, 1).as_deref(), Some("198.51.100.2"));
    assert_eq!(client_ip(&h, 2).as_deref(), Some("203.0.113.9"));
    // Fewer entries than trusted hops: spoofable, so fall back to the peer.
    assert_eq!(client_ip(&h, 3).as_deref(), Some("192.0.2.7"));
}

#[test]
fn rate_limited_requests_get_429_with_headers_and_never_reach_upstream() {
    let cfg = r#"{
        "providers": [{"name": "mock", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}],
        "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
        "rate_limits": {"rules": [{"name": "per-route", "by": ["route"], "requests": {"limit": 1, "per": "hour"}}]}
    }"#;
    let gw =
        Rc::new(compile(&PluginConfig::from_json(cfg.as_bytes()).unwrap(), &|_| None).unwrap());
    let store = MemStore::default();
    assert_eq!(gw.precreate_state(&store, 1).unwrap(), 2);
    let body = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
    let mut first = request("POST", "/v1/chat/completions", body);
    first.store = store;
    let mut f = StreamFlow::new(Rc::clone(&gw), 1);
    assert_eq!(run(&mut f, &mut first), Verdict::Continue);
    let mut second = request("POST", "/v1/chat/completions", body);
    second.store = std::mem::take(&mut first.store);
    let mut f = StreamFlow::new(Rc::clone(&gw), 2);
    run(&mut f, &mut second);
    let (status, v) = sent_error(&second);
    assert_eq!(status, 429);
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(!second.request_headers.contains_key(CLUSTER_HEADER));
    assert!(second.metrics.iter().any(|m| matches!(m, MetricOp::Counter { name, .. } if name.as_str() == "llm_gateway_rate_limited_total;rate_limit=per-route")));
}

#[test]
fn shared_data_keys_are_pinned() {
    // Shared data outlives a build: the next version must find the same keys.
    let cfg = format!(
        r#"{{
        "providers": [{{"name": "mock", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k",
            "adaptive_concurrency": {{"max": 4}}}}],
        "models": [{{"name": "m", "targets": [{{"provider": "mock", "model": "up"}}]}}],
        "consumers": [{{"name": "team-a", "api_keys": ["sha256:{}"],
            "quota": {{"tokens_per_day": 10, "tokens_per_month": 20}}}}],
        "rate_limits": {{"rules": [
            {{"name": "rpm", "by": ["consumer", "route"], "requests": {{"limit": 1, "per": "hour"}}}},
            {{"name": "tpm", "by": ["model"], "tokens": {{"limit": 9, "per": "minute"}}}},
            {{"name": "ip", "by": ["client_ip"], "slots": 2, "requests": {{"limit": 1, "per": "second"}}}}
        ]}}
    }}"#,
        "0".repeat(64)
    );
    let gw = compile(&PluginConfig::from_json(cfg.as_bytes()).unwrap(), &|_| None).unwrap();
    let store = MemStore::default();
    assert_eq!(gw.precreate_state(&store, 1).unwrap(), 10);
    assert_eq!(
        store.keys(),
        [
            "llmgw/adaptive/mock/up",
            "llmgw/quota/team-a/day",
            "llmgw/quota/team-a/month",
            "llmgw/rl/ip#0",
            "llmgw/rl/ip#1",
            "llmgw/rl/rpm/-/chat",
            "llmgw/rl/rpm/-/embeddings",
            "llmgw/rl/rpm/team-a/chat",
            "llmgw/rl/rpm/team-a/embeddings",
            "llmgw/rl/tpm/m",
        ]
    );
}

/// Responses the filter must not pass on as they came.
mod hostile_responses {
    use super::*;
    use std::io::Write;

    fn stream_error_counted(h: &RecordingHost) -> bool {
        h.metrics.iter().any(|m| {
            matches!(m, MetricOp::Counter { name, .. }
                if name.starts_with(crate::metrics::STREAM_ERRORS))
        })
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn chat(stream: bool) -> (StreamFlow, RecordingHost) {
        let mut f = flow();
        let body = format!(
            r#"{{"model":"gpt-4o-mini","stream":{stream},"messages":[{{"role":"user","content":"x"}}]}}"#
        );
        let mut h = request("POST", "/v1/chat/completions", &body);
        h.request_headers
            .insert("accept-encoding".into(), "gzip, deflate".into());
        assert_eq!(run(&mut f, &mut h), Verdict::Continue);
        // Providers are asked for plain bodies.
        assert!(!h.request_headers.contains_key("accept-encoding"));
        (f, h)
    }

    const COMPLETION: &[u8] = br#"{"id":"c","object":"chat.completion","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

    #[test]
    fn gzip_bodies_are_decoded_at_any_split() {
        let packed = gzip(COMPLETION);
        for cut in 0..=packed.len() {
            let (mut f, mut h) = chat(false);
            let out = respond_with(
                &mut f,
                &mut h,
                "200",
                &[
                    ("content-encoding", "gzip"),
                    ("content-type", "application/json"),
                ],
                &[&packed[..cut], &packed[cut..]],
            );
            assert_eq!(out, COMPLETION, "cut {cut}");
            assert!(!h.response_headers.contains_key("content-encoding"));
            assert_eq!(
                h.response_headers["content-length"],
                COMPLETION.len().to_string()
            );
            f.on_log(&mut h);
            assert_eq!(h.stream_values["llmgw.tokens_in"], "3");
        }
    }

    #[test]
    fn gzip_errors_are_openai_errors_with_keys_redacted() {
        let (mut f, mut h) = chat(false);
        let body = gzip(br#"{"error":{"message":"bad key sk-upstream-secret","type":"x","param":"sk-upstream-secret","code":"invalid_api_key"}}"#);
        let out = respond_with(
            &mut f,
            &mut h,
            "401",
            &[("content-encoding", "gzip")],
            &[&body],
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["message"], "bad key [redacted]");
        assert_eq!(v["error"]["param"], "[redacted]");
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert!(!h.response_headers.contains_key("content-encoding"));
    }

    #[test]
    fn gzip_streams_are_decoded_and_a_corrupt_one_ends_in_an_error_event() {
        let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let packed = gzip(stream);
        let (mut f, mut h) = chat(true);
        let halves: Vec<&[u8]> = packed.chunks(packed.len() / 2 + 1).collect();
        let out = respond_with(
            &mut f,
            &mut h,
            "200",
            &[
                ("content-encoding", "gzip"),
                ("content-type", "text/event-stream"),
            ],
            &halves,
        );
        assert_eq!(out, stream);
        let (mut f, mut h) = chat(true);
        let out = respond_with(
            &mut f,
            &mut h,
            "200",
            &[
                ("content-encoding", "gzip"),
                ("content-type", "text/event-stream"),
            ],
            &[&packed[..packed.len() / 2], b"not gzip at all"],
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("could not be decoded"), "{text}");
        f.on_log(&mut h);
        assert!(stream_error_counted(&h));
    }

    #[test]
    fn undecodable_encodings_and_wrong_content_types_are_502s() {
        let (mut f, mut h) = chat(false);
        let out = respond_with(
            &mut f,
            &mut h,
            "200",
            &[("content-encoding", "zstd")],
            &[b"\x28\xb5"],
        );
        assert_eq!(h.response_headers[":status"], "502");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("'zstd'"));
        let (mut f, mut h) = chat(true);
        let out = respond_with(
            &mut f,
            &mut h,
            "200",
            &[("content-type", "text/html")],
            &[b"<html>", b"down</html>"],
        );
        assert_eq!(h.response_headers[":status"], "502");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["code"], "upstream_invalid_response");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("<html>down</html>"));
    }

    #[test]
    fn passthrough_bodies_that_are_not_json_are_502s() {
        for (body, needle) in [
            (&b"<html>portal</html>"[..], "not valid JSON"),
            (&b"{\"id\":\"x\",\"choices\":["[..], "ended before"),
        ] {
            let (mut f, mut h) = chat(false);
            let out = respond_with(&mut f, &mut h, "200", &[], &[body]);
            assert_eq!(h.response_headers[":status"], "502");
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert!(v["error"]["message"].as_str().unwrap().contains(needle));
            assert_eq!(h.response_headers["content-length"], out.len().to_string());
        }
    }

    #[test]
    fn a_passthrough_stream_cut_short_ends_with_an_error_frame() {
        let (mut f, mut h) = chat(true);
        let out = respond_with(
            &mut f,
            &mut h,
            "200",
            &[("content-type", "text/event-stream")],
            &[b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n"],
        );
        let text = String::from_utf8(out).unwrap();
        let last = text.trim_end().rsplit("\n\n").next().unwrap();
        let v: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "upstream_stream_error");
        f.on_log(&mut h);
        assert!(stream_error_counted(&h));
    }

    #[test]
    fn trailers_end_a_held_body() {
        let (mut f, mut h) = chat(false);
        h.response_headers.insert(":status".into(), "200".into());
        assert_eq!(f.on_response_headers(&mut h, false), Verdict::Pause);
        h.response_body = b"<html>".to_vec();
        assert_eq!(f.on_response_body(&mut h, 6, false), Verdict::Pause);
        assert_eq!(f.on_response_trailers(&mut h, 6), Verdict::Continue);
        assert_eq!(h.response_headers[":status"], "502");
        // A stream already went on: trailers only finish its accounting.
        let (mut f, mut h) = chat(true);
        h.response_headers.insert(":status".into(), "200".into());
        h.response_headers
            .insert("content-type".into(), "text/event-stream".into());
        assert_eq!(f.on_response_headers(&mut h, false), Verdict::Continue);
        h.response_body =
            br#"data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1}}

"#
            .to_vec();
        let n = h.response_body.len();
        f.on_response_body(&mut h, n, false);
        let sent = h.response_body.clone();
        f.on_response_trailers(&mut h, n);
        assert_eq!(h.response_body, sent, "nothing written at the trailers");
        assert_eq!(h.stream_values["llmgw.tokens_in"], "4");
    }

    #[test]
    fn keys_are_masked_in_passthrough_bytes() {
        let (mut f, mut h) = chat(true);
        let out = respond_with(
            &mut f,
            &mut h,
            "200",
            &[("content-type", "text/event-stream")],
            &[
                b"data: {\"error\":{\"message\":\"key sk-upst",
                b"ream-secret is bad\"}}\n\ndata: [DONE]\n\n",
            ],
        );
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("sk-upstream-secret"), "{text}");
        assert!(text.contains("key ****************** is bad"), "{text}");
    }
}

#[test]
fn client_control_headers_are_removed() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#,
    );
    for (k, v) in [
        ("x-envoy-original-path", "/forged"),
        ("x-envoy-retriable-status-codes", "200"),
        ("x-envoy-internal", "true"),
        ("x-llm-gateway-pool", "chat\ngpt-4o-mini"),
    ] {
        h.request_headers.insert(k.into(), v.into());
    }
    run(&mut f, &mut h);
    let left: Vec<&String> = h
        .request_headers
        .keys()
        .filter(|k| k.starts_with("x-envoy") || k.starts_with("x-llm-gateway-p"))
        .collect();
    // Envoy sets x-envoy-internal itself (and strips it from external
    // clients); it stays.
    assert_eq!(left, ["x-envoy-internal"]);
    // The access log gets the path the client asked for.
    respond(&mut f, &mut h, "200", &["{}"]);
    assert_eq!(h.stream_values["llmgw.path"], "/v1/chat/completions");
}
