//! Providers reached through a translator: bodies, streams and errors.

use super::respond;
use super::*;
use crate::config::Egress;
use crate::error::ApiError;
use crate::providers::Operation;
use crate::wire::hub::{
    ChatRequest, ChatResponse, Choice, FinishReason, ResponseContext, StreamDecoder, StreamEvent,
    Translator,
};
use crate::wire::sse::SseEvent;

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
        let text =
            std::str::from_utf8(body).map_err(|_| ApiError::new(502, "api_error", "not utf-8"))?;
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
    // Any wire but the client's: the request is translated.
    gw.providers[0].wire = crate::wire::Wire::Gemini;
    gw.providers[0].egress = Egress(Rc::new(Echo));
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
fn translating_reads_no_clock_after_the_request_arrived() {
    // `created` is the request's arrival; a clock read is a hostcall.
    let mut f = flow();
    let body = r#"{"model":"e","messages":[{"role":"user","content":"hey"}]}"#;
    let mut h = request("POST", "/v1/chat/completions", body);
    h.clock_step_ns = 5_000_000_000;
    assert_eq!(f.on_request_headers(&mut h, false), Verdict::Pause);
    let reads = h.clock_reads.get();
    assert_eq!(
        f.on_request_body(&mut h, body.len(), true),
        Verdict::Continue
    );
    assert_eq!(h.clock_reads.get(), reads);
    h.response_headers.insert(":status".into(), "200".into());
    f.on_response_headers(&mut h, false);
    h.response_body = b"hi".to_vec();
    assert_eq!(f.on_response_body(&mut h, 2, true), Verdict::Continue);
    let v: Value = serde_json::from_slice(&h.response_body).unwrap();
    assert_eq!(v["created"], 1_700_000_005);
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
