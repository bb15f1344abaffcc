//! `x-mock-*` request headers that steer the mock's answer.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::HeaderMap;

use crate::body::StreamOpts;
use crate::encoding::EncodingChoice;
use crate::inject::Inject;

pub const DEFAULT_CHUNK_CHARS: usize = 8;
/// Upper bound for `x-mock-oversize-event` (the filler is built in memory).
pub const MAX_OVERSIZE_EVENT: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Knobs {
    pub content: Option<String>,
    pub status: Option<u16>,
    pub error_body: Option<Bytes>,
    pub retry_after: Option<HeaderValue>,
    pub first_byte_ms: Option<u64>,
    pub chunk_chars: usize,
    pub chunk_delay_ms: Option<u64>,
    pub split_bytes: Option<usize>,
    pub reset_after: Option<usize>,
    pub tool_call: Option<String>,
    pub tool_call_once: Option<String>,
    pub tool_args: Option<String>,
    pub reasoning: Option<String>,
    /// Apply `status` only to requests whose path starts with this (lets a
    /// test fail one provider's API while another's succeeds).
    pub status_path_prefix: Option<String>,
    /// `None`: the server's default (`--compress` makes it `auto`).
    pub encoding: Option<EncodingChoice>,
    pub reset_before_headers: bool,
    pub reset_mid_body: Option<usize>,
    pub truncate_body: Option<usize>,
    pub content_type: Option<HeaderValue>,
    pub body: Option<Bytes>,
    pub stall_after: Option<usize>,
    pub end_after: Option<usize>,
    pub sse_inject: Option<Inject>,
    pub oversize_event: Option<usize>,
    pub echo_key: bool,
    /// The credential the request carried; filled in by the server when
    /// `echo_key` is set (it also needs the query string).
    pub credential: Option<String>,
    pub connection_close: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            content: None,
            status: None,
            error_body: None,
            retry_after: None,
            first_byte_ms: None,
            chunk_chars: DEFAULT_CHUNK_CHARS,
            chunk_delay_ms: None,
            split_bytes: None,
            reset_after: None,
            tool_call: None,
            tool_call_once: None,
            tool_args: None,
            reasoning: None,
            status_path_prefix: None,
            encoding: None,
            reset_before_headers: false,
            reset_mid_body: None,
            truncate_body: None,
            content_type: None,
            body: None,
            stall_after: None,
            end_after: None,
            sse_inject: None,
            oversize_event: None,
            echo_key: false,
            credential: None,
            connection_close: false,
        }
    }
}

/// Header values may carry UTF-8 (obs-text); take them byte-for-byte.
fn text(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

fn number<T: std::str::FromStr>(name: &str, v: &HeaderValue) -> Result<T, String> {
    let s = text(v);
    s.trim()
        .parse::<T>()
        .map_err(|_| format!("mock-provider: invalid value for {name}: {s:?}"))
}

/// On/off knobs take `1`/`true` or `0`/`false`.
fn flag(name: &str, v: &HeaderValue) -> Result<bool, String> {
    match text(v).trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(format!(
            "mock-provider: invalid value for {name}: {other:?} (expected 1 or 0)"
        )),
    }
}

impl Knobs {
    /// Parse the knobs. An unparsable numeric knob is an error (reported by the
    /// caller in the provider's own error format) rather than silently ignored.
    pub fn from_headers(headers: &HeaderMap) -> Result<Knobs, String> {
        let mut k = Knobs::default();
        for (name, value) in headers {
            let name = name.as_str();
            let Some(knob) = name.strip_prefix("x-mock-") else {
                continue;
            };
            match knob {
                "content" => k.content = Some(text(value)),
                "status" => {
                    let code: u16 = number(name, value)?;
                    if !(200..=599).contains(&code) {
                        return Err(format!(
                            "mock-provider: x-mock-status must be within 200..=599, got {code}"
                        ));
                    }
                    k.status = Some(code);
                }
                "error-body" => k.error_body = Some(Bytes::copy_from_slice(value.as_bytes())),
                "retry-after" => k.retry_after = Some(value.clone()),
                "first-byte-ms" => k.first_byte_ms = Some(number(name, value)?),
                "chunk-chars" => {
                    let n: usize = number(name, value)?;
                    k.chunk_chars = if n == 0 { DEFAULT_CHUNK_CHARS } else { n };
                }
                "chunk-delay-ms" => k.chunk_delay_ms = Some(number(name, value)?),
                "split-bytes" => {
                    let n: usize = number(name, value)?;
                    if n == 0 {
                        return Err("mock-provider: x-mock-split-bytes must be at least 1".into());
                    }
                    k.split_bytes = Some(n);
                }
                "reset-after" => k.reset_after = Some(number(name, value)?),
                "tool-call" => k.tool_call = Some(text(value)),
                "tool-call-once" => k.tool_call_once = Some(text(value)),
                "tool-args" => k.tool_args = Some(text(value)),
                "reasoning" => k.reasoning = Some(text(value)),
                "status-path-prefix" => k.status_path_prefix = Some(text(value)),
                "encoding" => {
                    k.encoding = Some(EncodingChoice::parse(&text(value)).ok_or_else(|| {
                        format!(
                            "mock-provider: invalid value for {name}: {:?} (expected auto, gzip, deflate, br or identity)",
                            text(value)
                        )
                    })?)
                }
                "reset-before-headers" => k.reset_before_headers = flag(name, value)?,
                "reset-mid-body" => k.reset_mid_body = Some(number(name, value)?),
                "truncate-body" => k.truncate_body = Some(number(name, value)?),
                "content-type" => k.content_type = Some(value.clone()),
                "body" => k.body = Some(Bytes::copy_from_slice(value.as_bytes())),
                "stall-after" => k.stall_after = Some(number(name, value)?),
                "end-after" => k.end_after = Some(number(name, value)?),
                "sse-inject" => {
                    k.sse_inject = Some(Inject::parse(&text(value)).ok_or_else(|| {
                        format!(
                            "mock-provider: invalid value for {name}: {:?} (expected KIND@N, KIND one of badjson, badutf8, nofield, error)",
                            text(value)
                        )
                    })?)
                }
                "oversize-event" => {
                    let n: usize = number(name, value)?;
                    if n > MAX_OVERSIZE_EVENT {
                        return Err(format!(
                            "mock-provider: x-mock-oversize-event must be at most {MAX_OVERSIZE_EVENT}, got {n}"
                        ));
                    }
                    k.oversize_event = Some(n);
                }
                "echo-key" => k.echo_key = flag(name, value)?,
                "connection-close" => k.connection_close = flag(name, value)?,
                _ => {}
            }
        }
        Ok(k)
    }

    /// Drops `status` (and its bodies) when the request's path is not the one
    /// `x-mock-status-path-prefix` names.
    pub fn scoped_to(mut self, path: &str) -> Knobs {
        if let Some(prefix) = &self.status_path_prefix {
            if !path.starts_with(prefix.as_str()) {
                self.status = None;
                self.error_body = None;
                self.body = None;
            }
        }
        self
    }

    pub fn stream_opts(&self) -> StreamOpts {
        StreamOpts {
            delay: self
                .chunk_delay_ms
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
            split_bytes: self.split_bytes,
            reset_after: self.reset_after,
            stall_after: self.stall_after,
            end_after: self.end_after,
        }
    }
}
