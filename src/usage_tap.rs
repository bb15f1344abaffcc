//! Reads token usage out of OpenAI-shaped responses that pass through
//! untranslated, without holding them back: a bounded copy of a JSON body,
//! or an SSE framer over the stream looking for the usage chunk.

use crate::hub::Usage;
use crate::sse::{SseEvent, SseFramer};
use serde_json::Value;

/// Bodies larger than this are passed on without usage accounting.
const MAX_BODY_COPY: usize = 1024 * 1024;
/// Largest SSE event inspected.
const MAX_EVENT: usize = 256 * 1024;

pub enum UsageTap {
    Body {
        copy: Vec<u8>,
        overflow: bool,
    },
    Stream {
        framer: SseFramer,
        events: Vec<SseEvent>,
        usage: Option<Usage>,
        broken: bool,
    },
}

impl UsageTap {
    pub fn new(stream: bool) -> Self {
        if stream {
            Self::Stream {
                framer: SseFramer::new(MAX_EVENT),
                events: Vec::new(),
                usage: None,
                broken: false,
            }
        } else {
            Self::Body {
                copy: Vec::new(),
                overflow: false,
            }
        }
    }

    /// Sees one chunk of the response body on its way to the client.
    pub fn observe(&mut self, chunk: &[u8]) {
        match self {
            Self::Body { copy, overflow } => {
                if *overflow || copy.len() + chunk.len() > MAX_BODY_COPY {
                    *overflow = true;
                    copy.clear();
                } else {
                    copy.extend_from_slice(chunk);
                }
            }
            Self::Stream {
                framer,
                events,
                usage,
                broken,
            } => {
                if *broken {
                    return;
                }
                if framer.feed(chunk, events).is_err() {
                    *broken = true;
                }
                for ev in events.drain(..) {
                    // Only the usage chunk is worth parsing.
                    if ev.data.contains("\"usage\"") {
                        if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                            *usage = openai_usage(&v).or(*usage);
                        }
                    }
                }
            }
        }
    }

    /// The usage the response reported, if any.
    pub fn finish(&mut self) -> Option<Usage> {
        match self {
            Self::Body { copy, overflow } if !*overflow => serde_json::from_slice::<Value>(copy)
                .ok()
                .as_ref()
                .and_then(openai_usage),
            Self::Body { .. } => None,
            Self::Stream { usage, .. } => *usage,
        }
    }
}

/// `usage` of an OpenAI chat completion, chunk or embeddings list.
pub fn openai_usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    let n = |v: Option<&Value>| v.and_then(Value::as_u64);
    let prompt = n(u.get("prompt_tokens"))?;
    let completion = n(u.get("completion_tokens")).unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: n(u.get("total_tokens")).unwrap_or(prompt + completion),
        cached_tokens: n(u
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens")))
        // DeepSeek reports cache hits on its own.
        .or(n(u.get("prompt_cache_hit_tokens"))),
        cache_creation_tokens: None,
        reasoning_tokens: n(u
            .get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_usage_at_any_split() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}"#;
        for cut in 0..body.len() {
            let mut tap = UsageTap::new(false);
            tap.observe(&body[..cut]);
            tap.observe(&body[cut..]);
            let u = tap.finish().unwrap();
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens, u.total_tokens),
                (7, 3, 10)
            );
            assert_eq!((u.cached_tokens, u.reasoning_tokens), (Some(2), Some(1)));
        }
        let mut tap = UsageTap::new(false);
        tap.observe(b"{\"error\":{}}");
        assert_eq!(tap.finish(), None);
    }

    #[test]
    fn stream_usage_chunk_at_any_split() {
        let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7,\"prompt_cache_hit_tokens\":1}}\n\ndata: [DONE]\n\n";
        for cut in 0..stream.len() {
            let mut tap = UsageTap::new(true);
            tap.observe(&stream[..cut]);
            tap.observe(&stream[cut..]);
            let u = tap.finish().unwrap();
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
                (5, 2, Some(1))
            );
        }
        let mut tap = UsageTap::new(true);
        tap.observe(b"data: {\"choices\":[]}\n\n");
        assert_eq!(tap.finish(), None);
    }

    #[test]
    fn oversized_bodies_are_not_held() {
        let mut tap = UsageTap::new(false);
        tap.observe(&vec![b' '; MAX_BODY_COPY]);
        tap.observe(b"{}");
        assert!(matches!(&tap, UsageTap::Body { copy, overflow: true } if copy.is_empty()));
        assert_eq!(tap.finish(), None);
    }
}
