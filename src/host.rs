//! What the request flow needs from the proxy. The proxy-wasm adapter
//! implements it over hostcalls; tests implement it in memory.

use crate::metrics::MetricOp;

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
    /// Sets (`Some`) or removes (`None`) a request header.
    fn set_request_header(&mut self, name: &str, value: Option<&str>);
    fn request_body(&self, len: usize) -> Option<Vec<u8>>;
    fn set_request_body(&mut self, body: &[u8]);
    fn response_header(&self, name: &str) -> Option<String>;
    fn set_response_header(&mut self, name: &str, value: Option<&str>);
    fn response_body(&self, len: usize) -> Option<Vec<u8>>;
    fn set_response_body(&mut self, body: &[u8]);
    /// Answers the client locally; the request goes no further.
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]);
    fn log(&self, level: LogLevel, message: &str);
    /// Wall-clock time, nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> u64;
    /// Applies one metric update.
    fn metric(&mut self, op: &MetricOp);
    /// Exposes a value to access logs (Envoy filter state `wasm.<key>`).
    fn set_log_field(&mut self, key: &str, value: &str);
}
