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
        let n = |k: &str| usage.get(k).and_then(Value::as_u64);
        if let Some(v) = n("input_tokens") {
            self.input = v;
        }
        if let Some(v) = n("output_tokens") {
            self.output = v;
        }
        if let Some(v) = n("cache_read_input_tokens") {
            self.cache_read = Some(v);
        }
        if let Some(v) = n("cache_creation_input_tokens") {
            self.cache_creation = Some(v);
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
    let mut content = String::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        match str_field(b, "type") {
            Some("text") => content.push_str(str_field(b, "text").unwrap_or_default()),
            Some("thinking") => reasoning
                .get_or_insert_with(String::new)
                .push_str(str_field(b, "thinking").unwrap_or_default()),
            Some("tool_use") => {
                let (Some(id), Some(name)) = (str_field(b, "id"), str_field(b, "name")) else {
                    return Err(bad_upstream(format!(
                        "{PROVIDER} returned a tool_use block (content[{i}]) without 'id' or 'name'."
                    )));
                };
                let arguments = match b.get("input") {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(input) => input.to_string(),
                };
                tool_calls.push(ToolCall {
                    id: id.into(),
                    name: name.into(),
                    arguments,
                });
            }
            // redacted_thinking (encrypted), server tool blocks, future types.
            _ => {}
        }
    }
    let finish = match str_field(&v, "stop_reason") {
        Some(r) => finish_reason(r),
        None if !tool_calls.is_empty() => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    };
    let usage = v.get("usage").filter(|u| u.is_object()).map(|u| {
        let mut c = TokenCounts::default();
        c.update(u);
        c.to_usage()
    });
    Ok(ChatResponse {
        id: str_field(&v, "id")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .unwrap_or_else(|| format!("chatcmpl-{}", ctx.request_id)),
        model: str_field(&v, "model")
            .filter(|s| !s.is_empty())
            .unwrap_or(&ctx.model)
            .to_string(),
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
