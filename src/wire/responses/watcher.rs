//! A Responses stream passed through untranslated (client and provider both
//! speak the Responses API): usage and the end, noticed on the way.

use crate::wire::hub::{FinishReason, Usage};
use crate::wire::pass_stream::StreamWatcher;
use crate::wire::sse::SseEvent;
use serde::Deserialize;

/// Usage from `response.completed` / `response.incomplete` /
/// `response.failed`; any of those, or an `error` event, ends the stream
/// properly (a failed response is a complete stream: the client has been
/// told, nothing needs adding).
#[derive(Debug, Default)]
pub struct ResponsesWatcher {
    usage: Option<Usage>,
    complete: bool,
    finish: Option<FinishReason>,
}

/// Quoted names that only final events carry (`"error"` also matches the
/// `error: null` of created/in-progress events, which are few and small).
const FINAL_MARKERS: &[&[u8]] = &[
    b"\"response.completed\"",
    b"\"response.incomplete\"",
    b"\"response.failed\"",
    b"\"error\"",
];

#[derive(Deserialize)]
struct EventHead {
    #[serde(rename = "type")]
    kind: Option<String>,
    response: Option<UsageOnly>,
}

/// Only the `usage` member of a response object; the rest is skipped
/// unparsed into values (a response can be large).
#[derive(Deserialize)]
struct UsageOnly {
    usage: Option<WireUsage>,
    status: Option<String>,
    incomplete_details: Option<Incomplete>,
}

#[derive(Deserialize)]
struct Incomplete {
    reason: Option<String>,
}

impl UsageOnly {
    /// A finished response's status, as a hub finish reason.
    fn finish(&self) -> Option<FinishReason> {
        match self.status.as_deref()? {
            "completed" => Some(FinishReason::Stop),
            "incomplete" => Some(FinishReason::from_name(
                self.incomplete_details
                    .as_ref()
                    .and_then(|d| d.reason.as_deref())
                    .unwrap_or("max_output_tokens"),
            )),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_tokens: Option<u64>,
    input_tokens_details: Option<InputDetails>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    cached_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    fn to_hub(&self) -> Option<Usage> {
        let input = self.input_tokens?;
        let output = self.output_tokens.unwrap_or(0);
        let details = self.input_tokens_details.as_ref();
        Some(Usage {
            prompt_tokens: input,
            completion_tokens: output,
            total_tokens: self.total_tokens.unwrap_or(input.saturating_add(output)),
            cached_tokens: details.and_then(|d| d.cached_tokens),
            cache_creation_tokens: details.and_then(|d| d.cache_write_tokens),
            reasoning_tokens: self
                .output_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
        })
    }
}

impl StreamWatcher for ResponsesWatcher {
    fn on_event(&mut self, ev: &SseEvent) {
        let data = ev.data.as_bytes();
        // Deltas, the bulk of a stream, are never parsed.
        if !FINAL_MARKERS
            .iter()
            .any(|m| crate::bytes::find(data, m).is_some())
        {
            return;
        }
        let Ok(head) = serde_json::from_slice::<EventHead>(data) else {
            return;
        };
        let kind = head.kind.as_deref().or(ev.event.as_deref());
        match kind {
            Some("response.completed" | "response.incomplete" | "response.failed") => {
                self.complete = true;
                self.finish = head.response.as_ref().and_then(UsageOnly::finish);
                let usage = head.response.and_then(|r| r.usage).and_then(|u| u.to_hub());
                self.usage = usage.or(self.usage);
            }
            Some("error") => self.complete = true,
            _ => {}
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn complete(&self) -> bool {
        self.complete
    }

    fn finish(&self) -> Option<FinishReason> {
        self.finish
    }
}

/// Usage and finish of a whole `response` object, in one parse.
pub fn body_outcome(body: &[u8]) -> (Option<Usage>, Option<FinishReason>) {
    let Ok(o) = serde_json::from_slice::<UsageOnly>(body) else {
        return (None, None);
    };
    let finish = o.finish();
    (o.usage.and_then(|u| u.to_hub()), finish)
}

/// `usage` of a whole (non-stream) `response` object.
pub fn body_usage(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<UsageOnly>(body)
        .ok()?
        .usage?
        .to_hub()
}
