//! The internal representation every wire format converts to and from.
//!
//! Ingress edges (today OpenAI Chat Completions) turn a client request into a
//! `ChatRequest`; egress edges (Anthropic, Gemini, …) turn it into their own
//! request, and their responses and stream events back into `ChatResponse`
//! and `StreamEvent`s, which the ingress edge renders for the client. A new
//! wire format is one new edge, not a rewrite.

use crate::error::ApiError;
use crate::wire::sse::SseEvent;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `system` and `developer` messages.
    System,
    User,
    Assistant,
    /// Tool results (`tool`, and legacy `function`).
    Tool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// An http(s) URL the provider fetches.
    Url(String),
    /// Inline bytes, base64-encoded (from a `data:` URI).
    Base64 { media_type: String, data: String },
}

/// Where a document's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentSource {
    /// Inline bytes, base64-encoded (a PDF, say).
    Base64 { media_type: String, data: String },
    /// An http(s) URL the provider fetches.
    Url(String),
    /// Plain text given as a document.
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image {
        source: ImageSource,
        /// OpenAI's `detail` hint, where given.
        detail: Option<String>,
    },
    /// A file such as a PDF (Anthropic `document`, OpenAI `file`, Responses
    /// `input_file`).
    Document {
        source: DocumentSource,
        /// The file name, where the client gave one.
        name: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text of the arguments, as the model produced it.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
    pub name: Option<String>,
    /// Assistant turns: the tool calls the model made.
    pub tool_calls: Vec<ToolCall>,
    /// Tool turns: the call this result answers.
    pub tool_call_id: Option<String>,
    /// Assistant turns: reasoning text returned earlier (`reasoning_content`).
    pub reasoning: Option<String>,
    /// Tool turns: the tool failed and this is its error (Anthropic
    /// `is_error`).
    pub is_error: bool,
}

impl Message {
    /// A message of `role` holding one text part.
    pub fn plain(role: Role, text: &str) -> Self {
        Self {
            role,
            content: vec![Part::Text(text.into())],
            name: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            reasoning: None,
            is_error: false,
        }
    }

    /// Concatenated text parts (images and documents skipped).
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Image { .. } | Part::Document { .. } => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Function(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        strict: Option<bool>,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The upstream model name (after routing).
    pub model: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    /// `max_completion_tokens`, or the legacy `max_tokens`.
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub n: Option<u32>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    pub response_format: Option<ResponseFormat>,
    /// `reasoning_effort`: minimal, low, medium or high.
    pub reasoning_effort: Option<String>,
    pub user: Option<String>,
    /// Request fields the ingress edge does not model. Egress edges reject
    /// the ones they cannot honour (400), never drop them silently.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

impl FinishReason {
    /// The hub reason for any wire's name of it (OpenAI's `finish_reason`,
    /// Anthropic's `stop_reason`, a Responses `incomplete_details.reason`):
    /// the names do not overlap in meaning.
    pub fn from_name(name: &str) -> Self {
        match name {
            "length" | "max_tokens" | "max_output_tokens" | "model_context_window_exceeded" => {
                Self::Length
            }
            "tool_calls" | "function_call" | "tool_use" => Self::ToolCalls,
            "content_filter" | "refusal" => Self::ContentFilter,
            _ => Self::Stop,
        }
    }

    pub fn as_openai(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_tokens: Option<u64>,
    /// Prompt tokens written to the provider's cache (Anthropic).
    pub cache_creation_tokens: Option<u64>,
    /// Completion tokens spent on reasoning.
    pub reasoning_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Choice {
    pub index: u32,
    pub content: Option<String>,
    pub reasoning: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<FinishReason>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
}

/// One step of a streamed response, in the order the client must see it.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// First event: the response id and model.
    Start {
        id: String,
        model: String,
    },
    Text {
        choice: u32,
        text: String,
    },
    Reasoning {
        choice: u32,
        text: String,
    },
    /// A tool call begins; `index` is its ordinal among the choice's tool
    /// calls (0, 1, …), whatever block numbering the provider used.
    ToolCallStart {
        choice: u32,
        index: u32,
        id: String,
        name: String,
    },
    ToolCallArgs {
        choice: u32,
        index: u32,
        fragment: String,
    },
    Finish {
        choice: u32,
        reason: FinishReason,
    },
    /// Final token counts (may arrive before or after `Finish`).
    Usage(Usage),
    /// The provider reported an error mid-stream; nothing follows it.
    Error(ApiError),
}

/// What the flow learns about a request from the client's API, whatever
/// that API is: admission (limits, quotas), routing rules and telemetry
/// read these, never the client's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestFacts {
    /// The most output tokens the client allows (`max_tokens`,
    /// `max_completion_tokens`, `max_output_tokens`), if it set one.
    pub max_tokens: Option<u32>,
    /// Rough prompt size: a token per 4 bytes of message text, tool
    /// definitions and system prompt, plus a few tokens per message.
    pub prompt_tokens: u64,
    /// Messages (or input items) in the conversation.
    pub messages: usize,
    /// The text of the last user message (text parts joined by spaces).
    pub last_user_text: String,
}

/// Facts an egress edge needs to build a response the provider leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseContext {
    /// The upstream model requested (used when the provider omits it).
    pub model: String,
    /// Unix seconds now (for `created`).
    pub created: u64,
    /// Unique per request; edges derive ids from it when the provider has none.
    pub request_id: String,
    /// The gateway's estimate of the prompt's tokens, for client APIs that
    /// report input tokens before the provider has (Anthropic's
    /// `message_start`).
    pub input_tokens_estimate: u64,
}

/// Writes hub stream events in one client API's stream format (OpenAI
/// chunks, Anthropic events, Responses events): the ingress side of a
/// stream.
pub trait StreamWriter {
    /// Appends the frames for one event to `out`.
    fn write(&mut self, event: &StreamEvent, out: &mut Vec<u8>);
    /// The provider's stream ended well: whatever the format owes at the end
    /// (usage, end marker). Not called after an `Error` event was written.
    fn finish(&mut self, out: &mut Vec<u8>);
    /// The last usage seen, for accounting whether or not the client asked.
    fn usage(&self) -> Option<Usage>;
}

/// Turns one provider's stream, event by event, into hub events.
pub trait StreamDecoder {
    /// Translates one complete upstream SSE event.
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>);
    /// The upstream body ended. Emits what is still owed, or an `Error`
    /// event when the provider's stream stopped before its end marker.
    fn finish(&mut self, out: &mut Vec<StreamEvent>);
}

/// `POST /v1/embeddings` in hub form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmbeddingsRequest {
    /// The upstream model name (after routing).
    pub model: String,
    pub inputs: Vec<String>,
    pub dimensions: Option<u32>,
    /// Unmodelled request fields; see `ChatRequest::extra`.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmbeddingsResponse {
    pub model: String,
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f64>>,
    pub prompt_tokens: u64,
}

/// What a provider is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ChatCompletions,
    Embeddings,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat",
            Self::Embeddings => "embeddings",
        }
    }
}

/// An egress edge: one provider wire format.
pub trait Translator {
    /// The upstream path (with query, if any) under the base URL's `prefix`.
    fn path(&self, op: Operation, prefix: &str, model: &str, stream: bool) -> String;
    fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError>;
    fn decode_response(&self, body: &[u8], ctx: &ResponseContext)
        -> Result<ChatResponse, ApiError>;
    fn stream_decoder(&self, ctx: &ResponseContext) -> Box<dyn StreamDecoder>;
    /// An error response (status >= 400) in OpenAI's shape, status kept.
    fn decode_error(&self, status: u16, body: &[u8]) -> ApiError;
    /// A passthrough body (the client's, model renamed) as this provider
    /// takes it.
    fn passthrough_body(&self, body: Vec<u8>) -> Result<Vec<u8>, ApiError> {
        Ok(body)
    }
    /// Where Anthropic's `count_tokens` goes, if the provider serves it.
    fn count_tokens_path(&self, prefix: &str) -> Option<String> {
        Some(format!("{prefix}/messages/count_tokens"))
    }
    /// Whether `e` (decoded by this edge) says the provider refused the
    /// access token it was sent (token-exchange providers).
    fn refuses_token(&self, _e: &ApiError) -> bool {
        false
    }
    /// How the provider frames its streams.
    fn framing(&self) -> crate::wire::stream::Framing {
        crate::wire::stream::Framing::Sse
    }
    fn encode_embeddings(&self, _req: &EmbeddingsRequest) -> Result<Vec<u8>, ApiError> {
        Err(
            ApiError::invalid_request("This model's provider does not serve embeddings.")
                .with_code("unsupported_operation"),
        )
    }
    fn decode_embeddings(
        &self,
        _body: &[u8],
        _ctx: &ResponseContext,
    ) -> Result<EmbeddingsResponse, ApiError> {
        Err(ApiError::new(
            502,
            "api_error",
            "This model's provider does not serve embeddings.",
        ))
    }
}
