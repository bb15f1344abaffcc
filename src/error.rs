//! The crate's two error types: [`ApiError`], an error in the client's
//! protocol (OpenAI error JSON `{"error":{"message","type","param","code"}}`),
//! and [`ConfigError`], a configuration problem naming its field.

use crate::redact::{redact, SecretSet};
use serde_json::json;
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// OpenAI's error `type`, e.g. `invalid_request_error`.
    pub kind: Cow<'static, str>,
    pub param: Option<String>,
    pub code: Option<Cow<'static, str>>,
}

impl ApiError {
    pub fn new(
        status: u16,
        kind: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            message: message.into(),
            kind: kind.into(),
            param: None,
            code: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", message)
    }

    /// A 400: the request lacks `param`.
    pub fn missing_parameter(param: impl Into<String>) -> Self {
        let param = param.into();
        Self::invalid_request(format!("Missing required parameter: '{param}'."))
            .with_param(param)
            .with_code("missing_required_parameter")
    }

    /// A 400 naming the field whose value is wrong.
    pub fn invalid_value(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid_request(message)
            .with_param(param)
            .with_code("invalid_value")
    }

    /// A 400: `provider` cannot honour `param` (`why` ends the sentence).
    pub fn unsupported_by(provider: &str, param: &str, why: &str) -> Self {
        Self::invalid_request(format!(
            "Unsupported parameter: '{param}' is not supported by this model's provider ({provider}){why}"
        ))
        .with_param(param)
        .with_code("unsupported_parameter")
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// The error with every provider key in any of its fields replaced by
    /// `[redacted]` (providers echo keys in `message`, `param`, `code`, …).
    pub fn redacted(mut self, secrets: &SecretSet) -> Self {
        if secrets.is_empty() {
            return self;
        }
        self.message = redact(&self.message, secrets);
        self.param = self.param.map(|p| redact(&p, secrets));
        self.code = self.code.map(|c| Cow::Owned(redact(&c, secrets)));
        self.kind = Cow::Owned(redact(&self.kind, secrets));
        self
    }

    pub fn to_json(&self) -> Vec<u8> {
        let v = json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// OpenAI's error `type` for an upstream status, used when a provider's
/// error body has to be rewritten into OpenAI's shape.
pub fn kind_for_status(status: u16) -> &'static str {
    match status {
        400 | 404 | 405 | 409 | 413 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        408 | 504 => "timeout_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

/// Longest provider message kept when rewriting an error body.
const MAX_MESSAGE_CHARS: usize = 2000;

/// Rewrites an upstream error body (provider JSON in any common shape, or
/// text such as Envoy's own "no healthy upstream") into OpenAI's error
/// shape, keeping the provider's message. Callers redact keys.
pub fn normalize_upstream_error(status: u16, body: &[u8]) -> ApiError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| -> Option<String> {
        match err?.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let message = match (err, &parsed) {
        (Some(serde_json::Value::String(s)), _) => Some(s.clone()),
        (Some(_), _) => field("message"),
        (None, Some(v)) => v.get("message").and_then(|m| m.as_str()).map(String::from),
        (None, None) => None,
    };
    let message = match message {
        Some(m) => m,
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("Upstream returned HTTP {status} with no error message.")
            } else {
                format!("Upstream returned HTTP {status}: {text}")
            }
        }
    };
    let mut message = message;
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    let kind = field("type")
        .filter(|t| !t.is_empty() && t.len() <= 64)
        .map(Cow::Owned)
        .unwrap_or(Cow::Borrowed(kind_for_status(status)));
    ApiError {
        status,
        message,
        kind,
        param: field("param"),
        code: field("code").or_else(|| field("status")).map(Cow::Owned),
    }
}

/// A configuration error naming the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config at {}: {}", self.field, self.problem)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(status: u16, body: &str) -> serde_json::Value {
        let secrets = SecretSet::new(["sk-secret-key"]);
        let e = normalize_upstream_error(status, body.as_bytes()).redacted(&secrets);
        assert_eq!(e.status, status);
        serde_json::from_slice(&e.to_json()).unwrap()
    }

    #[test]
    fn keeps_openai_errors() {
        let v = norm(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(
            v,
            json!({"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}})
        );
    }

    #[test]
    fn rewrites_other_shapes_and_text() {
        let v = norm(500, r#"{"error":"model crashed"}"#);
        assert_eq!(v["error"]["message"], "model crashed");
        assert_eq!(v["error"]["type"], "api_error");
        let v = norm(400, r#"{"message":"bad thing","code":1214}"#);
        assert_eq!(v["error"]["message"], "bad thing");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let v = norm(
            403,
            r#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#,
        );
        assert_eq!(v["error"]["code"], "403");
        assert_eq!(v["error"]["type"], "permission_error");
        let v = norm(503, "no healthy upstream");
        assert_eq!(
            v["error"]["message"],
            "Upstream returned HTTP 503: no healthy upstream"
        );
        let v = norm(502, "");
        assert_eq!(
            v["error"]["message"],
            "Upstream returned HTTP 502 with no error message."
        );
    }

    #[test]
    fn scrubs_keys_and_caps_length() {
        let v = norm(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-secret-key"}}"#,
        );
        assert_eq!(
            v["error"]["message"],
            "Incorrect API key provided: [redacted]"
        );
        assert_eq!(v["error"]["type"], "authentication_error");
        // Keys echoed in any field.
        let v = norm(
            401,
            r#"{"error":{"message":"no","type":"bad sk-secret-key","param":"sk-secret-key","code":"k=sk-secret-key"}}"#,
        );
        assert_eq!(
            v["error"],
            json!({"message":"no","type":"bad [redacted]","param":"[redacted]","code":"k=[redacted]"})
        );
        let long = "x".repeat(5000);
        let v = norm(500, &long);
        assert!(v["error"]["message"].as_str().unwrap().chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn serializes_openai_shape() {
        let e = ApiError::invalid_request("bad")
            .with_param("messages")
            .with_code("invalid_type");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":"invalid_type"}})
        );
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::new(503, "api_error", "x").to_json()).unwrap();
        assert_eq!(v["error"]["param"], serde_json::Value::Null);
        assert_eq!(v["error"]["code"], serde_json::Value::Null);
    }
}
