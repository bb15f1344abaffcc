//! Envoy's own replies (a bad request line, headers too large, HTTP/1.0, a
//! stalled upload, an unreachable provider, …) in OpenAI's error shape, or
//! Anthropic's for `/v1/messages` clients, through the connection
//! manager's `local_reply_config`. (Once a request went to a provider the
//! filter rewrites any error, Envoy's too, in the client's shape: the
//! Anthropic mappers matter for replies before that, such as a stalled
//! upload's 408.)
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

/// Anthropic's error type for each status above.
fn anthropic_type(status: u16) -> &'static str {
    match status {
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// Requests of Anthropic's Messages API (and its count_tokens).
fn anthropic_client() -> Value {
    json!({"header_filter": {"header": {
        "name": ":path",
        "string_match": {"prefix": "/v1/messages"}
    }}})
}

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

fn details_are(details: &str) -> Value {
    json!({"extension_filter": {
        "name": "envoy.access_loggers.extension_filters.cel",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": format!("response.code_details == '{details}'")
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

fn anthropic_body(kind: &str, message: &str) -> Value {
    json!({
        "json_format": {"type": "error", "error": {"type": kind, "message": message}},
        "content_type": "application/json"
    })
}

/// The `local_reply_config` of the connection manager: the first mapper
/// that matches applies, so Anthropic's come first.
pub fn config(max_request_body_bytes: u64) -> Value {
    let too_large =
        format!("The request body exceeds this gateway's limit of {max_request_body_bytes} bytes.");
    let message = |status: u16, message: &'static str| -> String {
        if status == 413 {
            too_large.clone()
        } else {
            message.to_string()
        }
    };
    let mut anthropic = Vec::new();
    let mut openai = Vec::new();
    // A cluster rule's refusal already carries the Rate Limit Service's
    // OpenAI error (the filter reshapes it for Anthropic clients): kept.
    anthropic.push(json!({"filter": {"and_filter": {"filters": [
        status_is("EQ", 429), details_are("request_rate_limited")
    ]}}}));
    let unavailable = "The cluster rate-limit service could not be asked (%RESPONSE_CODE_DETAILS%); the request was refused (rate_limits.cluster.failure_mode: deny). Retry shortly.";
    anthropic.push(json!({
        "filter": {"and_filter": {"filters": [
            details_are("rate_limiter_error"), anthropic_client()
        ]}},
        "body_format_override": anthropic_body("api_error", unavailable)
    }));
    openai.push(json!({
        "filter": details_are("rate_limiter_error"),
        "body_format_override": body("api_error", Some("rate_limit_unavailable"), unavailable)
    }));
    for &(status, kind, code, text) in REPLIES {
        let text = message(status, text);
        anthropic.push(json!({
            "filter": {"and_filter": {"filters": [
                status_is("EQ", status), from_envoy(), anthropic_client()
            ]}},
            "body_format_override": anthropic_body(anthropic_type(status), &text)
        }));
        openai.push(json!({
            "filter": {"and_filter": {"filters": [status_is("EQ", status), from_envoy()]}},
            "body_format_override": body(kind, Some(code), &text)
        }));
    }
    // Any other status Envoy may answer with.
    let other = "%LOCAL_REPLY_BODY% (%RESPONSE_CODE_DETAILS%).";
    for (op, status, kind) in [
        ("GE", 500, "api_error"),
        ("GE", 400, "invalid_request_error"),
    ] {
        anthropic.push(json!({
            "filter": {"and_filter": {"filters": [
                status_is(op, status), from_envoy(), anthropic_client()
            ]}},
            "body_format_override": anthropic_body(anthropic_type(status), other)
        }));
        openai.push(json!({
            "filter": {"and_filter": {"filters": [status_is(op, status), from_envoy()]}},
            "body_format_override": body(kind, None, other)
        }));
    }
    anthropic.extend(openai);
    json!({"mappers": anthropic})
}
