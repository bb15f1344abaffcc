//! Hub responses → the Responses API `response` object. The stream writer
//! builds its final `response.completed` with the same code, so a streamed
//! and a whole answer end in the same object.

use crate::wire::hub::{ChatResponse, FinishReason, ResponseContext, Usage};
use serde_json::{json, Value};

/// One entry of a response's `output`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OutputItem {
    /// The provider's reasoning text, as a reasoning summary.
    Reasoning { id: String, text: String },
    /// Assistant text.
    Message { id: String, text: String },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// An output item's (and a response's) `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    InProgress,
    Completed,
    /// Cut short; the reason is `incomplete_details.reason`.
    Incomplete(&'static str),
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete(_) => "incomplete",
        }
    }

    /// The response's status for the way the model finished.
    pub(crate) fn of_finish(finish: Option<FinishReason>) -> Self {
        match finish {
            Some(FinishReason::Length) => Self::Incomplete("max_output_tokens"),
            Some(FinishReason::ContentFilter) => Self::Incomplete("content_filter"),
            Some(FinishReason::Stop | FinishReason::ToolCalls) | None => Self::Completed,
        }
    }
}

/// Item ids: a kind prefix, the request id and the output index, so they
/// are unique within the response and stable between its stream and its
/// final object.
pub(crate) fn item_id(prefix: &str, request_id: &str, output_index: usize) -> String {
    format!("{prefix}_{request_id}_{output_index}")
}

impl OutputItem {
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Reasoning { id, .. }
            | Self::Message { id, .. }
            | Self::FunctionCall { id, .. } => id,
        }
    }

    /// The item as JSON; an in-progress item shows no content yet (the
    /// `output_item.added` shape).
    pub(crate) fn to_json(&self, status: Status) -> Value {
        let started = status == Status::InProgress;
        match self {
            Self::Reasoning { id, text } => {
                let summary = if started {
                    json!([])
                } else {
                    json!([summary_part(text)])
                };
                json!({"id": id, "type": "reasoning", "summary": summary})
            }
            Self::Message { id, text } => {
                let content = if started {
                    json!([])
                } else {
                    json!([text_part(text)])
                };
                json!({"id": id, "type": "message", "status": status.as_str(),
                       "role": "assistant", "content": content})
            }
            Self::FunctionCall {
                id,
                call_id,
                name,
                arguments,
            } => json!({
                "id": id, "type": "function_call", "status": status.as_str(),
                "arguments": if started { "" } else { arguments.as_str() },
                "call_id": call_id, "name": name,
            }),
        }
    }
}

pub(crate) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(crate) fn summary_part(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_tokens.unwrap_or(0),
            "cache_write_tokens": u.cache_creation_tokens.unwrap_or(0),
        },
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens.unwrap_or(0)},
        "total_tokens": u.total_tokens,
    })
}

/// What a `response` object is made of.
pub(crate) struct ResponseParts<'a> {
    pub id: &'a str,
    pub created_at: u64,
    pub model: &'a str,
    pub status: Status,
    pub output: &'a [OutputItem],
    pub usage: Option<&'a Usage>,
}

/// The `response` object. Fields that echo the request (`tools`,
/// `tool_choice`, `temperature`, …) are not known here: the required ones
/// get OpenAI's defaults, the optional ones null.
pub(crate) fn response_json(p: &ResponseParts) -> Value {
    let last = p.output.len().saturating_sub(1);
    let output: Vec<Value> = p
        .output
        .iter()
        .enumerate()
        .map(|(i, item)| {
            // Only the last item can have been cut short.
            let status = match p.status {
                Status::Incomplete(_) if i == last => p.status,
                Status::InProgress => Status::InProgress,
                _ => Status::Completed,
            };
            item.to_json(status)
        })
        .collect();
    let incomplete_details = match p.status {
        Status::Incomplete(reason) => json!({ "reason": reason }),
        _ => Value::Null,
    };
    json!({
        "id": p.id,
        "object": "response",
        "created_at": p.created_at,
        "status": p.status.as_str(),
        "background": false,
        "error": null,
        "incomplete_details": incomplete_details,
        "instructions": null,
        "max_output_tokens": null,
        "model": p.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": null,
        "store": false,
        "temperature": null,
        "text": null,
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": p.usage.map(usage_json),
        "user": null,
        "metadata": {},
    })
}

pub(crate) fn response_id(ctx: &ResponseContext) -> String {
    format!("resp_{}", ctx.request_id)
}

/// A non-streaming `response` object for the first choice.
pub fn render_response(r: &ChatResponse, ctx: &ResponseContext) -> Vec<u8> {
    let choice = r.choices.first();
    let mut output = Vec::new();
    if let Some(text) = choice
        .and_then(|c| c.reasoning.as_ref())
        .filter(|t| !t.is_empty())
    {
        output.push(OutputItem::Reasoning {
            id: item_id("rs", &ctx.request_id, output.len()),
            text: text.clone(),
        });
    }
    if let Some(text) = choice
        .and_then(|c| c.content.as_ref())
        .filter(|t| !t.is_empty())
    {
        output.push(OutputItem::Message {
            id: item_id("msg", &ctx.request_id, output.len()),
            text: text.clone(),
        });
    }
    for call in choice.map_or(&[][..], |c| c.tool_calls.as_slice()) {
        output.push(OutputItem::FunctionCall {
            id: item_id("fc", &ctx.request_id, output.len()),
            call_id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        });
    }
    let model = if r.model.is_empty() {
        &ctx.model
    } else {
        &r.model
    };
    crate::wire::json_bytes(&response_json(&ResponseParts {
        id: &response_id(ctx),
        created_at: ctx.created,
        model,
        status: Status::of_finish(choice.and_then(|c| c.finish_reason)),
        output: &output,
        usage: r.usage.as_ref(),
    }))
}
