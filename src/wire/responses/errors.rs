//! Errors in OpenAI's wording, and the two ways they reach a Responses
//! client: the error JSON of an HTTP response, or an `error` stream event.

use crate::error::ApiError;
use serde_json::{json, Value};

pub(crate) fn missing(param: &str) -> ApiError {
    ApiError::invalid_request(format!("Missing required parameter: '{param}'."))
        .with_param(param)
        .with_code("missing_required_parameter")
}

pub(crate) fn wrong_type(param: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::invalid_request(format!(
        "Invalid type for '{param}': expected {expected}, but got {} instead.",
        type_name(got)
    ))
    .with_param(param)
    .with_code("invalid_type")
}

pub(crate) fn invalid_value(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("invalid_value")
}

/// `Invalid value: 'x'. Supported values are: 'a', 'b', and 'c'.`
pub(crate) fn not_one_of(param: &str, got: &str, supported: &[&str]) -> ApiError {
    let quoted: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
    let list = match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [head @ .., last] => format!("{}, and {last}", head.join(", ")),
    };
    invalid_value(
        param,
        format!("Invalid value: '{got}'. Supported values are: {list}."),
    )
}

pub(crate) fn unknown_parameter(param: &str) -> ApiError {
    ApiError::invalid_request(format!("Unknown parameter: '{param}'."))
        .with_param(param)
        .with_code("unknown_parameter")
}

/// A field that cannot be honoured by this gateway; `message` says why.
pub(crate) fn unsupported(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("unsupported_parameter")
}

/// A value (tool type, item type) that cannot be translated.
pub(crate) fn unsupported_value(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("unsupported_value")
}

/// A field that needs state kept between requests; `advice` finishes the
/// sentence "This gateway is stateless: '<param>' …".
pub(crate) fn stateless(param: &str, advice: &str) -> ApiError {
    unsupported(
        param,
        format!("This gateway is stateless: '{param}' {advice}"),
    )
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The body of an HTTP error response: OpenAI's error JSON, as for every
/// other endpoint.
pub fn render_error(e: &ApiError) -> Vec<u8> {
    e.to_json()
}

/// An `error` stream event for a stream that has no writer yet (its
/// sequence number is 0); a running stream uses
/// [`super::ResponsesWriter::error_frame`].
pub fn stream_error(e: &ApiError) -> Vec<u8> {
    error_frame(e, 0)
}

/// `event: error` with the fields of the SDK's `ResponseErrorEvent` (`code`,
/// `message`, `param`) and, nested, the error object itself. The nesting is
/// what makes `client.responses.create(stream=True)` raise: openai-python's
/// `Stream.__stream__` (legacy stream mode, which `responses.create` uses)
/// raises `APIError` for a `data:` whose JSON has a truthy `error` member,
/// and otherwise would hand the event to the caller and go on waiting.
pub(crate) fn error_frame(e: &ApiError, sequence_number: u64) -> Vec<u8> {
    let data = json!({
        "type": "error",
        "sequence_number": sequence_number,
        "code": e.code,
        "message": e.message,
        "param": e.param,
        "error": {
            "type": e.kind,
            "code": e.code,
            "message": e.message,
            "param": e.param,
        },
    });
    let mut out = b"event: error\ndata: ".to_vec();
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    out
}
