//! What the request flow needs from the proxy. The proxy-wasm adapter
//! implements it over hostcalls; [`crate::testing`] in memory.

use std::cell::Cell;
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Host operations for one HTTP stream. Failures of the underlying hostcalls
/// are absorbed by the implementation (logged, `None`): the flow never panics.
pub trait Host {
    fn request_header(&self, name: &str) -> Option<String>;
    /// Names of the request headers present (lowercase) that `wanted`
    /// picks (the others are never copied out).
    fn request_header_names(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String>;
    /// Sets (`Some`) or removes (`None`) a request header.
    fn set_request_header(&mut self, name: &str, value: Option<&str>);
    /// The route must be chosen again: a routing header changed after a
    /// filter before this one may already have looked the route up.
    fn clear_route_cache(&mut self);
    fn request_body(&self, len: usize) -> Option<Vec<u8>>;
    fn set_request_body(&mut self, body: &[u8]);
    fn response_header(&self, name: &str) -> Option<String>;
    fn set_response_header(&mut self, name: &str, value: Option<&str>);
    fn response_body(&self, len: usize) -> Option<Vec<u8>>;
    fn set_response_body(&mut self, body: &[u8]);
    /// Answers the client locally; the request goes no further.
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]);
    fn log(&self, level: LogLevel, message: &str);
    /// Whether a message at `level` would be written: lets the flow skip
    /// formatting messages nobody reads.
    fn log_enabled(&self, _level: LogLevel) -> bool {
        true
    }
    /// Wall-clock time, nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> u64;
    /// Applies one metric update.
    fn metric(&mut self, op: &MetricOp);
    /// Stores a value in the stream's Envoy filter state (`wasm.<key>`):
    /// access logs read it, and so does the other instance of this filter
    /// on the same stream (the router's upstream filters share it).
    fn set_stream_value(&mut self, key: &str, value: &str);
    /// A value stored with `set_stream_value` on this stream.
    fn stream_value(&self, key: &str) -> Option<String>;
    /// The downstream peer's IP address.
    fn client_address(&self) -> Option<String>;
    /// Proxy-wide shared data.
    fn store(&self) -> &dyn SharedStore;
    /// Placed upstream: the provider of the endpoint Envoy picked for this
    /// attempt (endpoint metadata `llmgw.provider`).
    fn upstream_provider(&self) -> Option<String>;
    /// The request came in on the gateway's internal shadow listener,
    /// which only the proxy itself can reach (a mirrored copy).
    fn on_shadow_listener(&self) -> bool;
    /// Why the proxy ended the response (Envoy's response code details,
    /// e.g. `upstream_reset_after_response_started{remote_reset}` or
    /// `downstream_remote_disconnect`), once it has.
    fn response_details(&self) -> Option<String>;
    /// The status the client was finally sent (Envoy may have replaced the
    /// provider's with its own reply).
    fn response_code(&self) -> Option<u16>;
    /// Sends an HTTP request to `cluster` through the proxy (a callout);
    /// the answer comes back through the flow's `on_callout_response`.
    /// `Err` says why it could not be sent.
    fn dispatch_call(
        &mut self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, String>;
    /// Lets a request held across a callout go on.
    fn resume_request(&mut self);
}

/// One metric update the host applies (see `metrics` for what is recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricOp {
    Counter { name: Rc<MetricName>, delta: u64 },
    Histogram { name: Rc<MetricName>, value: u64 },
    Gauge { name: Rc<MetricName>, value: u64 },
}

/// A metric's full name (labels included) and the id the host gave it: the
/// id travels with the name, so a request looks nothing up by name.
#[derive(Debug)]
pub struct MetricName {
    name: Box<str>,
    /// Host-assigned id, remembered at first use.
    pub id: Cell<Option<u32>>,
}

impl MetricName {
    pub fn new(name: impl Into<Box<str>>) -> Rc<Self> {
        Rc::new(Self {
            name: name.into(),
            id: Cell::new(None),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl std::ops::Deref for MetricName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for MetricName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq for MetricName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for MetricName {}

/// Why a shared-data write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Another writer changed the value since it was read.
    CasMismatch,
    /// The host refused the operation.
    Failed,
}

/// Proxy-wide key/value data shared by every worker of one Envoy (proxy-wasm
/// shared data). Values never expire, so callers keep the key space bounded.
pub trait SharedStore {
    /// The value and its CAS token, or None when the key is absent.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `value` if the key's CAS token is still `cas` (0 = write
    /// unconditionally). A missing key is inserted whatever `cas` says.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}
