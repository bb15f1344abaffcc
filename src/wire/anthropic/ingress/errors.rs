//! Errors in Anthropic's shape, `{"type":"error","error":{"type","message"}}`,
//! and the 400s this edge raises.

use super::loc::Loc;
use super::push_json_str;
use crate::error::ApiError;

/// Error types Anthropic documents.
const ANTHROPIC_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
];

/// Types only Anthropic has: an error whose OpenAI-style `kind` already is
/// one of these came from Anthropic and keeps it.
const ANTHROPIC_ONLY_TYPES: &[&str] = &[
    "billing_error",
    "not_found_error",
    "request_too_large",
    "overloaded_error",
];

/// Anthropic's error type for an HTTP status.
fn type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        408 | 504 => "timeout_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The Anthropic error type to show for `e`: the provider's own Anthropic
/// type when the Anthropic egress kept it in `code` (or `kind`), else the
/// type Anthropic uses for the status.
pub(super) fn anthropic_type(e: &ApiError) -> &str {
    if let Some(code) = e.code.as_deref() {
        if ANTHROPIC_TYPES.contains(&code) {
            return code;
        }
    }
    if ANTHROPIC_ONLY_TYPES.contains(&e.kind.as_ref()) {
        return &e.kind;
    }
    type_for_status(e.status)
}

fn push_error_json(e: &ApiError, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":");
    push_json_str(out, anthropic_type(e));
    out.extend_from_slice(b",\"message\":");
    push_json_str(out, &e.message);
    out.extend_from_slice(b"}}");
}

/// An error response body in Anthropic's shape; the status stays `e.status`.
pub fn render_error(e: &ApiError) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + e.message.len());
    push_error_json(e, &mut out);
    out
}

/// The `event: error` frame that ends an Anthropic stream.
pub fn stream_error(e: &ApiError) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + e.message.len());
    out.extend_from_slice(b"event: error\ndata: ");
    push_error_json(e, &mut out);
    out.extend_from_slice(b"\n\n");
    out
}

/// A 400 at `loc`, worded as Anthropic words validation errors
/// (`max_tokens: Field required`).
pub(super) fn invalid(loc: &Loc, message: impl std::fmt::Display) -> ApiError {
    invalid_at(loc.path(), message)
}

fn invalid_at(path: String, message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_request(format!("{path}: {message}")).with_param(path)
}

/// A 400 for a valid Anthropic request that only an Anthropic target can
/// serve (server tools, MCP servers, server-side content blocks).
pub(super) fn needs_anthropic(path: String, what: &str) -> ApiError {
    invalid_at(
        path,
        format!("{what} runs on Anthropic's servers and cannot be translated for this model's provider; send this request to a model served by Anthropic, or remove it."),
    )
    .with_code("unsupported_parameter")
}
