//! The neutral facts of a Responses request (admission, routing rules,
//! telemetry), read from the validated body.

use super::parse::present;
use crate::wire::hub::RequestFacts;
use crate::wire::openai::content_text;
use serde_json::{Map, Value};

/// What admission, routing rules and telemetry need to know, with the rule
/// of `admission::estimate_prompt_tokens`: a token per 4 bytes of
/// instructions, input text and tool definitions, plus 4 per input item.
pub fn facts(body: &Map<String, Value>) -> RequestFacts {
    let mut bytes = present(body, "instructions")
        .and_then(Value::as_str)
        .map_or(0, str::len);
    let (mut items, mut last_user_text) = (0usize, String::new());
    match present(body, "input") {
        Some(Value::String(s)) => {
            bytes += s.len();
            items = 1;
            last_user_text = s.clone();
        }
        Some(Value::Array(input)) => {
            items = input.len();
            for item in input {
                bytes += item_text_len(item);
            }
            if let Some(user) = input
                .iter()
                .rev()
                .find(|i| i.get("role").and_then(Value::as_str) == Some("user"))
            {
                last_user_text = content_text(user.get("content"));
            }
        }
        _ => {}
    }
    if let Some(tools) = present(body, "tools") {
        bytes += tools.to_string().len();
    }
    RequestFacts {
        max_tokens: present(body, "max_output_tokens")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        prompt_tokens: (bytes as u64).div_ceil(4) + 4 * items as u64,
        messages: items,
        last_user_text,
    }
}

/// Bytes of the text an item sends: message content, call arguments and
/// outputs (reasoning items are not translated, so not counted).
fn item_text_len(item: &Value) -> usize {
    fn text_len(v: Option<&Value>) -> usize {
        match v {
            Some(Value::String(s)) => s.len(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").or_else(|| p.get("refusal")))
                .filter_map(Value::as_str)
                .map(str::len)
                .sum(),
            _ => 0,
        }
    }
    match item.get("type").and_then(Value::as_str) {
        Some("function_call") => text_len(item.get("name")) + text_len(item.get("arguments")),
        Some("function_call_output") => text_len(item.get("output")),
        Some("reasoning") => 0,
        _ => text_len(item.get("content")),
    }
}
