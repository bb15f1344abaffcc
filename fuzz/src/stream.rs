//! `stream_anthropic`, `stream_gemini`: a provider's SSE stream translated to
//! OpenAI chunks by `llm_gateway::wire::stream::StreamTranslation`, with the
//! provider's `Translator::stream_decoder`.
//!
//! Input: `[flags, seed, body…]`: `flags & 1` is `include_usage`; `seed`
//! picks the chunkings; `body` is the upstream response body.
//!
//! Checks: no panic; the output is a valid OpenAI chunk stream that ends in
//! one `[DONE]` or one error frame (see `common::check_openai_stream`),
//! consistent with `failed()`; the output bytes, `failed()` and `usage()`
//! do not depend on how the body was chunked.

use crate::common::{check_openai_stream, chunkings, header, StreamEnd};
use llm_gateway::wire::anthropic::Anthropic;
use llm_gateway::wire::gemini::Gemini;
use llm_gateway::wire::hub::{ResponseContext, Translator, Usage};
use llm_gateway::wire::openai::render::ChunkWriter;
use llm_gateway::wire::stream::StreamTranslation;

pub fn stream_anthropic(data: &[u8]) {
    check(&Anthropic::default(), data);
}

pub fn stream_gemini(data: &[u8]) {
    check(&Gemini, data);
}

pub(crate) fn ctx() -> ResponseContext {
    ResponseContext {
        model: "fuzz-model".into(),
        created: 1_700_000_000,
        request_id: "req-fuzz".into(),
        input_tokens_estimate: 0,
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    out: Vec<u8>,
    failed: bool,
    usage: Option<Usage>,
}

fn run(t: &dyn Translator, include_usage: bool, chunks: &[&[u8]]) -> Outcome {
    let ctx = ctx();
    let mut st = StreamTranslation::new(
        t.stream_decoder(&ctx),
        Box::new(ChunkWriter::new(&ctx, include_usage)),
    );
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(st.feed(chunk));
    }
    out.extend(st.finish());
    Outcome {
        out,
        failed: st.failed(),
        usage: st.usage(),
    }
}

fn check(t: &dyn Translator, data: &[u8]) {
    let ([flags, seed], body) = header::<2>(data);
    let include_usage = flags & 1 == 1;
    let whole = run(t, include_usage, &[body]);
    let end = check_openai_stream(&whole.out);
    assert_eq!(
        end == StreamEnd::Error,
        whole.failed,
        "failed() disagrees with the stream's last frame"
    );
    for plan in chunkings(body, seed) {
        let got = run(t, include_usage, &plan);
        if got != whole {
            panic!(
                "chunking {plan:?} changes the output:\nwhole:   {:?} failed={} usage={:?}\nchunked: {:?} failed={} usage={:?}",
                String::from_utf8_lossy(&whole.out),
                whole.failed,
                whole.usage,
                String::from_utf8_lossy(&got.out),
                got.failed,
                got.usage
            );
        }
    }
}
