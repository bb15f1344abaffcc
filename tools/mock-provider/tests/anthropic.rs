mod common;

use common::*;
use serde_json::{json, Value};

const H: [(&str, &str); 3] = [
    ("x-api-key", "sk-ant-test"),
    ("anthropic-version", "2023-06-01"),
    JSON,
];

fn body() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Tell me a joke"}]
    })
}

fn with(mut b: Value, key: &str, v: Value) -> Value {
    b[key] = v;
    b
}

#[test]
fn non_stream_exact() {
    let s = Server::start();
    let r = s.post("/v1/messages", &H, &body());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "id": "msg_mock_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hello from mock-provider! You said: Tell me a joke"}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 6, "output_tokens": 9,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        })
    );
}

#[test]
fn stream_exact_sequence() {
    let s = Server::start();
    let r = s.post(
        "/v1/messages",
        &[H[0], H[1], ("x-mock-content", "Why did the chicken")],
        &with(body(), "stream", json!(true)),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let events = anthropic_events(&r.text());
    let expected = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_mock_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 6, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": "Why did "}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": "the chic"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": "ken"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
                                 "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                                 "usage": {"output_tokens": 4}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let expected: Vec<(String, Value)> = expected
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    assert_eq!(events, expected);
    assert!(r
        .text()
        .starts_with("event: message_start\ndata: {\"type\":\"message_start\""));
}

#[test]
fn max_tokens_truncates() {
    let s = Server::start();
    let b = with(body(), "max_tokens", json!(4));
    let v = s.post("/v1/messages", &H, &b).json();
    assert_eq!(v["content"][0]["text"], "Hello from mock-provider! You");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 4);

    let events = anthropic_events(
        &s.post("/v1/messages", &H, &with(b, "stream", json!(true)))
            .text(),
    );
    let text: String = events
        .iter()
        .filter_map(|(_, e)| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock-provider! You");
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 4);
}

#[test]
fn stop_sequences() {
    let s = Server::start();
    let v = s
        .post(
            "/v1/messages",
            &H,
            &with(body(), "stop_sequences", json!(["said", "mock"])),
        )
        .json();
    assert_eq!(v["content"][0]["text"], "Hello from ");
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert_eq!(v["stop_sequence"], "mock");
}

#[test]
fn thinking_block_only_when_enabled() {
    let s = Server::start();
    let h = [
        H[0],
        H[1],
        ("x-mock-reasoning", "Let me think about it."),
        ("x-mock-content", "Done."),
    ];
    // Not enabled: no thinking block.
    let v = s.post("/v1/messages", &h, &body()).json();
    assert_eq!(v["content"].as_array().expect("content").len(), 1);

    let b = with(
        body(),
        "thinking",
        json!({"type": "enabled", "budget_tokens": 1024}),
    );
    let b = with(b, "max_tokens", json!(2048));
    let v = s.post("/v1/messages", &h, &b).json();
    let content = v["content"].as_array().expect("content");
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["thinking"], "Let me think about it.");
    assert!(content[0]["signature"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(content[1], json!({"type": "text", "text": "Done."}));
    assert_eq!(v["usage"]["output_tokens"], 6);

    let r = s.post("/v1/messages", &h, &with(b, "stream", json!(true)));
    let events = anthropic_events(&r.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[1].1["content_block"]["type"], "thinking");
    let thinking: String = events
        .iter()
        .filter_map(|(_, e)| e["delta"]["thinking"].as_str())
        .collect();
    assert_eq!(thinking, "Let me think about it.");
    assert_eq!(events[6].1["delta"]["type"], "signature_delta");
    assert_eq!(events[6].1["delta"]["signature"], content[0]["signature"]);
    assert_eq!(events[8].1["index"], 1);
    assert_eq!(
        events[9].1["delta"],
        json!({"type": "text_delta", "text": "Done."})
    );
}

#[test]
fn tool_use() {
    let s = Server::start();
    let h = [
        H[0],
        H[1],
        ("x-mock-tool-call", "get_weather"),
        ("x-mock-tool-args", r#"{"location": "San Francisco, CA"}"#),
    ];
    let v = s.post("/v1/messages", &h, &body()).json();
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather",
                "input": {"location": "San Francisco, CA"}}])
    );
    assert_eq!(v["stop_reason"], "tool_use");

    let events = anthropic_events(
        &s.post("/v1/messages", &h, &with(body(), "stream", json!(true)))
            .text(),
    );
    assert_eq!(
        events[1].1,
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "tool_use", "id": "toolu_mock_2", "name": "get_weather", "input": {}}})
    );
    let partial: Vec<&str> = events
        .iter()
        .filter(|(_, e)| e["delta"]["type"] == "input_json_delta")
        .map(|(_, e)| e["delta"]["partial_json"].as_str().expect("partial_json"))
        .collect();
    assert!(partial.len() > 1, "arguments are streamed in pieces");
    let joined: String = partial.concat();
    let parsed: Value = serde_json::from_str(&joined).expect("concatenated partial_json is JSON");
    assert_eq!(parsed, json!({"location": "San Francisco, CA"}));
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "tool_use"
    );

    let r = s.post(
        "/v1/messages",
        &[
            H[0],
            H[1],
            ("x-mock-tool-call", "f"),
            ("x-mock-tool-args", "[1]"),
        ],
        &body(),
    );
    assert_eq!(r.status, 400);
}

fn assert_invalid(s: &Server, b: Value, message: &str) {
    let r = s.post("/v1/messages", &H, &b);
    assert_eq!(r.status, 400, "{b}: {}", r.text());
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
        "{b}"
    );
}

#[test]
fn validation_errors() {
    let s = Server::start();
    let user = json!([{"role": "user", "content": "hi"}]);
    assert_invalid(
        &s,
        json!({"max_tokens": 5, "messages": user}),
        "model: Field required",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "messages": user}),
        "max_tokens: Field required",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 0, "messages": user}),
        "max_tokens: Input should be greater than or equal to 1",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": "5", "messages": user}),
        "max_tokens: Input should be a valid integer",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5}),
        "messages: Field required",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5, "messages": []}),
        "messages: at least one message is required",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]}),
        "messages: first message must use the \"user\" role",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}),
        "messages.0.role: Input should be 'user' or 'assistant'",
    );
    assert_invalid(&s, json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}), "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.");
    assert_invalid(&s, json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]}), "messages.0.content.0: Input tag 'video' found using 'type' does not match any of the expected tags: 'text', 'image', 'document', 'search_result', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'");
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]}),
        "messages.0.content.0.text: Field required",
    );
    assert_invalid(&s, json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": ""}]}), "messages.0: all messages must have non-empty content except for the optional final assistant message");
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5, "stream": "yes", "messages": user}),
        "stream: Input should be a valid boolean",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5, "temperature": 1.5, "messages": user}),
        "temperature: Input should be less than or equal to 1",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5, "n": 2, "messages": user}),
        "n: Extra inputs are not permitted",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5, "system": 5, "messages": user}),
        "system: Input should be a valid list",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5, "tools": [{"name": "f"}], "messages": user}),
        "tools.0.custom.input_schema: Field required",
    );
    assert_invalid(&s, json!({"model": "m", "max_tokens": 5, "tool_choice": {"type": "required"}, "messages": user}), "tool_choice: Input tag 'required' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'");
    assert_invalid(
        &s,
        json!({"model": "m", "max_tokens": 5000, "thinking": {"type": "enabled", "budget_tokens": 10}, "messages": user}),
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    );
    assert_invalid(&s, json!({"model": "m", "max_tokens": 1024, "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": user}), "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size");
    assert_invalid(&s, json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
        {"role": "user", "content": "no result"}
    ]}), "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next message.");
    assert_invalid(&s, json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}
    ]}), "messages.0.content: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.");

    // A full valid request with every optional field.
    let ok = json!({
        "model": "m", "max_tokens": 4096,
        "system": [{"type": "text", "text": "sys prompt", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look at"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "result words"}]},
                {"type": "text", "text": "thanks"}
            ]},
            {"role": "assistant", "content": "prefill"}
        ],
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
        "stop_sequences": ["END"],
        "temperature": 1, "top_k": 5,
        "metadata": {"user_id": "u1"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "stream": false
    });
    let r = s.post("/v1/messages", &H, &ok);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    // sys prompt(2) + look at(2) + result words(2) + thanks(1) + prefill(1)
    assert_eq!(v["usage"]["input_tokens"], 8);
    assert_eq!(
        v["content"][0]["text"],
        "Hello from mock-provider! You said: thanks"
    );
}

#[test]
fn auth_and_version_headers() {
    let s = Server::start_with(&["--api-key", "sk-ant-right"]);
    let b = body();
    let r = s.post("/v1/messages", &[("anthropic-version", "2023-06-01")], &b);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "x-api-key header is required"}})
    );
    let r = s.post(
        "/v1/messages",
        &[("x-api-key", "nope"), ("anthropic-version", "2023-06-01")],
        &b,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
    );
    let r = s.post("/v1/messages", &[("x-api-key", "sk-ant-right")], &b);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic-version: header is required"}})
    );
    let r = s.post(
        "/v1/messages",
        &[
            ("x-api-key", "sk-ant-right"),
            ("anthropic-version", "2023-06-01"),
        ],
        &b,
    );
    assert_eq!(r.status, 200);

    // Without --api-key, any key is fine but one is required.
    let s = Server::start();
    assert_eq!(
        s.post("/v1/messages", &[("anthropic-version", "2023-06-01")], &b)
            .status,
        401
    );
    assert_eq!(s.post("/v1/messages", &H, &b).status, 200);
}

#[test]
fn default_mock_errors_are_anthropic_shaped() {
    let s = Server::start();
    let r = s.post(
        "/v1/messages",
        &[H[0], H[1], ("x-mock-status", "529")],
        &body(),
    );
    assert_eq!(r.status, 529);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    let r = s.post(
        "/v1/messages",
        &[H[0], H[1], ("x-mock-status", "429")],
        &body(),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    let r = s.post(
        "/v1/messages",
        &[H[0], H[1], ("x-mock-status", "500")],
        &body(),
    );
    assert_eq!(r.json()["error"]["type"], "api_error");
}

#[test]
fn count_tokens_and_unknown_paths() {
    let s = Server::start();
    let r = s.post(
        "/v1/messages/count_tokens",
        &H,
        &json!({"model": "m", "system": "a b", "messages": [{"role": "user", "content": "c d e"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"input_tokens": 5}));
    let r = s.request("GET", "/v1/messages", &H, "");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
}
