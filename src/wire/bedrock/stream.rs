//! ConverseStream events (AWS event-stream messages, named by
//! `:event-type`, or by `:exception-type` for exceptions) → hub events.

use super::error::{bad_upstream, exception};
use super::response::{finish_reason, usage};
use super::PROVIDER;
use crate::error::ApiError;
use crate::wire::hub::{FinishReason, ResponseContext, StreamDecoder, StreamEvent};
use crate::wire::sse::SseEvent;
use serde_json::Value;

/// Most tool-call blocks one stream may open.
const MAX_TOOL_BLOCKS: usize = 256;

/// Translates one ConverseStream, event by event; holds only the open
/// tool blocks and a few flags.
#[derive(Debug)]
pub struct BedrockStream {
    id: String,
    model: String,
    started: bool,
    /// `(contentBlockIndex, tool-call ordinal)` of tool blocks seen.
    tools: Vec<(u64, u32)>,
    /// The stop reason given (messageStop).
    stopped: bool,
    /// An error was emitted: nothing more is translated.
    failed: bool,
}

fn malformed(what: &str) -> ApiError {
    bad_upstream(format!("{PROVIDER} sent a malformed stream event: {what}."))
}

impl BedrockStream {
    pub fn new(ctx: &ResponseContext) -> Self {
        Self {
            id: format!("chatcmpl-{}", ctx.request_id),
            model: ctx.model.clone(),
            started: false,
            tools: Vec::new(),
            stopped: false,
            failed: false,
        }
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: self.id.clone(),
                model: self.model.clone(),
            });
        }
    }

    fn translate(
        &mut self,
        name: &str,
        v: &Value,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        let block = || v.get("contentBlockIndex").and_then(Value::as_u64);
        match name {
            "messageStart" => self.start(out),
            "contentBlockStart" => {
                self.start(out);
                let Some(tool) = v.pointer("/start/toolUse") else {
                    return Ok(());
                };
                let index = block()
                    .ok_or_else(|| malformed("contentBlockStart without contentBlockIndex"))?;
                let id = tool.get("toolUseId").and_then(Value::as_str);
                let name = tool.get("name").and_then(Value::as_str);
                let (Some(id), Some(name)) = (id, name) else {
                    return Err(malformed("toolUse start without toolUseId or name"));
                };
                if self.tools.len() >= MAX_TOOL_BLOCKS {
                    return Err(malformed("too many tool calls"));
                }
                let ordinal = self.tools.len() as u32;
                self.tools.push((index, ordinal));
                out.push(StreamEvent::ToolCallStart {
                    choice: 0,
                    index: ordinal,
                    id: id.to_string(),
                    name: name.to_string(),
                });
            }
            "contentBlockDelta" => {
                self.start(out);
                let delta = v
                    .get("delta")
                    .ok_or_else(|| malformed("contentBlockDelta without delta"))?;
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        out.push(StreamEvent::Text {
                            choice: 0,
                            text: text.to_string(),
                        });
                    }
                } else if let Some(r) = delta.get("reasoningContent") {
                    if let Some(text) = r
                        .get("text")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                    {
                        out.push(StreamEvent::Reasoning {
                            choice: 0,
                            text: text.to_string(),
                        });
                    }
                    // A signature or redacted reasoning: nothing to show.
                } else if let Some(tool) = delta.get("toolUse") {
                    let index = block()
                        .ok_or_else(|| malformed("toolUse delta without contentBlockIndex"))?;
                    let ordinal = self
                        .tools
                        .iter()
                        .find(|(b, _)| *b == index)
                        .map(|(_, o)| *o)
                        .ok_or_else(|| {
                            malformed("toolUse delta for a block that did not start as a tool call")
                        })?;
                    let fragment = tool
                        .get("input")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !fragment.is_empty() {
                        out.push(StreamEvent::ToolCallArgs {
                            choice: 0,
                            index: ordinal,
                            fragment: fragment.to_string(),
                        });
                    }
                } else {
                    let kind = delta
                        .as_object()
                        .and_then(|o| o.keys().find(|k| *k != "p"))
                        .map_or("unknown", String::as_str);
                    return Err(bad_upstream(format!(
                        "{PROVIDER} streamed a '{kind}' delta, which the gateway cannot pass on in this API."
                    )));
                }
            }
            "contentBlockStop" => {}
            "messageStop" => {
                self.start(out);
                let stop = v
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                let mut reason = finish_reason(stop);
                if reason == FinishReason::Stop && !self.tools.is_empty() {
                    reason = FinishReason::ToolCalls;
                }
                self.stopped = true;
                out.push(StreamEvent::Finish { choice: 0, reason });
            }
            "metadata" => {
                if let Some(u) = v.get("usage") {
                    out.push(StreamEvent::Usage(usage(u)));
                }
            }
            // Events Converse may add later carry nothing the hub needs.
            _ => {}
        }
        Ok(())
    }
}

/// Exceptions are named `…Exception` (`throttlingException`, …).
fn is_exception(name: &str) -> bool {
    name.ends_with("Exception") || name == "exception"
}

impl StreamDecoder for BedrockStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.failed {
            return;
        }
        let name = event.event.as_deref().unwrap_or_default();
        if is_exception(name) {
            self.failed = true;
            out.push(StreamEvent::Error(exception(name, &event.data)));
            return;
        }
        let result = match serde_json::from_str::<Value>(&event.data) {
            Ok(v) if v.is_object() => self.translate(name, &v, out),
            _ => Err(malformed(&format!("'{name}' payload is not a JSON object"))),
        };
        if let Err(e) = result {
            self.failed = true;
            out.push(StreamEvent::Error(e));
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.failed && !self.stopped {
            self.failed = true;
            out.push(StreamEvent::Error(bad_upstream(format!(
                "{PROVIDER}'s stream ended before its messageStop event."
            ))));
        }
    }
}
