//! A stream passed through untranslated (client API == provider API). Only
//! whole events go on (a chunk that ends inside an event keeps that tail
//! until the next chunk completes it), each is checked to be JSON or
//! `[DONE]`, and the wire's `StreamWatcher` notices usage and the end marker
//! on the way. The bytes of every good event go on exactly as the provider
//! sent them.

use crate::wire::hub::{FinishReason, Usage};
use crate::wire::sse::{SseError, SseEvent, SseFramer};
use serde::Deserialize;

/// Largest event checked; a larger one (a huge tool-call argument, say)
/// and the rest of the stream pass on unchecked.
pub const MAX_CHECKED_EVENT: usize = 1024 * 1024;

/// What goes to the client for one chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The chunk as it came.
    Same,
    /// These bytes instead (whole events only).
    Bytes(Vec<u8>),
    /// The stream is broken: these bytes (its good events) then an error
    /// saying why; nothing after.
    Broken { good: Vec<u8>, why: String },
}

/// What one wire format's stream reports on the way: token usage, and
/// whether the stream reached its end (a stream that stops before is cut
/// short). Sees every good event of a passthrough stream.
pub trait StreamWatcher {
    fn on_event(&mut self, event: &SseEvent);
    /// Checks one event (`Err`: why it cannot go on) and watches it. The
    /// default checks it is JSON or `[DONE]`, then watches it.
    fn check_and_watch(&mut self, event: &SseEvent) -> Result<(), String> {
        check(event)?;
        self.on_event(event);
        Ok(())
    }
    fn usage(&self) -> Option<Usage>;
    fn complete(&self) -> bool;
    /// How the model finished, once the stream said.
    fn finish(&self) -> Option<FinishReason> {
        None
    }
}

/// OpenAI Chat Completions streams: the usage chunk, and `[DONE]` or a
/// choice's `finish_reason` for the end.
#[derive(Default)]
pub struct OpenAiWatcher {
    usage: Option<Usage>,
    complete: bool,
    finish: Option<FinishReason>,
}

impl StreamWatcher for OpenAiWatcher {
    /// One parse checks a chunk and reads its choices' finish reason and
    /// its usage; a chunk of another shape is checked and watched by text.
    fn check_and_watch(&mut self, ev: &SseEvent) -> Result<(), String> {
        if ev.data == "[DONE]" {
            self.complete = true;
            return Ok(());
        }
        let Ok(chunk) = serde_json::from_str::<ChunkFacts>(&ev.data) else {
            check(ev)?;
            self.on_event(ev);
            return Ok(());
        };
        if let Some(name) = chunk.choices.and_then(|c| c.0) {
            self.complete = true;
            self.finish = Some(FinishReason::from_name(&name));
        }
        if let Some(usage) = chunk.usage.and_then(WireUsage::into_hub) {
            self.usage = Some(usage);
        }
        Ok(())
    }

    fn on_event(&mut self, ev: &SseEvent) {
        let data = ev.data.as_bytes();
        const FINISH: &[u8] = b"\"finish_reason\":\"";
        if let Some(at) = crate::bytes::find(data, FINISH) {
            self.complete = true;
            let rest = &data[at + FINISH.len()..];
            if let Some(end) = memchr::memchr(b'"', rest) {
                let name = std::str::from_utf8(&rest[..end]).unwrap_or_default();
                self.finish = Some(FinishReason::from_name(name));
            }
        } else if data == b"[DONE]" {
            self.complete = true;
        }
        // Only the usage chunk is worth parsing.
        if crate::bytes::find(data, b"\"usage\"").is_some() {
            self.usage = openai_usage(data).or(self.usage);
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

pub struct PassStream {
    framer: SseFramer,
    events: Vec<SseEvent>,
    /// Stream offset up to which bytes went on.
    sent: u64,
    /// The bytes from `sent` on, not yet passed on.
    held: Vec<u8>,
    watcher: Box<dyn StreamWatcher>,
    /// An event too large to check went by: the rest passes unchecked.
    unchecked: bool,
    /// A bad event ended the stream.
    broken: bool,
}

impl PassStream {
    pub fn new(watcher: Box<dyn StreamWatcher>) -> Self {
        Self {
            framer: SseFramer::with_offsets(MAX_CHECKED_EVENT),
            events: Vec::new(),
            sent: 0,
            held: Vec::new(),
            watcher,
            unchecked: false,
            broken: false,
        }
    }

    /// One chunk from the provider.
    pub fn feed(&mut self, chunk: &[u8]) -> Step {
        if self.unchecked {
            return Step::Same;
        }
        let framed = self.framer.feed(chunk, &mut self.events);
        self.step(chunk, framed, false)
    }

    /// The provider's body ended: whatever is still held, checked.
    pub fn finish(&mut self) -> Step {
        if self.unchecked {
            return Step::Same;
        }
        let framed = self.framer.finish(&mut self.events);
        self.step(&[], framed, true)
    }

    /// The usage the stream reported, if any.
    pub fn usage(&self) -> Option<Usage> {
        self.watcher.usage()
    }

    /// How the model finished, if the stream said.
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.watcher.finish()
    }

    /// Whether the stream reached its end marker (or a finish reason); an
    /// unchecked stream is not judged.
    pub fn complete(&self) -> bool {
        !self.broken && (self.watcher.complete() || self.unchecked)
    }

    fn step(&mut self, chunk: &[u8], framed: Result<(), SseError>, end: bool) -> Step {
        let spans = self.framer.take_spans();
        // Checked before the framer's error: events completed before it are
        // good or not on their own. A bad event is cut where its block
        // starts, whatever came before it (comments included) goes on.
        let mut bad: Option<(u64, String)> = None;
        for (ev, (start, _)) in self.events.drain(..).zip(spans) {
            if let Err(why) = self.watcher.check_and_watch(&ev) {
                bad = Some((start.max(self.sent), why));
                break;
            }
        }
        self.events.clear();
        let bad = bad.or_else(|| match framed {
            Ok(()) => None,
            // The line that failed belongs to the block after the boundary.
            Err(SseError::InvalidUtf8) => Some((
                self.framer.boundary().max(self.sent),
                "The provider's stream is not valid UTF-8".to_string(),
            )),
            Err(SseError::TooLarge { .. }) => {
                self.unchecked = true;
                None
            }
        });
        let upto = match (&bad, end || self.unchecked) {
            (Some((good, _)), _) => *good,
            (None, true) => self.sent + (self.held.len() + chunk.len()) as u64,
            (None, false) => self.framer.boundary(),
        };
        // Fast path: nothing held before or after, the chunk goes as is.
        let through = self.sent + chunk.len() as u64;
        if bad.is_none() && self.held.is_empty() && upto == through {
            self.sent = through;
            return Step::Same;
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(chunk);
        let keep = buf.split_off(((upto - self.sent) as usize).min(buf.len()));
        self.sent = upto;
        match bad {
            Some((_, why)) => {
                self.unchecked = true;
                self.broken = true;
                Step::Broken { good: buf, why }
            }
            None => {
                self.held = keep;
                Step::Bytes(buf)
            }
        }
    }
}

/// An event of an OpenAI-shaped stream carries JSON (or the end marker).
fn check(ev: &SseEvent) -> Result<(), String> {
    if ev.data == "[DONE]" {
        return Ok(());
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&ev.data)
        .map(|_| ())
        .map_err(|_| "The provider sent a stream event that is not valid JSON".to_string())
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

/// What a whole answer says about its end: `usage` and the choices'
/// finish reasons, read in one pass (the rest is skipped unparsed).
#[derive(Deserialize)]
struct Outcome<'a> {
    usage: Option<WireUsage>,
    #[serde(borrow)]
    choices: Option<Vec<FinishOnly<'a>>>,
}

#[derive(Deserialize)]
struct FinishOnly<'a> {
    #[serde(borrow)]
    finish_reason: Option<std::borrow::Cow<'a, str>>,
}

/// What a stream chunk says: its usage and the first finish reason among
/// its choices (the rest is skipped, checked to be JSON).
#[derive(Deserialize)]
struct ChunkFacts<'a> {
    usage: Option<WireUsage>,
    #[serde(borrow)]
    choices: Option<FirstFinish<'a>>,
}

/// The first `finish_reason` that is a string, in choice order.
struct FirstFinish<'a>(Option<std::borrow::Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstFinish<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Choices<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Choices<'a> {
            type Value = FirstFinish<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut first = None;
                while let Some(choice) = seq.next_element::<FinishOnly<'a>>()? {
                    first = first.or(choice.finish_reason);
                }
                Ok(FirstFinish(first))
            }
        }
        d.deserialize_seq(Choices(std::marker::PhantomData))
    }
}

/// `usage` and the first choice's `finish_reason` of an OpenAI chat
/// completion (or embeddings list), in one parse.
pub fn openai_outcome(json: &[u8]) -> (Option<Usage>, Option<FinishReason>) {
    // The choices did not parse (e.g. a key that is not UTF-8, which the
    // usage-only read skips unchecked): the usage still counts.
    openai_outcome_read(json).unwrap_or_else(|| (openai_usage(json), None))
}

/// As [`openai_outcome`], `None` when the usage or the choices do not read
/// as OpenAI's. `Some` also means the body is JSON.
pub fn openai_outcome_read(json: &[u8]) -> Option<(Option<Usage>, Option<FinishReason>)> {
    let o = serde_json::from_slice::<Outcome>(json).ok()?;
    let finish = o
        .choices
        .and_then(|c| c.into_iter().next())
        .and_then(|c| c.finish_reason)
        .map(|name| FinishReason::from_name(&name));
    Some((o.usage.and_then(WireUsage::into_hub), finish))
}

/// `usage` of an OpenAI chat completion, chunk or embeddings list.
pub fn openai_usage(json: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<UsageOnly>(json)
        .ok()?
        .usage?
        .into_hub()
}

impl WireUsage {
    fn into_hub(self) -> Option<Usage> {
        let prompt = self.prompt_tokens?;
        let completion = self.completion_tokens.unwrap_or(0);
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: self
                .total_tokens
                .unwrap_or_else(|| prompt.saturating_add(completion)),
            cached_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .or(self.prompt_cache_hit_tokens),
            cache_creation_tokens: None,
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_finish_reason_from_a_chunk_and_a_body() {
        let mut w = OpenAiWatcher::default();
        let chunk = SseEvent {
            data: r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#.into(),
            ..Default::default()
        };
        w.on_event(&chunk);
        assert!(w.complete());
        assert_eq!(w.finish(), Some(FinishReason::Length));
        let body =
            br#"{"choices":[{"index":0,"message":{"content":"x"},"finish_reason":"tool_calls"}]}"#;
        assert_eq!(openai_outcome(body).1, Some(FinishReason::ToolCalls));
        assert_eq!(openai_outcome(br#"{"choices":[]}"#).1, None);
        assert_eq!(openai_outcome(b"not json").1, None);
    }

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

    /// The check's result, usage, finish reason and completeness.
    type Watched = (
        Result<(), String>,
        Option<Usage>,
        Option<FinishReason>,
        bool,
    );

    /// What a fresh OpenAI watcher makes of one event: by its one parse
    /// (`check_and_watch`) and by text (`check` then `on_event`).
    fn watched(data: &str) -> [Watched; 2] {
        let ev = SseEvent {
            data: data.into(),
            ..Default::default()
        };
        let mut one = OpenAiWatcher::default();
        let a = one.check_and_watch(&ev);
        let mut text = OpenAiWatcher::default();
        let b = check(&ev).map(|()| text.on_event(&ev));
        [
            (a, one.usage(), one.finish(), one.complete()),
            (b, text.usage(), text.finish(), text.complete()),
        ]
    }

    #[test]
    fn one_parse_reads_compact_chunks_as_the_text_search_does() {
        let usage = r#"{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}"#;
        let mut chunks = vec![
            "[DONE]".to_string(),
            "{}".to_string(),
            r#"{"choices":[]}"#.to_string(),
            r#"{"choices":null,"usage":null}"#.to_string(),
            format!(r#"{{"id":"c","choices":[],"usage":{usage}}}"#),
            r#"{"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_cache_hit_tokens":1}}"#
                .to_string(),
            // Not read as a chunk: the text search's way decides.
            r#"{"choices":"x","usage":{"prompt_tokens":1}}"#.to_string(),
            r#"{"choices":[{"finish_reason":7}],"usage":{"prompt_tokens":1}}"#.to_string(),
            r#"{"usage":"n/a"}"#.to_string(),
            r#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#.to_string(),
            // Not JSON: refused either way.
            "{\"choices\":[".to_string(),
            "[DONE] ".to_string(),
        ];
        for finish in [
            "null",
            "\"stop\"",
            "\"length\"",
            "\"tool_calls\"",
            "\"content_filter\"",
            "\"\"",
        ] {
            chunks.push(format!(
                r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"content":"hi \"usage\""}},"logprobs":null,"finish_reason":{finish}}}]}}"#
            ));
            chunks.push(format!(
                r#"{{"choices":[{{"index":0,"delta":{{}},"finish_reason":null}},{{"index":1,"delta":{{}},"finish_reason":{finish}}}],"usage":{usage}}}"#
            ));
        }
        for data in &chunks {
            let [one, text] = watched(data);
            assert_eq!(one, text, "{data}");
        }
    }

    #[test]
    fn a_spaced_chunk_is_read_too() {
        // JSON written with spaces after colons (Python's default) hides
        // the finish reason and its end from a text search.
        let data = r#"{"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}"#;
        let [one, _] = watched(data);
        assert_eq!(one.0, Ok(()));
        assert_eq!(
            one.1.map(|u| (u.prompt_tokens, u.total_tokens)),
            Some((3, 8))
        );
        assert_eq!(one.2, Some(FinishReason::Length));
        assert!(one.3, "a finished choice ends the stream");
        let stream = format!("data: {data}\n\n");
        let (out, p, broken) = run(&[stream.as_bytes()]);
        assert_eq!((out, broken), (stream.clone().into_bytes(), None));
        assert!(p.complete(), "no error is added to a finished stream");
    }

    const STREAM: &[u8] = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}],\"usage\":null}\n\n: keep-alive\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7,\"prompt_cache_hit_tokens\":1}}\r\n\r\ndata: [DONE]\n\n";

    /// Feeds `chunks`, then ends; returns what went on and the last step.
    fn run(chunks: &[&[u8]]) -> (Vec<u8>, PassStream, Option<String>) {
        let mut p = PassStream::new(Box::<OpenAiWatcher>::default());
        let mut out = Vec::new();
        let mut broken = None;
        let steps = chunks.iter().map(|c| (*c, false)).chain([(&b""[..], true)]);
        for (c, end) in steps {
            let step = if end { p.finish() } else { p.feed(c) };
            match step {
                Step::Same => out.extend_from_slice(c),
                Step::Bytes(b) => out.extend(b),
                Step::Broken { good, why } => {
                    out.extend(good);
                    broken = Some(why);
                    break;
                }
            }
        }
        (out, p, broken)
    }

    #[test]
    fn whole_events_go_on_unchanged_at_every_split() {
        for cut in 0..=STREAM.len() {
            let (out, p, broken) = run(&[&STREAM[..cut], &STREAM[cut..]]);
            assert_eq!(out, STREAM, "cut {cut}");
            assert_eq!(broken, None);
            let u = p.usage().unwrap();
            assert_eq!((u.prompt_tokens, u.cached_tokens), (5, Some(1)));
            assert!(p.complete());
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(run(&bytes).0, STREAM);
    }

    #[test]
    fn only_whole_events_are_released() {
        let mut p = PassStream::new(Box::<OpenAiWatcher>::default());
        assert_eq!(
            p.feed(b"data: {\"a\":1}\n\ndata: {\"b\""),
            Step::Bytes(b"data: {\"a\":1}\n\n".to_vec())
        );
        assert_eq!(
            p.feed(b":2}\n\n"),
            Step::Bytes(b"data: {\"b\":2}\n\n".to_vec())
        );
        assert_eq!(p.feed(b"data: [DONE]\n\n"), Step::Same);
        // Keep-alive comments go on as soon as they are whole.
        assert_eq!(p.feed(b": ping\n\n"), Step::Same);
        assert_eq!(p.finish(), Step::Same);
    }

    #[test]
    fn malformed_events_break_the_stream_after_the_good_ones() {
        let good = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
        for bad in [
            &b"data: {not json\n\n"[..],
            b"data: {\"x\":\"\xff\xfe\"}\n\n",
        ] {
            let mut stream = good.to_vec();
            stream.extend_from_slice(bad);
            stream.extend_from_slice(b"data: [DONE]\n\n");
            for cut in 0..=stream.len() {
                let (out, p, broken) = run(&[&stream[..cut], &stream[cut..]]);
                assert_eq!(out, good, "cut {cut}");
                assert!(broken.is_some(), "cut {cut}");
                assert!(!p.complete());
            }
        }
    }

    #[test]
    fn a_stream_cut_short_is_incomplete_and_its_tail_still_goes_on() {
        let (out, p, broken) = run(&[b"data: {\"a\":1}\n\ndata: {\"b\":2}"]);
        // The final event lacked its blank line but is whole JSON.
        assert_eq!(out, b"data: {\"a\":1}\n\ndata: {\"b\":2}");
        assert_eq!(broken, None);
        assert!(!p.complete());
    }

    #[test]
    fn oversized_events_pass_unchecked() {
        let big = format!("data: {{\"x\":\"{}\"}}\n\n", "y".repeat(MAX_CHECKED_EVENT));
        let (out, p, broken) = run(&[big.as_bytes(), b"data: [DONE]\n\n"]);
        assert_eq!(out.len(), big.len() + 14);
        assert_eq!(broken, None);
        assert!(p.complete());
    }

    /// Fuzz finding (pass_stream): a choice whose key is not UTF-8 made the
    /// one-parse outcome drop the usage the usage-only read finds, so the
    /// tokens of such an answer went uncounted.
    #[test]
    fn outcome_keeps_the_usage_when_the_choices_do_not_parse() {
        let mut body = br#"{"choices":[{"index":0,"log"#.to_vec();
        body.extend([0xff, 0xfe]);
        body.extend(br#"":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#);
        let usage = openai_usage(&body);
        assert!(usage.is_some());
        assert_eq!(openai_outcome(&body).0, usage);
    }
}
