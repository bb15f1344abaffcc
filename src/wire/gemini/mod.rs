//! Google Gemini (Generative Language API, `generateContent`) egress edge.
//!
//! Translates hub requests into `GenerateContentRequest` JSON and Gemini's
//! `GenerateContentResponse` (whole, or streamed with `alt=sse`) back into
//! hub responses and stream events; embeddings go through
//! `batchEmbedContents`.
//!
//! # Request choices
//!
//! * `system`/`developer` messages become `systemInstruction` parts, one text
//!   part per text content part, in order, wherever they appear in the
//!   conversation (Gemini has a single system instruction). Images there are
//!   a 400.
//! * user → role `user`, assistant → role `model`, tool results → role `user`
//!   `functionResponse` parts; consecutive turns of the same role are merged
//!   into one `Content`. Empty text parts are not sent (Gemini rejects empty
//!   parts); a message left with no parts adds nothing.
//! * Images: base64 → `inlineData`; http(s) URLs → `fileData` with the MIME
//!   type taken from the URL path's extension (png, jpg/jpeg, webp, heic,
//!   heif, pdf — the formats Gemini documents); any other URL is a 400. The
//!   OpenAI `detail` hint has no per-part Gemini counterpart in v1beta and is
//!   not sent.
//! * Tools: `functionDeclarations` with the JSON Schema in
//!   `parametersJsonSchema`, which takes standard JSON Schema (the older
//!   `parameters` field is an OpenAPI-subset proto that rejects common
//!   keywords such as `additionalProperties`, `$schema`, `const` or type
//!   arrays with a 400). Only a root `$schema` (a dialect marker, no
//!   constraint) is removed. `strict` has no Gemini counterpart and is not
//!   sent: Gemini validates calls against the declaration itself.
//! * `tool_choice`: auto → AUTO, none → NONE, required → ANY, named → ANY +
//!   `allowedFunctionNames`. Without tools, auto/none need no `toolConfig`;
//!   required/named are a 400, as is a named function that is not declared.
//! * `parallel_tool_calls`: true (Gemini's behaviour) is accepted; false is a
//!   400 because Gemini has no way to limit a turn to one call.
//! * Assistant tool calls → `functionCall {name, args}` (arguments must be a
//!   JSON object; an empty string counts as `{}`; anything else is a 400
//!   naming the message). The assistant's `reasoning_content` is not sent:
//!   Gemini does not take thought text as input — its reasoning context
//!   travels in thought signatures (below).
//! * Thought signatures: Gemini 3 rejects a follow-up request whose
//!   `functionCall` parts lack the `thoughtSignature` Gemini returned with
//!   them. The gateway is stateless, so the signature rides in the tool call
//!   id it hands the client: `call_<request_id>_<n>__thought__<signature in
//!   base64url>`; when the client echoes the call back, the signature is
//!   restored. For Gemini 3+ model names, a model turn whose calls carry no
//!   signature at all (history from another provider) gets Gemini's
//!   documented `skip_thought_signature_validator` on its first call.
//! * Tool results: the function name is looked up from the earlier assistant
//!   tool call with the same id (falling back to the message's `name`, which
//!   is how legacy `function` messages arrive); otherwise 400. The result
//!   text becomes `response`: the JSON object itself when the text is one,
//!   else `{"result": text}`. Images in tool results are a 400.
//! * `generationConfig`: temperature, topP, maxOutputTokens, stopSequences,
//!   candidateCount (`n`), seed (must fit int32), presencePenalty,
//!   frequencyPenalty. `json_object` → `responseMimeType: application/json`;
//!   `json_schema` → that plus `responseJsonSchema` (standard JSON Schema;
//!   `responseSchema` is the OpenAPI-subset proto). Gemini always enforces
//!   the schema, so `strict` needs no field; the format `name` is only an
//!   identifier and has no Gemini counterpart.
//! * `reasoning_effort` → `thinkingConfig`. Model names `gemini-3…` and later
//!   take `thinkingLevel` (minimal/low/medium/high as given; `none` →
//!   `minimal`, since Gemini 3 cannot switch thinking off); all others take
//!   `thinkingBudget` (none 0, minimal 512, low 1024, medium 8192, high
//!   24576 — Gemini 3 also accepts budgets, so unknown aliases are safe;
//!   models that cannot turn thinking off, such as 2.5 Pro, answer `none`
//!   with their own 400). Except for `none`, `includeThoughts: true` is set so thought summaries
//!   come back as `reasoning_content`. Without `reasoning_effort` no
//!   `thinkingConfig` is sent (the model's default, thoughts not returned).
//!   Other values are a 400.
//! * Not sent, by design: `user` (Gemini has no end-user identifier; the
//!   value is advisory, for abuse monitoring) and a message's `name`
//!   (Gemini contents have no participant names; for tool results it is
//!   only used to find the function name). `stream` picks the path;
//!   `stream_options.include_usage` needs no Gemini field (Gemini always
//!   reports usage; the chunk writer decides whether the client sees it).
//! * Extra (unmodelled) fields: Gemini-native `safety_settings` /
//!   `safetySettings` (array → `safetySettings`), `cached_content` /
//!   `cachedContent` (string → `cachedContent`), `thinking_config` /
//!   `thinkingConfig` (object → `generationConfig.thinkingConfig`, exclusive
//!   with `reasoning_effort`) and `top_k` / `topK` (integer →
//!   `generationConfig.topK`) pass through; `logprobs: false` is the default
//!   and accepted. `logprobs: true` and `top_logprobs` are a 400 (Gemini can
//!   return log probabilities but the hub has no field to carry them), as
//!   are `logit_bias` and every other extra field.
//!
//! # Response choices
//!
//! * One choice per candidate (`index` kept; proto3 omits index 0, so a
//!   missing index is the candidate's position). Text parts are
//!   concatenated; `thought: true` parts become `reasoning_content`;
//!   `functionCall` parts become tool calls with ids
//!   `call_<request_id>_<n>` (n counts calls across the whole response) plus
//!   the signature suffix above. Signatures on text parts are optional for
//!   Gemini to get back and are not kept; parts holding only a signature are
//!   skipped; parts the hub cannot carry (`inlineData`, `executableCode`, …)
//!   are a 502, never dropped.
//! * finishReason: STOP → stop (tool_calls when the candidate called
//!   functions); MAX_TOKENS → length; SAFETY, RECITATION, BLOCKLIST,
//!   PROHIBITED_CONTENT, SPII, IMAGE_SAFETY, IMAGE_PROHIBITED_CONTENT,
//!   IMAGE_RECITATION, LANGUAGE and MODEL_ARMOR → content_filter; anything
//!   else (OTHER, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, …) → stop,
//!   or tool_calls when calls were made.
//! * A prompt blocked by `promptFeedback.blockReason` (no candidates) is one
//!   choice with null content and finish `content_filter`.
//! * Usage: prompt = promptTokenCount + toolUsePromptTokenCount; completion
//!   = candidatesTokenCount + thoughtsTokenCount; reasoning =
//!   thoughtsTokenCount; cached = cachedContentTokenCount; total =
//!   totalTokenCount (or the sum).
//! * id = responseId (else `chatcmpl-<request_id>`); model = modelVersion
//!   (else the requested model).
//! * Streams: every SSE `data:` is a whole response chunk, translated as it
//!   arrives; usage is kept and emitted once at the end. The stream is
//!   complete when every candidate seen has a finishReason (or the prompt was
//!   blocked); otherwise `finish()` reports an error.
//!
//! # Embeddings
//!
//! `batchEmbedContents` with one request per input. `dimensions` →
//! `outputDimensionality`; Gemini-native `task_type`/`taskType` and `title`
//! extras pass through; `user` is advisory and not sent. Gemini's
//! `batchEmbedContents` response carries no token counts: prompt tokens come
//! from `usageMetadata` or Vertex-style `statistics.tokenCount` when present,
//! else they are reported as 0 (the decoder never sees the inputs, so it
//! cannot estimate).

mod embeddings;
mod error;
mod quick_chunk;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use stream::GeminiStream;

use crate::error::ApiError;
use crate::wire::hub::Operation;
use crate::wire::hub::{
    ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, ResponseContext,
    StreamDecoder, Translator,
};
use embeddings::{decode_embeddings, encode_embeddings};
use error::decode_error_body;
pub use error::decode_error_body as decode_error;
use request::encode_chat;
use response::decode_chat;

/// The Gemini `generateContent` wire format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gemini;

/// Joins a tool call id and the thought signature it carries.
const SIGNATURE_MARKER: &str = "__thought__";
/// Gemini's documented placeholder for calls whose signature is unknown.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";
/// Most distinct candidates a stream may report (Gemini allows up to 8).
const MAX_CANDIDATES: usize = 64;
/// Longest provider error message kept.
const MAX_MESSAGE_CHARS: usize = 2000;

impl Translator for Gemini {
    fn path(&self, op: Operation, prefix: &str, model: &str, stream: bool) -> String {
        let prefix = prefix.trim_end_matches('/');
        let resource = model_resource(model);
        match op {
            Operation::ChatCompletions if stream => {
                format!("{prefix}/{resource}:streamGenerateContent?alt=sse")
            }
            Operation::ChatCompletions => format!("{prefix}/{resource}:generateContent"),
            Operation::Embeddings => format!("{prefix}/{resource}:batchEmbedContents"),
        }
    }

    fn encode_request(&self, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
        encode_chat(req).map(|body| crate::wire::json_bytes(&body))
    }

    fn decode_response(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<ChatResponse, ApiError> {
        decode_chat(body, ctx)
    }

    fn stream_decoder(&self, ctx: &ResponseContext) -> Box<dyn StreamDecoder> {
        Box::new(GeminiStream::new(ctx))
    }

    fn decode_error(&self, status: u16, body: &[u8]) -> ApiError {
        decode_error_body(status, body)
    }

    fn encode_embeddings(&self, req: &EmbeddingsRequest) -> Result<Vec<u8>, ApiError> {
        encode_embeddings(req).map(|v| crate::wire::json_bytes(&v))
    }

    fn decode_embeddings(
        &self,
        body: &[u8],
        ctx: &ResponseContext,
    ) -> Result<EmbeddingsResponse, ApiError> {
        decode_embeddings(body, ctx)
    }
}

// ---------------------------------------------------------------------------
// Shared helpers

/// `models/{model}` unless the name already is a resource path.
fn model_resource(model: &str) -> String {
    if model.starts_with("models/") || model.starts_with("tunedModels/") {
        model.to_string()
    } else {
        format!("models/{model}")
    }
}

/// The major version in a `gemini-<major>…` model name.
fn gemini_major(model: &str) -> Option<u32> {
    let name = model.rsplit('/').next().unwrap_or(model);
    let rest = name.strip_prefix("gemini-")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Tool call id carrying Gemini's thought signature (base64url, unpadded).
fn tool_call_id(request_id: &str, n: u64, signature: Option<&str>) -> String {
    let mut id = format!("call_{request_id}_{n}");
    if let Some(sig) = signature.filter(|s| !s.is_empty()) {
        id.push_str(SIGNATURE_MARKER);
        id.extend(sig.chars().filter(|c| *c != '=').map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        }));
    }
    id
}

/// The thought signature (standard base64) a tool call id carries, if any.
fn signature_from_id(id: &str) -> Option<String> {
    let (_, sig) = id.split_once(SIGNATURE_MARKER)?;
    if sig.is_empty() {
        return None;
    }
    let mut s: String = sig
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while s.len() % 4 != 0 {
        s.push('=');
    }
    Some(s)
}
