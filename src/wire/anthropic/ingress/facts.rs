//! What admission, routing rules and telemetry learn from an Anthropic
//! request, by the same rules as for OpenAI bodies
//! (`admission::estimate_prompt_tokens`).

use super::parse::{integer, present};
use crate::wire::hub::RequestFacts;
use serde_json::{Map, Value};

/// Counts bytes written to it: a tool list's JSON size without building
/// the string.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Text bytes of a `system` value or a message's `content`: strings, text
/// blocks, and the text a tool result carries (a tool message's content
/// counts for OpenAI bodies too).
fn text_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(blocks) => blocks.iter().map(text_bytes).sum(),
        Value::Object(b) => match b.get("type").and_then(Value::as_str) {
            Some("text") => b.get("text").map_or(0, text_bytes),
            Some("tool_result") => b.get("content").map_or(0, text_bytes),
            _ => 0,
        },
        _ => 0,
    }
}

/// The text blocks of a user turn joined by spaces; `None` when it has
/// none (a turn of tool results only).
fn user_text(turn: &Value) -> Option<String> {
    match turn.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join(" "))
        }
        _ => None,
    }
}

/// Facts of a `/v1/messages` (or `count_tokens`) body.
pub fn facts(body: &Map<String, Value>) -> RequestFacts {
    let turns = match body.get("messages") {
        Some(Value::Array(turns)) => turns.as_slice(),
        _ => &[],
    };
    let mut bytes = body.get("system").map_or(0, text_bytes);
    for turn in turns {
        bytes += turn.get("content").map_or(0, text_bytes);
    }
    // `null` is no tools (not 4 bytes of them).
    if let Some(tools) = present(body, "tools") {
        let mut count = ByteCount(0);
        // Writing a Value to a counter cannot fail.
        let _ = serde_json::to_writer(&mut count, tools);
        bytes += count.0;
    }
    // Tool-result turns are what OpenAI bodies send as `tool` messages:
    // the last user text is the last turn in which the user wrote.
    let last_user_text = turns
        .iter()
        .rev()
        .filter(|t| t.get("role").and_then(Value::as_str) == Some("user"))
        .find_map(user_text)
        .unwrap_or_default();
    RequestFacts {
        max_tokens: body
            .get("max_tokens")
            .and_then(integer)
            .and_then(|n| u32::try_from(n).ok()),
        prompt_tokens: (bytes as u64).div_ceil(4) + 4 * turns.len() as u64,
        messages: turns.len(),
        last_user_text,
    }
}
