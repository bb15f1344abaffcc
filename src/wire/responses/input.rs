//! Validation of `input`: its items (messages, function calls and their
//! outputs, reasoning) and their content parts, in OpenAI's wording, with
//! the refusals every route shares (item references and file ids need
//! state; hosted tools' items need OpenAI).

use super::errors::{invalid_value, missing, not_one_of, stateless, unsupported_value, wrong_type};
use super::parse::present;
use super::to_hub::{data_uri, is_http_url};
use crate::error::ApiError;
use serde_json::{Map, Value};

/// Input items only hosted tools produce.
const HOSTED_ITEMS: &[&str] = &[
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "tool_search_call",
    "tool_search_output",
];

pub(super) fn validate_input(body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(v) = present(body, "instructions") {
        if !v.is_string() {
            return Err(wrong_type("instructions", "a string", v));
        }
    }
    let items = match present(body, "input") {
        None => return Err(missing("input")),
        Some(Value::String(_)) => return Ok(()),
        Some(Value::Array(items)) => items,
        Some(v) => {
            return Err(wrong_type(
                "input",
                "a string or an array of input items",
                v,
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::invalid_request(
            "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        )
        .with_param("input")
        .with_code("empty_array"));
    }
    for (i, item) in items.iter().enumerate() {
        validate_item(item, &format!("input[{i}]"))?;
    }
    Ok(())
}

fn validate_item(item: &Value, path: &str) -> Result<(), ApiError> {
    let Value::Object(item) = item else {
        return Err(wrong_type(path, "an object", item));
    };
    let kind = match item.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.as_str()),
        Some(v) => return Err(wrong_type(&format!("{path}.type"), "a string", v)),
    };
    match kind {
        // `type` is optional on messages and on item references.
        None if !item.contains_key("role") && item.contains_key("id") => item_reference(path),
        None | Some("message") => validate_message(item, path),
        Some("function_call") => {
            for key in ["call_id", "name", "arguments"] {
                required_string(item, key, path)?;
            }
            Ok(())
        }
        Some("function_call_output") => {
            required_string(item, "call_id", path)?;
            match present(item, "output") {
                None => Err(missing(&format!("{path}.output"))),
                Some(Value::String(_)) => Ok(()),
                Some(Value::Array(parts)) => {
                    for (j, part) in parts.iter().enumerate() {
                        validate_input_part(part, &format!("{path}.output[{j}]"))?;
                    }
                    Ok(())
                }
                Some(v) => Err(wrong_type(
                    &format!("{path}.output"),
                    "a string or an array of content parts",
                    v,
                )),
            }
        }
        Some("reasoning") => {
            match present(item, "summary") {
                None | Some(Value::Array(_)) => {}
                Some(v) => return Err(wrong_type(&format!("{path}.summary"), "an array", v)),
            }
            match present(item, "encrypted_content") {
                None | Some(Value::String(_)) => Ok(()),
                Some(v) => Err(wrong_type(
                    &format!("{path}.encrypted_content"),
                    "a string",
                    v,
                )),
            }
        }
        Some("item_reference") => item_reference(path),
        Some(t) if HOSTED_ITEMS.contains(&t) => Err(unsupported_value(
            &format!("{path}.type"),
            format!("Input items of type '{t}' come from OpenAI's hosted tools; this gateway translates function tools only."),
        )),
        Some(t) => Err(unsupported_value(
            &format!("{path}.type"),
            format!("Input items of type '{t}' cannot be translated: this gateway takes 'message', 'function_call', 'function_call_output' and 'reasoning' items."),
        )),
    }
}

fn item_reference(path: &str) -> Result<(), ApiError> {
    Err(stateless(
        path,
        "is an item reference, which needs a provider that stores responses; send the item itself.",
    ))
}

pub(super) fn required_string(
    item: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<(), ApiError> {
    match present(item, key) {
        Some(Value::String(_)) => Ok(()),
        None => Err(missing(&format!("{path}.{key}"))),
        Some(v) => Err(wrong_type(&format!("{path}.{key}"), "a string", v)),
    }
}

fn validate_message(item: &Map<String, Value>, path: &str) -> Result<(), ApiError> {
    let role = match present(item, "role") {
        None => return Err(missing(&format!("{path}.role"))),
        Some(Value::String(r)) => r.as_str(),
        Some(v) => return Err(wrong_type(&format!("{path}.role"), "a string", v)),
    };
    if !["user", "assistant", "system", "developer"].contains(&role) {
        return Err(not_one_of(
            &format!("{path}.role"),
            role,
            &["user", "assistant", "system", "developer"],
        ));
    }
    let parts = match present(item, "content") {
        None => return Err(missing(&format!("{path}.content"))),
        Some(Value::String(_)) => return Ok(()),
        Some(Value::Array(parts)) => parts,
        Some(v) => {
            return Err(wrong_type(
                &format!("{path}.content"),
                "a string or an array of content parts",
                v,
            ))
        }
    };
    for (j, part) in parts.iter().enumerate() {
        let ppath = format!("{path}.content[{j}]");
        if role == "assistant" {
            validate_output_part(part, &ppath)?;
        } else {
            validate_input_part(part, &ppath)?;
        }
    }
    Ok(())
}

pub(super) fn part_type<'a>(
    part: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, ApiError> {
    let Value::Object(p) = part else {
        return Err(wrong_type(path, "an object", part));
    };
    match p.get("type") {
        Some(Value::String(_)) => Ok(p),
        None | Some(Value::Null) => Err(missing(&format!("{path}.type"))),
        Some(v) => Err(wrong_type(&format!("{path}.type"), "a string", v)),
    }
}

/// Assistant content: what the model wrote earlier.
fn validate_output_part(part: &Value, path: &str) -> Result<(), ApiError> {
    let p = part_type(part, path)?;
    match p.get("type").and_then(Value::as_str).unwrap_or_default() {
        "output_text" => required_string(p, "text", path),
        "refusal" => required_string(p, "refusal", path),
        other => Err(not_one_of(
            &format!("{path}.type"),
            other,
            &["output_text", "refusal"],
        )),
    }
}

/// User, system and developer content, and function call outputs.
fn validate_input_part(part: &Value, path: &str) -> Result<(), ApiError> {
    let p = part_type(part, path)?;
    match p.get("type").and_then(Value::as_str).unwrap_or_default() {
        "input_text" => required_string(p, "text", path),
        "input_image" => {
            refuse_file_id(
                p,
                path,
                "the image as 'image_url' (an http(s) URL or a base64 data URI)",
            )?;
            match present(p, "image_url") {
                None => Err(missing(&format!("{path}.image_url"))),
                Some(Value::String(url)) if is_http_url(url) || data_uri(url).is_some() => Ok(()),
                Some(Value::String(_)) => Err(invalid_value(
                    &format!("{path}.image_url"),
                    format!("Invalid '{path}.image_url': expected an http(s) URL or a base64 data URI (data:image/png;base64,…)."),
                )),
                Some(v) => Err(wrong_type(&format!("{path}.image_url"), "a string", v)),
            }
        }
        "input_file" => {
            refuse_file_id(
                p,
                path,
                "the file as 'file_data' (a base64 data URI) or 'file_url'",
            )?;
            if let Some(name) = present(p, "filename") {
                if !name.is_string() {
                    return Err(wrong_type(&format!("{path}.filename"), "a string", name));
                }
            }
            match (present(p, "file_data"), present(p, "file_url")) {
                (Some(Value::String(d)), _) if data_uri(d).is_some() => Ok(()),
                (Some(Value::String(_)), _) => Err(invalid_value(
                    &format!("{path}.file_data"),
                    format!("Invalid '{path}.file_data': expected a base64 data URI such as data:application/pdf;base64,…."),
                )),
                (Some(v), _) => Err(wrong_type(&format!("{path}.file_data"), "a string", v)),
                (None, Some(Value::String(url))) if is_http_url(url) => Ok(()),
                (None, Some(Value::String(_))) => Err(invalid_value(
                    &format!("{path}.file_url"),
                    format!("Invalid '{path}.file_url': expected an http(s) URL."),
                )),
                (None, Some(v)) => Err(wrong_type(&format!("{path}.file_url"), "a string", v)),
                (None, None) => Err(missing(&format!("{path}.file_data"))),
            }
        }
        other => Err(not_one_of(
            &format!("{path}.type"),
            other,
            &["input_text", "input_image", "input_file"],
        )),
    }
}

/// Uploaded files live at OpenAI, under the account that uploaded them.
fn refuse_file_id(p: &Map<String, Value>, path: &str, instead: &str) -> Result<(), ApiError> {
    match present(p, "file_id") {
        None => Ok(()),
        Some(_) => Err(stateless(
            &format!("{path}.file_id"),
            &format!("refers to a file uploaded to OpenAI, which this gateway does not keep; send {instead} instead."),
        )),
    }
}
