//! Whole responses and HTTP errors.

use super::ctx;
use crate::error::ApiError;
use crate::wire::hub::{ChatResponse, Choice, FinishReason, ToolCall, Usage};
use crate::wire::responses::{render_error, render_response, stream_error};
use serde_json::{json, Value};

fn response(choice: Choice, usage: Option<Usage>) -> ChatResponse {
    ChatResponse {
        id: "msg_provider".into(),
        model: "claude-x".into(),
        created: 5,
        choices: vec![choice],
        usage,
    }
}

fn render(r: &ChatResponse) -> Value {
    serde_json::from_slice(&render_response(r, &ctx())).unwrap()
}

/// The fields every response carries besides id, status, model, output
/// and usage.
fn envelope(status: &str, incomplete: Value, model: &str, output: Value, usage: Value) -> Value {
    json!({
        "id": "resp_req1", "object": "response", "created_at": 1_700_000_000u64,
        "status": status, "background": false, "error": null,
        "incomplete_details": incomplete, "instructions": null, "max_output_tokens": null,
        "model": model, "output": output, "parallel_tool_calls": true,
        "previous_response_id": null, "reasoning": null, "store": false,
        "temperature": null, "text": null, "tool_choice": "auto", "tools": [],
        "top_p": null, "truncation": "disabled", "usage": usage, "user": null,
        "metadata": {},
    })
}

#[test]
fn reasoning_text_and_calls_with_usage() {
    let r = response(
        Choice {
            index: 0,
            content: Some("Checking.".into()),
            reasoning: Some("Two lookups needed.".into()),
            tool_calls: vec![
                ToolCall {
                    id: "toolu_1".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Paris\"}".into(),
                },
                ToolCall {
                    id: "toolu_2".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Rome\"}".into(),
                },
            ],
            finish_reason: Some(FinishReason::ToolCalls),
        },
        Some(Usage {
            prompt_tokens: 100,
            completion_tokens: 40,
            total_tokens: 140,
            cached_tokens: Some(60),
            cache_creation_tokens: Some(10),
            reasoning_tokens: Some(12),
        }),
    );
    let expected = envelope(
        "completed",
        Value::Null,
        "claude-x",
        json!([
            {"id": "rs_req1_0", "type": "reasoning",
             "summary": [{"type": "summary_text", "text": "Two lookups needed."}]},
            {"id": "msg_req1_1", "type": "message", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}]},
            {"id": "fc_req1_2", "type": "function_call", "status": "completed",
             "arguments": "{\"city\":\"Paris\"}", "call_id": "toolu_1", "name": "get_weather"},
            {"id": "fc_req1_3", "type": "function_call", "status": "completed",
             "arguments": "{\"city\":\"Rome\"}", "call_id": "toolu_2", "name": "get_weather"},
        ]),
        json!({"input_tokens": 100,
               "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
               "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 12},
               "total_tokens": 140}),
    );
    assert_eq!(render(&r), expected);
}

#[test]
fn length_is_incomplete_and_so_is_the_last_item() {
    let r = response(
        Choice {
            content: Some("Once upon a".into()),
            reasoning: Some("story".into()),
            finish_reason: Some(FinishReason::Length),
            ..Choice::default()
        },
        Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 16,
            total_tokens: 19,
            ..Usage::default()
        }),
    );
    let v = render(&r);
    assert_eq!(v["status"], "incomplete");
    assert_eq!(
        v["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(v["output"][1]["status"], "incomplete");
    assert_eq!(v["output"][1]["content"][0]["text"], "Once upon a");
    assert_eq!(
        v["usage"]["input_tokens_details"],
        json!({"cached_tokens": 0, "cache_write_tokens": 0})
    );
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 0);
}

#[test]
fn blocked_answer_is_incomplete_with_no_output_and_defaults_fill_gaps() {
    let mut r = response(
        Choice {
            content: None,
            finish_reason: Some(FinishReason::ContentFilter),
            ..Choice::default()
        },
        None,
    );
    r.model = String::new();
    assert_eq!(
        render(&r),
        envelope(
            "incomplete",
            json!({"reason": "content_filter"}),
            "up-model",
            json!([]),
            Value::Null
        )
    );
    // Empty text and reasoning make no items; no choice at all is an empty
    // completed response.
    r.choices[0] = Choice {
        content: Some(String::new()),
        reasoning: Some(String::new()),
        finish_reason: Some(FinishReason::Stop),
        ..Choice::default()
    };
    assert_eq!(render(&r)["output"], json!([]));
    r.choices.clear();
    assert_eq!(render(&r)["status"], "completed");
}

#[test]
fn only_the_first_choice_is_rendered() {
    let mut r = response(
        Choice {
            content: Some("first".into()),
            ..Choice::default()
        },
        None,
    );
    r.choices.push(Choice {
        index: 1,
        content: Some("second".into()),
        ..Choice::default()
    });
    let v = render(&r);
    assert_eq!(v["output"].as_array().unwrap().len(), 1);
    assert_eq!(v["output"][0]["content"][0]["text"], "first");
}

#[test]
fn errors_over_http_and_before_a_stream() {
    let e = ApiError::invalid_request("bad")
        .with_param("input")
        .with_code("invalid_type");
    assert_eq!(render_error(&e), e.to_json());
    let frame = String::from_utf8(stream_error(&e)).unwrap();
    let data = frame
        .strip_prefix("event: error\ndata: ")
        .and_then(|f| f.strip_suffix("\n\n"))
        .unwrap();
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "sequence_number": 0, "code": "invalid_type", "message": "bad",
               "param": "input",
               "error": {"type": "invalid_request_error", "code": "invalid_type",
                         "message": "bad", "param": "input"}})
    );
}
