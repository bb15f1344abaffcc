//! Envoy's own replies (a bad request line, headers too large, HTTP/1.0, a
//! stalled upload, an unreachable provider, …) in OpenAI's error shape,
//! through the connection manager's `local_reply_config`.
//!
//! The filter's own replies are local replies too, already OpenAI JSON; the
//! mappers leave them alone. Envoy gives every local reply it sends itself
//! a response code detail (`http1.invalid_characters`, `low_version`,
//! `stream_idle_timeout`, …), while a Wasm filter's reply has none, so each
//! mapper also requires a non-empty detail (a CEL access-log filter).

use serde_json::{json, Value};

/// status, OpenAI error type, code, message (Envoy command operators
/// allowed).
const REPLIES: &[(u16, &str, &str, &str)] = &[
    (
        400,
        "invalid_request_error",
        "bad_request",
        "The request is not valid HTTP (%RESPONSE_CODE_DETAILS%).",
    ),
    (
        403,
        "permission_error",
        "forbidden",
        "%LOCAL_REPLY_BODY% (%RESPONSE_CODE_DETAILS%).",
    ),
    (
        404,
        "invalid_request_error",
        "not_found",
        "%LOCAL_REPLY_BODY% (%RESPONSE_CODE_DETAILS%).",
    ),
    (
        408,
        "timeout_error",
        "request_timeout",
        "The request timed out: nothing was received or sent for too long (%RESPONSE_CODE_DETAILS%).",
    ),
    (
        // Filled in with the configured limit.
        413,
        "invalid_request_error",
        "request_too_large",
        "",
    ),
    (
        426,
        "invalid_request_error",
        "upgrade_required",
        "This gateway speaks HTTP/1.1 and HTTP/2, not HTTP/1.0 (%RESPONSE_CODE_DETAILS%).",
    ),
    (
        431,
        "invalid_request_error",
        "request_header_fields_too_large",
        "The request headers are too large (%RESPONSE_CODE_DETAILS%).",
    ),
    (
        500,
        "api_error",
        "internal_error",
        "The gateway could not complete the request: %LOCAL_REPLY_BODY% (%RESPONSE_CODE_DETAILS%).",
    ),
    (
        502,
        "api_error",
        "bad_gateway",
        "The provider's answer could not be used: %LOCAL_REPLY_BODY% (%RESPONSE_CODE_DETAILS%).",
    ),
    (
        503,
        "api_error",
        "service_unavailable",
        "The provider could not be reached: %LOCAL_REPLY_BODY% (%RESPONSE_CODE_DETAILS%).",
    ),
    (
        504,
        "timeout_error",
        "upstream_timeout",
        "The provider did not answer in time: %LOCAL_REPLY_BODY% (%RESPONSE_CODE_DETAILS%).",
    ),
];

/// Only replies Envoy sends itself (see the module comment).
fn from_envoy() -> Value {
    json!({"extension_filter": {
        "name": "envoy.access_loggers.extension_filters.cel",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": "response.code_details != ''"
        }
    }})
}

fn status_is(op: &str, status: u16) -> Value {
    json!({"status_code_filter": {"comparison": {
        "op": op,
        "value": {"default_value": status, "runtime_key": format!("llmgw.local_reply.{status}")}
    }}})
}

fn body(kind: &str, code: Option<&str>, message: &str) -> Value {
    json!({
        "json_format": {"error": {
            "message": message,
            "type": kind,
            "param": null,
            "code": code
        }},
        "content_type": "application/json"
    })
}

/// The `local_reply_config` of the connection manager.
pub fn config(max_request_body_bytes: u64) -> Value {
    let too_large =
        format!("The request body exceeds this gateway's limit of {max_request_body_bytes} bytes.");
    let mut mappers: Vec<Value> = REPLIES
        .iter()
        .map(|&(status, kind, code, message)| {
            let message = if status == 413 { &too_large } else { message };
            json!({
                "filter": {"and_filter": {"filters": [status_is("EQ", status), from_envoy()]}},
                "body_format_override": body(kind, Some(code), message)
            })
        })
        .collect();
    // Any other status Envoy may answer with.
    for (op, status, kind) in [
        ("GE", 500, "api_error"),
        ("GE", 400, "invalid_request_error"),
    ] {
        mappers.push(json!({
            "filter": {"and_filter": {"filters": [status_is(op, status), from_envoy()]}},
            "body_format_override": body(kind, None, "%LOCAL_REPLY_BODY% (%RESPONSE_CODE_DETAILS%).")
        }));
    }
    json!({"mappers": mappers})
}
