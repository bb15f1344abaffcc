//! Hub responses → Anthropic `message` objects; the small fixed bodies of
//! `count_tokens` and `GET /v1/models`.

use crate::error::ApiError;
use crate::wire::hub::{ChatResponse, FinishReason, ResponseContext, Usage};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Token counts as Anthropic reports them: input tokens exclude the ones
/// read from or written to the cache, which have their own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AnthropicUsage {
    pub(super) input: u64,
    pub(super) cache_creation: Option<u64>,
    pub(super) cache_read: Option<u64>,
    pub(super) output: u64,
}

impl AnthropicUsage {
    pub(super) fn from_hub(u: &Usage) -> Self {
        Self {
            input: u
                .prompt_tokens
                .saturating_sub(u.cached_tokens.unwrap_or(0))
                .saturating_sub(u.cache_creation_tokens.unwrap_or(0)),
            cache_creation: u.cache_creation_tokens,
            cache_read: u.cached_tokens,
            output: u.completion_tokens,
        }
    }

    /// Before the provider reported any: the gateway's prompt estimate.
    pub(super) fn estimated(input: u64) -> Self {
        Self {
            input,
            cache_creation: None,
            cache_read: None,
            output: 0,
        }
    }

    /// `{"input_tokens":…,"cache_creation_input_tokens":…,"cache_read_input_tokens":…,"output_tokens":…}`
    /// (cache fields only when the provider reported them).
    pub(super) fn push_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"input_tokens\":");
        out.extend_from_slice(self.input.to_string().as_bytes());
        if let Some(n) = self.cache_creation {
            out.extend_from_slice(b",\"cache_creation_input_tokens\":");
            out.extend_from_slice(n.to_string().as_bytes());
        }
        if let Some(n) = self.cache_read {
            out.extend_from_slice(b",\"cache_read_input_tokens\":");
            out.extend_from_slice(n.to_string().as_bytes());
        }
        out.extend_from_slice(b",\"output_tokens\":");
        out.extend_from_slice(self.output.to_string().as_bytes());
        out.push(b'}');
    }
}

/// The same object as [`AnthropicUsage::push_json`].
impl Serialize for AnthropicUsage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("input_tokens", &self.input)?;
        if let Some(n) = self.cache_creation {
            m.serialize_entry("cache_creation_input_tokens", &n)?;
        }
        if let Some(n) = self.cache_read {
            m.serialize_entry("cache_read_input_tokens", &n)?;
        }
        m.serialize_entry("output_tokens", &self.output)?;
        m.end()
    }
}

/// Anthropic's `stop_reason` for a hub finish reason.
pub(super) fn stop_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// A message id: the provider's when it is Anthropic's (`msg_…`), else
/// the provider's id (or the request id) behind `msg_`.
pub(super) fn message_id(id: &str, request_id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_string()
    } else if id.is_empty() {
        format!("msg_{request_id}")
    } else {
        format!("msg_{id}")
    }
}

/// A tool call's arguments as the `input` object Anthropic clients need.
fn tool_input(arguments: &str, name: &str) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(ApiError::new(
            502,
            "api_error",
            format!("The provider returned arguments for tool '{name}' that are not a JSON object; an Anthropic tool_use block needs an object as its input."),
        )
        .with_code("upstream_invalid_response")),
    }
}

/// A non-streaming response as an Anthropic `message`. Only the first
/// choice is used (Anthropic has one). A 502 when a tool call's arguments
/// are not a JSON object: Anthropic clients cannot use any other input.
pub fn render_response(r: &ChatResponse, ctx: &ResponseContext) -> Result<Vec<u8>, ApiError> {
    let choice = r.choices.first();
    let mut content = Vec::new();
    let mut has_tool_calls = false;
    if let Some(c) = choice {
        if let Some(thinking) = c.reasoning.as_deref().filter(|t| !t.is_empty()) {
            // No provider but Anthropic signs its thinking: the signature is
            // empty, and Anthropic would refuse this block if sent back.
            content.push(Block::Thinking {
                thinking,
                signature: "",
            });
        }
        if let Some(text) = c.content.as_deref().filter(|t| !t.is_empty()) {
            content.push(Block::Text { text });
        }
        for call in &c.tool_calls {
            has_tool_calls = true;
            content.push(Block::ToolUse {
                id: &call.id,
                name: &call.name,
                input: tool_input(&call.arguments, &call.name)?,
            });
        }
    }
    let reason = choice
        .and_then(|c| c.finish_reason)
        .unwrap_or(if has_tool_calls {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        });
    let usage = match &r.usage {
        Some(u) => AnthropicUsage::from_hub(u),
        None => AnthropicUsage::estimated(ctx.input_tokens_estimate),
    };
    let model = if r.model.is_empty() {
        &ctx.model
    } else {
        &r.model
    };
    Ok(crate::wire::json_bytes(&MessageOut {
        id: message_id(&r.id, &ctx.request_id),
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason: stop_reason(reason),
        stop_sequence: None,
        usage,
    }))
}

/// A `message` object, written without a tree.
#[derive(Serialize)]
struct MessageOut<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
    usage: AnthropicUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'static str,
    },
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`.
pub fn render_count_tokens(input_tokens: u64) -> Vec<u8> {
    format!("{{\"input_tokens\":{input_tokens}}}").into_bytes()
}

/// `GET /v1/models` in Anthropic's shape for `(id, display name)` pairs.
/// The gateway knows no creation dates: the epoch stands in.
pub fn models_list(models: &[(&str, &str)]) -> Vec<u8> {
    let data: Vec<Value> = models
        .iter()
        .map(|(id, name)| {
            json!({
                "type": "model",
                "id": id,
                "display_name": name,
                "created_at": "1970-01-01T00:00:00Z",
            })
        })
        .collect();
    crate::wire::json_bytes(&json!({
        "data": data,
        "has_more": false,
        "first_id": models.first().map(|m| m.0),
        "last_id": models.last().map(|m| m.0),
    }))
}
