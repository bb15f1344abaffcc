//! Gemini response chunks (`alt=sse`) → hub stream events.

use super::error::{bad_upstream, gemini_error, truncate};
use super::response::{finish_reason, usage_from};
use super::{tool_call_id, MAX_CANDIDATES};
use crate::error::ApiError;
use crate::wire::hub::{FinishReason, ResponseContext, StreamDecoder, StreamEvent, Usage};
use crate::wire::sse::SseEvent;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

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
        if !self.started {
            self.started = true;
            let id = obj
                .get("responseId")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("chatcmpl-{}", self.request_id), String::from);
            let model = obj
                .get("modelVersion")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| self.model.clone(), String::from);
            out.push(StreamEvent::Start { id, model });
        }
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
        Ok(())
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

/// A chunk that carries nothing but candidates' text parts, the ids and
/// the running usage (Gemini repeats `usageMetadata` on every chunk). Any
/// other member — finishReason, function calls, thoughts, errors, prompt
/// feedback — fails this parse and takes the general path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextChunk<'a> {
    #[serde(borrow)]
    candidates: Vec<TextCandidate<'a>>,
    #[serde(rename = "usageMetadata", default)]
    usage_metadata: Option<Value>,
    #[serde(rename = "responseId", borrow, default)]
    response_id: Option<Cow<'a, str>>,
    #[serde(rename = "modelVersion", borrow, default)]
    model_version: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextCandidate<'a> {
    #[serde(borrow)]
    content: TextContent<'a>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextContent<'a> {
    #[allow(dead_code)] // accepted, as on the general path
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    parts: Vec<TextPart<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextPart<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

impl GeminiStream {
    /// What `translate` does for a text-only chunk, without the tree.
    fn text_chunk(&mut self, chunk: TextChunk, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        if !self.started {
            self.started = true;
            let id = chunk
                .response_id
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("chatcmpl-{}", self.request_id), Cow::into_owned);
            let model = chunk
                .model_version
                .filter(|s| !s.is_empty())
                .map_or_else(|| self.model.clone(), Cow::into_owned);
            out.push(StreamEvent::Start { id, model });
        }
        if let Some(meta) = chunk.usage_metadata.filter(Value::is_object) {
            self.usage = Some(usage_from(&meta));
        }
        for (pos, cand) in chunk.candidates.into_iter().enumerate() {
            let index = match cand.index {
                Some(i) => i,
                None => u32::try_from(pos).map_err(|_| {
                    bad_upstream("Gemini returned a candidate with an invalid index.")
                })?,
            };
            self.slot(index)?;
            for part in cand.content.parts {
                if !part.text.is_empty() {
                    out.push(StreamEvent::Text {
                        choice: index,
                        text: part.text.into_owned(),
                    });
                }
            }
        }
        Ok(())
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
        // Most chunks are text only: parsed into borrowed structs, not a tree.
        if let Ok(chunk) = serde_json::from_str::<TextChunk>(data) {
            if let Err(e) = self.text_chunk(chunk, out) {
                self.fail(e, out);
            }
            return;
        }
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
mod fast_path_tests {
    use super::*;

    fn ctx() -> ResponseContext {
        ResponseContext {
            model: "gemini-2.5-flash".into(),
            created: 1,
            request_id: "r1".into(),
            input_tokens_estimate: 0,
        }
    }

    #[test]
    fn text_chunks_translate_as_on_the_general_path() {
        let chunks = [
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"He"},{"text":""},{"text":"llo \"x\""}]},"index":0}],"modelVersion":"gemini-2.5-flash","responseId":"resp-1"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]},"index":1}],"responseId":""}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"é"}]},"index":3}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"x"}]},"index":0}],"usageMetadata":{"promptTokenCount":6,"candidatesTokenCount":2,"totalTokenCount":8},"modelVersion":"m"}"#,
        ];
        for data in chunks {
            let ev = SseEvent {
                event: None,
                data: data.into(),
                id: None,
            };
            let (mut fast, mut general) = (GeminiStream::new(&ctx()), GeminiStream::new(&ctx()));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            fast.on_event(&ev, &mut a);
            let v: Value = serde_json::from_str(data).unwrap();
            general.translate(&v, &mut b).unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{data}");
            assert_eq!(fast.usage, general.usage, "{data}");
            assert!(!a.is_empty());
        }
    }
}
