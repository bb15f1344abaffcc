//! The Anthropic Messages API as a client API of the gateway (the ingress
//! edge of the hub): `POST /v1/messages`, `POST /v1/messages/count_tokens`
//! and `GET /v1/models` in Anthropic's shapes, so Claude Code and the
//! official `anthropic` SDKs can be served by any provider. The opposite
//! direction (hub → Anthropic as a provider) is `providers::anthropic`.
//!
//! Choices this edge makes where the APIs do not line up:
//!
//! * **Validation** (`parse_request`, `parse_count_tokens`) follows
//!   Anthropic's rules and wording (`max_tokens: Field required`,
//!   `messages.0.role: Input should be 'user' or 'assistant'`, unknown
//!   top-level fields `<field>: Extra inputs are not permitted`); `param`
//!   holds the dotted path. `null` counts as absent for optional fields;
//!   integers may be written as `1024.0`. Inside blocks and tools only the
//!   fields the translation reads are checked: newer clients add beta fields
//!   there (`defer_loading`, `input_examples`, `cache_control.scope`) that
//!   Anthropic itself accepts. Block types this edge does not know (new
//!   ones, server-side blocks) pass validation so passthrough to Anthropic
//!   keeps working; `to_hub` refuses them. `thinking.budget_tokens <
//!   max_tokens` is not enforced: the `interleaved-thinking` beta, which
//!   Claude Code always sends, lifts it, and headers are not seen here.
//!   `output_config` (`effort`, `format`) and the beta `output_format` are
//!   accepted besides the fields of the API reference.
//! * **System**: a string, or text blocks, becomes one System message with
//!   one text part per non-empty block (egress edges keep the blocks apart).
//! * **Turns**: a user turn's text, image and document blocks become user
//!   message parts; each `tool_result` becomes a `Role::Tool` message
//!   (`tool_call_id`, `is_error`, text/image/document content), splitting the
//!   turn so the order of results and text is kept. Assistant `tool_use` →
//!   tool calls (`input` as JSON text, key order kept); `thinking` blocks →
//!   `reasoning` (concatenated; signatures are Anthropic's and are dropped);
//!   `redacted_thinking` is dropped (encrypted). Text and tool calls of one
//!   assistant turn are kept apart by the hub, so their interleaving is not.
//!   Blocks in the wrong role (`tool_result` from the assistant, `tool_use`
//!   or `thinking` from the user) are 400s.
//! * **Media**: image sources `base64` and `url`; document sources
//!   `base64` (PDF), `url`, `text` and `content` (its text blocks, one per
//!   line); `title` → the document's name. `file` sources (Anthropic's Files
//!   API) are 400s: no other provider can read them.
//! * **Anthropic-only features** are 400s naming them
//!   (`anthropic_only_feature`): server tools (any tool with a `type` other
//!   than `custom`), non-empty `mcp_servers`, and server-side blocks in the
//!   history (`server_tool_use`, `web_search_tool_result`, …). Settings that
//!   only steer Anthropic are dropped silently: `cache_control`,
//!   `citations`, `context_management`, `service_tier`, `container`.
//! * **Tools**: `input_schema` → parameters, `strict` kept. `tool_choice`
//!   auto → auto, any → required, tool → the named function, none → none;
//!   `disable_parallel_tool_use: true` → `parallel_tool_calls: false`
//!   (`false` is Anthropic's default and says nothing).
//! * **Sampling**: `max_tokens`, `temperature`, `top_p`, `stop_sequences` →
//!   stop; `top_k` → `extra["top_k"]` (egress edges that know it pass it on,
//!   others refuse it); `metadata.user_id` → user; `stream` → stream with
//!   `include_usage` (Anthropic streams always end with usage).
//! * **Thinking** → `reasoning_effort`: `enabled` by budget (< 4096 low,
//!   < 16384 medium, else high), `disabled` → none, `adaptive` → the
//!   `output_config.effort` when given (`max` → high), else medium.
//!   `output_config.effort` without adaptive thinking is dropped: the hub's
//!   only effort knob is reasoning, which it would turn on.
//! * **Structured output**: `output_config.format` (or `output_format`)
//!   `json_schema` → `response_format` json_schema named `response`,
//!   strict (Anthropic always enforces the schema).
//! * **Facts**: the prompt estimate counts system text, text blocks, tool
//!   result text and the tools' JSON, a token per 4 bytes plus 4 per
//!   message (the OpenAI rule). The last user text is that of the last user
//!   turn with text: turns of tool results only are what OpenAI sends as
//!   `tool` messages.
//! * **Responses**: the first choice only. Blocks in order: `thinking` (its
//!   `signature` is empty — only Anthropic signs thinking, and Anthropic
//!   would refuse the block if a client sent it back there), `text`,
//!   `tool_use` (arguments parsed into `input`; arguments that are not a JSON
//!   object are a 502 `upstream_invalid_response`, since Anthropic clients
//!   cannot use them). `stop_reason`: stop → end_turn, length → max_tokens,
//!   tool_calls → tool_use, content_filter → refusal; none given → tool_use
//!   after tool calls, else end_turn; `stop_sequence` is always null (the hub
//!   does not say which sequence matched). The id is the provider's when it
//!   starts with `msg_`, else `msg_` + it (or + the request id).
//! * **Usage**: `input_tokens` = prompt − cache reads − cache writes
//!   (Anthropic counts both apart, and the hub's prompt tokens include them);
//!   `cache_read_input_tokens` / `cache_creation_input_tokens` when the
//!   provider reported them. Without usage, the gateway's prompt estimate
//!   and 0 output tokens.
//! * **Streams** (`MessagesWriter`): `message_start` (usage = the prompt
//!   estimate, 1 output token, as Anthropic reports before generating),
//!   `ping`, blocks with consecutive indexes, `message_delta` once both
//!   the finish and the usage are known (or at the end), `message_stop`.
//!   A stream with no finish ends `tool_use` after tool calls, else
//!   `end_turn`. Thinking blocks get no `signature_delta`. Tool arguments
//!   for a call whose block is already closed cannot be placed: the stream
//!   ends with an error event. Errors are `event: error` frames; nothing
//!   follows them.
//! * **Errors** (`render_error`): Anthropic's type for the status (400
//!   invalid_request_error, 401 authentication_error, 402 billing_error, 403
//!   permission_error, 404 not_found_error, 413 request_too_large, 429
//!   rate_limit_error, 408/504 timeout_error, 529 overloaded_error, other 4xx
//!   invalid_request_error, other 5xx api_error), except that an Anthropic
//!   type the Anthropic egress kept in `code` (`overloaded_error`, …) or an
//!   Anthropic-only type in `kind` wins.

mod errors;
mod facts;
mod loc;
mod parse;
mod quick;
mod render;
mod to_hub;
mod watcher;
mod writer;

#[cfg(test)]
mod tests;

pub use errors::{render_error, stream_error};
pub use facts::facts;
pub(crate) use parse::{COUNT_TOKENS_FIELDS, MESSAGES_FIELDS};
pub use render::{models_list, render_count_tokens, render_response};
pub use to_hub::{anthropic_only_feature, to_hub};
pub use watcher::{body_outcome, body_usage, AnthropicWatcher};
pub use writer::MessagesWriter;

use crate::error::ApiError;
use crate::wire::openai::ParsedRequest;
use parse::Endpoint;

/// Parses and validates a `POST /v1/messages` body.
pub fn parse_request(bytes: &[u8]) -> Result<ParsedRequest, ApiError> {
    parse::parse(bytes, Endpoint::Messages)
}

/// As `parse_request`, keeping the bytes; a body the one-pass check
/// accepts builds no tree until something asks for one.
pub fn parse_request_owned(bytes: Vec<u8>) -> Result<ParsedRequest, ApiError> {
    if let Some(checked) = quick::messages(&bytes) {
        return Ok(ParsedRequest::unparsed(checked, bytes));
    }
    let mut parsed = parse_request(&bytes)?;
    parsed.raw = bytes;
    Ok(parsed)
}

/// Parses and validates a `POST /v1/messages/count_tokens` body (no
/// `max_tokens`, no `stream`, no sampling parameters).
pub fn parse_count_tokens(bytes: &[u8]) -> Result<ParsedRequest, ApiError> {
    parse::parse(bytes, Endpoint::CountTokens)
}

/// `s` as a JSON string literal.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}
