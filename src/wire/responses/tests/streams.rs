//! Provider streams (the Anthropic and Gemini fixtures, through their
//! decoders) written as Responses streams: the same bytes at every split
//! of the upstream body, and the expected end.

use super::{ctx, frames};
use crate::wire::anthropic::Anthropic;
use crate::wire::gemini::Gemini;
use crate::wire::hub::Translator;
use crate::wire::responses::ResponsesWriter;
use crate::wire::stream::StreamTranslation;
use serde_json::{json, Value};

const EXPECTED: &str = include_str!("../../../../tests/fixtures/responses/streams.json");
const GEMINI_STREAMS: &str = include_str!("../../../../tests/fixtures/gemini/streams.json");

fn anthropic_sse(name: &str) -> &'static str {
    match name {
        "text.sse" => include_str!("../../../../tests/fixtures/anthropic/text.sse"),
        "tool_use.sse" => include_str!("../../../../tests/fixtures/anthropic/tool_use.sse"),
        "thinking.sse" => include_str!("../../../../tests/fixtures/anthropic/thinking.sse"),
        "error_midstream.sse" => {
            include_str!("../../../../tests/fixtures/anthropic/error_midstream.sse")
        }
        "cut.sse" => include_str!("../../../../tests/fixtures/anthropic/cut.sse"),
        "cut_mid_event.sse" => {
            include_str!("../../../../tests/fixtures/anthropic/cut_mid_event.sse")
        }
        "misc.sse" => include_str!("../../../../tests/fixtures/anthropic/misc.sse"),
        "malformed.sse" => include_str!("../../../../tests/fixtures/anthropic/malformed.sse"),
        "orphan_json_delta.sse" => {
            include_str!("../../../../tests/fixtures/anthropic/orphan_json_delta.sse")
        }
        other => panic!("no Anthropic stream fixture {other}"),
    }
}

/// Every Gemini stream case as (name, upstream body), built as the Gemini
/// tests build them.
fn gemini_bodies() -> Vec<(String, Vec<u8>)> {
    let Value::Array(cases) = serde_json::from_str(GEMINI_STREAMS).unwrap() else {
        panic!("gemini streams fixture is an array");
    };
    cases
        .iter()
        .map(|case| {
            let mut body = String::new();
            for ev in case["events"].as_array().unwrap() {
                let data = match ev {
                    Value::String(raw) => raw.clone(),
                    other => other.to_string(),
                };
                body.push_str("data: ");
                body.push_str(&data);
                body.push_str("\r\n\r\n");
            }
            if let Some(tail) = case.get("tail") {
                body.push_str(tail.as_str().unwrap());
            }
            (
                case["name"].as_str().unwrap().to_string(),
                body.into_bytes(),
            )
        })
        .collect()
}

fn all_bodies() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out: Vec<(&'static str, String, Vec<u8>)> = [
        "text.sse",
        "tool_use.sse",
        "thinking.sse",
        "error_midstream.sse",
        "cut.sse",
        "cut_mid_event.sse",
        "misc.sse",
        "malformed.sse",
        "orphan_json_delta.sse",
    ]
    .iter()
    .map(|n| {
        (
            "anthropic",
            n.to_string(),
            anthropic_sse(n).as_bytes().to_vec(),
        )
    })
    .collect();
    out.extend(gemini_bodies().into_iter().map(|(n, b)| ("gemini", n, b)));
    out
}

/// The upstream body in `chunks`, through the provider's decoder and the
/// Responses writer, as the flow runs a translated stream.
fn run<'a>(provider: &str, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let decoder = match provider {
        "anthropic" => Anthropic::default().stream_decoder(&ctx()),
        _ => Gemini.stream_decoder(&ctx()),
    };
    let mut t = StreamTranslation::new(decoder, Box::new(ResponsesWriter::new(&ctx())));
    let mut out = Vec::new();
    for c in chunks {
        out.extend(t.feed(c));
    }
    out.extend(t.finish());
    out
}

/// What a stream came to: its last event, model, output and usage (or
/// error).
fn summary(out: &[u8]) -> Value {
    let f = frames(out);
    for (i, (_, data)) in f.iter().enumerate() {
        assert_eq!(data["sequence_number"], i);
    }
    let (end, last) = f.last().unwrap();
    let model = f
        .first()
        .and_then(|(_, d)| d["response"]["model"].as_str())
        .unwrap_or_default();
    if end == "error" {
        assert!(
            last["error"].is_object(),
            "the nested error makes the SDK raise"
        );
        return json!({"end": end, "model": model,
                      "error": {"message": last["message"], "code": last["code"]}});
    }
    let output: Vec<Value> = last["response"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| match item["type"].as_str().unwrap() {
            "message" => json!(["message", item["content"][0]["text"]]),
            "reasoning" => json!(["reasoning", item["summary"][0]["text"]]),
            _ => json!([
                "function_call",
                item["call_id"],
                item["name"],
                item["arguments"]
            ]),
        })
        .collect();
    json!({"end": end, "model": model, "output": output, "usage": last["response"]["usage"]})
}

#[test]
fn fixture_streams_end_as_expected() {
    let Value::Array(expected) = serde_json::from_str(EXPECTED).unwrap() else {
        panic!("expected streams fixture is an array");
    };
    let bodies = all_bodies();
    for case in &expected {
        let (provider, source) = (case["provider"].as_str().unwrap(), &case["source"]);
        let (_, _, body) = bodies
            .iter()
            .find(|(p, n, _)| *p == provider && n == source)
            .unwrap();
        let mut want = case.clone();
        let want = want.as_object_mut().unwrap();
        want.remove("provider");
        want.remove("source");
        assert_eq!(
            summary(&run(provider, [body.as_slice()])),
            Value::Object(want.clone()),
            "{provider} {source}"
        );
    }
}

#[test]
fn identical_output_at_every_split() {
    for (provider, name, body) in all_bodies() {
        let whole = run(provider, [body.as_slice()]);
        summary(&whole);
        for k in 0..=body.len() {
            let (a, b) = body.split_at(k);
            assert_eq!(
                run(provider, [a, b]),
                whole,
                "{provider} {name}: split at {k}"
            );
        }
        assert_eq!(
            run(provider, body.chunks(1)),
            whole,
            "{provider} {name}: byte by byte"
        );
    }
}
