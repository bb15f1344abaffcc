//! Hub `ChatRequest` → Converse request body.

use super::error::{invalid, unsupported};
use super::PROVIDER;
use crate::error::ApiError;
use crate::wire::hub::{
    ChatRequest, DocumentSource, ImageSource, Message, Part, ResponseFormat, Role, ToolCall,
    ToolChoice, ToolDef,
};
use crate::wire::turns::{push_turn, settle, Turn};
use base64::Engine;
use serde_json::{json, Map, Value};

/// The user turn put before a conversation that starts with the assistant.
const LEADING_USER_PLACEHOLDER: &str = ".";
/// Claude's smallest thinking budget.
const MIN_THINKING_BUDGET: u32 = 1024;
/// max_tokens when the client set none and thinking needs room.
const DEFAULT_MAX_TOKENS: u32 = 4096;

fn image_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

fn document_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

/// A document name Converse accepts: letters, digits, single spaces,
/// hyphens, parentheses and square brackets.
fn document_name(name: Option<&str>, n: usize) -> String {
    let stem = name.map(|s| s.rsplit_once('.').map_or(s, |(stem, _)| stem));
    let mut out = String::new();
    for c in stem.unwrap_or_default().chars() {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']');
        let c = if keep { c } else { ' ' };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
        if out.len() >= 100 {
            break;
        }
    }
    let out = out.trim_end().to_string();
    if out.is_empty() {
        format!("document-{n}")
    } else {
        out
    }
}

struct Blocks {
    /// Documents numbered across the request, for default names.
    documents: usize,
}

impl Blocks {
    fn part(&mut self, part: &Part, param: &str) -> Result<Option<Value>, ApiError> {
        Ok(Some(match part {
            Part::Text(t) if t.is_empty() => return Ok(None),
            Part::Text(t) => json!({"text": t}),
            Part::Image { source, .. } => match source {
                ImageSource::Url(_) => {
                    return Err(invalid(
                        param,
                        format!("{PROVIDER} takes images inline: send them as base64 data URLs (data:image/png;base64,…); it does not fetch URLs."),
                    ))
                }
                ImageSource::Base64 { media_type, data } => {
                    let format = image_format(media_type).ok_or_else(|| {
                        invalid(
                            param,
                            format!("Image media type '{media_type}' is not supported by {PROVIDER}; use image/png, image/jpeg, image/gif or image/webp."),
                        )
                    })?;
                    json!({"image": {"format": format, "source": {"bytes": data}}})
                }
            },
            Part::Document { source, name } => {
                self.documents += 1;
                let name = document_name(name.as_deref(), self.documents);
                let (format, bytes) = match source {
                    DocumentSource::Base64 { media_type, data } => {
                        let format = document_format(media_type).ok_or_else(|| {
                            invalid(
                                param,
                                format!("Document type '{media_type}' is not supported by {PROVIDER}; it takes pdf, csv, doc, docx, xls, xlsx, html, txt and md."),
                            )
                        })?;
                        (format, data.clone())
                    }
                    DocumentSource::Text(text) => (
                        "txt",
                        base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
                    ),
                    DocumentSource::Url(_) => {
                        return Err(invalid(
                            param,
                            format!("{PROVIDER} takes documents inline (base64); it does not fetch URLs."),
                        ))
                    }
                };
                json!({"document": {"format": format, "name": name, "source": {"bytes": bytes}}})
            }
        }))
    }

    fn content(&mut self, m: &Message, i: usize) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::with_capacity(m.content.len());
        for (j, part) in m.content.iter().enumerate() {
            if let Some(block) = self.part(part, &format!("messages[{i}].content[{j}]"))? {
                out.push(block);
            }
        }
        Ok(out)
    }

    fn tool_result(&mut self, m: &Message, i: usize) -> Result<Value, ApiError> {
        let Some(id) = m.tool_call_id.as_deref().filter(|id| !id.is_empty()) else {
            return Err(ApiError::missing_parameter(format!(
                "messages[{i}].tool_call_id"
            )));
        };
        let mut content = self.content(m, i)?;
        if content.is_empty() {
            // Converse wants at least one content block.
            content.push(json!({"text": ""}));
        }
        let mut result = json!({"toolUseId": id, "content": content});
        if m.is_error {
            result["status"] = "error".into();
        }
        Ok(json!({ "toolResult": result }))
    }
}

fn tool_use(call: &ToolCall, i: usize, j: usize) -> Result<Value, ApiError> {
    let param = format!("messages[{i}].tool_calls[{j}].function.arguments");
    let input = if call.arguments.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str::<Value>(&call.arguments).unwrap_or(Value::Null)
    };
    if !input.is_object() {
        return Err(invalid(
            param.clone(),
            format!("Invalid '{param}': {PROVIDER} needs the arguments as a JSON object."),
        ));
    }
    Ok(json!({"toolUse": {"toolUseId": call.id, "name": call.name, "input": input}}))
}

/// `(system blocks, turns)` for the request's messages.
fn convert_messages(messages: &[Message]) -> Result<(Vec<Value>, Vec<Turn<Value>>), ApiError> {
    let mut blocks = Blocks { documents: 0 };
    let mut system = Vec::new();
    let mut turns: Vec<Turn<Value>> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m.role {
            Role::System => {
                for (j, part) in m.content.iter().enumerate() {
                    match part {
                        Part::Text(t) if t.is_empty() => {}
                        Part::Text(t) => system.push(json!({"text": t})),
                        Part::Image { .. } | Part::Document { .. } => {
                            return Err(invalid(
                                format!("messages[{i}].content[{j}]"),
                                format!("{PROVIDER} takes only text in system messages."),
                            ))
                        }
                    }
                }
            }
            Role::User => push_turn(&mut turns, "user", blocks.content(m, i)?),
            Role::Assistant => {
                let mut out = blocks.content(m, i)?;
                for (j, call) in m.tool_calls.iter().enumerate() {
                    out.push(tool_use(call, i, j)?);
                }
                push_turn(&mut turns, "assistant", out);
            }
            Role::Tool => push_turn(&mut turns, "user", vec![blocks.tool_result(m, i)?]),
        }
    }
    settle(
        &mut turns,
        |b| b.get("toolResult").is_some(),
        json!({ "text": LEADING_USER_PLACEHOLDER }),
    );
    if turns.is_empty() {
        return Err(invalid(
            "messages",
            format!("{PROVIDER} needs at least one non-empty user, assistant or tool message besides system messages."),
        ));
    }
    Ok((system, turns))
}

fn tool_spec(t: &ToolDef) -> Value {
    let mut spec = Map::new();
    spec.insert("name".into(), t.name.clone().into());
    if let Some(d) = t.description.as_ref().filter(|d| !d.is_empty()) {
        spec.insert("description".into(), d.clone().into());
    }
    let schema = t
        .parameters
        .clone()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    spec.insert("inputSchema".into(), json!({ "json": schema }));
    json!({ "toolSpec": spec })
}

/// Passed-through Converse fields and what they are called in requests.
const PASSED: &[(&str, &str)] = &[
    ("guardrailConfig", "guardrailConfig"),
    ("guardrail_config", "guardrailConfig"),
    ("performanceConfig", "performanceConfig"),
    ("performance_config", "performanceConfig"),
    ("requestMetadata", "requestMetadata"),
    ("request_metadata", "requestMetadata"),
    (
        "additionalModelResponseFieldPaths",
        "additionalModelResponseFieldPaths",
    ),
    (
        "additional_model_response_field_paths",
        "additionalModelResponseFieldPaths",
    ),
];

/// What the request's extra fields contribute.
#[derive(Default)]
struct Extras {
    /// Converse fields to add.
    body: Map<String, Value>,
    /// `additionalModelRequestFields` entries.
    model_fields: Map<String, Value>,
}

fn extras(extra: &Map<String, Value>) -> Result<Extras, ApiError> {
    let mut body = Map::new();
    let mut model_fields = Map::new();
    for (key, v) in extra {
        match key.as_str() {
            "additionalModelRequestFields" | "additional_model_request_fields" => {
                let Value::Object(fields) = v else {
                    return Err(invalid(
                        key.as_str(),
                        format!("Invalid '{key}': expected an object."),
                    ));
                };
                model_fields.extend(fields.clone());
            }
            "top_k" if v.is_u64() => {
                model_fields.insert("top_k".into(), v.clone());
            }
            "top_k" => {
                return Err(invalid(
                    "top_k",
                    "Invalid 'top_k': expected a non-negative integer.",
                ))
            }
            "thinking" if v.is_object() => {
                model_fields.insert("thinking".into(), v.clone());
            }
            "thinking" => {
                return Err(invalid(
                    "thinking",
                    "Invalid 'thinking': expected an object such as {\"type\": \"enabled\", \"budget_tokens\": 2048}.",
                ))
            }
            // OpenAI's string-to-string tags become Bedrock's invocation
            // log metadata.
            "metadata" if v.as_object().is_some_and(|m| m.values().all(Value::is_string)) => {
                body.insert("requestMetadata".into(), v.clone());
            }
            "metadata" => {
                return Err(invalid(
                    "metadata",
                    "Invalid 'metadata': expected an object of string values.",
                ))
            }
            // Advisory end-user ids, like `user`: not sent.
            "safety_identifier" if v.is_string() => {}
            "logprobs" if v == &Value::Bool(false) => {}
            "top_logprobs" if v.as_f64() == Some(0.0) => {}
            "logit_bias" if v.as_object().is_some_and(Map::is_empty) => {}
            "store" if v == &Value::Bool(false) => {}
            "logprobs" | "top_logprobs" => {
                return Err(unsupported(key, ": Converse returns no log probabilities."))
            }
            "logit_bias" => return Err(unsupported(key, ": Converse has no token biasing.")),
            "store" => {
                return Err(unsupported(
                    key,
                    ": it does not store completions for later retrieval.",
                ))
            }
            _ => match PASSED.iter().find(|(name, _)| name == key) {
                Some((_, field)) => {
                    body.insert((*field).to_string(), v.clone());
                }
                None => return Err(unsupported(key, ".")),
            },
        }
    }
    Ok(Extras { body, model_fields })
}

/// Model families whose reasoning switch differs.
enum Family {
    Claude,
    Nova,
    Other,
}

/// The family a Bedrock model id (or profile, or ARN) names.
fn family(model: &str) -> Family {
    if model.contains("anthropic.") {
        Family::Claude
    } else if model.contains("amazon.nova") {
        Family::Nova
    } else {
        Family::Other
    }
}

fn reasoning(
    req: &ChatRequest,
    model_fields: &mut Map<String, Value>,
    max_tokens: &mut Option<u32>,
) -> Result<(), ApiError> {
    let effort = match req.reasoning_effort.as_deref() {
        None | Some("none") => return Ok(()),
        Some(e @ ("minimal" | "low" | "medium" | "high")) => e,
        Some(other) => {
            return Err(invalid(
                "reasoning_effort",
                format!("Invalid value: '{other}'. Supported values are: 'none', 'minimal', 'low', 'medium', and 'high'."),
            ))
        }
    };
    if model_fields.contains_key("thinking") || model_fields.contains_key("reasoningConfig") {
        return Err(invalid(
            "reasoning_effort",
            "Set either 'reasoning_effort' or the model's own reasoning field, not both.",
        ));
    }
    match family(&req.model) {
        Family::Claude => {
            let mut budget = match effort {
                "minimal" | "low" => MIN_THINKING_BUDGET,
                "medium" => 8192,
                _ => 24576,
            };
            match *max_tokens {
                Some(m) if m <= MIN_THINKING_BUDGET => {
                    return Err(invalid(
                        "max_tokens",
                        format!("'max_tokens' must be greater than {MIN_THINKING_BUDGET} when 'reasoning_effort' is set: Claude's minimum thinking budget is {MIN_THINKING_BUDGET} tokens and counts toward 'max_tokens' (got {m})."),
                    ))
                }
                Some(m) => budget = budget.min(m - 1),
                None => *max_tokens = Some(budget.saturating_add(DEFAULT_MAX_TOKENS)),
            }
            model_fields.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
        Family::Nova => {
            let effort = if effort == "minimal" { "low" } else { effort };
            model_fields.insert(
                "reasoningConfig".into(),
                json!({"type": "enabled", "maxReasoningEffort": effort}),
            );
        }
        Family::Other => {
            return Err(unsupported(
                "reasoning_effort",
                " for this model: pass the model's own reasoning field in 'additionalModelRequestFields'.",
            ))
        }
    }
    Ok(())
}

/// Names of the tools the history's assistant turns called, in order.
fn history_tools(turns: &[Turn<Value>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for b in turns.iter().flat_map(|t| &t.blocks) {
        if let Some(name) = b.pointer("/toolUse/name").and_then(Value::as_str) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

fn has_tool_blocks(turns: &[Turn<Value>]) -> bool {
    turns
        .iter()
        .flat_map(|t| &t.blocks)
        .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some())
}

pub(super) fn encode(req: &ChatRequest) -> Result<Value, ApiError> {
    if let Some(n) = req.n.filter(|n| *n > 1) {
        return Err(unsupported(
            "n",
            &format!(": Converse returns one choice per request (got n={n})."),
        ));
    }
    if req.seed.is_some() {
        return Err(unsupported("seed", ": Converse has no sampling seed."));
    }
    if req.presence_penalty.is_some_and(|p| p != 0.0) {
        return Err(unsupported("presence_penalty", "."));
    }
    if req.frequency_penalty.is_some_and(|p| p != 0.0) {
        return Err(unsupported("frequency_penalty", "."));
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(_) => return Err(unsupported(
            "response_format",
            ": Converse has no JSON mode; declare a tool whose input schema is the format instead.",
        )),
    }
    if req.parallel_tool_calls == Some(false) {
        return Err(unsupported(
            "parallel_tool_calls",
            ": Converse cannot limit a turn to one tool call.",
        ));
    }
    let Extras {
        mut body,
        mut model_fields,
    } = extras(&req.extra)?;
    let (system, turns) = convert_messages(&req.messages)?;

    let mut max_tokens = req.max_tokens;
    reasoning(req, &mut model_fields, &mut max_tokens)?;
    let mut inference = Map::new();
    if let Some(m) = max_tokens {
        inference.insert("maxTokens".into(), m.into());
    }
    if let Some(t) = req.temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        inference.insert("topP".into(), json!(p));
    }
    if !req.stop.is_empty() {
        inference.insert("stopSequences".into(), json!(req.stop));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }

    match &req.tool_choice {
        Some(ToolChoice::Required | ToolChoice::Function(_)) if req.tools.is_empty() => {
            return Err(invalid(
                "tool_choice",
                "'tool_choice' requires 'tools' to be declared.",
            ))
        }
        Some(ToolChoice::Function(name)) if !req.tools.iter().any(|t| &t.name == name) => {
            return Err(invalid(
                "tool_choice",
                format!("'tool_choice' names the function '{name}', which is not among 'tools'."),
            ))
        }
        _ => {}
    }
    // Converse refuses tool blocks in the history unless tools are
    // declared: tools the history used but the request does not declare
    // are declared for it (with an open schema).
    let mut tools: Vec<Value> = req.tools.iter().map(tool_spec).collect();
    for name in history_tools(&turns) {
        if !req.tools.iter().any(|t| t.name == name) {
            tools.push(tool_spec(&ToolDef {
                name,
                description: Some("A tool used earlier in this conversation.".into()),
                parameters: Some(json!({"type": "object"})),
                strict: None,
            }));
        }
    }
    let offer_tools = req.tool_choice != Some(ToolChoice::None) || has_tool_blocks(&turns);
    if offer_tools && !tools.is_empty() {
        let mut config = Map::new();
        config.insert("tools".into(), Value::Array(tools));
        let choice = match &req.tool_choice {
            Some(ToolChoice::Required) => Some(json!({"any": {}})),
            Some(ToolChoice::Function(name)) => Some(json!({"tool": {"name": name}})),
            Some(ToolChoice::Auto) => Some(json!({"auto": {}})),
            _ => None,
        };
        if let Some(choice) = choice {
            config.insert("toolChoice".into(), choice);
        }
        body.insert("toolConfig".into(), Value::Object(config));
    }
    if !model_fields.is_empty() {
        body.insert(
            "additionalModelRequestFields".into(),
            Value::Object(model_fields),
        );
    }
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|t| json!({"role": t.role, "content": t.blocks}))
                .collect(),
        ),
    );
    Ok(Value::Object(body))
}
