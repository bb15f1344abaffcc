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

use crate::error::{kind_for_status, normalize_upstream_error, ApiError};
use crate::hub::{
    ChatRequest, ChatResponse, Choice, EmbeddingsRequest, EmbeddingsResponse, FinishReason,
    ImageSource, Message, Part, ResponseContext, ResponseFormat, Role, StreamDecoder, StreamEvent,
    ToolCall, ToolChoice, Translator, Usage,
};
use crate::providers::Operation;
use crate::sse::SseEvent;
use hashbrown::HashMap;
use serde_json::{json, Map, Value};

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
        encode_chat(req).map(|v| v.to_string().into_bytes())
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
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let err = parsed
            .as_ref()
            .and_then(|v| match v {
                Value::Array(items) => items.first(),
                other => Some(other),
            })
            .and_then(|v| v.get("error"));
        match err.and_then(|e| gemini_error(status, e)) {
            Some(e) => e,
            None => normalize_upstream_error(status, body, &[]),
        }
    }

    fn encode_embeddings(&self, req: &EmbeddingsRequest) -> Result<Vec<u8>, ApiError> {
        encode_embeddings(req).map(|v| v.to_string().into_bytes())
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

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("invalid_value")
}

fn unsupported(param: &str, message: String) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("unsupported_parameter")
}

/// A Gemini response the gateway cannot use.
fn bad_upstream(message: impl Into<String>) -> ApiError {
    ApiError::new(502, "api_error", message)
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => {
            let mut m = message.get(..cut).unwrap_or(message).to_string();
            m.push('…');
            m
        }
        None => message.to_string(),
    }
}

/// Gemini's `{"code","message","status"}` error object as an `ApiError`.
fn gemini_error(status: u16, err: &Value) -> Option<ApiError> {
    let obj = err.as_object()?;
    let message = obj.get("message").and_then(Value::as_str)?;
    let code = obj
        .get("status")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| {
            obj.get("code")
                .and_then(Value::as_u64)
                .map(|c| c.to_string())
        });
    let message = if message.trim().is_empty() {
        format!("Gemini returned HTTP {status} with no error message.")
    } else {
        truncate(message)
    };
    let mut e = ApiError::new(status, kind_for_status(status), message);
    if let Some(code) = code {
        e = e.with_code(code);
    }
    Some(e)
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

/// Removes a root `$schema` (dialect marker) from a JSON Schema.
fn json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => {
            let mut m = m.clone();
            m.remove("$schema");
            Value::Object(m)
        }
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// Chat request

/// Gemini-native extras the request may carry.
#[derive(Default)]
struct Extras {
    safety_settings: Option<Value>,
    cached_content: Option<Value>,
    thinking_config: Option<Value>,
    top_k: Option<Value>,
}

fn set_once(slot: &mut Option<Value>, key: &str, value: &Value) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(invalid(
            key,
            format!("'{key}' is given twice (in snake_case and camelCase); give it once."),
        ));
    }
    *slot = Some(value.clone());
    Ok(())
}

fn chat_extras(extra: &Map<String, Value>) -> Result<Extras, ApiError> {
    let mut x = Extras::default();
    for (key, value) in extra {
        match key.as_str() {
            "safety_settings" | "safetySettings" => {
                if !value.is_array() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected an array of Gemini safety settings."),
                    ));
                }
                set_once(&mut x.safety_settings, key, value)?;
            }
            "cached_content" | "cachedContent" => {
                if !value.is_string() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected a Gemini cachedContents resource name."),
                    ));
                }
                set_once(&mut x.cached_content, key, value)?;
            }
            "thinking_config" | "thinkingConfig" => {
                if !value.is_object() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected a Gemini thinkingConfig object."),
                    ));
                }
                set_once(&mut x.thinking_config, key, value)?;
            }
            "top_k" | "topK" => {
                if value.as_u64().and_then(|k| i32::try_from(k).ok()).is_none() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected a non-negative integer below 2^31."),
                    ));
                }
                set_once(&mut x.top_k, key, value)?;
            }
            "logprobs" if *value == Value::Bool(false) => {}
            "logprobs" | "top_logprobs" => {
                return Err(unsupported(
                    key,
                    format!("'{key}' is not supported for Gemini models through this gateway: the chat completion it returns has no place for Gemini's log probabilities. Remove '{key}' for this model."),
                ))
            }
            "logit_bias" => {
                return Err(unsupported(
                    key,
                    "'logit_bias' is not supported by Gemini: the Gemini API has no token-bias control. Remove 'logit_bias' for this model.".into(),
                ))
            }
            other => {
                return Err(unsupported(
                    other,
                    format!("Unsupported parameter '{other}': it cannot be translated for this model's provider (Gemini) and would otherwise be dropped. Remove '{other}' for this model."),
                ))
            }
        }
    }
    Ok(x)
}

struct Turn {
    role: &'static str,
    parts: Vec<Value>,
}

fn push_turn(turns: &mut Vec<Turn>, role: &'static str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => turns.push(Turn { role, parts }),
    }
}

fn mime_for_url(url: &str) -> Option<&'static str> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (_, path) = after_scheme.split_once('/')?;
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let file = path.rsplit('/').next().unwrap_or(path);
    let (_, ext) = file.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// One hub content part as a Gemini part (`None` for empty text).
fn content_part(part: &Part, path: &str) -> Result<Option<Value>, ApiError> {
    match part {
        Part::Text(t) if t.is_empty() => Ok(None),
        Part::Text(t) => Ok(Some(json!({ "text": t }))),
        Part::Image {
            source: ImageSource::Base64 { media_type, data },
            ..
        } => Ok(Some(
            json!({"inlineData": {"mimeType": media_type, "data": data}}),
        )),
        Part::Image {
            source: ImageSource::Url(url),
            ..
        } => match mime_for_url(url) {
            Some(mime) => Ok(Some(
                json!({"fileData": {"mimeType": mime, "fileUri": url}}),
            )),
            None => Err(invalid(
                format!("{path}.image_url.url"),
                format!("Cannot tell the media type of image URL '{url}': Gemini needs one for a file URL, and the gateway takes it from the file extension (.png, .jpg, .jpeg, .webp, .heic, .heif or .pdf). Use such a URL or send the image inline as a base64 data URI."),
            )),
        },
    }
}

fn content_parts(msg: &Message, i: usize) -> Result<Vec<Value>, ApiError> {
    let mut parts = Vec::with_capacity(msg.content.len());
    for (j, p) in msg.content.iter().enumerate() {
        if let Some(v) = content_part(p, &format!("messages[{i}].content[{j}]"))? {
            parts.push(v);
        }
    }
    Ok(parts)
}

fn function_call_part(call: &ToolCall, path: &str) -> Result<Value, ApiError> {
    let args: Value = if call.arguments.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(&call.arguments).map_err(|e| {
            invalid(
                format!("{path}.function.arguments"),
                format!("Invalid '{path}.function.arguments': Gemini needs the arguments as a JSON object, but they are not valid JSON ({e})."),
            )
        })?
    };
    if !args.is_object() {
        return Err(invalid(
            format!("{path}.function.arguments"),
            format!(
                "Invalid '{path}.function.arguments': Gemini needs the arguments as a JSON object."
            ),
        ));
    }
    let mut part = Map::new();
    part.insert(
        "functionCall".into(),
        json!({"name": call.name, "args": args}),
    );
    if let Some(sig) = signature_from_id(&call.id) {
        part.insert("thoughtSignature".into(), Value::String(sig));
    }
    Ok(Value::Object(part))
}

/// `systemInstruction` parts and `contents`.
fn encode_messages(req: &ChatRequest) -> Result<(Vec<Value>, Vec<Turn>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for (i, msg) in req.messages.iter().enumerate() {
        match msg.role {
            Role::System => {
                for (j, p) in msg.content.iter().enumerate() {
                    match p {
                        Part::Text(t) if t.is_empty() => {}
                        Part::Text(t) => system.push(json!({ "text": t })),
                        Part::Image { .. } => {
                            return Err(invalid(
                                format!("messages[{i}].content[{j}]"),
                                format!("messages[{i}] is a system/developer message with an image; Gemini's systemInstruction takes text only."),
                            ))
                        }
                    }
                }
            }
            Role::User => push_turn(&mut turns, "user", content_parts(msg, i)?),
            Role::Assistant => {
                let mut parts = content_parts(msg, i)?;
                for (j, call) in msg.tool_calls.iter().enumerate() {
                    parts.push(function_call_part(
                        call,
                        &format!("messages[{i}].tool_calls[{j}]"),
                    )?);
                    call_names.insert(call.id.as_str(), call.name.as_str());
                }
                push_turn(&mut turns, "model", parts);
            }
            Role::Tool => {
                let id = msg.tool_call_id.as_deref().unwrap_or_default();
                let name = call_names
                    .get(id)
                    .copied()
                    .or(msg.name.as_deref())
                    .ok_or_else(|| {
                        invalid(
                            format!("messages[{i}].tool_call_id"),
                            format!("messages[{i}] is a tool result for tool_call_id '{id}', but no earlier assistant message has a tool call with that id; Gemini needs the function's name."),
                        )
                    })?;
                if let Some(j) = msg
                    .content
                    .iter()
                    .position(|p| matches!(p, Part::Image { .. }))
                {
                    return Err(invalid(
                        format!("messages[{i}].content[{j}]"),
                        format!("messages[{i}] is a tool result with an image; the gateway sends Gemini tool results as text only."),
                    ));
                }
                let text = msg.text();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o)) => Value::Object(o),
                    _ => json!({ "result": text }),
                };
                push_turn(
                    &mut turns,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
        }
    }
    if gemini_major(&req.model).is_some_and(|m| m >= 3) {
        for turn in turns.iter_mut().filter(|t| t.role == "model") {
            let calls = || {
                turn.parts
                    .iter()
                    .filter(|p| p.get("functionCall").is_some())
            };
            if calls().count() > 0 && calls().all(|p| p.get("thoughtSignature").is_none()) {
                if let Some(Value::Object(first)) = turn
                    .parts
                    .iter_mut()
                    .find(|p| p.get("functionCall").is_some())
                {
                    first.insert("thoughtSignature".into(), SKIP_SIGNATURE.into());
                }
            }
        }
    }
    Ok((system, turns))
}

fn tool_config(req: &ChatRequest) -> Result<Option<Value>, ApiError> {
    let Some(choice) = &req.tool_choice else {
        return Ok(None);
    };
    if req.tools.is_empty() {
        return match choice {
            ToolChoice::Auto | ToolChoice::None => Ok(None),
            _ => Err(invalid(
                "tool_choice",
                "'tool_choice' asks for a tool call, but the request declares no tools.",
            )),
        };
    }
    let config = match choice {
        ToolChoice::Auto => json!({"mode": "AUTO"}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Required => json!({"mode": "ANY"}),
        ToolChoice::Function(name) => {
            if !req.tools.iter().any(|t| &t.name == name) {
                return Err(invalid(
                    "tool_choice",
                    format!("'tool_choice' names function '{name}', which is not among the request's tools."),
                ));
            }
            json!({"mode": "ANY", "allowedFunctionNames": [name]})
        }
    };
    Ok(Some(json!({ "functionCallingConfig": config })))
}

fn thinking_config(effort: &str, model: &str) -> Result<Value, ApiError> {
    let level_based = gemini_major(model).is_some_and(|m| m >= 3);
    let (level, budget) = match effort {
        "none" => {
            return Ok(if level_based {
                json!({"thinkingLevel": "minimal"})
            } else {
                json!({"thinkingBudget": 0})
            })
        }
        "minimal" => ("minimal", 512),
        "low" => ("low", 1024),
        "medium" => ("medium", 8192),
        "high" => ("high", 24576),
        other => {
            return Err(invalid(
                "reasoning_effort",
                format!("Invalid 'reasoning_effort' for Gemini: '{other}'. Supported values are 'none', 'minimal', 'low', 'medium' and 'high'."),
            ))
        }
    };
    Ok(if level_based {
        json!({"thinkingLevel": level, "includeThoughts": true})
    } else {
        json!({"thinkingBudget": budget, "includeThoughts": true})
    })
}

fn generation_config(req: &ChatRequest, extras: &Extras) -> Result<Map<String, Value>, ApiError> {
    let mut g = Map::new();
    if let Some(t) = req.temperature {
        g.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        g.insert("topP".into(), json!(p));
    }
    if let Some(k) = &extras.top_k {
        g.insert("topK".into(), k.clone());
    }
    if let Some(m) = req.max_tokens {
        g.insert("maxOutputTokens".into(), json!(m));
    }
    if !req.stop.is_empty() {
        g.insert("stopSequences".into(), json!(req.stop));
    }
    if let Some(n) = req.n {
        g.insert("candidateCount".into(), json!(n));
    }
    if let Some(seed) = req.seed {
        let seed = i32::try_from(seed).map_err(|_| {
            invalid(
                "seed",
                format!("Invalid 'seed': {seed} does not fit Gemini's 32-bit seed; use a value between -2147483648 and 2147483647."),
            )
        })?;
        g.insert("seed".into(), json!(seed));
    }
    if let Some(p) = req.presence_penalty {
        g.insert("presencePenalty".into(), json!(p));
    }
    if let Some(p) = req.frequency_penalty {
        g.insert("frequencyPenalty".into(), json!(p));
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            g.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            g.insert("responseMimeType".into(), "application/json".into());
            g.insert("responseJsonSchema".into(), json_schema(schema));
        }
    }
    match (&req.reasoning_effort, &extras.thinking_config) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "reasoning_effort",
                "Give either 'reasoning_effort' or Gemini's 'thinking_config', not both.",
            ))
        }
        (Some(effort), None) => {
            g.insert(
                "thinkingConfig".into(),
                thinking_config(effort, &req.model)?,
            );
        }
        (None, Some(tc)) => {
            g.insert("thinkingConfig".into(), tc.clone());
        }
        (None, None) => {}
    }
    Ok(g)
}

fn encode_chat(req: &ChatRequest) -> Result<Value, ApiError> {
    let extras = chat_extras(&req.extra)?;
    if req.parallel_tool_calls == Some(false) {
        return Err(unsupported(
            "parallel_tool_calls",
            "'parallel_tool_calls': false cannot be honoured by Gemini: the Gemini API has no way to limit the model to one function call per turn. Omit it (or set it to true) for this model.".into(),
        ));
    }
    let (system, turns) = encode_messages(req)?;
    if turns.is_empty() {
        return Err(invalid(
            "messages",
            "Gemini needs at least one user, assistant or tool message with content; system and developer messages alone only make its systemInstruction.",
        ));
    }
    let mut body = Map::new();
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    let contents: Vec<Value> = turns
        .into_iter()
        .map(|t| json!({"role": t.role, "parts": t.parts}))
        .collect();
    body.insert("contents".into(), Value::Array(contents));
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = Map::new();
                d.insert("name".into(), Value::String(t.name.clone()));
                if let Some(desc) = &t.description {
                    d.insert("description".into(), Value::String(desc.clone()));
                }
                if let Some(p) = &t.parameters {
                    d.insert("parametersJsonSchema".into(), json_schema(p));
                }
                Value::Object(d)
            })
            .collect();
        body.insert("tools".into(), json!([{ "functionDeclarations": decls }]));
    }
    if let Some(tc) = tool_config(req)? {
        body.insert("toolConfig".into(), tc);
    }
    let g = generation_config(req, &extras)?;
    if !g.is_empty() {
        body.insert("generationConfig".into(), Value::Object(g));
    }
    if let Some(s) = extras.safety_settings {
        body.insert("safetySettings".into(), s);
    }
    if let Some(c) = extras.cached_content {
        body.insert("cachedContent".into(), c);
    }
    Ok(Value::Object(body))
}

// ---------------------------------------------------------------------------
// Responses (whole and streamed share one translator)

fn finish_reason(reason: &str, called: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "LANGUAGE"
        | "MODEL_ARMOR" => FinishReason::ContentFilter,
        _ if called => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

fn count(meta: &Value, key: &str) -> Option<u64> {
    meta.get(key).and_then(Value::as_u64)
}

fn usage_from(meta: &Value) -> Usage {
    let prompt = count(meta, "promptTokenCount").unwrap_or(0)
        + count(meta, "toolUsePromptTokenCount").unwrap_or(0);
    let thoughts = count(meta, "thoughtsTokenCount");
    let completion = count(meta, "candidatesTokenCount").unwrap_or(0) + thoughts.unwrap_or(0);
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: count(meta, "totalTokenCount").unwrap_or(prompt + completion),
        cached_tokens: count(meta, "cachedContentTokenCount"),
        cache_creation_tokens: None,
        reasoning_tokens: thoughts,
    }
}

/// Part keys that carry no content of their own.
const PART_METADATA: &[&str] = &[
    "thought",
    "thoughtSignature",
    "thought_signature",
    "partMetadata",
    "videoMetadata",
    "mediaResolution",
];

#[derive(Debug)]
struct CandidateState {
    index: u32,
    calls: u32,
    finished: bool,
}

/// Translates Gemini response chunks into hub events; the whole-response
/// decoder runs the same code over the single body.
#[derive(Debug)]
pub struct GeminiStream {
    request_id: String,
    model: String,
    started: bool,
    ended: bool,
    candidates: Vec<CandidateState>,
    next_call: u64,
    usage: Option<Usage>,
}

impl GeminiStream {
    pub fn new(ctx: &ResponseContext) -> Self {
        Self {
            request_id: ctx.request_id.clone(),
            model: ctx.model.clone(),
            started: false,
            ended: false,
            candidates: Vec::new(),
            next_call: 0,
            usage: None,
        }
    }

    /// The slot for candidate `index`, created on first sight.
    fn slot(&mut self, index: u32) -> Result<usize, ApiError> {
        if let Some(pos) = self.candidates.iter().position(|c| c.index == index) {
            return Ok(pos);
        }
        if self.candidates.len() >= MAX_CANDIDATES {
            return Err(bad_upstream(format!(
                "Gemini returned more than {MAX_CANDIDATES} candidates."
            )));
        }
        self.candidates.push(CandidateState {
            index,
            calls: 0,
            finished: false,
        });
        Ok(self.candidates.len() - 1)
    }

    /// Translates one response chunk.
    fn translate(&mut self, chunk: &Value, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        let Some(obj) = chunk.as_object() else {
            return Err(bad_upstream(
                "Gemini returned a response that is not a JSON object.",
            ));
        };
        if let Some(err) = obj.get("error") {
            let status = err
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..=599).contains(c))
                .unwrap_or(502);
            return Err(gemini_error(status, err).unwrap_or_else(|| {
                bad_upstream(format!(
                    "Gemini reported an error: {}",
                    truncate(&err.to_string())
                ))
            }));
        }
        if !self.started {
            self.started = true;
            let id = obj
                .get("responseId")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("chatcmpl-{}", self.request_id), String::from);
            let model = obj
                .get("modelVersion")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| self.model.clone(), String::from);
            out.push(StreamEvent::Start { id, model });
        }
        if let Some(meta) = obj.get("usageMetadata").filter(|m| m.is_object()) {
            self.usage = Some(usage_from(meta));
        }
        let candidates = match obj.get("candidates") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(c)) => c.as_slice(),
            Some(_) => {
                return Err(bad_upstream(
                    "Gemini returned 'candidates' that is not an array.",
                ))
            }
        };
        for (pos, cand) in candidates.iter().enumerate() {
            self.candidate(cand, pos, out)?;
        }
        let blocked = obj
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some_and(|r| !r.is_null());
        if candidates.is_empty() && blocked {
            let slot = self.slot(0)?;
            if let Some(state) = self.candidates.get_mut(slot) {
                if !state.finished {
                    state.finished = true;
                    out.push(StreamEvent::Finish {
                        choice: 0,
                        reason: FinishReason::ContentFilter,
                    });
                }
            }
        }
        Ok(())
    }

    fn candidate(
        &mut self,
        cand: &Value,
        pos: usize,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        let index = match cand.get("index") {
            None | Some(Value::Null) => u32::try_from(pos).ok(),
            Some(v) => v.as_u64().and_then(|i| u32::try_from(i).ok()),
        }
        .ok_or_else(|| bad_upstream("Gemini returned a candidate with an invalid index."))?;
        let slot = self.slot(index)?;
        let parts = match cand.get("content").and_then(|c| c.get("parts")) {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(p)) => p.as_slice(),
            Some(_) => {
                return Err(bad_upstream(
                    "Gemini returned content 'parts' that is not an array.",
                ))
            }
        };
        for part in parts {
            self.part(slot, index, part, out)?;
        }
        if let Some(reason) = cand.get("finishReason").and_then(Value::as_str) {
            if let Some(state) = self.candidates.get_mut(slot) {
                if !state.finished {
                    state.finished = true;
                    out.push(StreamEvent::Finish {
                        choice: index,
                        reason: finish_reason(reason, state.calls > 0),
                    });
                }
            }
        }
        Ok(())
    }

    fn part(
        &mut self,
        slot: usize,
        choice: u32,
        part: &Value,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        let Some(p) = part.as_object() else {
            return Err(bad_upstream(
                "Gemini returned a content part that is not an object.",
            ));
        };
        if let Some(call) = p.get("functionCall") {
            let name = call
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad_upstream("Gemini returned a functionCall without a name."))?;
            let args = match call.get("args") {
                None | Some(Value::Null) => "{}".to_string(),
                Some(a) => a.to_string(),
            };
            let signature = p
                .get("thoughtSignature")
                .or_else(|| p.get("thought_signature"))
                .and_then(Value::as_str);
            let id = tool_call_id(&self.request_id, self.next_call, signature);
            self.next_call += 1;
            let Some(state) = self.candidates.get_mut(slot) else {
                return Ok(());
            };
            let index = state.calls;
            state.calls += 1;
            out.push(StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name: name.to_string(),
            });
            out.push(StreamEvent::ToolCallArgs {
                choice,
                index,
                fragment: args,
            });
            return Ok(());
        }
        if let Some(text) = p.get("text") {
            let text = text
                .as_str()
                .ok_or_else(|| bad_upstream("Gemini returned a text part that is not a string."))?;
            if !text.is_empty() {
                let text = text.to_string();
                out.push(if p.get("thought") == Some(&Value::Bool(true)) {
                    StreamEvent::Reasoning { choice, text }
                } else {
                    StreamEvent::Text { choice, text }
                });
            }
            return Ok(());
        }
        match p.keys().find(|k| !PART_METADATA.contains(&k.as_str())) {
            None => Ok(()),
            Some(kind) => Err(bad_upstream(format!(
                "Gemini returned a part of kind '{kind}', which cannot be translated to an OpenAI chat completion."
            ))),
        }
    }

    /// Every candidate seen has finished (or the prompt was blocked).
    fn complete(&self) -> bool {
        !self.candidates.is_empty() && self.candidates.iter().all(|c| c.finished)
    }

    fn fail(&mut self, err: ApiError, out: &mut Vec<StreamEvent>) {
        self.ended = true;
        if let Some(u) = self.usage.take() {
            out.push(StreamEvent::Usage(u));
        }
        out.push(StreamEvent::Error(err));
    }
}

impl StreamDecoder for GeminiStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        let data = event.data.trim();
        if data.is_empty() {
            return;
        }
        let result = match serde_json::from_str::<Value>(data) {
            Ok(chunk) => self.translate(&chunk, out),
            Err(e) => Err(bad_upstream(format!(
                "Gemini sent a stream event that is not valid JSON: {e}."
            ))),
        };
        if let Err(e) = result {
            self.fail(e, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        if self.complete() {
            self.ended = true;
            if let Some(u) = self.usage.take() {
                out.push(StreamEvent::Usage(u));
            }
        } else {
            self.fail(
                bad_upstream(
                    "Gemini's stream ended before a finishReason: the upstream response is incomplete.",
                ),
                out,
            );
        }
    }
}

fn choice_mut(choices: &mut [Choice], index: u32) -> Option<&mut Choice> {
    choices.iter_mut().find(|c| c.index == index)
}

fn decode_chat(body: &[u8], ctx: &ResponseContext) -> Result<ChatResponse, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad_upstream(format!(
            "Gemini returned a response that is not valid JSON: {e}."
        ))
    })?;
    // streamGenerateContent without alt=sse answers with an array of chunks.
    let chunks: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut decoder = GeminiStream::new(ctx);
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.translate(chunk, &mut events)?;
    }
    let mut resp = ChatResponse {
        id: format!("chatcmpl-{}", ctx.request_id),
        model: ctx.model.clone(),
        created: ctx.created,
        choices: decoder
            .candidates
            .iter()
            .map(|c| Choice {
                index: c.index,
                ..Choice::default()
            })
            .collect(),
        usage: decoder.usage,
    };
    if resp.choices.is_empty() {
        return Err(bad_upstream(
            "Gemini returned no candidates (and no promptFeedback.blockReason).",
        ));
    }
    for event in events {
        match event {
            StreamEvent::Start { id, model } => {
                resp.id = id;
                resp.model = model;
            }
            StreamEvent::Text { choice, text } => {
                if let Some(c) = choice_mut(&mut resp.choices, choice) {
                    c.content.get_or_insert_with(String::new).push_str(&text);
                }
            }
            StreamEvent::Reasoning { choice, text } => {
                if let Some(c) = choice_mut(&mut resp.choices, choice) {
                    c.reasoning.get_or_insert_with(String::new).push_str(&text);
                }
            }
            StreamEvent::ToolCallStart {
                choice, id, name, ..
            } => {
                if let Some(c) = choice_mut(&mut resp.choices, choice) {
                    c.tool_calls.push(ToolCall {
                        id,
                        name,
                        arguments: String::new(),
                    });
                }
            }
            StreamEvent::ToolCallArgs {
                choice,
                index,
                fragment,
            } => {
                let call = choice_mut(&mut resp.choices, choice).and_then(|c| {
                    usize::try_from(index)
                        .ok()
                        .and_then(|i| c.tool_calls.get_mut(i))
                });
                if let Some(call) = call {
                    call.arguments.push_str(&fragment);
                }
            }
            StreamEvent::Finish { choice, reason } => {
                if let Some(c) = choice_mut(&mut resp.choices, choice) {
                    c.finish_reason = Some(reason);
                }
            }
            StreamEvent::Usage(u) => resp.usage = Some(u),
            StreamEvent::Error(e) => return Err(e),
        }
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------
// Embeddings

fn encode_embeddings(req: &EmbeddingsRequest) -> Result<Value, ApiError> {
    if req.inputs.is_empty() {
        return Err(invalid(
            "input",
            "Invalid 'input': Gemini needs at least one input to embed.",
        ));
    }
    let mut task_type: Option<Value> = None;
    let mut title: Option<Value> = None;
    for (key, value) in &req.extra {
        match key.as_str() {
            // Advisory end-user id; Gemini has no counterpart (see module docs).
            "user" => {}
            "task_type" | "taskType" => {
                if !value.is_string() {
                    return Err(invalid(
                        key,
                        format!("Invalid '{key}': expected a Gemini task type such as 'RETRIEVAL_QUERY'."),
                    ));
                }
                set_once(&mut task_type, key, value)?;
            }
            "title" => {
                if !value.is_string() {
                    return Err(invalid(key, "Invalid 'title': expected a string."));
                }
                title = Some(value.clone());
            }
            other => {
                return Err(unsupported(
                    other,
                    format!("Unsupported parameter '{other}': it cannot be translated for this model's provider (Gemini) and would otherwise be dropped. Remove '{other}' for this model."),
                ))
            }
        }
    }
    let model = model_resource(&req.model);
    let requests: Vec<Value> = req
        .inputs
        .iter()
        .map(|text| {
            let mut r = Map::new();
            r.insert("model".into(), Value::String(model.clone()));
            r.insert("content".into(), json!({"parts": [{ "text": text }]}));
            if let Some(d) = req.dimensions {
                r.insert("outputDimensionality".into(), json!(d));
            }
            if let Some(t) = &task_type {
                r.insert("taskType".into(), t.clone());
            }
            if let Some(t) = &title {
                r.insert("title".into(), t.clone());
            }
            Value::Object(r)
        })
        .collect();
    Ok(json!({ "requests": requests }))
}

fn decode_embeddings(body: &[u8], ctx: &ResponseContext) -> Result<EmbeddingsResponse, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad_upstream(format!(
            "Gemini returned an embeddings response that is not valid JSON: {e}."
        ))
    })?;
    if let Some(err) = value.get("error") {
        return Err(gemini_error(502, err)
            .unwrap_or_else(|| bad_upstream("Gemini reported an error without a message.")));
    }
    let Some(embeddings) = value.get("embeddings").and_then(Value::as_array) else {
        return Err(bad_upstream(
            "Gemini returned an embeddings response without an 'embeddings' array.",
        ));
    };
    let mut vectors = Vec::with_capacity(embeddings.len());
    let mut stat_tokens: Option<u64> = None;
    for (i, e) in embeddings.iter().enumerate() {
        let values = e.get("values").and_then(Value::as_array).ok_or_else(|| {
            bad_upstream(format!("Gemini returned embeddings[{i}] without 'values'."))
        })?;
        let vector = values
            .iter()
            .map(Value::as_f64)
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| {
                bad_upstream(format!(
                    "Gemini returned embeddings[{i}].values with a non-number."
                ))
            })?;
        vectors.push(vector);
        if let Some(n) = e
            .get("statistics")
            .and_then(|s| s.get("tokenCount"))
            .and_then(Value::as_f64)
        {
            // Vertex reports the count as a float; counts are whole.
            stat_tokens = Some(stat_tokens.unwrap_or(0) + n.max(0.0).round() as u64);
        }
    }
    let meta = value.get("usageMetadata");
    let prompt_tokens = meta
        .and_then(|m| count(m, "promptTokenCount").or_else(|| count(m, "totalTokenCount")))
        .or(stat_tokens)
        .unwrap_or(0);
    Ok(EmbeddingsResponse {
        model: ctx.model.clone(),
        vectors,
        prompt_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::{render, to_hub};
    use crate::sse::SseFramer;

    const REQUESTS: &str = include_str!("../../tests/fixtures/gemini/requests.json");
    const RESPONSES: &str = include_str!("../../tests/fixtures/gemini/responses.json");
    const STREAMS: &str = include_str!("../../tests/fixtures/gemini/streams.json");
    const ERRORS: &str = include_str!("../../tests/fixtures/gemini/errors.json");
    const CREATED: u64 = 1_700_000_000;

    fn ctx() -> ResponseContext {
        ResponseContext {
            model: "gemini-2.5-flash".into(),
            created: CREATED,
            request_id: "req1".into(),
        }
    }

    fn cases(text: &str) -> Vec<Value> {
        match serde_json::from_str(text).unwrap() {
            Value::Array(a) => a,
            _ => panic!("fixture file is not an array"),
        }
    }

    fn name(case: &Value) -> &str {
        case["name"].as_str().unwrap()
    }

    fn err_json(e: &ApiError) -> Value {
        serde_json::from_slice(&e.to_json()).unwrap()
    }

    fn chat(body: &Value, model: &str) -> ChatRequest {
        to_hub::chat_request(body.as_object().unwrap(), model).unwrap()
    }

    // -- requests ---------------------------------------------------------

    #[test]
    fn request_fixtures() {
        let all = cases(REQUESTS);
        assert!(all.len() >= 40);
        for case in &all {
            let model = case["model"].as_str().unwrap_or("gemini-2.5-flash");
            let req = chat(&case["openai"], model);
            let result = Gemini.encode_request(&req);
            if let Some(expected) = case.get("error") {
                let e = result.expect_err(name(case));
                assert_eq!(e.status, 400, "{}", name(case));
                assert_eq!(err_json(&e), json!({ "error": expected }), "{}", name(case));
            } else {
                let bytes = result.unwrap_or_else(|e| panic!("{}: {e:?}", name(case)));
                let got: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(got, case["gemini"], "{}", name(case));
            }
        }
    }

    #[test]
    fn request_extras_are_each_refused_by_name() {
        for key in [
            "metadata",
            "store",
            "service_tier",
            "prediction",
            "modalities",
            "audio",
            "web_search_options",
            "functions",
            "function_call",
            "response_mime_type",
        ] {
            let body =
                json!({"model": "g", "messages": [{"role": "user", "content": "x"}], key: true});
            let e = Gemini
                .encode_request(&chat(&body, "gemini-2.5-flash"))
                .unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.kind, "invalid_request_error");
            assert_eq!(e.param.as_deref(), Some(key));
            assert!(
                e.message.contains(key) && e.message.contains("Gemini"),
                "{}",
                e.message
            );
        }
    }

    // -- responses --------------------------------------------------------

    #[test]
    fn response_fixtures() {
        for case in &cases(RESPONSES) {
            let body = match case.get("raw") {
                Some(raw) => raw.as_str().unwrap().as_bytes().to_vec(),
                None => serde_json::to_vec(&case["gemini"]).unwrap(),
            };
            let result = Gemini.decode_response(&body, &ctx());
            if let Some(expected) = case.get("error") {
                let e = result.expect_err(name(case));
                assert_eq!(
                    u64::from(e.status),
                    expected["status"].as_u64().unwrap(),
                    "{}",
                    name(case)
                );
                assert_eq!(err_json(&e), expected["openai"], "{}", name(case));
            } else {
                let resp = result.unwrap_or_else(|e| panic!("{}: {e:?}", name(case)));
                let got: Value = serde_json::from_slice(&render::chat_completion(&resp)).unwrap();
                assert_eq!(got, case["openai"], "{}", name(case));
            }
        }
    }

    #[test]
    fn finish_reason_classes() {
        for r in [
            "STOP",
            "OTHER",
            "FINISH_REASON_UNSPECIFIED",
            "MALFORMED_FUNCTION_CALL",
            "NO_IMAGE",
            "NEW_REASON",
        ] {
            assert_eq!(finish_reason(r, false), FinishReason::Stop, "{r}");
            assert_eq!(finish_reason(r, true), FinishReason::ToolCalls, "{r}");
        }
        assert_eq!(finish_reason("MAX_TOKENS", true), FinishReason::Length);
        for r in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
            "LANGUAGE",
            "MODEL_ARMOR",
        ] {
            assert_eq!(finish_reason(r, true), FinishReason::ContentFilter, "{r}");
        }
    }

    // -- streams ----------------------------------------------------------

    fn stream_body(case: &Value) -> Vec<u8> {
        let mut body = String::new();
        for ev in case["events"].as_array().unwrap() {
            let data = match ev {
                Value::String(raw) => raw.clone(),
                other => other.to_string(),
            };
            body.push_str("data: ");
            body.push_str(&data);
            body.push_str("\r\n\r\n");
        }
        if let Some(tail) = case.get("tail") {
            body.push_str(tail.as_str().unwrap());
        }
        body.into_bytes()
    }

    /// Frames the gateway writes for `chunks` fed in order.
    fn run_stream(chunks: &[&[u8]], include_usage: bool) -> Vec<u8> {
        let ctx = ctx();
        let mut framer = SseFramer::new(1 << 20);
        let mut decoder = Gemini.stream_decoder(&ctx);
        let mut writer = render::ChunkWriter::new(&ctx, include_usage);
        let mut events = Vec::new();
        let mut hub = Vec::new();
        let mut out = Vec::new();
        let mut pump = |events: &mut Vec<SseEvent>,
                        decoder: &mut Box<dyn StreamDecoder>,
                        out: &mut Vec<u8>| {
            for ev in events.drain(..) {
                decoder.on_event(&ev, &mut hub);
                for h in hub.drain(..) {
                    writer.write(&h, out);
                }
            }
        };
        for chunk in chunks {
            framer.feed(chunk, &mut events).unwrap();
            pump(&mut events, &mut decoder, &mut out);
        }
        framer.finish(&mut events).unwrap();
        pump(&mut events, &mut decoder, &mut out);
        let mut tail = Vec::new();
        decoder.finish(&mut tail);
        for h in &tail {
            writer.write(h, &mut out);
        }
        writer.finish(&mut out);
        out
    }

    fn frames(out: &[u8]) -> Vec<Value> {
        std::str::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let data = f.strip_prefix("data: ").unwrap();
                if data == "[DONE]" {
                    Value::String("[DONE]".into())
                } else {
                    serde_json::from_str(data).unwrap()
                }
            })
            .collect()
    }

    /// Expands a fixture's shorthand frame into the full OpenAI chunk.
    fn expand(case: &Value, frame: &Value) -> Value {
        if frame.is_string() || frame.get("error").is_some() {
            return frame.clone();
        }
        let include_usage = case["include_usage"].as_bool().unwrap();
        let mut v = json!({
            "id": case["id"],
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": case["model"],
        });
        if let Some(usage) = frame.get("usage") {
            v["choices"] = json!([]);
            v["usage"] = usage.clone();
        } else {
            v["choices"] = json!([{
                "index": frame["index"],
                "delta": frame["delta"],
                "logprobs": null,
                "finish_reason": frame["finish_reason"],
            }]);
            if include_usage {
                v["usage"] = Value::Null;
            }
        }
        v
    }

    #[test]
    fn stream_fixtures_whole_body() {
        let all = cases(STREAMS);
        assert!(all.len() >= 10);
        for case in &all {
            let body = stream_body(case);
            let out = run_stream(&[&body], case["include_usage"].as_bool().unwrap());
            let expected: Vec<Value> = case["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| expand(case, f))
                .collect();
            assert_eq!(frames(&out), expected, "{}", name(case));
        }
    }

    #[test]
    fn stream_fixtures_split_at_every_offset() {
        for case in &cases(STREAMS) {
            let body = stream_body(case);
            let usage = case["include_usage"].as_bool().unwrap();
            let whole = run_stream(&[&body], usage);
            for i in 0..=body.len() {
                let (a, b) = body.split_at(i);
                assert_eq!(
                    run_stream(&[a, b], usage),
                    whole,
                    "{} split at {i}",
                    name(case)
                );
            }
        }
    }

    #[test]
    fn stream_fixtures_one_byte_at_a_time() {
        for case in &cases(STREAMS) {
            let body = stream_body(case);
            let usage = case["include_usage"].as_bool().unwrap();
            let whole = run_stream(&[&body], usage);
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(run_stream(&bytes, usage), whole, "{}", name(case));
        }
    }

    #[test]
    fn stream_decoder_events_and_bounded_state() {
        let mut d = GeminiStream::new(&ctx());
        let mut out = Vec::new();
        let ev = |data: &str| SseEvent {
            event: None,
            data: data.into(),
            id: None,
        };
        d.on_event(&ev(""), &mut out);
        assert!(out.is_empty(), "blank data is ignored");
        d.on_event(
            &ev(r#"{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}],"responseId":"x","usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1}}"#),
            &mut out,
        );
        d.on_event(
            &ev(r#"{"candidates":[{"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2,"totalTokenCount":3}}"#),
            &mut out,
        );
        d.finish(&mut out);
        d.finish(&mut out);
        assert_eq!(
            out,
            vec![
                StreamEvent::Start {
                    id: "x".into(),
                    model: "gemini-2.5-flash".into()
                },
                StreamEvent::Text {
                    choice: 0,
                    text: "a".into()
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::Stop
                },
                StreamEvent::Usage(Usage {
                    prompt_tokens: 1,
                    completion_tokens: 2,
                    total_tokens: 3,
                    ..Usage::default()
                }),
            ],
            "one Start, one Finish per candidate, the latest usage once"
        );

        let mut d = GeminiStream::new(&ctx());
        let mut out = Vec::new();
        let many: Vec<Value> = (0..=MAX_CANDIDATES)
            .map(|i| json!({"index": i, "content": {"parts": [{"text": "x"}]}}))
            .collect();
        d.on_event(&ev(&json!({ "candidates": many }).to_string()), &mut out);
        assert!(matches!(out.last(), Some(StreamEvent::Error(e)) if e.status == 502));
        assert!(d.candidates.len() <= MAX_CANDIDATES);
    }

    // -- errors -----------------------------------------------------------

    #[test]
    fn error_fixtures() {
        for case in &cases(ERRORS) {
            let status = u16::try_from(case["status"].as_u64().unwrap()).unwrap();
            let body = match &case["body"] {
                Value::String(s) => s.clone().into_bytes(),
                other => serde_json::to_vec(other).unwrap(),
            };
            let e = Gemini.decode_error(status, &body);
            assert_eq!(e.status, status, "{}", name(case));
            assert_eq!(err_json(&e), case["openai"], "{}", name(case));
        }
    }

    #[test]
    fn long_error_messages_are_capped() {
        let body = json!({"error": {"code": 400, "message": "x".repeat(5000), "status": "INVALID_ARGUMENT"}});
        let e = Gemini.decode_error(400, body.to_string().as_bytes());
        assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    // -- paths, ids, embeddings -------------------------------------------

    #[test]
    fn paths() {
        let base = "https://generativelanguage.googleapis.com/v1beta";
        assert_eq!(
            Gemini.path(Operation::ChatCompletions, base, "gemini-2.5-flash", false),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            Gemini.path(Operation::ChatCompletions, base, "gemini-2.5-flash", true),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            Gemini.path(
                Operation::Embeddings,
                "/v1beta/",
                "gemini-embedding-001",
                false
            ),
            "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(
            Gemini.path(
                Operation::ChatCompletions,
                "/v1beta",
                "models/gemini-2.0-flash",
                false
            ),
            "/v1beta/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(
            Gemini.path(
                Operation::ChatCompletions,
                "/v1beta",
                "tunedModels/my-tune",
                false
            ),
            "/v1beta/tunedModels/my-tune:generateContent"
        );
    }

    #[test]
    fn signatures_round_trip_through_tool_call_ids() {
        for sig in ["c2lnLzE+Pw==", "AAAA", "a+b/c+d/ZQ==", "YWJj"] {
            let id = tool_call_id("0123456789abcdef", 3, Some(sig));
            assert!(id.starts_with("call_0123456789abcdef_3__thought__"));
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            assert_eq!(signature_from_id(&id).as_deref(), Some(sig));
        }
        assert_eq!(tool_call_id("r", 0, None), "call_r_0");
        assert_eq!(tool_call_id("r", 0, Some("")), "call_r_0");
        assert_eq!(signature_from_id("call_r_0"), None);
        assert_eq!(signature_from_id("call_r_0__thought__"), None);
    }

    #[test]
    fn model_generations() {
        assert_eq!(gemini_major("gemini-2.5-flash"), Some(2));
        assert_eq!(gemini_major("models/gemini-3-pro-preview"), Some(3));
        assert_eq!(gemini_major("gemini-10.0-ultra"), Some(10));
        assert_eq!(gemini_major("gemini-flash-latest"), None);
        assert_eq!(gemini_major("gemma-3-27b-it"), None);
    }

    fn embeddings_req(v: Value) -> EmbeddingsRequest {
        to_hub::embeddings_request(v.as_object().unwrap(), "gemini-embedding-001").unwrap()
    }

    #[test]
    fn embeddings_request() {
        let req = embeddings_req(json!({
            "model": "e", "input": ["first", "second"], "dimensions": 768,
            "encoding_format": "float", "user": "u1", "task_type": "RETRIEVAL_DOCUMENT", "title": "Doc"
        }));
        let got: Value = serde_json::from_slice(&Gemini.encode_embeddings(&req).unwrap()).unwrap();
        assert_eq!(
            got,
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first"}]},
                 "outputDimensionality": 768, "taskType": "RETRIEVAL_DOCUMENT", "title": "Doc"},
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]},
                 "outputDimensionality": 768, "taskType": "RETRIEVAL_DOCUMENT", "title": "Doc"}
            ]})
        );
        let req = embeddings_req(json!({"model": "e", "input": "one"}));
        let got: Value = serde_json::from_slice(&Gemini.encode_embeddings(&req).unwrap()).unwrap();
        assert_eq!(
            got,
            json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "one"}]}}]})
        );

        let e = Gemini
            .encode_embeddings(&embeddings_req(json!({"model": "e", "input": []})))
            .unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("input")));
        let e = Gemini
            .encode_embeddings(&embeddings_req(
                json!({"model": "e", "input": "x", "foo": 1}),
            ))
            .unwrap_err();
        assert_eq!(
            err_json(&e),
            json!({"error": {"message": "Unsupported parameter 'foo': it cannot be translated for this model's provider (Gemini) and would otherwise be dropped. Remove 'foo' for this model.",
                "type": "invalid_request_error", "param": "foo", "code": "unsupported_parameter"}})
        );
        let e = Gemini
            .encode_embeddings(&embeddings_req(
                json!({"model": "e", "input": "x", "taskType": 3}),
            ))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("taskType"));
    }

    #[test]
    fn embeddings_response() {
        let body = json!({"embeddings": [{"values": [0.1, -0.2, 3]}, {"values": [1e-3, 0]}]});
        let r = Gemini
            .decode_embeddings(body.to_string().as_bytes(), &ctx())
            .unwrap();
        assert_eq!(r.vectors, vec![vec![0.1, -0.2, 3.0], vec![0.001, 0.0]]);
        assert_eq!(r.prompt_tokens, 0, "Gemini reports no token counts");
        assert_eq!(r.model, "gemini-2.5-flash");
        let v: Value = serde_json::from_slice(&render::embeddings(&r, false)).unwrap();
        assert_eq!(
            v,
            json!({"object": "list", "model": "gemini-2.5-flash",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 3.0]},
                         {"object": "embedding", "index": 1, "embedding": [0.001, 0.0]}],
                "usage": {"prompt_tokens": 0, "total_tokens": 0}})
        );

        let body = json!({"embeddings": [{"values": [1]}], "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}});
        let r = Gemini
            .decode_embeddings(body.to_string().as_bytes(), &ctx())
            .unwrap();
        assert_eq!(r.prompt_tokens, 7);
        let body = json!({"embeddings": [
            {"values": [1], "statistics": {"tokenCount": 3.0, "truncated": false}},
            {"values": [2], "statistics": {"tokenCount": 4}}
        ]});
        let r = Gemini
            .decode_embeddings(body.to_string().as_bytes(), &ctx())
            .unwrap();
        assert_eq!(r.prompt_tokens, 7);

        for (body, message) in [
            ("nope", "Gemini returned an embeddings response that is not valid JSON: expected ident at line 1 column 2."),
            ("{}", "Gemini returned an embeddings response without an 'embeddings' array."),
            (r#"{"embeddings":[{}]}"#, "Gemini returned embeddings[0] without 'values'."),
            (r#"{"embeddings":[{"values":["a"]}]}"#, "Gemini returned embeddings[0].values with a non-number."),
        ] {
            let e = Gemini.decode_embeddings(body.as_bytes(), &ctx()).unwrap_err();
            assert_eq!((e.status, e.kind.as_ref()), (502, "api_error"));
            assert_eq!(e.message, message);
        }
    }
}
