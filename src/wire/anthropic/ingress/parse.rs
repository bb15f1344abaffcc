//! Validation of `POST /v1/messages` and `/v1/messages/count_tokens`
//! bodies with Anthropic's wording (`messages.0.role: Input should be
//! 'user' or 'assistant'`). Shapes only: what a valid request means for a
//! provider is `to_hub`'s business.

use super::errors::invalid;
use super::loc::Loc;
use crate::error::ApiError;
use crate::wire::openai::ParsedRequest;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Messages,
    CountTokens,
}

/// Top-level fields of `POST /v1/messages`; any other is a 400.
pub(crate) const MESSAGES_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "context_management",
    "mcp_servers",
    "output_config",
    "output_format",
];

/// Top-level fields of `POST /v1/messages/count_tokens`.
pub(crate) const COUNT_TOKENS_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "context_management",
    "mcp_servers",
    "output_config",
    "output_format",
];

pub(super) const IMAGE_MEDIA_TYPES: &[&str] =
    &["image/jpeg", "image/png", "image/gif", "image/webp"];

const MUST_BE_OBJECT: &str = "Input should be a valid dictionary or object to extract fields from";

pub(super) fn parse(bytes: &[u8], endpoint: Endpoint) -> Result<ParsedRequest, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid_request(format!(
            "There was an error parsing the body: it is not valid JSON ({e})."
        ))
    })?;
    let Value::Object(body) = value else {
        return Err(ApiError::invalid_request(format!(
            "The request body must be a JSON object: {MUST_BE_OBJECT}."
        )));
    };
    let model = {
        let loc = Loc::field("model");
        let model = string(required_top(&body, "model")?, &loc)?;
        if model.is_empty() {
            return Err(invalid(&loc, "String should have at least 1 character"));
        }
        model.to_string()
    };
    if endpoint == Endpoint::Messages {
        let max_tokens = required_top(&body, "max_tokens")?;
        int_at_least(max_tokens, &Loc::field("max_tokens"), 1)?;
    }
    messages(&body)?;
    if let Some(v) = present(&body, "system") {
        system(v, &Loc::field("system"))?;
    }
    if let Some(v) = present(&body, "tools") {
        tools(v)?;
    }
    if let Some(v) = present(&body, "tool_choice") {
        tool_choice(v)?;
    }
    if let Some(v) = present(&body, "thinking") {
        thinking(v)?;
    }
    if let Some(v) = present(&body, "mcp_servers") {
        list(v, &Loc::field("mcp_servers"))?;
    }
    for key in ["context_management", "output_config", "output_format"] {
        if let Some(v) = present(&body, key) {
            dict(v, &Loc::field(key))?;
        }
    }
    if let Some(Value::Object(config)) = present(&body, "output_config") {
        let loc = Loc::field("output_config");
        if let Some(v) = present(config, "effort") {
            string(v, &loc.key("effort"))?;
        }
        if let Some(v) = present(config, "format") {
            dict(v, &loc.key("format"))?;
        }
    }
    if endpoint == Endpoint::Messages {
        sampling(&body)?;
    }
    let allowed = match endpoint {
        Endpoint::Messages => MESSAGES_FIELDS,
        Endpoint::CountTokens => COUNT_TOKENS_FIELDS,
    };
    if let Some(extra) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(
            &Loc::field(extra),
            "Extra inputs are not permitted",
        ));
    }
    let stream = endpoint == Endpoint::Messages && body.get("stream") == Some(&Value::Bool(true));
    Ok(ParsedRequest::parsed(body, model, stream))
}

/// The field's value; absent and `null` both mean "not given".
pub(super) fn present<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn required_top<'v>(
    body: &'v Map<String, Value>,
    key: &'static str,
) -> Result<&'v Value, ApiError> {
    body.get(key)
        .ok_or_else(|| invalid(&Loc::field(key), "Field required"))
}

fn required_key<'v>(
    m: &'v Map<String, Value>,
    parent: &Loc,
    key: &'static str,
) -> Result<&'v Value, ApiError> {
    m.get(key)
        .ok_or_else(|| invalid(&parent.key(key), "Field required"))
}

fn string<'v>(v: &'v Value, loc: &Loc) -> Result<&'v str, ApiError> {
    v.as_str()
        .ok_or_else(|| invalid(loc, "Input should be a valid string"))
}

fn boolean(v: &Value, loc: &Loc) -> Result<bool, ApiError> {
    v.as_bool()
        .ok_or_else(|| invalid(loc, "Input should be a valid boolean"))
}

fn list<'v>(v: &'v Value, loc: &Loc) -> Result<&'v [Value], ApiError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| invalid(loc, "Input should be a valid list"))
}

fn dict<'v>(v: &'v Value, loc: &Loc) -> Result<&'v Map<String, Value>, ApiError> {
    v.as_object()
        .ok_or_else(|| invalid(loc, "Input should be a valid dictionary"))
}

/// An object that is one of a tagged union's variants (blocks, tools, …).
fn model_object<'v>(v: &'v Value, loc: &Loc) -> Result<&'v Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| invalid(loc, MUST_BE_OBJECT))
}

/// An integer, also written as a float with no fraction (`1024.0`), as
/// Anthropic's validation accepts.
pub(super) fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

fn int_at_least(v: &Value, loc: &Loc, min: i64) -> Result<i64, ApiError> {
    let n = match integer(v) {
        Some(n) => n,
        None if v.is_number() => {
            return Err(invalid(
                loc,
                "Input should be a valid integer, got a number with a fractional part",
            ))
        }
        None => return Err(invalid(loc, "Input should be a valid integer")),
    };
    if n < min {
        return Err(invalid(
            loc,
            format!("Input should be greater than or equal to {min}"),
        ));
    }
    Ok(n)
}

fn number_between(v: &Value, loc: &Loc, min: f64, max: f64) -> Result<f64, ApiError> {
    let x = v
        .as_f64()
        .ok_or_else(|| invalid(loc, "Input should be a valid number"))?;
    if x < min {
        return Err(invalid(
            loc,
            format!("Input should be greater than or equal to {min}"),
        ));
    }
    if x > max {
        return Err(invalid(
            loc,
            format!("Input should be less than or equal to {max}"),
        ));
    }
    Ok(x)
}

/// The `type` tag of a union member.
fn tag<'v>(m: &'v Map<String, Value>, loc: &Loc) -> Result<&'v str, ApiError> {
    match m.get("type") {
        Some(Value::String(t)) => Ok(t),
        Some(_) => Err(invalid(&loc.key("type"), "Input should be a valid string")),
        None => Err(invalid(
            loc,
            "Unable to extract tag using discriminator 'type'",
        )),
    }
}

fn bad_tag(loc: &Loc, got: &str, expected: &[&str]) -> ApiError {
    let expected: Vec<String> = expected.iter().map(|t| format!("'{t}'")).collect();
    invalid(
        loc,
        format!(
            "Input tag '{got}' found using 'type' does not match any of the expected tags: {}",
            expected.join(", ")
        ),
    )
}

fn messages(body: &Map<String, Value>) -> Result<(), ApiError> {
    let loc = Loc::field("messages");
    let list = list(required_top(body, "messages")?, &loc)?;
    if list.is_empty() {
        return Err(invalid(&loc, "at least one message is required"));
    }
    for (i, m) in list.iter().enumerate() {
        let mloc = loc.index(i);
        let m = model_object(m, &mloc)?;
        let role_loc = mloc.key("role");
        match string(required_key(m, &mloc, "role")?, &role_loc)? {
            "user" | "assistant" => {}
            _ => return Err(invalid(&role_loc, "Input should be 'user' or 'assistant'")),
        }
        let cloc = mloc.key("content");
        match required_key(m, &mloc, "content")? {
            Value::String(_) => {}
            Value::Array(blocks) => {
                for (j, b) in blocks.iter().enumerate() {
                    block(b, &cloc.index(j))?;
                }
            }
            _ => {
                return Err(invalid(
                    &cloc,
                    "Input should be a valid string or a list of content blocks",
                ))
            }
        }
    }
    Ok(())
}

/// One content block. Types Anthropic adds later (and server-side blocks
/// such as `server_tool_use`) pass: they are checked by Anthropic when the
/// request goes there, and refused by `to_hub` when it cannot.
fn block(v: &Value, loc: &Loc) -> Result<(), ApiError> {
    let b = model_object(v, loc)?;
    let field = |key: &'static str| required_key(b, loc, key);
    let text_field = |key: &'static str| -> Result<(), ApiError> {
        string(field(key)?, &loc.key(key)).map(|_| ())
    };
    match tag(b, loc)? {
        "text" => text_field("text")?,
        "image" => image_source(field("source")?, &loc.key("source"))?,
        "document" => {
            document_source(field("source")?, &loc.key("source"))?;
            if let Some(t) = present(b, "title") {
                string(t, &loc.key("title"))?;
            }
        }
        "tool_use" => {
            text_field("id")?;
            text_field("name")?;
            let iloc = loc.key("input");
            dict(field("input")?, &iloc)?;
        }
        "tool_result" => {
            text_field("tool_use_id")?;
            match present(b, "content") {
                None | Some(Value::String(_)) => {}
                Some(Value::Array(inner)) => {
                    let cloc = loc.key("content");
                    for (k, item) in inner.iter().enumerate() {
                        block(item, &cloc.index(k))?;
                    }
                }
                Some(_) => {
                    return Err(invalid(
                        &loc.key("content"),
                        "Input should be a valid string or a list of content blocks",
                    ))
                }
            }
            if let Some(e) = present(b, "is_error") {
                boolean(e, &loc.key("is_error"))?;
            }
        }
        "thinking" => {
            text_field("thinking")?;
            text_field("signature")?;
        }
        "redacted_thinking" => text_field("data")?,
        _ => {}
    }
    Ok(())
}

fn image_source(v: &Value, loc: &Loc) -> Result<(), ApiError> {
    let s = model_object(v, loc)?;
    let text = |key: &'static str| -> Result<&str, ApiError> {
        string(required_key(s, loc, key)?, &loc.key(key))
    };
    match tag(s, loc)? {
        "base64" => {
            let media_type = text("media_type")?;
            if !IMAGE_MEDIA_TYPES.contains(&media_type) {
                return Err(invalid(
                    &loc.key("media_type"),
                    "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
                ));
            }
            text("data")?;
        }
        "url" => {
            text("url")?;
        }
        "file" => {
            text("file_id")?;
        }
        other => return Err(bad_tag(loc, other, &["base64", "url", "file"])),
    }
    Ok(())
}

fn document_source(v: &Value, loc: &Loc) -> Result<(), ApiError> {
    let s = model_object(v, loc)?;
    let text = |key: &'static str| -> Result<&str, ApiError> {
        string(required_key(s, loc, key)?, &loc.key(key))
    };
    match tag(s, loc)? {
        "base64" => {
            if text("media_type")? != "application/pdf" {
                return Err(invalid(
                    &loc.key("media_type"),
                    "Input should be 'application/pdf'",
                ));
            }
            text("data")?;
        }
        "text" => {
            if text("media_type")? != "text/plain" {
                return Err(invalid(
                    &loc.key("media_type"),
                    "Input should be 'text/plain'",
                ));
            }
            text("data")?;
        }
        "url" => {
            text("url")?;
        }
        "file" => {
            text("file_id")?;
        }
        "content" => match required_key(s, loc, "content")? {
            Value::String(_) => {}
            Value::Array(blocks) => {
                let cloc = loc.key("content");
                for (k, b) in blocks.iter().enumerate() {
                    block(b, &cloc.index(k))?;
                }
            }
            _ => {
                return Err(invalid(
                    &loc.key("content"),
                    "Input should be a valid string or a list of content blocks",
                ))
            }
        },
        other => {
            return Err(bad_tag(
                loc,
                other,
                &["base64", "text", "content", "url", "file"],
            ))
        }
    }
    Ok(())
}

fn system(v: &Value, loc: &Loc) -> Result<(), ApiError> {
    match v {
        Value::String(_) => Ok(()),
        Value::Array(blocks) => {
            for (i, b) in blocks.iter().enumerate() {
                let bloc = loc.index(i);
                let b = model_object(b, &bloc)?;
                match tag(b, &bloc)? {
                    "text" => {
                        string(required_key(b, &bloc, "text")?, &bloc.key("text"))?;
                    }
                    other => return Err(bad_tag(&bloc, other, &["text"])),
                }
            }
            Ok(())
        }
        _ => Err(invalid(
            loc,
            "Input should be a valid string or a list of text blocks",
        )),
    }
}

/// A client tool's name, as Anthropic constrains it.
pub(super) fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

fn tools(v: &Value) -> Result<(), ApiError> {
    let loc = Loc::field("tools");
    for (i, t) in list(v, &loc)?.iter().enumerate() {
        let tloc = loc.index(i);
        let t = model_object(t, &tloc)?;
        match t.get("type") {
            // A server tool (`web_search_20250305`, `bash_20250124`, …):
            // its fields are Anthropic's to check.
            Some(Value::String(ty)) if ty != "custom" => continue,
            None | Some(Value::Null | Value::String(_)) => {}
            Some(_) => return Err(invalid(&tloc.key("type"), "Input should be a valid string")),
        }
        let nloc = tloc.key("name");
        let name = string(required_key(t, &tloc, "name")?, &nloc)?;
        if !valid_tool_name(name) {
            return Err(invalid(
                &nloc,
                "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
            ));
        }
        if let Some(d) = present(t, "description") {
            string(d, &tloc.key("description"))?;
        }
        dict(
            required_key(t, &tloc, "input_schema")?,
            &tloc.key("input_schema"),
        )?;
    }
    Ok(())
}

fn tool_choice(v: &Value) -> Result<(), ApiError> {
    let loc = Loc::field("tool_choice");
    let c = model_object(v, &loc)?;
    match tag(c, &loc)? {
        "auto" | "any" | "none" => {}
        "tool" => {
            string(required_key(c, &loc, "name")?, &loc.key("name"))?;
        }
        other => return Err(bad_tag(&loc, other, &["auto", "any", "tool", "none"])),
    }
    if let Some(d) = present(c, "disable_parallel_tool_use") {
        boolean(d, &loc.key("disable_parallel_tool_use"))?;
    }
    Ok(())
}

/// `budget_tokens < max_tokens` is not checked: with the
/// `interleaved-thinking` beta (which Claude Code always sends) Anthropic
/// accepts a larger budget, and the beta header is not visible here.
fn thinking(v: &Value) -> Result<(), ApiError> {
    let loc = Loc::field("thinking");
    let t = model_object(v, &loc)?;
    match tag(t, &loc)? {
        "enabled" => {
            let bloc = loc.key("budget_tokens");
            int_at_least(required_key(t, &loc, "budget_tokens")?, &bloc, 1024)?;
        }
        "disabled" | "adaptive" => {}
        other => return Err(bad_tag(&loc, other, &["enabled", "disabled", "adaptive"])),
    }
    Ok(())
}

fn sampling(body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(v) = present(body, "temperature") {
        number_between(v, &Loc::field("temperature"), 0.0, 1.0)?;
    }
    if let Some(v) = present(body, "top_p") {
        number_between(v, &Loc::field("top_p"), 0.0, 1.0)?;
    }
    if let Some(v) = present(body, "top_k") {
        int_at_least(v, &Loc::field("top_k"), 0)?;
    }
    if let Some(v) = present(body, "stop_sequences") {
        let loc = Loc::field("stop_sequences");
        for (i, s) in list(v, &loc)?.iter().enumerate() {
            string(s, &loc.index(i))?;
        }
    }
    if let Some(v) = present(body, "stream") {
        boolean(v, &Loc::field("stream"))?;
    }
    if let Some(v) = present(body, "metadata") {
        let loc = Loc::field("metadata");
        if let Some(u) = present(dict(v, &loc)?, "user_id") {
            string(u, &loc.key("user_id"))?;
        }
    }
    if let Some(v) = present(body, "service_tier") {
        string(v, &Loc::field("service_tier"))?;
    }
    if let Some(v) = present(body, "container") {
        if !v.is_string() && !v.is_object() {
            return Err(invalid(
                &Loc::field("container"),
                "Input should be a valid string or a container object",
            ));
        }
    }
    Ok(())
}
