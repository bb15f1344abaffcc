//! Hub stream events → Responses API stream events
//! (`event: <type>\ndata: <json>\n\n`, `sequence_number` counting from 0).

use super::errors::error_frame;
use super::render::{
    item_id, response_id, response_json, summary_part, text_part, ItemJson, OutputItem,
    ResponseJson, ResponseParts, Status,
};
use crate::error::ApiError;
use crate::wire::hub::{FinishReason, ResponseContext, StreamEvent, StreamWriter, Usage};
use serde::Serialize;
use serde_json::json;

/// Writes one response's stream: `response.created` and
/// `response.in_progress`, each output item opened (`output_item.added`, its
/// part), filled (deltas) and closed (`.done` events) in turn, then
/// `response.completed` (or `response.incomplete`) with the whole response.
/// Only the first choice is written.
#[derive(Debug)]
pub struct ResponsesWriter {
    id: String,
    request_id: String,
    model: String,
    created: u64,
    sequence: u64,
    started: bool,
    ended: bool,
    /// Every item so far, text and arguments accumulated for the final
    /// response (bounded by the response itself).
    items: Vec<OutputItem>,
    /// The item still open (the last one), if any.
    open: bool,
    /// Hub tool-call index → output index.
    calls: Vec<(u32, usize)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl ResponsesWriter {
    pub fn new(ctx: &ResponseContext) -> Self {
        Self {
            id: response_id(ctx),
            request_id: ctx.request_id.clone(),
            model: ctx.model.clone(),
            created: ctx.created,
            sequence: 0,
            started: false,
            ended: false,
            items: Vec::new(),
            open: false,
            calls: Vec::new(),
            finish: None,
            usage: None,
        }
    }

    /// An `error` event numbered in this stream; nothing is written after
    /// it.
    pub fn error_frame(&mut self, e: &ApiError) -> Vec<u8> {
        let frame = error_frame(e, self.sequence);
        self.sequence += 1;
        self.ended = true;
        frame
    }

    fn next_sequence(&mut self) -> u64 {
        let n = self.sequence;
        self.sequence += 1;
        n
    }

    /// One event: `type` and `sequence_number` first, then `fields`.
    fn frame<T: Serialize>(&mut self, out: &mut Vec<u8>, kind: &str, fields: &T) {
        let sequence_number = self.next_sequence();
        write_frame(out, kind, sequence_number, fields);
    }

    /// A delta event written directly: the stream's most common frame, byte
    /// for byte what `frame` would write, without building a JSON tree.
    /// `index_field` is the content or summary index member, if any.
    fn delta_frame(
        &mut self,
        out: &mut Vec<u8>,
        kind: &str,
        output_index: usize,
        index_field: Option<&str>,
        delta: &str,
    ) {
        let sequence = self.next_sequence();
        let item_id = self.items.get(output_index).map_or("", OutputItem::id);
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: {\"type\":");
        push_json_str(out, kind);
        out.extend_from_slice(b",\"sequence_number\":");
        out.extend_from_slice(sequence.to_string().as_bytes());
        out.extend_from_slice(b",\"item_id\":");
        push_json_str(out, item_id);
        out.extend_from_slice(b",\"output_index\":");
        out.extend_from_slice(output_index.to_string().as_bytes());
        if let Some(field) = index_field {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(b"\":0");
        }
        out.extend_from_slice(b",\"delta\":");
        push_json_str(out, delta);
        if kind == "response.output_text.delta" {
            out.extend_from_slice(b",\"logprobs\":[]");
        }
        out.extend_from_slice(b"}\n\n");
    }

    fn parts(&self, status: Status) -> ResponseParts<'_> {
        ResponseParts {
            id: &self.id,
            created_at: self.created,
            model: &self.model,
            status,
            output: &self.items,
            usage: self.usage.as_ref(),
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let (created, in_progress) = (self.next_sequence(), self.next_sequence());
        let parts = self.parts(Status::InProgress);
        let field = ResponseField {
            response: response_json(&parts),
        };
        write_frame(out, "response.created", created, &field);
        write_frame(out, "response.in_progress", in_progress, &field);
    }

    /// Opens a new output item (closing the one before).
    fn open(&mut self, out: &mut Vec<u8>, item: OutputItem) -> usize {
        self.close(out, Status::Completed);
        let output_index = self.items.len();
        let id = item.id().to_string();
        let first_part = match &item {
            OutputItem::Message { .. } => Some(true),
            OutputItem::Reasoning { .. } => Some(false),
            OutputItem::FunctionCall { .. } => None,
        };
        self.frame(
            out,
            "response.output_item.added",
            &ItemField {
                output_index,
                item: item.at(Status::InProgress),
            },
        );
        self.items.push(item);
        self.open = true;
        // Text goes into a content part, reasoning into a summary part.
        match first_part {
            Some(true) => self.frame(
                out,
                "response.content_part.added",
                &json!({"item_id": id, "output_index": output_index, "content_index": 0,
                       "part": text_part("")}),
            ),
            Some(false) => self.frame(
                out,
                "response.reasoning_summary_part.added",
                &json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                       "part": summary_part("")}),
            ),
            None => {}
        }
        output_index
    }

    /// Closes the open item with its `.done` events.
    fn close(&mut self, out: &mut Vec<u8>, status: Status) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let Some(item) = self.items.last().cloned() else {
            return;
        };
        let output_index = self.items.len() - 1;
        let id = item.id();
        match &item {
            OutputItem::Message { text, .. } => {
                self.frame(
                    out,
                    "response.output_text.done",
                    &json!({"item_id": id, "output_index": output_index, "content_index": 0,
                           "text": text, "logprobs": []}),
                );
                self.frame(
                    out,
                    "response.content_part.done",
                    &json!({"item_id": id, "output_index": output_index, "content_index": 0,
                           "part": text_part(text)}),
                );
            }
            OutputItem::Reasoning { text, .. } => {
                self.frame(
                    out,
                    "response.reasoning_summary_text.done",
                    &json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                           "text": text}),
                );
                self.frame(
                    out,
                    "response.reasoning_summary_part.done",
                    &json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                           "part": summary_part(text)}),
                );
            }
            OutputItem::FunctionCall {
                name, arguments, ..
            } => self.frame(
                out,
                "response.function_call_arguments.done",
                &json!({"item_id": id, "output_index": output_index,
                       "arguments": arguments, "name": name}),
            ),
        }
        self.frame(
            out,
            "response.output_item.done",
            &ItemField {
                output_index,
                item: item.at(status),
            },
        );
    }

    /// Appends text to the open message or reasoning item, opening one if
    /// the open item is of another kind.
    fn text(&mut self, out: &mut Vec<u8>, text: &str, reasoning: bool) {
        if text.is_empty() {
            return;
        }
        self.start(out);
        let open_matches = self.open
            && matches!(
                (self.items.last(), reasoning),
                (Some(OutputItem::Reasoning { .. }), true)
                    | (Some(OutputItem::Message { .. }), false)
            );
        let output_index = if open_matches {
            self.items.len() - 1
        } else {
            let index = self.items.len();
            let item = if reasoning {
                OutputItem::Reasoning {
                    id: item_id("rs", &self.request_id, index),
                    text: String::new(),
                }
            } else {
                OutputItem::Message {
                    id: item_id("msg", &self.request_id, index),
                    text: String::new(),
                }
            };
            self.open(out, item)
        };
        if let Some(
            OutputItem::Reasoning { text: acc, .. } | OutputItem::Message { text: acc, .. },
        ) = self.items.get_mut(output_index)
        {
            acc.push_str(text);
        }
        if reasoning {
            self.delta_frame(
                out,
                "response.reasoning_summary_text.delta",
                output_index,
                Some("summary_index"),
                text,
            );
        } else {
            self.delta_frame(
                out,
                "response.output_text.delta",
                output_index,
                Some("content_index"),
                text,
            );
        }
    }

    fn tool_call_start(&mut self, out: &mut Vec<u8>, index: u32, call_id: &str, name: &str) {
        self.start(out);
        let item = OutputItem::FunctionCall {
            id: item_id("fc", &self.request_id, self.items.len()),
            call_id: call_id.to_string(),
            name: name.to_string(),
            arguments: String::new(),
        };
        let output_index = self.open(out, item);
        self.calls.push((index, output_index));
    }

    /// Arguments go to the call's item. A fragment for a call already
    /// closed (a provider interleaving calls, which none in this gateway
    /// does) still goes out as a delta and into the final response; only
    /// that call's earlier `.done` events miss it.
    fn tool_call_args(&mut self, out: &mut Vec<u8>, index: u32, fragment: &str) {
        let Some(&(_, output_index)) = self.calls.iter().rev().find(|(i, _)| *i == index) else {
            return;
        };
        if let Some(OutputItem::FunctionCall { arguments, .. }) = self.items.get_mut(output_index) {
            arguments.push_str(fragment);
        }
        if !fragment.is_empty() {
            self.delta_frame(
                out,
                "response.function_call_arguments.delta",
                output_index,
                None,
                fragment,
            );
        }
    }
}

impl StreamWriter for ResponsesWriter {
    fn write(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match event {
            StreamEvent::Start { model, .. } => {
                // The response id stays the gateway's; the model is the
                // provider's when it names one.
                if !model.is_empty() && !self.started {
                    self.model = model.clone();
                }
                self.start(out);
            }
            StreamEvent::Text { choice: 0, text } => self.text(out, text, false),
            StreamEvent::Reasoning { choice: 0, text } => self.text(out, text, true),
            StreamEvent::ToolCallStart {
                choice: 0,
                index,
                id,
                name,
            } => self.tool_call_start(out, *index, id, name),
            StreamEvent::ToolCallArgs {
                choice: 0,
                index,
                fragment,
            } => self.tool_call_args(out, *index, fragment),
            StreamEvent::Finish { choice: 0, reason } => self.finish = Some(*reason),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => {
                let frame = self.error_frame(e);
                out.extend(frame);
            }
            // Other choices: a Responses answer has one.
            StreamEvent::Text { .. }
            | StreamEvent::Reasoning { .. }
            | StreamEvent::ToolCallStart { .. }
            | StreamEvent::ToolCallArgs { .. }
            | StreamEvent::Finish { .. } => {}
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.start(out);
        self.ended = true;
        let status = Status::of_finish(self.finish);
        self.close(out, status);
        let kind = match status {
            Status::Incomplete(_) => "response.incomplete",
            Status::InProgress | Status::Completed => "response.completed",
        };
        let sequence_number = self.next_sequence();
        let parts = self.parts(status);
        let field = ResponseField {
            response: response_json(&parts),
        };
        write_frame(out, kind, sequence_number, &field);
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

/// `{"output_index": …, "item": …}`.
#[derive(Serialize)]
struct ItemField<'a> {
    output_index: usize,
    item: ItemJson<'a>,
}

/// `{"response": …}`.
#[derive(Serialize)]
struct ResponseField<'a> {
    response: ResponseJson<'a>,
}

/// An event's `type` and `sequence_number`, then the members of `fields`.
#[derive(Serialize)]
struct Framed<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    #[serde(flatten)]
    fields: &'a T,
}

fn write_frame<T: Serialize>(out: &mut Vec<u8>, kind: &str, sequence_number: u64, fields: &T) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(
        &mut *out,
        &Framed {
            kind,
            sequence_number,
            fields,
        },
    );
    out.extend_from_slice(b"\n\n");
}

/// `s` as a JSON string literal.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}
