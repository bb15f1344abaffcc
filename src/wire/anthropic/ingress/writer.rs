//! Hub stream events → Anthropic Messages stream events:
//! `message_start`, `ping`, content blocks (`content_block_start`, deltas,
//! `content_block_stop`) with consecutive indexes, `message_delta`,
//! `message_stop`. Frames are written byte by byte, without JSON trees;
//! the writer holds a few ids and counters, never the response.

use super::errors::stream_error;
use super::push_json_str;
use super::render::{message_id, stop_reason, AnthropicUsage};
use crate::error::ApiError;
use crate::wire::hub::{FinishReason, ResponseContext, StreamEvent, StreamWriter, Usage};

/// The content block being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    /// A `tool_use` block for the hub tool call with this ordinal.
    Tool(u32),
}

/// Writes one Anthropic message stream (choice 0 of the hub stream).
#[derive(Debug)]
pub struct MessagesWriter {
    id: String,
    model: String,
    request_id: String,
    input_estimate: u64,
    /// `message_start` and `ping` are out.
    started: bool,
    open: Option<Block>,
    /// Index of the next content block.
    next_index: u32,
    /// Hub ordinal of the last tool call given a block.
    last_tool: Option<u32>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// `message_stop` or an error is out: nothing more is written.
    ended: bool,
}

impl MessagesWriter {
    pub fn new(ctx: &ResponseContext) -> Self {
        Self {
            id: message_id("", &ctx.request_id),
            model: ctx.model.clone(),
            request_id: ctx.request_id.clone(),
            input_estimate: ctx.input_tokens_estimate,
            started: false,
            open: None,
            next_index: 0,
            last_tool: None,
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn frame_head(out: &mut Vec<u8>, event: &str) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.extend_from_slice(b"\ndata: ");
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        Self::frame_head(out, "message_start");
        out.extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":");
        push_json_str(out, &self.id);
        out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        push_json_str(out, &self.model);
        out.extend_from_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":",
        );
        out.extend_from_slice(self.input_estimate.to_string().as_bytes());
        out.extend_from_slice(b",\"output_tokens\":1}}}\n\n");
        out.extend_from_slice(b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    }

    /// The open block's index (valid while a block is open).
    fn open_index(&self) -> u32 {
        self.next_index.saturating_sub(1)
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            Self::frame_head(out, "content_block_stop");
            out.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
            out.extend_from_slice(self.open_index().to_string().as_bytes());
            out.extend_from_slice(b"}\n\n");
        }
    }

    /// Closes the open block and starts `block`; `body` writes the
    /// `content_block` object.
    fn open(&mut self, out: &mut Vec<u8>, block: Block, body: impl FnOnce(&mut Vec<u8>)) {
        self.start(out);
        self.close(out);
        self.open = Some(block);
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        Self::frame_head(out, "content_block_start");
        out.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
        out.extend_from_slice(index.to_string().as_bytes());
        out.extend_from_slice(b",\"content_block\":");
        body(out);
        out.extend_from_slice(b"}\n\n");
    }

    /// A delta for the open block: `{"type": kind, key: text}`.
    fn delta(&self, out: &mut Vec<u8>, kind: &str, key: &str, text: &str) {
        Self::frame_head(out, "content_block_delta");
        out.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
        out.extend_from_slice(self.open_index().to_string().as_bytes());
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        push_json_str(out, text);
        out.extend_from_slice(b"}}\n\n");
    }

    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.open != Some(Block::Text) {
            self.open(out, Block::Text, |o| {
                o.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}")
            });
        }
        self.delta(out, "text_delta", "text", text);
    }

    fn thinking(&mut self, out: &mut Vec<u8>, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.open != Some(Block::Thinking) {
            self.open(out, Block::Thinking, |o| {
                o.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}")
            });
        }
        self.delta(out, "thinking_delta", "thinking", text);
    }

    fn tool_start(&mut self, out: &mut Vec<u8>, index: u32, id: &str, name: &str) {
        self.last_tool = Some(index);
        self.open(out, Block::Tool(index), |o| {
            o.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
            push_json_str(o, id);
            o.extend_from_slice(b",\"name\":");
            push_json_str(o, name);
            o.extend_from_slice(b",\"input\":{}}");
        });
    }

    fn tool_args(&mut self, out: &mut Vec<u8>, index: u32, fragment: &str) {
        if fragment.is_empty() {
            return;
        }
        if self.open == Some(Block::Tool(index)) {
            self.delta(out, "input_json_delta", "partial_json", fragment);
            return;
        }
        // Anthropic blocks are written one after the other and a closed
        // block cannot be reopened: arguments for any other call cannot be
        // placed, and dropping them would hand the client a wrong call.
        let e = ApiError::new(
            502,
            "api_error",
            format!("The provider streamed arguments for tool call {index} after another block had started; the Anthropic stream format cannot carry them."),
        )
        .with_code("upstream_invalid_response");
        self.fail(out, &e);
    }

    fn fail(&mut self, out: &mut Vec<u8>, e: &ApiError) {
        // A response the gateway stopped (guardrails) says `refusal`
        // before the error.
        if self.finish == Some(FinishReason::ContentFilter) && !self.ended {
            self.message_delta(out);
        }
        self.ended = true;
        out.extend_from_slice(&stream_error(e));
    }

    /// `message_delta` (stop reason and usage) and `message_stop`.
    fn end(&mut self, out: &mut Vec<u8>) {
        self.message_delta(out);
        out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }

    fn message_delta(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        self.ended = true;
        let reason = self.finish.unwrap_or(if self.last_tool.is_some() {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        });
        let usage = match &self.usage {
            Some(u) => AnthropicUsage::from_hub(u),
            None => AnthropicUsage::estimated(self.input_estimate),
        };
        Self::frame_head(out, "message_delta");
        out.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
        out.extend_from_slice(stop_reason(reason).as_bytes());
        out.extend_from_slice(b"\",\"stop_sequence\":null},\"usage\":");
        usage.push_json(out);
        out.extend_from_slice(b"}\n\n");
    }
}

impl StreamWriter for MessagesWriter {
    fn write(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if let StreamEvent::Usage(u) = event {
            // Kept for accounting even once the client's stream is over.
            self.usage = Some(*u);
        }
        if self.ended {
            return;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    if !id.is_empty() {
                        self.id = message_id(id, &self.request_id);
                    }
                    if !model.is_empty() {
                        self.model = model.clone();
                    }
                }
                self.start(out);
            }
            StreamEvent::Text { choice: 0, text } => self.text(out, text),
            StreamEvent::Reasoning { choice: 0, text } => self.thinking(out, text),
            StreamEvent::ToolCallStart {
                choice: 0,
                index,
                id,
                name,
            } => self.tool_start(out, *index, id, name),
            StreamEvent::ToolCallArgs {
                choice: 0,
                index,
                fragment,
            } => self.tool_args(out, *index, fragment),
            StreamEvent::Finish { choice: 0, reason } => {
                if self.finish.is_none() {
                    self.finish = Some(*reason);
                }
                self.start(out);
                self.close(out);
                if self.usage.is_some() {
                    self.end(out);
                }
            }
            StreamEvent::Usage(_) => {
                if self.finish.is_some() {
                    self.end(out);
                }
            }
            StreamEvent::Error(e) => self.fail(out, e),
            // Other choices: Anthropic messages have one.
            StreamEvent::Text { .. }
            | StreamEvent::Reasoning { .. }
            | StreamEvent::ToolCallStart { .. }
            | StreamEvent::ToolCallArgs { .. }
            | StreamEvent::Finish { .. } => {}
        }
    }

    /// The provider's stream ended well: whatever is still owed, with
    /// `end_turn` (or `tool_use` after tool calls) when it sent no finish.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.ended {
            self.end(out);
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
