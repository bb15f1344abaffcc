//! Usage and completeness of Anthropic responses passed through untranslated
//! (an Anthropic client served by an Anthropic target). Only the `usage`
//! members are parsed, into borrowed structs: text deltas are never
//! parsed at all.

use crate::wire::hub::{FinishReason, Usage};
use crate::wire::pass_stream::StreamWatcher;
use crate::wire::sse::SseEvent;
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

/// Counts so far; later reports override earlier ones field by field
/// (Anthropic's stream counts are cumulative).
#[derive(Default, Clone, Copy)]
struct Counts {
    seen: bool,
    input: u64,
    output: u64,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
}

impl Counts {
    fn update(&mut self, u: &WireUsage) {
        self.seen = true;
        if let Some(n) = u.input_tokens {
            self.input = n;
        }
        if let Some(n) = u.output_tokens {
            self.output = n;
        }
        if u.cache_read_input_tokens.is_some() {
            self.cache_read = u.cache_read_input_tokens;
        }
        if u.cache_creation_input_tokens.is_some() {
            self.cache_creation = u.cache_creation_input_tokens;
        }
    }

    /// Hub usage: prompt tokens include cache reads and writes, as the
    /// Anthropic egress reports them.
    fn to_usage(self) -> Option<Usage> {
        if !self.seen {
            return None;
        }
        let prompt = self
            .input
            .saturating_add(self.cache_read.unwrap_or(0))
            .saturating_add(self.cache_creation.unwrap_or(0));
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: self.output,
            total_tokens: prompt.saturating_add(self.output),
            cached_tokens: self.cache_read,
            cache_creation_tokens: self.cache_creation,
            reasoning_tokens: None,
        })
    }
}

/// The event type: the SSE `event:` name, else the data's `type`.
#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MessageStart {
    message: UsageOnly,
}

#[derive(Deserialize)]
struct UsageOnly {
    usage: Option<WireUsage>,
}

/// `message_delta`: the usage so far and, at the end, the stop reason.
#[derive(Deserialize)]
struct MessageDelta<'a> {
    usage: Option<WireUsage>,
    #[serde(borrow)]
    delta: Option<StopOnly<'a>>,
}

#[derive(Deserialize)]
struct StopOnly<'a> {
    #[serde(borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

/// Watches an Anthropic Messages stream: usage from `message_start`
/// (input and cache counts) and `message_delta` (output, and input when
/// given); complete at `message_stop`, unless an `error` event came first
/// (Anthropic's stream failed, whatever follows).
#[derive(Default)]
pub struct AnthropicWatcher {
    counts: Counts,
    stopped: bool,
    failed: bool,
    finish: Option<FinishReason>,
}

impl StreamWatcher for AnthropicWatcher {
    fn on_event(&mut self, ev: &SseEvent) {
        let named;
        let kind = match ev.event.as_deref() {
            Some(name) => name,
            None => match serde_json::from_str::<TypeOnly>(&ev.data) {
                Ok(t) => {
                    named = t.kind;
                    &named
                }
                Err(_) => return,
            },
        };
        match kind {
            "message_start" => {
                if let Ok(m) = serde_json::from_str::<MessageStart>(&ev.data) {
                    if let Some(u) = m.message.usage {
                        self.counts.update(&u);
                    }
                }
            }
            "message_delta" => {
                if let Ok(d) = serde_json::from_str::<MessageDelta>(&ev.data) {
                    if let Some(u) = &d.usage {
                        self.counts.update(u);
                    }
                    if let Some(reason) = d.delta.and_then(|s| s.stop_reason) {
                        self.finish = Some(FinishReason::from_name(&reason));
                    }
                }
            }
            "message_stop" => self.stopped = true,
            "error" => self.failed = true,
            _ => {}
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.counts.to_usage()
    }

    fn complete(&self) -> bool {
        self.stopped && !self.failed
    }

    fn finish(&self) -> Option<FinishReason> {
        self.finish
    }
}

/// A whole `message` body's end: usage and `stop_reason`, in one parse.
#[derive(Deserialize)]
struct BodyOutcome<'a> {
    usage: Option<WireUsage>,
    #[serde(borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

/// `usage` (as `body_usage`) and `stop_reason` of a non-streaming
/// Anthropic `message` body.
pub fn body_outcome(body: &[u8]) -> (Option<Usage>, Option<FinishReason>) {
    // A stop reason that does not read (not UTF-8, say) takes nothing
    // from the usage, which `body_usage` reads without it.
    let Ok(o) = serde_json::from_slice::<BodyOutcome>(body) else {
        return (body_usage(body), None);
    };
    let usage = o.usage.filter(|u| u.input_tokens.is_some()).and_then(|u| {
        let mut counts = Counts::default();
        counts.update(&u);
        counts.to_usage()
    });
    (usage, o.stop_reason.map(|s| FinishReason::from_name(&s)))
}

/// `usage` of a non-streaming Anthropic `message` body (`None` for an
/// error body or one without input tokens).
pub fn body_usage(body: &[u8]) -> Option<Usage> {
    let u = serde_json::from_slice::<UsageOnly>(body).ok()?.usage?;
    u.input_tokens?;
    let mut counts = Counts::default();
    counts.update(&u);
    counts.to_usage()
}
