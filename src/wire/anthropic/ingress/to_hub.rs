//! Anthropic Messages request → hub `ChatRequest`. Runs after `parse`, so
//! shapes are known; it still never panics on a body that skipped it.
//! What the hub cannot carry to another provider is a 400 naming the field.

use super::errors::{invalid, needs_anthropic};
use super::loc::Loc;
use super::parse::{integer, present};
use crate::error::ApiError;
use crate::wire::hub::{
    ChatRequest, DocumentSource, ImageSource, Message, Part, ResponseFormat, Role, ToolCall,
    ToolChoice, ToolDef,
};
use serde_json::{Map, Value};

/// `thinking.budget_tokens` below this is `reasoning_effort: low`.
const MEDIUM_BUDGET: i64 = 4096;
/// … below this `medium`, from here on `high`.
const HIGH_BUDGET: i64 = 16384;

/// The first part of the request that only an Anthropic target can serve
/// (a server tool such as `web_search_20250305`, MCP servers), as
/// `(param path, what it is)`. Server-side content blocks in the history
/// are found by [`to_hub`] as it goes.
pub fn anthropic_only_feature(body: &Map<String, Value>) -> Option<(String, String)> {
    if let Some(Value::Array(servers)) = body.get("mcp_servers") {
        if !servers.is_empty() {
            return Some(("mcp_servers".into(), "An MCP server connector".into()));
        }
    }
    if let Some(Value::Array(tools)) = body.get("tools") {
        for (i, t) in tools.iter().enumerate() {
            if let Some(ty) = t.get("type").and_then(Value::as_str) {
                if ty != "custom" {
                    let name = t.get("name").and_then(Value::as_str).unwrap_or(ty);
                    return Some((
                        format!("tools.{i}"),
                        format!("The server tool '{name}' (type '{ty}')"),
                    ));
                }
            }
        }
    }
    None
}

/// Converts a validated request; `upstream_model` replaces the client's.
pub fn to_hub(body: &Map<String, Value>, upstream_model: &str) -> Result<ChatRequest, ApiError> {
    if let Some((path, what)) = anthropic_only_feature(body) {
        return Err(needs_anthropic(path, &what));
    }
    let mut req = ChatRequest {
        model: upstream_model.to_string(),
        ..ChatRequest::default()
    };
    if let Some(system) = present(body, "system") {
        if let Some(m) = system_message(system) {
            req.messages.push(m);
        }
    }
    if let Some(Value::Array(turns)) = body.get("messages") {
        let loc = Loc::field("messages");
        for (i, turn) in turns.iter().enumerate() {
            convert_turn(turn, &loc.index(i), &mut req.messages)?;
        }
    }
    if let Some(Value::Array(tools)) = body.get("tools") {
        req.tools = tools.iter().filter_map(tool_def).collect();
    }
    if let Some(Value::Object(choice)) = present(body, "tool_choice") {
        req.tool_choice = match choice.get("type").and_then(Value::as_str) {
            Some("auto") => Some(ToolChoice::Auto),
            Some("any") => Some(ToolChoice::Required),
            Some("none") => Some(ToolChoice::None),
            Some("tool") => choice
                .get("name")
                .and_then(Value::as_str)
                .map(|n| ToolChoice::Function(n.to_string())),
            _ => None,
        };
        // `false` is Anthropic's default: nothing to say.
        if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            req.parallel_tool_calls = Some(false);
        }
    }
    if let Some(v) = present(body, "max_tokens") {
        let n = integer(v)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                invalid(
                    &Loc::field("max_tokens"),
                    format!("Input should be less than or equal to {}", u32::MAX),
                )
            })?;
        req.max_tokens = Some(n);
    }
    req.temperature = present(body, "temperature").and_then(Value::as_f64);
    req.top_p = present(body, "top_p").and_then(Value::as_f64);
    if let Some(k) = present(body, "top_k") {
        // Validated as an integer, which may be written `40.0`: it goes on
        // as one (egress edges that check it want an integer).
        let k = integer(k).map_or_else(|| k.clone(), Value::from);
        req.extra.insert("top_k".into(), k);
    }
    if let Some(Value::Array(stops)) = body.get("stop_sequences") {
        req.stop = stops
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect();
    }
    req.stream = body.get("stream") == Some(&Value::Bool(true));
    // Anthropic streams always end with usage.
    req.include_usage = req.stream;
    req.user = present(body, "metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .map(String::from);
    req.reasoning_effort = reasoning_effort(body)?;
    req.response_format = response_format(body)?;
    Ok(req)
}

/// `system` as one System message, a text part per block.
fn system_message(system: &Value) -> Option<Message> {
    let content: Vec<Part> = match system {
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![Part::Text(s.clone())],
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .filter(|t| !t.is_empty())
            .map(|t| Part::Text(t.to_string()))
            .collect(),
        _ => Vec::new(),
    };
    (!content.is_empty()).then(|| message(Role::System, content))
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

fn str_at<'v>(b: &'v Value, key: &str) -> &'v str {
    b.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn block_type(b: &Value) -> &str {
    str_at(b, "type")
}

/// One Anthropic turn → hub messages (a user turn holding tool results
/// becomes several).
fn convert_turn(turn: &Value, loc: &Loc, out: &mut Vec<Message>) -> Result<(), ApiError> {
    let assistant = match str_at(turn, "role") {
        "user" => false,
        "assistant" => true,
        _ => {
            return Err(invalid(
                &loc.key("role"),
                "Input should be 'user' or 'assistant'",
            ))
        }
    };
    let cloc = loc.key("content");
    let blocks = match turn.get("content") {
        Some(Value::String(s)) => {
            let role = if assistant {
                Role::Assistant
            } else {
                Role::User
            };
            out.push(message(role, vec![Part::Text(s.clone())]));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => return Ok(()),
    };
    if assistant {
        assistant_turn(blocks, &cloc, out)
    } else {
        user_turn(blocks, &cloc, out)
    }
}

fn user_turn(blocks: &[Value], loc: &Loc, out: &mut Vec<Message>) -> Result<(), ApiError> {
    // Text and media since the last tool result: one user message, so the
    // order of results and text is kept.
    let mut pending: Vec<Part> = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bloc = loc.index(j);
        match block_type(b) {
            "tool_result" => {
                if !pending.is_empty() {
                    out.push(message(Role::User, std::mem::take(&mut pending)));
                }
                out.push(tool_result(b, &bloc)?);
            }
            "tool_use" | "thinking" | "redacted_thinking" => {
                return Err(invalid(
                    &bloc,
                    format!(
                        "'{}' blocks are only allowed in assistant messages",
                        block_type(b)
                    ),
                ))
            }
            _ => pending.push(content_part(b, &bloc)?),
        }
    }
    if !pending.is_empty() {
        out.push(message(Role::User, pending));
    }
    Ok(())
}

fn assistant_turn(blocks: &[Value], loc: &Loc, out: &mut Vec<Message>) -> Result<(), ApiError> {
    let mut m = message(Role::Assistant, Vec::new());
    for (j, b) in blocks.iter().enumerate() {
        let bloc = loc.index(j);
        match block_type(b) {
            "tool_use" => m.tool_calls.push(ToolCall {
                id: str_at(b, "id").to_string(),
                name: str_at(b, "name").to_string(),
                // Key order kept (serde_json preserve_order).
                arguments: match b.get("input") {
                    Some(input @ Value::Object(_)) => input.to_string(),
                    _ => "{}".to_string(),
                },
            }),
            // Signatures only Anthropic can verify: the text goes on, the
            // signature cannot.
            "thinking" => m
                .reasoning
                .get_or_insert_with(String::new)
                .push_str(str_at(b, "thinking")),
            // Encrypted: nothing another provider could read.
            "redacted_thinking" => {}
            "tool_result" => {
                return Err(invalid(
                    &bloc,
                    "'tool_result' blocks are only allowed in user messages",
                ))
            }
            _ => m.content.push(content_part(b, &bloc)?),
        }
    }
    if !m.content.is_empty() || !m.tool_calls.is_empty() || m.reasoning.is_some() {
        out.push(m);
    }
    Ok(())
}

/// A text, image or document block as a hub part.
fn content_part(b: &Value, loc: &Loc) -> Result<Part, ApiError> {
    match block_type(b) {
        "text" => Ok(Part::Text(str_at(b, "text").to_string())),
        "image" => image_part(b, loc),
        "document" => document_part(b, loc),
        "server_tool_use"
        | "web_search_tool_result"
        | "web_fetch_tool_result"
        | "code_execution_tool_result"
        | "bash_code_execution_tool_result"
        | "text_editor_code_execution_tool_result"
        | "tool_search_tool_result"
        | "mcp_tool_use"
        | "mcp_tool_result"
        | "container_upload" => Err(needs_anthropic(
            loc.path(),
            &format!("A '{}' block", block_type(b)),
        )),
        other => Err(invalid(
            &loc.key("type"),
            format!("Content block type '{other}' cannot be translated for this model's provider; use 'text', 'image', 'document', 'tool_use' or 'tool_result'."),
        )
        .with_code("unsupported_content_type")),
    }
}

fn file_source(loc: &Loc) -> ApiError {
    invalid(
        &loc.key("source"),
        "A 'file' source refers to a file uploaded to Anthropic's Files API, which other providers cannot read; send the content inline (base64) or by URL.",
    )
    .with_code("unsupported_parameter")
}

fn image_part(b: &Value, loc: &Loc) -> Result<Part, ApiError> {
    let source = b.get("source").unwrap_or(&Value::Null);
    let source = match str_at(source, "type") {
        "base64" => ImageSource::Base64 {
            media_type: str_at(source, "media_type").to_string(),
            data: str_at(source, "data").to_string(),
        },
        "url" => ImageSource::Url(str_at(source, "url").to_string()),
        "file" => return Err(file_source(loc)),
        other => {
            return Err(invalid(
                &loc.key("source"),
                format!("Image source type '{other}' cannot be translated; use 'base64' or 'url'."),
            ))
        }
    };
    Ok(Part::Image {
        source,
        detail: None,
    })
}

fn document_part(b: &Value, loc: &Loc) -> Result<Part, ApiError> {
    let source = b.get("source").unwrap_or(&Value::Null);
    let source = match str_at(source, "type") {
        "base64" => DocumentSource::Base64 {
            media_type: str_at(source, "media_type").to_string(),
            data: str_at(source, "data").to_string(),
        },
        "url" => DocumentSource::Url(str_at(source, "url").to_string()),
        "text" => DocumentSource::Text(str_at(source, "data").to_string()),
        "content" => DocumentSource::Text(document_content(source, loc)?),
        "file" => return Err(file_source(loc)),
        other => {
            return Err(invalid(
                &loc.key("source"),
                format!("Document source type '{other}' cannot be translated; use 'base64', 'url', 'text' or 'content'."),
            ))
        }
    };
    Ok(Part::Document {
        source,
        name: present_str(b, "title"),
    })
}

/// A custom-content document's text blocks, one per line.
fn document_content(source: &Value, loc: &Loc) -> Result<String, ApiError> {
    match source.get("content") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (k, b) in blocks.iter().enumerate() {
                if block_type(b) != "text" {
                    return Err(invalid(
                        &loc.key("source").key("content").index(k),
                        "Only text blocks of a 'content' document can be translated for this model's provider.",
                    ));
                }
                texts.push(str_at(b, "text"));
            }
            Ok(texts.join("\n"))
        }
        _ => Ok(String::new()),
    }
}

fn present_str(b: &Value, key: &str) -> Option<String> {
    b.get(key).and_then(Value::as_str).map(String::from)
}

fn tool_result(b: &Value, loc: &Loc) -> Result<Message, ApiError> {
    let mut m = message(Role::Tool, Vec::new());
    m.tool_call_id = present_str(b, "tool_use_id");
    m.is_error = b.get("is_error") == Some(&Value::Bool(true));
    match b.get("content") {
        Some(Value::String(s)) => m.content.push(Part::Text(s.clone())),
        Some(Value::Array(inner)) => {
            let cloc = loc.key("content");
            for (k, item) in inner.iter().enumerate() {
                let iloc = cloc.index(k);
                match block_type(item) {
                    "text" | "image" | "document" => m.content.push(content_part(item, &iloc)?),
                    other => {
                        return Err(invalid(
                            &iloc.key("type"),
                            format!("A tool result's '{other}' block cannot be translated for this model's provider; use text, image or document blocks."),
                        )
                        .with_code("unsupported_content_type"))
                    }
                }
            }
        }
        _ => {}
    }
    Ok(m)
}

fn tool_def(t: &Value) -> Option<ToolDef> {
    Some(ToolDef {
        name: t.get("name")?.as_str()?.to_string(),
        description: present_str(t, "description"),
        parameters: t.get("input_schema").filter(|s| !s.is_null()).cloned(),
        strict: t.get("strict").and_then(Value::as_bool),
    })
}

/// `thinking` (and `output_config.effort` with adaptive thinking) as the
/// hub's `reasoning_effort`.
fn reasoning_effort(body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let effort = match present(body, "output_config").and_then(|c| present_obj(c, "effort")) {
        None => None,
        Some(Value::String(e)) => Some(match e.as_str() {
            "low" | "medium" | "high" => e.as_str(),
            // The hub's scale ends at high.
            "max" => "high",
            other => {
                return Err(invalid(
                    &Loc::field("output_config").key("effort"),
                    format!("Input should be 'low', 'medium', 'high' or 'max' (got '{other}')"),
                ))
            }
        }),
        Some(_) => None,
    };
    let Some(thinking) = present(body, "thinking") else {
        return Ok(None);
    };
    Ok(match str_at(thinking, "type") {
        "enabled" => {
            let budget = thinking.get("budget_tokens").and_then(integer).unwrap_or(0);
            Some(if budget < MEDIUM_BUDGET {
                "low"
            } else if budget < HIGH_BUDGET {
                "medium"
            } else {
                "high"
            })
        }
        "disabled" => Some("none"),
        "adaptive" => Some(effort.unwrap_or("medium")),
        _ => None,
    }
    .map(String::from))
}

fn present_obj<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// `output_config.format` (or the beta's top-level `output_format`):
/// Anthropic structured outputs, always enforced.
fn response_format(body: &Map<String, Value>) -> Result<Option<ResponseFormat>, ApiError> {
    let config_loc = Loc::field("output_config");
    let config_format_loc = config_loc.key("format");
    let beta_loc = Loc::field("output_format");
    let config_format = present(body, "output_config").and_then(|c| present_obj(c, "format"));
    let (format, floc) = match (config_format, present(body, "output_format")) {
        (Some(f), _) => (f, &config_format_loc),
        (None, Some(f)) => (f, &beta_loc),
        (None, None) => return Ok(None),
    };
    match str_at(format, "type") {
        "json_schema" => match present_obj(format, "schema") {
            Some(schema) => Ok(Some(ResponseFormat::JsonSchema {
                name: "response".into(),
                schema: schema.clone(),
                strict: Some(true),
            })),
            None => Err(invalid(&floc.key("schema"), "Field required")),
        },
        other => Err(invalid(
            &floc.key("type"),
            format!("Input tag '{other}' found using 'type' does not match any of the expected tags: 'json_schema'"),
        )),
    }
}
