//! `pass_stream`: `llm_gateway::wire::pass_stream::PassStream`, which passes
//! a stream on event by event, checking each event, with each client wire's
//! `StreamWatcher` (`Wire::watcher`: OpenAI Chat, Anthropic Messages,
//! Responses) noticing usage and the end; and `Wire::body_usage` on whole
//! (non-stream) bodies.
//!
//! Input: `[flags, seed, body…]`: `flags & 1` also reads the body as a
//! whole passthrough response (body mode); `seed` picks the chunkings.
//!
//! Checks: no panic; for every watcher, what goes to the client, the usage
//! found, whether the stream is complete or broken do not depend on the
//! chunking; what goes to the client does not depend on the watcher; a
//! stream that is not broken goes on byte for byte; a broken one goes on as
//! a prefix of the input; bytes held back never exceed the checked-event cap
//! plus one chunk. In body mode, when the body is one line of JSON, the
//! watcher reads from a stream event carrying it the usage `body_usage`
//! reads from the body: OpenAI's usage chunk (when the body names `"usage"`,
//! the watcher's trigger), Anthropic's `message_start` (when `body_usage`
//! finds input tokens) and Responses' `response.completed`.

use crate::common::{chunkings, header};
use llm_gateway::wire::hub::Usage;
use llm_gateway::wire::pass_stream::{PassStream, Step, MAX_CHECKED_EVENT};
use llm_gateway::wire::Wire;

/// The wires whose streams pass through to their own clients.
const WIRES: [Wire; 3] = [Wire::OpenAiChat, Wire::Anthropic, Wire::OpenAiResponses];

#[derive(Debug, PartialEq)]
struct Outcome {
    sent: Vec<u8>,
    broken: bool,
    usage: Option<Usage>,
    complete: bool,
}

pub fn pass_stream(data: &[u8]) {
    let ([flags, seed], body) = header::<2>(data);
    let plans = chunkings(body, seed);
    let mut first: Option<Outcome> = None;
    for wire in WIRES {
        let whole = run(wire, &[body]);
        for plan in &plans {
            assert_eq!(
                run(wire, plan),
                whole,
                "{wire:?}: chunking {plan:?} changes the outcome"
            );
        }
        if whole.broken {
            assert!(
                body.starts_with(&whole.sent),
                "a broken stream sent bytes it never got"
            );
        } else {
            assert_eq!(
                whole.sent, body,
                "a good stream did not go on byte for byte"
            );
        }
        match &first {
            None => first = Some(whole),
            Some(f) => assert!(
                f.sent == whole.sent && f.broken == whole.broken,
                "{wire:?}: what goes to the client depends on the watcher"
            ),
        }
    }
    if flags & 1 == 1 {
        body_mode(body);
    }
}

/// The usage of `body` as a whole response, and as read from a stream
/// event that carries it (see the module docs).
fn body_mode(body: &[u8]) {
    let usage: Vec<Option<Usage>> = WIRES.iter().map(|w| w.body_usage(body)).collect();
    // The one-parse outcome the flow reads agrees with `body_usage`.
    for (w, u) in WIRES.iter().zip(&usage) {
        assert_eq!(
            w.body_outcome(body).0,
            *u,
            "{w:?}: body_outcome's usage vs body_usage"
        );
    }
    // Only a body that is JSON on one line fits in a `data:` line as is
    // (UTF-8 checked apart: serde_json skips ignored strings unchecked).
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    if text.contains(['\n', '\r']) || serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return;
    }
    let event = |name: Option<&str>, before: &[u8], after: &[u8]| {
        let mut s = Vec::new();
        if let Some(name) = name {
            s.extend_from_slice(b"event: ");
            s.extend_from_slice(name.as_bytes());
            s.push(b'\n');
        }
        s.extend_from_slice(b"data: ");
        s.extend_from_slice(before);
        s.extend_from_slice(body);
        s.extend_from_slice(after);
        s.extend_from_slice(b"\n\n");
        s
    };
    // OpenAI: the watcher parses events that name `"usage"`.
    if memchr_find(body, b"\"usage\"") {
        let got = run(Wire::OpenAiChat, &[&event(None, b"", b"")]);
        assert_eq!(got.usage, usage[0], "OpenAI: usage chunk vs body_usage");
    }
    // Anthropic: `message_start` carries the message, usage included.
    if usage[1].is_some() {
        let s = event(
            Some("message_start"),
            b"{\"type\":\"message_start\",\"message\":",
            b"}",
        );
        let got = run(Wire::Anthropic, &[&s]);
        assert_eq!(
            got.usage, usage[1],
            "Anthropic: message_start vs body_usage"
        );
    }
    // Responses: the final event carries the response.
    let s = event(
        Some("response.completed"),
        b"{\"type\":\"response.completed\",\"response\":",
        b"}",
    );
    let got = run(Wire::OpenAiResponses, &[&s]);
    assert_eq!(
        got.usage, usage[2],
        "Responses: response.completed vs body_usage"
    );
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn run(wire: Wire, chunks: &[&[u8]]) -> Outcome {
    let mut p = PassStream::new(wire.watcher());
    let mut sent = Vec::new();
    let mut broken = false;
    let mut fed = 0usize;
    let largest = chunks.iter().map(|c| c.len()).max().unwrap_or(0);
    for chunk in chunks.iter().map(|c| (*c, false)).chain([(&b""[..], true)]) {
        let (bytes, end) = chunk;
        let step = if end { p.finish() } else { p.feed(bytes) };
        fed += bytes.len();
        match step {
            Step::Same => sent.extend_from_slice(bytes),
            Step::Bytes(b) => sent.extend(b),
            Step::Broken { good, .. } => {
                sent.extend(good);
                broken = true;
                break;
            }
        }
        let held = fed - sent.len();
        assert!(
            held <= MAX_CHECKED_EVENT + largest + 4,
            "{held} bytes held back"
        );
    }
    Outcome {
        sent,
        broken,
        usage: p.usage(),
        complete: p.complete(),
    }
}
