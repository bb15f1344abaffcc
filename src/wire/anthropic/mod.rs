//! Anthropic Messages API edge: hub `ChatRequest` → `POST {prefix}/messages`
//! body, and Anthropic responses, stream events and errors → hub form.
//!
//! Headers (`x-api-key`, `anthropic-version`) are added by the caller, not
//! here. Choices this edge makes where the two APIs do not line up:
//!
//! * **System prompt.** Every `system`/`developer` message, wherever it sits,
//!   is hoisted in order into the top-level `system` (Anthropic has no
//!   mid-conversation system turn): a string when there is one text, else an
//!   array of text blocks. Images there are a 400 (system takes text only).
//! * **Turns.** Consecutive messages mapping to the same Anthropic role are
//!   merged into one turn; tool results (`role: tool`) become `tool_result`
//!   blocks in a user turn, and inside a user turn every `tool_result` is
//!   placed before other blocks (Anthropic requires results first), so a
//!   user text following tool results joins their turn after them. Empty
//!   text parts are dropped and a message left with no block at all is
//!   skipped (Anthropic rejects empty text blocks and empty turns).
//! * **Leading assistant turn.** Anthropic requires the first turn to be a
//!   user turn; when the conversation starts with an assistant turn (a
//!   greeting, typically) a user turn holding [`LEADING_USER_PLACEHOLDER`]
//!   is inserted before it rather than failing the request.
//! * **Reasoning history.** An assistant message's `reasoning_content` is
//!   not sent back: Anthropic only accepts prior thinking blocks with the
//!   signature it issued, which the hub does not carry, and re-sending it as
//!   text would change the transcript. (Anthropic ignores earlier turns'
//!   thinking for context anyway.)
//! * **`reasoning_effort`** maps to extended thinking. In the default
//!   [`ThinkingMode::Budget`], `thinking: {type: enabled, budget_tokens}` with
//!   the budget from [`AnthropicOptions`] (`minimal` uses the low budget:
//!   1024 is Anthropic's minimum; `none` disables thinking). `max_tokens`
//!   must exceed the budget: when the client left it unset it becomes
//!   `budget + default_max_tokens`; when the client set it (OpenAI counts
//!   reasoning inside `max_completion_tokens`, as Anthropic does inside
//!   `max_tokens`) the budget shrinks to `max_tokens - 1`, and a
//!   `max_tokens` of 1024 or less is a 400. [`ThinkingMode::Adaptive`] (for
//!   Claude 4.6 and later, where budgets are deprecated or rejected) sends
//!   `thinking: {type: adaptive}` and `output_config.effort` instead. With
//!   thinking on, `temperature` other than 1, `top_p` below 0.95, `top_k`
//!   and a forced `tool_choice` (`required` or named) are 400s, as
//!   documented by Anthropic.
//! * **`response_format`**: `json_schema` → `output_config.format`
//!   (`{type: json_schema, schema}`, Anthropic structured outputs; the
//!   schema is passed as given and Anthropic reports the constructs it does
//!   not support; the format's `name` has no Anthropic counterpart, and
//!   Anthropic always enforces the schema, whatever `strict` says). `json_object` is a 400: Anthropic has no "any JSON
//!   object" mode (its schemas need `additionalProperties: false`). `text`
//!   is the default and sends nothing.
//! * **Tools**: `strict: true` is forwarded (Anthropic strict tool use).
//!   A missing `parameters` becomes `{"type":"object","properties":{}}`.
//! * **Ignored hints**: an image part's `detail` and a message's `name`
//!   have no Anthropic equivalent and change nothing about the answer's
//!   validity, so they are not forwarded.
//! * **Parameters Anthropic cannot honour** are 400 `invalid_request_error`
//!   naming the parameter: `n > 1`, `seed`, non-zero `presence_penalty` /
//!   `frequency_penalty`, `logprobs: true`, `top_logprobs > 0`, a non-empty
//!   `logit_bias`, `store: true`, and every other unmodelled field. Their
//!   no-op values (`n: 1`, penalties 0, `logprobs: false`, …) are accepted.
//!   Anthropic-native fields given through `extra_body` pass through:
//!   `top_k` (integer) and `thinking` (object; a 400 together with
//!   `reasoning_effort`). `safety_identifier` is sent as
//!   `metadata.user_id` like `user`.
//! * **Responses**: text blocks are concatenated into `content`, thinking
//!   blocks into `reasoning` (redacted thinking is dropped: it is
//!   encrypted), `tool_use` blocks become tool calls with `input`
//!   re-serialized (object keys come out sorted, as `serde_json` stores
//!   them). `stop_reason`: `end_turn`, `stop_sequence`, `pause_turn` →
//!   `stop`; `max_tokens`, `model_context_window_exceeded` → `length`;
//!   `tool_use` → `tool_calls`; `refusal` → `content_filter`; anything else
//!   → `stop`. A missing stop reason becomes `tool_calls` when there are
//!   tool calls, else `stop` (streams likewise at `message_stop`).
//! * **Errors**: Anthropic's error `type` is kept when OpenAI has the same
//!   type (`invalid_request_error`, `authentication_error`,
//!   `permission_error`, `not_found_error`, `rate_limit_error`,
//!   `api_error`, `timeout_error`); other types (`overloaded_error`,
//!   `request_too_large`, `billing_error`, …) take the OpenAI type for the
//!   status (`overloaded_error` → `api_error`) and keep Anthropic's type as
//!   the error `code`, so clients branching on either still can.

mod error;
pub mod ingress;
mod messages;
mod request;
mod response;
mod response_scan;
mod stream;
#[cfg(test)]
mod tests;

pub use stream::AnthropicStreamDecoder;

use crate::error::ApiError;
use crate::wire::hub::Operation;
use crate::wire::hub::{ChatRequest, ChatResponse, ResponseContext, StreamDecoder, Translator};
use error::decode_error_body;
pub use error::decode_error_body as decode_error;
use response::decode_message;

/// Provider name used in error messages.
const PROVIDER: &str = "Anthropic";

/// Text of the user turn inserted before a leading assistant turn.
pub const LEADING_USER_PLACEHOLDER: &str = ".";

/// Anthropic's minimum `thinking.budget_tokens`.
pub const MIN_THINKING_BUDGET: u32 = 1024;

/// How `reasoning_effort` is expressed upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThinkingMode {
    /// `thinking: {type: enabled, budget_tokens}` (Claude 3.7 – 4.5; deprecated
    /// on 4.6).
    #[default]
    Budget,
    /// `thinking: {type: adaptive}` plus `output_config.effort` (Claude 4.6
    /// and later; the only form newer models accept).
    Adaptive,
}

/// Tunables of the Anthropic edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnthropicOptions {
    /// `max_tokens` when the client sets none (Anthropic requires one).
    pub default_max_tokens: u32,
    /// How `reasoning_effort` is sent.
    pub thinking_mode: ThinkingMode,
    /// `budget_tokens` for `reasoning_effort` `minimal` and `low`.
    pub thinking_budget_low: u32,
    /// `budget_tokens` for `reasoning_effort` `medium`.
    pub thinking_budget_medium: u32,
    /// `budget_tokens` for `reasoning_effort` `high`.
    pub thinking_budget_high: u32,
}

impl Default for AnthropicOptions {
    /// 4096 output tokens by default; thinking budgets 1024 (low: the API's
    /// minimum), 4096 (medium) and 16384 (high).
    fn default() -> Self {
        Self {
            default_max_tokens: 4096,
            thinking_mode: ThinkingMode::Budget,
            thinking_budget_low: MIN_THINKING_BUDGET,
            thinking_budget_medium: 4096,
            thinking_budget_high: 16384,
        }
    }
}

/// The Anthropic Messages translator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Anthropic {
    pub options: AnthropicOptions,
}

impl Anthropic {
    pub fn new(options: AnthropicOptions) -> Self {
        Self { options }
    }
}

impl Translator for Anthropic {
    /// `{prefix}/messages`. Anthropic serves no embeddings: the default
    /// `encode_embeddings` rejects those before any path is used.
    fn path(&self, op: Operation, prefix: &str, _model: &str, _stream: bool) -> String {
        match op {
            Operation::ChatCompletions => [prefix, "/messages"].concat(),
            Operation::Embeddings => format!("{prefix}/embeddings"),
        }
    }

    fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        let body = self.encode(req)?;
        serde_json::to_vec(&body).map_err(|e| {
            ApiError::new(
                500,
                "api_error",
                format!("Could not serialize the {PROVIDER} request: {e}."),
            )
        })
    }

    fn decode_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<ChatResponse, ApiError> {
        decode_message(body, ctx)
    }

    fn stream_decoder(&self, _ctx: &ResponseContext) -> Box<dyn StreamDecoder> {
        Box::new(AnthropicStreamDecoder::new())
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> ApiError {
        decode_error_body(status, body)
    }
}
