//! Errors this edge raises, and Gemini's error bodies translated to
//! OpenAI's.

use super::MAX_MESSAGE_CHARS;
use crate::error::{kind_for_status, normalize_upstream_error, ApiError};
use serde_json::Value;

pub(super) fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("invalid_value")
}

pub(super) fn unsupported(param: &str, message: String) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("unsupported_parameter")
}

/// A Gemini response the gateway cannot use.
pub(super) fn bad_upstream(message: impl Into<String>) -> ApiError {
    ApiError::new(502, "api_error", message)
}

pub(super) fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => {
            let mut m = message.get(..cut).unwrap_or(message).to_string();
            m.push('…');
            m
        }
        None => message.to_string(),
    }
}

/// Gemini's `{"code","message","status"}` error object as an `ApiError`.
pub(super) fn gemini_error(status: u16, err: &Value) -> Option<ApiError> {
    let obj = err.as_object()?;
    let message = obj.get("message").and_then(Value::as_str)?;
    let code = obj
        .get("status")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| {
            obj.get("code")
                .and_then(Value::as_u64)
                .map(|c| c.to_string())
        });
    let message = if message.trim().is_empty() {
        format!("Gemini returned HTTP {status} with no error message.")
    } else {
        truncate(message)
    };
    let mut e = ApiError::new(status, kind_for_status(status), message);
    if let Some(code) = code {
        e = e.with_code(code);
    }
    Some(e)
}

/// A Gemini error body (an object, or an array whose first item is one) as
/// an `ApiError`; anything else is normalized generically.
pub fn decode_error_body(status: u16, body: &[u8]) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed
        .as_ref()
        .and_then(|v| match v {
            Value::Array(items) => items.first(),
            other => Some(other),
        })
        .and_then(|v| v.get("error"));
    match err.and_then(|e| gemini_error(status, e)) {
        Some(e) => e,
        None => normalize_upstream_error(status, body),
    }
}
