//! Anthropic message responses → hub form: finish reasons and usage.

use super::error::{bad_upstream, decode_error_body};
use super::PROVIDER;
use crate::error::ApiError;
use crate::wire::hub::{ChatResponse, Choice, FinishReason, ResponseContext, ToolCall, Usage};
use serde_json::Value;

pub(super) fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => FinishReason::Stop,
    }
}

/// Token counts as Anthropic reports them; later reports override earlier
/// ones field by field (stream counts are cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TokenCounts {
    input: u64,
    output: u64,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
}

impl TokenCounts {
    pub(super) fn update(&mut self, usage: &Value) {
        self.update_from(USAGE_KEYS.map(|k| usage.get(k).and_then(Value::as_u64)));
    }

    /// The counts a report gives, in `USAGE_KEYS` order.
    pub(super) fn update_from(&mut self, [input, output, read, creation]: [Option<u64>; 4]) {
        if let Some(v) = input {
            self.input = v;
        }
        if let Some(v) = output {
            self.output = v;
        }
        if read.is_some() {
            self.cache_read = read;
        }
        if creation.is_some() {
            self.cache_creation = creation;
        }
    }

    pub(super) fn to_usage(self) -> Usage {
        let prompt = self
            .input
            .saturating_add(self.cache_read.unwrap_or(0))
            .saturating_add(self.cache_creation.unwrap_or(0));
        Usage {
            prompt_tokens: prompt,
            completion_tokens: self.output,
            total_tokens: prompt.saturating_add(self.output),
            cached_tokens: self.cache_read,
            cache_creation_tokens: self.cache_creation,
            reasoning_tokens: None,
        }
    }
}

pub(super) fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub(super) fn decode_message(body: &[u8], ctx: &ResponseContext) -> Result<ChatResponse, ApiError> {
    let parts = match super::response_scan::scan(body) {
        Some(parts) => parts,
        None => from_tree(body)?,
    };
    assemble(parts, ctx)
}

/// What an answer says, however it was read: the fields as
/// `Value::as_str` / `as_u64` would give them.
#[derive(Debug, PartialEq)]
pub(super) struct Parts {
    pub id: Option<String>,
    pub model: Option<String>,
    pub stop_reason: Option<String>,
    pub blocks: Vec<Block>,
    /// input, output, cache read, cache creation (when `usage` is an object).
    pub usage: Option<[Option<u64>; 4]>,
}

/// A content block (a block that is not an object has no fields).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Block {
    pub kind: Option<String>,
    pub text: Option<String>,
    pub thinking: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub input: Option<Value>,
}

pub(super) const USAGE_KEYS: [&str; 4] = [
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
];

/// The answer parsed into a tree: the full path, with its exact errors.
pub(super) fn from_tree(body: &[u8]) -> Result<Parts, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        bad_upstream(format!(
            "{PROVIDER} returned a response that is not valid JSON: {e}."
        ))
    })?;
    if !v.is_object() {
        return Err(bad_upstream(format!(
            "{PROVIDER} returned a response that is not a JSON object."
        )));
    }
    if str_field(&v, "type") == Some("error") {
        return Err(decode_error_body(502, body));
    }
    let Some(blocks) = v.get("content").and_then(Value::as_array) else {
        return Err(bad_upstream(format!(
            "{PROVIDER} returned a response without a 'content' array."
        )));
    };
    let text = |v: &Value, k: &str| str_field(v, k).map(String::from);
    let blocks = blocks
        .iter()
        .map(|b| Block {
            kind: text(b, "type"),
            text: text(b, "text"),
            thinking: text(b, "thinking"),
            id: text(b, "id"),
            name: text(b, "name"),
            input: b.get("input").cloned(),
        })
        .collect();
    let usage = v
        .get("usage")
        .filter(|u| u.is_object())
        .map(|u| USAGE_KEYS.map(|k| u.get(k).and_then(Value::as_u64)));
    Ok(Parts {
        id: text(&v, "id"),
        model: text(&v, "model"),
        stop_reason: text(&v, "stop_reason"),
        blocks,
        usage,
    })
}

fn assemble(parts: Parts, ctx: &ResponseContext) -> Result<ChatResponse, ApiError> {
    let mut content = String::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for (i, b) in parts.blocks.into_iter().enumerate() {
        match b.kind.as_deref() {
            Some("text") => content.push_str(b.text.as_deref().unwrap_or_default()),
            Some("thinking") => reasoning
                .get_or_insert_with(String::new)
                .push_str(b.thinking.as_deref().unwrap_or_default()),
            Some("tool_use") => {
                let (Some(id), Some(name)) = (b.id, b.name) else {
                    return Err(bad_upstream(format!(
                        "{PROVIDER} returned a tool_use block (content[{i}]) without 'id' or 'name'."
                    )));
                };
                let arguments = match b.input {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(input) => input.to_string(),
                };
                tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments,
                });
            }
            // redacted_thinking (encrypted), server tool blocks, future types.
            _ => {}
        }
    }
    let finish = match parts.stop_reason.as_deref() {
        Some(r) => finish_reason(r),
        None if !tool_calls.is_empty() => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    };
    let usage = parts.usage.map(|u| {
        let mut c = TokenCounts::default();
        c.update_from(u);
        c.to_usage()
    });
    Ok(ChatResponse {
        id: parts
            .id
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("chatcmpl-{}", ctx.request_id)),
        model: parts
            .model
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| ctx.model.clone()),
        created: ctx.created,
        choices: vec![Choice {
            index: 0,
            content: Some(content),
            reasoning,
            tool_calls,
            finish_reason: Some(finish),
        }],
        usage,
    })
}
