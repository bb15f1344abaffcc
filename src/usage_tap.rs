//! Watches an OpenAI-shaped stream that passes through untranslated,
//! without holding it back: an SSE framer over the chunks looking for the
//! usage chunk and for the signs that the stream was complete.

use crate::hub::Usage;
use crate::sse::{SseEvent, SseFramer};
use serde::Deserialize;

/// Largest SSE event inspected.
const MAX_EVENT: usize = 256 * 1024;

pub struct UsageTap {
    framer: SseFramer,
    events: Vec<SseEvent>,
    usage: Option<Usage>,
    /// `[DONE]` or a choice's `finish_reason` was seen.
    complete: bool,
    broken: bool,
}

impl Default for UsageTap {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageTap {
    pub fn new() -> Self {
        Self {
            framer: SseFramer::new(MAX_EVENT),
            events: Vec::new(),
            usage: None,
            complete: false,
            broken: false,
        }
    }

    /// Sees one chunk of the stream on its way to the client.
    pub fn observe(&mut self, chunk: &[u8]) {
        if self.broken {
            return;
        }
        if self.framer.feed(chunk, &mut self.events).is_err() {
            // An event too large to inspect: usage is lost, the stream is
            // not judged.
            self.broken = true;
            self.complete = true;
        }
        for ev in self.events.drain(..) {
            let data = ev.data.as_bytes();
            if data == b"[DONE]" || memchr::memmem::find(data, b"\"finish_reason\":\"").is_some() {
                self.complete = true;
            }
            // Only the usage chunk is worth parsing.
            if memchr::memmem::find(data, b"\"usage\"").is_some() {
                self.usage = openai_usage(data).or(self.usage);
            }
        }
    }

    /// The usage the stream reported, if any.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the stream reached its end marker (or a finish reason).
    pub fn complete(&self) -> bool {
        self.complete
    }
}

/// Only the `usage` member of a response; the rest is skipped unparsed
/// into values (a passthrough body can be large).
#[derive(Deserialize)]
struct UsageOnly {
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    /// DeepSeek reports cache hits on its own.
    prompt_cache_hit_tokens: Option<u64>,
    completion_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

/// `usage` of an OpenAI chat completion, chunk or embeddings list.
pub fn openai_usage(json: &[u8]) -> Option<Usage> {
    let u = serde_json::from_slice::<UsageOnly>(json).ok()?.usage?;
    let prompt = u.prompt_tokens?;
    let completion = u.completion_tokens.unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: u.total_tokens.unwrap_or(prompt + completion),
        cached_tokens: u
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .or(u.prompt_cache_hit_tokens),
        cache_creation_tokens: None,
        reasoning_tokens: u.completion_tokens_details.and_then(|d| d.reasoning_tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_usage() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}"#;
        let u = openai_usage(body).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (7, 3, 10)
        );
        assert_eq!((u.cached_tokens, u.reasoning_tokens), (Some(2), Some(1)));
        assert_eq!(openai_usage(b"{\"error\":{}}"), None);
        // Members around `usage` of any shape are skipped; nulls are absent.
        let odd = br#"{"choices":[{"x":[1,{"y":null}]}],"usage":{"prompt_tokens":4,"completion_tokens":null,"prompt_tokens_details":null},"z":"\u00e9"}"#;
        let u = openai_usage(odd).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (4, 0, 4)
        );
        assert_eq!(u.cached_tokens, None);
        assert_eq!(openai_usage(br#"{"usage":null}"#), None);
        assert_eq!(openai_usage(br#"{"usage":"n/a"}"#), None);
    }

    #[test]
    fn stream_usage_chunk_at_any_split() {
        let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7,\"prompt_cache_hit_tokens\":1}}\n\ndata: [DONE]\n\n";
        for cut in 0..stream.len() {
            let mut tap = UsageTap::new();
            tap.observe(&stream[..cut]);
            assert!(!tap.complete() || cut >= stream.len() - 2);
            tap.observe(&stream[cut..]);
            let u = tap.usage().unwrap();
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
                (5, 2, Some(1))
            );
            assert!(tap.complete());
        }
        let mut tap = UsageTap::new();
        tap.observe(b"data: {\"choices\":[]}\n\n");
        assert_eq!(tap.usage(), None);
        assert!(!tap.complete());
        tap.observe(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
        assert!(tap.complete());
    }
}
