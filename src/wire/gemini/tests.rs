use super::response::finish_reason;
use super::*;
use crate::wire::hub::{FinishReason, StreamEvent, StreamWriter, Usage};
use crate::wire::openai::{render, to_hub};
use crate::wire::sse::{SseEvent, SseFramer};
use serde_json::{json, Value};

const REQUESTS: &str = include_str!("../../../tests/fixtures/gemini/requests.json");
const RESPONSES: &str = include_str!("../../../tests/fixtures/gemini/responses.json");
const STREAMS: &str = include_str!("../../../tests/fixtures/gemini/streams.json");
const ERRORS: &str = include_str!("../../../tests/fixtures/gemini/errors.json");
const CREATED: u64 = 1_700_000_000;

fn ctx() -> ResponseContext {
    ResponseContext {
        model: "gemini-2.5-flash".into(),
        created: CREATED,
        request_id: "req1".into(),
        input_tokens_estimate: 0,
    }
}

fn cases(text: &str) -> Vec<Value> {
    match serde_json::from_str(text).unwrap() {
        Value::Array(a) => a,
        _ => panic!("fixture file is not an array"),
    }
}

fn name(case: &Value) -> &str {
    case["name"].as_str().unwrap()
}

fn err_json(e: &ApiError) -> Value {
    serde_json::from_slice(&e.to_json()).unwrap()
}

fn chat(body: &Value, model: &str) -> ChatRequest {
    to_hub::chat_request(body.as_object().unwrap(), model).unwrap()
}

// -- requests ---------------------------------------------------------

#[test]
fn request_fixtures() {
    let all = cases(REQUESTS);
    assert!(all.len() >= 40);
    for case in &all {
        let model = case["model"].as_str().unwrap_or("gemini-2.5-flash");
        let req = chat(&case["openai"], model);
        let result = Gemini.encode_request(&req);
        if let Some(expected) = case.get("error") {
            let e = result.expect_err(name(case));
            assert_eq!(e.status, 400, "{}", name(case));
            assert_eq!(err_json(&e), json!({ "error": expected }), "{}", name(case));
        } else {
            let bytes = result.unwrap_or_else(|e| panic!("{}: {e:?}", name(case)));
            let got: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(got, case["gemini"], "{}", name(case));
        }
    }
}

/// The body is written by serde from typed structs: fields in a fixed
/// order, a schema's root keys in the client's order without `$schema`
/// (removing it once swapped the last key to the front).
#[test]
fn encoded_body_bytes_in_field_order() {
    let req = chat(
        &json!({
            "model": "g",
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
            "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                "parameters": {"$schema": "x", "type": "object", "$defs": {}}}}],
            "tool_choice": "required",
            "temperature": 0.5, "max_tokens": 9, "seed": 7,
            "response_format": {"type": "json_schema", "json_schema": {"name": "n",
                "schema": {"$schema": "x", "type": "object", "required": [], "$defs": {}}}},
            "reasoning_effort": "low",
            "safety_settings": []
        }),
        "gemini-2.5-flash",
    );
    let body = Gemini.encode_request(&req).unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        concat!(
            r#"{"systemInstruction":{"parts":[{"text":"s"}]},"contents":[{"role":"user","parts":[{"text":"q"}]}],"#,
            r#""tools":[{"functionDeclarations":[{"name":"f","description":"d","#,
            r#""parametersJsonSchema":{"type":"object","$defs":{}}}]}],"#,
            r#""toolConfig":{"functionCallingConfig":{"mode":"ANY"}},"#,
            r#""generationConfig":{"temperature":0.5,"maxOutputTokens":9,"seed":7,"#,
            r#""responseMimeType":"application/json","responseJsonSchema":{"type":"object","required":[],"$defs":{}},"#,
            r#""thinkingConfig":{"thinkingBudget":1024,"includeThoughts":true}},"safetySettings":[]}"#
        )
    );
}

#[test]
fn request_extras_are_each_refused_by_name() {
    for key in [
        "metadata",
        "store",
        "service_tier",
        "prediction",
        "modalities",
        "audio",
        "web_search_options",
        "functions",
        "function_call",
        "response_mime_type",
    ] {
        let body = json!({"model": "g", "messages": [{"role": "user", "content": "x"}], key: true});
        let e = Gemini
            .encode_request(&chat(&body, "gemini-2.5-flash"))
            .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.kind, "invalid_request_error");
        assert_eq!(e.param.as_deref(), Some(key));
        assert!(
            e.message.contains(key) && e.message.contains("Gemini"),
            "{}",
            e.message
        );
    }
}

// -- responses --------------------------------------------------------

#[test]
fn response_fixtures() {
    for case in &cases(RESPONSES) {
        let body = match case.get("raw") {
            Some(raw) => raw.as_str().unwrap().as_bytes().to_vec(),
            None => serde_json::to_vec(&case["gemini"]).unwrap(),
        };
        let result = Gemini.decode_response(&body, &ctx());
        if let Some(expected) = case.get("error") {
            let e = result.expect_err(name(case));
            assert_eq!(
                u64::from(e.status),
                expected["status"].as_u64().unwrap(),
                "{}",
                name(case)
            );
            assert_eq!(err_json(&e), expected["openai"], "{}", name(case));
        } else {
            let resp = result.unwrap_or_else(|e| panic!("{}: {e:?}", name(case)));
            let got: Value = serde_json::from_slice(&render::chat_completion(&resp)).unwrap();
            assert_eq!(got, case["openai"], "{}", name(case));
        }
    }
}

#[test]
fn finish_reason_classes() {
    for r in [
        "STOP",
        "OTHER",
        "FINISH_REASON_UNSPECIFIED",
        "MALFORMED_FUNCTION_CALL",
        "NO_IMAGE",
        "NEW_REASON",
    ] {
        assert_eq!(finish_reason(r, false), FinishReason::Stop, "{r}");
        assert_eq!(finish_reason(r, true), FinishReason::ToolCalls, "{r}");
    }
    assert_eq!(finish_reason("MAX_TOKENS", true), FinishReason::Length);
    for r in [
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "LANGUAGE",
        "MODEL_ARMOR",
    ] {
        assert_eq!(finish_reason(r, true), FinishReason::ContentFilter, "{r}");
    }
}

// -- streams ----------------------------------------------------------

fn stream_body(case: &Value) -> Vec<u8> {
    let mut body = String::new();
    for ev in case["events"].as_array().unwrap() {
        let data = match ev {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        };
        body.push_str("data: ");
        body.push_str(&data);
        body.push_str("\r\n\r\n");
    }
    if let Some(tail) = case.get("tail") {
        body.push_str(tail.as_str().unwrap());
    }
    body.into_bytes()
}

/// Frames the gateway writes for `chunks` fed in order.
fn run_stream(chunks: &[&[u8]], include_usage: bool) -> Vec<u8> {
    let ctx = ctx();
    let mut framer = SseFramer::new(1 << 20);
    let mut decoder = Gemini.stream_decoder(&ctx);
    let mut writer = render::ChunkWriter::new(&ctx, include_usage);
    let mut events = Vec::new();
    let mut hub = Vec::new();
    let mut out = Vec::new();
    let mut pump =
        |events: &mut Vec<SseEvent>, decoder: &mut Box<dyn StreamDecoder>, out: &mut Vec<u8>| {
            for ev in events.drain(..) {
                decoder.on_event(&ev, &mut hub);
                for h in hub.drain(..) {
                    writer.write(&h, out);
                }
            }
        };
    for chunk in chunks {
        framer.feed(chunk, &mut events).unwrap();
        pump(&mut events, &mut decoder, &mut out);
    }
    framer.finish(&mut events).unwrap();
    pump(&mut events, &mut decoder, &mut out);
    let mut tail = Vec::new();
    decoder.finish(&mut tail);
    for h in &tail {
        writer.write(h, &mut out);
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

/// Expands a fixture's shorthand frame into the full OpenAI chunk.
fn expand(case: &Value, frame: &Value) -> Value {
    if frame.is_string() || frame.get("error").is_some() {
        return frame.clone();
    }
    let include_usage = case["include_usage"].as_bool().unwrap();
    let mut v = json!({
        "id": case["id"],
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": case["model"],
    });
    if let Some(usage) = frame.get("usage") {
        v["choices"] = json!([]);
        v["usage"] = usage.clone();
    } else {
        v["choices"] = json!([{
            "index": frame["index"],
            "delta": frame["delta"],
            "logprobs": null,
            "finish_reason": frame["finish_reason"],
        }]);
        if include_usage {
            v["usage"] = Value::Null;
        }
    }
    v
}

#[test]
fn stream_fixtures_whole_body() {
    let all = cases(STREAMS);
    assert!(all.len() >= 10);
    for case in &all {
        let body = stream_body(case);
        let out = run_stream(&[&body], case["include_usage"].as_bool().unwrap());
        let expected: Vec<Value> = case["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| expand(case, f))
            .collect();
        assert_eq!(frames(&out), expected, "{}", name(case));
    }
}

#[test]
fn stream_fixtures_split_at_every_offset() {
    for case in &cases(STREAMS) {
        let body = stream_body(case);
        let usage = case["include_usage"].as_bool().unwrap();
        let whole = run_stream(&[&body], usage);
        for i in 0..=body.len() {
            let (a, b) = body.split_at(i);
            assert_eq!(
                run_stream(&[a, b], usage),
                whole,
                "{} split at {i}",
                name(case)
            );
        }
    }
}

#[test]
fn stream_fixtures_one_byte_at_a_time() {
    for case in &cases(STREAMS) {
        let body = stream_body(case);
        let usage = case["include_usage"].as_bool().unwrap();
        let whole = run_stream(&[&body], usage);
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(run_stream(&bytes, usage), whole, "{}", name(case));
    }
}

#[test]
fn stream_decoder_events_and_bounded_state() {
    let mut d = GeminiStream::new(&ctx());
    let mut out = Vec::new();
    let ev = |data: &str| SseEvent {
        event: None,
        data: data.into(),
        id: None,
    };
    d.on_event(&ev(""), &mut out);
    assert!(out.is_empty(), "blank data is ignored");
    d.on_event(
        &ev(r#"{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}],"responseId":"x","usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1}}"#),
        &mut out,
    );
    d.on_event(
        &ev(r#"{"candidates":[{"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2,"totalTokenCount":3}}"#),
        &mut out,
    );
    d.finish(&mut out);
    d.finish(&mut out);
    assert_eq!(
        out,
        vec![
            StreamEvent::Start {
                id: "x".into(),
                model: "gemini-2.5-flash".into()
            },
            StreamEvent::Text {
                choice: 0,
                text: "a".into()
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop
            },
            StreamEvent::Usage(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
                ..Usage::default()
            }),
        ],
        "one Start, one Finish per candidate, the latest usage once"
    );

    let mut d = GeminiStream::new(&ctx());
    let mut out = Vec::new();
    let many: Vec<Value> = (0..=MAX_CANDIDATES)
        .map(|i| json!({"index": i, "content": {"parts": [{"text": "x"}]}}))
        .collect();
    d.on_event(&ev(&json!({ "candidates": many }).to_string()), &mut out);
    assert!(matches!(out.last(), Some(StreamEvent::Error(e)) if e.status == 502));
    assert!(d.candidates.len() <= MAX_CANDIDATES);
}

// -- errors -----------------------------------------------------------

#[test]
fn error_fixtures() {
    for case in &cases(ERRORS) {
        let status = u16::try_from(case["status"].as_u64().unwrap()).unwrap();
        let body = match &case["body"] {
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).unwrap(),
        };
        let e = Gemini.decode_error(status, &body);
        assert_eq!(e.status, status, "{}", name(case));
        assert_eq!(err_json(&e), case["openai"], "{}", name(case));
    }
}

#[test]
fn long_error_messages_are_capped() {
    let body =
        json!({"error": {"code": 400, "message": "x".repeat(5000), "status": "INVALID_ARGUMENT"}});
    let e = Gemini.decode_error(400, body.to_string().as_bytes());
    assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS + 1);
}

// -- paths, ids, embeddings -------------------------------------------

#[test]
fn paths() {
    let base = "https://generativelanguage.googleapis.com/v1beta";
    assert_eq!(
        Gemini.path(Operation::ChatCompletions, base, "gemini-2.5-flash", false),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        Gemini.path(Operation::ChatCompletions, base, "gemini-2.5-flash", true),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        Gemini.path(
            Operation::Embeddings,
            "/v1beta/",
            "gemini-embedding-001",
            false
        ),
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        Gemini.path(
            Operation::ChatCompletions,
            "/v1beta",
            "models/gemini-2.0-flash",
            false
        ),
        "/v1beta/models/gemini-2.0-flash:generateContent"
    );
    assert_eq!(
        Gemini.path(
            Operation::ChatCompletions,
            "/v1beta",
            "tunedModels/my-tune",
            false
        ),
        "/v1beta/tunedModels/my-tune:generateContent"
    );
}

#[test]
fn signatures_round_trip_through_tool_call_ids() {
    for sig in ["c2lnLzE+Pw==", "AAAA", "a+b/c+d/ZQ==", "YWJj"] {
        let id = tool_call_id("0123456789abcdef", 3, Some(sig));
        assert!(id.starts_with("call_0123456789abcdef_3__thought__"));
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        assert_eq!(signature_from_id(&id).as_deref(), Some(sig));
    }
    assert_eq!(tool_call_id("r", 0, None), "call_r_0");
    assert_eq!(tool_call_id("r", 0, Some("")), "call_r_0");
    assert_eq!(signature_from_id("call_r_0"), None);
    assert_eq!(signature_from_id("call_r_0__thought__"), None);
}

#[test]
fn model_generations() {
    assert_eq!(gemini_major("gemini-2.5-flash"), Some(2));
    assert_eq!(gemini_major("models/gemini-3-pro-preview"), Some(3));
    assert_eq!(gemini_major("gemini-10.0-ultra"), Some(10));
    assert_eq!(gemini_major("gemini-flash-latest"), None);
    assert_eq!(gemini_major("gemma-3-27b-it"), None);
}

fn embeddings_req(v: Value) -> EmbeddingsRequest {
    to_hub::embeddings_request(v.as_object().unwrap(), "gemini-embedding-001").unwrap()
}

#[test]
fn embeddings_request() {
    let req = embeddings_req(json!({
        "model": "e", "input": ["first", "second"], "dimensions": 768,
        "encoding_format": "float", "user": "u1", "task_type": "RETRIEVAL_DOCUMENT", "title": "Doc"
    }));
    let got: Value = serde_json::from_slice(&Gemini.encode_embeddings(&req).unwrap()).unwrap();
    assert_eq!(
        got,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first"}]},
             "outputDimensionality": 768, "taskType": "RETRIEVAL_DOCUMENT", "title": "Doc"},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]},
             "outputDimensionality": 768, "taskType": "RETRIEVAL_DOCUMENT", "title": "Doc"}
        ]})
    );
    let req = embeddings_req(json!({"model": "e", "input": "one"}));
    let got: Value = serde_json::from_slice(&Gemini.encode_embeddings(&req).unwrap()).unwrap();
    assert_eq!(
        got,
        json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "one"}]}}]})
    );

    let e = Gemini
        .encode_embeddings(&embeddings_req(json!({"model": "e", "input": []})))
        .unwrap_err();
    assert_eq!((e.status, e.param.as_deref()), (400, Some("input")));
    let e = Gemini
        .encode_embeddings(&embeddings_req(
            json!({"model": "e", "input": "x", "foo": 1}),
        ))
        .unwrap_err();
    assert_eq!(
        err_json(&e),
        json!({"error": {"message": "Unsupported parameter 'foo': it cannot be translated for this model's provider (Gemini) and would otherwise be dropped. Remove 'foo' for this model.",
            "type": "invalid_request_error", "param": "foo", "code": "unsupported_parameter"}})
    );
    let e = Gemini
        .encode_embeddings(&embeddings_req(
            json!({"model": "e", "input": "x", "taskType": 3}),
        ))
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("taskType"));
}

#[test]
fn embeddings_response() {
    let body = json!({"embeddings": [{"values": [0.1, -0.2, 3]}, {"values": [1e-3, 0]}]});
    let r = Gemini
        .decode_embeddings(body.to_string().as_bytes(), &ctx())
        .unwrap();
    assert_eq!(r.vectors, vec![vec![0.1, -0.2, 3.0], vec![0.001, 0.0]]);
    assert_eq!(r.prompt_tokens, 0, "Gemini reports no token counts");
    assert_eq!(r.model, "gemini-2.5-flash");
    let v: Value = serde_json::from_slice(&render::embeddings(&r, false)).unwrap();
    assert_eq!(
        v,
        json!({"object": "list", "model": "gemini-2.5-flash",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 3.0]},
                     {"object": "embedding", "index": 1, "embedding": [0.001, 0.0]}],
            "usage": {"prompt_tokens": 0, "total_tokens": 0}})
    );

    let body = json!({"embeddings": [{"values": [1]}], "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}});
    let r = Gemini
        .decode_embeddings(body.to_string().as_bytes(), &ctx())
        .unwrap();
    assert_eq!(r.prompt_tokens, 7);
    let body = json!({"embeddings": [
        {"values": [1], "statistics": {"tokenCount": 3.0, "truncated": false}},
        {"values": [2], "statistics": {"tokenCount": 4}}
    ]});
    let r = Gemini
        .decode_embeddings(body.to_string().as_bytes(), &ctx())
        .unwrap();
    assert_eq!(r.prompt_tokens, 7);

    for (body, message) in [
        ("nope", "Gemini returned an embeddings response that is not valid JSON: expected ident at line 1 column 2."),
        ("{}", "Gemini returned an embeddings response without an 'embeddings' array."),
        (r#"{"embeddings":[{}]}"#, "Gemini returned embeddings[0] without 'values'."),
        (r#"{"embeddings":[{"values":["a"]}]}"#, "Gemini returned embeddings[0].values with a non-number."),
    ] {
        let e = Gemini.decode_embeddings(body.as_bytes(), &ctx()).unwrap_err();
        assert_eq!((e.status, e.kind.as_ref()), (502, "api_error"));
        assert_eq!(e.message, message);
    }
}
