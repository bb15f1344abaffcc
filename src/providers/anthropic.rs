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

use crate::error::{kind_for_status, normalize_upstream_error, ApiError};
use crate::hub::{
    ChatRequest, ChatResponse, Choice, FinishReason, ImageSource, Message, Part, ResponseContext,
    ResponseFormat, Role, StreamDecoder, StreamEvent, ToolCall, ToolChoice, ToolDef, Translator,
    Usage,
};
use crate::providers::Operation;
use crate::sse::SseEvent;
use serde_json::{json, Map, Value};
use std::borrow::Cow;

/// Provider name used in error messages.
const PROVIDER: &str = "Anthropic";

/// Text of the user turn inserted before a leading assistant turn.
pub const LEADING_USER_PLACEHOLDER: &str = ".";

/// Anthropic's minimum `thinking.budget_tokens`.
pub const MIN_THINKING_BUDGET: u32 = 1024;

/// Image media types Anthropic accepts for base64 sources.
const IMAGE_MEDIA_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effort {
    Low,
    Medium,
    High,
}

impl Effort {
    fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

// ---------------------------------------------------------------------------
// Errors raised by this edge
// ---------------------------------------------------------------------------

fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("invalid_value")
}

fn unsupported(param: &str, why: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "Unsupported parameter: '{param}' is not supported by this model's provider ({PROVIDER}){why}"
    ))
    .with_param(param)
    .with_code("unsupported_parameter")
}

fn bad_upstream(message: impl Into<String>) -> ApiError {
    ApiError::new(502, "api_error", message)
}

// ---------------------------------------------------------------------------
// Request encoding
// ---------------------------------------------------------------------------

/// One Anthropic turn being assembled.
struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

fn push_turn(turns: &mut Vec<Turn>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.blocks.extend(blocks),
        _ => turns.push(Turn { role, blocks }),
    }
}

fn is_block(v: &Value, ty: &str) -> bool {
    v.get("type").and_then(Value::as_str) == Some(ty)
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

fn image_block(source: &ImageSource, param: &str) -> Result<Value, ApiError> {
    match source {
        ImageSource::Url(url) => Ok(json!({
            "type": "image",
            "source": {"type": "url", "url": url},
        })),
        ImageSource::Base64 { media_type, data } => {
            if !IMAGE_MEDIA_TYPES.contains(&media_type.as_str()) {
                return Err(invalid(
                    format!("{param}.image_url.url"),
                    format!(
                        "Image media type '{media_type}' is not supported by {PROVIDER}; use image/jpeg, image/png, image/gif or image/webp."
                    ),
                ));
            }
            Ok(json!({
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }))
        }
    }
}

/// Text and image parts as Anthropic blocks (empty texts dropped).
fn content_blocks(m: &Message, i: usize, images: bool) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(m.content.len());
    for (j, part) in m.content.iter().enumerate() {
        match part {
            Part::Text(t) if t.is_empty() => {}
            Part::Text(t) => out.push(text_block(t)),
            Part::Image { source, .. } => {
                if !images {
                    return Err(image_not_allowed(m.role, i, j));
                }
                out.push(image_block(source, &format!("messages[{i}].content[{j}]"))?);
            }
        }
    }
    Ok(out)
}

fn image_not_allowed(role: Role, i: usize, j: usize) -> ApiError {
    invalid(
        format!("messages[{i}].content[{j}]"),
        format!(
            "Image content is not supported in {} messages by {PROVIDER}.",
            role_name(role)
        ),
    )
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn tool_use_block(call: &ToolCall, i: usize, j: usize) -> Result<Value, ApiError> {
    let param = format!("messages[{i}].tool_calls[{j}].function.arguments");
    let input = if call.arguments.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str::<Value>(&call.arguments).map_err(|e| {
            invalid(
                param.clone(),
                format!(
                    "Invalid 'messages[{i}].tool_calls[{j}].function.arguments': not valid JSON ({e}); {PROVIDER} needs the arguments as a JSON object."
                ),
            )
        })?
    };
    if !input.is_object() {
        return Err(invalid(
            param,
            format!(
                "Invalid 'messages[{i}].tool_calls[{j}].function.arguments': {PROVIDER} needs the arguments as a JSON object."
            ),
        ));
    }
    Ok(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}))
}

fn tool_result_block(m: &Message, i: usize) -> Result<Value, ApiError> {
    let Some(id) = m.tool_call_id.as_deref().filter(|id| !id.is_empty()) else {
        return Err(ApiError::invalid_request(format!(
            "Missing required parameter: 'messages[{i}].tool_call_id'."
        ))
        .with_param(format!("messages[{i}].tool_call_id"))
        .with_code("missing_required_parameter"));
    };
    let mut block = Map::new();
    block.insert("type".into(), "tool_result".into());
    block.insert("tool_use_id".into(), id.into());
    let has_image = m.content.iter().any(|p| matches!(p, Part::Image { .. }));
    if has_image {
        block.insert("content".into(), Value::Array(content_blocks(m, i, true)?));
    } else {
        let text = m.text();
        if !text.is_empty() {
            block.insert("content".into(), Value::String(text));
        }
    }
    Ok(Value::Object(block))
}

/// `(system blocks, turns)` for the request's messages.
fn convert_messages(messages: &[Message]) -> Result<(Vec<String>, Vec<Turn>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m.role {
            Role::System => {
                for (j, part) in m.content.iter().enumerate() {
                    match part {
                        Part::Text(t) if t.is_empty() => {}
                        Part::Text(t) => system.push(t.clone()),
                        Part::Image { .. } => {
                            return Err(image_not_allowed(Role::System, i, j));
                        }
                    }
                }
            }
            Role::User => push_turn(&mut turns, "user", content_blocks(m, i, true)?),
            Role::Assistant => {
                let mut blocks = content_blocks(m, i, false)?;
                for (j, call) in m.tool_calls.iter().enumerate() {
                    blocks.push(tool_use_block(call, i, j)?);
                }
                push_turn(&mut turns, "assistant", blocks);
            }
            Role::Tool => push_turn(&mut turns, "user", vec![tool_result_block(m, i)?]),
        }
    }
    for turn in turns.iter_mut().filter(|t| t.role == "user") {
        // Stable: tool results first, everything else after, order kept.
        let (mut results, rest): (Vec<Value>, Vec<Value>) = std::mem::take(&mut turn.blocks)
            .into_iter()
            .partition(|b| is_block(b, "tool_result"));
        results.extend(rest);
        turn.blocks = results;
    }
    if turns.first().is_some_and(|t| t.role == "assistant") {
        turns.insert(
            0,
            Turn {
                role: "user",
                blocks: vec![text_block(LEADING_USER_PLACEHOLDER)],
            },
        );
    }
    if turns.is_empty() {
        return Err(invalid(
            "messages",
            format!(
                "{PROVIDER} needs at least one non-empty user, assistant or tool message besides system messages."
            ),
        ));
    }
    Ok((system, turns))
}

fn turn_json(turn: Turn) -> Value {
    let content = match turn.blocks.as_slice() {
        [only] if is_block(only, "text") => only.get("text").cloned().unwrap_or(Value::Null),
        _ => Value::Array(turn.blocks),
    };
    json!({"role": turn.role, "content": content})
}

fn tool_json(t: &ToolDef) -> Value {
    let mut tool = Map::new();
    tool.insert("name".into(), t.name.clone().into());
    if let Some(d) = &t.description {
        tool.insert("description".into(), d.clone().into());
    }
    tool.insert(
        "input_schema".into(),
        t.parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    );
    if t.strict == Some(true) {
        tool.insert("strict".into(), true.into());
    }
    Value::Object(tool)
}

fn parse_effort(effort: Option<&str>) -> Result<Option<Effort>, ApiError> {
    match effort {
        None | Some("none") => Ok(None),
        Some("minimal" | "low") => Ok(Some(Effort::Low)),
        Some("medium") => Ok(Some(Effort::Medium)),
        Some("high") => Ok(Some(Effort::High)),
        Some(other) => Err(invalid(
            "reasoning_effort",
            format!(
                "Invalid value: '{other}'. Supported values for {PROVIDER} are: 'none', 'minimal', 'low', 'medium', and 'high'."
            ),
        )),
    }
}

/// The fields of `ChatRequest::extra` (unmodelled by the hub) this edge
/// accepts; everything else is a 400.
#[derive(Default)]
struct Extras {
    top_k: Option<Value>,
    thinking: Option<Value>,
    safety_identifier: Option<String>,
}

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

fn extras(extra: &Map<String, Value>) -> Result<Extras, ApiError> {
    let mut out = Extras::default();
    for (key, v) in extra {
        match key.as_str() {
            "top_k" => {
                if !v.is_u64() {
                    return Err(invalid(
                        "top_k",
                        "Invalid 'top_k': expected a non-negative integer.",
                    ));
                }
                out.top_k = Some(v.clone());
            }
            "thinking" => {
                if !v.is_object() {
                    return Err(invalid(
                        "thinking",
                        format!("Invalid 'thinking': expected an object in {PROVIDER}'s format, e.g. {{\"type\": \"enabled\", \"budget_tokens\": 2048}}."),
                    ));
                }
                out.thinking = Some(v.clone());
            }
            "safety_identifier" => match v {
                Value::String(s) => out.safety_identifier = Some(s.clone()),
                _ => {
                    return Err(invalid(
                        "safety_identifier",
                        "Invalid 'safety_identifier': expected a string.",
                    ))
                }
            },
            "logprobs" if v == &Value::Bool(false) => {}
            "top_logprobs" if is_zero(v) => {}
            "logit_bias" if v.as_object().is_some_and(Map::is_empty) => {}
            "store" if v == &Value::Bool(false) => {}
            "logprobs" | "top_logprobs" => {
                return Err(unsupported(key, ": it does not return log probabilities."))
            }
            "logit_bias" => return Err(unsupported(key, ": it does not support token biasing.")),
            "store" => {
                return Err(unsupported(
                    key,
                    ": it does not store completions for later retrieval.",
                ))
            }
            _ => return Err(unsupported(key, ".")),
        }
    }
    Ok(out)
}

impl Anthropic {
    fn budget(&self, effort: Effort) -> u32 {
        let b = match effort {
            Effort::Low => self.options.thinking_budget_low,
            Effort::Medium => self.options.thinking_budget_medium,
            Effort::High => self.options.thinking_budget_high,
        };
        b.max(MIN_THINKING_BUDGET)
    }

    fn encode(&self, req: &ChatRequest) -> Result<Value, ApiError> {
        // Parameters Anthropic cannot honour, in the order a reader checks.
        if let Some(n) = req.n.filter(|n| *n > 1) {
            return Err(unsupported(
                "n",
                &format!(": it returns one choice per request (got n={n})."),
            ));
        }
        if req.seed.is_some() {
            return Err(unsupported(
                "seed",
                ": it has no deterministic sampling seed.",
            ));
        }
        if req.presence_penalty.is_some_and(|p| p != 0.0) {
            return Err(unsupported("presence_penalty", "."));
        }
        if req.frequency_penalty.is_some_and(|p| p != 0.0) {
            return Err(unsupported("frequency_penalty", "."));
        }
        let extra = extras(&req.extra)?;

        let mut body = Map::new();
        body.insert("model".into(), req.model.clone().into());

        let (system, turns) = convert_messages(&req.messages)?;

        // Thinking, and the max_tokens it needs.
        let effort = parse_effort(req.reasoning_effort.as_deref())?;
        if effort.is_some() && extra.thinking.is_some() {
            return Err(invalid(
                "thinking",
                "Set either 'reasoning_effort' or 'thinking', not both.",
            ));
        }
        let default_max = self.options.default_max_tokens.max(1);
        let mut max_tokens = req.max_tokens.unwrap_or(default_max);
        let mut output_config = Map::new();
        let mut thinking_on = false;
        match (effort, self.options.thinking_mode) {
            (None, _) => {}
            (Some(e), ThinkingMode::Budget) => {
                let mut budget = self.budget(e);
                match req.max_tokens {
                    Some(m) if m <= MIN_THINKING_BUDGET => {
                        return Err(invalid(
                            "max_tokens",
                            format!(
                                "'max_tokens' must be greater than {MIN_THINKING_BUDGET} when 'reasoning_effort' is set: {PROVIDER}'s minimum thinking budget is {MIN_THINKING_BUDGET} tokens and counts toward 'max_tokens' (got {m})."
                            ),
                        ))
                    }
                    Some(m) => budget = budget.min(m - 1),
                    None if max_tokens <= budget => {
                        max_tokens = budget.saturating_add(default_max);
                    }
                    None => {}
                }
                body.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": budget}),
                );
                thinking_on = true;
            }
            (Some(e), ThinkingMode::Adaptive) => {
                body.insert("thinking".into(), json!({"type": "adaptive"}));
                output_config.insert("effort".into(), e.as_str().into());
                thinking_on = true;
            }
        }
        if let Some(t) = &extra.thinking {
            let ty = t.get("type").and_then(Value::as_str);
            thinking_on = ty != Some("disabled");
            if req.max_tokens.is_none() {
                if let Some(b) = t.get("budget_tokens").and_then(Value::as_u64) {
                    if u64::from(max_tokens) <= b {
                        let b = u32::try_from(b).unwrap_or(u32::MAX);
                        max_tokens = b.saturating_add(default_max);
                    }
                }
            }
            body.insert("thinking".into(), t.clone());
        }
        body.insert("max_tokens".into(), max_tokens.into());

        // Sampling.
        if let Some(t) = req.temperature {
            if !(0.0..=1.0).contains(&t) {
                return Err(invalid(
                    "temperature",
                    format!(
                        "Invalid 'temperature': {PROVIDER} accepts values from 0 to 1 (got {t})."
                    ),
                ));
            }
            if thinking_on && t != 1.0 {
                return Err(invalid(
                    "temperature",
                    format!(
                        "'temperature' must be 1 or unset when reasoning is enabled: {PROVIDER}'s extended thinking does not support other temperatures (got {t})."
                    ),
                ));
            }
            body.insert("temperature".into(), json!(t));
        }
        if let Some(p) = req.top_p {
            if thinking_on && p < 0.95 {
                return Err(invalid(
                    "top_p",
                    format!(
                        "'top_p' must be between 0.95 and 1 when reasoning is enabled: {PROVIDER}'s extended thinking does not support lower values (got {p})."
                    ),
                ));
            }
            body.insert("top_p".into(), json!(p));
        }
        if let Some(k) = extra.top_k {
            if thinking_on {
                return Err(invalid(
                    "top_k",
                    format!(
                        "'top_k' cannot be used when reasoning is enabled: {PROVIDER}'s extended thinking does not support it."
                    ),
                ));
            }
            body.insert("top_k".into(), k);
        }
        if !req.stop.is_empty() {
            body.insert("stop_sequences".into(), json!(req.stop));
        }

        // Tools.
        if !req.tools.is_empty() {
            body.insert(
                "tools".into(),
                Value::Array(req.tools.iter().map(tool_json).collect()),
            );
        }
        let disable_parallel = req.parallel_tool_calls == Some(false);
        let choice = match &req.tool_choice {
            None if disable_parallel && !req.tools.is_empty() => Some(json!({"type": "auto"})),
            None => None,
            Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
            Some(ToolChoice::None) => Some(json!({"type": "none"})),
            Some(ToolChoice::Required) => Some(json!({"type": "any"})),
            Some(ToolChoice::Function(name)) => Some(json!({"type": "tool", "name": name})),
        };
        if thinking_on
            && matches!(
                req.tool_choice,
                Some(ToolChoice::Required | ToolChoice::Function(_))
            )
        {
            return Err(invalid(
                "tool_choice",
                format!(
                    "'tool_choice' must be 'auto' or 'none' when reasoning is enabled: {PROVIDER}'s extended thinking cannot force tool use."
                ),
            ));
        }
        if let Some(mut choice) = choice {
            if disable_parallel && !is_block(&choice, "none") {
                if let Value::Object(c) = &mut choice {
                    c.insert("disable_parallel_tool_use".into(), true.into());
                }
            }
            body.insert("tool_choice".into(), choice);
        }

        // Structured output.
        match &req.response_format {
            None | Some(ResponseFormat::Text) => {}
            Some(ResponseFormat::JsonSchema { schema, .. }) => {
                output_config.insert(
                    "format".into(),
                    json!({"type": "json_schema", "schema": schema}),
                );
            }
            Some(ResponseFormat::JsonObject) => {
                return Err(invalid(
                    "response_format.type",
                    format!(
                        "response_format type 'json_object' is not supported by {PROVIDER}: it has no schema-less JSON mode. Use 'json_schema' with a schema (sent as {PROVIDER}'s output_config.format)."
                    ),
                ))
            }
        }
        if !output_config.is_empty() {
            body.insert("output_config".into(), Value::Object(output_config));
        }

        // Identity.
        let user_id = match (&req.user, &extra.safety_identifier) {
            (Some(u), Some(s)) if u != s => {
                return Err(invalid(
                    "safety_identifier",
                    format!(
                        "'user' and 'safety_identifier' differ; {PROVIDER} takes one end-user id (metadata.user_id)."
                    ),
                ))
            }
            (Some(u), _) => Some(u),
            (None, s) => s.as_ref(),
        };
        if let Some(u) = user_id {
            body.insert("metadata".into(), json!({"user_id": u}));
        }
        if req.stream {
            body.insert("stream".into(), true.into());
        }

        // System and messages last: they are the bulk of the body.
        match system.as_slice() {
            [] => {}
            [only] => {
                body.insert("system".into(), only.clone().into());
            }
            many => {
                body.insert(
                    "system".into(),
                    Value::Array(many.iter().map(|t| text_block(t)).collect()),
                );
            }
        }
        body.insert(
            "messages".into(),
            Value::Array(turns.into_iter().map(turn_json).collect()),
        );
        Ok(Value::Object(body))
    }
}

// ---------------------------------------------------------------------------
// Responses, usage, errors
// ---------------------------------------------------------------------------

fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => FinishReason::Stop,
    }
}

/// Token counts as Anthropic reports them; later reports override earlier
/// ones field by field (stream counts are cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TokenCounts {
    input: u64,
    output: u64,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
}

impl TokenCounts {
    fn update(&mut self, usage: &Value) {
        let n = |k: &str| usage.get(k).and_then(Value::as_u64);
        if let Some(v) = n("input_tokens") {
            self.input = v;
        }
        if let Some(v) = n("output_tokens") {
            self.output = v;
        }
        if let Some(v) = n("cache_read_input_tokens") {
            self.cache_read = Some(v);
        }
        if let Some(v) = n("cache_creation_input_tokens") {
            self.cache_creation = Some(v);
        }
    }

    fn to_usage(self) -> Usage {
        let prompt = self
            .input
            .saturating_add(self.cache_read.unwrap_or(0))
            .saturating_add(self.cache_creation.unwrap_or(0));
        Usage {
            prompt_tokens: prompt,
            completion_tokens: self.output,
            total_tokens: prompt.saturating_add(self.output),
            cached_tokens: self.cache_read,
            cache_creation_tokens: self.cache_creation,
            reasoning_tokens: None,
        }
    }
}

/// HTTP status Anthropic documents for an error type (stream errors carry
/// only the type).
fn status_for_type(ty: &str) -> u16 {
    match ty {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 502,
    }
}

/// OpenAI error `type` and `code` for Anthropic's error type.
fn map_error_type(ty: &str, status: u16) -> (Cow<'static, str>, Option<Cow<'static, str>>) {
    const SAME: &[&str] = &[
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "api_error",
        "timeout_error",
    ];
    match SAME.iter().find(|s| **s == ty) {
        Some(s) => (Cow::Borrowed(s), None),
        None => (
            Cow::Borrowed(kind_for_status(status)),
            Some(Cow::Owned(ty.to_string())),
        ),
    }
}

fn anthropic_error_type(v: &Value) -> Option<&str> {
    v.get("error")?
        .get("type")?
        .as_str()
        .filter(|t| !t.is_empty() && t.len() <= 64)
}

fn decode_error_body(status: u16, body: &[u8]) -> ApiError {
    let mut err = normalize_upstream_error(status, body, &[]);
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(ty) = anthropic_error_type(&v) {
            let (kind, code) = map_error_type(ty, status);
            err.kind = kind;
            err.code = code;
        }
    }
    err
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn decode_message(body: &[u8], ctx: &ResponseContext) -> Result<ChatResponse, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        bad_upstream(format!(
            "{PROVIDER} returned a response that is not valid JSON: {e}."
        ))
    })?;
    if !v.is_object() {
        return Err(bad_upstream(format!(
            "{PROVIDER} returned a response that is not a JSON object."
        )));
    }
    if str_field(&v, "type") == Some("error") {
        return Err(decode_error_body(502, body));
    }
    let Some(blocks) = v.get("content").and_then(Value::as_array) else {
        return Err(bad_upstream(format!(
            "{PROVIDER} returned a response without a 'content' array."
        )));
    };
    let mut content = String::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        match str_field(b, "type") {
            Some("text") => content.push_str(str_field(b, "text").unwrap_or_default()),
            Some("thinking") => reasoning
                .get_or_insert_with(String::new)
                .push_str(str_field(b, "thinking").unwrap_or_default()),
            Some("tool_use") => {
                let (Some(id), Some(name)) = (str_field(b, "id"), str_field(b, "name")) else {
                    return Err(bad_upstream(format!(
                        "{PROVIDER} returned a tool_use block (content[{i}]) without 'id' or 'name'."
                    )));
                };
                let arguments = match b.get("input") {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(input) => input.to_string(),
                };
                tool_calls.push(ToolCall {
                    id: id.into(),
                    name: name.into(),
                    arguments,
                });
            }
            // redacted_thinking (encrypted), server tool blocks, future types.
            _ => {}
        }
    }
    let finish = match str_field(&v, "stop_reason") {
        Some(r) => finish_reason(r),
        None if !tool_calls.is_empty() => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    };
    let usage = v.get("usage").filter(|u| u.is_object()).map(|u| {
        let mut c = TokenCounts::default();
        c.update(u);
        c.to_usage()
    });
    Ok(ChatResponse {
        id: str_field(&v, "id")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .unwrap_or_else(|| format!("chatcmpl-{}", ctx.request_id)),
        model: str_field(&v, "model")
            .filter(|s| !s.is_empty())
            .unwrap_or(&ctx.model)
            .to_string(),
        created: ctx.created,
        choices: vec![Choice {
            index: 0,
            content: Some(content),
            reasoning,
            tool_calls,
            finish_reason: Some(finish),
        }],
        usage,
    })
}

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

/// Event types Anthropic documents; other named events are ignored even
/// when their data is not JSON.
const KNOWN_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
];

/// A `tool_use` block still open in the stream.
#[derive(Debug)]
struct OpenTool {
    /// Anthropic's content block index.
    block: u64,
    /// Ordinal among the message's tool calls.
    index: u32,
    /// Whether any argument text was emitted.
    args_sent: bool,
    /// Non-empty `input` given at block start, sent if no delta follows.
    initial: Option<String>,
}

/// Translates one Anthropic Messages stream, event by event. Holds only
/// counters and the currently open tool blocks, never the stream.
#[derive(Debug, Default)]
pub struct AnthropicStreamDecoder {
    counts: TokenCounts,
    open_tools: Vec<OpenTool>,
    tool_calls: u32,
    finish_sent: bool,
    /// `message_stop` seen or an error emitted: nothing more is translated.
    done: bool,
}

fn malformed(what: &str) -> ApiError {
    bad_upstream(format!("{PROVIDER} sent a malformed stream event: {what}."))
}

impl AnthropicStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn fail(&mut self, err: ApiError, out: &mut Vec<StreamEvent>) {
        self.done = true;
        out.push(StreamEvent::Error(err));
    }

    fn translate(
        &mut self,
        ty: &str,
        v: &Value,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        match ty {
            "message_start" => {
                let Some(m) = v.get("message").filter(|m| m.is_object()) else {
                    return Err(malformed("message_start without 'message'"));
                };
                if let Some(u) = m.get("usage") {
                    self.counts.update(u);
                }
                out.push(StreamEvent::Start {
                    id: str_field(m, "id").unwrap_or_default().to_string(),
                    model: str_field(m, "model").unwrap_or_default().to_string(),
                });
            }
            "content_block_start" => {
                let (Some(block), Some(cb)) = (
                    v.get("index").and_then(Value::as_u64),
                    v.get("content_block").filter(|b| b.is_object()),
                ) else {
                    return Err(malformed(
                        "content_block_start without 'index' or 'content_block'",
                    ));
                };
                self.open_tools.retain(|t| t.block != block);
                match str_field(cb, "type") {
                    Some("text") => match str_field(cb, "text") {
                        Some(t) if !t.is_empty() => out.push(StreamEvent::Text {
                            choice: 0,
                            text: t.into(),
                        }),
                        _ => {}
                    },
                    Some("thinking") => match str_field(cb, "thinking") {
                        Some(t) if !t.is_empty() => out.push(StreamEvent::Reasoning {
                            choice: 0,
                            text: t.into(),
                        }),
                        _ => {}
                    },
                    Some("tool_use") => {
                        let (Some(id), Some(name)) = (str_field(cb, "id"), str_field(cb, "name"))
                        else {
                            return Err(malformed("tool_use block without 'id' or 'name'"));
                        };
                        let index = self.tool_calls;
                        self.tool_calls = self.tool_calls.saturating_add(1);
                        let initial = cb
                            .get("input")
                            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                            .map(Value::to_string);
                        out.push(StreamEvent::ToolCallStart {
                            choice: 0,
                            index,
                            id: id.into(),
                            name: name.into(),
                        });
                        self.open_tools.push(OpenTool {
                            block,
                            index,
                            args_sent: false,
                            initial,
                        });
                    }
                    // redacted_thinking, server tool blocks, future types.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let (Some(block), Some(d)) = (
                    v.get("index").and_then(Value::as_u64),
                    v.get("delta").filter(|d| d.is_object()),
                ) else {
                    return Err(malformed("content_block_delta without 'index' or 'delta'"));
                };
                let text = |key: &str| {
                    str_field(d, key).ok_or_else(|| {
                        malformed(&format!(
                            "{} without '{key}'",
                            str_field(d, "type").unwrap_or_default()
                        ))
                    })
                };
                match str_field(d, "type") {
                    Some("text_delta") => {
                        let t = text("text")?;
                        if !t.is_empty() {
                            out.push(StreamEvent::Text {
                                choice: 0,
                                text: t.into(),
                            });
                        }
                    }
                    Some("thinking_delta") => {
                        let t = text("thinking")?;
                        if !t.is_empty() {
                            out.push(StreamEvent::Reasoning {
                                choice: 0,
                                text: t.into(),
                            });
                        }
                    }
                    Some("input_json_delta") => {
                        let fragment = text("partial_json")?;
                        let Some(tool) = self.open_tools.iter_mut().find(|t| t.block == block)
                        else {
                            return Err(malformed(&format!(
                                "input_json_delta for content block {block}, which is not an open tool_use block"
                            )));
                        };
                        if !fragment.is_empty() {
                            tool.args_sent = true;
                            out.push(StreamEvent::ToolCallArgs {
                                choice: 0,
                                index: tool.index,
                                fragment: fragment.into(),
                            });
                        }
                    }
                    // signature_delta, citations_delta, future types.
                    _ => {}
                }
            }
            "content_block_stop" => {
                let Some(block) = v.get("index").and_then(Value::as_u64) else {
                    return Err(malformed("content_block_stop without 'index'"));
                };
                if let Some(pos) = self.open_tools.iter().position(|t| t.block == block) {
                    let tool = self.open_tools.swap_remove(pos);
                    if !tool.args_sent {
                        // A call without arguments still owes valid JSON.
                        out.push(StreamEvent::ToolCallArgs {
                            choice: 0,
                            index: tool.index,
                            fragment: tool.initial.unwrap_or_else(|| "{}".into()),
                        });
                    }
                }
            }
            "message_delta" => {
                if let Some(reason) = v.get("delta").and_then(|d| str_field(d, "stop_reason")) {
                    if !self.finish_sent {
                        self.finish_sent = true;
                        out.push(StreamEvent::Finish {
                            choice: 0,
                            reason: finish_reason(reason),
                        });
                    }
                }
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    self.counts.update(u);
                    out.push(StreamEvent::Usage(self.counts.to_usage()));
                }
            }
            "message_stop" => {
                if !self.finish_sent {
                    self.finish_sent = true;
                    out.push(StreamEvent::Finish {
                        choice: 0,
                        reason: if self.tool_calls > 0 {
                            FinishReason::ToolCalls
                        } else {
                            FinishReason::Stop
                        },
                    });
                }
                self.done = true;
            }
            "error" => {
                let e = v.get("error");
                let ty = e
                    .and_then(|e| str_field(e, "type"))
                    .filter(|t| !t.is_empty() && t.len() <= 64)
                    .unwrap_or("api_error");
                let message = e
                    .and_then(|e| str_field(e, "message"))
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .unwrap_or_else(|| format!("{PROVIDER} reported a '{ty}' error mid-stream."));
                let status = status_for_type(ty);
                let (kind, code) = map_error_type(ty, status);
                let mut err = ApiError::new(status, kind, message);
                err.code = code;
                self.fail(err, out);
            }
            // ping and event types added later.
            _ => {}
        }
        Ok(())
    }
}

impl StreamDecoder for AnthropicStreamDecoder {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        let name = event.event.as_deref();
        let v: Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(_) if name.is_some_and(|n| !KNOWN_EVENTS.contains(&n)) => return,
            Err(e) => {
                let what = format!(
                    "the data of a '{}' event is not valid JSON ({e})",
                    name.unwrap_or("message")
                );
                self.fail(malformed(&what), out);
                return;
            }
        };
        let ty = str_field(&v, "type")
            .or(name)
            .unwrap_or_default()
            .to_string();
        if let Err(err) = self.translate(&ty, &v, out) {
            self.fail(err, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.done {
            self.fail(
                bad_upstream("upstream stream ended before message_stop"),
                out,
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Translator
// ---------------------------------------------------------------------------

impl Translator for Anthropic {
    /// `{prefix}/messages`. Anthropic serves no embeddings: the default
    /// `encode_embeddings` rejects those before any path is used.
    fn path(&self, op: Operation, prefix: &str, _model: &str, _stream: bool) -> String {
        match op {
            Operation::ChatCompletions => format!("{prefix}/messages"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::render::{chat_completion, ChunkWriter};
    use crate::openai::to_hub;
    use crate::sse::SseFramer;

    const UPSTREAM_MODEL: &str = "claude-sonnet-4-5";
    const REQUESTS: &str = include_str!("../../tests/fixtures/anthropic/requests.json");
    const RESPONSES: &str = include_str!("../../tests/fixtures/anthropic/responses.json");
    const ERRORS: &str = include_str!("../../tests/fixtures/anthropic/errors.json");
    const STREAMS: &str = include_str!("../../tests/fixtures/anthropic/streams.json");

    fn sse_fixture(name: &str) -> &'static str {
        match name {
            "text.sse" => include_str!("../../tests/fixtures/anthropic/text.sse"),
            "tool_use.sse" => include_str!("../../tests/fixtures/anthropic/tool_use.sse"),
            "thinking.sse" => include_str!("../../tests/fixtures/anthropic/thinking.sse"),
            "error_midstream.sse" => {
                include_str!("../../tests/fixtures/anthropic/error_midstream.sse")
            }
            "cut.sse" => include_str!("../../tests/fixtures/anthropic/cut.sse"),
            "cut_mid_event.sse" => include_str!("../../tests/fixtures/anthropic/cut_mid_event.sse"),
            "misc.sse" => include_str!("../../tests/fixtures/anthropic/misc.sse"),
            "malformed.sse" => include_str!("../../tests/fixtures/anthropic/malformed.sse"),
            "orphan_json_delta.sse" => {
                include_str!("../../tests/fixtures/anthropic/orphan_json_delta.sse")
            }
            other => panic!("no stream fixture {other}"),
        }
    }

    fn ctx() -> ResponseContext {
        ResponseContext {
            model: UPSTREAM_MODEL.into(),
            created: 1_700_000_000,
            request_id: "req-1".into(),
        }
    }

    fn cases(text: &str) -> Vec<Value> {
        match serde_json::from_str(text).unwrap() {
            Value::Array(a) => a,
            _ => panic!("fixture file is not an array"),
        }
    }

    fn translator(options: Option<&Value>) -> Anthropic {
        let mut o = AnthropicOptions::default();
        if let Some(opts) = options {
            if let Some(m) = opts.get("thinking_mode").and_then(Value::as_str) {
                o.thinking_mode = match m {
                    "adaptive" => ThinkingMode::Adaptive,
                    _ => ThinkingMode::Budget,
                };
            }
            if let Some(n) = opts.get("default_max_tokens").and_then(Value::as_u64) {
                o.default_max_tokens = n as u32;
            }
        }
        Anthropic::new(o)
    }

    fn encode_openai(t: &Anthropic, openai: &Value) -> Result<Value, ApiError> {
        let req = to_hub::chat_request(openai.as_object().unwrap(), UPSTREAM_MODEL)?;
        let bytes = t.encode_request(&req)?;
        Ok(serde_json::from_slice(&bytes).unwrap())
    }

    fn error_json(e: &ApiError) -> Value {
        serde_json::from_slice(&e.to_json()).unwrap()
    }

    #[test]
    fn request_fixtures() {
        let all = cases(REQUESTS);
        assert!(all.len() >= 40);
        for case in &all {
            let name = case["name"].as_str().unwrap();
            let t = translator(case.get("options"));
            let got = encode_openai(&t, &case["openai"]);
            match (case.get("anthropic"), case.get("error")) {
                (Some(expected), None) => {
                    let got = got.unwrap_or_else(|e| panic!("{name}: unexpected error {e:?}"));
                    assert_eq!(&got, expected, "{name}");
                }
                (None, Some(expected)) => {
                    let err = got.expect_err(name);
                    assert_eq!(err.status, 400, "{name}");
                    assert_eq!(error_json(&err), json!({ "error": expected }), "{name}");
                }
                _ => panic!("{name}: a case needs 'anthropic' or 'error'"),
            }
        }
    }

    #[test]
    fn response_fixtures() {
        let t = Anthropic::default();
        for case in &cases(RESPONSES) {
            let name = case["name"].as_str().unwrap();
            let body = match (case.get("anthropic"), case.get("raw")) {
                (Some(v), None) => serde_json::to_vec(v).unwrap(),
                (None, Some(Value::String(raw))) => raw.as_bytes().to_vec(),
                _ => panic!("{name}: a case needs 'anthropic' or 'raw'"),
            };
            let got = t.decode_response(&body, &ctx());
            match (case.get("openai"), case.get("error")) {
                (Some(expected), None) => {
                    let r = got.unwrap_or_else(|e| panic!("{name}: unexpected error {e:?}"));
                    let v: Value = serde_json::from_slice(&chat_completion(&r)).unwrap();
                    assert_eq!(&v, expected, "{name}");
                }
                (None, Some(expected)) => {
                    let err = got.expect_err(name);
                    assert_eq!(json!(err.status), expected["status"], "{name}");
                    assert_eq!(error_json(&err)["error"], expected["error"], "{name}");
                }
                _ => panic!("{name}: a case needs 'openai' or 'error'"),
            }
        }
    }

    #[test]
    fn response_usage_keeps_cache_creation_tokens() {
        let body = br#"{"id":"m","type":"message","model":"c","content":[],"stop_reason":"end_turn",
            "usage":{"input_tokens":1,"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"output_tokens":4}}"#;
        let r = Anthropic::default().decode_response(body, &ctx()).unwrap();
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 6,
                completion_tokens: 4,
                total_tokens: 10,
                cached_tokens: Some(3),
                cache_creation_tokens: Some(2),
                reasoning_tokens: None,
            })
        );
        assert_eq!(r.created, 1_700_000_000);
    }

    #[test]
    fn error_fixtures() {
        let t = Anthropic::default();
        for case in &cases(ERRORS) {
            let name = case["name"].as_str().unwrap();
            let status = case["status"].as_u64().unwrap() as u16;
            let err = t.decode_error(status, case["body"].as_str().unwrap().as_bytes());
            assert_eq!(err.status, status, "{name}");
            assert_eq!(error_json(&err), json!({"error": case["openai"]}), "{name}");
        }
    }

    /// Feeds `chunks` through framer → decoder → OpenAI chunk writer.
    fn run_stream<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, include_usage: bool) -> Vec<u8> {
        let t = Anthropic::default();
        let mut framer = SseFramer::new(1 << 16);
        let mut decoder = t.stream_decoder(&ctx());
        let mut writer = ChunkWriter::new(&ctx(), include_usage);
        let mut out = Vec::new();
        let mut events = Vec::new();
        let mut hub = Vec::new();
        let mut deliver = |events: &mut Vec<SseEvent>,
                           decoder: &mut Box<dyn StreamDecoder>,
                           writer: &mut ChunkWriter,
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
            deliver(&mut events, &mut decoder, &mut writer, &mut out);
        }
        framer.finish(&mut events).unwrap();
        deliver(&mut events, &mut decoder, &mut writer, &mut out);
        decoder.finish(&mut hub);
        for h in hub.drain(..) {
            writer.write(&h, &mut out);
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

    #[test]
    fn stream_fixtures() {
        let all = cases(STREAMS);
        assert!(all.len() >= 10);
        for case in &all {
            let name = case["name"].as_str().unwrap();
            let body = sse_fixture(case["sse"].as_str().unwrap()).as_bytes();
            let include_usage = case["include_usage"].as_bool().unwrap();
            let whole = run_stream([body], include_usage);
            assert_eq!(
                Value::Array(frames(&whole)),
                case["openai"],
                "{name}: {}",
                String::from_utf8_lossy(&whole)
            );
            // Split at every byte offset into two chunks.
            for k in 0..=body.len() {
                let (a, b) = body.split_at(k);
                assert_eq!(
                    run_stream([a, b], include_usage),
                    whole,
                    "{name}: split at byte {k}"
                );
            }
            // One byte at a time.
            assert_eq!(
                run_stream(body.chunks(1), include_usage),
                whole,
                "{name}: byte by byte"
            );
        }
    }

    fn decode_events(events: &[(&str, Value)]) -> Vec<StreamEvent> {
        let mut d = AnthropicStreamDecoder::new();
        let mut out = Vec::new();
        for (name, data) in events {
            d.on_event(
                &SseEvent {
                    event: Some((*name).into()),
                    data: data.to_string(),
                    id: None,
                },
                &mut out,
            );
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn stream_tool_ordinals_and_usage_events() {
        let out = decode_events(&[
            (
                "message_start",
                json!({"type":"message_start","message":{"id":"msg_1","model":"c",
                    "usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":1,"output_tokens":1}}}),
            ),
            (
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}),
            ),
            (
                "content_block_stop",
                json!({"type":"content_block_stop","index":0}),
            ),
            (
                "content_block_start",
                json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}),
            ),
            (
                "content_block_stop",
                json!({"type":"content_block_stop","index":1}),
            ),
            (
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":7}}),
            ),
            ("message_stop", json!({"type":"message_stop"})),
        ]);
        assert_eq!(
            out,
            vec![
                StreamEvent::Start {
                    id: "msg_1".into(),
                    model: "c".into()
                },
                StreamEvent::ToolCallStart {
                    choice: 0,
                    index: 0,
                    id: "t1".into(),
                    name: "f".into()
                },
                StreamEvent::ToolCallArgs {
                    choice: 0,
                    index: 0,
                    fragment: "{\"a\":1}".into()
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::ToolCalls
                },
                StreamEvent::Usage(Usage {
                    prompt_tokens: 16,
                    completion_tokens: 7,
                    total_tokens: 23,
                    cached_tokens: Some(5),
                    cache_creation_tokens: Some(1),
                    reasoning_tokens: None,
                }),
            ]
        );
    }

    #[test]
    fn stream_error_event_keeps_provider_type_and_status() {
        let out = decode_events(&[(
            "error",
            json!({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}),
        )]);
        let [StreamEvent::Error(e)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            (
                e.status,
                e.kind.as_ref(),
                e.message.as_str(),
                e.code.clone()
            ),
            (429, "rate_limit_error", "slow down", None)
        );
        let out = decode_events(&[(
            "error",
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
        )]);
        let [StreamEvent::Error(e)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(e.status, 529);
        assert_eq!(e.kind, "api_error");
        assert_eq!(e.code.as_deref(), Some("overloaded_error"));
    }

    #[test]
    fn stream_finish_reasons_and_synthesized_finish() {
        for (reason, expected) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::ContentFilter),
            ("pause_turn", FinishReason::Stop),
            ("model_context_window_exceeded", FinishReason::Length),
        ] {
            let out = decode_events(&[
                (
                    "message_delta",
                    json!({"type":"message_delta","delta":{"stop_reason":reason}}),
                ),
                (
                    "message_delta",
                    json!({"type":"message_delta","delta":{"stop_reason":"end_turn"}}),
                ),
                ("message_stop", json!({"type":"message_stop"})),
            ]);
            assert_eq!(
                out,
                vec![StreamEvent::Finish {
                    choice: 0,
                    reason: expected
                }],
                "{reason}"
            );
        }
        // No message_delta stop_reason: message_stop still finishes the choice.
        let out = decode_events(&[("message_stop", json!({"type":"message_stop"}))]);
        assert_eq!(
            out,
            vec![StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop
            }]
        );
    }

    #[test]
    fn stream_decoder_holds_only_open_tool_blocks() {
        let mut d = AnthropicStreamDecoder::new();
        let mut out = Vec::new();
        for i in 0..1000u64 {
            for data in [
                json!({"type":"content_block_start","index":i,"content_block":{"type":"tool_use","id":format!("t{i}"),"name":"f","input":{}}}),
                json!({"type":"content_block_delta","index":i,"delta":{"type":"input_json_delta","partial_json":"{}"}}),
                json!({"type":"content_block_stop","index":i}),
            ] {
                d.on_event(
                    &SseEvent {
                        event: None,
                        data: data.to_string(),
                        id: None,
                    },
                    &mut out,
                );
            }
            assert!(d.open_tools.is_empty());
        }
        assert_eq!(out.len(), 2000);
        assert_eq!(
            out.last(),
            Some(&StreamEvent::ToolCallArgs {
                choice: 0,
                index: 999,
                fragment: "{}".into()
            })
        );
    }

    #[test]
    fn paths() {
        let t = Anthropic::default();
        assert_eq!(
            t.path(Operation::ChatCompletions, "/v1", "claude", false),
            "/v1/messages"
        );
        assert_eq!(
            t.path(Operation::ChatCompletions, "", "claude", true),
            "/messages"
        );
        assert!(t.encode_embeddings(&Default::default()).is_err());
    }

    #[test]
    fn options_defaults_and_budget_floor() {
        let o = AnthropicOptions::default();
        assert_eq!(o.default_max_tokens, 4096);
        assert_eq!(
            (
                o.thinking_budget_low,
                o.thinking_budget_medium,
                o.thinking_budget_high
            ),
            (1024, 4096, 16384)
        );
        // A configured budget under Anthropic's minimum is raised to it.
        let t = Anthropic::new(AnthropicOptions {
            thinking_budget_low: 10,
            ..AnthropicOptions::default()
        });
        let v = encode_openai(
            &t,
            &json!({"model":"m","reasoning_effort":"low","messages":[{"role":"user","content":"x"}]}),
        )
        .unwrap();
        assert_eq!(v["thinking"]["budget_tokens"], 1024);
    }
}
