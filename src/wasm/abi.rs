//! The proxy-wasm host functions the filter calls, declared here and
//! wrapped so that no answer of the host can panic.
//!
//! The proxy-wasm SDK's own wrappers (`proxy_wasm::hostcalls`) panic on any
//! status they do not expect and on header values that are not UTF-8, and a
//! panic kills the VM for every request on that worker: one client header
//! byte such as 0xE9 (Latin-1 "é", legal in HTTP/1) was enough. Every
//! result here is a `Result`, and bytes from the host are decoded lossily.
//! The SDK still provides the entry points and the context dispatch.

use crate::header_pairs::{encode_pairs, HeaderTable};
use std::ptr::{null, null_mut};

/// A host status other than success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    NotFound,
    CasMismatch,
    /// Any other status, by number (the ABI's `WasmResult`).
    Status(u32),
}

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const EMPTY: u32 = 7;
const CAS_MISMATCH: u32 = 8;

fn check(status: u32) -> Result<(), HostError> {
    match status {
        OK => Ok(()),
        NOT_FOUND => Err(HostError::NotFound),
        CAS_MISMATCH => Err(HostError::CasMismatch),
        other => Err(HostError::Status(other)),
    }
}

/// Log levels of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Level {
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

/// Buffers of the ABI.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    RequestBody = 0,
    ResponseBody = 1,
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

/// Header maps of the ABI.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Map {
    Request = 0,
    Response = 2,
    /// A callout's answer.
    CallResponse = 6,
}

/// Metric kinds of the ABI.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Metric {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer: u32,
        start: usize,
        size: usize,
        data: *const u8,
        data_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
}

/// Takes ownership of bytes the host allocated in this module (through the
/// SDK's exported allocator, which hands out exactly `size` bytes).
///
/// # Safety
/// `data` must come from the host's allocation for this call, `size` long.
unsafe fn owned(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    Some(Vec::from_raw_parts(data, size, size))
}

pub fn log(level: Level, message: &str) -> Result<(), HostError> {
    check(unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) })
}

pub fn log_level() -> Result<u32, HostError> {
    let mut level = 0;
    check(unsafe { proxy_get_log_level(&mut level) })?;
    Ok(level)
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> Result<u64, HostError> {
    let mut t = 0;
    check(unsafe { proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

pub fn buffer(which: Buffer, start: usize, max: usize) -> Result<Option<Vec<u8>>, HostError> {
    let (mut data, mut size) = (null_mut(), 0);
    let status = unsafe { proxy_get_buffer_bytes(which as u32, start, max, &mut data, &mut size) };
    match status {
        NOT_FOUND | EMPTY => Ok(None),
        s => check(s).map(|()| unsafe { owned(data, size) }),
    }
}

/// Replaces `size` bytes at `start` of a buffer with `value`.
pub fn set_buffer(which: Buffer, start: usize, size: usize, value: &[u8]) -> Result<(), HostError> {
    check(unsafe { proxy_set_buffer_bytes(which as u32, start, size, value.as_ptr(), value.len()) })
}

/// Every header of a map; names and values that are not UTF-8 are decoded
/// lossily (the bytes are the client's).
pub fn header_pairs(map: Map) -> Result<HeaderTable, HostError> {
    let (mut data, mut size) = (null_mut(), 0);
    check(unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) })?;
    let bytes = unsafe { owned(data, size) }.unwrap_or_default();
    HeaderTable::decode(bytes).ok_or(HostError::Status(u32::MAX))
}

/// Sets (`Some`) or removes (`None`) one header.
pub fn set_header(map: Map, name: &str, value: Option<&str>) -> Result<(), HostError> {
    let status = match value {
        Some(v) => unsafe {
            proxy_replace_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                v.as_ptr(),
                v.len(),
            )
        },
        None => unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) },
    };
    check(status)
}

pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    let path = path.join("\0");
    let (mut data, mut size) = (null_mut(), 0);
    let status = unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
    match status {
        NOT_FOUND | EMPTY => Ok(None),
        s => check(s).map(|()| unsafe { owned(data, size) }),
    }
}

pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    let path = path.join("\0");
    check(unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) })
}

/// A shared-data value and its CAS token, or None when the key is absent.
pub fn shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let (mut data, mut size, mut cas) = (null_mut(), 0, 0);
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        NOT_FOUND => Ok(None),
        s => check(s).map(|()| Some((unsafe { owned(data, size) }.unwrap_or_default(), cas))),
    }
}

/// Writes a shared-data value if its CAS token is still `cas` (0: always).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

pub fn send_local_response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    let headers = encode_pairs(headers);
    check(unsafe {
        proxy_send_local_response(
            u32::from(status),
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

pub fn define_metric(kind: Metric, name: &str) -> Result<u32, HostError> {
    let mut id = 0;
    check(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, offset: i64) -> Result<(), HostError> {
    check(unsafe { proxy_increment_metric(id, offset) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    check(unsafe { proxy_record_metric(id, value) })
}

/// Lets the request held by this stream go on (ABI 0.2.1
/// `proxy_continue_stream`, stream type 0: the request).
pub fn continue_request() -> Result<(), HostError> {
    check(unsafe { proxy_continue_stream(0) })
}

/// Sends an HTTP callout. This one goes through the SDK's wrapper: the SDK
/// must register the token to route the answer back to this stream (its
/// wrapper panics only on a status Envoy's `httpCall` never returns).
pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<u32, String> {
    proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        headers.to_vec(),
        Some(body),
        Vec::new(),
        std::time::Duration::from_millis(timeout_ms),
    )
    .map_err(|status| format!("{status:?}"))
}
