//! Hub messages → Anthropic's top-level `system` and its user/assistant
//! turns.

use super::error::invalid;
use super::{LEADING_USER_PLACEHOLDER, PROVIDER};
use crate::error::ApiError;
use crate::wire::hub::{DocumentSource, ImageSource, Message, Part, Role, ToolCall};
pub(super) use crate::wire::turns::Turn;
use crate::wire::turns::{push_turn, settle};
use serde_json::{json, Map, Value};

/// Image media types Anthropic accepts for base64 sources.
const IMAGE_MEDIA_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

pub(super) fn is_block(v: &Value, ty: &str) -> bool {
    v.get("type").and_then(Value::as_str) == Some(ty)
}

pub(super) fn text_block(text: &str) -> Value {
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
            Part::Document { source, name } => {
                if !images {
                    return Err(image_not_allowed(m.role, i, j));
                }
                out.push(document_block(source, name.as_deref()));
            }
        }
    }
    Ok(out)
}

/// A `document` block: a PDF (base64 or URL) or plain text.
fn document_block(source: &DocumentSource, name: Option<&str>) -> Value {
    let source = match source {
        DocumentSource::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        DocumentSource::Url(url) => json!({"type": "url", "url": url}),
        DocumentSource::Text(text) => {
            json!({"type": "text", "media_type": "text/plain", "data": text})
        }
    };
    let mut block = json!({"type": "document", "source": source});
    if let Some(name) = name {
        block["title"] = Value::String(name.to_string());
    }
    block
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
        return Err(ApiError::missing_parameter(format!(
            "messages[{i}].tool_call_id"
        )));
    };
    let mut block = Map::new();
    block.insert("type".into(), "tool_result".into());
    block.insert("tool_use_id".into(), id.into());
    if m.is_error {
        block.insert("is_error".into(), true.into());
    }
    let has_image = m
        .content
        .iter()
        .any(|p| matches!(p, Part::Image { .. } | Part::Document { .. }));
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
pub(super) fn convert_messages(messages: &[Message]) -> Result<(Vec<String>, Vec<Turn>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m.role {
            Role::System => {
                for (j, part) in m.content.iter().enumerate() {
                    match part {
                        Part::Text(t) if t.is_empty() => {}
                        Part::Text(t) => system.push(t.clone()),
                        Part::Image { .. } | Part::Document { .. } => {
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
    settle(
        &mut turns,
        |b| is_block(b, "tool_result"),
        text_block(LEADING_USER_PLACEHOLDER),
    );
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

pub(super) fn turn_json(turn: Turn) -> Value {
    let content = match turn.blocks.as_slice() {
        [only] if is_block(only, "text") => only.get("text").cloned().unwrap_or(Value::Null),
        _ => Value::Array(turn.blocks),
    };
    json!({"role": turn.role, "content": content})
}
