//! Gemini `GenerateContentResponse` → hub response: finish reasons and
//! usage. A whole response runs through the stream translator
//! ([`GeminiStream`]) and its events are folded into one `ChatResponse`.

use super::error::bad_upstream;
use super::{quick_chunk, GeminiStream};
use crate::error::ApiError;
use crate::wire::collect::Capture;
use crate::wire::hub::{ChatResponse, Choice, FinishReason, ResponseContext, StreamEvent, Usage};
use serde_json::Value;

pub(super) fn finish_reason(reason: &str, called: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "LANGUAGE"
        | "MODEL_ARMOR" => FinishReason::ContentFilter,
        _ if called => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

pub(super) fn count(meta: &Value, key: &str) -> Option<u64> {
    meta.get(key).and_then(Value::as_u64)
}

/// The token counts of a `usageMetadata`, each where given as a count.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub prompt: Option<u64>,
    pub tool_use_prompt: Option<u64>,
    pub thoughts: Option<u64>,
    pub candidates: Option<u64>,
    pub total: Option<u64>,
    pub cached: Option<u64>,
}

impl Counts {
    pub(super) fn usage(&self) -> Usage {
        // Saturating: the counts are the provider's, and absurd ones must not
        // wrap into small numbers (usage, cost and limits are charged from them).
        let prompt = self
            .prompt
            .unwrap_or(0)
            .saturating_add(self.tool_use_prompt.unwrap_or(0));
        let completion = self
            .candidates
            .unwrap_or(0)
            .saturating_add(self.thoughts.unwrap_or(0));
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: self
                .total
                .unwrap_or_else(|| prompt.saturating_add(completion)),
            cached_tokens: self.cached,
            cache_creation_tokens: None,
            reasoning_tokens: self.thoughts,
        }
    }
}

pub(super) fn usage_from(meta: &Value) -> Usage {
    Counts {
        prompt: count(meta, "promptTokenCount"),
        tool_use_prompt: count(meta, "toolUsePromptTokenCount"),
        thoughts: count(meta, "thoughtsTokenCount"),
        candidates: count(meta, "candidatesTokenCount"),
        total: count(meta, "totalTokenCount"),
        cached: count(meta, "cachedContentTokenCount"),
    }
    .usage()
}

pub(super) fn decode_chat(body: &[u8], ctx: &ResponseContext) -> Result<ChatResponse, ApiError> {
    let mut decoder = GeminiStream::new(ctx);
    let mut events = Vec::new();
    if let Some(chunk) = quick_chunk::from_slice(body) {
        decoder.quick(chunk, &mut events)?;
    } else {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            bad_upstream(format!(
                "Gemini returned a response that is not valid JSON: {e}."
            ))
        })?;
        // streamGenerateContent without alt=sse answers with an array of chunks.
        let chunks: Vec<&Value> = match &value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for chunk in chunks {
            decoder.translate(chunk, &mut events)?;
        }
    }
    let resp = ChatResponse {
        id: format!("chatcmpl-{}", ctx.request_id),
        model: ctx.model.clone(),
        created: ctx.created,
        choices: decoder
            .candidates
            .iter()
            .map(|c| Choice {
                index: c.index,
                ..Choice::default()
            })
            .collect(),
        usage: decoder.usage,
    };
    if resp.choices.is_empty() {
        return Err(bad_upstream(
            "Gemini returned no candidates (and no promptFeedback.blockReason).",
        ));
    }
    let mut gathered = Capture::starting(resp, usize::MAX);
    for event in events {
        if let StreamEvent::Error(e) = event {
            return Err(e);
        }
        gathered.push(event);
    }
    Ok(gathered.into_response())
}
