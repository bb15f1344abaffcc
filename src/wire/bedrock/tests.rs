use super::*;
use crate::wire::eventstream::{encode, event, HeaderValue, Message as EsMessage};
use crate::wire::hub::{
    DocumentSource, FinishReason, ImageSource, Message, Part, Role, ToolCall, ToolChoice, ToolDef,
};
use crate::wire::stream::StreamTranslation;
use crate::wire::Wire;
use serde_json::{json, Value};

fn msg(role: Role, text: &str) -> Message {
    Message::plain(role, text)
}

fn req(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "anthropic.claude-sonnet-4-20250514-v1:0".into(),
        messages,
        ..Default::default()
    }
}

fn encoded(r: &ChatRequest) -> Value {
    serde_json::from_slice(&Bedrock.encode_request(r).unwrap()).unwrap()
}

fn ctx() -> ResponseContext {
    ResponseContext {
        model: "us.amazon.nova-pro-v1:0".into(),
        created: 7,
        request_id: "r1".into(),
        input_tokens_estimate: 0,
    }
}

#[test]
fn paths_encode_the_model_id_as_one_segment() {
    let b = Bedrock;
    assert_eq!(
        b.path(
            Operation::ChatCompletions,
            "",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            false
        ),
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    assert_eq!(
        b.path(
            Operation::ChatCompletions,
            "/",
            "us.amazon.nova-pro-v1:0",
            true
        ),
        "/model/us.amazon.nova-pro-v1%3A0/converse-stream"
    );
    assert_eq!(
        b.path(
            Operation::ChatCompletions,
            "",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-3-70b-instruct-v1:0",
            false
        ),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-3-70b-instruct-v1%3A0/converse"
    );
    for ok in [
        "meta.llama3-70b-instruct-v1:0",
        "deepseek.r1-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/x",
    ] {
        assert!(is_model_id(ok), "{ok}");
    }
    for bad in ["", "a/b", "../x", "a?b", "a#b", "a b", "a%3A", ".x", "é"] {
        assert!(!is_model_id(bad), "{bad}");
    }
}

#[test]
fn a_conversation_becomes_system_blocks_and_alternating_turns() {
    let mut r = req(vec![
        msg(Role::System, "be brief"),
        msg(Role::Assistant, "hi, how can I help?"),
        msg(Role::User, "one"),
        msg(Role::User, "two"),
        msg(Role::System, "and kind"),
    ]);
    r.max_tokens = Some(100);
    r.temperature = Some(0.5);
    r.top_p = Some(0.9);
    r.stop = vec!["END".into()];
    let v = encoded(&r);
    assert_eq!(
        v["system"],
        json!([{"text": "be brief"}, {"text": "and kind"}])
    );
    assert_eq!(
        v["messages"],
        json!([
            {"role": "user", "content": [{"text": "."}]},
            {"role": "assistant", "content": [{"text": "hi, how can I help?"}]},
            {"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
        ])
    );
    assert_eq!(
        v["inferenceConfig"],
        json!({"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]})
    );
    assert!(v.get("model").is_none() && v.get("stream").is_none());
}

#[test]
fn tools_calls_and_results() {
    let mut assistant = msg(Role::Assistant, "");
    assistant.tool_calls = vec![ToolCall {
        id: "tooluse_1".into(),
        name: "weather".into(),
        arguments: r#"{"city":"Paris"}"#.into(),
    }];
    let mut result = msg(Role::Tool, "18C");
    result.tool_call_id = Some("tooluse_1".into());
    result.is_error = true;
    let mut r = req(vec![
        msg(Role::User, "weather?"),
        assistant,
        result,
        msg(Role::User, "thanks"),
    ]);
    r.tools = vec![ToolDef {
        name: "weather".into(),
        description: Some("Weather by city".into()),
        parameters: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
        strict: None,
    }];
    r.tool_choice = Some(ToolChoice::Function("weather".into()));
    let v = encoded(&r);
    assert_eq!(
        v["messages"][1]["content"],
        json!([{"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Paris"}}}])
    );
    assert_eq!(
        v["messages"][2]["content"],
        json!([
            {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18C"}], "status": "error"}},
            {"text": "thanks"}
        ])
    );
    assert_eq!(
        v["toolConfig"],
        json!({
            "tools": [{"toolSpec": {"name": "weather", "description": "Weather by city",
                "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
            "toolChoice": {"tool": {"name": "weather"}}
        })
    );
    r.tool_choice = Some(ToolChoice::Required);
    assert_eq!(encoded(&r)["toolConfig"]["toolChoice"], json!({"any": {}}));
    // History with tool blocks needs the tools declared: `none` still
    // declares them, and a request without tools gets the history's.
    r.tool_choice = Some(ToolChoice::None);
    let v = encoded(&r);
    assert_eq!(v["toolConfig"]["tools"][0]["toolSpec"]["name"], "weather");
    assert!(v["toolConfig"].get("toolChoice").is_none());
    r.tool_choice = None;
    r.tools.clear();
    assert_eq!(
        encoded(&r)["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "weather",
            "description": "A tool used earlier in this conversation.",
            "inputSchema": {"json": {"type": "object"}}}}]})
    );
    // Without history, `none` means no tools are offered.
    let mut plain = req(vec![msg(Role::User, "hi")]);
    plain.tools = vec![ToolDef {
        name: "t".into(),
        description: None,
        parameters: None,
        strict: None,
    }];
    plain.tool_choice = Some(ToolChoice::None);
    assert!(encoded(&plain).get("toolConfig").is_none());
    plain.tool_choice = Some(ToolChoice::Function("other".into()));
    assert!(Bedrock.encode_request(&plain).is_err());
}

#[test]
fn images_and_documents_go_inline() {
    let mut user = msg(Role::User, "look");
    user.content.push(Part::Image {
        source: ImageSource::Base64 {
            media_type: "image/png".into(),
            data: "iVBO".into(),
        },
        detail: None,
    });
    user.content.push(Part::Document {
        source: DocumentSource::Base64 {
            media_type: "application/pdf".into(),
            data: "JVBE".into(),
        },
        name: Some("Q3 report (final).pdf".into()),
    });
    user.content.push(Part::Document {
        source: DocumentSource::Text("hello".into()),
        name: None,
    });
    let v = encoded(&req(vec![user]));
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"text": "look"},
            {"image": {"format": "png", "source": {"bytes": "iVBO"}}},
            {"document": {"format": "pdf", "name": "Q3 report (final)", "source": {"bytes": "JVBE"}}},
            {"document": {"format": "txt", "name": "document-2", "source": {"bytes": "aGVsbG8="}}},
        ])
    );
    let mut url = msg(Role::User, "x");
    url.content.push(Part::Image {
        source: ImageSource::Url("https://x/a.png".into()),
        detail: None,
    });
    let e = Bedrock.encode_request(&req(vec![url])).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages[0].content[1]"));
    let mut svg = msg(Role::User, "x");
    svg.content.push(Part::Image {
        source: ImageSource::Base64 {
            media_type: "image/svg+xml".into(),
            data: "PHN2".into(),
        },
        detail: None,
    });
    assert!(Bedrock
        .encode_request(&req(vec![svg]))
        .unwrap_err()
        .message
        .contains("svg"));
}

#[test]
fn reasoning_effort_per_model_family() {
    let mut r = req(vec![msg(Role::User, "think")]);
    r.reasoning_effort = Some("medium".into());
    let v = encoded(&r);
    assert_eq!(
        v["additionalModelRequestFields"],
        json!({"thinking": {"type": "enabled", "budget_tokens": 8192}})
    );
    assert_eq!(v["inferenceConfig"]["maxTokens"], json!(8192 + 4096));
    r.max_tokens = Some(2000);
    assert_eq!(
        encoded(&r)["additionalModelRequestFields"]["thinking"]["budget_tokens"],
        json!(1999)
    );
    r.max_tokens = Some(1024);
    assert_eq!(
        Bedrock.encode_request(&r).unwrap_err().param.as_deref(),
        Some("max_tokens")
    );
    r.max_tokens = None;
    r.model = "us.amazon.nova-2-lite-v1:0".into();
    r.reasoning_effort = Some("minimal".into());
    assert_eq!(
        encoded(&r)["additionalModelRequestFields"],
        json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}})
    );
    r.model = "meta.llama3-70b-instruct-v1:0".into();
    assert_eq!(
        Bedrock.encode_request(&r).unwrap_err().code.as_deref(),
        Some("unsupported_parameter")
    );
    r.reasoning_effort = Some("none".into());
    assert!(encoded(&r).get("additionalModelRequestFields").is_none());
}

#[test]
fn extras_pass_or_fail_loudly() {
    let mut r = req(vec![msg(Role::User, "hi")]);
    r.extra.insert("top_k".into(), json!(5));
    r.extra.insert(
        "guardrail_config".into(),
        json!({"guardrailIdentifier": "g", "guardrailVersion": "1"}),
    );
    r.extra.insert(
        "additionalModelRequestFields".into(),
        json!({"anthropic_beta": ["x"]}),
    );
    r.extra.insert("logprobs".into(), json!(false));
    r.extra.insert("metadata".into(), json!({"team": "search"}));
    r.extra.insert("safety_identifier".into(), json!("u-1"));
    let v = encoded(&r);
    assert_eq!(v["requestMetadata"], json!({"team": "search"}));
    assert_eq!(
        v["additionalModelRequestFields"],
        json!({"anthropic_beta": ["x"], "top_k": 5})
    );
    assert_eq!(v["guardrailConfig"]["guardrailIdentifier"], json!("g"));
    for (k, val) in [
        ("logprobs", json!(true)),
        ("whatever", json!(1)),
        ("top_k", json!(-1)),
        ("metadata", json!({"n": 1})),
    ] {
        let mut r = req(vec![msg(Role::User, "hi")]);
        r.extra.insert(k.into(), val);
        let e = Bedrock.encode_request(&r).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some(k)));
    }
    let mut r = req(vec![msg(Role::User, "hi")]);
    r.seed = Some(1);
    assert!(Bedrock.encode_request(&r).is_err());
    let mut r = req(vec![msg(Role::User, "hi")]);
    r.n = Some(2);
    assert!(Bedrock.encode_request(&r).is_err());
    let mut r = req(vec![msg(Role::User, "hi")]);
    r.parallel_tool_calls = Some(false);
    assert!(Bedrock.encode_request(&r).is_err());
    let r = req(vec![msg(Role::System, "only system")]);
    assert_eq!(
        Bedrock.encode_request(&r).unwrap_err().param.as_deref(),
        Some("messages")
    );
}

#[test]
fn responses_decode_text_reasoning_tools_and_usage() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_a", "name": "weather", "input": {"city": "Paris"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 25, "cacheReadInputTokens": 8, "cacheWriteInputTokens": 2},
        "metrics": {"latencyMs": 300}
    });
    let r = Bedrock
        .decode_response(body.to_string().as_bytes(), &ctx())
        .unwrap();
    assert_eq!(r.id, "chatcmpl-r1");
    assert_eq!(r.model, "us.amazon.nova-pro-v1:0");
    let c = &r.choices[0];
    assert_eq!(c.content.as_deref(), Some("Let me check."));
    assert_eq!(c.reasoning.as_deref(), Some("hmm"));
    assert_eq!(c.tool_calls[0].arguments, r#"{"city":"Paris"}"#);
    assert_eq!(c.finish_reason, Some(FinishReason::ToolCalls));
    let u = r.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (20, 5, 25)
    );
    assert_eq!(
        (u.cached_tokens, u.cache_creation_tokens),
        (Some(8), Some(2))
    );
    for (stop, reason) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("guardrail_intervened", FinishReason::ContentFilter),
        ("content_filtered", FinishReason::ContentFilter),
    ] {
        let b = json!({"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": stop});
        let r = Bedrock
            .decode_response(b.to_string().as_bytes(), &ctx())
            .unwrap();
        assert_eq!(r.choices[0].finish_reason, Some(reason), "{stop}");
    }
    let image = json!({"output": {"message": {"content": [{"image": {"format": "png"}}]}}, "stopReason": "end_turn"});
    let e = Bedrock
        .decode_response(image.to_string().as_bytes(), &ctx())
        .unwrap_err();
    assert_eq!(e.status, 502);
    assert!(e.message.contains("'image'"), "{}", e.message);
    assert_eq!(
        Bedrock
            .decode_response(b"not json", &ctx())
            .unwrap_err()
            .status,
        502
    );
    assert_eq!(
        Bedrock.decode_response(b"{}", &ctx()).unwrap_err().status,
        502
    );
}

#[test]
fn error_bodies_keep_the_message_and_status() {
    let e = Bedrock.decode_error(
        429,
        br#"{"message":"Too many requests, please wait before trying again."}"#,
    );
    assert_eq!((e.status, e.kind.as_ref()), (429, "rate_limit_error"));
    assert!(e.message.starts_with("Too many requests"));
    let e = Bedrock.decode_error(403, br#"{"Message":"User is not authorized"}"#);
    assert_eq!(
        (e.status, e.message.as_str()),
        (403, "User is not authorized")
    );
}

fn es(events: &[(&str, Value)]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|(name, v)| {
            let mut v = v.clone();
            v["p"] = json!("abcdefgh");
            encode(&event(name, v.to_string().as_bytes()))
        })
        .collect()
}

fn exception_message(name: &str, message: &str) -> Vec<u8> {
    encode(&EsMessage {
        headers: vec![
            (":exception-type".into(), HeaderValue::String(name.into())),
            (
                ":content-type".into(),
                HeaderValue::String("application/json".into()),
            ),
            (
                ":message-type".into(),
                HeaderValue::String("exception".into()),
            ),
        ],
        payload: json!({ "message": message }).to_string().into_bytes(),
    })
}

fn translate(bytes: &[u8], cut: usize) -> (String, bool) {
    let mut t = StreamTranslation::new(
        Bedrock.stream_decoder(&ctx()),
        Wire::OpenAiChat.writer(&ctx(), true),
    )
    .with_framing(Bedrock.framing());
    let mut out = t.feed(&bytes[..cut]);
    out.extend(t.feed(&bytes[cut..]));
    out.extend(t.finish());
    (String::from_utf8(out).unwrap(), t.failed())
}

fn tool_stream() -> Vec<u8> {
    es(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "thinking"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"text": "Hello 你好"}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_x", "name": "weather"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 2})),
        ("messageStop", json!({"stopReason": "tool_use"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19}, "metrics": {"latencyMs": 9}}),
        ),
    ])
}

#[test]
fn a_stream_translates_the_same_at_every_split() {
    let bytes = tool_stream();
    let (whole, failed) = translate(&bytes, bytes.len());
    assert!(!failed, "{whole}");
    for needle in [
        r#""reasoning_content":"thinking""#,
        r#""content":"Hello 你好""#,
        r#""id":"tooluse_x""#,
        r#""arguments":"{\"city\":""#,
        r#""finish_reason":"tool_calls""#,
        r#""prompt_tokens":12"#,
        "data: [DONE]",
    ] {
        assert!(whole.contains(needle), "{needle} in {whole}");
    }
    for cut in 0..bytes.len() {
        assert_eq!(
            translate(&bytes, cut),
            (whole.clone(), false),
            "cut at {cut}"
        );
    }
}

#[test]
fn an_exception_mid_stream_ends_it_with_its_status() {
    let mut bytes = es(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "partial"}}),
        ),
    ]);
    bytes.extend(exception_message(
        "throttlingException",
        "Too many tokens, please wait.",
    ));
    let (out, failed) = translate(&bytes, 0);
    assert!(failed);
    assert!(out.contains("partial"), "{out}");
    assert!(out.contains("Too many tokens, please wait."), "{out}");
    assert!(out.contains("throttlingException"), "{out}");
    assert!(!out.contains("[DONE]"), "{out}");
    let e = super::error::exception("modelStreamErrorException", "{}");
    assert_eq!(e.status, 502);
    assert!(e.message.contains("modelStreamErrorException"));
}

#[test]
fn a_stream_cut_before_message_stop_or_corrupt_is_an_error() {
    let bytes = tool_stream();
    let cut = es(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "hi"}}),
        ),
    ]);
    let (out, failed) = translate(&cut, cut.len());
    assert!(failed);
    assert!(out.contains("before its messageStop"), "{out}");
    let mut corrupt = bytes.clone();
    corrupt[40] ^= 1;
    assert!(translate(&corrupt, 0).1);
    let orphan = es(&[(
        "contentBlockDelta",
        json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}),
    )]);
    let (out, failed) = translate(&orphan, 0);
    assert!(
        failed && out.contains("did not start as a tool call"),
        "{out}"
    );
}
