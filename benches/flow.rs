//! Native benchmark of one whole request through the filter's core
//! (`StreamFlow`): request headers and body, response headers and body, and
//! the end-of-stream bookkeeping, over a host whose calls cost nothing. It
//! counts the core's own work per request; `make profile` runs it under
//! callgrind to show where that work goes.
//!
//! `cargo bench --bench flow [-- --quick] [-- --only <scenario>]`

use llm_gateway::config::{compile, Gateway, PluginConfig};
use llm_gateway::flow::StreamFlow;
use llm_gateway::host::{Host, LogLevel, MetricOp, SharedStore, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

/// The config `make bench` renders (no access log, so no log fields).
const CONFIG: &str = r#"{"providers":[
 {"name":"mock_openai","type":"openai","base_url":"http://127.0.0.1:1/v1","api_key":"sk-up"},
 {"name":"mock_anthropic","type":"anthropic","base_url":"http://127.0.0.1:1/v1","api_key":"sk-up"}],
 "models":[
 {"name":"bench-openai","targets":[{"provider":"mock_openai","model":"gpt-4o-mini","weight":1,"priority":0}]},
 {"name":"bench-anthropic","targets":[{"provider":"mock_anthropic","model":"claude-sonnet-4-5","max_tokens":1024,"weight":1,"priority":0}]}],
 "limits":{"max_request_body_bytes":4194304},"log_fields":false}"#;

const OPENAI_RESPONSE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30}}"#;
const ANTHROPIC_RESPONSE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello! How can I help you today?"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":21,"output_tokens":9}}"#;

/// A host whose calls do no I/O: headers and bodies in memory, shared data
/// in a map, the clock a counter.
#[derive(Default)]
struct BenchHost {
    request_headers: Vec<(String, String)>,
    response_headers: Vec<(String, String)>,
    request_body: Vec<u8>,
    response_body: Vec<u8>,
    clock: Cell<u64>,
    store: BenchStore,
    calls: Cell<u64>,
}

#[derive(Default)]
struct BenchStore(RefCell<HashMap<String, (Vec<u8>, u32)>>);

impl SharedStore for BenchStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut map = self.0.borrow_mut();
        let next = match map.get(key) {
            Some((_, current)) if cas != 0 && cas != u32::MAX && *current != cas => {
                return Err(StoreError::CasMismatch)
            }
            Some((_, current)) => current.wrapping_add(1).max(1),
            None => 1,
        };
        map.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }
}

fn get(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    headers.retain(|(k, _)| k != name);
    if let Some(v) = value {
        headers.push((name.to_string(), v.to_string()));
    }
}

impl BenchHost {
    fn call(&self) {
        self.calls.set(self.calls.get() + 1);
    }
}

impl Host for BenchHost {
    fn request_header(&self, name: &str) -> Option<String> {
        self.call();
        get(&self.request_headers, name)
    }
    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        self.call();
        set(&mut self.request_headers, name, value)
    }
    fn request_body(&self, _len: usize) -> Option<Vec<u8>> {
        self.call();
        Some(self.request_body.clone())
    }
    fn set_request_body(&mut self, body: &[u8]) {
        self.call();
        self.request_body = body.to_vec();
    }
    fn clear_route_cache(&mut self) {
        self.call();
    }
    fn request_header_names(&self) -> Vec<String> {
        self.call();
        self.request_headers
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.call();
        get(&self.response_headers, name)
    }
    fn set_response_header(&mut self, name: &str, value: Option<&str>) {
        self.call();
        set(&mut self.response_headers, name, value)
    }
    fn response_body(&self, _len: usize) -> Option<Vec<u8>> {
        self.call();
        Some(self.response_body.clone())
    }
    fn set_response_body(&mut self, body: &[u8]) {
        self.call();
        self.response_body = body.to_vec();
    }
    fn send_response(&mut self, status: u16, _headers: &[(&str, &str)], _body: &[u8]) {
        self.call();
        self.response_headers = vec![(":status".into(), status.to_string())];
    }
    fn log(&self, _level: LogLevel, _message: &str) {
        self.call();
    }
    fn now_nanos(&self) -> u64 {
        self.call();
        self.clock.set(self.clock.get() + 1_000);
        self.clock.get()
    }
    fn metric(&mut self, op: &MetricOp) {
        self.call();
        black_box(op);
    }
    fn set_stream_value(&mut self, key: &str, value: &str) {
        self.call();
        black_box((key, value));
    }
    fn stream_value(&self, key: &str) -> Option<String> {
        self.call();
        black_box(key);
        None
    }
    fn client_address(&self) -> Option<String> {
        self.call();
        Some("127.0.0.1".into())
    }
    fn store(&self) -> &dyn SharedStore {
        self.call();
        &self.store
    }
    fn upstream_provider(&self) -> Option<String> {
        self.call();
        None
    }
    fn response_details(&self) -> Option<String> {
        self.call();
        None
    }
    fn response_code(&self) -> Option<u16> {
        self.call();
        None
    }
}

struct Scenario {
    name: &'static str,
    model: &'static str,
    response: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "openai passthrough (non-stream)",
        model: "bench-openai",
        response: OPENAI_RESPONSE,
    },
    Scenario {
        name: "openai to anthropic (non-stream)",
        model: "bench-anthropic",
        response: ANTHROPIC_RESPONSE,
    },
];

/// One request and its response through a fresh `StreamFlow`, as Envoy
/// drives the filter; returns the host calls the flow made.
fn one_request(gw: &Rc<Gateway>, host: &mut BenchHost, s: &Scenario, seed: u64) -> u64 {
    let body = format!(
        r#"{{"model":"{}","messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"Say hello in one short sentence."}}]}}"#,
        s.model
    );
    host.calls.set(0);
    host.request_headers = vec![
        (":method".into(), "POST".into()),
        (":path".into(), "/v1/chat/completions".into()),
        (":authority".into(), "127.0.0.1:10000".into()),
        ("content-type".into(), "application/json".into()),
        ("content-length".into(), body.len().to_string()),
        ("user-agent".into(), "wrk".into()),
    ];
    host.request_body = body.into_bytes();
    let mut flow = StreamFlow::new(Rc::clone(gw), seed);
    black_box(flow.on_request_headers(host, false));
    let len = host.request_body.len();
    black_box(flow.on_request_body(host, len, true));
    host.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
        ("content-length".into(), s.response.len().to_string()),
    ];
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
        let mut host = BenchHost::default();
        let calls = one_request(&gw, &mut host, s, 1);
        let status = get(&host.response_headers, ":status");
        if status.as_deref() != Some("200") {
            return eprintln!("{}: answered {status:?}", s.name);
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
