//! Native benchmark of one whole request through the filter's core
//! (`StreamFlow`): request headers and body, response headers and body, and
//! the end-of-stream bookkeeping, over a host whose calls cost nothing. It
//! counts the core's own work per request; `make profile` runs it under
//! callgrind to show where that work goes.
//!
//! `cargo bench --bench flow [-- --quick] [-- --only <scenario>]`

use llm_gateway::config::{compile, Gateway, PluginConfig};
use llm_gateway::flow::StreamFlow;
use llm_gateway::testing::RecordingHost;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

/// The config `make bench` renders (no access log, so no log fields).
const CONFIG: &str = r#"{"providers":[
 {"name":"mock_openai","type":"openai","base_url":"http://127.0.0.1:1/v1","api_key":"sk-up"},
 {"name":"mock_anthropic","type":"anthropic","base_url":"http://127.0.0.1:1/v1","api_key":"sk-up"},
 {"name":"mock_gemini","type":"gemini","base_url":"http://127.0.0.1:1/v1beta","api_key":"sk-up"}],
 "models":[
 {"name":"bench-openai","targets":[{"provider":"mock_openai","model":"gpt-4o-mini","weight":1,"priority":0}]},
 {"name":"bench-anthropic","targets":[{"provider":"mock_anthropic","model":"claude-sonnet-4-5","max_tokens":1024,"weight":1,"priority":0}]},
 {"name":"bench-gemini","targets":[{"provider":"mock_gemini","model":"gemini-2.5-flash","weight":1,"priority":0}]}],
 "limits":{"max_request_body_bytes":4194304},"log_fields":false}"#;

const OPENAI_RESPONSE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30}}"#;
const ANTHROPIC_RESPONSE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello! How can I help you today?"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":21,"output_tokens":9}}"#;
const GEMINI_RESPONSE: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello! How can I help you today?"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":21,"candidatesTokenCount":9,"totalTokenCount":30},"modelVersion":"gemini-2.5-flash","responseId":"mock-response-1"}"#;

/// The shared in-memory host, its clock a counter, its metrics dropped
/// after each request.
fn bench_host() -> RecordingHost {
    RecordingHost {
        client_address: Some("127.0.0.1".into()),
        clock_ns: Cell::new(0),
        clock_step_ns: 1_000,
        ..RecordingHost::default()
    }
}

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Scenario {
    name: &'static str,
    /// The client API's path.
    path: &'static str,
    model: &'static str,
    response: &'static str,
}

/// The request body for a client API's path.
fn request_body(path: &str, model: &str) -> String {
    let system = "You are a helpful assistant.";
    let user = "Say hello in one short sentence.";
    match path {
        "/v1/messages" => format!(
            r#"{{"model":"{model}","max_tokens":256,"system":"{system}","messages":[{{"role":"user","content":"{user}"}}]}}"#
        ),
        "/v1/responses" => {
            format!(r#"{{"model":"{model}","instructions":"{system}","input":"{user}"}}"#)
        }
        _ => format!(
            r#"{{"model":"{model}","messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"{user}"}}]}}"#
        ),
    }
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "openai passthrough (non-stream)",
        path: "/v1/chat/completions",
        model: "bench-openai",
        response: OPENAI_RESPONSE,
    },
    Scenario {
        name: "openai to anthropic (non-stream)",
        path: "/v1/chat/completions",
        model: "bench-anthropic",
        response: ANTHROPIC_RESPONSE,
    },
    Scenario {
        name: "openai to gemini (non-stream)",
        path: "/v1/chat/completions",
        model: "bench-gemini",
        response: GEMINI_RESPONSE,
    },
    Scenario {
        name: "messages passthrough (non-stream)",
        path: "/v1/messages",
        model: "bench-anthropic",
        response: ANTHROPIC_RESPONSE,
    },
    Scenario {
        name: "messages to openai (non-stream)",
        path: "/v1/messages",
        model: "bench-openai",
        response: OPENAI_RESPONSE,
    },
    Scenario {
        name: "responses to anthropic (non-stream)",
        path: "/v1/responses",
        model: "bench-anthropic",
        response: ANTHROPIC_RESPONSE,
    },
];

/// One request and its response through a fresh `StreamFlow`, as Envoy
/// drives the filter; returns the host calls the flow made.
fn one_request(gw: &Rc<Gateway>, host: &mut RecordingHost, s: &Scenario, seed: u64) -> u64 {
    let body = request_body(s.path, s.model);
    host.calls.set(0);
    host.metrics.clear();
    host.request_headers = headers(&[
        (":method", "POST"),
        (":path", s.path),
        (":authority", "127.0.0.1:10000"),
        ("content-type", "application/json"),
        ("content-length", &body.len().to_string()),
        ("user-agent", "wrk"),
    ]);
    host.request_body = body.into_bytes();
    let mut flow = StreamFlow::new(Rc::clone(gw), seed);
    black_box(flow.on_request_headers(host, false));
    let len = host.request_body.len();
    black_box(flow.on_request_body(host, len, true));
    host.response_headers = headers(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-length", &s.response.len().to_string()),
    ]);
    host.response_body = s.response.as_bytes().to_vec();
    black_box(flow.on_response_headers(host, false));
    black_box(flow.on_response_body(host, s.response.len(), true));
    flow.on_log(host);
    host.calls.get()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let iters: u32 = if quick { 2_000 } else { 50_000 };
    let config = match PluginConfig::from_json(CONFIG.as_bytes()) {
        Ok(c) => c,
        Err(e) => return eprintln!("bench config: {e}"),
    };
    let gw = match compile(&config, &|_| None) {
        Ok(g) => Rc::new(g),
        Err(e) => return eprintln!("bench config: {e}"),
    };
    println!("whole request through the filter core (native, host calls free):");
    for s in SCENARIOS {
        if only.is_some_and(|o| !s.name.contains(o.as_str())) {
            continue;
        }
        let mut host = bench_host();
        let calls = one_request(&gw, &mut host, s, 1);
        if let Some((status, _)) = &host.sent {
            return eprintln!("{}: answered {status} itself", s.name);
        }
        let mut samples: Vec<f64> = (0..5)
            .map(|b| {
                let start = Instant::now();
                for i in 0..iters {
                    one_request(&gw, &mut host, s, u64::from(i + b * iters));
                }
                start.elapsed().as_nanos() as f64 / f64::from(iters)
            })
            .collect();
        samples.sort_by(|a, b| a.total_cmp(b));
        println!(
            "  {:<36} {:>8.2} µs/request  ({calls} host calls)",
            s.name,
            samples[2] / 1000.0
        );
    }
}
