//! Gemini response chunks (`alt=sse`) → hub stream events.

use super::error::{bad_upstream, gemini_error, truncate};
use super::quick_chunk::{self, QuickChunk};
use super::response::{finish_reason, usage_from};
use super::{tool_call_id, MAX_CANDIDATES};
use crate::error::ApiError;
use crate::wire::hub::{FinishReason, ResponseContext, StreamDecoder, StreamEvent, Usage};
use crate::wire::sse::SseEvent;
use serde_json::Value;

/// Part keys that carry no content of their own.
const PART_METADATA: &[&str] = &[
    "thought",
    "thoughtSignature",
    "thought_signature",
    "partMetadata",
    "videoMetadata",
    "mediaResolution",
];

#[derive(Debug)]
pub(super) struct CandidateState {
    pub(super) index: u32,
    calls: u32,
    finished: bool,
}

/// Translates Gemini response chunks into hub events; the whole-response
/// decoder runs the same code over the single body.
#[derive(Debug)]
pub struct GeminiStream {
    request_id: String,
    model: String,
    started: bool,
    ended: bool,
    pub(super) candidates: Vec<CandidateState>,
    next_call: u64,
    pub(super) usage: Option<Usage>,
}

impl GeminiStream {
    pub fn new(ctx: &ResponseContext) -> Self {
        Self {
            request_id: ctx.request_id.clone(),
            model: ctx.model.clone(),
            started: false,
            ended: false,
            candidates: Vec::new(),
            next_call: 0,
            usage: None,
        }
    }

    /// The slot for candidate `index`, created on first sight.
    fn slot(&mut self, index: u32) -> Result<usize, ApiError> {
        if let Some(pos) = self.candidates.iter().position(|c| c.index == index) {
            return Ok(pos);
        }
        if self.candidates.len() >= MAX_CANDIDATES {
            return Err(bad_upstream(format!(
                "Gemini returned more than {MAX_CANDIDATES} candidates."
            )));
        }
        self.candidates.push(CandidateState {
            index,
            calls: 0,
            finished: false,
        });
        Ok(self.candidates.len() - 1)
    }

    /// Translates one response chunk.
    pub(super) fn translate(
        &mut self,
        chunk: &Value,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        let Some(obj) = chunk.as_object() else {
            return Err(bad_upstream(
                "Gemini returned a response that is not a JSON object.",
            ));
        };
        if let Some(err) = obj.get("error") {
            let status = err
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..=599).contains(c))
                .unwrap_or(502);
            return Err(gemini_error(status, err).unwrap_or_else(|| {
                bad_upstream(format!(
                    "Gemini reported an error: {}",
                    truncate(&err.to_string())
                ))
            }));
        }
        self.start(
            obj.get("responseId").and_then(Value::as_str),
            obj.get("modelVersion").and_then(Value::as_str),
            out,
        );
        if let Some(meta) = obj.get("usageMetadata").filter(|m| m.is_object()) {
            self.usage = Some(usage_from(meta));
        }
        let candidates = match obj.get("candidates") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(c)) => c.as_slice(),
            Some(_) => {
                return Err(bad_upstream(
                    "Gemini returned 'candidates' that is not an array.",
                ))
            }
        };
        for (pos, cand) in candidates.iter().enumerate() {
            self.candidate(cand, pos, out)?;
        }
        let blocked = obj
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some_and(|r| !r.is_null());
        if candidates.is_empty() && blocked {
            let slot = self.slot(0)?;
            if let Some(state) = self.candidates.get_mut(slot) {
                if !state.finished {
                    state.finished = true;
                    out.push(StreamEvent::Finish {
                        choice: 0,
                        reason: FinishReason::ContentFilter,
                    });
                }
            }
        }
        Ok(())
    }

    fn candidate(
        &mut self,
        cand: &Value,
        pos: usize,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        let index = match cand.get("index") {
            None | Some(Value::Null) => u32::try_from(pos).ok(),
            Some(v) => v.as_u64().and_then(|i| u32::try_from(i).ok()),
        }
        .ok_or_else(|| bad_upstream("Gemini returned a candidate with an invalid index."))?;
        let slot = self.slot(index)?;
        let parts = match cand.get("content").and_then(|c| c.get("parts")) {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(p)) => p.as_slice(),
            Some(_) => {
                return Err(bad_upstream(
                    "Gemini returned content 'parts' that is not an array.",
                ))
            }
        };
        for part in parts {
            self.part(slot, index, part, out)?;
        }
        if let Some(reason) = cand.get("finishReason").and_then(Value::as_str) {
            self.finish_candidate(slot, index, reason, out);
        }
        Ok(())
    }

    /// The candidate in `slot` finished (once) for `reason`.
    fn finish_candidate(
        &mut self,
        slot: usize,
        index: u32,
        reason: &str,
        out: &mut Vec<StreamEvent>,
    ) {
        if let Some(state) = self.candidates.get_mut(slot) {
            if !state.finished {
                state.finished = true;
                out.push(StreamEvent::Finish {
                    choice: index,
                    reason: finish_reason(reason, state.calls > 0),
                });
            }
        }
    }

    /// The events of a response id, model version and usage first seen.
    fn start(&mut self, id: Option<&str>, model: Option<&str>, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = id
            .filter(|s| !s.is_empty())
            .map_or_else(|| format!("chatcmpl-{}", self.request_id), String::from);
        let model = model
            .filter(|s| !s.is_empty())
            .map_or_else(|| self.model.clone(), String::from);
        out.push(StreamEvent::Start { id, model });
    }

    fn part(
        &mut self,
        slot: usize,
        choice: u32,
        part: &Value,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        let Some(p) = part.as_object() else {
            return Err(bad_upstream(
                "Gemini returned a content part that is not an object.",
            ));
        };
        if let Some(call) = p.get("functionCall") {
            let name = call
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad_upstream("Gemini returned a functionCall without a name."))?;
            let args = match call.get("args") {
                None | Some(Value::Null) => "{}".to_string(),
                Some(a) => a.to_string(),
            };
            let signature = p
                .get("thoughtSignature")
                .or_else(|| p.get("thought_signature"))
                .and_then(Value::as_str);
            let id = tool_call_id(&self.request_id, self.next_call, signature);
            self.next_call += 1;
            let Some(state) = self.candidates.get_mut(slot) else {
                return Ok(());
            };
            let index = state.calls;
            state.calls += 1;
            out.push(StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name: name.to_string(),
            });
            out.push(StreamEvent::ToolCallArgs {
                choice,
                index,
                fragment: args,
            });
            return Ok(());
        }
        if let Some(text) = p.get("text") {
            let text = text
                .as_str()
                .ok_or_else(|| bad_upstream("Gemini returned a text part that is not a string."))?;
            if !text.is_empty() {
                let text = text.to_string();
                out.push(if p.get("thought") == Some(&Value::Bool(true)) {
                    StreamEvent::Reasoning { choice, text }
                } else {
                    StreamEvent::Text { choice, text }
                });
            }
            return Ok(());
        }
        match p.keys().find(|k| !PART_METADATA.contains(&k.as_str())) {
            None => Ok(()),
            Some(kind) => Err(bad_upstream(format!(
                "Gemini returned a part of kind '{kind}', which cannot be translated to an OpenAI chat completion."
            ))),
        }
    }

    /// Every candidate seen has finished (or the prompt was blocked).
    fn complete(&self) -> bool {
        !self.candidates.is_empty() && self.candidates.iter().all(|c| c.finished)
    }

    fn fail(&mut self, err: ApiError, out: &mut Vec<StreamEvent>) {
        self.ended = true;
        if let Some(u) = self.usage.take() {
            out.push(StreamEvent::Usage(u));
        }
        out.push(StreamEvent::Error(err));
    }
}

impl GeminiStream {
    /// What `translate` does, for a chunk the typed pass read.
    pub(super) fn quick(
        &mut self,
        chunk: QuickChunk,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ApiError> {
        self.start(
            chunk.response_id.as_deref(),
            chunk.model_version.as_deref(),
            out,
        );
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for (pos, cand) in chunk.candidates.into_iter().enumerate() {
            let index = match cand.index {
                Some(i) => i,
                None => u32::try_from(pos).map_err(|_| {
                    bad_upstream("Gemini returned a candidate with an invalid index.")
                })?,
            };
            let slot = self.slot(index)?;
            for text in cand.texts.into_iter().filter(|t| !t.is_empty()) {
                out.push(StreamEvent::Text {
                    choice: index,
                    text: text.into_owned(),
                });
            }
            if let Some(reason) = cand.finish_reason {
                self.finish_candidate(slot, index, &reason, out);
            }
        }
        Ok(())
    }

    /// One event's JSON through the typed pass; false (nothing done) when
    /// it leaves the chunk to the tree path. Public for the fuzz target.
    pub fn on_chunk_typed(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> bool {
        let Some(chunk) = quick_chunk::from_str(data) else {
            return false;
        };
        if let Err(e) = self.quick(chunk, out) {
            self.fail(e, out);
        }
        true
    }

    /// One event's JSON through the tree path.
    pub fn on_chunk_tree(&mut self, data: &str, out: &mut Vec<StreamEvent>) {
        let result = match serde_json::from_str::<Value>(data) {
            Ok(chunk) => self.translate(&chunk, out),
            Err(e) => Err(bad_upstream(format!(
                "Gemini sent a stream event that is not valid JSON: {e}."
            ))),
        };
        if let Err(e) = result {
            self.fail(e, out);
        }
    }

    /// The usage seen so far (for tests and the fuzz target).
    pub fn usage_so_far(&self) -> Option<Usage> {
        self.usage
    }
}

impl StreamDecoder for GeminiStream {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        let data = event.data.trim();
        if data.is_empty() {
            return;
        }
        // Most chunks are read typed, without a tree.
        if !self.on_chunk_typed(data, out) {
            self.on_chunk_tree(data, out);
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
                    "Gemini's stream ended before a finishReason: the upstream response is incomplete.",
                ),
                out,
            );
        }
    }
}

#[cfg(test)]
mod typed_pass_tests;
