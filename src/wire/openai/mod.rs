//! The unified (OpenAI) API at the gateway's edge: request validation with
//! OpenAI's error wording, the `/v1/models` list, and the ingress edge of the
//! hub (`to_hub` requests in, `render` responses and chunks out).

pub mod egress;
mod facts;
pub(crate) use facts::content_text;
pub(crate) mod quick;
mod quick_hub;
pub mod render;
pub mod splice;
pub mod to_hub;

pub use facts::facts;

use crate::error::ApiError;
use crate::wire::hub::{ChatRequest, Operation};
use serde_json::{json, Map, Value};
use std::cell::OnceCell;

/// A validated request body with the facts routing needs.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    /// The body as a tree, built on first use when the quick check
    /// validated the bytes without one.
    body: OnceCell<Map<String, Value>>,
    pub model: String,
    pub stream: bool,
    /// The bytes `body` was parsed from, when the caller handed them over
    /// (`parse_request_owned`): passthrough edits them in place.
    pub raw: Vec<u8>,
}

impl ParsedRequest {
    /// A request validated into a tree.
    pub fn parsed(body: Map<String, Value>, model: String, stream: bool) -> Self {
        Self {
            body: OnceCell::from(body),
            model,
            stream,
            raw: Vec::new(),
        }
    }

    /// A request whose bytes were validated without a tree.
    pub(crate) fn unparsed(checked: quick::Checked, raw: Vec<u8>) -> Self {
        Self {
            body: OnceCell::new(),
            model: checked.model,
            stream: checked.stream,
            raw,
        }
    }

    /// The body as a tree.
    pub fn body(&self) -> &Map<String, Value> {
        self.body.get_or_init(|| tree(&self.raw))
    }

    /// The body as a tree, taken out to edit; [`Self::put_body`] gives it
    /// back.
    pub fn take_body(&mut self) -> Map<String, Value> {
        self.body.take().unwrap_or_else(|| tree(&self.raw))
    }

    pub fn put_body(&mut self, body: Map<String, Value>) {
        self.body = OnceCell::from(body);
    }

    /// The hub form of a Chat Completions request read straight from its
    /// bytes, when no tree was built (a policy may have edited the tree)
    /// and the body has a common shape; `None`: use `to_hub` on the tree.
    pub fn quick_hub(&self, upstream_model: &str) -> Option<ChatRequest> {
        if self.body.get().is_some() || self.raw.is_empty() {
            return None;
        }
        quick_hub::chat_request(&self.raw, upstream_model)
    }
}

/// The tree of bytes already validated as a JSON object.
fn tree(raw: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(raw) {
        Ok(Value::Object(body)) => body,
        _ => Map::new(),
    }
}

/// [`parse_request`], keeping the bytes for an in-place rewrite. A Chat
/// Completions body the quick check accepts builds no tree until asked.
pub fn parse_request_owned(op: Operation, bytes: Vec<u8>) -> Result<ParsedRequest, ApiError> {
    if op == Operation::ChatCompletions {
        if let Some(checked) = quick::chat(&bytes) {
            return Ok(ParsedRequest::unparsed(checked, bytes));
        }
    }
    let mut parsed = parse_request(op, &bytes)?;
    parsed.raw = bytes;
    Ok(parsed)
}

/// Parses and validates a request body for `op`.
pub fn parse_request(op: Operation, bytes: &[u8]) -> Result<ParsedRequest, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid_request(format!(
            "We could not parse the JSON body of your request: {e}. The API expects a JSON object."
        ))
        .with_code("invalid_json")
    })?;
    let Value::Object(body) = value else {
        return Err(ApiError::invalid_request(format!(
            "Invalid request body: expected a JSON object, but got {} instead.",
            type_name(&value)
        ))
        .with_code("invalid_type"));
    };
    let model = match body.get("model") {
        None | Some(Value::Null) => return Err(missing("model")),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(ApiError::invalid_request(
                "Invalid 'model': empty string. Expected a non-empty model name.",
            )
            .with_param("model")
            .with_code("invalid_value"))
        }
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(wrong_type("model", "a string", v)),
    };
    match op {
        Operation::ChatCompletions => validate_chat(&body)?,
        Operation::Embeddings => validate_embeddings(&body)?,
    }
    let stream = matches!(body.get("stream"), Some(Value::Bool(true)));
    Ok(ParsedRequest::parsed(body, model, stream))
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

fn validate_chat(body: &Map<String, Value>) -> Result<(), ApiError> {
    let messages = match body.get("messages") {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(wrong_type("messages", "an array", v)),
    };
    if messages.is_empty() {
        return Err(ApiError::invalid_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        )
        .with_param("messages")
        .with_code("empty_array"));
    }
    for (i, m) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let Value::Object(m) = m else {
            return Err(wrong_type(&path, "an object", m));
        };
        let role = match m.get("role") {
            None | Some(Value::Null) => return Err(missing(&format!("{path}.role"))),
            Some(Value::String(r)) => r,
            Some(v) => return Err(wrong_type(&format!("{path}.role"), "a string", v)),
        };
        if !ROLES.contains(&role.as_str()) {
            return Err(ApiError::invalid_request(format!(
                "Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool', and 'function'."
            ))
            .with_param(format!("{path}.role"))
            .with_code("invalid_value"));
        }
        match m.get("content") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(Value::Array(parts)) => {
                for (j, part) in parts.iter().enumerate() {
                    let ppath = format!("{path}.content[{j}]");
                    match part {
                        Value::Object(p) => match p.get("type") {
                            Some(Value::String(_)) => {}
                            None => return Err(missing(&format!("{ppath}.type"))),
                            Some(v) => {
                                return Err(wrong_type(&format!("{ppath}.type"), "a string", v))
                            }
                        },
                        v => return Err(wrong_type(&ppath, "an object", v)),
                    }
                }
            }
            Some(v) => {
                return Err(wrong_type(
                    &format!("{path}.content"),
                    "a string or an array of content parts",
                    v,
                ))
            }
        }
        if role == "tool" && !matches!(m.get("tool_call_id"), Some(Value::String(_))) {
            return Err(missing(&format!("{path}.tool_call_id")));
        }
    }
    check_type(body, "stream", Kind::Bool)?;
    match body.get("stream_options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(_)) if body.get("stream") == Some(&Value::Bool(true)) => {
            check_type_in(body, "stream_options", "include_usage", Kind::Bool)?
        }
        Some(Value::Object(_)) => {
            return Err(ApiError::invalid_request(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            )
            .with_param("stream_options")
            .with_code("invalid_value"))
        }
        Some(v) => return Err(wrong_type("stream_options", "an object", v)),
    }
    check_type(body, "n", Kind::PositiveInt)?;
    check_type(body, "max_tokens", Kind::PositiveInt)?;
    check_type(body, "max_completion_tokens", Kind::PositiveInt)?;
    check_range(body, "temperature", 0.0, 2.0)?;
    check_range(body, "top_p", 0.0, 1.0)?;
    check_range(body, "presence_penalty", -2.0, 2.0)?;
    check_range(body, "frequency_penalty", -2.0, 2.0)?;
    check_type(body, "tools", Kind::Array)?;
    match body.get("stop") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(v) => return Err(wrong_type("stop", "a string or an array of strings", v)),
    }
    match body.get("tool_choice") {
        None | Some(Value::Null | Value::String(_) | Value::Object(_)) => Ok(()),
        Some(v) => Err(wrong_type("tool_choice", "a string or an object", v)),
    }
}

fn validate_embeddings(body: &Map<String, Value>) -> Result<(), ApiError> {
    match body.get("input") {
        None | Some(Value::Null) => Err(missing("input")),
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Err(ApiError::invalid_request(
            "Invalid 'input': empty array. Expected an array with minimum length 1.",
        )
        .with_param("input")
        .with_code("empty_array")),
        Some(Value::Array(_)) => check_type(body, "dimensions", Kind::PositiveInt),
        Some(v) => Err(wrong_type("input", "a string or an array", v)),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Array,
    PositiveInt,
}

fn check_type(body: &Map<String, Value>, key: &str, kind: Kind) -> Result<(), ApiError> {
    check_value(body.get(key), key, kind)
}

fn check_type_in(
    body: &Map<String, Value>,
    outer: &str,
    key: &str,
    kind: Kind,
) -> Result<(), ApiError> {
    let v = body.get(outer).and_then(|o| o.get(key));
    check_value(v, &format!("{outer}.{key}"), kind)
}

fn check_value(v: Option<&Value>, path: &str, kind: Kind) -> Result<(), ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    match kind {
        Kind::Bool if v.is_boolean() => Ok(()),
        Kind::Bool => Err(wrong_type(path, "a boolean", v)),
        Kind::Array if v.is_array() => Ok(()),
        Kind::Array => Err(wrong_type(path, "an array", v)),
        Kind::PositiveInt => match v.as_u64() {
            Some(n) if n >= 1 => Ok(()),
            Some(_) => Err(ApiError::invalid_request(format!(
                "Invalid '{path}': integer below minimum value. Expected a value >= 1, but got {v} instead."
            ))
            .with_param(path)
            .with_code("integer_below_min_value")),
            None if v.is_i64() => Err(ApiError::invalid_request(format!(
                "Invalid '{path}': integer below minimum value. Expected a value >= 1, but got {v} instead."
            ))
            .with_param(path)
            .with_code("integer_below_min_value")),
            None => Err(wrong_type(path, "an integer", v)),
        },
    }
}

fn check_range(body: &Map<String, Value>, key: &str, min: f64, max: f64) -> Result<(), ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(()),
            Some(_) => Err(ApiError::invalid_request(format!(
                "Invalid '{key}': {v} is out of range. Expected a value between {min} and {max}."
            ))
            .with_param(key)
            .with_code("invalid_value")),
            None => Err(wrong_type(key, "a number", v)),
        },
    }
}

fn missing(param: &str) -> ApiError {
    ApiError::invalid_request(format!("Missing required parameter: '{param}'."))
        .with_param(param)
        .with_code("missing_required_parameter")
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::invalid_request(format!(
        "Invalid type for '{param}': expected {expected}, but got {} instead.",
        type_name(got)
    ))
    .with_param(param)
    .with_code("invalid_type")
}

fn type_name(v: &Value) -> &'static str {
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

/// A model as `/v1/models` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelCard<'a> {
    pub id: &'a str,
    pub owned_by: &'a str,
}

impl ModelCard<'_> {
    fn to_json(self) -> Value {
        json!({"id": self.id, "object": "model", "created": 0, "owned_by": self.owned_by})
    }
}

/// `GET /v1/models`: the models the caller may use.
pub fn models_list(cards: &[ModelCard<'_>]) -> Vec<u8> {
    let data: Vec<Value> = cards.iter().map(|c| c.to_json()).collect();
    crate::wire::json_bytes(&json!({"object": "list", "data": data}))
}

/// `GET /v1/models/{id}`.
pub fn model_object(card: ModelCard<'_>) -> Vec<u8> {
    crate::wire::json_bytes(&card.to_json())
}

/// 404 naming the models that are `available` to the caller.
pub fn unknown_model(model: &str, available: &[&str]) -> ApiError {
    ApiError::new(
        404,
        "invalid_request_error",
        format!(
            "The model '{model}' does not exist or is not served by this gateway. Available models: {}.",
            if available.is_empty() { "none".to_string() } else { available.join(", ") }
        ),
    )
    .with_param("model")
    .with_code("model_not_found")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<ParsedRequest, ApiError> {
        parse_request(Operation::ChatCompletions, body.as_bytes())
    }

    #[test]
    fn accepts_valid_chat() {
        let r = chat(r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"x":1}"#).unwrap();
        assert_eq!(r.model, "m");
        assert!(r.stream);
        assert_eq!(r.body()["x"], 1);
        let r = chat(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":null,"tool_calls":[]},{"role":"tool","tool_call_id":"c","content":"r"}]}"#).unwrap();
        assert!(!r.stream);
    }

    #[test]
    fn rejects_invalid_chat_with_openai_wording() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("{not json", None, "could not parse the JSON body"),
            ("[1]", None, "expected a JSON object, but got an array"),
            (
                r#"{"messages":[]}"#,
                Some("model"),
                "Missing required parameter: 'model'.",
            ),
            (
                r#"{"model":7,"messages":[]}"#,
                Some("model"),
                "Invalid type for 'model': expected a string, but got an integer instead.",
            ),
            (r#"{"model":""}"#, Some("model"), "empty string"),
            (
                r#"{"model":"m"}"#,
                Some("messages"),
                "Missing required parameter: 'messages'.",
            ),
            (
                r#"{"model":"m","messages":"hi"}"#,
                Some("messages"),
                "expected an array, but got a string",
            ),
            (
                r#"{"model":"m","messages":[]}"#,
                Some("messages"),
                "empty array",
            ),
            (
                r#"{"model":"m","messages":[1]}"#,
                Some("messages[0]"),
                "expected an object",
            ),
            (
                r#"{"model":"m","messages":[{"content":"x"}]}"#,
                Some("messages[0].role"),
                "Missing required",
            ),
            (
                r#"{"model":"m","messages":[{"role":"bot","content":"x"}]}"#,
                Some("messages[0].role"),
                "Invalid value: 'bot'",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
                Some("messages[0].content"),
                "a string or an array of content parts",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"text":"a"}]}]}"#,
                Some("messages[0].content[0].type"),
                "Missing",
            ),
            (
                r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
                Some("messages[0].tool_call_id"),
                "Missing",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#,
                Some("stream"),
                "expected a boolean",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream_options":{}}"#,
                Some("stream_options"),
                "only allowed when 'stream'",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream":true,"stream_options":{"include_usage":1}}"#,
                Some("stream_options.include_usage"),
                "expected a boolean",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"n":0}"#,
                Some("n"),
                "below minimum",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"max_tokens":-1}"#,
                Some("max_tokens"),
                "below minimum",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"max_tokens":1.5}"#,
                Some("max_tokens"),
                "expected an integer, but got a decimal",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"temperature":3}"#,
                Some("temperature"),
                "out of range",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"temperature":"hot"}"#,
                Some("temperature"),
                "expected a number",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"tools":{}}"#,
                Some("tools"),
                "expected an array",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stop":[1]}"#,
                Some("stop"),
                "array of strings",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"tool_choice":1}"#,
                Some("tool_choice"),
                "a string or an object",
            ),
        ];
        for (body, param, needle) in cases {
            let e = chat(body).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
            assert_eq!(e.kind, "invalid_request_error");
            assert_eq!(e.param.as_deref(), *param, "{body}: {}", e.message);
            assert!(e.message.contains(needle), "{body}: {}", e.message);
        }
    }

    #[test]
    fn validates_embeddings() {
        let ok = parse_request(Operation::Embeddings, br#"{"model":"e","input":["a","b"]}"#);
        assert!(ok.is_ok());
        for (body, param) in [
            (r#"{"model":"e"}"#, "input"),
            (r#"{"model":"e","input":[]}"#, "input"),
            (r#"{"model":"e","input":3}"#, "input"),
            (
                r#"{"model":"e","input":["a"],"dimensions":0}"#,
                "dimensions",
            ),
        ] {
            let e = parse_request(Operation::Embeddings, body.as_bytes()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
        }
    }
}
