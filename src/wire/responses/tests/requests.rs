//! The golden request corpus: Responses request → hub request → the
//! Anthropic and Gemini bodies, or the 400.

use super::hub_json;
use crate::error::ApiError;
use crate::wire::anthropic::Anthropic;
use crate::wire::gemini::Gemini;
use crate::wire::hub::{ChatRequest, Translator};
use crate::wire::responses::{facts, parse_request, to_hub};
use serde_json::{json, Value};

const REQUESTS: &str = include_str!("../../../../tests/fixtures/responses/requests.json");

fn hub(body: &Value, model: &str) -> Result<ChatRequest, ApiError> {
    let bytes = serde_json::to_vec(body).unwrap();
    let parsed = parse_request(&bytes)?;
    assert_eq!(parsed.model, body["model"].as_str().unwrap());
    assert_eq!(parsed.stream, body["stream"] == json!(true));
    to_hub(parsed.body(), model)
}

fn error_json(e: &ApiError) -> Value {
    serde_json::from_slice(&e.to_json()).unwrap()
}

fn check_egress(name: &str, case: &Value, key: &str, got: Result<Vec<u8>, ApiError>) {
    let error_key = format!("{key}_error");
    match (case.get(key), case.get(&error_key)) {
        (Some(expected), None) => {
            let bytes = got.unwrap_or_else(|e| panic!("{name}: {key} refused: {e:?}"));
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(&body, expected, "{name}: {key} body");
        }
        (None, Some(expected)) => {
            let e = got.expect_err(name);
            assert_eq!(e.status, 400, "{name}");
            assert_eq!(
                error_json(&e),
                json!({ "error": expected }),
                "{name}: {key}"
            );
        }
        _ => panic!("{name}: a success case needs '{key}' or '{error_key}'"),
    }
}

#[test]
fn request_corpus() {
    let Value::Array(cases) = serde_json::from_str(REQUESTS).unwrap() else {
        panic!("the corpus is an array");
    };
    assert!(cases.len() >= 30);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let body = &case["responses"];
        if let Some(expected) = case.get("error") {
            let e = hub(body, "up-model").expect_err(name);
            assert_eq!(e.status, 400, "{name}");
            assert_eq!(error_json(&e), json!({ "error": expected }), "{name}");
            continue;
        }
        let req = hub(body, "up-model").unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(hub_json(&req), case["hub"], "{name}: hub");
        let anthropic = hub(body, "claude-sonnet-4-5").unwrap();
        check_egress(
            name,
            case,
            "anthropic",
            Anthropic::default().encode_request(&anthropic),
        );
        let gemini = hub(body, "gemini-2.5-flash").unwrap();
        check_egress(name, case, "gemini", Gemini.encode_request(&gemini));
    }
}

#[test]
fn invalid_json_and_non_objects() {
    let e = parse_request(b"{nope").unwrap_err();
    assert_eq!(e.code.as_deref(), Some("invalid_json"));
    let e = parse_request(b"[1]").unwrap_err();
    assert_eq!(
        e.message,
        "Invalid request body: expected a JSON object, but got an array instead."
    );
}

#[test]
fn to_hub_never_panics_on_unvalidated_bodies() {
    for body in [
        json!({}),
        json!({"input": [1, {"type": "function_call"}, {"role": "user"}]}),
        json!({"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image"}]}]}),
        json!({"input": "x", "tools": [{}], "tool_choice": {"type": "function"}}),
        json!({"input": "x", "text": {"format": {"type": "json_schema"}}, "max_output_tokens": -1}),
    ] {
        assert!(to_hub(body.as_object().unwrap(), "m").is_err(), "{body}");
    }
}

#[test]
fn request_facts() {
    let body = json!({
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "not counted"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{\"a\":1}"},
            {"type": "function_call_output", "call_id": "c", "output": "result"},
            {"role": "user", "content": [{"type": "input_text", "text": "what"}, {"type": "input_image", "image_url": "https://x.test/a.png"}, {"type": "input_text", "text": "now?"}]},
            {"role": "assistant", "content": "ok"}
        ],
        "tools": [{"type": "function", "name": "f"}],
        "max_output_tokens": 500
    });
    let f = facts(body.as_object().unwrap());
    let tools_len = json!([{"type": "function", "name": "f"}]).to_string().len();
    // instructions 9, "first" 5, f + args 1 + 7, "result" 6, "what"+"now?" 8, "ok" 2.
    let bytes = 9 + 5 + 8 + 6 + 8 + 2 + tools_len;
    assert_eq!(f.prompt_tokens, (bytes as u64).div_ceil(4) + 4 * 6);
    assert_eq!(f.messages, 6);
    assert_eq!(f.max_tokens, Some(500));
    assert_eq!(f.last_user_text, "what now?");

    let f = facts(
        json!({"model": "m", "input": "Hello there"})
            .as_object()
            .unwrap(),
    );
    assert_eq!((f.prompt_tokens, f.messages), (3 + 4, 1));
    assert_eq!(
        (f.last_user_text.as_str(), f.max_tokens),
        ("Hello there", None)
    );
}
