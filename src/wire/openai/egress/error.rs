//! Errors this edge raises, and errors the provider reports inside a 200
//! body or a stream.

use crate::error::{kind_for_status, normalize_upstream_error, ApiError};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

/// The error `code` of upstream answers the gateway cannot use.
const INVALID_RESPONSE: &str = "upstream_invalid_response";

/// A request this edge cannot express for the provider.
pub(super) fn unsupported(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("unsupported_parameter")
}

/// Content the provider's chat API cannot take in that place.
pub(super) fn unsupported_content(param: String, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("unsupported_content_type")
}

pub(super) fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
        .with_param(param)
        .with_code("invalid_value")
}

/// An extra field that would overwrite (or duplicate) a member the edge
/// writes from the request's own parameters.
pub(super) fn clash(key: &str) -> ApiError {
    invalid(
        key,
        format!("'{key}' conflicts with a standard parameter of this request, which is sent to this model's provider as '{key}'. Set it one way."),
    )
}

/// A provider answer the gateway cannot use.
pub(super) fn bad_upstream(message: impl Into<String>) -> ApiError {
    ApiError::new(502, "api_error", message).with_code(INVALID_RESPONSE)
}

/// Reads `body` as the JSON object `T`. Err says what was wrong: not JSON,
/// not an object (serde would read a struct from an array by position), or
/// not `expected` (a member of the wrong type).
pub(super) fn parse_object<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    what: &str,
    expected: &str,
) -> Result<T, ApiError> {
    let is_object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let result = if is_object {
        serde_json::from_slice::<T>(body)
    } else {
        match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => {
                return Err(bad_upstream(format!(
                    "The provider returned {what} that is not a JSON object."
                )))
            }
            Err(e) => Err(e),
        }
    };
    result.map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            bad_upstream(format!(
                "The provider returned {what} that is not valid JSON: {e}."
            ))
        } else {
            bad_upstream(format!(
                "The provider returned {what} that is not {expected}: {e}."
            ))
        }
    })
}

/// The HTTP status an in-body error names through its `code`: a number (or
/// numeric string) from 400 to 599, or one of OpenAI's well-known codes;
/// 502 otherwise (the provider failed, whatever it said).
fn status_of(error: &Value) -> u16 {
    let code = error.get("code");
    let numeric = code.and_then(|c| {
        c.as_u64()
            .or_else(|| c.as_str().and_then(|s| s.parse::<u64>().ok()))
    });
    if let Some(status) = numeric
        .filter(|n| (400..=599).contains(n))
        .and_then(|n| u16::try_from(n).ok())
    {
        return status;
    }
    match code.and_then(Value::as_str) {
        Some("rate_limit_exceeded" | "insufficient_quota") => 429,
        Some("invalid_api_key") => 401,
        Some("model_not_found") => 404,
        Some("context_length_exceeded") => 400,
        _ => 502,
    }
}

/// An error the provider reported in a body it answered with 200 (a
/// completion, a stream event): `error` is the body's `error` member, or
/// the body itself for vLLM-style `{"object": "error", …}`.
pub(super) fn in_body_error(error: &Value, body: &[u8]) -> ApiError {
    normalize_upstream_error(status_of(error), body)
}

/// MiniMax's `base_resp`: how it reports a failure inside a 200 (with
/// `choices: null`).
#[derive(Debug, Deserialize)]
pub(super) struct BaseResp {
    #[serde(default)]
    status_code: Option<i64>,
    #[serde(default)]
    status_msg: Option<String>,
}

impl BaseResp {
    /// The failure it reports, if any; the status from MiniMax's documented
    /// codes (rate limits, authentication, balance, parameters), else 502.
    pub(super) fn error(&self) -> Option<ApiError> {
        let code = self.status_code.filter(|c| *c != 0)?;
        let status = match code {
            1002 | 1039 => 429,
            1004 => 401,
            1008 => 402,
            2013 => 400,
            _ => 502,
        };
        let message = self
            .status_msg
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("The provider reported error {code}."));
        Some(ApiError::new(status, kind_for_status(status), message).with_code(code.to_string()))
    }
}
