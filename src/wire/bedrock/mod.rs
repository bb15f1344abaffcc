//! Amazon Bedrock Converse API egress edge (`/model/{modelId}/converse` and
//! `/converse-stream`): one request shape for every model family Bedrock
//! hosts (Anthropic Claude, Amazon Nova, Meta Llama, DeepSeek, Mistral, …).
//!
//! # Request choices
//!
//! * `system`/`developer` texts become `system` blocks, in order; images or
//!   documents there are a 400.
//! * user → `user`, assistant → `assistant`, tool results → `toolResult`
//!   blocks in a `user` turn (first in it); consecutive turns of one role
//!   are merged (Converse wants them alternating). A conversation that
//!   starts with the assistant gets a leading user turn holding `.`.
//! * Images: base64 (`data:` URLs) → `image {format, source.bytes}` for
//!   png, jpeg, gif and webp; Converse fetches no URLs, so http(s) images
//!   are a 400. Documents: base64 → `document {format, name, source.bytes}`
//!   for the formats Converse documents (pdf, csv, doc, docx, xls, xlsx,
//!   html, txt, md); text documents are sent as `txt`. The name is the
//!   client's file name reduced to the characters Converse allows (letters,
//!   digits, spaces, `-`, `(`, `)`, `[`, `]`), else `document-<n>`.
//! * Tool calls → `toolUse {toolUseId, name, input}` (arguments must be a
//!   JSON object; empty means `{}`); tool results → `toolResult {toolUseId,
//!   content: [{text}], status: error}` when the tool failed.
//! * Tools → `toolConfig.tools[].toolSpec {name, description,
//!   inputSchema.json}`; `tool_choice` auto → `{auto:{}}`, required →
//!   `{any:{}}`, a function → `{tool:{name}}`. Converse refuses tool blocks
//!   in the history unless tools are declared, so a tool the history called
//!   but the request does not declare is declared with an open schema
//!   (agents summarising a conversation send no tools). Converse has no
//!   "none": with `none` the tools are not offered unless the history needs
//!   them declared. `parallel_tool_calls: false` is a 400 (no Converse
//!   counterpart).
//! * `inferenceConfig`: maxTokens, temperature, topP, stopSequences.
//!   `n` > 1, `seed`, non-zero penalties, `logprobs` and JSON response formats
//!   are a 400 (Converse has no such fields).
//! * `reasoning_effort`: Claude models → `additionalModelRequestFields.
//!   thinking {type: enabled, budget_tokens}` (low 1024, medium 8192, high
//!   24576, fitted under max_tokens like the Anthropic edge); Amazon Nova →
//!   `additionalModelRequestFields.reasoningConfig {type: enabled,
//!   maxReasoningEffort}`; other models → 400 (pass Bedrock's own field in
//!   `additionalModelRequestFields` instead). `none` sends nothing.
//! * Extra fields passed through: `additionalModelRequestFields` (object,
//!   merged, e.g. `top_k`), `top_k` (→ `additionalModelRequestFields.top_k`),
//!   `thinking` (object → `additionalModelRequestFields.thinking`),
//!   `guardrailConfig`, `performanceConfig`, `requestMetadata`,
//!   `additionalModelResponseFieldPaths` (snake_case spellings too);
//!   OpenAI's `metadata` (string values) → `requestMetadata`. Any other
//!   unmodelled field is a 400. `user` and `safety_identifier` are advisory
//!   and not sent.
//!
//! # Response choices
//!
//! * One choice. `text` blocks concatenated; `reasoningContent.
//!   reasoningText.text` → reasoning; `toolUse` → tool calls (the
//!   `toolUseId` is the call id, `input` the arguments). Blocks the hub
//!   cannot carry (images, documents, …) are a 502, never dropped.
//! * stopReason: end_turn, stop_sequence → stop; tool_use → tool_calls;
//!   max_tokens, model_context_window_exceeded → length;
//!   guardrail_intervened, content_filtered → content_filter.
//! * Usage: prompt = inputTokens + cacheReadInputTokens +
//!   cacheWriteInputTokens (cached = the reads); completion = outputTokens.
//! * Streams are AWS event-stream messages (see `wire::eventstream`);
//!   events messageStart, contentBlockStart (tool calls), contentBlockDelta
//!   (text, reasoning, tool input), contentBlockStop, messageStop,
//!   metadata (usage). An exception message (`throttlingException`,
//!   `modelStreamErrorException`, …) ends the stream with an error event
//!   carrying its status; a stream without `messageStop` is an error.

mod error;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use error::decode_error_body as decode_error;
pub use stream::BedrockStream;

use crate::error::ApiError;
use crate::wire::hub::{
    ChatRequest, ChatResponse, Operation, ResponseContext, StreamDecoder, Translator,
};
use crate::wire::stream::Framing;

/// The provider's name in error messages.
const PROVIDER: &str = "Amazon Bedrock";
/// Longest provider error message kept.
const MAX_MESSAGE_CHARS: usize = 2000;

/// The Bedrock Converse wire format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bedrock;

impl Translator for Bedrock {
    fn path(&self, _op: Operation, prefix: &str, model: &str, stream: bool) -> String {
        let prefix = prefix.trim_end_matches('/');
        let method = if stream {
            "converse-stream"
        } else {
            "converse"
        };
        format!("{prefix}/model/{}/{method}", encode_model_id(model))
    }

    fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        request::encode(req).map(|v| crate::wire::json_bytes(&v))
    }

    fn decode_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<ChatResponse, ApiError> {
        response::decode(body, ctx)
    }

    fn stream_decoder(&self, ctx: &ResponseContext) -> Box<dyn StreamDecoder> {
        Box::new(BedrockStream::new(ctx))
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> ApiError {
        error::decode_error_body(status, body)
    }

    fn framing(&self) -> Framing {
        Framing::AwsEventStream
    }
}

/// Whether `model` may name a Bedrock model in the URL: a model id
/// (`anthropic.claude-sonnet-4-20250514-v1:0`), an inference profile
/// (`us.amazon.nova-pro-v1:0`) or an ARN (`arn:aws:bedrock:…/…`). Every
/// character outside letters, digits, `-`, `_` and `.` is percent-encoded
/// in the path, so none can change the resource or method called.
pub fn is_model_id(model: &str) -> bool {
    let arn = model.starts_with("arn:");
    !model.is_empty()
        && model.len() <= 2048
        && !model.starts_with('.')
        && model.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b':')
                || (arn && b == b'/')
        })
}

/// The model id as one path segment (`:` → `%3A`, `/` → `%2F`).
fn encode_model_id(model: &str) -> String {
    let mut out = String::with_capacity(model.len() + 8);
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
