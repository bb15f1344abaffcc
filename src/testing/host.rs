//! A host that keeps what the flow did: headers, bodies, local replies,
//! metrics, stream values and shared data, all in memory.

use super::MemStore;
use crate::host::{Host, LogLevel, MetricOp, SharedStore};
use std::cell::Cell;
use std::collections::BTreeMap;

/// One HTTP stream's host, in memory. Fields are public so tests set the
/// request and read what the flow did.
pub struct RecordingHost {
    pub request_headers: BTreeMap<String, String>,
    pub request_body: Vec<u8>,
    pub response_headers: BTreeMap<String, String>,
    /// The response headers went on to the client: Envoy refuses (and the
    /// filter must never attempt) changes after that.
    pub response_headers_sent: bool,
    pub response_body: Vec<u8>,
    /// The local reply: status and body.
    pub sent: Option<(u16, Vec<u8>)>,
    pub metrics: Vec<MetricOp>,
    /// Envoy filter state (`wasm.<key>`): access-log fields and values the
    /// two placements of the filter hand each other.
    pub stream_values: BTreeMap<String, String>,
    pub store: MemStore,
    pub client_address: Option<String>,
    pub upstream_provider: Option<String>,
    pub shadow_listener: bool,
    pub response_details: Option<String>,
    pub response_code: Option<u16>,
    pub route_cleared: bool,
    /// What `now_nanos` returns; each call first adds `clock_step_ns`.
    pub clock_ns: Cell<u64>,
    pub clock_step_ns: u64,
    /// Times `now_nanos` was called (a hostcall each in Envoy, per callback).
    pub clock_reads: Cell<u32>,
    /// Host calls made, of any kind.
    pub calls: Cell<u64>,
    /// Every line logged, at any level.
    pub logs: std::cell::RefCell<Vec<String>>,
    /// Callouts sent: cluster, headers, body, timeout.
    pub callouts: Vec<Callout>,
    /// Callouts fail to send with this reason.
    pub callout_error: Option<String>,
    /// Times a held request was resumed.
    pub resumed: u32,
}

/// A callout the flow sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

impl Default for RecordingHost {
    fn default() -> Self {
        Self {
            request_headers: BTreeMap::new(),
            request_body: Vec::new(),
            response_headers: BTreeMap::new(),
            response_headers_sent: false,
            response_body: Vec::new(),
            sent: None,
            metrics: Vec::new(),
            stream_values: BTreeMap::new(),
            store: MemStore::default(),
            client_address: Some("192.0.2.7".into()),
            upstream_provider: None,
            shadow_listener: false,
            response_details: None,
            response_code: None,
            route_cleared: false,
            clock_ns: Cell::new(1_700_000_000_000_000_000),
            clock_step_ns: 0,
            clock_reads: Cell::new(0),
            calls: Cell::new(0),
            logs: Default::default(),
            callouts: Vec::new(),
            callout_error: None,
            resumed: 0,
        }
    }
}

impl RecordingHost {
    fn call(&self) {
        self.calls.set(self.calls.get() + 1);
    }
}

fn set(map: &mut BTreeMap<String, String>, name: &str, value: Option<&str>) {
    match value {
        Some(v) => map.insert(name.into(), v.into()),
        None => map.remove(name),
    };
}

impl Host for RecordingHost {
    fn request_header(&self, name: &str) -> Option<String> {
        self.call();
        self.request_headers.get(name).cloned()
    }
    fn request_header_names(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.call();
        self.request_headers
            .keys()
            .filter(|k| wanted(k))
            .cloned()
            .collect()
    }
    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        self.call();
        set(&mut self.request_headers, name, value);
    }
    fn clear_route_cache(&mut self) {
        self.call();
        self.route_cleared = true;
    }
    fn request_body(&self, len: usize) -> Option<Vec<u8>> {
        self.call();
        Some(self.request_body[..len.min(self.request_body.len())].to_vec())
    }
    fn set_request_body(&mut self, body: &[u8]) {
        self.call();
        self.request_body = body.to_vec();
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.call();
        self.response_headers.get(name).cloned()
    }
    fn set_response_header(&mut self, name: &str, value: Option<&str>) {
        self.call();
        assert!(
            !self.response_headers_sent,
            "response header {name} changed after the headers were sent"
        );
        set(&mut self.response_headers, name, value);
    }
    fn response_body(&self, len: usize) -> Option<Vec<u8>> {
        self.call();
        Some(self.response_body[..len.min(self.response_body.len())].to_vec())
    }
    fn set_response_body(&mut self, body: &[u8]) {
        self.call();
        self.response_body = body.to_vec();
    }
    fn send_response(&mut self, status: u16, _headers: &[(&str, &str)], body: &[u8]) {
        self.call();
        assert!(self.sent.is_none(), "answered twice");
        self.sent = Some((status, body.to_vec()));
    }
    fn log(&self, _level: LogLevel, message: &str) {
        self.call();
        self.logs.borrow_mut().push(message.to_string());
    }
    fn now_nanos(&self) -> u64 {
        self.call();
        self.clock_reads.set(self.clock_reads.get() + 1);
        let now = self.clock_ns.get().saturating_add(self.clock_step_ns);
        self.clock_ns.set(now);
        now
    }
    fn metric(&mut self, op: &MetricOp) {
        self.call();
        self.metrics.push(op.clone());
    }
    fn set_stream_value(&mut self, key: &str, value: &str) {
        self.call();
        self.stream_values.insert(key.into(), value.into());
    }
    fn stream_value(&self, key: &str) -> Option<String> {
        self.call();
        self.stream_values.get(key).cloned()
    }
    fn client_address(&self) -> Option<String> {
        self.call();
        self.client_address.clone()
    }
    fn store(&self) -> &dyn SharedStore {
        self.call();
        &self.store
    }
    fn upstream_provider(&self) -> Option<String> {
        self.call();
        self.upstream_provider.clone()
    }
    fn on_shadow_listener(&self) -> bool {
        self.call();
        self.shadow_listener
    }
    fn response_details(&self) -> Option<String> {
        self.call();
        self.response_details.clone()
    }
    fn response_code(&self) -> Option<u16> {
        self.call();
        self.response_code
    }
    fn dispatch_call(
        &mut self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        self.call();
        if let Some(e) = &self.callout_error {
            return Err(e.clone());
        }
        self.callouts.push(Callout {
            cluster: cluster.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
            timeout_ms,
        });
        Ok(self.callouts.len() as u32)
    }
    fn resume_request(&mut self) {
        self.call();
        self.resumed += 1;
    }
}
