//! `sse_framer`: `llm_gateway::wire::sse::SseFramer`.
//!
//! Input: `[flags, seed, body…]`. `flags & 3` picks the buffer cap (1 MiB,
//! or a small one so `TooLarge` is reached); `seed` picks the chunkings.
//!
//! Checks: no panic; after every successful `feed` the framer holds at most
//! the cap; after an error or a successful `finish` it holds nothing and an
//! error is sticky; the events and the error are the same whatever the
//! chunking (whole, split in two, PRNG-sized chunks, one byte at a time);
//! with the large cap, they equal those of a straightforward whole-input
//! reference parser of the WHATWG rules.

use crate::common::{chunkings, header};
use llm_gateway::wire::sse::{SseError, SseEvent, SseFramer};

const CAPS: [usize; 4] = [1 << 20, 16, 64, 300];

type Outcome = (Vec<SseEvent>, Option<SseError>);

pub fn sse_framer(data: &[u8]) {
    let ([flags, seed], body) = header::<2>(data);
    let cap = CAPS[usize::from(flags & 3)];
    let whole = run(cap, &[body]);
    for plan in chunkings(body, seed) {
        let got = run(cap, &plan);
        assert_eq!(
            got, whole,
            "cap {cap}: chunking {plan:?} differs from the whole body"
        );
    }
    if body.len() < cap {
        assert_eq!(
            whole,
            reference(body),
            "cap {cap}: differs from the reference parser"
        );
    }
}

fn run(cap: usize, chunks: &[&[u8]]) -> Outcome {
    let mut framer = SseFramer::new(cap);
    let mut out = Vec::new();
    for chunk in chunks {
        if let Err(e) = framer.feed(chunk, &mut out) {
            return failed(&mut framer, out, e);
        }
        assert!(
            framer.buffered() <= cap,
            "holds {} bytes, over the cap {cap}",
            framer.buffered()
        );
    }
    match framer.finish(&mut out) {
        Ok(()) => {
            assert_eq!(framer.buffered(), 0, "finish left bytes held");
            (out, None)
        }
        Err(e) => failed(&mut framer, out, e),
    }
}

fn failed(framer: &mut SseFramer, out: Vec<SseEvent>, e: SseError) -> Outcome {
    assert_eq!(framer.buffered(), 0, "a failed framer still holds bytes");
    let mut more = Vec::new();
    assert_eq!(framer.feed(b"data: x\n\n", &mut more), Err(e.clone()));
    assert_eq!(framer.finish(&mut more), Err(e.clone()));
    assert!(more.is_empty(), "a failed framer still yields events");
    // The message renders.
    assert!(!e.to_string().is_empty());
    (out, Some(e))
}

/// The WHATWG event-stream interpretation of a whole body: lines end at CRLF,
/// LF or CR; a BOM is skipped at the start; a blank line dispatches; at the
/// end an unterminated line is processed and a pending event with data is
/// dispatched (the framer's documented leniency).
fn reference(body: &[u8]) -> Outcome {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut rest = body;
    loop {
        match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            None => {
                if !rest.is_empty() {
                    lines.push(rest);
                }
                break;
            }
            Some(p) => {
                lines.push(&rest[..p]);
                let skip = if rest[p] == b'\r' && rest.get(p + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[p + skip..];
            }
        }
    }
    let mut out = Vec::new();
    let (mut event, mut data, mut has_data, mut id) = (None, String::new(), false, None);
    for (i, line) in lines.iter().enumerate() {
        let Ok(mut line) = std::str::from_utf8(line) else {
            return (out, Some(SseError::InvalidUtf8));
        };
        if i == 0 {
            line = line.strip_prefix('\u{FEFF}').unwrap_or(line);
        }
        if line.is_empty() {
            if has_data {
                out.push(SseEvent {
                    event: event.take(),
                    data: std::mem::take(&mut data),
                    id: id.take(),
                });
            }
            (event, data, has_data, id) = (None, String::new(), false, None);
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "event" => event = (!value.is_empty()).then(|| value.to_string()),
            "data" => {
                if has_data {
                    data.push('\n');
                }
                data.push_str(value);
                has_data = true;
            }
            "id" if !value.contains('\0') => id = Some(value.to_string()),
            _ => {}
        }
    }
    if has_data {
        out.push(SseEvent { event, data, id });
    }
    (out, None)
}
