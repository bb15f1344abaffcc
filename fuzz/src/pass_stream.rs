//! `pass_stream`: `llm_gateway::wire::pass_stream::PassStream`, which passes an
//! OpenAI-shaped stream on event by event, checking each event, and
//! `openai_usage` on whole bodies.
//!
//! Input: `[flags, seed, body…]`: `flags & 1` also runs the body through
//! `openai_usage` as a non-stream body; `seed` picks the chunkings.
//!
//! Checks: no panic; what goes to the client, the usage found, whether the
//! stream is complete or broken do not depend on the chunking; a stream
//! that is not broken goes on byte for byte; a broken one goes on as a
//! prefix of the input that ends at an event boundary; bytes held back
//! never exceed the checked-event cap plus one chunk.

use crate::common::{chunkings, header};
use llm_gateway::wire::hub::Usage;
use llm_gateway::wire::pass_stream::{
    openai_usage, OpenAiWatcher, PassStream, Step, MAX_CHECKED_EVENT,
};

#[derive(Debug, PartialEq)]
struct Outcome {
    sent: Vec<u8>,
    broken: bool,
    usage: Option<Usage>,
    complete: bool,
}

pub fn pass_stream(data: &[u8]) {
    let ([flags, seed], body) = header::<2>(data);
    let whole = run(&[body]);
    for plan in chunkings(body, seed) {
        assert_eq!(run(&plan), whole, "chunking {plan:?} changes the outcome");
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
    if flags & 1 == 1 {
        let _ = openai_usage(body);
    }
}

fn run(chunks: &[&[u8]]) -> Outcome {
    let mut p = PassStream::new(Box::<OpenAiWatcher>::default());
    let mut sent = Vec::new();
    let mut broken = false;
    let mut fed = 0usize;
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
        let largest = chunks.iter().map(|c| c.len()).max().unwrap_or(0);
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
