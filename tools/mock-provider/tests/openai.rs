mod common;

use common::*;
use serde_json::{json, Value};

fn chat_body() -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the weather?"}
        ]
    })
}

#[test]
fn non_stream_chat_completion_exact() {
    let s = Server::start();
    let r = s.post(
        "/v1/chat/completions",
        &[JSON, ("authorization", "Bearer sk-test")],
        &chat_body(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.header("content-length").is_some(),
        "non-stream answers are not chunked"
    );
    let mut v = r.json();
    mask_created(&mut v);
    assert_eq!(
        v,
        json!({
            "id": "chatcmpl-mock-1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello from mock-provider! You said: What is the weather?",
                    "refusal": null
                },
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16},
            "system_fingerprint": "fp_mock"
        })
    );
    // Field order follows OpenAI's.
    assert!(r
        .text()
        .starts_with("{\"id\":\"chatcmpl-mock-1\",\"object\":\"chat.completion\""));
}

#[test]
fn content_arrays_are_concatenated_and_ids_count_up() {
    let s = Server::start();
    let body = json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "one two"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": " three"}
        ]}]
    });
    let r1 = s.post("/v1/chat/completions", &[], &body);
    let r2 = s.post("/v1/chat/completions", &[], &body);
    let v = r2.json();
    assert_eq!(r1.json()["id"], "chatcmpl-mock-1");
    assert_eq!(v["id"], "chatcmpl-mock-2");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock-provider! You said: one two three"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 3);
}

#[test]
fn all_provider_prefixes_are_openai_compatible() {
    let s = Server::start();
    for prefix in [
        "/v1",
        "/compatible-mode/v1",
        "/api/paas/v4",
        "/api/v3",
        "/v2",
        "/openai/v1",
        "/api/v1",
        "",
    ] {
        let r = s.post(&format!("{prefix}/chat/completions"), &[], &chat_body());
        assert_eq!(r.status, 200, "{prefix}");
        assert_eq!(r.json()["object"], "chat.completion");
    }
}

#[test]
fn stream_exact_sequence_without_usage() {
    let s = Server::start();
    let mut body = chat_body();
    body["stream"] = json!(true);
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-content", "Hi there, friend")],
        &body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert!(r.chunked && r.complete);
    let mut events = openai_events(&r.text());
    for e in &mut events {
        mask_created(e);
        assert!(
            e.get("usage").is_none(),
            "no usage key unless include_usage"
        );
    }
    let base = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-mock-1", "object": "chat.completion.chunk", "created": 0,
               "model": "gpt-4o-mini", "system_fingerprint": "fp_mock",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    assert_eq!(
        events,
        vec![
            base(
                json!({"role": "assistant", "content": "", "refusal": null}),
                Value::Null
            ),
            base(json!({"content": "Hi there"}), Value::Null),
            base(json!({"content": ", friend"}), Value::Null),
            base(json!({}), json!("stop")),
        ]
    );
}

#[test]
fn stream_with_include_usage() {
    let s = Server::start();
    let mut body = chat_body();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = s.post("/v1/chat/completions", &[], &body);
    let events = openai_events(&r.text());
    let (last, rest) = events.split_last().expect("events");
    for e in rest {
        assert_eq!(e["usage"], Value::Null);
        assert!(e.as_object().expect("obj").contains_key("usage"));
        assert_eq!(e["choices"].as_array().expect("choices").len(), 1);
    }
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16})
    );
    assert_eq!(rest[rest.len() - 1]["choices"][0]["finish_reason"], "stop");
    let text: String = rest
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        text,
        "Hello from mock-provider! You said: What is the weather?"
    );
}

#[test]
fn max_tokens_truncates_with_finish_reason_length() {
    let s = Server::start();
    let mut body = chat_body();
    body["max_completion_tokens"] = json!(3);
    let v = s.post("/v1/chat/completions", &[], &body).json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock-provider!"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);

    body["max_completion_tokens"] = Value::Null;
    body["max_tokens"] = json!(2);
    body["stream"] = json!(true);
    let events = openai_events(&s.post("/v1/chat/completions", &[], &body).text());
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from");
    assert_eq!(
        events.last().expect("last")["choices"][0]["finish_reason"],
        "length"
    );
}

#[test]
fn tool_call_non_stream_and_stream() {
    let s = Server::start();
    let h = [
        ("x-mock-tool-call", "get_weather"),
        ("x-mock-tool-args", r#"{"city":"Paris"}"#),
    ];
    let v = s.post("/v1/chat/completions", &h, &chat_body()).json();
    assert_eq!(
        v["choices"][0],
        json!({"index": 0,
               "message": {"role": "assistant", "content": null,
                           "tool_calls": [{"id": "call_mock_1", "type": "function",
                                           "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}],
                           "refusal": null},
               "logprobs": null, "finish_reason": "tool_calls"})
    );

    let mut body = chat_body();
    body["stream"] = json!(true);
    let events = openai_events(&s.post("/v1/chat/completions", &h, &body).text());
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null,
               "tool_calls": [{"index": 0, "id": "call_mock_2", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}],
               "refusal": null})
    );
    let args: String = events[1..]
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, r#"{"city":"Paris"}"#);
    assert_eq!(
        events.last().expect("last")["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // Default arguments are "{}".
    let v = s
        .post(
            "/v1/chat/completions",
            &[("x-mock-tool-call", "ping")],
            &chat_body(),
        )
        .json();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["id"],
        "call_mock_3"
    );
}

#[test]
fn reasoning_content_deepseek_style() {
    let s = Server::start();
    let h = [
        ("x-mock-reasoning", "Think first."),
        ("x-mock-content", "Answer."),
    ];
    let v = s.post("/v1/chat/completions", &h, &chat_body()).json();
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "Answer.", "reasoning_content": "Think first.", "refusal": null})
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
               "completion_tokens_details": {"reasoning_tokens": 2}})
    );

    let mut body = chat_body();
    body["stream"] = json!(true);
    let events = openai_events(&s.post("/v1/chat/completions", &h, &body).text());
    let deltas: Vec<&Value> = events.iter().map(|e| &e["choices"][0]["delta"]).collect();
    assert_eq!(
        deltas[0],
        &json!({"role": "assistant", "content": "", "refusal": null})
    );
    assert_eq!(
        deltas[1],
        &json!({"content": null, "reasoning_content": "Think fi"})
    );
    assert_eq!(
        deltas[2],
        &json!({"content": null, "reasoning_content": "rst."})
    );
    assert_eq!(deltas[3], &json!({"content": "Answer."}));
    assert_eq!(deltas[4], &json!({}));
}

#[test]
fn stop_sequences_cut_the_reply() {
    let s = Server::start();
    let mut body = chat_body();
    body["stop"] = json!(["!"]);
    let v = s.post("/v1/chat/completions", &[], &body).json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock-provider"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

fn assert_error(r: &Resp, status: u16, message_prefix: &str, param: Value, code: Value) {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    let e = &v["error"];
    assert_eq!(e["type"], "invalid_request_error", "{v}");
    assert!(
        e["message"]
            .as_str()
            .expect("message")
            .starts_with(message_prefix),
        "{} does not start with {message_prefix}",
        e["message"]
    );
    assert_eq!(e["param"], param, "{v}");
    assert_eq!(e["code"], code, "{v}");
    assert_eq!(e.as_object().expect("obj").len(), 4);
}

#[test]
fn validation_errors() {
    let s = Server::start();
    let p = "/v1/chat/completions";
    let r = s.request("POST", p, &[], "{not json");
    assert_error(
        &r,
        400,
        "We could not parse the JSON body of your request.",
        Value::Null,
        Value::Null,
    );
    let r = s.request("POST", p, &[], "[1,2]");
    assert_error(
        &r,
        400,
        "Invalid type for request body",
        Value::Null,
        json!("invalid_type"),
    );
    let r = s.post(
        p,
        &[],
        &json!({"messages": [{"role": "user", "content": "x"}]}),
    );
    assert_error(
        &r,
        400,
        "you must provide a model parameter",
        Value::Null,
        Value::Null,
    );
    let r = s.post(
        p,
        &[],
        &json!({"model": "", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_error(
        &r,
        400,
        "you must provide a model parameter",
        Value::Null,
        Value::Null,
    );
    let r = s.post(
        p,
        &[],
        &json!({"model": 5, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_error(
        &r,
        400,
        "Invalid type for 'model': expected a string, but got an integer instead.",
        json!("model"),
        json!("invalid_type"),
    );
    let r = s.post(p, &[], &json!({"model": "m"}));
    assert_error(
        &r,
        400,
        "Missing required parameter: 'messages'.",
        json!("messages"),
        json!("missing_required_parameter"),
    );
    let r = s.post(p, &[], &json!({"model": "m", "messages": []}));
    assert_error(
        &r,
        400,
        "Invalid 'messages': empty array.",
        json!("messages"),
        json!("empty_array"),
    );
    let r = s.post(p, &[], &json!({"model": "m", "messages": "hi"}));
    assert_error(
        &r,
        400,
        "Invalid type for 'messages'",
        json!("messages"),
        json!("invalid_type"),
    );
    let r = s.post(p, &[], &json!({"model": "m", "messages": ["hi"]}));
    assert_error(
        &r,
        400,
        "Invalid type for 'messages[0]': expected an object, but got a string instead.",
        json!("messages[0]"),
        json!("invalid_type"),
    );
    let r = s.post(
        p,
        &[],
        &json!({"model": "m", "messages": [{"content": "x"}]}),
    );
    assert_error(
        &r,
        400,
        "Missing required parameter: 'messages[0].role'.",
        json!("messages[0].role"),
        json!("missing_required_parameter"),
    );
    let r = s.post(
        p,
        &[],
        &json!({"model": "m", "messages": [{"role": "bot", "content": "x"}]}),
    );
    assert_error(&r, 400, "Invalid value: 'bot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.", json!("messages[0].role"), json!("invalid_value"));
    let r = s.post(
        p,
        &[],
        &json!({"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_error(
        &r,
        400,
        "Invalid type for 'stream': expected a boolean, but got a string instead.",
        json!("stream"),
        json!("invalid_type"),
    );
    let r = s.post(p, &[], &json!({"model": "m", "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "x"}]}));
    assert_error(
        &r,
        400,
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        json!("stream_options"),
        Value::Null,
    );
    let r = s.post(p, &[], &json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "c1", "content": "r"}]}));
    assert_error(&r, 400, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", json!("messages.[1].role"), Value::Null);
    let r = s.post(
        p,
        &[],
        &json!({"model": "m", "temperature": 3, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_error(&r, 400, "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.", json!("temperature"), json!("decimal_above_max_value"));
    let r = s.post(
        p,
        &[],
        &json!({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_error(
        &r,
        400,
        "Invalid 'max_tokens': integer below minimum value.",
        json!("max_tokens"),
        json!("integer_below_min_value"),
    );
    let r = s.post(
        p,
        &[],
        &json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}),
    );
    assert_error(
        &r,
        400,
        "Invalid value: 'video'.",
        json!("messages[0].content[0].type"),
        json!("invalid_value"),
    );

    // A valid tool round trip, all roles.
    let ok = s.post(p, &[], &json!({"model": "m", "messages": [
        {"role": "developer", "content": "d"},
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "result"},
        {"role": "assistant", "content": "a"},
        {"role": "function", "name": "f", "content": "legacy"},
        {"role": "user", "content": "last"}
    ]}));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["usage"]["prompt_tokens"], 7);
}

#[test]
fn auth_without_configured_key() {
    let s = Server::start();
    // Local models (ollama, vllm) send no key at all.
    assert_eq!(
        s.post("/v1/chat/completions", &[], &chat_body()).status,
        200
    );
    assert_eq!(
        s.post(
            "/v1/chat/completions",
            &[("authorization", "Bearer anything")],
            &chat_body()
        )
        .status,
        200
    );
}

#[test]
fn auth_with_configured_key() {
    let s = Server::start_with(&["--api-key", "sk-right-key-123456"]);
    let r = s.post("/v1/chat/completions", &[], &chat_body());
    assert_error(
        &r,
        401,
        "You didn't provide an API key.",
        Value::Null,
        Value::Null,
    );
    let r = s.post(
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-wrong-key-000000")],
        &chat_body(),
    );
    assert_error(
        &r,
        401,
        "Incorrect API key provided: sk-************0000.",
        Value::Null,
        json!("invalid_api_key"),
    );
    let r = s.post(
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-right-key-123456")],
        &chat_body(),
    );
    assert_eq!(r.status, 200);
    let r = s.request("GET", "/v1/models", &[("authorization", "Bearer nope")], "");
    assert_eq!(r.status, 401);
    let r = s.request(
        "GET",
        "/v1/models",
        &[("authorization", "Bearer sk-right-key-123456")],
        "",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn embeddings() {
    let s = Server::start();
    let r = s.post(
        "/v1/embeddings",
        &[],
        &json!({"model": "text-embedding-3-small", "input": "hello big world"}),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let data = v["data"].as_array().expect("data");
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["object"], "embedding");
    assert_eq!(data[0]["index"], 0);
    let vec0: Vec<f64> = data[0]["embedding"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|x| x.as_f64().expect("float"))
        .collect();
    assert_eq!(vec0.len(), 8);

    // Arrays: one vector per input; same text gives the same vector.
    let v = s
        .post(
            "/compatible-mode/v1/embeddings",
            &[],
            &json!({"model": "m", "input": ["a b", "hello big world"]}),
        )
        .json();
    let data = v["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[1]["embedding"], json!(vec0));
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert_eq!(v["usage"]["prompt_tokens"], 5);

    // base64 encoding: 8 little-endian f32 = 32 bytes = 44 base64 chars.
    let v = s
        .post(
            "/v1/embeddings",
            &[],
            &json!({"model": "m", "input": "x", "encoding_format": "base64"}),
        )
        .json();
    assert_eq!(v["data"][0]["embedding"].as_str().expect("b64").len(), 44);

    let r = s.post("/v1/embeddings", &[], &json!({"model": "m"}));
    assert_error(
        &r,
        400,
        "Missing required parameter: 'input'.",
        json!("input"),
        json!("missing_required_parameter"),
    );
    let r = s.post("/v1/embeddings", &[], &json!({"model": "m", "input": []}));
    assert_error(&r, 400, "'$.input' is invalid.", Value::Null, Value::Null);
    let r = s.post("/v1/embeddings", &[], &json!({"input": "x"}));
    assert_error(
        &r,
        400,
        "you must provide a model parameter",
        Value::Null,
        Value::Null,
    );
}

#[test]
fn models_and_unknown_paths() {
    let s = Server::start();
    for path in ["/v1/models", "/api/paas/v4/models"] {
        let r = s.get(path);
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["object"], "list");
        let data = v["data"].as_array().expect("data");
        assert!(data.len() >= 2);
        for m in data {
            assert_eq!(m["object"], "model");
            assert!(m["id"].is_string() && m["created"].is_u64() && m["owned_by"].is_string());
        }
    }
    let r = s.post("/v1/completions", &[], &chat_body());
    assert_error(
        &r,
        404,
        "Invalid URL (POST /v1/completions)",
        Value::Null,
        Value::Null,
    );
    let r = s.get("/v1/chat/completions");
    assert_error(
        &r,
        404,
        "Invalid URL (GET /v1/chat/completions)",
        Value::Null,
        Value::Null,
    );
}

#[test]
fn tool_call_with_reasoning_stream() {
    let s = Server::start();
    let h = [
        ("x-mock-tool-call", "lookup"),
        ("x-mock-tool-args", "{}"),
        ("x-mock-reasoning", "Need data."),
    ];
    let mut body = chat_body();
    body["stream"] = json!(true);
    let events = openai_events(&s.post("/v1/chat/completions", &h, &body).text());
    let deltas: Vec<&Value> = events.iter().map(|e| &e["choices"][0]["delta"]).collect();
    assert_eq!(
        deltas[0],
        &json!({"role": "assistant", "content": null, "refusal": null})
    );
    assert_eq!(
        deltas[1],
        &json!({"content": null, "reasoning_content": "Need dat"})
    );
    assert_eq!(
        deltas[2],
        &json!({"content": null, "reasoning_content": "a."})
    );
    assert_eq!(
        deltas[3],
        &json!({"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function",
                                "function": {"name": "lookup", "arguments": ""}}]})
    );
    assert_eq!(
        deltas[4],
        &json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})
    );
    assert_eq!(deltas[5], &json!({}));
    assert_eq!(events[5]["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn tool_call_once_calls_then_answers_with_the_result() {
    let s = Server::start();
    let h = [
        ("x-mock-tool-call-once", "Bash"),
        ("x-mock-tool-args", r#"{"command":"echo hi"}"#),
    ];
    let first = json!({"model": "m", "messages": [{"role": "user", "content": "run it"}]});
    let v = s.post("/v1/chat/completions", &h, &first).json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "Bash");
    let second = json!({"model": "m", "messages": [
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "hi from the tool"}
    ]});
    let v = s.post("/v1/chat/completions", &h, &second).json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Tool result: hi from the tool"
    );
}
