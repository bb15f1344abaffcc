//! Study: llm-gateway's host-independent core (`llm_gateway::flow::StreamFlow`)
//! behind an Envoy *dynamic module* (`envoy.filters.http.dynamic_modules`,
//! Envoy 1.40.0, ABI "v0.2.0") instead of proxy-wasm. The hooks below drive
//! the flow exactly as `src/wasm/http.rs` does; `host.rs` implements `Host`
//! over the ABI as `src/wasm/adapter.rs` does over proxy-wasm.
//!
//! `filter_config` (a `google.protobuf.StringValue`) is the plugin JSON, the
//! same bytes the Wasm filter gets as `configuration`. Placement: downstream
//! only (the router's `upstream_http_filters` placement is out of scope).

mod abi;
mod host;

use abi::{EnvoyBuffer, EnvoyHttpHeader, FilterConfigEnvoyPtr, FilterConfigModulePtr, FilterEnvoyPtr, FilterModulePtr};
use host::NativeHost;
use llm_gateway::config::{compile, Gateway, PluginConfig};
use llm_gateway::error::ApiError;
use llm_gateway::flow::{Placement, StreamFlow, Verdict};
use llm_gateway::host::Host;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::os::raw::c_char;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The filter config: the plugin JSON, compiled once per worker thread.
///
/// The compiled `Gateway` holds `Rc`s and `Cell`s (it is not `Send`), while
/// Envoy calls `config_new` on the main thread and the stream hooks on its
/// workers; so, as proxy-wasm does with one VM per worker, each worker
/// compiles its own copy (once, at its first stream). `config_new` compiles
/// it once too, to refuse a bad config and to create the shared state.
struct Config {
    json: Box<[u8]>,
    /// Distinguishes this config from earlier ones in the workers' caches.
    generation: u64,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This worker's compiled gateways, by config generation. (Entries of
    /// destroyed configs stay until the thread ends: enough for the study.)
    static GATEWAYS: RefCell<Vec<(u64, Option<Rc<Gateway>>)>> = const { RefCell::new(Vec::new()) };
    /// Per-thread seed, read from the clock once; streams mix in a counter.
    static SEED: u64 = host::wall_clock_ns() ^ 0x9e37_79b9_7f4a_7c15;
    static STREAMS: Cell<u64> = const { Cell::new(0) };
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn compile_json(json: &[u8]) -> Result<Gateway, String> {
    PluginConfig::from_json(json)
        .and_then(|c| compile(&c, &env))
        .map_err(|e| e.to_string())
}

fn gateway(config: &Config) -> Option<Rc<Gateway>> {
    GATEWAYS.with(|g| {
        let mut g = g.borrow_mut();
        if let Some((_, gw)) = g.iter().find(|(gen, _)| *gen == config.generation) {
            return gw.clone();
        }
        let gw = match compile_json(&config.json) {
            Ok(gw) => Some(Rc::new(gw)),
            Err(e) => {
                abi::log(abi::LOG_ERROR, &format!("llm-gateway: {e}"));
                None
            }
        };
        g.push((config.generation, gw.clone()));
        gw
    })
}

fn stream_seed() -> u64 {
    let n = STREAMS.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    SEED.with(|s| s ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (n << 32))
}

/// Per-stream state.
struct Stream {
    flow: Option<StreamFlow>,
    host: NativeHost,
}

impl Stream {
    fn run<T>(&mut self, f: impl FnOnce(&mut StreamFlow, &mut NativeHost) -> T) -> Option<T> {
        let flow = self.flow.as_mut()?;
        let out = f(flow, &mut self.host);
        if flow.awaiting_token() {
            // Provider access tokens (refreshed on proxy-wasm's root timer)
            // are not implemented in this study host.
            abi::log(
                abi::LOG_ERROR,
                "llm-gateway(native): request waits for a provider token; token refresh is not implemented",
            );
        }
        Some(out)
    }
}

unsafe fn stream<'a>(m: FilterModulePtr) -> &'a mut Stream {
    &mut *(m as *mut Stream)
}

fn headers_status(v: Verdict) -> u32 {
    match v {
        Verdict::Continue => abi::HEADERS_CONTINUE,
        Verdict::Pause => abi::HEADERS_STOP_ITERATION,
    }
}

/// A paused body buffers, as proxy-wasm's `Action::Pause` does in a body
/// callback (Envoy maps it to StopIterationAndBuffer).
fn body_status(v: Verdict) -> u32 {
    match v {
        Verdict::Continue => abi::BODY_CONTINUE,
        Verdict::Pause => abi::BODY_STOP_ITERATION_AND_BUFFER,
    }
}

fn trailers_status(v: Verdict) -> u32 {
    match v {
        Verdict::Continue => abi::TRAILERS_CONTINUE,
        Verdict::Pause => abi::TRAILERS_STOP_ITERATION,
    }
}

// --------------------------------------------------- event hooks (our side)

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    b"v0.2.0\0".as_ptr() as *const c_char
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    _config_envoy: FilterConfigEnvoyPtr,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> FilterConfigModulePtr {
    let json = config.bytes().to_vec().into_boxed_slice();
    let gw = match compile_json(&json) {
        Ok(gw) => gw,
        Err(e) => {
            abi::log(abi::LOG_ERROR, &format!("llm-gateway: {e}"));
            return std::ptr::null();
        }
    };
    let unavailable = gw.providers.iter().filter_map(|p| p.unavailable.as_ref());
    for why in unavailable.chain(gw.warnings.iter()) {
        abi::log(abi::LOG_WARN, &format!("llm-gateway: {why}"));
    }
    if gw.providers.iter().any(|p| p.token.is_some()) {
        abi::log(
            abi::LOG_WARN,
            "llm-gateway(native): providers with access tokens are configured; token refresh is not implemented",
        );
    }
    let now = host::wall_clock_ns();
    let store = host::NativeStore;
    let dropped = gw.forget_removed_state(&store);
    match dropped.and_then(|d| Ok((d, gw.precreate_state(&store, now)?))) {
        Ok((dropped, keys)) => abi::log(
            abi::LOG_INFO,
            &format!(
                "llm-gateway(native): configured {} providers, {} models, {keys} limit keys; dropped the state of {dropped} removed keys",
                gw.providers.len(),
                gw.models.len()
            ),
        ),
        Err(e) => {
            abi::log(
                abi::LOG_ERROR,
                &format!("llm-gateway: cannot create rate-limit state: {e:?}"),
            );
            return std::ptr::null();
        }
    }
    drop(gw);
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    Box::into_raw(Box::new(Config { json, generation })) as FilterConfigModulePtr
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: FilterConfigModulePtr) {
    drop(Box::from_raw(config as *mut Config));
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: FilterConfigModulePtr,
    filter_envoy: FilterEnvoyPtr,
) -> FilterModulePtr {
    let config = &*(config as *const Config);
    let flow = gateway(config).map(|gw| StreamFlow::with_placement(gw, stream_seed(), Placement::Downstream));
    Box::into_raw(Box::new(Stream {
        flow,
        host: NativeHost::new(filter_envoy),
    })) as FilterModulePtr
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: FilterModulePtr) {
    drop(Box::from_raw(filter as *mut Stream));
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    f: FilterEnvoyPtr,
    m: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    let s = stream(m);
    s.host.begin_callback(f);
    match s.run(|flow, host| flow.on_request_headers(host, end_of_stream)) {
        Some(v) => headers_status(v),
        None => {
            let e = ApiError::new(500, "api_error", "llm-gateway is not configured; see the Envoy log.");
            s.host
                .send_response(500, &[("content-type", "application/json")], &e.to_json());
            abi::HEADERS_STOP_ITERATION
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    f: FilterEnvoyPtr,
    m: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    let s = stream(m);
    s.host.begin_callback(f);
    s.host.in_request_body = true;
    let size = s.host.body_size(abi::BODY_BUFFERED_REQUEST, abi::BODY_RECEIVED_REQUEST);
    s.run(|flow, host| flow.on_request_body(host, size, end_of_stream))
        .map_or(abi::BODY_CONTINUE, body_status)
}

/// Trailers end the body: whatever waited for the body's end happens now.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    f: FilterEnvoyPtr,
    m: FilterModulePtr,
) -> u32 {
    let s = stream(m);
    s.host.begin_callback(f);
    let size = s.host.body_size(abi::BODY_BUFFERED_REQUEST, abi::BODY_RECEIVED_REQUEST);
    s.run(|flow, host| flow.on_request_body(host, size, true))
        .map_or(abi::TRAILERS_CONTINUE, trailers_status)
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    f: FilterEnvoyPtr,
    m: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    let s = stream(m);
    s.host.begin_callback(f);
    s.host.begin_response();
    s.run(|flow, host| flow.on_response_headers(host, end_of_stream))
        .map_or(abi::HEADERS_CONTINUE, headers_status)
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    f: FilterEnvoyPtr,
    m: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    let s = stream(m);
    s.host.begin_callback(f);
    s.host.in_response_body = true;
    let size = s.host.body_size(abi::BODY_BUFFERED_RESPONSE, abi::BODY_RECEIVED_RESPONSE);
    s.run(|flow, host| flow.on_response_body(host, size, end_of_stream))
        .map_or(abi::BODY_CONTINUE, body_status)
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    f: FilterEnvoyPtr,
    m: FilterModulePtr,
) -> u32 {
    let s = stream(m);
    s.host.begin_callback(f);
    let size = s.host.body_size(abi::BODY_BUFFERED_RESPONSE, abi::BODY_RECEIVED_RESPONSE);
    s.run(|flow, host| flow.on_response_trailers(host, size))
        .map_or(abi::TRAILERS_CONTINUE, trailers_status)
}

thread_local! {
    static DUMP_METRICS: bool = std::env::var_os("LLMGW_NATIVE_DUMP_METRICS").is_some();
}

/// The stream is done: proxy-wasm's `on_log`.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(f: FilterEnvoyPtr, m: FilterModulePtr) {
    let s = stream(m);
    s.host.begin_callback(f);
    s.run(|flow, host| flow.on_log(host));
    if DUMP_METRICS.with(|d| *d) {
        for (name, value, count) in host::metrics::snapshot() {
            abi::log(abi::LOG_INFO, &format!("llmgw-metric {name} value={value} updates={count}"));
        }
    }
}

// Hooks Envoy 1.40 requires to be present. Callouts are not implemented
// (`dispatch_call` refuses), so no callout answer ever arrives.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _f: FilterEnvoyPtr,
    _m: FilterModulePtr,
    _callout_id: u64,
    _result: u32,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _body_chunks: *mut EnvoyBuffer,
    _body_chunks_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _f: FilterEnvoyPtr,
    _m: FilterModulePtr,
    _stream_id: u64,
    _headers: *mut c_void,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _f: FilterEnvoyPtr,
    _m: FilterModulePtr,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _f: FilterEnvoyPtr,
    _m: FilterModulePtr,
    _stream_id: u64,
    _trailers: *mut c_void,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _f: FilterEnvoyPtr,
    _m: FilterModulePtr,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _f: FilterEnvoyPtr,
    _m: FilterModulePtr,
    _stream_id: u64,
    _reason: u32,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(_f: FilterEnvoyPtr, _m: FilterModulePtr, _event_id: u64) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _f: FilterEnvoyPtr,
    _m: FilterModulePtr,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _f: FilterEnvoyPtr,
    _m: FilterModulePtr,
) {
}
