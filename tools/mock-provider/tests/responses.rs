mod common;

use common::*;
use serde_json::{json, Value};

fn body() -> Value {
    json!({
        "model": "gpt-4.1-mini",
        "instructions": "Be terse.",
        "input": [
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": [
                {"type": "input_text", "text": "What is"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                {"type": "input_text", "text": " the weather?"}
            ]}
        ]
    })
}

fn with(mut b: Value, key: &str, v: Value) -> Value {
    b[key] = v;
    b
}

fn mask_created_at(v: &mut Value) {
    let c = &mut v["created_at"];
    assert!(
        c.as_u64().is_some_and(|t| t > 1_600_000_000),
        "created_at is a unix time"
    );
    *c = json!(0);
}

/// The `response` object with everything the request did not set at its default.
fn expected_response(status: &str, output: Value, usage: Value) -> Value {
    json!({
        "id": "resp_mock_1",
        "object": "response",
        "created_at": 0,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": "Be terse.",
        "max_output_tokens": null,
        "max_tool_calls": null,
        "model": "gpt-4.1-mini",
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "service_tier": "default",
        "store": true,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": null,
        "metadata": {}
    })
}

const REPLY: &str = "Hello from mock-provider! You said: What is the weather?";

#[test]
fn non_stream_exact() {
    let s = Server::start();
    let r = s.post(
        "/v1/responses",
        &[JSON, ("authorization", "Bearer sk-test")],
        &body(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let mut v = r.json();
    mask_created_at(&mut v);
    assert_eq!(
        v,
        expected_response(
            "completed",
            json!([{
                "id": "msg_mock_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": REPLY, "annotations": []}]
            }]),
            // Input: 2 (instructions) + 3 (developer) + 4 (user) words; output: 9 words.
            json!({"input_tokens": 9, "input_tokens_details": {"cached_tokens": 0},
                   "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 0},
                   "total_tokens": 18})
        )
    );
    // Any path ending in /responses; a plain string input.
    let r = s.post(
        "/api/v1/responses",
        &[],
        &json!({"model": "m", "input": "hi there"}),
    );
    let v = r.json();
    assert_eq!(v["id"], "resp_mock_2");
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "Hello from mock-provider! You said: hi there"
    );
    assert_eq!(v["usage"]["input_tokens"], 2);
}

#[test]
fn stream_exact_sequence() {
    let s = Server::start();
    let r = s.post(
        "/v1/responses",
        &[("x-mock-content", "Hi there, friend")],
        &with(body(), "stream", json!(true)),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert!(r.chunked && r.complete);
    let events = responses_events(&r.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let mut created = events[0].1["response"].clone();
    mask_created_at(&mut created);
    assert_eq!(
        created,
        expected_response("in_progress", json!([]), Value::Null)
    );
    assert_eq!(events[1].1["response"]["status"], "in_progress");
    assert_eq!(
        events[2].1,
        json!({"type": "response.output_item.added", "output_index": 0,
               "item": {"id": "msg_mock_1", "type": "message", "role": "assistant",
                        "status": "in_progress", "content": []},
               "sequence_number": 2})
    );
    assert_eq!(
        events[3].1,
        json!({"type": "response.content_part.added", "item_id": "msg_mock_1", "output_index": 0,
               "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []},
               "sequence_number": 3})
    );
    assert_eq!(
        events[4].1,
        json!({"type": "response.output_text.delta", "item_id": "msg_mock_1", "output_index": 0,
               "content_index": 0, "delta": "Hi there", "sequence_number": 4})
    );
    assert_eq!(events[5].1["delta"], ", friend");
    assert_eq!(
        events[6].1,
        json!({"type": "response.output_text.done", "item_id": "msg_mock_1", "output_index": 0,
               "content_index": 0, "text": "Hi there, friend", "sequence_number": 6})
    );
    assert_eq!(events[7].1["part"]["text"], "Hi there, friend");
    let item = json!({"id": "msg_mock_1", "type": "message", "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": "Hi there, friend", "annotations": []}]});
    assert_eq!(events[8].1["item"], item);
    let mut done = events[9].1["response"].clone();
    mask_created_at(&mut done);
    assert_eq!(
        done,
        expected_response(
            "completed",
            json!([item]),
            json!({"input_tokens": 9, "input_tokens_details": {"cached_tokens": 0},
                   "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0},
                   "total_tokens": 12})
        )
    );
    // No [DONE] sentinel.
    assert!(!r.text().contains("[DONE]"));
}

#[test]
fn function_call() {
    let s = Server::start();
    let h = [
        ("x-mock-tool-call", "get_weather"),
        ("x-mock-tool-args", r#"{"city":"Paris"}"#),
    ];
    let b = with(
        body(),
        "tools",
        json!([{"type": "function", "name": "get_weather", "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": true}]),
    );
    let v = s.post("/v1/responses", &h, &b).json();
    assert_eq!(
        v["output"],
        json!([{"id": "fc_mock_1", "type": "function_call", "status": "completed",
                "arguments": "{\"city\":\"Paris\"}", "call_id": "call_mock_1", "name": "get_weather"}])
    );
    assert_eq!(v["status"], "completed");
    assert_eq!(v["tools"], b["tools"]);
    // name (1 word) + arguments (1 word).
    assert_eq!(v["usage"]["output_tokens"], 2);

    let r = s.post("/v1/responses", &h, &with(b, "stream", json!(true)));
    let events = responses_events(&r.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(
        events[2].1["item"],
        json!({"id": "fc_mock_2", "type": "function_call", "status": "in_progress",
               "arguments": "", "call_id": "call_mock_2", "name": "get_weather"})
    );
    assert_eq!(
        events[3].1,
        json!({"type": "response.function_call_arguments.delta", "item_id": "fc_mock_2",
               "output_index": 0, "delta": "{\"city\":", "sequence_number": 3})
    );
    assert_eq!(
        events[5].1,
        json!({"type": "response.function_call_arguments.done", "item_id": "fc_mock_2",
               "output_index": 0, "arguments": "{\"city\":\"Paris\"}", "sequence_number": 5})
    );
    assert_eq!(events[6].1["item"]["status"], "completed");
    assert_eq!(
        events[7].1["response"]["output"][0]["call_id"],
        "call_mock_2"
    );
}

#[test]
fn reasoning_item_comes_first() {
    let s = Server::start();
    let h = [
        ("x-mock-reasoning", "Think it over"),
        ("x-mock-content", "ok"),
    ];
    let b = with(
        body(),
        "reasoning",
        json!({"effort": "low", "summary": "auto"}),
    );
    let v = s.post("/v1/responses", &h, &b).json();
    assert_eq!(
        v["output"][0],
        json!({"id": "rs_mock_1", "type": "reasoning",
               "summary": [{"type": "summary_text", "text": "Think it over"}]})
    );
    assert_eq!(v["output"][1]["content"][0]["text"], "ok");
    assert_eq!(v["reasoning"], json!({"effort": "low", "summary": "auto"}));
    assert_eq!(v["usage"]["output_tokens"], 4);
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 3);

    let r = s.post("/v1/responses", &h, &with(b, "stream", json!(true)));
    let events = responses_events(&r.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..9],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
        ]
    );
    assert_eq!(
        events[4].1,
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_mock_2",
               "output_index": 0, "summary_index": 0, "delta": "Think it", "sequence_number": 4})
    );
    assert_eq!(events[6].1["text"], "Think it over");
    // The message is output 1.
    assert_eq!(events[9].1["output_index"], 1);
    assert_eq!(events[9].1["item"]["type"], "message");
}

#[test]
fn max_output_tokens_makes_it_incomplete() {
    let s = Server::start();
    let words: Vec<String> = (1..=20).map(|i| format!("w{i}")).collect();
    let content = words.join(" ");
    let h = [("x-mock-content", content.as_str())];
    let b = with(body(), "max_output_tokens", json!(16));
    let v = s.post("/v1/responses", &h, &b).json();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(
        v["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(v["max_output_tokens"], 16);
    assert_eq!(v["output"][0]["status"], "incomplete");
    assert_eq!(v["output"][0]["content"][0]["text"], words[..16].join(" "));
    assert_eq!(v["usage"]["output_tokens"], 16);

    let r = s.post("/v1/responses", &h, &with(b, "stream", json!(true)));
    let events = responses_events(&r.text());
    let (name, last) = events.last().expect("events");
    assert_eq!(name, "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(events[events.len() - 2].1["item"]["status"], "incomplete");

    // Long enough: completed.
    let v = s
        .post(
            "/v1/responses",
            &[],
            &with(body(), "max_output_tokens", json!(100)),
        )
        .json();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["incomplete_details"], Value::Null);
}

#[test]
fn tool_round_trip_input_items() {
    let s = Server::start();
    let b = json!({
        "model": "m",
        "input": [
            {"role": "user", "content": "weather in Paris?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny and warm"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is sunny."}]},
            {"type": "reasoning", "id": "rs_1", "summary": []}
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": false,
        "store": false,
        "temperature": 0.2,
        "top_p": 0.9,
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
        "metadata": {"run": "1"},
        "user": "u-1",
        "include": ["reasoning.encrypted_content"]
    });
    let r = s.post("/v1/responses", &[], &b);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    // Last user text; input words: 3 (user) + 3 (tool output) + 3 (assistant).
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "Hello from mock-provider! You said: weather in Paris?"
    );
    assert_eq!(v["usage"]["input_tokens"], 9);
    for key in [
        "tool_choice",
        "parallel_tool_calls",
        "store",
        "temperature",
        "top_p",
        "text",
        "metadata",
        "user",
    ] {
        assert_eq!(v[key], b[key], "{key} is echoed");
    }
}

fn assert_invalid(s: &Server, b: Value, param: &str, code: Option<&str>, message: &str) {
    let r = s.post("/v1/responses", &[], &b);
    assert_eq!(r.status, 400, "{b}");
    let e = &r.json()["error"];
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(e["param"], param, "{e}");
    assert_eq!(e["code"].as_str(), code, "{e}");
    assert_eq!(e["message"], message, "{e}");
}

#[test]
fn validation_errors() {
    let s = Server::start();
    assert_invalid(
        &s,
        with(body(), "messages", json!([])),
        "messages",
        Some("unknown_parameter"),
        "Unknown parameter: 'messages'.",
    );
    assert_invalid(
        &s,
        json!({"input": "x"}),
        "model",
        Some("missing_required_parameter"),
        "Missing required parameter: 'model'.",
    );
    assert_invalid(
        &s,
        json!({"model": "m"}),
        "input",
        Some("missing_required_parameter"),
        "Missing required parameter: 'input'.",
    );
    assert_invalid(
        &s,
        json!({"model": 5, "input": "x"}),
        "model",
        Some("invalid_type"),
        "Invalid type for 'model': expected a string, but got an integer instead.",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "input": {"role": "user"}}),
        "input",
        Some("invalid_type"),
        "Invalid type for 'input': expected one of a string or array of input items, but got an object instead.",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
        "input[0].role",
        Some("invalid_value"),
        "Invalid value: 'tool'. Supported values are: 'user', 'system', 'developer', and 'assistant'.",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]}),
        "input[0].content[0].type",
        Some("invalid_value"),
        "Invalid value: 'output_text'. Supported values are: 'input_text', 'input_image', and 'input_file'.",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "input": [{"role": "user"}]}),
        "input[0].content",
        Some("missing_required_parameter"),
        "Missing required parameter: 'input[0].content'.",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}),
        "input[0].call_id",
        Some("missing_required_parameter"),
        "Missing required parameter: 'input[0].call_id'.",
    );
    assert_invalid(
        &s,
        json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f"}]}),
        "input[0].arguments",
        Some("missing_required_parameter"),
        "Missing required parameter: 'input[0].arguments'.",
    );
    assert_invalid(
        &s,
        with(body(), "max_output_tokens", json!(5)),
        "max_output_tokens",
        Some("integer_below_min_value"),
        "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got 5 instead.",
    );
    assert_invalid(
        &s,
        with(body(), "temperature", json!("hot")),
        "temperature",
        Some("invalid_type"),
        "Invalid type for 'temperature': expected a decimal, but got a string instead.",
    );
    assert_invalid(
        &s,
        with(body(), "stream", json!("yes")),
        "stream",
        Some("invalid_type"),
        "Invalid type for 'stream': expected a boolean, but got a string instead.",
    );
    assert_invalid(
        &s,
        with(body(), "tools", json!([{"type": "function"}])),
        "tools[0].name",
        Some("missing_required_parameter"),
        "Missing required parameter: 'tools[0].name'.",
    );
    assert_invalid(
        &s,
        with(body(), "tool_choice", json!("sometimes")),
        "tool_choice",
        Some("invalid_value"),
        "Invalid value: 'sometimes'. Supported values are: 'none', 'auto', and 'required'.",
    );
    assert_invalid(
        &s,
        with(body(), "reasoning", json!({"effort": "extreme"})),
        "reasoning.effort",
        Some("invalid_value"),
        "Invalid value: 'extreme'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'.",
    );
    assert_invalid(
        &s,
        with(
            body(),
            "text",
            json!({"format": {"type": "json_schema", "name": "x"}}),
        ),
        "text.format.schema",
        Some("missing_required_parameter"),
        "Missing required parameter: 'text.format.schema'.",
    );
    assert_invalid(
        &s,
        with(body(), "metadata", json!({"n": 1})),
        "metadata.n",
        Some("invalid_type"),
        "Invalid type for 'metadata.n': expected a string, but got an integer instead.",
    );
    assert_invalid(
        &s,
        with(body(), "previous_response_id", json!("resp_abc")),
        "previous_response_id",
        Some("previous_response_not_found"),
        "Previous response with id 'resp_abc' not found.",
    );
    assert_invalid(
        &s,
        with(
            body(),
            "stream_options",
            json!({"include_obfuscation": false}),
        ),
        "stream_options",
        None,
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
    );
    // Not JSON.
    let r = s.request("POST", "/v1/responses", &[], "nope");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    // Wrong method.
    let r = s.request("GET", "/v1/responses", &[], "");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["error"]["message"],
        "Invalid URL (GET /v1/responses)"
    );
}

#[test]
fn bearer_auth_like_chat() {
    let s = Server::start_with(&["--api-key", "sk-right"]);
    let r = s.post(
        "/v1/responses",
        &[("authorization", "Bearer sk-wrong-key-1")],
        &body(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    let r = s.post("/v1/responses", &[], &body());
    assert_eq!(r.status, 401);
    let r = s.post(
        "/v1/responses",
        &[("authorization", "Bearer sk-right")],
        &body(),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn knobs_apply() {
    let s = Server::start();
    let stream = with(body(), "stream", json!(true));
    // Status, in OpenAI's format, with retry-after.
    let r = s.post(
        "/v1/responses",
        &[("x-mock-status", "429"), ("x-mock-retry-after", "3")],
        &body(),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(r.header("retry-after"), Some("3"));
    // Chunk size.
    let r = s.post(
        "/v1/responses",
        &[("x-mock-content", "abcdef"), ("x-mock-chunk-chars", "2")],
        &stream,
    );
    let deltas: Vec<String> = responses_events(&r.text())
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(deltas, ["ab", "cd", "ef"]);
    // Reset after 3 events.
    let r = s.post("/v1/responses", &[("x-mock-reset-after", "3")], &stream);
    assert!(!r.complete);
    assert_eq!(
        String::from_utf8_lossy(&r.body).matches("event: ").count(),
        3
    );
    // Split frames.
    let r = s.post("/v1/responses", &[("x-mock-split-bytes", "9")], &stream);
    assert!(r.chunks[..r.chunks.len() - 1].iter().all(|c| c.len() == 9));
    responses_events(&r.text());
}
