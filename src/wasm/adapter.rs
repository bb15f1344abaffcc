//! `Host` over the proxy-wasm host functions (`abi`). Every result is
//! checked here; a failure is logged and absorbed, never unwrapped.

use super::abi::{self, Buffer, HostError, Level, Map, Metric};
use crate::header_pairs::HeaderTable;
use crate::host::{Host, LogLevel as CoreLevel, MetricName, MetricOp, SharedStore, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

/// Metric ids by full name, defined once per VM.
pub type MetricIds = Rc<RefCell<HashMap<Box<str>, u32, BuildHasherDefault<Fnv1a>>>>;

/// FNV-1a: names come from config, not from clients, so a fast hash without
/// flooding protection fits (SipHash showed up in profiles).
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub fn log(level: Level, message: &str) {
    // Nothing sensible is left to do if logging itself fails.
    let _ = abi::log(level, message);
}

/// One header map read with a single hostcall and kept in step with our own
/// writes, so reads and removals of absent headers cost no hostcall.
struct HeaderCache {
    map: Map,
    table: RefCell<Option<HeaderTable>>,
}

impl HeaderCache {
    fn new(map: Map) -> Self {
        Self {
            map,
            table: RefCell::new(None),
        }
    }

    /// Runs `f` on the map, read from the host the first time.
    fn with<T>(&self, f: impl FnOnce(&mut HeaderTable) -> T) -> Option<T> {
        let mut table = self.table.borrow_mut();
        if table.is_none() {
            match abi::header_pairs(self.map) {
                Ok(t) => *table = Some(t),
                Err(e) => log(Level::Warn, &format!("get header map: {e:?}")),
            }
        }
        table.as_mut().map(f)
    }

    fn get(&self, name: &str) -> Option<String> {
        self.with(|t| t.get(name).map(str::to_string)).flatten()
    }

    fn set(&self, name: &str, value: Option<&str>) {
        // Unread (the host failed): write through.
        if self.with(|t| t.set(name, value)).unwrap_or(true) {
            set_header(self.map, name, value);
        }
    }

    fn names(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.with(|t| t.names(wanted)).unwrap_or_default()
    }

    /// Forget the cached map (the host's may have changed since).
    fn reset(&self) {
        *self.table.borrow_mut() = None;
    }
}

thread_local! {
    /// Envoy's log level for this VM and when it was read: an operator can
    /// change it at run time, so it is read again after `LOG_LEVEL_TTL_NS`.
    static LOG_LEVEL: Cell<Option<(u32, u64)>> = const { Cell::new(None) };
}
const LOG_LEVEL_TTL_NS: u64 = 1_000_000_000;

/// Host for one HTTP stream; remembers body sizes so bodies can be replaced.
pub struct ProxyHost {
    pub request_body_size: usize,
    pub response_body_size: usize,
    metric_ids: MetricIds,
    request_headers: HeaderCache,
    response_headers: HeaderCache,
    /// The clock, read at most once per callback.
    clock: Cell<Option<u64>>,
    /// The last clock reading of this stream, from any callback.
    last_clock: Cell<Option<u64>>,
}

impl ProxyHost {
    pub fn new(metric_ids: MetricIds) -> Self {
        Self {
            request_body_size: 0,
            response_body_size: 0,
            metric_ids,
            request_headers: HeaderCache::new(Map::Request),
            response_headers: HeaderCache::new(Map::Response),
            clock: Cell::new(None),
            last_clock: Cell::new(None),
        }
    }

    /// A new callback begins: time has moved on.
    pub fn begin_callback(&self) {
        self.clock.set(None);
    }

    /// A new callback begins: headers may have changed outside the filter.
    pub fn begin_response(&self) {
        self.response_headers.reset();
    }

    fn metric_id(&self, kind: Metric, name: &MetricName) -> Option<u32> {
        if let Some(id) = name.id.get() {
            return Some(id);
        }
        // Names built outside the per-VM cache (rare events) are looked up
        // by name, so each is defined with Envoy once.
        let known = self.metric_ids.borrow().get(name.as_str()).copied();
        let id = match known {
            Some(id) => id,
            None => match abi::define_metric(kind, name) {
                Ok(id) => {
                    self.metric_ids
                        .borrow_mut()
                        .insert(name.as_str().into(), id);
                    id
                }
                Err(e) => {
                    log(
                        Level::Warn,
                        &format!("define metric {}: {e:?}", name.as_str()),
                    );
                    return None;
                }
            },
        };
        name.id.set(Some(id));
        Some(id)
    }
}

fn set_header(map: Map, name: &str, value: Option<&str>) {
    if let Err(e) = abi::set_header(map, name, value) {
        log(Level::Warn, &format!("set header {name}: {e:?}"));
    }
}

fn get_body(buffer: Buffer, len: usize) -> Option<Vec<u8>> {
    match abi::buffer(buffer, 0, len) {
        Ok(v) => v,
        Err(e) => {
            log(Level::Warn, &format!("get body: {e:?}"));
            None
        }
    }
}

fn set_body(buffer: Buffer, old_len: usize, body: &[u8]) {
    if let Err(e) = abi::set_buffer(buffer, 0, old_len, body) {
        log(Level::Warn, &format!("set body: {e:?}"));
    }
}

impl Host for ProxyHost {
    fn request_header(&self, name: &str) -> Option<String> {
        self.request_headers.get(name)
    }

    fn request_header_names(&self, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.request_headers.names(wanted)
    }

    /// Nothing to do: Envoy clears the route cache itself whenever a Wasm
    /// filter changes a request header (its `onHeadersModified`), so the
    /// routing header set just before already did. Envoy's
    /// `clear_route_cache` foreign call cost ~6 k instructions per request
    /// on top. Guarded by the CORS e2e test, whose filter looks the route
    /// up before this one sets the header.
    fn clear_route_cache(&mut self) {}

    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        self.request_headers.set(name, value)
    }

    fn request_body(&self, len: usize) -> Option<Vec<u8>> {
        get_body(Buffer::RequestBody, len)
    }

    fn set_request_body(&mut self, body: &[u8]) {
        set_body(Buffer::RequestBody, self.request_body_size, body)
    }

    fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers.get(name)
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) {
        self.response_headers.set(name, value)
    }

    fn response_body(&self, len: usize) -> Option<Vec<u8>> {
        get_body(Buffer::ResponseBody, len)
    }

    fn set_response_body(&mut self, body: &[u8]) {
        set_body(Buffer::ResponseBody, self.response_body_size, body)
    }

    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        if let Err(e) = abi::send_local_response(status, headers, body) {
            log(Level::Error, &format!("send response: {e:?}"));
        }
    }

    fn now_nanos(&self) -> u64 {
        if let Some(now) = self.clock.get() {
            return now;
        }
        let now = abi::now_nanos().unwrap_or(0);
        self.clock.set(Some(now));
        self.last_clock.set(Some(now));
        now
    }

    fn metric(&mut self, op: &MetricOp) {
        let result = match op {
            MetricOp::Counter { name, delta } => self
                .metric_id(Metric::Counter, name)
                .map(|id| abi::increment_metric(id, i64::try_from(*delta).unwrap_or(i64::MAX))),
            MetricOp::Histogram { name, value } => self
                .metric_id(Metric::Histogram, name)
                .map(|id| abi::record_metric(id, *value)),
            MetricOp::Gauge { name, value } => self
                .metric_id(Metric::Gauge, name)
                .map(|id| abi::record_metric(id, *value)),
        };
        if let Some(Err(e)) = result {
            log(Level::Warn, &format!("record metric: {e:?}"));
        }
    }

    fn client_address(&self) -> Option<String> {
        let raw = abi::property(&["source", "address"]).ok().flatten()?;
        let addr = String::from_utf8(raw).ok()?;
        // "1.2.3.4:5678" or "[::1]:5678" → the IP alone.
        let ip = match addr.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => addr.as_str(),
        };
        Some(ip.trim_start_matches('[').trim_end_matches(']').to_string())
    }

    fn store(&self) -> &dyn SharedStore {
        &ProxyStore
    }

    fn upstream_provider(&self) -> Option<String> {
        let path = [
            "xds",
            "upstream_host_metadata",
            "filter_metadata",
            "llmgw",
            "provider",
        ];
        let raw = abi::property(&path).ok().flatten()?;
        String::from_utf8(raw).ok()
    }

    fn on_shadow_listener(&self) -> bool {
        let name = abi::property(&["xds", "filter_chain_name"]).ok().flatten();
        name.as_deref() == Some(crate::flow::SHADOW_CHAIN.as_bytes())
    }

    fn response_details(&self) -> Option<String> {
        let raw = abi::property(&["response", "code_details"])
            .ok()
            .flatten()?;
        Some(String::from_utf8_lossy(&raw).into_owned())
    }

    fn response_code(&self) -> Option<u16> {
        // A little-endian 64-bit integer.
        let raw = abi::property(&["response", "code"]).ok().flatten()?;
        let bytes: [u8; 8] = raw.get(..8)?.try_into().ok()?;
        u16::try_from(u64::from_le_bytes(bytes)).ok()
    }

    fn set_stream_value(&mut self, key: &str, value: &str) {
        if let Err(e) = abi::set_property(&[key], value.as_bytes()) {
            log(Level::Debug, &format!("set property {key}: {e:?}"));
        }
    }

    fn stream_value(&self, key: &str) -> Option<String> {
        // Envoy looks names it does not know up as filter state `wasm.<name>`.
        let raw = abi::property(&[key]).ok().flatten()?;
        String::from_utf8(raw).ok()
    }

    fn log_enabled(&self, level: CoreLevel) -> bool {
        let wanted = level_of(level);
        // Good enough to age the cached level: this stream's last reading
        // (a callback earlier at most), which saves a clock hostcall.
        let now = self.clock.get().or(self.last_clock.get());
        let now = now.unwrap_or_else(|| self.now_nanos());
        let current = LOG_LEVEL.with(|cached| match cached.get() {
            Some((level, at)) if now.saturating_sub(at) < LOG_LEVEL_TTL_NS => Some(level),
            _ => {
                let level = abi::log_level().ok()?;
                cached.set(Some((level, now)));
                Some(level)
            }
        });
        current.is_none_or(|current| current <= wanted as u32)
    }

    fn log(&self, level: CoreLevel, message: &str) {
        log(level_of(level), message);
    }
    fn dispatch_call(
        &mut self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        abi::http_call(cluster, headers, body, timeout_ms)
    }

    fn resume_request(&mut self) {
        if let Err(e) = abi::continue_request() {
            log(Level::Error, &format!("resume request: {e:?}"));
        }
    }
}

fn level_of(level: CoreLevel) -> Level {
    match level {
        CoreLevel::Debug => Level::Debug,
        CoreLevel::Info => Level::Info,
        CoreLevel::Warn => Level::Warn,
        CoreLevel::Error => Level::Error,
    }
}

/// Proxy-wasm shared data.
pub struct ProxyStore;

impl SharedStore for ProxyStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match abi::shared_data(key) {
            Ok(Some((value, cas))) if cas != 0 => Some((value, cas)),
            Ok(_) => None,
            Err(e) => {
                log(Level::Warn, &format!("get shared data {key}: {e:?}"));
                None
            }
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        abi::set_shared_data(key, value, cas).map_err(|e| match e {
            HostError::CasMismatch => StoreError::CasMismatch,
            _ => StoreError::Failed,
        })
    }
}
