//! OpenAI `chat.completion.chunk` streams → hub stream events.

use super::error::{bad_upstream, in_body_error, parse_object, BaseResp};
use super::response::made_up_call_id;
use super::wire::{
    derived_finish, finish_reason, lenient, non_empty, Arguments, Channel, WireFunction,
    WireMessage, WireToolCall, WireUsage,
};
use super::{MAX_CHOICES, MAX_HELD_ARGUMENTS, MAX_TOOL_CALLS};
use crate::error::ApiError;
use crate::wire::hub::{ResponseContext, StreamDecoder, StreamEvent, Usage};
use crate::wire::sse::SseEvent;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChunkChoice<'a>>>,
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<WireUsage>,
    #[serde(default, deserialize_with = "lenient")]
    x_groq: Option<GroqExtras>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, deserialize_with = "lenient")]
    base_resp: Option<BaseResp>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    delta: Option<WireMessage<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    /// Moonshot reports usage inside the finishing choice.
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<WireUsage>,
}

/// Groq's own member on the last chunk.
#[derive(Deserialize)]
struct GroqExtras {
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<WireUsage>,
}

/// A tool call of one choice, as far as the stream has told it.
#[derive(Debug)]
struct ToolState {
    /// The provider's `index`, if it sent one.
    wire_index: Option<u32>,
    id: Option<String>,
    name: Option<String>,
    /// Ordinal among the choice's calls, once announced.
    ordinal: Option<u32>,
    /// Whether argument text went out.
    args_sent: bool,
    /// Argument text received before the call could be announced.
    held: String,
}

#[derive(Debug)]
pub(super) struct ChoiceState {
    index: u32,
    finished: bool,
    refused: bool,
    tools: Vec<ToolState>,
    announced: u32,
}

/// Translates one Chat Completions stream, chunk by chunk. Holds the state
/// of each choice's tool calls (ids and names, not their arguments) and
/// the latest usage, never the stream.
#[derive(Debug)]
pub struct OpenAiChatStream {
    request_id: String,
    model: String,
    started: bool,
    /// `[DONE]` seen or an error emitted: nothing more is translated.
    ended: bool,
    pub(super) choices: Vec<ChoiceState>,
    usage: Option<Usage>,
    /// Tool calls announced so far, for made-up ids.
    calls_made: u64,
}

impl OpenAiChatStream {
    pub fn new(ctx: &ResponseContext) -> Self {
        Self {
            request_id: ctx.request_id.clone(),
            model: ctx.model.clone(),
            started: false,
            ended: false,
            choices: Vec::new(),
            usage: None,
            calls_made: 0,
        }
    }

    fn fail(&mut self, err: ApiError, out: &mut Vec<StreamEvent>) {
        self.ended = true;
        if let Some(u) = self.usage.take() {
            out.push(StreamEvent::Usage(u));
        }
        out.push(StreamEvent::Error(err));
    }

    /// The state of choice `index`, created on first sight.
    fn slot(&mut self, index: u32) -> Result<usize, ApiError> {
        if let Some(pos) = self.choices.iter().position(|c| c.index == index) {
            return Ok(pos);
        }
        if self.choices.len() >= MAX_CHOICES {
            return Err(bad_upstream(format!(
                "The provider's stream reported more than {MAX_CHOICES} choices."
            )));
        }
        self.choices.push(ChoiceState {
            index,
            finished: false,
            refused: false,
            tools: Vec::new(),
            announced: 0,
        });
        Ok(self.choices.len() - 1)
    }

    fn translate(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        let chunk: Chunk =
            parse_object(data.as_bytes(), "a stream event", "a chat completion chunk")?;
        if let Some(err) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            return Err(in_body_error(err, data.as_bytes()));
        }
        if chunk.choices.as_ref().is_none_or(Vec::is_empty) {
            if let Some(err) = chunk.base_resp.as_ref().and_then(BaseResp::error) {
                return Err(err);
            }
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: non_empty(&chunk.id)
                    .map(String::from)
                    .unwrap_or_else(|| format!("chatcmpl-{}", self.request_id)),
                model: non_empty(&chunk.model).unwrap_or(&self.model).to_string(),
            });
        }
        let usage = [
            chunk.usage.as_ref(),
            chunk.x_groq.as_ref().and_then(|g| g.usage.as_ref()),
        ];
        for (pos, choice) in chunk.choices.iter().flatten().enumerate() {
            let index = match choice.index {
                Some(i) => i,
                None => u32::try_from(pos).map_err(|_| {
                    bad_upstream("The provider's stream reported too many choices.")
                })?,
            };
            let slot = self.slot(index)?;
            if let Some(delta) = &choice.delta {
                self.delta(slot, delta, out)?;
            }
            if let Some(reason) = non_empty(&choice.finish_reason) {
                self.finish_choice(slot, Some(reason), out)?;
            }
            if let Some(u) = choice.usage.as_ref().and_then(WireUsage::to_usage) {
                self.usage = Some(u);
            }
        }
        if let Some(u) = usage.into_iter().flatten().find_map(WireUsage::to_usage) {
            self.usage = Some(u);
        }
        Ok(())
    }

    fn delta(
        &mut self,
        slot: usize,
        delta: &WireMessage,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        let Some(state) = self.choices.get_mut(slot) else {
            return Ok(());
        };
        let choice = state.index;
        if let Some(text) = delta.reasoning_text() {
            out.push(StreamEvent::Reasoning {
                choice,
                text: text.to_string(),
            });
        }
        if let Some(content) = &delta.content {
            content
                .for_each_piece(|channel, piece| {
                    let text = piece.to_string();
                    out.push(match channel {
                        Channel::Text => StreamEvent::Text { choice, text },
                        Channel::Reasoning => StreamEvent::Reasoning { choice, text },
                    })
                })
                .map_err(|kind| {
                    bad_upstream(format!(
                        "The provider streamed a content part of type '{kind}', which cannot be translated."
                    ))
                })?;
        }
        if let Some(refusal) = non_empty(&delta.refusal) {
            state.refused = true;
            out.push(StreamEvent::Text {
                choice,
                text: refusal.to_string(),
            });
        }
        for (pos, call) in delta.tool_calls.iter().flatten().enumerate() {
            self.tool_delta(slot, call, pos, out)?;
        }
        if let Some(f) = &delta.function_call {
            // The legacy single call: one call, continued by every delta.
            let call = WireToolCall {
                index: Some(0),
                id: None,
                kind: None,
                function: Some(WireFunction {
                    name: f.name.clone(),
                    arguments: f
                        .arguments
                        .as_ref()
                        .map(|a| Arguments(Cow::Borrowed(a.0.as_ref()))),
                }),
            };
            self.tool_delta(slot, &call, 0, out)?;
        }
        Ok(())
    }

    /// Which of the choice's tool calls a delta continues, or None for a
    /// new one (see the module docs).
    fn target(tools: &[ToolState], call: &WireToolCall) -> Option<usize> {
        let id = non_empty(&call.id);
        if let Some(index) = call.index {
            let pos = tools.iter().rposition(|t| t.wire_index == Some(index))?;
            let known = tools.get(pos).and_then(|t| t.id.as_deref());
            return match (id, known) {
                (Some(new), Some(known)) if new != known => None,
                _ => Some(pos),
            };
        }
        if let Some(id) = id {
            return tools.iter().position(|t| t.id.as_deref() == Some(id));
        }
        let names_one = call
            .function
            .as_ref()
            .is_some_and(|f| non_empty(&f.name).is_some());
        if names_one || tools.is_empty() {
            None
        } else {
            Some(tools.len() - 1)
        }
    }

    fn tool_delta(
        &mut self,
        slot: usize,
        call: &WireToolCall,
        pos: usize,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        let Some(state) = self.choices.get_mut(slot) else {
            return Ok(());
        };
        let at = match Self::target(&state.tools, call) {
            Some(at) => at,
            None => {
                if state.tools.len() >= MAX_TOOL_CALLS {
                    return Err(bad_upstream(format!(
                        "The provider's stream made more than {MAX_TOOL_CALLS} tool calls in one choice."
                    )));
                }
                state.tools.push(ToolState {
                    wire_index: call.index,
                    id: None,
                    name: None,
                    ordinal: None,
                    args_sent: false,
                    held: String::new(),
                });
                state.tools.len() - 1
            }
        };
        let choice = state.index;
        let Some(tool) = state.tools.get_mut(at) else {
            return Ok(());
        };
        if let Some(kind) = non_empty(&call.kind).filter(|k| *k != "function") {
            return Err(bad_upstream(format!(
                "The provider streamed a tool call of type '{kind}' (choice {choice}, tool_calls[{pos}]), which cannot be translated."
            )));
        }
        if tool.id.is_none() {
            tool.id = non_empty(&call.id).map(String::from);
        }
        let f = call.function.as_ref();
        if tool.name.is_none() {
            tool.name = f.and_then(|f| non_empty(&f.name)).map(String::from);
        }
        let fragment = f
            .and_then(|f| f.arguments.as_ref())
            .map(|a| a.0.as_ref())
            .filter(|a| !a.is_empty());
        match (tool.ordinal, fragment) {
            (Some(index), Some(fragment)) => {
                tool.args_sent = true;
                out.push(StreamEvent::ToolCallArgs {
                    choice,
                    index,
                    fragment: fragment.to_string(),
                });
                return Ok(());
            }
            (Some(_), None) => return Ok(()),
            (None, Some(fragment)) => {
                if tool.held.len() + fragment.len() > MAX_HELD_ARGUMENTS {
                    return Err(bad_upstream(format!(
                        "The provider streamed over {MAX_HELD_ARGUMENTS} bytes of tool call arguments before naming the function."
                    )));
                }
                tool.held.push_str(fragment);
            }
            (None, None) => {}
        }
        let ready = tool.name.is_some() && (tool.id.is_some() || !tool.held.is_empty());
        if ready {
            self.announce(slot, at, out);
        }
        Ok(())
    }

    /// Emits `ToolCallStart` for a call whose name is known, then any
    /// argument text held for it.
    fn announce(&mut self, slot: usize, at: usize, out: &mut Vec<StreamEvent>) {
        let calls_made = self.calls_made;
        let Some(state) = self.choices.get_mut(slot) else {
            return;
        };
        let choice = state.index;
        let ordinal = state.announced;
        let Some(tool) = state.tools.get_mut(at) else {
            return;
        };
        let (Some(name), None) = (&tool.name, tool.ordinal) else {
            return;
        };
        let id = tool
            .id
            .clone()
            .unwrap_or_else(|| made_up_call_id(&self.request_id, calls_made));
        out.push(StreamEvent::ToolCallStart {
            choice,
            index: ordinal,
            id,
            name: name.clone(),
        });
        tool.ordinal = Some(ordinal);
        if !tool.held.is_empty() {
            tool.args_sent = true;
            out.push(StreamEvent::ToolCallArgs {
                choice,
                index: ordinal,
                fragment: std::mem::take(&mut tool.held),
            });
        }
        state.announced += 1;
        self.calls_made += 1;
    }

    /// Ends a choice: announces what is still unannounced, gives calls
    /// without arguments `{}`, and emits `Finish` (once).
    fn finish_choice(
        &mut self,
        slot: usize,
        reason: Option<&str>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        let Some(state) = self.choices.get(slot) else {
            return Ok(());
        };
        if state.finished {
            return Ok(());
        }
        let choice = state.index;
        if let Some(pos) = state.tools.iter().position(|t| t.name.is_none()) {
            return Err(bad_upstream(format!(
                "The provider streamed a tool call without a function name (choice {choice}, call {pos})."
            )));
        }
        for at in 0..state.tools.len() {
            self.announce(slot, at, out);
        }
        let Some(state) = self.choices.get_mut(slot) else {
            return Ok(());
        };
        for tool in &mut state.tools {
            if let (Some(index), false) = (tool.ordinal, tool.args_sent) {
                tool.args_sent = true;
                out.push(StreamEvent::ToolCallArgs {
                    choice,
                    index,
                    fragment: "{}".to_string(),
                });
            }
        }
        state.finished = true;
        let called = state.announced > 0;
        let reason = match reason {
            Some(r) => finish_reason(r, called, state.refused),
            None => derived_finish(called, state.refused),
        };
        out.push(StreamEvent::Finish { choice, reason });
        Ok(())
    }

    /// `[DONE]`: every choice ends, and the usage goes out.
    fn done(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        for slot in 0..self.choices.len() {
            self.finish_choice(slot, None, out)?;
        }
        self.ended = true;
        if let Some(u) = self.usage.take() {
            out.push(StreamEvent::Usage(u));
        }
        Ok(())
    }

    /// Every choice seen has finished.
    fn complete(&self) -> bool {
        !self.choices.is_empty() && self.choices.iter().all(|c| c.finished)
    }
}

impl StreamDecoder for OpenAiChatStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        let data = event.data.trim();
        let result = match data {
            "" => Ok(()),
            "[DONE]" => self.done(out),
            _ => self.translate(data, out),
        };
        if let Err(e) = result {
            self.fail(e, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        if self.complete() {
            self.ended = true;
            if let Some(u) = self.usage.take() {
                out.push(StreamEvent::Usage(u));
            }
        } else {
            self.fail(
                bad_upstream(
                    "The provider's stream ended before [DONE] or a finish_reason: the upstream response is incomplete.",
                ),
                out,
            );
        }
    }
}
