//! What the flow needs to know of an OpenAI Chat Completions or embeddings
//! request (`RequestFacts`), read from the validated body.

use crate::wire::hub::RequestFacts;
use serde_json::{Map, Value};

/// Bytes of text in a content value (string, parts, or a part's `text`).
fn text_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(parts) => parts.iter().map(text_len).sum(),
        Value::Object(o) => o.get("text").map_or(0, text_len),
        _ => 0,
    }
}

/// Text of a message's content (string or text parts, joined by spaces).
fn message_text(m: &Value) -> String {
    content_text(m.get("content"))
}

/// A `content` that is a string or a list of parts with `text`: the text,
/// parts joined by spaces (also the shape of Responses input messages).
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Rough prompt size: a token per 4 bytes of message text (or embeddings
/// input) and tool definitions, plus a few tokens of framing per message.
pub fn facts(body: &Map<String, Value>) -> RequestFacts {
    let messages: &[Value] = match body.get("messages") {
        Some(Value::Array(ms)) => ms,
        _ => &[],
    };
    let mut bytes: usize = messages
        .iter()
        .map(|m| m.get("content").map_or(0, text_len))
        .sum();
    match body.get("input") {
        Some(Value::String(s)) => bytes += s.len(),
        Some(Value::Array(items)) => bytes += items.iter().map(text_len).sum::<usize>(),
        _ => {}
    }
    if let Some(tools) = body.get("tools") {
        bytes += tools.to_string().len();
    }
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    RequestFacts {
        max_tokens,
        prompt_tokens: (bytes as u64).div_ceil(4) + 4 * messages.len() as u64,
        messages: messages.len(),
        last_user_text: messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .map(message_text)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_and_embeddings_facts() {
        let body: Map<String, Value> = serde_json::from_str(
            r#"{"model":"m","max_tokens":9,"messages":[
                {"role":"system","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"hello"},{"type":"text","text":"world"}]},
                {"role":"assistant","content":"ok"}]}"#,
        )
        .unwrap();
        let f = facts(&body);
        assert_eq!(f.max_tokens, Some(9));
        assert_eq!(f.messages, 3);
        assert_eq!(f.last_user_text, "hello world");
        // 8 + 10 + 2 bytes → 5 tokens, plus 4 per message.
        assert_eq!(f.prompt_tokens, 5 + 12);
        let body: Map<String, Value> =
            serde_json::from_str(r#"{"model":"e","input":["abcd","efgh"]}"#).unwrap();
        assert_eq!(facts(&body).prompt_tokens, 2);
    }
}
