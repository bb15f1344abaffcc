//! Hub messages → Chat Completions `messages`, serialized from structs that
//! borrow the hub's strings.

use super::error::unsupported_content;
use super::{ReasoningHistory, TOOL_ERROR_PREFIX};
use crate::error::ApiError;
use crate::wire::hub::{DocumentSource, ImageSource, Message, Part, Role, ToolCall};
use serde::{Serialize, Serializer};
use std::borrow::Cow;

#[derive(Serialize)]
pub(super) struct WireMessage<'a> {
    role: &'static str,
    content: WireContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<WirePart<'a>>),
    Null,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl<'a> },
    File { file: FileData<'a> },
}

#[derive(Serialize)]
struct ImageUrl<'a> {
    url: Url<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(Serialize)]
struct FileData<'a> {
    file_data: DataUri<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<&'a str>,
}

/// An image's URL: as given, or its bytes as a data URI.
enum Url<'a> {
    Link(&'a str),
    Inline(DataUri<'a>),
}

impl Serialize for Url<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Link(url) => s.serialize_str(url),
            Self::Inline(uri) => uri.serialize(s),
        }
    }
}

/// `data:<media type>;base64,<data>`, written without building the string.
struct DataUri<'a> {
    media_type: &'a str,
    data: &'a str,
}

impl Serialize for DataUri<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "data:{};base64,{}",
            self.media_type, self.data
        ))
    }
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

pub(super) fn message(
    m: &Message,
    i: usize,
    history: ReasoningHistory,
) -> Result<WireMessage<'_>, ApiError> {
    let mut out = WireMessage {
        role: role_name(m.role),
        content: WireContent::Null,
        name: m.name.as_deref(),
        tool_calls: Vec::new(),
        tool_call_id: None,
        reasoning_content: None,
    };
    match m.role {
        Role::System => out.content = WireContent::Text(text_only(m, i)?),
        Role::User => out.content = user_content(m, i)?,
        Role::Assistant => {
            let text = text_only(m, i)?;
            out.tool_calls = m.tool_calls.iter().map(tool_call).collect();
            out.content = if text.is_empty() && !out.tool_calls.is_empty() {
                WireContent::Null
            } else {
                WireContent::Text(text)
            };
            if history == ReasoningHistory::ReasoningContent {
                out.reasoning_content = m.reasoning.as_deref();
            }
        }
        Role::Tool => {
            let Some(id) = m.tool_call_id.as_deref() else {
                let param = format!("messages[{i}].tool_call_id");
                return Err(ApiError::invalid_request(format!(
                    "Missing required parameter: '{param}'. A tool result must name the tool call it answers."
                ))
                .with_param(param)
                .with_code("missing_required_parameter"));
            };
            let text = text_only(m, i)?;
            out.content = WireContent::Text(if m.is_error {
                Cow::Owned(format!("{TOOL_ERROR_PREFIX}{text}"))
            } else {
                text
            });
            out.tool_call_id = Some(id);
            out.name = None;
        }
    }
    Ok(out)
}

/// The text of a part, if it is text (plain, or a text document).
fn part_text(p: &Part) -> Option<&str> {
    match p {
        Part::Text(t) => Some(t),
        Part::Document {
            source: DocumentSource::Text(t),
            ..
        } => Some(t),
        Part::Image { .. } | Part::Document { .. } => None,
    }
}

/// A message's text as one string (see the module docs); any other part is
/// a 400, since the role takes text only.
fn text_only(m: &Message, i: usize) -> Result<Cow<'_, str>, ApiError> {
    let mut texts = Vec::with_capacity(m.content.len());
    for (j, p) in m.content.iter().enumerate() {
        match part_text(p) {
            Some(t) => texts.push(t),
            None => {
                return Err(unsupported_content(
                    format!("messages[{i}].content[{j}]"),
                    format!(
                        "Images and files can only be sent in user messages to this model's provider; messages[{i}] has role '{}', which takes text only.",
                        role_name(m.role)
                    ),
                ))
            }
        }
    }
    Ok(match texts.as_slice() {
        [] => Cow::Borrowed(""),
        [one] => Cow::Borrowed(one),
        many => Cow::Owned(many.join("\n")),
    })
}

fn user_content(m: &Message, i: usize) -> Result<WireContent<'_>, ApiError> {
    if m.content.iter().all(|p| part_text(p).is_some()) {
        return text_only(m, i).map(WireContent::Text);
    }
    let mut parts = Vec::with_capacity(m.content.len());
    for (j, p) in m.content.iter().enumerate() {
        parts.push(match p {
            Part::Text(text) => WirePart::Text { text },
            Part::Image { source, detail } => WirePart::ImageUrl {
                image_url: ImageUrl {
                    url: match source {
                        ImageSource::Url(url) => Url::Link(url),
                        ImageSource::Base64 { media_type, data } => {
                            Url::Inline(DataUri { media_type, data })
                        }
                    },
                    detail: detail.as_deref(),
                },
            },
            Part::Document { source, name } => match source {
                DocumentSource::Text(text) => WirePart::Text { text },
                DocumentSource::Base64 { media_type, data } => WirePart::File {
                    file: FileData {
                        file_data: DataUri { media_type, data },
                        filename: name.as_deref(),
                    },
                },
                DocumentSource::Url(_) => {
                    return Err(unsupported_content(
                        format!("messages[{i}].content[{j}]"),
                        "A document given by URL cannot be sent to this model's provider: OpenAI-compatible chat takes files inline only. Send the document's bytes as base64 instead.",
                    ))
                }
            },
        });
    }
    Ok(WireContent::Parts(parts))
}

fn tool_call(c: &ToolCall) -> WireToolCall<'_> {
    WireToolCall {
        id: &c.id,
        kind: "function",
        function: WireFunctionCall {
            name: &c.name,
            arguments: &c.arguments,
        },
    }
}
