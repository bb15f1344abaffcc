use super::*;
use crate::wire::hub::{
    DocumentSource, FinishReason, ImageSource, Message, Part, Role, StreamEvent, StreamWriter,
    ToolCall, Usage,
};
use crate::wire::openai::{render, to_hub};
use crate::wire::sse::{SseEvent, SseFramer};
use serde::Deserialize;
use serde_json::{json, Map, Value};

const UPSTREAM_MODEL: &str = "up-model";
const CREATED: u64 = 1_700_000_000;
const REQUESTS: &str = include_str!("../../../../tests/fixtures/openai_chat/requests.json");
const RESPONSES: &str = include_str!("../../../../tests/fixtures/openai_chat/responses.json");
const STREAMS: &str = include_str!("../../../../tests/fixtures/openai_chat/streams.json");
const ERRORS: &str = include_str!("../../../../tests/fixtures/openai_chat/errors.json");

fn ctx() -> ResponseContext {
    ResponseContext {
        model: UPSTREAM_MODEL.into(),
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

/// Options from a fixture's `options` (snake_case variant names).
fn translator(options: Option<&Value>) -> OpenAiChat {
    let mut o = OpenAiChatOptions::default();
    let Some(opts) = options else {
        return OpenAiChat::new(o);
    };
    for (key, value) in opts.as_object().unwrap() {
        let value = value.as_str().unwrap();
        match (key.as_str(), value) {
            ("max_tokens_field", "max_completion_tokens") => {
                o.max_tokens_field = MaxTokensField::MaxCompletionTokens
            }
            ("reasoning", "none") => o.reasoning = ReasoningStyle::None,
            ("reasoning", "thinking") => o.reasoning = ReasoningStyle::Thinking,
            ("reasoning", "enable_thinking") => o.reasoning = ReasoningStyle::EnableThinking,
            ("reasoning_history", "reasoning_content") => {
                o.reasoning_history = ReasoningHistory::ReasoningContent
            }
            ("stream_usage", "unrequested") => o.stream_usage = StreamUsage::Unrequested,
            other => panic!("unknown option {other:?}"),
        }
    }
    OpenAiChat::new(o)
}

// -- hand-written hub requests ------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HubRequest {
    messages: Vec<HubMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HubMessage {
    role: String,
    #[serde(default)]
    content: Vec<HubPart>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tool_calls: Vec<HubToolCall>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    is_error: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HubToolCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum HubPart {
    Text(String),
    ImageBase64 {
        media_type: String,
        data: String,
    },
    DocumentBase64 {
        media_type: String,
        data: String,
        #[serde(default)]
        name: Option<String>,
    },
    DocumentUrl {
        url: String,
    },
    DocumentText {
        text: String,
        #[serde(default)]
        name: Option<String>,
    },
}

fn hub_request(v: &Value) -> ChatRequest {
    let h: HubRequest = serde_json::from_value(v.clone()).unwrap();
    let part = |p: HubPart| match p {
        HubPart::Text(t) => Part::Text(t),
        HubPart::ImageBase64 { media_type, data } => Part::Image {
            source: ImageSource::Base64 { media_type, data },
            detail: None,
        },
        HubPart::DocumentBase64 {
            media_type,
            data,
            name,
        } => Part::Document {
            source: DocumentSource::Base64 { media_type, data },
            name,
        },
        HubPart::DocumentUrl { url } => Part::Document {
            source: DocumentSource::Url(url),
            name: None,
        },
        HubPart::DocumentText { text, name } => Part::Document {
            source: DocumentSource::Text(text),
            name,
        },
    };
    ChatRequest {
        model: UPSTREAM_MODEL.into(),
        stream: h.stream,
        extra: h.extra,
        messages: h
            .messages
            .into_iter()
            .map(|m| Message {
                role: match m.role.as_str() {
                    "system" => Role::System,
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    "tool" => Role::Tool,
                    other => panic!("role {other}"),
                },
                content: m.content.into_iter().map(part).collect(),
                name: m.name,
                tool_calls: m
                    .tool_calls
                    .into_iter()
                    .map(|c| ToolCall {
                        id: c.id,
                        name: c.name,
                        arguments: c.arguments,
                    })
                    .collect(),
                tool_call_id: m.tool_call_id,
                reasoning: m.reasoning,
                is_error: m.is_error,
            })
            .collect(),
        ..ChatRequest::default()
    }
}

// -- requests -------------------------------------------------------------

#[test]
fn request_fixtures() {
    let all = cases(REQUESTS);
    assert!(all.len() >= 40);
    let mut round_trips = 0;
    for case in &all {
        let t = translator(case.get("options"));
        let req = match (case.get("openai_in"), case.get("hub")) {
            (Some(openai), None) => {
                to_hub::chat_request(openai.as_object().unwrap(), UPSTREAM_MODEL)
                    .unwrap_or_else(|e| panic!("{}: to_hub refused: {e:?}", name(case)))
            }
            (None, Some(hub)) => hub_request(hub),
            _ => panic!("{}: a case needs 'openai_in' or 'hub'", name(case)),
        };
        let result = t.encode_request(&req);
        match (case.get("expected"), case.get("error")) {
            (Some(expected), None) => {
                let bytes = result.unwrap_or_else(|e| panic!("{}: {e:?}", name(case)));
                let got: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(&got, expected, "{}", name(case));
            }
            (None, Some(expected)) => {
                let e = result.expect_err(name(case));
                assert_eq!(e.status, 400, "{}", name(case));
                assert_eq!(err_json(&e), json!({ "error": expected }), "{}", name(case));
            }
            _ => panic!("{}: a case needs 'expected' or 'error'", name(case)),
        }
        // Lossless mappings send the client's own request, model renamed.
        if case.get("round_trip") == Some(&Value::Bool(true)) {
            let mut client = case["openai_in"].clone();
            client["model"] = UPSTREAM_MODEL.into();
            assert_eq!(client, case["expected"], "{}: not a round trip", name(case));
            round_trips += 1;
        }
    }
    assert!(round_trips >= 20, "{round_trips} round trips");
}

#[test]
fn request_body_keeps_key_order_and_writes_each_member_once() {
    let req = to_hub::chat_request(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": true,
               "temperature": 0.5, "top_k": 3})
        .as_object()
        .unwrap(),
        UPSTREAM_MODEL,
    )
    .unwrap();
    let bytes = OpenAiChat::default().encode_request(&req).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"model":"up-model","messages":[{"role":"user","content":"x"}],"temperature":0.5,"stream":true,"stream_options":{"include_usage":true},"top_k":3}"#
    );
}

#[test]
fn document_bytes_are_written_as_data_uris_with_escapes() {
    // Media types and data reach JSON escaped, whatever they hold.
    let req = ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![
                Part::Image {
                    source: ImageSource::Base64 {
                        media_type: "image/png\"".into(),
                        data: "QUJD".into(),
                    },
                    detail: Some("auto".into()),
                },
                Part::Document {
                    source: DocumentSource::Base64 {
                        media_type: "text/csv".into(),
                        data: "YSxi\n".into(),
                    },
                    name: Some("t.csv".into()),
                },
            ],
            name: None,
            tool_calls: vec![],
            tool_call_id: None,
            reasoning: None,
            is_error: false,
        }],
        ..ChatRequest::default()
    };
    let v: Value =
        serde_json::from_slice(&OpenAiChat::default().encode_request(&req).unwrap()).unwrap();
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "data:image/png\";base64,QUJD", "detail": "auto"}},
            {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi\n", "filename": "t.csv"}}
        ])
    );
}

// -- responses ------------------------------------------------------------

fn body_bytes(case: &Value) -> Vec<u8> {
    match (case.get("body"), case.get("raw")) {
        (Some(Value::String(s)), None) | (None, Some(Value::String(s))) => s.clone().into_bytes(),
        (Some(v), None) => serde_json::to_vec(v).unwrap(),
        _ => panic!("{}: a case needs 'body' or 'raw'", name(case)),
    }
}

#[test]
fn response_fixtures() {
    let all = cases(RESPONSES);
    assert!(all.len() >= 20);
    for case in &all {
        let result = OpenAiChat::default().decode_response(&body_bytes(case), &ctx());
        match (case.get("expected"), case.get("error")) {
            (Some(expected), None) => {
                let r = result.unwrap_or_else(|e| panic!("{}: {e:?}", name(case)));
                let got: Value = serde_json::from_slice(&render::chat_completion(&r)).unwrap();
                assert_eq!(&got, expected, "{}", name(case));
            }
            (None, Some(expected)) => {
                let e = result.expect_err(name(case));
                assert_eq!(json!(e.status), expected["status"], "{}", name(case));
                assert_eq!(err_json(&e)["error"], expected["error"], "{}", name(case));
            }
            _ => panic!("{}: a case needs 'expected' or 'error'", name(case)),
        }
    }
}

#[test]
fn response_usage_in_hub_form() {
    let body =
        br#"{"id":"x","choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":100,"completion_tokens":50,"prompt_cache_hit_tokens":64,
                 "completion_tokens_details":{"reasoning_tokens":20}}}"#;
    let r = OpenAiChat::default().decode_response(body, &ctx()).unwrap();
    assert_eq!(
        r.usage,
        Some(Usage {
            prompt_tokens: 100,
            completion_tokens: 50,
            total_tokens: 150,
            cached_tokens: Some(64),
            cache_creation_tokens: None,
            reasoning_tokens: Some(20),
        })
    );
    // Details win over DeepSeek's own field; a usage without counts is none.
    let body = br#"{"choices":[],"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1},"prompt_cache_hit_tokens":2}}"#;
    let r = OpenAiChat::default().decode_response(body, &ctx()).unwrap();
    assert_eq!(r.usage.map(|u| u.cached_tokens), Some(Some(1)));
    let body = br#"{"choices":[],"usage":{"prompt_tokens_details":{"cached_tokens":1}}}"#;
    let r = OpenAiChat::default().decode_response(body, &ctx()).unwrap();
    assert_eq!(r.usage, None);
}

// -- streams --------------------------------------------------------------

fn stream_body(case: &Value) -> Vec<u8> {
    let separator = case
        .get("separator")
        .map_or("\n\n", |s| s.as_str().unwrap());
    let mut body = case
        .get("prefix")
        .map_or("", |s| s.as_str().unwrap())
        .to_string();
    for ev in case["events"].as_array().unwrap() {
        let data = match ev {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        };
        body.push_str("data: ");
        body.push_str(&data);
        body.push_str(separator);
    }
    if let Some(tail) = case.get("tail") {
        body.push_str(tail.as_str().unwrap());
    }
    body.into_bytes()
}

/// Hub events for `chunks` fed through the framer and the decoder in order.
fn decode_stream(chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut framer = SseFramer::new(1 << 20);
    let mut decoder = OpenAiChat::default().stream_decoder(&ctx());
    let mut events = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        framer.feed(chunk, &mut events).unwrap();
        for ev in events.drain(..) {
            decoder.on_event(&ev, &mut out);
        }
    }
    framer.finish(&mut events).unwrap();
    for ev in events.drain(..) {
        decoder.on_event(&ev, &mut out);
    }
    decoder.finish(&mut out);
    out
}

fn event_json(e: &StreamEvent) -> Value {
    match e {
        StreamEvent::Start { id, model } => json!({"start": {"id": id, "model": model}}),
        StreamEvent::Text { choice, text } => json!({"text": [choice, text]}),
        StreamEvent::Reasoning { choice, text } => json!({"reasoning": [choice, text]}),
        StreamEvent::ToolCallStart {
            choice,
            index,
            id,
            name,
        } => json!({"tool_call_start": [choice, index, id, name]}),
        StreamEvent::ToolCallArgs {
            choice,
            index,
            fragment,
        } => json!({"tool_call_args": [choice, index, fragment]}),
        StreamEvent::Finish { choice, reason } => json!({"finish": [choice, reason.as_openai()]}),
        StreamEvent::Usage(u) => json!({"usage": {
            "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens, "cached_tokens": u.cached_tokens,
            "reasoning_tokens": u.reasoning_tokens}}),
        StreamEvent::Error(e) => {
            json!({"error": {"status": e.status, "body": err_json(e)["error"]}})
        }
    }
}

#[test]
fn stream_fixtures_whole_body() {
    let all = cases(STREAMS);
    assert!(all.len() >= 10);
    for case in &all {
        let body = stream_body(case);
        let got: Vec<Value> = decode_stream(&[&body]).iter().map(event_json).collect();
        assert_eq!(Value::Array(got), case["expected"], "{}", name(case));
    }
}

#[test]
fn stream_fixtures_split_at_every_offset() {
    for case in &cases(STREAMS) {
        let body = stream_body(case);
        let whole = decode_stream(&[&body]);
        for i in 0..=body.len() {
            let (a, b) = body.split_at(i);
            assert_eq!(decode_stream(&[a, b]), whole, "{} split at {i}", name(case));
        }
    }
}

#[test]
fn stream_fixtures_one_byte_at_a_time() {
    for case in &cases(STREAMS) {
        let body = stream_body(case);
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(
            decode_stream(&bytes),
            decode_stream(&[&body]),
            "{}",
            name(case)
        );
    }
}

#[test]
fn streams_render_as_openai_chunks() {
    // The OpenAI writer turns a decoded stream back into the same chunks.
    let case = cases(STREAMS)
        .into_iter()
        .find(|c| name(c) == "OpenAI parallel tool calls streamed in pieces")
        .unwrap();
    let mut writer = render::ChunkWriter::new(&ctx(), true);
    let mut out = Vec::new();
    for e in decode_stream(&[&stream_body(&case)]) {
        writer.write(&e, &mut out);
    }
    writer.finish(&mut out);
    let text = String::from_utf8(out).unwrap();
    let frames: Vec<Value> = text
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let data = f.strip_prefix("data: ").unwrap();
            serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.into()))
        })
        .collect();
    assert_eq!(frames.len(), 9, "{text}");
    assert_eq!(frames[0]["id"], "chatcmpl-2");
    assert_eq!(
        frames[1]["choices"][0]["delta"]["tool_calls"],
        json!([{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}])
    );
    assert_eq!(
        frames[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "cation\": \"Paris\"}"
    );
    assert_eq!(frames[6]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(frames[7]["usage"]["total_tokens"], 120);
    assert_eq!(frames[8], "[DONE]");
}

fn feed(decoder: &mut OpenAiChatStream, data: &Value, out: &mut Vec<StreamEvent>) {
    decoder.on_event(
        &SseEvent {
            event: None,
            data: data.to_string(),
            id: None,
        },
        out,
    );
}

#[test]
fn stream_decoder_bounds_choices_tool_calls_and_held_arguments() {
    let mut d = OpenAiChatStream::new(&ctx());
    let mut out = Vec::new();
    let choices: Vec<Value> = (0..=MAX_CHOICES)
        .map(|i| json!({"index": i, "delta": {"content": "x"}}))
        .collect();
    feed(&mut d, &json!({ "choices": choices }), &mut out);
    assert!(
        matches!(out.last(), Some(StreamEvent::Error(e)) if e.status == 502 && e.message.contains("128 choices"))
    );
    assert!(d.choices.len() <= MAX_CHOICES);

    let mut d = OpenAiChatStream::new(&ctx());
    let mut out = Vec::new();
    for i in 0..=MAX_TOOL_CALLS {
        feed(
            &mut d,
            &json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, "id": format!("c{i}"), "function": {"name": "f"}}]}}]}),
            &mut out,
        );
    }
    assert!(
        matches!(out.last(), Some(StreamEvent::Error(e)) if e.message.contains("more than 1024 tool calls"))
    );

    let mut d = OpenAiChatStream::new(&ctx());
    let mut out = Vec::new();
    let piece = "x".repeat(MAX_HELD_ARGUMENTS / 2 + 1);
    for _ in 0..2 {
        feed(
            &mut d,
            &json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}}]}),
            &mut out,
        );
    }
    assert!(
        matches!(out.last(), Some(StreamEvent::Error(e)) if e.message.contains("before naming the function"))
    );
}

#[test]
fn stream_usage_goes_out_once_at_the_end_and_the_latest_wins() {
    let mut d = OpenAiChatStream::new(&ctx());
    let mut out = Vec::new();
    // vLLM's continuous usage: every chunk carries the running count.
    for n in 1..=3u64 {
        feed(
            &mut d,
            &json!({"id": "v", "model": "m", "choices": [{"index": 0, "delta": {"content": "t"}}],
                     "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}}),
            &mut out,
        );
    }
    feed(
        &mut d,
        &json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        &mut out,
    );
    d.finish(&mut out);
    d.finish(&mut out);
    let usages: Vec<&StreamEvent> = out
        .iter()
        .filter(|e| matches!(e, StreamEvent::Usage(_)))
        .collect();
    assert_eq!(
        usages,
        [&StreamEvent::Usage(Usage {
            prompt_tokens: 5,
            completion_tokens: 3,
            total_tokens: 8,
            ..Usage::default()
        })]
    );
    assert_eq!(
        out.last(),
        usages.last().copied(),
        "usage comes after the finish"
    );
    assert!(out.contains(&StreamEvent::Finish {
        choice: 0,
        reason: FinishReason::Stop
    }));
}

#[test]
fn stream_without_any_chunk_is_cut_short() {
    let mut d = OpenAiChatStream::new(&ctx());
    let mut out = Vec::new();
    d.on_event(&SseEvent::default(), &mut out);
    assert!(out.is_empty(), "blank data is ignored");
    d.finish(&mut out);
    assert!(matches!(out.as_slice(), [StreamEvent::Error(e)] if e.status == 502));
    // A [DONE] alone is a complete (empty) stream.
    let mut d = OpenAiChatStream::new(&ctx());
    let mut out = Vec::new();
    d.on_event(
        &SseEvent {
            data: "[DONE]".into(),
            ..SseEvent::default()
        },
        &mut out,
    );
    d.finish(&mut out);
    assert!(out.is_empty(), "{out:?}");
}

// -- errors ---------------------------------------------------------------

#[test]
fn error_fixtures() {
    let all = cases(ERRORS);
    assert!(all.len() >= 10);
    for case in &all {
        let status = u16::try_from(case["status"].as_u64().unwrap()).unwrap();
        let e = OpenAiChat::default().decode_error(status, &body_bytes(case));
        assert_eq!(e.status, status, "{}", name(case));
        assert_eq!(err_json(&e), case["expected"], "{}", name(case));
    }
}

// -- paths, options, embeddings -------------------------------------------

#[test]
fn paths() {
    let t = OpenAiChat::default();
    assert_eq!(
        t.path(Operation::ChatCompletions, "/v1", "gpt-4o", false),
        "/v1/chat/completions"
    );
    assert_eq!(
        t.path(Operation::ChatCompletions, "/api/paas/v4", "glm-4.5", true),
        "/api/paas/v4/chat/completions"
    );
    assert_eq!(
        t.path(
            Operation::Embeddings,
            "/compatible-mode/v1",
            "text-embedding-v4",
            false
        ),
        "/compatible-mode/v1/embeddings"
    );
    assert_eq!(t.path(Operation::Embeddings, "", "e", false), "/embeddings");
}

#[test]
fn default_options_suit_the_compatible_family() {
    assert_eq!(
        OpenAiChatOptions::default(),
        OpenAiChatOptions {
            max_tokens_field: MaxTokensField::MaxTokens,
            reasoning: ReasoningStyle::Effort,
            reasoning_history: ReasoningHistory::Omit,
            stream_usage: StreamUsage::Request,
        }
    );
    assert_eq!(
        OpenAiChat::default(),
        OpenAiChat::new(OpenAiChatOptions::default())
    );
}

fn embeddings_req(v: Value) -> EmbeddingsRequest {
    to_hub::embeddings_request(v.as_object().unwrap(), "text-embedding-3-small").unwrap()
}

fn encode_embeddings(v: Value) -> Result<Value, ApiError> {
    OpenAiChat::default()
        .encode_embeddings(&embeddings_req(v))
        .map(|b| serde_json::from_slice(&b).unwrap())
}

#[test]
fn embeddings_request() {
    assert_eq!(
        encode_embeddings(
            json!({"model": "e", "input": ["first", "second"], "dimensions": 256,
            "encoding_format": "base64", "user": "u1"})
        )
        .unwrap(),
        json!({"model": "text-embedding-3-small", "input": ["first", "second"], "dimensions": 256, "user": "u1"})
    );
    assert_eq!(
        encode_embeddings(json!({"model": "e", "input": "one"})).unwrap(),
        json!({"model": "text-embedding-3-small", "input": ["one"]})
    );
    // Provider extensions pass (DashScope's text_type), clashes do not.
    assert_eq!(
        encode_embeddings(json!({"model": "e", "input": "q", "text_type": "query"})).unwrap(),
        json!({"model": "text-embedding-3-small", "input": ["q"], "text_type": "query"})
    );
    let mut req = embeddings_req(json!({"model": "e", "input": "q", "dimensions": 8}));
    req.extra.insert("dimensions".into(), json!(16));
    let e = OpenAiChat::default().encode_embeddings(&req).unwrap_err();
    assert_eq!((e.status, e.param.as_deref()), (400, Some("dimensions")));
    req.dimensions = None;
    let v: Value =
        serde_json::from_slice(&OpenAiChat::default().encode_embeddings(&req).unwrap()).unwrap();
    assert_eq!(v["dimensions"], 16);
}

#[test]
fn embeddings_response() {
    let t = OpenAiChat::default();
    let body = json!({"object": "list", "model": "text-embedding-3-small-001",
        "data": [{"object": "embedding", "index": 1, "embedding": [0.5, -1]},
                 {"object": "embedding", "index": 0, "embedding": [0.25, 2e-3]}],
        "usage": {"prompt_tokens": 8, "total_tokens": 8}});
    let r = t
        .decode_embeddings(body.to_string().as_bytes(), &ctx())
        .unwrap();
    assert_eq!(r.vectors, vec![vec![0.25, 0.002], vec![0.5, -1.0]]);
    assert_eq!(
        (r.model.as_str(), r.prompt_tokens),
        ("text-embedding-3-small-001", 8)
    );

    // base64 vectors (1.0, -2.5 as f32), no index, no usage, no model.
    let body = json!({"data": [{"embedding": "AACAPwAAIMA="}]});
    let r = t
        .decode_embeddings(body.to_string().as_bytes(), &ctx())
        .unwrap();
    assert_eq!(r.vectors, vec![vec![1.0, -2.5]]);
    assert_eq!((r.model.as_str(), r.prompt_tokens), (UPSTREAM_MODEL, 0));

    // total_tokens when prompt_tokens is missing.
    let body = json!({"data": [{"index": 0, "embedding": [1]}], "usage": {"total_tokens": 4}});
    let r = t
        .decode_embeddings(body.to_string().as_bytes(), &ctx())
        .unwrap();
    assert_eq!(r.prompt_tokens, 4);

    for (body, status, message) in [
        ("nope", 502, "The provider returned an embeddings response that is not valid JSON: expected ident at line 1 column 2."),
        ("{}", 502, "The provider returned an embeddings response without a 'data' array."),
        ("[[0.5]]", 502, "The provider returned an embeddings response that is not a JSON object."),
        (r#"{"object":"chat.completion","choices":[]}"#, 502, "The provider returned a 'chat.completion' object without a 'data' array where an embeddings list was expected."),
        (r#"{"data":[{"index":0}]}"#, 502, "The provider returned data[0] without an 'embedding'."),
        (r#"{"data":[{"index":0,"embedding":"%%%"}]}"#, 502, "The provider returned data[0].embedding as a string that is not base64 of 32-bit floats."),
        (r#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}"#, 502, "The provider returned data[1] with index 0, which is repeated or not below the 2 embeddings returned."),
        (r#"{"data":[{"index":5,"embedding":[1]}]}"#, 502, "The provider returned data[0] with index 5, which is repeated or not below the 1 embeddings returned."),
        (r#"{"data":[{"index":0,"embedding":["a"]}]}"#, 502, "The provider returned an embeddings response that is not an embeddings list: invalid type: string \"a\", expected f64 at line 1 column 36."),
        (r#"{"error":{"message":"Input too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#, 400, "Input too long"),
    ] {
        let e = t.decode_embeddings(body.as_bytes(), &ctx()).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (status, message), "{body}");
    }
}
