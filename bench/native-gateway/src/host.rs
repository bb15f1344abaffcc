//! `Host` over the dynamic-module ABI, mirroring `src/wasm/adapter.rs`
//! (the proxy-wasm host). Failures are absorbed (logged, `None`).

use crate::abi::{self, FilterEnvoyPtr};
use llm_gateway::host::{Host, LogLevel, MetricName, MetricOp, SharedStore, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// One header map read with a single call and kept in step with our own
/// writes (as the proxy-wasm adapter's `HeaderCache`).
struct HeaderCache {
    header_type: u32,
    entries: RefCell<Option<Vec<(String, String)>>>,
}

impl HeaderCache {
    fn new(header_type: u32) -> Self {
        Self {
            header_type,
            entries: RefCell::new(None),
        }
    }

    fn loaded(&self, f: FilterEnvoyPtr) -> bool {
        if self.entries.borrow().is_none() {
            match abi::headers(f, self.header_type) {
                Some(v) => *self.entries.borrow_mut() = Some(v),
                None => abi::log(abi::LOG_WARN, "llm-gateway: get header map failed"),
            }
        }
        self.entries.borrow().is_some()
    }

    fn get(&self, f: FilterEnvoyPtr, name: &str) -> Option<String> {
        if !self.loaded(f) {
            return None;
        }
        self.entries
            .borrow()
            .as_ref()
            .and_then(|e| e.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn set(&self, f: FilterEnvoyPtr, name: &str, value: Option<&str>) {
        if self.loaded(f) {
            let mut entries = self.entries.borrow_mut();
            if let Some(e) = entries.as_mut() {
                let current = e.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
                if current == value {
                    return;
                }
                e.retain(|(k, _)| k != name);
                if let Some(v) = value {
                    e.push((name.to_string(), v.to_string()));
                }
            }
        }
        if !abi::set_header(f, self.header_type, name, value) {
            abi::log(abi::LOG_WARN, &format!("llm-gateway: set header {name} failed"));
        }
    }

    fn names(&self, f: FilterEnvoyPtr, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        if !self.loaded(f) {
            return Vec::new();
        }
        self.entries
            .borrow()
            .as_ref()
            .map(|e| e.iter().filter(|(k, _)| wanted(k)).map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }

    fn reset(&self) {
        *self.entries.borrow_mut() = None;
    }
}

/// Response code details of the filter's own local replies.
pub const LOCAL_REPLY_DETAILS: &str = "llm_gateway";

/// Host for one HTTP stream.
pub struct NativeHost {
    pub filter: FilterEnvoyPtr,
    /// Inside a body callback (a received body exists) rather than trailers.
    pub in_request_body: bool,
    pub in_response_body: bool,
    request_headers: HeaderCache,
    response_headers: HeaderCache,
    clock: Cell<Option<u64>>,
}

impl NativeHost {
    pub fn new(filter: FilterEnvoyPtr) -> Self {
        Self {
            filter,
            in_request_body: false,
            in_response_body: false,
            request_headers: HeaderCache::new(abi::HEADER_REQUEST),
            response_headers: HeaderCache::new(abi::HEADER_RESPONSE),
            clock: Cell::new(None),
        }
    }

    /// A new callback begins: time has moved on.
    pub fn begin_callback(&mut self, filter: FilterEnvoyPtr) {
        self.filter = filter;
        self.clock.set(None);
        self.in_request_body = false;
        self.in_response_body = false;
    }

    pub fn begin_response(&self) {
        self.response_headers.reset();
    }

    /// The whole body so far: what earlier callbacks buffered, then this
    /// callback's frame.
    fn body(&self, buffered: u32, received: u32) -> Vec<u8> {
        let f = self.filter;
        let mut out = Vec::with_capacity(abi::body_size(f, buffered) + abi::body_size(f, received));
        abi::copy_body(f, buffered, &mut out);
        abi::copy_body(f, received, &mut out);
        out
    }

    /// Replaces the whole body: drains both buffers, appends the new body to
    /// the received frame inside a body callback, else to the buffer.
    fn set_body(&self, buffered: u32, received: u32, in_body: bool, body: &[u8]) {
        let f = self.filter;
        let (b, r) = (abi::body_size(f, buffered), abi::body_size(f, received));
        if b > 0 {
            abi::drain_body(f, buffered, b);
        }
        if r > 0 {
            abi::drain_body(f, received, r);
        }
        let (first, second) = if in_body { (received, buffered) } else { (buffered, received) };
        if !abi::append_body(f, first, body) && !abi::append_body(f, second, body) {
            abi::log(abi::LOG_WARN, "llm-gateway: set body failed");
        }
    }

    /// Size of the whole body so far (buffered + this frame).
    pub fn body_size(&self, buffered: u32, received: u32) -> usize {
        abi::body_size(self.filter, buffered) + abi::body_size(self.filter, received)
    }
}

fn level_of(level: LogLevel) -> u32 {
    match level {
        LogLevel::Debug => abi::LOG_DEBUG,
        LogLevel::Info => abi::LOG_INFO,
        LogLevel::Warn => abi::LOG_WARN,
        LogLevel::Error => abi::LOG_ERROR,
    }
}

/// Filter-state keys carry the `wasm.` prefix the proxy-wasm host gives
/// them, so access-log formats that read `wasm.<key>` keep working.
fn state_key(key: &str) -> String {
    let mut k = String::with_capacity(5 + key.len());
    k.push_str("wasm.");
    k.push_str(key);
    k
}

impl Host for NativeHost {
    fn request_header(&self, name: &str) -> Option<String> {
        self.request_headers.get(self.filter, name)
    }

    fn request_header_names(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.request_headers.names(self.filter, wanted)
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        self.request_headers.set(self.filter, name, value)
    }

    fn clear_route_cache(&mut self) {
        abi::clear_route_cache(self.filter)
    }

    fn request_body(&self, len: usize) -> Option<Vec<u8>> {
        let mut b = self.body(abi::BODY_BUFFERED_REQUEST, abi::BODY_RECEIVED_REQUEST);
        b.truncate(len);
        Some(b)
    }

    fn set_request_body(&mut self, body: &[u8]) {
        self.set_body(
            abi::BODY_BUFFERED_REQUEST,
            abi::BODY_RECEIVED_REQUEST,
            self.in_request_body,
            body,
        )
    }

    fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers.get(self.filter, name)
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) {
        self.response_headers.set(self.filter, name, value)
    }

    fn response_body(&self, len: usize) -> Option<Vec<u8>> {
        let mut b = self.body(abi::BODY_BUFFERED_RESPONSE, abi::BODY_RECEIVED_RESPONSE);
        b.truncate(len);
        Some(b)
    }

    fn set_response_body(&mut self, body: &[u8]) {
        self.set_body(
            abi::BODY_BUFFERED_RESPONSE,
            abi::BODY_RECEIVED_RESPONSE,
            self.in_response_body,
            body,
        )
    }

    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        // Envoy gives a dynamic module's reply without details the detail
        // `dynamic_module`, and the rendered `local_reply_config` rewrites
        // every reply with a detail (it expects the Wasm filter's to have
        // none). So the reply says `llm_gateway`, which the native
        // bootstrap's mappers exclude (profile.py, with_native_gateway_filter).
        abi::send_response(self.filter, status, headers, body, LOCAL_REPLY_DETAILS);
    }

    fn log(&self, level: LogLevel, message: &str) {
        abi::log(level_of(level), message)
    }

    fn log_enabled(&self, level: LogLevel) -> bool {
        abi::log_enabled(level_of(level))
    }

    fn now_nanos(&self) -> u64 {
        if let Some(now) = self.clock.get() {
            return now;
        }
        let now = wall_clock_ns();
        self.clock.set(Some(now));
        now
    }

    fn metric(&mut self, op: &MetricOp) {
        metrics::apply(op)
    }

    fn set_stream_value(&mut self, key: &str, value: &str) {
        if !abi::set_filter_state(self.filter, &state_key(key), value.as_bytes()) {
            abi::log(abi::LOG_DEBUG, &format!("llm-gateway: set filter state {key} failed"));
        }
    }

    fn stream_value(&self, key: &str) -> Option<String> {
        let raw = abi::filter_state(self.filter, &state_key(key))?;
        String::from_utf8(raw).ok()
    }

    fn client_address(&self) -> Option<String> {
        let addr = abi::attribute_string(self.filter, abi::ATTR_SOURCE_ADDRESS)?;
        let ip = match addr.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => addr.as_str(),
        };
        Some(ip.trim_start_matches('[').trim_end_matches(']').to_string())
    }

    fn store(&self) -> &dyn SharedStore {
        &NativeStore
    }

    fn upstream_provider(&self) -> Option<String> {
        abi::metadata_string(self.filter, abi::META_HOST, "llmgw", "provider")
    }

    fn on_shadow_listener(&self) -> bool {
        abi::attribute_string(self.filter, abi::ATTR_XDS_FILTER_CHAIN_NAME).as_deref()
            == Some(llm_gateway::flow::SHADOW_CHAIN)
    }

    fn response_details(&self) -> Option<String> {
        abi::attribute_string(self.filter, abi::ATTR_RESPONSE_CODE_DETAILS)
    }

    fn response_code(&self) -> Option<u16> {
        u16::try_from(abi::attribute_int(self.filter, abi::ATTR_RESPONSE_CODE)?).ok()
    }

    fn dispatch_call(
        &mut self,
        cluster: &str,
        _headers: &[(&str, &str)],
        _body: &[u8],
        _timeout_ms: u64,
    ) -> Result<u32, String> {
        Err(format!(
            "callouts are not implemented in the native study host (cluster {cluster})"
        ))
    }

    fn resume_request(&mut self) {
        abi::continue_decoding(self.filter)
    }
}

pub fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// ----------------------------------------------------------- shared store

/// Process-wide shared data with proxy-wasm's semantics: every write gets a
/// new nonzero CAS token; `cas` 0 writes unconditionally; a missing key is
/// inserted whatever `cas` says; a stale token is a CAS mismatch.
pub struct NativeStore;

fn shared() -> &'static Mutex<HashMap<String, (Vec<u8>, u32)>> {
    static DATA: OnceLock<Mutex<HashMap<String, (Vec<u8>, u32)>>> = OnceLock::new();
    DATA.get_or_init(|| Mutex::new(HashMap::new()))
}

static NEXT_CAS: AtomicU32 = AtomicU32::new(1);

fn next_cas() -> u32 {
    loop {
        let c = NEXT_CAS.fetch_add(1, Ordering::Relaxed);
        if c != 0 {
            return c;
        }
    }
}

impl SharedStore for NativeStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        let map = shared().lock().ok()?;
        map.get(key).map(|(v, cas)| (v.clone(), *cas))
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut map = shared().lock().map_err(|_| StoreError::Failed)?;
        match map.get_mut(key) {
            Some(entry) => {
                if cas != 0 && cas != entry.1 {
                    return Err(StoreError::CasMismatch);
                }
                entry.0.clear();
                entry.0.extend_from_slice(value);
                entry.1 = next_cas();
            }
            None => {
                map.insert(key.to_string(), (value.to_vec(), next_cas()));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- metrics

/// Metrics for the study: in-module atomics, NOT exported to Envoy's stats.
/// A name gets a slot at first use (a process-wide registry behind a mutex,
/// the id then cached in the `MetricName` as the proxy-wasm host does); each
/// update is one relaxed atomic operation, about what an Envoy stat
/// increment costs. Real Envoy stats would need the metric families (name +
/// label names) defined in `config_new` (definition later is refused).
pub mod metrics {
    use super::*;

    const SLOTS: usize = 4096;

    struct Registry {
        ids: Mutex<HashMap<Box<str>, u32>>,
        values: Box<[AtomicU64]>,
        counts: Box<[AtomicU64]>,
    }

    fn registry() -> &'static Registry {
        static R: OnceLock<Registry> = OnceLock::new();
        R.get_or_init(|| Registry {
            ids: Mutex::new(HashMap::new()),
            values: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            counts: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn id(name: &MetricName) -> Option<u32> {
        if let Some(id) = name.id.get() {
            return Some(id);
        }
        let mut ids = registry().ids.lock().ok()?;
        let next = ids.len() as u32;
        let id = *ids.entry(name.as_str().into()).or_insert(next);
        if id as usize >= SLOTS {
            return None;
        }
        name.id.set(Some(id));
        Some(id)
    }

    pub fn apply(op: &MetricOp) {
        let r = registry();
        match op {
            MetricOp::Counter { name, delta } => {
                if let Some(i) = id(name) {
                    r.values[i as usize].fetch_add(*delta, Ordering::Relaxed);
                }
            }
            MetricOp::Histogram { name, value } => {
                if let Some(i) = id(name) {
                    r.values[i as usize].fetch_add(*value, Ordering::Relaxed);
                    r.counts[i as usize].fetch_add(1, Ordering::Relaxed);
                }
            }
            MetricOp::Gauge { name, value } => {
                if let Some(i) = id(name) {
                    r.values[i as usize].store(*value, Ordering::Relaxed);
                }
            }
        }
    }

    /// Name, value (sum for histograms), update count: for the smoke test.
    pub fn snapshot() -> Vec<(String, u64, u64)> {
        let r = registry();
        let Ok(ids) = r.ids.lock() else { return Vec::new() };
        let mut v: Vec<_> = ids
            .iter()
            .filter(|(_, &i)| (i as usize) < SLOTS)
            .map(|(n, &i)| {
                (
                    n.to_string(),
                    r.values[i as usize].load(Ordering::Relaxed),
                    r.counts[i as usize].load(Ordering::Relaxed),
                )
            })
            .collect();
        v.sort();
        v
    }
}
