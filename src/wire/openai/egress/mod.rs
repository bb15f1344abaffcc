//! OpenAI Chat Completions egress edge: hub `ChatRequest` → `POST
//! {prefix}/chat/completions` body, and OpenAI-compatible responses, stream
//! chunks, errors and embeddings → hub form. It lets clients of the
//! gateway's other APIs (Anthropic Messages, OpenAI Responses) be served by
//! any OpenAI-compatible provider: OpenAI, DeepSeek, Qwen (DashScope),
//! Moonshot, Zhipu, Doubao, Qianfan v2, MiniMax, Mistral, Groq, OpenRouter,
//! Ollama, vLLM.
//!
//! Auth headers are added by the caller, not here. What differs between
//! those providers is in [`OpenAiChatOptions`]; everything else is one
//! mapping, with these choices:
//!
//! # Request choices
//!
//! * **Roles.** `system` and `developer` messages are sent as `system` (the
//!   hub does not tell them apart; every provider takes `system`, and OpenAI
//!   treats it as `developer` for its reasoning models).
//! * **Text-only content is a string.** A message whose parts are all text
//!   (text documents included) is sent as one string: a single part as is,
//!   several joined with `\n` (DeepSeek and others take only strings for
//!   system, assistant and tool turns; vLLM joins parts the same way for
//!   string-only chat templates). Other user messages are sent as parts:
//!   `text`, `image_url {url, detail}` (an http(s) URL or a data URI), and
//!   base64 documents as `file {file_data: "data:<type>;base64,…",
//!   filename}`. A document given by URL is a 400: OpenAI-compatible chat
//!   takes files inline only. Images and base64 documents in system,
//!   assistant or tool turns are a 400 (those roles take text only).
//! * **Assistant turns**: `content` is the text, `null` when the turn only
//!   calls tools, `""` when it has neither (OpenAI requires one of them);
//!   `tool_calls` as `{id, type: function, function: {name, arguments}}`.
//!   Earlier reasoning goes back only with [`ReasoningHistory::ReasoningContent`]
//!   (see there): by default it is not sent, because strict providers (OpenAI,
//!   Groq, Mistral) reject unknown message fields with a 400.
//! * **Tool results**: `role: tool` with `tool_call_id` (a 400 when the hub
//!   message has none) and the text as `content`. A failed tool's result
//!   (`is_error`) is prefixed with [`TOOL_ERROR_PREFIX`]: Chat Completions
//!   has no error flag on tool results, and without it the model would read
//!   the failure as the tool's output. A tool message's `name` is not sent
//!   (the `tool` role has none, and strict providers reject it); `name` is
//!   sent on system, user and assistant messages.
//! * **Tools, `tool_choice`, `parallel_tool_calls`, sampling, `n`, `seed`,
//!   penalties, `user`**: as given; absent fields are not sent. `stop` is
//!   always an array (OpenAI's documented form, which every provider takes).
//!   `response_format`: `text`, `json_object`, or `json_schema {name, schema,
//!   strict}`.
//! * **`max_tokens`** is sent under the name [`MaxTokensField`] says.
//! * **`reasoning_effort`** is sent the way [`ReasoningStyle`] says.
//! * **Streaming**: `stream: true` plus, by default, `stream_options:
//!   {include_usage: true}`: the gateway needs the token counts whatever the
//!   client asked for (its writer decides what the client sees). See
//!   [`StreamUsage`] for providers that reject the field.
//! * **Extra (unmodelled) fields pass through** as top-level members, as
//!   given: they are provider extensions (`top_k`, `enable_thinking`,
//!   `thinking`, `repetition_penalty`, `safe_prompt`, …), and a field this
//!   edge does not know reaches the provider as is, which answers for it
//!   (strict providers with their own 400). Null values are not sent. These
//!   are a 400 instead: `logprobs: true` and non-zero `top_logprobs` (the hub
//!   has no place for log probabilities), `audio` and `modalities` other than
//!   text (nor for audio output), and a field this edge already writes from
//!   the request (it is never silently overridden, nor sent twice).
//!
//! # Response choices
//!
//! * **Content**: a string, or an array of parts (Mistral's reasoning
//!   models): `text` parts are concatenated, `thinking` parts become
//!   reasoning, `reference` parts (citation ids) are skipped; any other part
//!   type is a 502 rather than dropped. `reasoning_content` (DeepSeek, Qwen,
//!   Zhipu, Moonshot, Doubao) or else `reasoning` (OpenRouter, vLLM, Groq,
//!   Ollama) → reasoning.
//! * **Refusals** (`refusal`, OpenAI structured outputs) become the content
//!   text, and a `stop` finish becomes `content_filter`: the hub has no
//!   refusal channel, and `content_filter` is what it calls a refusal.
//! * **Tool calls**: `id` kept (`call_<request_id>_<n>` when the provider
//!   sent none); `function.name` is required (a 502 otherwise); `arguments`
//!   kept as text (a JSON value instead of a string is re-serialized; missing
//!   or empty becomes `{}`, so every call carries valid JSON). A legacy
//!   `function_call` is a tool call too.
//! * **`finish_reason`**: `stop`, `length`, `tool_calls`, `content_filter`
//!   kept; `function_call` → `tool_calls`; anything else → `stop`. A `stop`
//!   (or unknown reason) on a choice that called tools becomes `tool_calls`
//!   (OpenAI answers a forced `tool_choice` with `stop`; older vLLM and
//!   Ollama do the same), since the other client APIs loop on it. A missing
//!   finish reason is derived the same way.
//! * **Usage**: prompt, completion, total (their sum when absent); cached
//!   prompt tokens from `prompt_tokens_details.cached_tokens`, DeepSeek's
//!   `prompt_cache_hit_tokens` or Moonshot's `usage.cached_tokens`;
//!   reasoning tokens from `completion_tokens_details.reasoning_tokens`.
//!   Usage that cannot be read counts as absent rather than failing the
//!   answer; counts sent as floats are rounded.
//! * `id`, `model` and `created` are the provider's, else
//!   `chatcmpl-<request_id>`, the requested model, and now.
//! * A 200 whose body is an error (`{"error": …}`, or vLLM's `{"object":
//!   "error", …}`) is that error, normalized like any upstream error, with
//!   the status its `code` names (a number from 400 to 599, or OpenAI's
//!   `rate_limit_exceeded`, `insufficient_quota`, `invalid_api_key`,
//!   `model_not_found`, `context_length_exceeded`) or else 502. MiniMax's
//!   `base_resp` with a non-zero `status_code` and no choices is an error
//!   too (its documented rate-limit, authentication, balance and parameter
//!   codes → 429, 401, 402, 400; others 502). Any other body that is not a
//!   chat completion (not JSON, not an object, no `choices`, a member of the
//!   wrong type) is a 502 `upstream_invalid_response` naming what was
//!   wrong.
//!
//! # Stream choices
//!
//! * Every `data:` is one `chat.completion.chunk`, translated as it arrives:
//!   `Start {id, model}` from the first chunk, then per choice reasoning,
//!   text and tool-call events, then `Finish` at its `finish_reason`
//!   (mapped as above, once per choice).
//! * **Tool calls** are tracked per choice by the provider's `index`.
//!   `ToolCallStart` is emitted once the call's name is known together with
//!   its id or its first argument text (providers send id, name and
//!   arguments together, or name and arguments in separate deltas, or the
//!   whole arguments in the first delta); argument text that arrives before
//!   is held and sent right after. A repeated id or name is ignored, and an
//!   empty string counts as absent (DashScope repeats `"id": ""`). A
//!   different id at an index already in use starts a new call (providers
//!   that put every call at index 0); a delta without `index` belongs to the
//!   call with its id, else starts a call when it names one, else continues
//!   the last call. At the choice's finish, calls still unannounced are
//!   announced (ids made up as above) and calls without argument text get
//!   `{}`.
//! * **Usage** from the usage chunk (`choices: []`), a chunk's own `usage`
//!   (DeepSeek), a choice's `usage` (Moonshot) or `x_groq.usage` (Groq) is
//!   kept, the latest winning, and emitted once at the end.
//! * **End**: `data: [DONE]` ends the stream: choices without a finish
//!   reason get one (derived as above) and usage is emitted; later events
//!   are ignored. A body that ends without `[DONE]` is complete when every
//!   choice seen has finished (Ollama-style streams); otherwise `finish()`
//!   reports the stream as cut short (502).
//! * **Errors**: an event whose data carries `error` (OpenAI, OpenRouter and
//!   vLLM send errors mid-stream this way) or a failing MiniMax `base_resp`
//!   is an `Error` event, normalized by
//!   [`crate::error::normalize_upstream_error`], status as above; an event
//!   that is not a chat completion chunk is a 502 `Error`. Nothing is
//!   translated after an error; usage seen so far is emitted before it.
//!
//! # Embeddings
//!
//! `{prefix}/embeddings` with `model`, `input` (always an array),
//! `dimensions` and extra fields as given (an extra field named like one of
//! those is a 400, as for chat). No `encoding_format` is sent
//! (floats are every provider's default); the response's vectors are read
//! as floats, or as OpenAI's base64 (little-endian f32) when a provider
//! sends that, and put in input order by their `index`.
//!
//! # Errors
//!
//! Error responses (status >= 400) go through
//! [`crate::error::normalize_upstream_error`], which reads OpenAI's shape and
//! the compatible family's variants (Zhipu's numeric codes, vLLM's and
//! Mistral's top-level `message`).

mod embeddings;
mod error;
mod messages;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;
mod wire;

pub use stream::OpenAiChatStream;

/// A chat completion read back into hub form (the response cache keeps
/// answers in this shape).
pub fn decode_completion(
    body: &[u8],
    ctx: &crate::wire::hub::ResponseContext,
) -> Result<crate::wire::hub::ChatResponse, ApiError> {
    response::decode(body, ctx)
}

use crate::error::ApiError;
use crate::wire::hub::Operation;
use crate::wire::hub::{
    ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, ResponseContext,
    StreamDecoder, Translator,
};

/// Text put before a failed tool's result (see the module docs).
pub const TOOL_ERROR_PREFIX: &str = "Error: ";

/// Most choices a stream may report (OpenAI's `n` goes up to 128).
const MAX_CHOICES: usize = 128;
/// Most tool calls one choice may make in a stream.
const MAX_TOOL_CALLS: usize = 1024;
/// Most argument text held for a tool call that is not yet announced.
const MAX_HELD_ARGUMENTS: usize = 1 << 20;

/// The request field that carries the output token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxTokensField {
    /// `max_tokens`: what the OpenAI-compatible family takes (Mistral and
    /// Zhipu reject the newer name).
    #[default]
    MaxTokens,
    /// `max_completion_tokens`: what OpenAI itself wants, and the only name
    /// its reasoning models (o-series, GPT-5) accept.
    MaxCompletionTokens,
}

/// How `reasoning_effort` is expressed upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasoningStyle {
    /// The provider has no reasoning switch (reasoning is chosen by model):
    /// a request with `reasoning_effort` is a 400 rather than silently
    /// ignored.
    None,
    /// `reasoning_effort` as given (OpenAI, OpenRouter, Groq, Mistral,
    /// DeepSeek); the provider judges the value.
    #[default]
    Effort,
    /// `thinking: {type: enabled | disabled}` (Zhipu GLM-4.5 and later,
    /// Volcengine Ark's Doubao, DeepSeek): `none` disables thinking, every
    /// other effort enables it (the switch has no levels).
    Thinking,
    /// `enable_thinking: true | false` (Qwen3 and GLM on DashScope): `none`
    /// → false, every other effort → true.
    EnableThinking,
}

/// Whether assistant turns carry their earlier reasoning back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasoningHistory {
    /// Not sent. Strict providers (OpenAI, Groq, Mistral) reject unknown
    /// message fields, and DeepSeek's first reasoner (R1) rejected
    /// `reasoning_content` in input.
    #[default]
    Omit,
    /// Sent as `reasoning_content`. DeepSeek's current thinking mode answers
    /// a 400 when a turn that called tools comes back without it (and
    /// ignores it elsewhere); Moonshot's and Zhipu's thinking models keep it
    /// as context across tool calls.
    ReasoningContent,
}

/// How a stream is made to report token usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamUsage {
    /// `stream_options: {include_usage: true}` (OpenAI and most of the
    /// family report usage only when asked).
    #[default]
    Request,
    /// Nothing sent: the provider reports usage unasked and rejects
    /// `stream_options` (Mistral answers it with a 422).
    Unrequested,
}

/// Tunables of the OpenAI Chat Completions edge, per provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenAiChatOptions {
    pub max_tokens_field: MaxTokensField,
    pub reasoning: ReasoningStyle,
    pub reasoning_history: ReasoningHistory,
    pub stream_usage: StreamUsage,
}

/// The OpenAI Chat Completions translator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenAiChat {
    pub options: OpenAiChatOptions,
}

impl OpenAiChat {
    pub fn new(options: OpenAiChatOptions) -> Self {
        Self { options }
    }
}

impl Translator for OpenAiChat {
    /// `{prefix}/chat/completions` or `{prefix}/embeddings`.
    fn path(&self, op: Operation, prefix: &str, _model: &str, _stream: bool) -> String {
        let suffix = match op {
            Operation::ChatCompletions => "/chat/completions",
            Operation::Embeddings => "/embeddings",
        };
        format!("{prefix}{suffix}")
    }

    fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        request::encode(req, &self.options)
    }

    fn decode_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<ChatResponse, ApiError> {
        response::decode(body, ctx)
    }

    fn stream_decoder(&self, ctx: &ResponseContext) -> Box<dyn StreamDecoder> {
        Box::new(OpenAiChatStream::new(ctx))
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> ApiError {
        crate::error::normalize_upstream_error(status, body)
    }

    fn encode_embeddings(&self, req: &EmbeddingsRequest) -> Result<Vec<u8>, ApiError> {
        embeddings::encode(req)
    }

    fn decode_embeddings(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<EmbeddingsResponse, ApiError> {
        embeddings::decode(body, ctx)
    }
}
