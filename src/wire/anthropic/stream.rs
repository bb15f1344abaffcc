//! Anthropic Messages stream events → hub stream events.

use super::error::{bad_upstream, map_error_type, status_for_type};
use super::response::{finish_reason, str_field, TokenCounts};
use super::PROVIDER;
use crate::error::ApiError;
use crate::wire::hub::{FinishReason, StreamDecoder, StreamEvent};
use crate::wire::sse::SseEvent;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

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
pub(super) struct OpenTool {
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
    pub(super) open_tools: Vec<OpenTool>,
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

/// `content_block_delta` carrying a `text_delta`: most of a stream.
#[derive(Deserialize)]
struct TextDeltaEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[allow(dead_code)] // required, as on the general path
    index: u64,
    #[serde(borrow)]
    delta: TextDelta<'a>,
}

#[derive(Deserialize)]
struct TextDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

impl AnthropicStreamDecoder {
    /// The text-delta fast path: parses the event into a borrowed struct
    /// instead of a JSON tree. `false` leaves the event to the general path
    /// (other deltas, and anything malformed, whose errors it reports).
    fn text_delta(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> bool {
        let Ok(e) = serde_json::from_str::<TextDeltaEvent>(data) else {
            return false;
        };
        if e.kind != "content_block_delta" || e.delta.kind != "text_delta" {
            return false;
        }
        let Some(text) = e.delta.text else {
            return false;
        };
        if !text.is_empty() {
            out.push(StreamEvent::Text {
                choice: 0,
                text: text.into_owned(),
            });
        }
        true
    }
}

impl StreamDecoder for AnthropicStreamDecoder {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        let name = event.event.as_deref();
        if name == Some("content_block_delta") && self.text_delta(&event.data, out) {
            return;
        }
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
