//! `stream_anthropic`, `stream_bedrock`, `stream_ernie`, `stream_gemini`,
//! `stream_openai`: a provider's stream (SSE; AWS event-stream for Bedrock) translated by `llm_gateway::wire::stream::StreamTranslation`, with
//! the provider's `Translator::stream_decoder` and framing (Anthropic,
//! Bedrock, Gemini, or the
//! OpenAI Chat Completions egress every OpenAI-compatible type uses), into
//! each client API's stream (`Wire::writer` of OpenAI Chat, Anthropic
//! Messages and Responses).
//!
//! Input: `[flags, seed, body…]`: `flags & 1` is `include_usage` (OpenAI
//! Chat clients only); `seed` picks the chunkings; `body` is the upstream
//! response body.
//!
//! Checks: no panic; for every client wire the output is a well-formed
//! stream of that wire (`common::check_openai_stream`,
//! `check_anthropic_stream`, `check_responses_stream`) that ends in its end
//! marker or in one error event, consistent with `failed()`; the usage
//! accounted is the same whichever client wire; a stream that ended well
//! for every client tells each the same answer (choice 0's text, reasoning
//! and tool calls with their ids, names and arguments, as each client's SDK
//! would assemble them); the output bytes,
//! `failed()` and `usage()` do not depend on how the body was chunked (each
//! chunking is run through one of the wires in turn, picked by `seed`).
//! Gemini's: the typed chunk pass, where it answers, gives the events and
//! state of the tree path alone.

use crate::common::{
    check_anthropic_stream, check_openai_stream, check_responses_stream, chunkings, header,
    StreamEnd,
};
use llm_gateway::wire::anthropic::Anthropic;
use llm_gateway::wire::bedrock::Bedrock;
use llm_gateway::wire::ernie::Ernie;
use llm_gateway::wire::gemini::{Gemini, GeminiStream};
use llm_gateway::wire::hub::{ResponseContext, StreamDecoder, Translator, Usage};
use llm_gateway::wire::openai::egress::OpenAiChat;
use llm_gateway::wire::sse::SseFramer;
use llm_gateway::wire::stream::StreamTranslation;
use llm_gateway::wire::Wire;
use serde_json::Value;

/// The client wires a translated stream is written in.
const CLIENT_WIRES: [Wire; 3] = [Wire::OpenAiChat, Wire::Anthropic, Wire::OpenAiResponses];

pub fn stream_anthropic(data: &[u8]) {
    check(&Anthropic::default(), data);
}

pub fn stream_bedrock(data: &[u8]) {
    check(&Bedrock, data);
}

pub fn stream_ernie(data: &[u8]) {
    check(&Ernie, data);
}

pub fn stream_gemini(data: &[u8]) {
    check(&Gemini, data);
    gemini_typed_pass(data);
}

/// Gemini's events read with the typed chunk pass where it answers give
/// the events, state and end of the tree path alone.
fn gemini_typed_pass(data: &[u8]) {
    let (_, body) = header::<2>(data);
    let mut events = Vec::new();
    let mut framer = SseFramer::new(1 << 20);
    if framer.feed(body, &mut events).is_err() || framer.finish(&mut events).is_err() {
        return;
    }
    let ctx = ResponseContext {
        model: "gemini-2.5-flash".into(),
        created: 1,
        request_id: "fuzz".into(),
        input_tokens_estimate: 0,
    };
    let (mut typed, mut tree) = (GeminiStream::new(&ctx), GeminiStream::new(&ctx));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for ev in &events {
        let data = ev.data.trim();
        if data.is_empty() {
            continue;
        }
        if !typed.on_chunk_typed(data, &mut a) {
            typed.on_chunk_tree(data, &mut a);
        }
        tree.on_chunk_tree(data, &mut b);
        assert_eq!(
            format!("{a:?}"),
            format!("{b:?}"),
            "typed chunk pass: other events"
        );
        assert_eq!(
            format!("{typed:?}"),
            format!("{tree:?}"),
            "typed chunk pass: other state"
        );
    }
    typed.finish(&mut a);
    tree.finish(&mut b);
    assert_eq!(
        format!("{a:?}"),
        format!("{b:?}"),
        "typed chunk pass: other end"
    );
}

pub fn stream_openai(data: &[u8]) {
    check(&OpenAiChat::default(), data);
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

fn run(t: &dyn Translator, wire: Wire, include_usage: bool, chunks: &[&[u8]]) -> Outcome {
    let ctx = ctx();
    let mut st = StreamTranslation::new(t.stream_decoder(&ctx), wire.writer(&ctx, include_usage))
        .with_framing(t.framing());
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

/// The error the Anthropic writer raises itself (not a provider error, so
/// `failed()` does not know it): arguments for a tool call whose block is
/// already closed cannot be placed in an Anthropic stream.
fn anthropic_writer_error(out: &[u8]) -> bool {
    let text = String::from_utf8_lossy(out);
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    last.starts_with("event: error\n")
        && last.contains(
            "after another block had started; the Anthropic stream format cannot carry them",
        )
}

/// The whole-body run for one client wire, checked.
fn whole(t: &dyn Translator, wire: Wire, include_usage: bool, body: &[u8]) -> Outcome {
    let got = run(t, wire, include_usage, &[body]);
    match wire {
        Wire::Anthropic => {
            let end = check_anthropic_stream(&got.out);
            // An Anthropic client's stream may already be complete
            // (`message_stop` goes out once both the finish and the usage
            // are known) when the provider's stream fails later: then
            // `failed()` is set and the client saw a whole message.
            if end == StreamEnd::Error {
                assert!(
                    got.failed || anthropic_writer_error(&got.out),
                    "{wire:?}: an error event but failed() is false: {:?}",
                    String::from_utf8_lossy(&got.out)
                );
            }
        }
        Wire::OpenAiResponses => {
            let end = check_responses_stream(&got.out);
            assert_eq!(
                end == StreamEnd::Error,
                got.failed,
                "{wire:?}: failed() disagrees with the stream's last frame: {:?}",
                String::from_utf8_lossy(&got.out)
            );
        }
        Wire::OpenAiChat | Wire::Gemini | Wire::Bedrock | Wire::Ernie => {
            let end = check_openai_stream(&got.out);
            assert_eq!(
                end == StreamEnd::Error,
                got.failed,
                "{wire:?}: failed() disagrees with the stream's last frame"
            );
        }
    }
    got
}

fn check(t: &dyn Translator, data: &[u8]) {
    let ([flags, seed], body) = header::<2>(data);
    let include_usage = flags & 1 == 1;
    let wholes: Vec<Outcome> = CLIENT_WIRES
        .iter()
        .map(|&wire| whole(t, wire, include_usage, body))
        .collect();
    let failed = wholes[0].failed;
    for (wire, w) in CLIENT_WIRES.iter().zip(&wholes) {
        assert_eq!(
            w.failed, failed,
            "{wire:?}: failed() depends on the client wire"
        );
        assert_eq!(
            w.usage, wholes[0].usage,
            "{wire:?}: the usage accounted depends on the client wire"
        );
    }
    same_answer(&wholes);
    for (k, plan) in chunkings(body, seed).into_iter().enumerate() {
        let i = (usize::from(seed) + k) % CLIENT_WIRES.len();
        let wire = CLIENT_WIRES[i];
        let got = run(t, wire, include_usage, &plan);
        let want = &wholes[i];
        if got != *want {
            panic!(
                "{wire:?}: chunking {plan:?} changes the output:\nwhole:   {:?} failed={} usage={:?}\nchunked: {:?} failed={} usage={:?}",
                String::from_utf8_lossy(&want.out),
                want.failed,
                want.usage,
                String::from_utf8_lossy(&got.out),
                got.failed,
                got.usage
            );
        }
    }
}

/// What a client assembles from a stream: choice 0's text, reasoning, and
/// tool calls `(id, name, arguments)` in the order they started.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    text: String,
    reasoning: String,
    calls: Vec<(String, String, String)>,
}

fn data_lines(out: &[u8]) -> impl Iterator<Item = Value> + '_ {
    std::str::from_utf8(out)
        .unwrap_or_default()
        .split("\n\n")
        .filter_map(|f| f.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter_map(|d| serde_json::from_str(d).ok())
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// As the OpenAI SDKs accumulate chunks: tool calls by their `index`.
fn openai_answer(out: &[u8]) -> Answer {
    let mut a = Answer::default();
    let mut by_index: Vec<u64> = Vec::new();
    for v in data_lines(out) {
        let Some(choices) = v["choices"].as_array() else {
            continue;
        };
        for c in choices.iter().filter(|c| c["index"] == 0) {
            let d = &c["delta"];
            a.text.push_str(str_of(&d["content"]));
            a.reasoning.push_str(str_of(&d["reasoning_content"]));
            for t in d["tool_calls"].as_array().into_iter().flatten() {
                let index = t["index"]
                    .as_u64()
                    .expect("a tool call delta without index");
                let at = match by_index.iter().position(|i| *i == index) {
                    Some(at) => at,
                    None => {
                        by_index.push(index);
                        a.calls.push(Default::default());
                        a.calls.len() - 1
                    }
                };
                let call = &mut a.calls[at];
                if call.0.is_empty() {
                    call.0 = str_of(&t["id"]).to_string();
                }
                if call.1.is_empty() {
                    call.1 = str_of(&t["function"]["name"]).to_string();
                }
                call.2.push_str(str_of(&t["function"]["arguments"]));
            }
        }
    }
    a
}

/// As the Anthropic SDKs accumulate content blocks.
fn anthropic_answer(out: &[u8]) -> Answer {
    let mut a = Answer::default();
    for v in data_lines(out) {
        match str_of(&v["type"]) {
            "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                let b = &v["content_block"];
                a.calls.push((
                    str_of(&b["id"]).into(),
                    str_of(&b["name"]).into(),
                    String::new(),
                ));
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match str_of(&d["type"]) {
                    "text_delta" => a.text.push_str(str_of(&d["text"])),
                    "thinking_delta" => a.reasoning.push_str(str_of(&d["thinking"])),
                    "input_json_delta" => {
                        if let Some(call) = a.calls.last_mut() {
                            call.2.push_str(str_of(&d["partial_json"]));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    a
}

/// The final response of a Responses stream (what `response.output_text`
/// and the SDK's `get_final_response` read).
fn responses_answer(out: &[u8]) -> Answer {
    let mut a = Answer::default();
    let Some(r) = data_lines(out)
        .filter(|v| str_of(&v["type"]).starts_with("response."))
        .last()
    else {
        return a;
    };
    for item in r["response"]["output"].as_array().into_iter().flatten() {
        match str_of(&item["type"]) {
            "message" => a.text.push_str(str_of(&item["content"][0]["text"])),
            "reasoning" => a.reasoning.push_str(str_of(&item["summary"][0]["text"])),
            "function_call" => a.calls.push((
                str_of(&item["call_id"]).into(),
                str_of(&item["name"]).into(),
                str_of(&item["arguments"]).into(),
            )),
            _ => {}
        }
    }
    a
}

/// A stream that ended well for every client (no error event anywhere)
/// gives every client the same answer.
fn same_answer(wholes: &[Outcome]) {
    if wholes.iter().any(|w| w.failed) || anthropic_writer_error(&wholes[1].out) {
        return;
    }
    let openai = openai_answer(&wholes[0].out);
    let anthropic = anthropic_answer(&wholes[1].out);
    let responses = responses_answer(&wholes[2].out);
    assert_eq!(
        responses, openai,
        "Responses and OpenAI clients get different answers"
    );
    // An Anthropic client's message ends (`message_stop`) as soon as the
    // finish and the usage are known: content the provider sends after
    // both is not in it (the other clients get it). So the Anthropic
    // answer is the others' up to some point.
    assert!(
        anthropic.is_prefix_of(&openai),
        "the Anthropic client's answer is not the OpenAI client's up to a point:\nAnthropic: {anthropic:?}\nOpenAI:    {openai:?}"
    );
}

impl Answer {
    /// Each channel of `self` is the start of `other`'s: the texts, and
    /// every call's id, name and the start of its arguments. Not only the
    /// last call's arguments may grow: OpenAI streams interleave argument
    /// deltas of parallel calls by index, so what a provider sends after
    /// the point where the Anthropic message ended can extend an earlier
    /// call (found by the 10 M campaign: a `{}` for the first call after
    /// the second started, past the finish).
    fn is_prefix_of(&self, other: &Answer) -> bool {
        other.text.starts_with(&self.text)
            && other.reasoning.starts_with(&self.reasoning)
            && self.calls.len() <= other.calls.len()
            && self.calls.iter().zip(&other.calls).all(|(mine, theirs)| {
                mine.0 == theirs.0 && mine.1 == theirs.1 && theirs.2.starts_with(&mine.2)
            })
    }
}
