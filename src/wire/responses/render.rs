//! Hub responses → the Responses API `response` object. The stream writer
//! builds its final `response.completed` with the same code, so a streamed
//! and a whole answer end in the same object.

use crate::wire::hub::{ChatResponse, FinishReason, ResponseContext, Usage};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

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

    /// The item as written at `status`; an in-progress item shows no
    /// content yet (the `output_item.added` shape).
    pub(crate) fn at(&self, status: Status) -> ItemJson<'_> {
        ItemJson { item: self, status }
    }
}

/// An output item's JSON (see [`OutputItem::at`]).
pub(crate) struct ItemJson<'a> {
    item: &'a OutputItem,
    status: Status,
}

impl Serialize for ItemJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let started = self.status == Status::InProgress;
        let status = self.status.as_str();
        let mut m = s.serialize_map(None)?;
        match self.item {
            OutputItem::Reasoning { id, text } => {
                m.serialize_entry("id", id)?;
                m.serialize_entry("type", "reasoning")?;
                match started {
                    true => m.serialize_entry("summary", &[(); 0])?,
                    false => m.serialize_entry("summary", &[summary_part(text)])?,
                }
            }
            OutputItem::Message { id, text } => {
                m.serialize_entry("id", id)?;
                m.serialize_entry("type", "message")?;
                m.serialize_entry("status", status)?;
                m.serialize_entry("role", "assistant")?;
                match started {
                    true => m.serialize_entry("content", &[(); 0])?,
                    false => m.serialize_entry("content", &[text_part(text)])?,
                }
            }
            OutputItem::FunctionCall {
                id,
                call_id,
                name,
                arguments,
            } => {
                m.serialize_entry("id", id)?;
                m.serialize_entry("type", "function_call")?;
                m.serialize_entry("status", status)?;
                m.serialize_entry("arguments", if started { "" } else { arguments.as_str() })?;
                m.serialize_entry("call_id", call_id)?;
                m.serialize_entry("name", name)?;
            }
        }
        m.end()
    }
}

/// An `output_text` content part.
#[derive(Serialize)]
pub(crate) struct TextPart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    annotations: [(); 0],
    logprobs: [(); 0],
}

pub(crate) fn text_part(text: &str) -> TextPart<'_> {
    TextPart {
        kind: "output_text",
        text,
        annotations: [],
        logprobs: [],
    }
}

/// A reasoning `summary_text` part.
#[derive(Serialize)]
pub(crate) struct SummaryPart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

pub(crate) fn summary_part(text: &str) -> SummaryPart<'_> {
    SummaryPart {
        kind: "summary_text",
        text,
    }
}

#[derive(Serialize)]
struct UsageJson {
    input_tokens: u64,
    input_tokens_details: InputDetails,
    output_tokens: u64,
    output_tokens_details: OutputDetails,
    total_tokens: u64,
}

#[derive(Serialize)]
struct InputDetails {
    cached_tokens: u64,
    cache_write_tokens: u64,
}

#[derive(Serialize)]
struct OutputDetails {
    reasoning_tokens: u64,
}

fn usage_json(u: &Usage) -> UsageJson {
    UsageJson {
        input_tokens: u.prompt_tokens,
        input_tokens_details: InputDetails {
            cached_tokens: u.cached_tokens.unwrap_or(0),
            cache_write_tokens: u.cache_creation_tokens.unwrap_or(0),
        },
        output_tokens: u.completion_tokens,
        output_tokens_details: OutputDetails {
            reasoning_tokens: u.reasoning_tokens.unwrap_or(0),
        },
        total_tokens: u.total_tokens,
    }
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
pub(crate) fn response_json<'a>(p: &'a ResponseParts<'a>) -> ResponseJson<'a> {
    ResponseJson(p)
}

/// The `response` object of [`ResponseParts`], written without a tree.
pub(crate) struct ResponseJson<'a>(&'a ResponseParts<'a>);

/// `output`: only the last item can have been cut short.
struct Output<'a>(&'a ResponseParts<'a>);

impl Serialize for Output<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let last = p.output.len().saturating_sub(1);
        s.collect_seq(p.output.iter().enumerate().map(|(i, item)| {
            let status = match p.status {
                Status::Incomplete(_) if i == last => p.status,
                Status::InProgress => Status::InProgress,
                _ => Status::Completed,
            };
            item.at(status)
        }))
    }
}

#[derive(Serialize)]
struct Reason {
    reason: &'static str,
}

impl Serialize for ResponseJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let none: Option<()> = None;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", p.id)?;
        m.serialize_entry("object", "response")?;
        m.serialize_entry("created_at", &p.created_at)?;
        m.serialize_entry("status", p.status.as_str())?;
        m.serialize_entry("background", &false)?;
        m.serialize_entry("error", &none)?;
        match p.status {
            Status::Incomplete(reason) => {
                m.serialize_entry("incomplete_details", &Reason { reason })?
            }
            _ => m.serialize_entry("incomplete_details", &none)?,
        }
        m.serialize_entry("instructions", &none)?;
        m.serialize_entry("max_output_tokens", &none)?;
        m.serialize_entry("model", p.model)?;
        m.serialize_entry("output", &Output(p))?;
        m.serialize_entry("parallel_tool_calls", &true)?;
        m.serialize_entry("previous_response_id", &none)?;
        m.serialize_entry("reasoning", &none)?;
        m.serialize_entry("store", &false)?;
        m.serialize_entry("temperature", &none)?;
        m.serialize_entry("text", &none)?;
        m.serialize_entry("tool_choice", "auto")?;
        m.serialize_entry("tools", &[(); 0])?;
        m.serialize_entry("top_p", &none)?;
        m.serialize_entry("truncation", "disabled")?;
        m.serialize_entry("usage", &p.usage.map(usage_json))?;
        m.serialize_entry("user", &none)?;
        m.serialize_entry("metadata", &EmptyObject)?;
        m.end()
    }
}

/// `{}`.
struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
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
