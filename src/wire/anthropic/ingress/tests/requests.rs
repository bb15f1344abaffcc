//! Validation wording and edge cases of `parse_request`,
//! `parse_count_tokens`, `to_hub` and `facts` not in the corpus.

use crate::error::ApiError;
use crate::wire::anthropic::ingress::{
    anthropic_only_feature, facts, parse_count_tokens, parse_request, to_hub,
};
use serde_json::{json, Map, Value};

fn parse(v: &Value) -> Result<crate::wire::openai::ParsedRequest, ApiError> {
    parse_request(&serde_json::to_vec(v).unwrap())
}

/// A valid body with `field` set to `value` (or removed for null).
fn with(field: &str, value: Value) -> Value {
    let mut body =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
    if value.is_null() {
        body.as_object_mut().unwrap().remove(field);
    } else {
        body[field] = value;
    }
    body
}

fn user(content: Value) -> Value {
    with("messages", json!([{"role": "user", "content": content}]))
}

/// Checks the error's param and its Anthropic-style message.
fn assert_invalid(
    r: Result<crate::wire::openai::ParsedRequest, ApiError>,
    param: &str,
    message: &str,
) {
    let e = r.err().unwrap_or_else(|| panic!("{param}: accepted"));
    assert_eq!(e.status, 400, "{param}");
    assert_eq!(e.kind, "invalid_request_error", "{param}");
    assert_eq!(e.param.as_deref(), Some(param), "{}", e.message);
    assert_eq!(e.message, format!("{param}: {message}"));
}

#[test]
fn body_must_be_a_json_object() {
    for body in [&b"{not json"[..], b"", b"[1]", b"\"x\"", b"null"] {
        let e = parse_request(body).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, None), "{body:?}");
        assert_eq!(e.kind, "invalid_request_error");
    }
}

#[test]
fn top_level_fields() {
    let cases: &[(Value, &str, &str)] = &[
        (with("model", Value::Null), "model", "Field required"),
        (with("model", json!(5)), "model", "Input should be a valid string"),
        (with("model", json!("")), "model", "String should have at least 1 character"),
        (with("max_tokens", json!(0)), "max_tokens", "Input should be greater than or equal to 1"),
        (with("max_tokens", json!(-5)), "max_tokens", "Input should be greater than or equal to 1"),
        (with("max_tokens", json!(1.5)), "max_tokens", "Input should be a valid integer, got a number with a fractional part"),
        (with("max_tokens", json!("10")), "max_tokens", "Input should be a valid integer"),
        (with("messages", Value::Null), "messages", "Field required"),
        (with("messages", json!("hi")), "messages", "Input should be a valid list"),
        (with("temperature", json!(-0.1)), "temperature", "Input should be greater than or equal to 0"),
        (with("temperature", json!("hot")), "temperature", "Input should be a valid number"),
        (with("top_p", json!(2)), "top_p", "Input should be less than or equal to 1"),
        (with("top_k", json!(-1)), "top_k", "Input should be greater than or equal to 0"),
        (with("stop_sequences", json!("END")), "stop_sequences", "Input should be a valid list"),
        (with("stop_sequences", json!(["a", 1])), "stop_sequences.1", "Input should be a valid string"),
        (with("stream", json!("yes")), "stream", "Input should be a valid boolean"),
        (with("metadata", json!("u")), "metadata", "Input should be a valid dictionary"),
        (with("metadata", json!({"user_id": 5})), "metadata.user_id", "Input should be a valid string"),
        (with("service_tier", json!(1)), "service_tier", "Input should be a valid string"),
        (with("container", json!(1)), "container", "Input should be a valid string or a container object"),
        (with("context_management", json!([])), "context_management", "Input should be a valid dictionary"),
        (with("mcp_servers", json!({})), "mcp_servers", "Input should be a valid list"),
        (with("output_config", json!({"effort": 3})), "output_config.effort", "Input should be a valid string"),
        (with("output_config", json!({"format": "json"})), "output_config.format", "Input should be a valid dictionary"),
        (with("system", json!(5)), "system", "Input should be a valid string or a list of text blocks"),
        (with("system", json!([{"type": "image", "source": {}}])), "system.0", "Input tag 'image' found using 'type' does not match any of the expected tags: 'text'"),
        (with("system", json!([{"text": "x"}])), "system.0", "Unable to extract tag using discriminator 'type'"),
        (with("system", json!(["x"])), "system.0", "Input should be a valid dictionary or object to extract fields from"),
        (with("tools", json!({})), "tools", "Input should be a valid list"),
        (with("tools", json!([{"input_schema": {}}])), "tools.0.name", "Field required"),
        (with("tools", json!([{"name": "bad name", "input_schema": {}}])), "tools.0.name", "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"),
        (with("tools", json!([{"name": "f", "input_schema": "{}"}])), "tools.0.input_schema", "Input should be a valid dictionary"),
        (with("tools", json!([{"name": "f", "description": 1, "input_schema": {}}])), "tools.0.description", "Input should be a valid string"),
        (with("tools", json!([{"type": 5, "name": "f"}])), "tools.0.type", "Input should be a valid string"),
        (with("tool_choice", json!("auto")), "tool_choice", "Input should be a valid dictionary or object to extract fields from"),
        (with("tool_choice", json!({"type": "tool"})), "tool_choice.name", "Field required"),
        (with("tool_choice", json!({"type": "auto", "disable_parallel_tool_use": "yes"})), "tool_choice.disable_parallel_tool_use", "Input should be a valid boolean"),
        (with("thinking", json!({"type": "on"})), "thinking", "Input tag 'on' found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"),
        (with("thinking", json!({"type": "enabled"})), "thinking.budget_tokens", "Field required"),
        (with("stop", json!(["x"])), "stop", "Extra inputs are not permitted"),
    ];
    for (body, param, message) in cases {
        assert_invalid(parse(body), param, message);
    }
}

#[test]
fn messages_and_blocks() {
    let cases: &[(Value, &str, &str)] = &[
        (with("messages", json!([])), "messages", "at least one message is required"),
        (with("messages", json!(["hi"])), "messages.0", "Input should be a valid dictionary or object to extract fields from"),
        (with("messages", json!([{"content": "x"}])), "messages.0.role", "Field required"),
        (with("messages", json!([{"role": 1, "content": "x"}])), "messages.0.role", "Input should be a valid string"),
        (with("messages", json!([{"role": "tool", "content": "x"}])), "messages.0.role", "Input should be 'user' or 'assistant'"),
        (with("messages", json!([{"role": "user"}])), "messages.0.content", "Field required"),
        (user(json!(5)), "messages.0.content", "Input should be a valid string or a list of content blocks"),
        (user(json!(["x"])), "messages.0.content.0", "Input should be a valid dictionary or object to extract fields from"),
        (user(json!([{"text": "x"}])), "messages.0.content.0", "Unable to extract tag using discriminator 'type'"),
        (user(json!([{"type": "text"}])), "messages.0.content.0.text", "Field required"),
        (user(json!([{"type": "text", "text": 1}])), "messages.0.content.0.text", "Input should be a valid string"),
        (user(json!([{"type": "image"}])), "messages.0.content.0.source", "Field required"),
        (user(json!([{"type": "image", "source": {"type": "path", "path": "/x"}}])), "messages.0.content.0.source", "Input tag 'path' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'"),
        (user(json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}])), "messages.0.content.0.source.data", "Field required"),
        (user(json!([{"type": "image", "source": {"type": "url"}}])), "messages.0.content.0.source.url", "Field required"),
        (user(json!([{"type": "document", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}])), "messages.0.content.0.source.media_type", "Input should be 'application/pdf'"),
        (user(json!([{"type": "document", "source": {"type": "text", "media_type": "text/html", "data": "x"}}])), "messages.0.content.0.source.media_type", "Input should be 'text/plain'"),
        (user(json!([{"type": "document", "source": {"type": "content", "content": 3}}])), "messages.0.content.0.source.content", "Input should be a valid string or a list of content blocks"),
        (user(json!([{"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}, "title": 3}])), "messages.0.content.0.title", "Input should be a valid string"),
        (user(json!([{"type": "tool_result"}])), "messages.0.content.0.tool_use_id", "Field required"),
        (user(json!([{"type": "tool_result", "tool_use_id": "t", "content": 5}])), "messages.0.content.0.content", "Input should be a valid string or a list of content blocks"),
        (user(json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}])), "messages.0.content.0.content.0.text", "Field required"),
        (user(json!([{"type": "tool_result", "tool_use_id": "t", "is_error": "no"}])), "messages.0.content.0.is_error", "Input should be a valid boolean"),
        (user(json!([{"type": "tool_use", "name": "f", "input": {}}])), "messages.0.content.0.id", "Field required"),
        (user(json!([{"type": "thinking", "thinking": "x"}])), "messages.0.content.0.signature", "Field required"),
        (user(json!([{"type": "redacted_thinking"}])), "messages.0.content.0.data", "Field required"),
    ];
    for (body, param, message) in cases {
        assert_invalid(parse(body), param, message);
    }
}

#[test]
fn accepts_what_anthropic_accepts() {
    let body = json!({
        "model": "claude-opus-4-5", "max_tokens": 1024, "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 4096},
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "scope": "global"}}],
        "tools": [
            {"name": "Bash", "input_schema": {"type": "object"}, "defer_loading": true, "input_examples": [{}], "cache_control": {"type": "ephemeral"}},
            {"type": "custom", "name": "Read", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3, "allowed_domains": ["x.test"]}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "", "citations": null},
                {"type": "search_result", "source": "https://x.test", "title": "t", "content": []},
                {"type": "a_block_type_from_next_year", "anything": 1}
            ]},
            {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}
        ],
        "mcp_servers": [{"type": "url", "url": "https://mcp.x.test", "name": "m"}],
        "container": {"id": "c"}, "service_tier": "auto", "output_format": null
    });
    let p = parse(&body).unwrap();
    assert!(p.stream);
    assert_eq!(p.model, "claude-opus-4-5");
    assert!(p.raw.is_empty());
    // The budget may reach max_tokens (interleaved thinking).
    let body = with(
        "thinking",
        json!({"type": "enabled", "budget_tokens": 63999}),
    );
    assert!(!parse(&body).unwrap().stream);
    // Whatever only Anthropic can serve is noted, for routing and for to_hub.
    assert_eq!(
        anthropic_only_feature(
            with("tools", json!([{"type": "bash_20250124", "name": "bash"}]))
                .as_object()
                .unwrap()
        ),
        Some((
            "tools.0".to_string(),
            "The server tool 'bash' (type 'bash_20250124')".to_string()
        ))
    );
    assert_eq!(
        anthropic_only_feature(with("mcp_servers", json!([])).as_object().unwrap()),
        None
    );
}

#[test]
fn count_tokens_bodies() {
    let body = json!({"model": "m", "system": "s", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}], "thinking": {"type": "enabled", "budget_tokens": 2048}});
    let p = parse_count_tokens(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert!(!p.stream);
    let hub = to_hub(p.body(), "up").unwrap();
    assert_eq!((hub.max_tokens, hub.messages.len()), (None, 2));
    let f = facts(p.body());
    assert_eq!(f.max_tokens, None);
    // "s" + "hi" + the tools' JSON (47 bytes) = 50 bytes → 13, + 4 for one message.
    assert_eq!(f.prompt_tokens, 17);
    for (field, value) in [
        ("max_tokens", json!(10)),
        ("stream", json!(true)),
        ("temperature", json!(0.5)),
    ] {
        let mut b = body.clone();
        b[field] = value;
        let e = parse_count_tokens(&serde_json::to_vec(&b).unwrap()).unwrap_err();
        assert_eq!(
            e.message,
            format!("{field}: Extra inputs are not permitted")
        );
    }
    let e = parse_count_tokens(br#"{"model":"m","messages":[{"role":"user","content":5}]}"#)
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages.0.content"));
}

fn hub_err(body: Value) -> ApiError {
    let p = parse(&body).unwrap_or_else(|e| panic!("parse: {e:?}"));
    to_hub(p.body(), "up").unwrap_err()
}

#[test]
fn what_to_hub_refuses() {
    let cases: &[(Value, &str)] = &[
        (
            with("output_config", json!({"effort": "extreme"})),
            "output_config.effort",
        ),
        (
            with(
                "output_config",
                json!({"format": {"type": "regex", "pattern": "x"}}),
            ),
            "output_config.format.type",
        ),
        (
            with("output_config", json!({"format": {"type": "json_schema"}})),
            "output_config.format.schema",
        ),
        (
            with("output_format", json!({"type": "json_schema"})),
            "output_format.schema",
        ),
        (with("max_tokens", json!(5_000_000_000u64)), "max_tokens"),
        (
            user(json!([{"type": "document", "source": {"type": "file", "file_id": "f"}}])),
            "messages.0.content.0.source",
        ),
        (
            user(
                json!([{"type": "document", "source": {"type": "content", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}]}}]),
            ),
            "messages.0.content.0.source.content.0",
        ),
        (
            user(json!([{"type": "thinking", "thinking": "x", "signature": "s"}])),
            "messages.0.content.0",
        ),
        (
            user(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "search_result", "source": "s", "title": "t", "content": []}]}]),
            ),
            "messages.0.content.0.content.0.type",
        ),
        (
            with(
                "messages",
                json!([{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]),
            ),
            "messages.1.content.0",
        ),
        (
            user(json!([{"type": "web_search_tool_result", "tool_use_id": "s", "content": []}])),
            "messages.0.content.0",
        ),
    ];
    for (body, param) in cases {
        let e = hub_err(body.clone());
        assert_eq!(
            (e.status, e.param.as_deref()),
            (400, Some(*param)),
            "{}",
            e.message
        );
        assert!(
            e.message.starts_with(&format!("{param}: ")),
            "{}",
            e.message
        );
    }
}

#[test]
fn integers_written_as_floats_reach_the_hub_as_integers() {
    // Found by the request_anthropic fuzz target: `top_k` went to the hub
    // as written, so `40.0` (valid here, as for Anthropic) was refused by
    // the Gemini egress and sent to OpenAI-compatible providers as a float.
    let body = json!({"model": "m", "max_tokens": 64.0, "top_k": 40.0,
        "thinking": {"type": "enabled", "budget_tokens": 2048.0},
        "messages": [{"role": "user", "content": "x"}]});
    let p = parse(&body).unwrap();
    let hub = to_hub(p.body(), "up").unwrap();
    assert_eq!(hub.max_tokens, Some(64));
    assert_eq!(hub.reasoning_effort.as_deref(), Some("low"));
    assert_eq!(hub.extra.get("top_k"), Some(&json!(40)));
    assert!(hub.extra["top_k"].is_u64());
}

#[test]
fn to_hub_and_facts_never_panic_on_unvalidated_bodies() {
    let odd = [
        json!({}),
        json!({"messages": "x", "system": 5, "tools": "t", "tool_choice": 1, "max_tokens": -3}),
        json!({"messages": [1, null, {"role": "user"}, {"role": "user", "content": [1, {"type": 2}]}]}),
        json!({"messages": [{"role": "assistant", "content": [{"type": "tool_use"}, {"type": "thinking"}]}], "tools": [{}, {"name": 1}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "content": [null]}]}], "thinking": {"type": "enabled", "budget_tokens": "x"}}),
        json!({"metadata": {"user_id": 1}, "output_config": {"effort": 1, "format": 2}, "stop_sequences": [1, "a"]}),
    ];
    for body in odd {
        let body: Map<String, Value> = body.as_object().unwrap().clone();
        let _ = to_hub(&body, "up");
        let _ = facts(&body);
    }
}

#[test]
fn facts_of_a_body() {
    let body = json!({"model": "m", "max_tokens": 77,
    "system": [{"type": "text", "text": "abcd"}, {"type": "text", "text": "efgh"}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}, {"type": "text", "text": "words"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "not counted", "signature": "s"}, {"type": "text", "text": "ok"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "result"}]}]}
    ]});
    let f = facts(body.as_object().unwrap());
    // 8 (system) + 10 + 2 + 6 = 26 bytes → 7 tokens, + 4 × 3 messages.
    assert_eq!(f.prompt_tokens, 19);
    assert_eq!(f.messages, 3);
    assert_eq!(f.max_tokens, Some(77));
    assert_eq!(f.last_user_text, "first words");
}

#[test]
fn null_tools_are_no_tools_in_the_facts() {
    // Found by the request_anthropic fuzz target: `"tools": null` counted
    // as the 4 bytes of `null` in the prompt estimate (and so in the
    // count_tokens answer), though null counts as absent.
    // (`with` leaves a null field out.)
    let without = with("tools", Value::Null);
    let mut null = without.as_object().unwrap().clone();
    null.insert("tools".into(), Value::Null);
    assert!(parse_request(&serde_json::to_vec(&null).unwrap()).is_ok());
    assert_eq!(facts(&null), facts(without.as_object().unwrap()));
}
