//! Responses request → hub `ChatRequest`. Runs after `parse_request`, so
//! shapes are known; what the hub cannot carry, or a translated request
//! cannot honour, is a 400 here.

use super::errors::{invalid_value, missing, unsupported};
use super::parse::present;
use crate::error::ApiError;
use crate::wire::hub::{
    ChatRequest, DocumentSource, ImageSource, Message, Part, ResponseFormat, Role, ToolCall,
    ToolChoice, ToolDef,
};
use serde_json::{Map, Value};

/// Converts a validated request; `upstream_model` replaces the client's.
pub fn to_hub(body: &Map<String, Value>, upstream_model: &str) -> Result<ChatRequest, ApiError> {
    refuse_untranslatable(body)?;
    let mut req = ChatRequest {
        model: upstream_model.to_string(),
        ..ChatRequest::default()
    };
    if let Some(Value::String(s)) = present(body, "instructions") {
        req.messages
            .push(message(Role::System, vec![Part::Text(s.clone())]));
    }
    match present(body, "input") {
        Some(Value::String(s)) => req
            .messages
            .push(message(Role::User, vec![Part::Text(s.clone())])),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                push_item(&mut req.messages, item, &format!("input[{i}]"))?;
            }
        }
        _ => return Err(missing("input")),
    }
    if let Some(Value::Array(tools)) = present(body, "tools") {
        for (i, t) in tools.iter().enumerate() {
            req.tools.push(tool(t, &format!("tools[{i}]"))?);
        }
    }
    req.tool_choice = present(body, "tool_choice").map(tool_choice).transpose()?;
    req.parallel_tool_calls = present(body, "parallel_tool_calls").and_then(Value::as_bool);
    req.max_tokens = match present(body, "max_output_tokens") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    invalid_value(
                        "max_output_tokens",
                        "Invalid 'max_output_tokens': expected an integer below 2^32.",
                    )
                })?,
        ),
    };
    req.temperature = present(body, "temperature").and_then(Value::as_f64);
    req.top_p = present(body, "top_p").and_then(Value::as_f64);
    req.reasoning_effort = present(body, "reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .map(String::from);
    req.response_format = present(body, "text")
        .and_then(|t| t.get("format"))
        .filter(|f| !f.is_null())
        .map(response_format)
        .transpose()?;
    // `safety_identifier` is what OpenAI now asks for instead of `user`.
    req.user = present(body, "safety_identifier")
        .or_else(|| present(body, "user"))
        .and_then(Value::as_str)
        .map(String::from);
    req.stream = present(body, "stream").and_then(Value::as_bool) == Some(true);
    // A Responses stream always ends with the usage (`response.completed`).
    req.include_usage = req.stream;
    Ok(req)
}

/// Fields that would change the answer but have no hub counterpart.
fn refuse_untranslatable(body: &Map<String, Value>) -> Result<(), ApiError> {
    if present(body, "top_logprobs").and_then(Value::as_u64) > Some(0) {
        return Err(unsupported(
            "top_logprobs",
            "Unsupported parameter: 'top_logprobs' cannot be honoured through this gateway's translation: log probabilities are not carried across providers. Leave it out or set it to 0.",
        ));
    }
    if present(body, "context_management")
        .is_some_and(|v| v.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Err(unsupported(
            "context_management",
            "Unsupported parameter: 'context_management' needs OpenAI's server-side compaction, which this gateway cannot do for other providers.",
        ));
    }
    if present(body, "moderation").is_some() {
        return Err(unsupported(
            "moderation",
            "Unsupported parameter: 'moderation' needs OpenAI's moderated completions, which this gateway cannot do for other providers.",
        ));
    }
    if let Some(mode) = present(body, "reasoning")
        .and_then(|r| r.get("mode"))
        .and_then(Value::as_str)
        .filter(|m| *m != "standard")
    {
        return Err(unsupported(
            "reasoning.mode",
            format!("Unsupported parameter: 'reasoning.mode' '{mode}' is an OpenAI processing mode with no counterpart at other providers."),
        ));
    }
    if present(body, "prompt_cache_options")
        .and_then(|o| o.get("prewarm"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Err(unsupported(
            "prompt_cache_options.prewarm",
            "Unsupported parameter: 'prompt_cache_options.prewarm' asks OpenAI to fill its prompt cache without answering, which other providers cannot do.",
        ));
    }
    Ok(())
}

fn message(role: Role, content: Vec<Part>) -> Message {
    Message {
        role,
        content,
        name: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
        reasoning: None,
        is_error: false,
    }
}

fn str_field<'a>(item: &'a Value, key: &str, path: &str) -> Result<&'a str, ApiError> {
    item.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(&format!("{path}.{key}")))
}

/// Appends the hub message(s) of one input item.
fn push_item(messages: &mut Vec<Message>, item: &Value, path: &str) -> Result<(), ApiError> {
    match item.get("type").and_then(Value::as_str) {
        None | Some("message") => {
            let role = match str_field(item, "role", path)? {
                "system" | "developer" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(invalid_value(
                        &format!("{path}.role"),
                        format!("Invalid value: '{other}'."),
                    ))
                }
            };
            let content = content(item.get("content"), &format!("{path}.content"))?;
            messages.push(message(role, content));
        }
        Some("function_call") => {
            let call = ToolCall {
                id: str_field(item, "call_id", path)?.to_string(),
                name: str_field(item, "name", path)?.to_string(),
                arguments: str_field(item, "arguments", path)?.to_string(),
            };
            // Calls join the assistant turn right before them: its text, or
            // the calls before (reasoning items in between are dropped).
            match messages.last_mut() {
                Some(last) if last.role == Role::Assistant => last.tool_calls.push(call),
                _ => {
                    let mut m = message(Role::Assistant, Vec::new());
                    m.tool_calls.push(call);
                    messages.push(m);
                }
            }
        }
        Some("function_call_output") => {
            let mut m = message(
                Role::Tool,
                content(item.get("output"), &format!("{path}.output"))?,
            );
            m.tool_call_id = Some(str_field(item, "call_id", path)?.to_string());
            messages.push(m);
        }
        // The provider's reasoning is opaque to every other provider.
        Some("reasoning") => {}
        Some(other) => {
            return Err(invalid_value(
                &format!("{path}.type"),
                format!("Invalid value: '{other}'."),
            ))
        }
    }
    Ok(())
}

fn content(v: Option<&Value>, path: &str) -> Result<Vec<Part>, ApiError> {
    let parts = match v {
        Some(Value::String(s)) => return Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(parts)) => parts,
        _ => return Err(missing(path)),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let ppath = format!("{path}[{j}]");
        out.push(
            match p.get("type").and_then(Value::as_str).unwrap_or_default() {
                "input_text" | "output_text" => {
                    Part::Text(str_field(p, "text", &ppath)?.to_string())
                }
                "refusal" => Part::Text(str_field(p, "refusal", &ppath)?.to_string()),
                "input_image" => Part::Image {
                    source: image_source(str_field(p, "image_url", &ppath)?, &ppath)?,
                    detail: p.get("detail").and_then(Value::as_str).map(String::from),
                },
                "input_file" => file_part(p, &ppath)?,
                other => {
                    return Err(invalid_value(
                        &format!("{ppath}.type"),
                        format!("Invalid value: '{other}'."),
                    ))
                }
            },
        );
    }
    Ok(out)
}

pub(crate) fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// `data:<media type>;base64,<data>` → (media type, data), both non-empty.
pub(crate) fn data_uri(uri: &str) -> Option<(&str, &str)> {
    let (meta, data) = uri.strip_prefix("data:")?.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    (!media_type.is_empty() && !data.is_empty()).then_some((media_type, data))
}

fn image_source(url: &str, path: &str) -> Result<ImageSource, ApiError> {
    if let Some((media_type, data)) = data_uri(url) {
        return Ok(ImageSource::Base64 {
            media_type: media_type.into(),
            data: data.into(),
        });
    }
    if is_http_url(url) {
        return Ok(ImageSource::Url(url.into()));
    }
    Err(invalid_value(
        &format!("{path}.image_url"),
        format!("Invalid '{path}.image_url': expected an http(s) URL or a base64 data URI."),
    ))
}

fn file_part(p: &Value, path: &str) -> Result<Part, ApiError> {
    let name = p.get("filename").and_then(Value::as_str).map(String::from);
    let data = p.get("file_data").and_then(Value::as_str);
    let url = p.get("file_url").and_then(Value::as_str);
    let source = match (data.map(|d| (d, data_uri(d))), url) {
        (Some((_, Some((media_type, data)))), _) => DocumentSource::Base64 {
            media_type: media_type.into(),
            data: data.into(),
        },
        (None, Some(url)) if is_http_url(url) => DocumentSource::Url(url.into()),
        _ => {
            return Err(invalid_value(
                &format!("{path}.file_data"),
                format!("Invalid '{path}': expected 'file_data' (a base64 data URI) or 'file_url' (an http(s) URL)."),
            ))
        }
    };
    Ok(Part::Document { source, name })
}

fn tool(t: &Value, path: &str) -> Result<ToolDef, ApiError> {
    Ok(ToolDef {
        name: str_field(t, "name", path)?.to_string(),
        description: t
            .get("description")
            .and_then(Value::as_str)
            .map(String::from),
        parameters: t.get("parameters").filter(|p| !p.is_null()).cloned(),
        strict: t.get("strict").and_then(Value::as_bool),
    })
}

fn tool_choice(v: &Value) -> Result<ToolChoice, ApiError> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid_value(
                "tool_choice",
                format!("Invalid value: '{other}'."),
            )),
        },
        _ => match v.get("type").and_then(Value::as_str) {
            Some("function") => Ok(ToolChoice::Function(
                str_field(v, "name", "tool_choice")?.to_string(),
            )),
            other => Err(unsupported(
                "tool_choice",
                format!(
                    "Unsupported parameter: a 'tool_choice' of type '{}' cannot be translated; use 'auto', 'none', 'required' or {{\"type\": \"function\", \"name\": …}}.",
                    other.unwrap_or_default()
                ),
            )),
        },
    }
}

fn response_format(f: &Value) -> Result<ResponseFormat, ApiError> {
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => Ok(ResponseFormat::JsonSchema {
            name: str_field(f, "name", "text.format")?.to_string(),
            schema: f
                .get("schema")
                .filter(|s| s.is_object())
                .cloned()
                .ok_or_else(|| missing("text.format.schema"))?,
            strict: f.get("strict").and_then(Value::as_bool),
        }),
        other => Err(invalid_value(
            "text.format.type",
            format!("Invalid value: '{}'.", other.unwrap_or_default()),
        )),
    }
}
