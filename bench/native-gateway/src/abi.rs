//! Hand-written `extern "C"` bindings of the subset of Envoy 1.40.0's
//! dynamic-module ABI (version "v0.2.0") this host uses, written from the
//! header's and the binary's facts, plus thin safe wrappers.

#![allow(non_camel_case_types, dead_code)]

use std::ffi::c_void;

/// `envoy_dynamic_module_type_envoy_buffer` (Envoy-owned bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl EnvoyBuffer {
    pub const EMPTY: EnvoyBuffer = EnvoyBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };

    /// The bytes, valid until Envoy changes what they point to.
    pub unsafe fn bytes<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.length == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(self.ptr, self.length)
        }
    }
}

/// `envoy_dynamic_module_type_module_buffer` (module-owned bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    pub fn from(b: &[u8]) -> Self {
        ModuleBuffer {
            ptr: b.as_ptr(),
            length: b.len(),
        }
    }
    pub const NULL: ModuleBuffer = ModuleBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };
}

/// `envoy_dynamic_module_type_envoy_http_header` (Envoy-owned key/value).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_module_http_header` (module-owned key/value).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

pub type FilterConfigEnvoyPtr = *mut c_void;
pub type FilterConfigModulePtr = *const c_void;
pub type FilterEnvoyPtr = *mut c_void;
pub type FilterModulePtr = *const c_void;

// envoy_dynamic_module_type_http_header_type
pub const HEADER_REQUEST: u32 = 0;
pub const HEADER_RESPONSE: u32 = 2;

// envoy_dynamic_module_type_http_body_type
pub const BODY_RECEIVED_REQUEST: u32 = 0;
pub const BODY_BUFFERED_REQUEST: u32 = 1;
pub const BODY_RECEIVED_RESPONSE: u32 = 2;
pub const BODY_BUFFERED_RESPONSE: u32 = 3;

// headers status (= FilterHeadersStatus)
pub const HEADERS_CONTINUE: u32 = 0;
pub const HEADERS_STOP_ITERATION: u32 = 1;
// body status (= FilterDataStatus)
pub const BODY_CONTINUE: u32 = 0;
pub const BODY_STOP_ITERATION_AND_BUFFER: u32 = 1;
// trailers status (= FilterTrailersStatus)
pub const TRAILERS_CONTINUE: u32 = 0;
pub const TRAILERS_STOP_ITERATION: u32 = 1;

// envoy_dynamic_module_type_log_level
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

// envoy_dynamic_module_type_metadata_source
pub const META_HOST: u32 = 3;
// envoy_dynamic_module_type_attribute_id (position in the enum)
pub const ATTR_RESPONSE_CODE: u32 = 15;
pub const ATTR_RESPONSE_CODE_DETAILS: u32 = 16;
pub const ATTR_SOURCE_ADDRESS: u32 = 24;
pub const ATTR_XDS_FILTER_CHAIN_NAME: u32 = 66;

extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    pub fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;

    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: FilterEnvoyPtr,
        header_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoyPtr,
        header_type: u32,
        result: *mut EnvoyHttpHeader,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_clear_route_cache(filter: FilterEnvoyPtr);

    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter: FilterEnvoyPtr,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: FilterEnvoyPtr,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoyPtr,
        body_type: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_drain_body(
        filter: FilterEnvoyPtr,
        body_type: u32,
        n: usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter: FilterEnvoyPtr,
        body_type: u32,
        data: ModuleBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterEnvoyPtr,
        status_code: u32,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: FilterEnvoyPtr);

    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut u64,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_metadata_string(
        filter: FilterEnvoyPtr,
        source: u32,
        ns: ModuleBuffer,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;
}

// ------------------------------------------------------------ safe wrappers

pub fn log(level: u32, message: &str) {
    unsafe { envoy_dynamic_module_callback_log(level, ModuleBuffer::from(message.as_bytes())) }
}

pub fn log_enabled(level: u32) -> bool {
    unsafe { envoy_dynamic_module_callback_log_enabled(level) }
}

/// Every header of one map, copied out.
pub fn headers(f: FilterEnvoyPtr, header_type: u32) -> Option<Vec<(String, String)>> {
    unsafe {
        let n = envoy_dynamic_module_callback_http_get_headers_size(f, header_type);
        let mut raw: Vec<EnvoyHttpHeader> = Vec::with_capacity(n);
        if n > 0 && !envoy_dynamic_module_callback_http_get_headers(f, header_type, raw.as_mut_ptr()) {
            return None;
        }
        raw.set_len(n);
        Some(
            raw.iter()
                .map(|h| {
                    let k = EnvoyBuffer { ptr: h.key_ptr, length: h.key_length }.bytes();
                    let v = EnvoyBuffer { ptr: h.value_ptr, length: h.value_length }.bytes();
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
        )
    }
}

/// Sets (`Some`) or removes (`None`) a header. Envoy removes the header
/// when the value pointer is null (or the value is empty).
pub fn set_header(f: FilterEnvoyPtr, header_type: u32, name: &str, value: Option<&str>) -> bool {
    let v = value.map_or(ModuleBuffer::NULL, |v| ModuleBuffer::from(v.as_bytes()));
    unsafe { envoy_dynamic_module_callback_http_set_header(f, header_type, ModuleBuffer::from(name.as_bytes()), v) }
}

pub fn body_size(f: FilterEnvoyPtr, body_type: u32) -> usize {
    unsafe { envoy_dynamic_module_callback_http_get_body_size(f, body_type) }
}

/// Copies one body (received or buffered) out of Envoy, appending to `out`.
/// Returns the number of bytes copied.
pub fn copy_body(f: FilterEnvoyPtr, body_type: u32, out: &mut Vec<u8>) -> usize {
    unsafe {
        let n = envoy_dynamic_module_callback_http_get_body_chunks_size(f, body_type);
        if n == 0 {
            return 0;
        }
        let mut chunks: Vec<EnvoyBuffer> = Vec::with_capacity(n);
        if !envoy_dynamic_module_callback_http_get_body_chunks(f, body_type, chunks.as_mut_ptr()) {
            return 0;
        }
        chunks.set_len(n);
        let before = out.len();
        for c in &chunks {
            out.extend_from_slice(c.bytes());
        }
        out.len() - before
    }
}

pub fn drain_body(f: FilterEnvoyPtr, body_type: u32, n: usize) -> bool {
    unsafe { envoy_dynamic_module_callback_http_drain_body(f, body_type, n) }
}

pub fn append_body(f: FilterEnvoyPtr, body_type: u32, data: &[u8]) -> bool {
    unsafe { envoy_dynamic_module_callback_http_append_body(f, body_type, ModuleBuffer::from(data)) }
}

pub fn attribute_string(f: FilterEnvoyPtr, id: u32) -> Option<String> {
    let mut b = EnvoyBuffer::EMPTY;
    unsafe {
        if !envoy_dynamic_module_callback_http_filter_get_attribute_string(f, id, &mut b) {
            return None;
        }
        Some(String::from_utf8_lossy(b.bytes()).into_owned())
    }
}

pub fn attribute_int(f: FilterEnvoyPtr, id: u32) -> Option<u64> {
    let mut v = 0u64;
    unsafe { envoy_dynamic_module_callback_http_filter_get_attribute_int(f, id, &mut v) }.then_some(v)
}

pub fn metadata_string(f: FilterEnvoyPtr, source: u32, ns: &str, key: &str) -> Option<String> {
    let mut b = EnvoyBuffer::EMPTY;
    unsafe {
        if !envoy_dynamic_module_callback_http_get_metadata_string(
            f,
            source,
            ModuleBuffer::from(ns.as_bytes()),
            ModuleBuffer::from(key.as_bytes()),
            &mut b,
        ) {
            return None;
        }
        Some(String::from_utf8_lossy(b.bytes()).into_owned())
    }
}

pub fn set_filter_state(f: FilterEnvoyPtr, key: &str, value: &[u8]) -> bool {
    unsafe {
        envoy_dynamic_module_callback_http_set_filter_state_bytes(
            f,
            ModuleBuffer::from(key.as_bytes()),
            ModuleBuffer::from(value),
        )
    }
}

pub fn filter_state(f: FilterEnvoyPtr, key: &str) -> Option<Vec<u8>> {
    let mut b = EnvoyBuffer::EMPTY;
    unsafe {
        if !envoy_dynamic_module_callback_http_get_filter_state_bytes(f, ModuleBuffer::from(key.as_bytes()), &mut b) {
            return None;
        }
        Some(b.bytes().to_vec())
    }
}

pub fn send_response(f: FilterEnvoyPtr, status: u16, headers: &[(&str, &str)], body: &[u8], details: &str) {
    let mut hs: Vec<ModuleHttpHeader> = headers
        .iter()
        .map(|(k, v)| ModuleHttpHeader {
            key_ptr: k.as_ptr(),
            key_length: k.len(),
            value_ptr: v.as_ptr(),
            value_length: v.len(),
        })
        .collect();
    unsafe {
        envoy_dynamic_module_callback_http_send_response(
            f,
            u32::from(status),
            hs.as_mut_ptr(),
            hs.len(),
            ModuleBuffer::from(body),
            if details.is_empty() { ModuleBuffer::NULL } else { ModuleBuffer::from(details.as_bytes()) },
        )
    }
}

pub fn continue_decoding(f: FilterEnvoyPtr) {
    unsafe { envoy_dynamic_module_callback_http_filter_continue_decoding(f) }
}

pub fn clear_route_cache(f: FilterEnvoyPtr) {
    unsafe { envoy_dynamic_module_callback_http_clear_route_cache(f) }
}
