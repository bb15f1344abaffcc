//! Hub `ChatRequest` → Gemini `GenerateContentRequest`.

use super::error::{invalid, unsupported};
use super::{gemini_major, signature_from_id, SKIP_SIGNATURE};
use crate::error::ApiError;
use crate::wire::hub::{
    ChatRequest, DocumentSource, ImageSource, Message, Part, ResponseFormat, Role, ToolCall,
    ToolChoice,
};
use hashbrown::HashMap;
use serde_json::{json, Map, Value};

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

/// Gemini-native extras the request may carry.
#[derive(Default)]
struct Extras {
    safety_settings: Option<Value>,
    cached_content: Option<Value>,
    thinking_config: Option<Value>,
    top_k: Option<Value>,
}

pub(super) fn set_once(slot: &mut Option<Value>, key: &str, value: &Value) -> Result<(), ApiError> {
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
        Part::Document {
            source: DocumentSource::Base64 { media_type, data },
            ..
        } => Ok(Some(
            json!({"inlineData": {"mimeType": media_type, "data": data}}),
        )),
        Part::Document {
            source: DocumentSource::Text(text),
            ..
        } => Ok((!text.is_empty()).then(|| json!({ "text": text }))),
        Part::Document {
            source: DocumentSource::Url(url),
            ..
        } => Ok(Some(json!({"fileData": {
            "mimeType": mime_for_url(url).unwrap_or("application/pdf"),
            "fileUri": url
        }}))),
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
                        Part::Image { .. } | Part::Document { .. } => {
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
                    .position(|p| matches!(p, Part::Image { .. } | Part::Document { .. }))
                {
                    return Err(invalid(
                        format!("messages[{i}].content[{j}]"),
                        format!("messages[{i}] is a tool result with an image; the gateway sends Gemini tool results as text only."),
                    ));
                }
                let text = msg.text();
                // Gemini's documented shapes: `output` on success, `error`
                // when the function failed.
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o)) if !msg.is_error => Value::Object(o),
                    _ if msg.is_error => json!({ "error": text }),
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

pub(super) fn encode_chat(req: &ChatRequest) -> Result<Value, ApiError> {
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
