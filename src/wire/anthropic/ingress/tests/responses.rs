//! `render_response`, `render_count_tokens`, `models_list`.

use super::ctx;
use crate::wire::anthropic::ingress::{
    models_list, render_count_tokens, render_error, render_response,
};
use crate::wire::anthropic::Anthropic;
use crate::wire::hub::{ChatResponse, Choice, FinishReason, ToolCall, Translator, Usage};
use serde_json::{json, Value};

const PROVIDER_RESPONSES: &str =
    include_str!("../../../../../tests/fixtures/anthropic/responses.json");

fn choice(content: Option<&str>, finish: Option<FinishReason>) -> Choice {
    Choice {
        index: 0,
        content: content.map(String::from),
        reasoning: None,
        tool_calls: Vec::new(),
        finish_reason: finish,
    }
}

fn response(id: &str, choices: Vec<Choice>, usage: Option<Usage>) -> ChatResponse {
    ChatResponse {
        id: id.into(),
        model: "gpt-4o-2024-08-06".into(),
        created: 1,
        choices,
        usage,
    }
}

fn render(r: &ChatResponse) -> Value {
    serde_json::from_slice(&render_response(r, &ctx()).unwrap()).unwrap()
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

#[test]
fn text_with_cache_usage() {
    let r = response(
        "chatcmpl-abc",
        vec![choice(Some("Hello!"), Some(FinishReason::Stop))],
        Some(Usage {
            prompt_tokens: 1000,
            completion_tokens: 7,
            total_tokens: 1007,
            cached_tokens: Some(900),
            cache_creation_tokens: None,
            reasoning_tokens: Some(3),
        }),
    );
    assert_eq!(
        render(&r),
        json!({
            "id": "msg_chatcmpl-abc", "type": "message", "role": "assistant", "model": "gpt-4o-2024-08-06",
            "content": [{"type": "text", "text": "Hello!"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 100, "cache_read_input_tokens": 900, "output_tokens": 7}
        })
    );
}

#[test]
fn thinking_text_and_tool_calls_in_order() {
    let mut c = choice(Some("Let me check."), Some(FinishReason::ToolCalls));
    c.reasoning = Some("Need weather.".into());
    c.tool_calls = vec![
        call(
            "call_1",
            "get_weather",
            "{\"city\":\"Paris\",\"unit\":\"c\"}",
        ),
        call("call_2", "now", ""),
        call("call_3", "ping", " {} "),
    ];
    let r = response("msg_keep", vec![c], None);
    assert_eq!(
        render(&r),
        json!({
            "id": "msg_keep", "type": "message", "role": "assistant", "model": "gpt-4o-2024-08-06",
            "content": [
                {"type": "thinking", "thinking": "Need weather.", "signature": ""},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris", "unit": "c"}},
                {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
                {"type": "tool_use", "id": "call_3", "name": "ping", "input": {}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 42, "output_tokens": 0}
        })
    );
    // The arguments' key order is the model's.
    let bytes = render_response(&r, &ctx()).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains("{\"city\":\"Paris\",\"unit\":\"c\"}"),
        "{text}"
    );
}

#[test]
fn arguments_that_are_not_an_object_are_a_502() {
    for args in ["[1,2]", "\"x\"", "{\"a\":", "not json"] {
        let mut c = choice(None, Some(FinishReason::ToolCalls));
        c.tool_calls = vec![call("c", "f", args)];
        let e = render_response(&response("x", vec![c], None), &ctx()).unwrap_err();
        assert_eq!(e.status, 502, "{args}");
        assert_eq!(e.code.as_deref(), Some("upstream_invalid_response"));
        assert!(e.message.contains("'f'"), "{}", e.message);
        let body: Value = serde_json::from_slice(&render_error(&e)).unwrap();
        assert_eq!(body["error"]["type"], "api_error");
    }
}

#[test]
fn stop_reasons_ids_models_and_empty_answers() {
    for (finish, tools, expected) in [
        (Some(FinishReason::Stop), false, "end_turn"),
        (Some(FinishReason::Length), false, "max_tokens"),
        (Some(FinishReason::ToolCalls), true, "tool_use"),
        (Some(FinishReason::ContentFilter), false, "refusal"),
        (None, true, "tool_use"),
        (None, false, "end_turn"),
    ] {
        let mut c = choice(Some(""), finish);
        if tools {
            c.tool_calls = vec![call("c", "f", "{}")];
        }
        let v = render(&response("", vec![c], None));
        assert_eq!(v["stop_reason"], expected, "{finish:?}");
        assert_eq!(v["id"], "msg_req-1");
    }
    // Empty text and empty reasoning make no blocks; no choice at all
    // is an empty message.
    let mut c = choice(Some(""), Some(FinishReason::ContentFilter));
    c.reasoning = Some(String::new());
    assert_eq!(render(&response("m", vec![c], None))["content"], json!([]));
    let mut r = response("m", Vec::new(), None);
    r.model = String::new();
    let v = render(&r);
    assert_eq!(
        (&v["content"], &v["stop_reason"], &v["model"]),
        (&json!([]), &json!("end_turn"), &json!("target-model"))
    );
    // Only the first choice counts.
    let v = render(&response(
        "m",
        vec![
            choice(Some("first"), Some(FinishReason::Stop)),
            choice(Some("second"), Some(FinishReason::Length)),
        ],
        None,
    ));
    assert_eq!(v["content"], json!([{"type": "text", "text": "first"}]));
    assert_eq!(v["stop_reason"], "end_turn");
}

/// Anthropic response → hub (the Anthropic egress) → Anthropic response:
/// text, tool inputs and usage come back as they were.
#[test]
fn anthropic_responses_survive_the_round_trip() {
    let cases: Vec<Value> = serde_json::from_str(PROVIDER_RESPONSES).unwrap();
    let mut checked = 0;
    for case in &cases {
        let Some(original) = case.get("anthropic") else {
            continue;
        };
        let name = case["name"].as_str().unwrap();
        let body = serde_json::to_vec(original).unwrap();
        let hub = Anthropic::default().decode_response(&body, &ctx()).unwrap();
        let v = render(&hub);
        let blocks = |v: &Value, ty: &str| -> Vec<Value> {
            v["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| b["type"] == ty)
                .cloned()
                .collect()
        };
        let text = |v: &Value| -> String {
            blocks(v, "text")
                .iter()
                .map(|b| b["text"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(text(&v), text(original), "{name}");
        let tools = |v: &Value| -> Vec<Value> {
            blocks(v, "tool_use")
                .iter()
                .map(|b| json!([b["id"], b["name"], b["input"]]))
                .collect()
        };
        assert_eq!(tools(&v), tools(original), "{name}");
        if let Some(u) = original.get("usage").filter(|u| u.is_object()) {
            for key in [
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
            ] {
                assert_eq!(v["usage"][key], u[key], "{name}: {key}");
            }
        }
        let expected_stop = match original["stop_reason"].as_str() {
            Some("tool_use") => "tool_use",
            Some("max_tokens" | "model_context_window_exceeded") => "max_tokens",
            Some("refusal") => "refusal",
            None if !tools(original).is_empty() => "tool_use",
            _ => "end_turn",
        };
        assert_eq!(v["stop_reason"], expected_stop, "{name}");
        let id = original["id"].as_str().unwrap_or_default();
        if id.starts_with("msg_") {
            assert_eq!(v["id"], id, "{name}");
        }
        checked += 1;
    }
    assert!(checked >= 10, "{checked}");
}

#[test]
fn count_tokens_and_models() {
    let v: Value = serde_json::from_slice(&render_count_tokens(2095)).unwrap();
    assert_eq!(v, json!({"input_tokens": 2095}));
    let v: Value = serde_json::from_slice(&models_list(&[
        ("claude", "Claude via the gateway"),
        ("gpt-4o", "gpt-4o"),
    ]))
    .unwrap();
    assert_eq!(
        v,
        json!({
            "data": [
                {"type": "model", "id": "claude", "display_name": "Claude via the gateway", "created_at": "1970-01-01T00:00:00Z"},
                {"type": "model", "id": "gpt-4o", "display_name": "gpt-4o", "created_at": "1970-01-01T00:00:00Z"}
            ],
            "has_more": false, "first_id": "claude", "last_id": "gpt-4o"
        })
    );
    let v: Value = serde_json::from_slice(&models_list(&[])).unwrap();
    assert_eq!(
        v,
        json!({"data": [], "has_more": false, "first_id": null, "last_id": null})
    );
}
