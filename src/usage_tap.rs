//! Reads token usage out of OpenAI-shaped responses that pass through
//! untranslated, without holding them back: a bounded copy of a JSON body,
//! or an SSE framer over the stream looking for the usage chunk.

use crate::hub::Usage;
use crate::sse::{SseEvent, SseFramer};
use serde::Deserialize;

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
                    if memchr::memmem::find(ev.data.as_bytes(), b"\"usage\"").is_some() {
                        *usage = openai_usage(ev.data.as_bytes()).or(*usage);
                    }
                }
            }
        }
    }

    /// The usage the response reported, if any.
    pub fn finish(&mut self) -> Option<Usage> {
        match self {
            Self::Body { copy, overflow } if !*overflow => openai_usage(copy),
            Self::Body { .. } => None,
            Self::Stream { usage, .. } => *usage,
        }
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
