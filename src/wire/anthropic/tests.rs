use super::*;
use crate::wire::hub::{FinishReason, StreamEvent, StreamWriter, Usage};
use crate::wire::openai::render::{chat_completion, ChunkWriter};
use crate::wire::openai::to_hub;
use crate::wire::sse::{SseEvent, SseFramer};
use serde_json::{json, Value};

const UPSTREAM_MODEL: &str = "claude-sonnet-4-5";
const REQUESTS: &str = include_str!("../../../tests/fixtures/anthropic/requests.json");
const RESPONSES: &str = include_str!("../../../tests/fixtures/anthropic/responses.json");
const ERRORS: &str = include_str!("../../../tests/fixtures/anthropic/errors.json");
const STREAMS: &str = include_str!("../../../tests/fixtures/anthropic/streams.json");

fn sse_fixture(name: &str) -> &'static str {
    match name {
        "text.sse" => include_str!("../../../tests/fixtures/anthropic/text.sse"),
        "tool_use.sse" => include_str!("../../../tests/fixtures/anthropic/tool_use.sse"),
        "thinking.sse" => include_str!("../../../tests/fixtures/anthropic/thinking.sse"),
        "error_midstream.sse" => {
            include_str!("../../../tests/fixtures/anthropic/error_midstream.sse")
        }
        "cut.sse" => include_str!("../../../tests/fixtures/anthropic/cut.sse"),
        "cut_mid_event.sse" => include_str!("../../../tests/fixtures/anthropic/cut_mid_event.sse"),
        "misc.sse" => include_str!("../../../tests/fixtures/anthropic/misc.sse"),
        "malformed.sse" => include_str!("../../../tests/fixtures/anthropic/malformed.sse"),
        "orphan_json_delta.sse" => {
            include_str!("../../../tests/fixtures/anthropic/orphan_json_delta.sse")
        }
        other => panic!("no stream fixture {other}"),
    }
}

fn ctx() -> ResponseContext {
    ResponseContext {
        model: UPSTREAM_MODEL.into(),
        created: 1_700_000_000,
        request_id: "req-1".into(),
        input_tokens_estimate: 0,
    }
}

fn cases(text: &str) -> Vec<Value> {
    match serde_json::from_str(text).unwrap() {
        Value::Array(a) => a,
        _ => panic!("fixture file is not an array"),
    }
}

fn translator(options: Option<&Value>) -> Anthropic {
    let mut o = AnthropicOptions::default();
    if let Some(opts) = options {
        if let Some(m) = opts.get("thinking_mode").and_then(Value::as_str) {
            o.thinking_mode = match m {
                "adaptive" => ThinkingMode::Adaptive,
                _ => ThinkingMode::Budget,
            };
        }
        if let Some(n) = opts.get("default_max_tokens").and_then(Value::as_u64) {
            o.default_max_tokens = n as u32;
        }
    }
    Anthropic::new(o)
}

fn encode_openai(t: &Anthropic, openai: &Value) -> Result<Value, ApiError> {
    let req = to_hub::chat_request(openai.as_object().unwrap(), UPSTREAM_MODEL)?;
    let bytes = t.encode_request(&req)?;
    Ok(serde_json::from_slice(&bytes).unwrap())
}

fn error_json(e: &ApiError) -> Value {
    serde_json::from_slice(&e.to_json()).unwrap()
}

#[test]
fn request_fixtures() {
    let all = cases(REQUESTS);
    assert!(all.len() >= 40);
    for case in &all {
        let name = case["name"].as_str().unwrap();
        let t = translator(case.get("options"));
        let got = encode_openai(&t, &case["openai"]);
        match (case.get("anthropic"), case.get("error")) {
            (Some(expected), None) => {
                let got = got.unwrap_or_else(|e| panic!("{name}: unexpected error {e:?}"));
                assert_eq!(&got, expected, "{name}");
            }
            (None, Some(expected)) => {
                let err = got.expect_err(name);
                assert_eq!(err.status, 400, "{name}");
                assert_eq!(error_json(&err), json!({ "error": expected }), "{name}");
            }
            _ => panic!("{name}: a case needs 'anthropic' or 'error'"),
        }
    }
}

#[test]
fn response_fixtures() {
    let t = Anthropic::default();
    for case in &cases(RESPONSES) {
        let name = case["name"].as_str().unwrap();
        let body = match (case.get("anthropic"), case.get("raw")) {
            (Some(v), None) => serde_json::to_vec(v).unwrap(),
            (None, Some(Value::String(raw))) => raw.as_bytes().to_vec(),
            _ => panic!("{name}: a case needs 'anthropic' or 'raw'"),
        };
        let got = t.decode_response(&body, &ctx());
        match (case.get("openai"), case.get("error")) {
            (Some(expected), None) => {
                let r = got.unwrap_or_else(|e| panic!("{name}: unexpected error {e:?}"));
                let v: Value = serde_json::from_slice(&chat_completion(&r)).unwrap();
                assert_eq!(&v, expected, "{name}");
            }
            (None, Some(expected)) => {
                let err = got.expect_err(name);
                assert_eq!(json!(err.status), expected["status"], "{name}");
                assert_eq!(error_json(&err)["error"], expected["error"], "{name}");
            }
            _ => panic!("{name}: a case needs 'openai' or 'error'"),
        }
    }
}

#[test]
fn response_usage_keeps_cache_creation_tokens() {
    let body = br#"{"id":"m","type":"message","model":"c","content":[],"stop_reason":"end_turn",
            "usage":{"input_tokens":1,"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"output_tokens":4}}"#;
    let r = Anthropic::default().decode_response(body, &ctx()).unwrap();
    assert_eq!(
        r.usage,
        Some(Usage {
            prompt_tokens: 6,
            completion_tokens: 4,
            total_tokens: 10,
            cached_tokens: Some(3),
            cache_creation_tokens: Some(2),
            reasoning_tokens: None,
        })
    );
    assert_eq!(r.created, 1_700_000_000);
}

#[test]
fn error_fixtures() {
    let t = Anthropic::default();
    for case in &cases(ERRORS) {
        let name = case["name"].as_str().unwrap();
        let status = case["status"].as_u64().unwrap() as u16;
        let err = t.decode_error(status, case["body"].as_str().unwrap().as_bytes());
        assert_eq!(err.status, status, "{name}");
        assert_eq!(error_json(&err), json!({"error": case["openai"]}), "{name}");
    }
}

/// Feeds `chunks` through framer → decoder → OpenAI chunk writer.
fn run_stream<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, include_usage: bool) -> Vec<u8> {
    let t = Anthropic::default();
    let mut framer = SseFramer::new(1 << 16);
    let mut decoder = t.stream_decoder(&ctx());
    let mut writer = ChunkWriter::new(&ctx(), include_usage);
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut hub = Vec::new();
    let mut deliver = |events: &mut Vec<SseEvent>,
                       decoder: &mut Box<dyn StreamDecoder>,
                       writer: &mut ChunkWriter,
                       out: &mut Vec<u8>| {
        for ev in events.drain(..) {
            decoder.on_event(&ev, &mut hub);
            for h in hub.drain(..) {
                writer.write(&h, out);
            }
        }
    };
    for chunk in chunks {
        framer.feed(chunk, &mut events).unwrap();
        deliver(&mut events, &mut decoder, &mut writer, &mut out);
    }
    framer.finish(&mut events).unwrap();
    deliver(&mut events, &mut decoder, &mut writer, &mut out);
    decoder.finish(&mut hub);
    for h in hub.drain(..) {
        writer.write(&h, &mut out);
    }
    writer.finish(&mut out);
    out
}

fn frames(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out)
        .unwrap()
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let data = f.strip_prefix("data: ").unwrap();
            if data == "[DONE]" {
                Value::String("[DONE]".into())
            } else {
                serde_json::from_str(data).unwrap()
            }
        })
        .collect()
}

#[test]
fn stream_fixtures() {
    let all = cases(STREAMS);
    assert!(all.len() >= 10);
    for case in &all {
        let name = case["name"].as_str().unwrap();
        let body = sse_fixture(case["sse"].as_str().unwrap()).as_bytes();
        let include_usage = case["include_usage"].as_bool().unwrap();
        let whole = run_stream([body], include_usage);
        assert_eq!(
            Value::Array(frames(&whole)),
            case["openai"],
            "{name}: {}",
            String::from_utf8_lossy(&whole)
        );
        // Split at every byte offset into two chunks.
        for k in 0..=body.len() {
            let (a, b) = body.split_at(k);
            assert_eq!(
                run_stream([a, b], include_usage),
                whole,
                "{name}: split at byte {k}"
            );
        }
        // One byte at a time.
        assert_eq!(
            run_stream(body.chunks(1), include_usage),
            whole,
            "{name}: byte by byte"
        );
    }
}

fn decode_events(events: &[(&str, Value)]) -> Vec<StreamEvent> {
    let mut d = AnthropicStreamDecoder::new();
    let mut out = Vec::new();
    for (name, data) in events {
        d.on_event(
            &SseEvent {
                event: Some((*name).into()),
                data: data.to_string(),
                id: None,
            },
            &mut out,
        );
    }
    d.finish(&mut out);
    out
}

#[test]
fn stream_tool_ordinals_and_usage_events() {
    let out = decode_events(&[
        (
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","model":"c",
                "usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":1,"output_tokens":1}}}),
        ),
        (
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}),
        ),
        (
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        (
            "content_block_start",
            json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}),
        ),
        (
            "content_block_delta",
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}),
        ),
        (
            "content_block_stop",
            json!({"type":"content_block_stop","index":1}),
        ),
        (
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":7}}),
        ),
        ("message_stop", json!({"type":"message_stop"})),
    ]);
    assert_eq!(
        out,
        vec![
            StreamEvent::Start {
                id: "msg_1".into(),
                model: "c".into()
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "t1".into(),
                name: "f".into()
            },
            StreamEvent::ToolCallArgs {
                choice: 0,
                index: 0,
                fragment: "{\"a\":1}".into()
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 16,
                completion_tokens: 7,
                total_tokens: 23,
                cached_tokens: Some(5),
                cache_creation_tokens: Some(1),
                reasoning_tokens: None,
            }),
        ]
    );
}

#[test]
fn stream_error_event_keeps_provider_type_and_status() {
    let out = decode_events(&[(
        "error",
        json!({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}),
    )]);
    let [StreamEvent::Error(e)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        (
            e.status,
            e.kind.as_ref(),
            e.message.as_str(),
            e.code.clone()
        ),
        (429, "rate_limit_error", "slow down", None)
    );
    let out = decode_events(&[(
        "error",
        json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
    )]);
    let [StreamEvent::Error(e)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(e.status, 529);
    assert_eq!(e.kind, "api_error");
    assert_eq!(e.code.as_deref(), Some("overloaded_error"));
}

#[test]
fn stream_finish_reasons_and_synthesized_finish() {
    for (reason, expected) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::ContentFilter),
        ("pause_turn", FinishReason::Stop),
        ("model_context_window_exceeded", FinishReason::Length),
    ] {
        let out = decode_events(&[
            (
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":reason}}),
            ),
            (
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":"end_turn"}}),
            ),
            ("message_stop", json!({"type":"message_stop"})),
        ]);
        assert_eq!(
            out,
            vec![StreamEvent::Finish {
                choice: 0,
                reason: expected
            }],
            "{reason}"
        );
    }
    // No message_delta stop_reason: message_stop still finishes the choice.
    let out = decode_events(&[("message_stop", json!({"type":"message_stop"}))]);
    assert_eq!(
        out,
        vec![StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Stop
        }]
    );
}

#[test]
fn stream_decoder_holds_only_open_tool_blocks() {
    let mut d = AnthropicStreamDecoder::new();
    let mut out = Vec::new();
    for i in 0..1000u64 {
        for data in [
            json!({"type":"content_block_start","index":i,"content_block":{"type":"tool_use","id":format!("t{i}"),"name":"f","input":{}}}),
            json!({"type":"content_block_delta","index":i,"delta":{"type":"input_json_delta","partial_json":"{}"}}),
            json!({"type":"content_block_stop","index":i}),
        ] {
            d.on_event(
                &SseEvent {
                    event: None,
                    data: data.to_string(),
                    id: None,
                },
                &mut out,
            );
        }
        assert!(d.open_tools.is_empty());
    }
    assert_eq!(out.len(), 2000);
    assert_eq!(
        out.last(),
        Some(&StreamEvent::ToolCallArgs {
            choice: 0,
            index: 999,
            fragment: "{}".into()
        })
    );
}

#[test]
fn paths() {
    let t = Anthropic::default();
    assert_eq!(
        t.path(Operation::ChatCompletions, "/v1", "claude", false),
        "/v1/messages"
    );
    assert_eq!(
        t.path(Operation::ChatCompletions, "", "claude", true),
        "/messages"
    );
    assert!(t.encode_embeddings(&Default::default()).is_err());
}

#[test]
fn options_defaults_and_budget_floor() {
    let o = AnthropicOptions::default();
    assert_eq!(o.default_max_tokens, 4096);
    assert_eq!(
        (
            o.thinking_budget_low,
            o.thinking_budget_medium,
            o.thinking_budget_high
        ),
        (1024, 4096, 16384)
    );
    // A configured budget under Anthropic's minimum is raised to it.
    let t = Anthropic::new(AnthropicOptions {
        thinking_budget_low: 10,
        ..AnthropicOptions::default()
    });
    let v = encode_openai(
        &t,
        &json!({"model":"m","reasoning_effort":"low","messages":[{"role":"user","content":"x"}]}),
    )
    .unwrap();
    assert_eq!(v["thinking"]["budget_tokens"], 1024);
}

/// The body is written by serde from typed structs, in a fixed field order
/// with absent fields left out (no `"stream":false`, no empty lists).
#[test]
fn encoded_body_bytes_in_field_order() {
    let req = to_hub::chat_request(
        json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "s1"},
                {"role": "system", "content": [{"type": "text", "text": "s2"}]},
                {"role": "assistant", "content": "hi", "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "f", "arguments": "{\"b\":1,\"a\":[2]}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
                {"role": "user", "content": [{"type": "text", "text": "q"},
                    {"type": "image_url", "image_url": {"url": "https://x/i.png"}}]}
            ],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": false,
            "temperature": 0.5, "top_p": 0.9, "top_k": 3, "stop": ["x"],
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
            "user": "u1", "stream": true
        })
        .as_object()
        .unwrap(),
        UPSTREAM_MODEL,
    )
    .unwrap();
    let body = Anthropic::default().encode_request(&req).unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        concat!(
            r#"{"model":"claude-sonnet-4-5","max_tokens":4096,"temperature":0.5,"top_p":0.9,"top_k":3,"#,
            r#""stop_sequences":["x"],"tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"#,
            r#""tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true},"#,
            r#""output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}},"#,
            r#""metadata":{"user_id":"u1"},"stream":true,"system":[{"type":"text","text":"s1"},{"type":"text","text":"s2"}],"#,
            r#""messages":[{"role":"user","content":"."},{"role":"assistant","content":[{"type":"text","text":"hi"},"#,
            r#"{"type":"tool_use","id":"c1","name":"f","input":{"b":1,"a":[2]}}]},{"role":"user","content":["#,
            r#"{"type":"tool_result","tool_use_id":"c1","content":"42"},{"type":"text","text":"q"},"#,
            r#"{"type":"image","source":{"type":"url","url":"https://x/i.png"}}]}]}"#
        )
    );
}
