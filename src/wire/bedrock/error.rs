//! Errors this edge raises, and Bedrock's error bodies and stream
//! exceptions in OpenAI's shape.

use super::{MAX_MESSAGE_CHARS, PROVIDER};
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

/// An error answer (`{"message": …}`, sometimes `Message`); Bedrock names
/// the exception only in a header, so the status decides the type.
pub fn decode_error_body(status: u16, body: &[u8]) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let capital = parsed
        .as_ref()
        .and_then(|v| v.get("Message"))
        .and_then(Value::as_str);
    match capital {
        Some(m) => ApiError::new(status, kind_for_status(status), truncate(m)),
        None => normalize_upstream_error(status, body),
    }
}

/// The status and OpenAI error for a stream exception message.
pub(super) fn exception(name: &str, payload: &str) -> ApiError {
    let status = match name {
        "validationException" => 400,
        "accessDeniedException" => 403,
        "resourceNotFoundException" => 404,
        "throttlingException" => 429,
        "modelTimeoutException" => 504,
        "serviceUnavailableException" => 503,
        "internalServerException" => 500,
        // modelStreamErrorException and anything new: the model failed.
        _ => 502,
    };
    let message = serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(truncate)
        })
        .unwrap_or_else(|| format!("{PROVIDER} ended the stream with {name}."));
    let mut e = ApiError::new(status, kind_for_status(status), message);
    let code: String = name.chars().take(64).collect();
    e.code = Some(Cow::Owned(code));
    e
}

fn truncate(m: &str) -> String {
    match m.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &m[..cut]),
        None => m.to_string(),
    }
}
