//! Native micro-benchmarks of the hot paths: request validation and
//! translation, and per-chunk stream translation. `make bench` runs them.
//! Plain `std::time` loops (no bench framework dependency); each figure is
//! the median of several timed batches.

mod common;

use common::time;
use llm_gateway::providers::{type_spec, Operation};
use llm_gateway::secrets::signature::{canonical, sign, verify};
use llm_gateway::wire::anthropic::Anthropic;
use llm_gateway::wire::hub::{ResponseContext, Translator};
use llm_gateway::wire::openai::render::ChunkWriter;
use llm_gateway::wire::openai::splice::with_model;
use llm_gateway::wire::openai::{parse_request, to_hub};
use llm_gateway::wire::pass_stream::PassStream;
use llm_gateway::wire::stream::StreamTranslation;
use llm_gateway::wire::{Api, Wire};
use std::hint::black_box;

const REQUEST: &str = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},
"temperature":0.7,"max_tokens":512,
"messages":[{"role":"system","content":"You are a helpful assistant that answers briefly and precisely."},
{"role":"user","content":"What is the capital of France? Please also tell me its population and one landmark."},
{"role":"assistant","content":"Paris. About 2.1 million people live in the city proper; the Eiffel Tower is its best-known landmark."},
{"role":"user","content":"And what is the weather like there in spring? Use the tool if you need to."}],
"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather for a city",
"parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}}}]}"#;

/// The same conversation as an Anthropic Messages request.
const MESSAGES_REQUEST: &str = r#"{"model":"claude-sonnet-4-5","stream":true,"temperature":0.7,"max_tokens":512,
"system":"You are a helpful assistant that answers briefly and precisely.",
"messages":[{"role":"user","content":"What is the capital of France? Please also tell me its population and one landmark."},
{"role":"assistant","content":"Paris. About 2.1 million people live in the city proper; the Eiffel Tower is its best-known landmark."},
{"role":"user","content":"And what is the weather like there in spring? Use the tool if you need to."}],
"tools":[{"name":"get_weather","description":"Current weather for a city",
"input_schema":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}}]}"#;

/// The same conversation as an OpenAI Responses request.
const RESPONSES_REQUEST: &str = r#"{"model":"gpt-4o-mini","stream":true,"temperature":0.7,"max_output_tokens":512,
"instructions":"You are a helpful assistant that answers briefly and precisely.",
"input":[{"role":"user","content":"What is the capital of France? Please also tell me its population and one landmark."},
{"role":"assistant","content":"Paris. About 2.1 million people live in the city proper; the Eiffel Tower is its best-known landmark."},
{"role":"user","content":"And what is the weather like there in spring? Use the tool if you need to."}],
"tools":[{"type":"function","name":"get_weather","description":"Current weather for a city",
"parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}}]}"#;

fn anthropic_stream(deltas: usize) -> Vec<Vec<u8>> {
    let mut events = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":42,\"output_tokens\":1}}}\n\n".to_string(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string(),
    ];
    for i in 0..deltas {
        events.push(format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"token{i} \"}}}}\n\n"));
    }
    events.push(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".into(),
    );
    events.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":200}}\n\n".into());
    events.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into());
    events.into_iter().map(String::into_bytes).collect()
}

fn openai_stream(deltas: usize) -> Vec<Vec<u8>> {
    let chunk = |delta: &str, finish: &str| {
        format!("data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n")
    };
    let mut events = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for i in 0..deltas {
        events.push(chunk(&format!(r#"{{"content":"token{i} "}}"#), "null"));
    }
    events.push(chunk("{}", r#""stop""#));
    events.push("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":42,\"completion_tokens\":200,\"total_tokens\":242}}\n\n".into());
    events.push("data: [DONE]\n\n".into());
    events.into_iter().map(String::into_bytes).collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (iters, batches) = if quick { (200, 3) } else { (5_000, 9) };
    let ctx = ResponseContext {
        model: "claude-sonnet-4-5".into(),
        created: 1,
        request_id: "bench".into(),
        input_tokens_estimate: 0,
    };
    let anthropic = Anthropic::default();

    println!("| path | per call | throughput |");
    println!("|---|---:|---:|");
    let bytes = REQUEST.len() as f64;
    let report = |name: &str, ns: f64, bytes: f64| {
        println!(
            "| {name} | {:.2} µs | {:.0} MB/s |",
            ns / 1000.0,
            bytes / ns * 1000.0
        );
    };

    // A signed request (`replay::admit` without the shared-data write): the
    // canonical text with the body's SHA-256, the HMAC, the comparison.
    let signature = sign(
        b"signing-secret",
        canonical(
            "POST",
            "/v1/chat/completions",
            "1800000000",
            "nonce-0123456789abcdef",
            REQUEST.as_bytes(),
        )
        .as_bytes(),
    );
    let ns = time(iters, batches, || {
        let message = canonical(
            "POST",
            "/v1/chat/completions",
            "1800000000",
            "nonce-0123456789abcdef",
            black_box(REQUEST.as_bytes()),
        );
        assert!(verify(
            b"signing-secret",
            message.as_bytes(),
            black_box(&signature)
        ));
    });
    report(
        "Request signature: verify HMAC-SHA256 (1.3 KB body)",
        ns,
        bytes,
    );

    let ns = time(iters, batches, || {
        // What passthrough does: the quick check, then the model spliced in.
        let mut r = llm_gateway::wire::Api::ChatCompletions
            .parse(black_box(REQUEST.as_bytes()).to_vec())
            .unwrap_or_else(|e| panic!("{e:?}"));
        black_box(with_model(&mut r, "gpt-4o-mini-2024-07-18"));
    });
    report(
        "OpenAI passthrough: validate + rename model (1.3 KB request)",
        ns,
        bytes,
    );

    let ns = time(iters, batches, || {
        let r = parse_request(Operation::ChatCompletions, black_box(REQUEST.as_bytes()))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let hub =
            to_hub::chat_request(r.body(), "claude-sonnet-4-5").unwrap_or_else(|e| panic!("{e:?}"));
        black_box(
            anthropic
                .encode_request(&hub)
                .unwrap_or_else(|e| panic!("{e:?}")),
        );
    });
    report(
        "OpenAI → Anthropic request: validate + hub + encode",
        ns,
        bytes,
    );

    let events = anthropic_stream(200);
    let stream_bytes: usize = events.iter().map(Vec::len).sum();
    let n_events = events.len() as f64;
    let ns = time(iters / 50 + 1, batches, || {
        let mut st = StreamTranslation::new(
            anthropic.stream_decoder(&ctx),
            Box::new(ChunkWriter::new(&ctx, true)),
        );
        for e in &events {
            black_box(st.feed(e));
        }
        black_box(st.finish());
    });
    println!(
        "| Anthropic → OpenAI stream, one event per chunk ({} events) | {:.2} µs/chunk | {:.0} MB/s |",
        events.len(),
        ns / n_events / 1000.0,
        stream_bytes as f64 / ns * 1000.0
    );

    let whole: Vec<u8> = events.concat();
    let ns = time(iters / 50 + 1, batches, || {
        let mut st = StreamTranslation::new(
            anthropic.stream_decoder(&ctx),
            Box::new(ChunkWriter::new(&ctx, true)),
        );
        for piece in whole.chunks(7) {
            black_box(st.feed(piece));
        }
        black_box(st.finish());
    });
    println!(
        "| Anthropic → OpenAI stream, 7-byte chunks | {:.2} µs/event | {:.0} MB/s |",
        ns / n_events / 1000.0,
        stream_bytes as f64 / ns * 1000.0
    );

    // Bedrock: the Converse body, then its SigV4 signature (per request).
    let bedrock = type_spec("bedrock")
        .map(|t| t.translator("", None))
        .unwrap_or_else(|| panic!("bedrock type"));
    let signer = llm_gateway::providers::aws::AwsSigner {
        region: "us-east-1".into(),
        credentials: llm_gateway::providers::sigv4::Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
                .to_string()
                .into(),
            session_token: None,
        },
    };
    let ns = time(iters, batches, || {
        let r = parse_request(Operation::ChatCompletions, black_box(REQUEST.as_bytes()))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let hub = to_hub::chat_request(r.body(), "anthropic.claude-sonnet-4-20250514-v1:0")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let body = bedrock
            .encode_request(&hub)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let path = bedrock.path(Operation::ChatCompletions, "", &hub.model, true);
        black_box(signer.headers(
            "bedrock-runtime.us-east-1.amazonaws.com",
            &path,
            "application/json",
            &body,
            1_700_000_000,
        ));
    });
    report(
        "OpenAI Chat → Bedrock Converse request: validate + hub + encode + SigV4",
        ns,
        REQUEST.len() as f64,
    );

    let deepseek = type_spec("deepseek")
        .map(|t| t.translator("", None))
        .unwrap_or_else(|| panic!("deepseek type"));
    let ns = time(iters, batches, || {
        let r = Api::Messages
            .parse(black_box(MESSAGES_REQUEST.as_bytes()).to_vec())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let hub = Api::Messages
            .to_hub(r.body(), "deepseek-chat")
            .unwrap_or_else(|e| panic!("{e:?}"));
        black_box(
            deepseek
                .encode_request(&hub)
                .unwrap_or_else(|e| panic!("{e:?}")),
        );
    });
    report(
        "Anthropic Messages → OpenAI-compatible request: validate + hub + encode",
        ns,
        MESSAGES_REQUEST.len() as f64,
    );

    let ns = time(iters, batches, || {
        let r = Api::Responses
            .parse(black_box(RESPONSES_REQUEST.as_bytes()).to_vec())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let hub = Api::Responses
            .to_hub(r.body(), "claude-sonnet-4-5")
            .unwrap_or_else(|e| panic!("{e:?}"));
        black_box(
            anthropic
                .encode_request(&hub)
                .unwrap_or_else(|e| panic!("{e:?}")),
        );
    });
    report(
        "OpenAI Responses → Anthropic request: validate + hub + encode",
        ns,
        RESPONSES_REQUEST.len() as f64,
    );

    let events = openai_stream(200);
    let stream_bytes: usize = events.iter().map(Vec::len).sum();
    let n_events = events.len() as f64;
    // Passthrough: every event framed, its JSON checked, usage and end noticed.
    let ns = time(iters / 50 + 1, batches, || {
        let mut pass = PassStream::new(Wire::OpenAiChat.watcher());
        for e in &events {
            black_box(pass.feed(e));
        }
        black_box(pass.finish());
    });
    println!(
        "| OpenAI-compatible stream passed through (checked), one event per chunk ({} events) | {:.2} µs/chunk | {:.0} MB/s |",
        events.len(),
        ns / n_events / 1000.0,
        stream_bytes as f64 / ns * 1000.0
    );
    for (name, wire) in [
        ("Anthropic events", Wire::Anthropic),
        ("Responses events", Wire::OpenAiResponses),
    ] {
        let ns = time(iters / 50 + 1, batches, || {
            let mut st =
                StreamTranslation::new(deepseek.stream_decoder(&ctx), wire.writer(&ctx, true));
            for e in &events {
                black_box(st.feed(e));
            }
            black_box(st.finish());
        });
        println!(
            "| OpenAI-compatible stream → {name}, one event per chunk ({} events) | {:.2} µs/chunk | {:.0} MB/s |",
            events.len(),
            ns / n_events / 1000.0,
            stream_bytes as f64 / ns * 1000.0
        );
    }
}
