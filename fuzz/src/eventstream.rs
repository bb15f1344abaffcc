//! `eventstream`: `llm_gateway::wire::eventstream::Decoder` (AWS
//! event-stream framing, Bedrock's streams).
//!
//! Input: `[seed, body…]`; `seed` picks the chunkings.
//!
//! Checks: no panic; the messages (those before an error included) and the
//! error are the same whatever the
//! chunking (whole, split in two, PRNG-sized chunks, one byte at a time);
//! the decoder never holds more than the bytes fed; an error is sticky;
//! every decoded message encodes back to exactly the bytes it came from.

use crate::common::{chunkings, header};
use llm_gateway::wire::eventstream::{encode, Decoder, FrameError, Message};

type Outcome = (Vec<Message>, Option<FrameError>);

pub fn eventstream(data: &[u8]) {
    let ([seed], body) = header::<1>(data);
    let whole = run(&[body]);
    for plan in chunkings(body, seed) {
        assert_eq!(
            run(&plan),
            whole,
            "chunking {plan:?} differs from the whole body"
        );
    }
    // What decoded is what was sent: re-encoding gives the input's prefix.
    let again: Vec<u8> = whole.0.iter().flat_map(encode).collect();
    assert_eq!(
        &body[..again.len()],
        &again[..],
        "re-encoded messages differ from the input"
    );
    let mut d = Decoder::new();
    assert_eq!(
        d.feed_all(&again).expect("re-encoded stream decodes"),
        whole.0
    );
    assert_eq!(d.finish(), Ok(()));
}

fn run(chunks: &[&[u8]]) -> Outcome {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let mut fed = 0;
    for chunk in chunks {
        fed += chunk.len();
        if let Err(e) = d.feed(chunk, &mut out) {
            assert_eq!(d.feed(b"x", &mut out), Err(e.clone()), "an error is sticky");
            assert_eq!(d.buffered(), 0, "an error leaves nothing held");
            return (out, Some(e));
        }
        assert!(d.buffered() <= fed, "holds more than it was fed");
    }
    match d.finish() {
        Ok(()) => (out, None),
        Err(e) => (out, Some(e)),
    }
}
