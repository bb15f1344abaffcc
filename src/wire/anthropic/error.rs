//! Errors this edge raises, and Anthropic's error bodies and error types
//! translated to OpenAI's.

use super::PROVIDER;
use crate::error::{kind_for_status, normalize_upstream_error, ApiError};
use serde_json::Value;
use std::borrow::Cow;

pub(super) fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid_value(param, message)
}

pub(super) fn unsupported(param: &str, why: &str) -> ApiError {
    ApiError::unsupported_by(PROVIDER, param, why)
}

pub(super) fn bad_upstream(message: impl Into<String>) -> ApiError {
    ApiError::new(502, "api_error", message)
}

/// HTTP status Anthropic documents for an error type (stream errors carry
/// only the type).
pub(super) fn status_for_type(ty: &str) -> u16 {
    match ty {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 502,
    }
}

/// OpenAI error `type` and `code` for Anthropic's error type.
pub(super) fn map_error_type(
    ty: &str,
    status: u16,
) -> (Cow<'static, str>, Option<Cow<'static, str>>) {
    const SAME: &[&str] = &[
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "api_error",
        "timeout_error",
    ];
    match SAME.iter().find(|s| **s == ty) {
        Some(s) => (Cow::Borrowed(s), None),
        None => (
            Cow::Borrowed(kind_for_status(status)),
            Some(Cow::Owned(ty.to_string())),
        ),
    }
}

fn anthropic_error_type(v: &Value) -> Option<&str> {
    v.get("error")?
        .get("type")?
        .as_str()
        .filter(|t| !t.is_empty() && t.len() <= 64)
}

pub fn decode_error_body(status: u16, body: &[u8]) -> ApiError {
    let mut err = normalize_upstream_error(status, body);
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(ty) = anthropic_error_type(&v) {
            let (kind, code) = map_error_type(ty, status);
            err.kind = kind;
            err.code = code;
        }
    }
    err
}
