//! Hub messages → Anthropic's top-level `system` and its user/assistant
//! turns.

use super::error::invalid;
use super::{LEADING_USER_PLACEHOLDER, PROVIDER};
use crate::error::ApiError;
use crate::wire::hub::{DocumentSource, ImageSource, Message, Part, Role, ToolCall};
use crate::wire::turns::{push_turn, settle, Turn};
use serde::Serialize;
use serde_json::{Map, Value};

/// Image media types Anthropic accepts for base64 sources.
const IMAGE_MEDIA_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// One content block of a turn, borrowing the hub request's text; serialized
/// straight into the body (no JSON tree per block).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: Source<'a>,
    },
    Document {
        source: Source<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a str>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "crate::wire::is_false")]
        is_error: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ResultContent<'a>>,
    },
}

/// Where an image's or a document's bytes are.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Source<'a> {
    Url {
        url: &'a str,
    },
    Base64 {
        media_type: &'a str,
        data: &'a str,
    },
    Text {
        media_type: &'static str,
        data: &'a str,
    },
}

/// A tool result's content: its text, or blocks when it holds images.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum ResultContent<'a> {
    Text(String),
    Blocks(Vec<Block<'a>>),
}

/// A turn's content: one text block goes as a plain string.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum Content<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

#[derive(Debug, Serialize)]
pub(super) struct TurnOut<'a> {
    role: &'static str,
    content: Content<'a>,
}

fn image_block<'a>(source: &'a ImageSource, param: &str) -> Result<Block<'a>, ApiError> {
    let source = match source {
        ImageSource::Url(url) => Source::Url { url },
        ImageSource::Base64 { media_type, data } => {
            if !IMAGE_MEDIA_TYPES.contains(&media_type.as_str()) {
                return Err(invalid(
                    format!("{param}.image_url.url"),
                    format!(
                        "Image media type '{media_type}' is not supported by {PROVIDER}; use image/jpeg, image/png, image/gif or image/webp."
                    ),
                ));
            }
            Source::Base64 { media_type, data }
        }
    };
    Ok(Block::Image { source })
}

/// Text and image parts as Anthropic blocks (empty texts dropped).
fn content_blocks(m: &Message, i: usize, images: bool) -> Result<Vec<Block<'_>>, ApiError> {
    let mut out = Vec::with_capacity(m.content.len());
    for (j, part) in m.content.iter().enumerate() {
        match part {
            Part::Text(t) if t.is_empty() => {}
            Part::Text(text) => out.push(Block::Text { text }),
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
fn document_block<'a>(source: &'a DocumentSource, title: Option<&'a str>) -> Block<'a> {
    let source = match source {
        DocumentSource::Base64 { media_type, data } => Source::Base64 { media_type, data },
        DocumentSource::Url(url) => Source::Url { url },
        DocumentSource::Text(data) => Source::Text {
            media_type: "text/plain",
            data,
        },
    };
    Block::Document { source, title }
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

fn tool_use_block(call: &ToolCall, i: usize, j: usize) -> Result<Block<'_>, ApiError> {
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
    Ok(Block::ToolUse {
        id: &call.id,
        name: &call.name,
        input,
    })
}

fn tool_result_block(m: &Message, i: usize) -> Result<Block<'_>, ApiError> {
    let Some(tool_use_id) = m.tool_call_id.as_deref().filter(|id| !id.is_empty()) else {
        return Err(ApiError::missing_parameter(format!(
            "messages[{i}].tool_call_id"
        )));
    };
    let has_image = m
        .content
        .iter()
        .any(|p| matches!(p, Part::Image { .. } | Part::Document { .. }));
    let content = if has_image {
        Some(ResultContent::Blocks(content_blocks(m, i, true)?))
    } else {
        Some(m.text())
            .filter(|t| !t.is_empty())
            .map(ResultContent::Text)
    };
    Ok(Block::ToolResult {
        tool_use_id,
        is_error: m.is_error,
        content,
    })
}

/// `(system blocks, turns)` for the request's messages.
#[allow(clippy::type_complexity)]
pub(super) fn convert_messages(
    messages: &[Message],
) -> Result<(Vec<&str>, Vec<Turn<Block<'_>>>), ApiError> {
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m.role {
            Role::System => {
                for (j, part) in m.content.iter().enumerate() {
                    match part {
                        Part::Text(t) if t.is_empty() => {}
                        Part::Text(t) => system.push(t.as_str()),
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
        |b| matches!(b, Block::ToolResult { .. }),
        Block::Text {
            text: LEADING_USER_PLACEHOLDER,
        },
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

pub(super) fn turn_out(turn: Turn<Block<'_>>) -> TurnOut<'_> {
    let content = match turn.blocks.as_slice() {
        [Block::Text { text }] => Content::Text(text),
        _ => Content::Blocks(turn.blocks),
    };
    TurnOut {
        role: turn.role,
        content,
    }
}
