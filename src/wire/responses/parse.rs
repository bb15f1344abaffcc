//! `POST /v1/responses` body validation, in OpenAI's wording: shapes and
//! types, plus the refusals every route shares (state this gateway does
//! not keep, hosted tools). What only a translated request cannot carry is
//! refused later, by `to_hub`.

use super::errors::{
    invalid_value, missing, not_one_of, stateless, unknown_parameter, unsupported_value, wrong_type,
};
use super::input::{part_type, required_string, validate_input};
use crate::error::ApiError;
use crate::wire::openai::ParsedRequest;
use serde_json::{Map, Value};

/// Every request field of `responses.create` (openai-python 3.57).
pub(crate) const KNOWN: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
    "stream_options",
    "store",
    "reasoning",
    "text",
    "metadata",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
    "truncation",
    "include",
    "top_logprobs",
    "max_tool_calls",
    "background",
    "background_options",
    "previous_response_id",
    "conversation",
    "prompt",
    "context_management",
    "moderation",
    "image",
    "access_programs",
];

/// Tools OpenAI runs (or whose model-side protocol is OpenAI's own).
const HOSTED_TOOLS: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "web_search_2025_08_26",
    "file_search",
    "computer_use_preview",
    "computer_use",
    "computer",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "tool_search",
];

const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh", "max"];
const SUMMARIES: &[&str] = &["auto", "concise", "detailed"];

/// Parses and validates a Responses request body.
pub fn parse_request(bytes: &[u8]) -> Result<ParsedRequest, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid_request(format!(
            "We could not parse the JSON body of your request: {e}. The API expects a JSON object."
        ))
        .with_code("invalid_json")
    })?;
    let Value::Object(body) = value else {
        return Err(ApiError::invalid_request(format!(
            "Invalid request body: expected a JSON object, but got {} instead.",
            super::errors::type_name(&value)
        ))
        .with_code("invalid_type"));
    };
    // First, so a Chat Completions body sent here says what is wrong.
    if let Some(k) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(unknown_parameter(k));
    }
    let model = match present(&body, "model") {
        None => return Err(missing("model")),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(invalid_value(
                "model",
                "Invalid 'model': empty string. Expected a non-empty model name.",
            ))
        }
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(wrong_type("model", "a string", v)),
    };
    refuse_stateful(&body)?;
    validate_input(&body)?;
    validate_options(&body)?;
    validate_tools(&body)?;
    let stream = present(&body, "stream") == Some(&Value::Bool(true));
    Ok(ParsedRequest::parsed(body, model, stream))
}

/// A member that is there and not null (null means "default", as in
/// OpenAI's API).
pub(crate) fn present<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

fn refuse_stateful(body: &Map<String, Value>) -> Result<(), ApiError> {
    const ADVICE: &[(&str, &str)] = &[
        ("previous_response_id", "needs a provider that stores responses; send the whole conversation in 'input' and set 'store' to false."),
        ("conversation", "needs a provider that stores conversations; send the whole conversation in 'input' and set 'store' to false."),
        ("prompt", "refers to a prompt stored at OpenAI; send its text in 'instructions' and 'input' instead."),
    ];
    for (param, advice) in ADVICE {
        if present(body, param).is_some() {
            return Err(stateless(param, advice));
        }
    }
    for key in ["store", "background"] {
        match present(body, key) {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) if key == "store" => {
                return Err(stateless(
                    key,
                    "set to true needs a provider that stores responses; set 'store' to false (or leave it out) and keep the conversation on your side.",
                ))
            }
            Some(Value::Bool(true)) => {
                return Err(stateless(
                    key,
                    "needs a provider that keeps the response to be fetched later; send the request without it (with 'stream' for long answers).",
                ))
            }
            Some(v) => return Err(wrong_type(key, "a boolean", v)),
        }
    }
    Ok(())
}

fn validate_options(body: &Map<String, Value>) -> Result<(), ApiError> {
    for key in ["stream", "parallel_tool_calls"] {
        check_bool(body, key)?;
    }
    for key in [
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "service_tier",
    ] {
        if let Some(v) = present(body, key) {
            if !v.is_string() {
                return Err(wrong_type(key, "a string", v));
            }
        }
    }
    check_int(body, "max_output_tokens", 16, u64::from(u32::MAX))?;
    check_int(body, "top_logprobs", 0, 20)?;
    check_int(body, "max_tool_calls", 1, u64::from(u32::MAX))?;
    check_range(body, "temperature", 0.0, 2.0)?;
    check_range(body, "top_p", 0.0, 1.0)?;
    match present(body, "stream_options") {
        None => {}
        Some(Value::Object(_)) if present(body, "stream") == Some(&Value::Bool(true)) => {}
        Some(Value::Object(_)) => {
            return Err(invalid_value(
                "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            ))
        }
        Some(v) => return Err(wrong_type("stream_options", "an object", v)),
    }
    match present(body, "truncation") {
        None => {}
        Some(Value::String(t)) if t == "auto" || t == "disabled" => {}
        Some(Value::String(t)) => return Err(not_one_of("truncation", t, &["auto", "disabled"])),
        Some(v) => return Err(wrong_type("truncation", "a string", v)),
    }
    match present(body, "include") {
        None => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(v) => return Err(wrong_type("include", "an array of strings", v)),
    }
    match present(body, "metadata") {
        None => {}
        Some(Value::Object(m)) => {
            if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Err(wrong_type(&format!("metadata.{k}"), "a string", v));
            }
        }
        Some(v) => return Err(wrong_type("metadata", "an object", v)),
    }
    validate_reasoning(body)?;
    validate_text(body)?;
    match present(body, "tool_choice") {
        None => Ok(()),
        Some(Value::String(s)) if ["none", "auto", "required"].contains(&s.as_str()) => Ok(()),
        Some(Value::String(s)) => Err(not_one_of("tool_choice", s, &["none", "auto", "required"])),
        Some(Value::Object(c)) => match present(c, "type") {
            None => Err(missing("tool_choice.type")),
            Some(Value::String(t)) if t == "function" => match present(c, "name") {
                Some(Value::String(_)) => Ok(()),
                None => Err(missing("tool_choice.name")),
                Some(v) => Err(wrong_type("tool_choice.name", "a string", v)),
            },
            Some(Value::String(_)) => Ok(()),
            Some(v) => Err(wrong_type("tool_choice.type", "a string", v)),
        },
        Some(v) => Err(wrong_type("tool_choice", "a string or an object", v)),
    }
}

fn validate_reasoning(body: &Map<String, Value>) -> Result<(), ApiError> {
    let r = match present(body, "reasoning") {
        None => return Ok(()),
        Some(Value::Object(r)) => r,
        Some(v) => return Err(wrong_type("reasoning", "an object", v)),
    };
    one_of(r, "effort", "reasoning.effort", EFFORTS)?;
    one_of(r, "summary", "reasoning.summary", SUMMARIES)?;
    one_of(
        r,
        "generate_summary",
        "reasoning.generate_summary",
        SUMMARIES,
    )
}

fn validate_text(body: &Map<String, Value>) -> Result<(), ApiError> {
    let t = match present(body, "text") {
        None => return Ok(()),
        Some(Value::Object(t)) => t,
        Some(v) => return Err(wrong_type("text", "an object", v)),
    };
    one_of(t, "verbosity", "text.verbosity", &["low", "medium", "high"])?;
    let f = match present(t, "format") {
        None => return Ok(()),
        Some(Value::Object(f)) => f,
        Some(v) => return Err(wrong_type("text.format", "an object", v)),
    };
    let kind = match present(f, "type") {
        None => return Err(missing("text.format.type")),
        Some(Value::String(k)) => k.as_str(),
        Some(v) => return Err(wrong_type("text.format.type", "a string", v)),
    };
    match kind {
        "text" | "json_object" => Ok(()),
        "json_schema" => {
            required_string(f, "name", "text.format")?;
            match present(f, "schema") {
                Some(Value::Object(_)) => {}
                None => return Err(missing("text.format.schema")),
                Some(v) => return Err(wrong_type("text.format.schema", "an object", v)),
            }
            if let Some(v) = present(f, "strict") {
                if !v.is_boolean() {
                    return Err(wrong_type("text.format.strict", "a boolean", v));
                }
            }
            Ok(())
        }
        other => Err(not_one_of(
            "text.format.type",
            other,
            &["text", "json_object", "json_schema"],
        )),
    }
}

fn validate_tools(body: &Map<String, Value>) -> Result<(), ApiError> {
    let tools = match present(body, "tools") {
        None => return Ok(()),
        Some(Value::Array(t)) => t,
        Some(v) => return Err(wrong_type("tools", "an array", v)),
    };
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        let t = part_type(tool, &path)?;
        match t.get("type").and_then(Value::as_str).unwrap_or_default() {
            "function" => {}
            kind if HOSTED_TOOLS.contains(&kind) => {
                return Err(unsupported_value(
                    &format!("{path}.type"),
                    format!("Tool type '{kind}' needs OpenAI's hosted tools; this gateway translates function tools only."),
                ))
            }
            kind => {
                return Err(unsupported_value(
                    &format!("{path}.type"),
                    format!("Tool type '{kind}' cannot be translated; this gateway translates function tools only."),
                ))
            }
        }
        match present(t, "name") {
            Some(Value::String(n)) if !n.is_empty() => {}
            Some(Value::String(_)) | None => return Err(missing(&format!("{path}.name"))),
            Some(v) => return Err(wrong_type(&format!("{path}.name"), "a string", v)),
        }
        for (key, expected, ok) in [
            (
                "parameters",
                "an object",
                Value::is_object as fn(&Value) -> bool,
            ),
            ("description", "a string", Value::is_string),
            ("strict", "a boolean", Value::is_boolean),
        ] {
            if let Some(v) = present(t, key) {
                if !ok(v) {
                    return Err(wrong_type(&format!("{path}.{key}"), expected, v));
                }
            }
        }
    }
    Ok(())
}

fn one_of(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    supported: &[&str],
) -> Result<(), ApiError> {
    match present(obj, key) {
        None => Ok(()),
        Some(Value::String(s)) if supported.contains(&s.as_str()) => Ok(()),
        Some(Value::String(s)) => Err(not_one_of(path, s, supported)),
        Some(v) => Err(wrong_type(path, "a string", v)),
    }
}

fn check_bool(body: &Map<String, Value>, key: &str) -> Result<(), ApiError> {
    match present(body, key) {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(v) => Err(wrong_type(key, "a boolean", v)),
    }
}

fn check_int(body: &Map<String, Value>, key: &str, min: u64, max: u64) -> Result<(), ApiError> {
    let Some(v) = present(body, key) else {
        return Ok(());
    };
    if !(v.is_u64() || v.is_i64()) {
        return Err(wrong_type(key, "an integer", v));
    }
    match v.as_u64() {
        Some(n) if n > max => Err(ApiError::invalid_request(format!(
            "Invalid '{key}': integer above maximum value. Expected a value <= {max}, but got {v} instead."
        ))
        .with_param(key)
        .with_code("integer_above_max_value")),
        Some(n) if n >= min => Ok(()),
        _ => Err(ApiError::invalid_request(format!(
            "Invalid '{key}': integer below minimum value. Expected a value >= {min}, but got {v} instead."
        ))
        .with_param(key)
        .with_code("integer_below_min_value")),
    }
}

fn check_range(body: &Map<String, Value>, key: &str, min: f64, max: f64) -> Result<(), ApiError> {
    match present(body, key) {
        None => Ok(()),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(()),
            Some(_) => Err(invalid_value(
                key,
                format!("Invalid '{key}': {v} is out of range. Expected a value between {min} and {max}."),
            )),
            None => Err(wrong_type(key, "a number", v)),
        },
    }
}
