//! Gemini API (`/v1beta/models/{model}:{method}`; `/v1/models/…` is accepted too).
//!
//! Like the real API, request JSON is read as proto3 JSON: every field may be
//! spelled in lowerCamelCase or snake_case, unknown fields are rejected, and a
//! single object is accepted where a list (repeated field) is expected.

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Map, Value};

use crate::common::{
    as_uint, char_chunks, check_key, embedding, json_resp, plan, to_json_line, with_key, words,
    Auth, Ctx, Finish, PlanInput, Resp,
};
use crate::inject::Wire;

// ---------------------------------------------------------------------------
// Errors

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        c if c >= 500 => "UNKNOWN",
        _ => "FAILED_PRECONDITION",
    }
}

pub fn error(code: u16, message: &str) -> Resp {
    json_resp(
        code,
        &json!({"error": {"code": code, "message": message, "status": status_name(code)}}),
    )
}

fn error_with_details(code: u16, message: &str, details: Value) -> Resp {
    json_resp(
        code,
        &json!({"error": {"code": code, "message": message, "status": status_name(code), "details": details}}),
    )
}

fn invalid(message: impl AsRef<str>) -> Resp {
    error(400, message.as_ref())
}

/// A proto-JSON decoding error (unknown field, wrong type, …).
fn payload_error(message: String) -> Resp {
    error_with_details(
        400,
        &message,
        json!([{"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"description": message}]}]),
    )
}

/// Default body for `x-mock-status`; with `x-mock-echo-key`, the key is in
/// `error.message` and `error.status`.
pub fn status_error(code: u16, key: Option<&str>) -> Resp {
    status_error_with(code, status_message(code), key)
}

/// Vertex AI's default body for `x-mock-status` (Google's shape; Vertex's
/// own wording for 429).
pub fn vertex_status_error(code: u16, key: Option<&str>) -> Resp {
    let message = match code {
        429 => "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
        c => status_message(c),
    };
    status_error_with(code, message, key)
}

fn status_error_with(code: u16, message: &str, key: Option<&str>) -> Resp {
    match key {
        Some(k) => json_resp(
            code,
            &json!({"error": {"code": code, "message": with_key(message, k), "status": k}}),
        ),
        None => error(code, message),
    }
}

/// The in-band error object of a stream (`x-mock-sse-inject: error@N`).
pub fn in_band_error(key: Option<&str>) -> Value {
    let message = status_message(503);
    match key {
        Some(k) => json!({"error": {"code": 503, "message": with_key(message, k), "status": k}}),
        None => json!({"error": {"code": 503, "message": message, "status": status_name(503)}}),
    }
}

fn status_message(code: u16) -> &'static str {
    match code {
        400 => "Request contains an invalid argument.",
        401 => "Request had invalid authentication credentials.",
        403 => "The caller does not have permission",
        404 => "Requested entity was not found.",
        429 => "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        500 => "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        503 => "The model is overloaded. Please try again later.",
        504 => "The request timed out. Please try again.",
        c if c >= 500 => "An internal error has occurred.",
        _ => "The request failed.",
    }
}

// ---------------------------------------------------------------------------
// Routing

/// `(model, method)` for `/v1beta/models/{model}:{method}` (or `/v1/…`).
pub fn parse_path(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let (model, method) = rest.rsplit_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some((model, method))
}

pub fn handle(ctx: &Ctx<'_>) -> Resp {
    let Some((model, method)) = parse_path(ctx.path) else {
        return error(404, "Requested entity was not found.");
    };
    let known = matches!(
        method,
        "generateContent"
            | "streamGenerateContent"
            | "embedContent"
            | "batchEmbedContents"
            | "countTokens"
    );
    if !known || ctx.method != Method::POST {
        return error(404, "Requested entity was not found.");
    }

    let provided = ctx
        .header("x-goog-api-key")
        .map(str::to_string)
        .or_else(|| ctx.query_param("key"));
    match check_key(ctx.state.api_key.as_deref(), provided.as_deref()) {
        Auth::Ok => {}
        Auth::Missing => {
            return error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            )
        }
        Auth::Invalid(_) => {
            return error_with_details(
                403,
                "API key not valid. Please pass a valid API key.",
                json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"}}]),
            )
        }
    }

    serve(ctx, model, method, Api::Gemini)
}

/// The API a request came in on: the Gemini API, or Gemini on Vertex AI
/// (which wants a `role` on every entry of `contents`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    Gemini,
    Vertex,
}

/// Vertex AI's `publishers/google` models, once the caller is authenticated:
/// `generateContent`, `streamGenerateContent` and `countTokens`.
pub fn handle_vertex(ctx: &Ctx<'_>, model: &str, method: &str) -> Resp {
    let known = matches!(
        method,
        "generateContent" | "streamGenerateContent" | "countTokens"
    );
    if !known {
        return error(404, "Requested entity was not found.");
    }
    serve(ctx, model, method, Api::Vertex)
}

/// Decode the body and answer `method` (already known to exist).
fn serve(ctx: &Ctx<'_>, model: &str, method: &str, api: Api) -> Resp {
    let body = match serde_json::from_slice::<Value>(ctx.body) {
        Ok(Value::Object(m)) => m,
        Ok(other) => {
            return payload_error(format!(
                "Invalid JSON payload received. Expected an object, got: {}.",
                to_json_line(&other)
            ))
        }
        Err(_) => {
            return payload_error(String::from(
                "Invalid JSON payload received. Unexpected token.",
            ))
        }
    };
    let result = match method {
        "generateContent" => generate(ctx, model, &body, false, api),
        "streamGenerateContent" => generate(ctx, model, &body, true, api),
        "embedContent" => embed(&body),
        "batchEmbedContents" => batch_embed(&body),
        _ => count_tokens(&body, api),
    };
    result.unwrap_or_else(|resp| resp)
}

// ---------------------------------------------------------------------------
// Proto-JSON helpers

/// lowerCamelCase → snake_case.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// snake_case → lowerCamelCase.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Look up a field by its camelCase name, accepting the snake_case spelling too.
fn field<'a>(m: &'a Map<String, Value>, camel_name: &str) -> Option<&'a Value> {
    m.get(camel_name)
        .or_else(|| m.get(&snake(camel_name)))
        .filter(|v| !v.is_null())
}

/// Reject fields that are not in `known` (camelCase names).
fn check_fields(m: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), Resp> {
    for k in m.keys() {
        if !known.contains(&camel(k).as_str()) {
            let msg = if at.is_empty() {
                format!("Invalid JSON payload received. Unknown name \"{k}\": Cannot find field.")
            } else {
                format!("Invalid JSON payload received. Unknown name \"{k}\" at '{at}': Cannot find field.")
            };
            return Err(payload_error(msg));
        }
    }
    Ok(())
}

fn bad_value(at: &str, ty: &str, v: &Value) -> Resp {
    payload_error(format!(
        "Invalid value at '{at}' ({ty}), {}",
        to_json_line(v)
    ))
}

fn as_object<'a>(v: &'a Value, at: &str, ty: &str) -> Result<&'a Map<String, Value>, Resp> {
    v.as_object().ok_or_else(|| bad_value(at, ty, v))
}

/// Repeated fields accept a list or (leniently, like Google's parser) one value.
fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

fn check_type(v: &Value, at: &str, ty: &str) -> Result<(), Resp> {
    let ok = match ty {
        "TYPE_STRING" => v.is_string(),
        "TYPE_BOOL" => v.is_boolean(),
        "TYPE_FLOAT" => v.is_number() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()),
        "TYPE_INT32" | "TYPE_INT64" => as_uint(v, true).is_some() || v.as_i64().is_some(),
        _ => v.is_object(),
    };
    if ok {
        Ok(())
    } else {
        Err(bad_value(at, ty, v))
    }
}

// ---------------------------------------------------------------------------
// Content validation

const CONTENT_FIELDS: [&str; 2] = ["role", "parts"];
const PART_FIELDS: [&str; 12] = [
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "partMetadata",
    "mediaResolution",
];
const DATA_FIELDS: [&str; 7] = [
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];
const CONTENT_TYPE: &str = "type.googleapis.com/google.ai.generativelanguage.v1beta.Content";
const PART_TYPE: &str = "type.googleapis.com/google.ai.generativelanguage.v1beta.Part";

struct ContentInfo {
    role: Option<String>,
    text: String,
    words: u64,
}

const INVALID_ROLE: &str = "Please use a valid role: user, model.";

/// Validate one `Content`. `at` is the snake_case path ("contents[0]"), `req`
/// the request message name used in "* Request.field: …" messages.
/// `require_role`: a missing or empty `role` is an error (Vertex's `contents`).
fn validate_content(
    v: &Value,
    at: &str,
    req: &str,
    require_role: bool,
) -> Result<ContentInfo, Resp> {
    let c = as_object(v, at, CONTENT_TYPE)?;
    check_fields(c, &CONTENT_FIELDS, at)?;
    let role = match field(c, "role") {
        None | Some(Value::String(_)) if require_role && !has_role(c) => {
            return Err(invalid(INVALID_ROLE))
        }
        None => None,
        Some(Value::String(r)) if r.is_empty() => None,
        Some(Value::String(r)) if r == "user" || r == "model" => Some(r.clone()),
        Some(Value::String(_)) => return Err(invalid(INVALID_ROLE)),
        Some(other) => return Err(bad_value(&format!("{at}.role"), "TYPE_STRING", other)),
    };
    let parts = match field(c, "parts") {
        None => Vec::new(),
        Some(p) => as_list(p),
    };
    if parts.is_empty() {
        return Err(invalid(format!(
            "* {req}.{at}.parts: contents.parts must not be empty.\n"
        )));
    }
    let mut text = String::new();
    let mut word_count = 0;
    for (j, p) in parts.into_iter().enumerate() {
        let pat = format!("{at}.parts[{j}]");
        let part = as_object(p, &pat, PART_TYPE)?;
        check_fields(part, &PART_FIELDS, &pat)?;
        let set: Vec<&str> = DATA_FIELDS
            .iter()
            .copied()
            .filter(|f| field(part, f).is_some())
            .collect();
        match set.as_slice() {
            [] => {
                return Err(invalid(format!(
                    "* {req}.{pat}.data: required oneof field 'data' must have one initialized field\n"
                )))
            }
            [_] => {}
            [first, second, ..] => {
                return Err(payload_error(format!(
                    "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{}' (already set: '{}').",
                    snake(second),
                    snake(first)
                )))
            }
        }
        if let Some(t) = field(part, "thought") {
            check_type(t, &format!("{pat}.thought"), "TYPE_BOOL")?;
        }
        match set[0] {
            "text" => match field(part, "text") {
                Some(Value::String(s)) => {
                    word_count += words(s);
                    text.push_str(s);
                }
                Some(other) => return Err(bad_value(&format!("{pat}.text"), "TYPE_STRING", other)),
                None => {}
            },
            "inlineData" => {
                let at = format!("{pat}.inline_data");
                let d = as_object(
                    field(part, "inlineData").unwrap_or(&Value::Null),
                    &at,
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.Blob",
                )?;
                check_fields(d, &["mimeType", "data"], &at)?;
                for f in ["mimeType", "data"] {
                    match field(d, f) {
                        Some(v) => check_type(v, &format!("{at}.{}", snake(f)), "TYPE_STRING")?,
                        None => {
                            return Err(invalid(format!(
                                "* {req}.{at}.{}: {} is not specified\n",
                                snake(f),
                                snake(f)
                            )))
                        }
                    }
                }
            }
            "fileData" => {
                let at = format!("{pat}.file_data");
                let d = as_object(
                    field(part, "fileData").unwrap_or(&Value::Null),
                    &at,
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.FileData",
                )?;
                check_fields(d, &["mimeType", "fileUri", "displayName"], &at)?;
                if field(d, "fileUri").is_none() {
                    return Err(invalid(format!(
                        "* {req}.{at}.file_uri: file_uri is not specified\n"
                    )));
                }
            }
            "functionCall" => {
                let at = format!("{pat}.function_call");
                let f = as_object(
                    field(part, "functionCall").unwrap_or(&Value::Null),
                    &at,
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCall",
                )?;
                check_fields(f, &["id", "name", "args"], &at)?;
                if field(f, "name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(invalid(format!(
                        "* {req}.{at}.name: Name cannot be empty.\n"
                    )));
                }
                if let Some(a) = field(f, "args") {
                    as_object(
                        a,
                        &format!("{at}.args"),
                        "type.googleapis.com/google.protobuf.Struct",
                    )?;
                }
            }
            "functionResponse" => {
                let at = format!("{pat}.function_response");
                let f = as_object(
                    field(part, "functionResponse").unwrap_or(&Value::Null),
                    &at,
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionResponse",
                )?;
                check_fields(
                    f,
                    &[
                        "id",
                        "name",
                        "response",
                        "parts",
                        "willContinue",
                        "scheduling",
                    ],
                    &at,
                )?;
                if field(f, "name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(invalid(format!(
                        "* {req}.{at}.name: Name cannot be empty.\n"
                    )));
                }
                match field(f, "response") {
                    Some(r) => {
                        as_object(
                            r,
                            &format!("{at}.response"),
                            "type.googleapis.com/google.protobuf.Struct",
                        )?;
                    }
                    None => {
                        return Err(invalid(format!(
                            "* {req}.{at}.response: response is not specified\n"
                        )))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ContentInfo {
        role,
        text,
        words: word_count,
    })
}

/// The content names a non-empty role.
fn has_role(c: &Map<String, Value>) -> bool {
    field(c, "role")
        .and_then(Value::as_str)
        .is_some_and(|r| !r.is_empty())
}

const GENERATION_CONFIG: [(&str, &str); 20] = [
    ("stopSequences", "LIST_STRING"),
    ("responseMimeType", "TYPE_STRING"),
    ("responseSchema", "OBJECT"),
    ("responseJsonSchema", "ANY"),
    ("responseModalities", "LIST_STRING"),
    ("candidateCount", "TYPE_INT32"),
    ("maxOutputTokens", "TYPE_INT32"),
    ("temperature", "TYPE_FLOAT"),
    ("topP", "TYPE_FLOAT"),
    ("topK", "TYPE_INT32"),
    ("seed", "TYPE_INT32"),
    ("presencePenalty", "TYPE_FLOAT"),
    ("frequencyPenalty", "TYPE_FLOAT"),
    ("responseLogprobs", "TYPE_BOOL"),
    ("logprobs", "TYPE_INT32"),
    ("enableEnhancedCivicAnswers", "TYPE_BOOL"),
    ("speechConfig", "OBJECT"),
    ("thinkingConfig", "OBJECT"),
    ("mediaResolution", "TYPE_STRING"),
    ("imageConfig", "OBJECT"),
];

const MIME_TYPES: [&str; 5] = [
    "text/plain",
    "application/json",
    "application/xml",
    "application/yaml",
    "text/x.enum",
];

struct GenConfig {
    max_output_tokens: Option<u64>,
    stops: Vec<String>,
}

fn validate_generation_config(v: &Value, req: &str) -> Result<GenConfig, Resp> {
    let at = "generation_config";
    let g = as_object(
        v,
        at,
        "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig",
    )?;
    let known: Vec<&str> = GENERATION_CONFIG.iter().map(|(n, _)| *n).collect();
    check_fields(g, &known, at)?;
    let mut stops = Vec::new();
    for (name, ty) in GENERATION_CONFIG {
        let Some(val) = field(g, name) else { continue };
        let fat = format!("{at}.{}", snake(name));
        match ty {
            "LIST_STRING" => {
                for (i, s) in as_list(val).into_iter().enumerate() {
                    match s {
                        Value::String(s) => {
                            if name == "stopSequences" {
                                stops.push(s.clone());
                            }
                        }
                        other => {
                            return Err(bad_value(&format!("{fat}[{i}]"), "TYPE_STRING", other))
                        }
                    }
                }
            }
            "OBJECT" => {
                as_object(val, &fat, "type.googleapis.com/google.protobuf.Struct")?;
            }
            "ANY" => {}
            ty => check_type(val, &fat, ty)?,
        }
    }
    if let Some(Value::String(mime)) = field(g, "responseMimeType") {
        if !MIME_TYPES.contains(&mime.as_str()) {
            return Err(invalid(format!(
                "* {req}.generation_config.response_mime_type: allowed mimetypes are `text/plain`, `application/json`, `application/xml`, `application/yaml` and `text/x.enum`.\n"
            )));
        }
    }
    if stops.len() > 5 {
        return Err(invalid(format!(
            "* {req}.generation_config.stop_sequences: the number of stop_sequences must not exceed 5\n"
        )));
    }
    let max_output_tokens = field(g, "maxOutputTokens")
        .and_then(|v| as_uint(v, true))
        .filter(|n| *n > 0);
    Ok(GenConfig {
        max_output_tokens,
        stops,
    })
}

fn valid_function_name(n: &str) -> bool {
    let mut chars = n.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

const TOOL_FIELDS: [&str; 9] = [
    "functionDeclarations",
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
    "computerUse",
    "fileSearch",
    "googleMaps",
    "mcpServers",
];

fn validate_tools(v: &Value, req: &str) -> Result<(), Resp> {
    for (i, t) in as_list(v).into_iter().enumerate() {
        let at = format!("tools[{i}]");
        let t = as_object(
            t,
            &at,
            "type.googleapis.com/google.ai.generativelanguage.v1beta.Tool",
        )?;
        check_fields(t, &TOOL_FIELDS, &at)?;
        let Some(decls) = field(t, "functionDeclarations") else {
            continue;
        };
        for (j, d) in as_list(decls).into_iter().enumerate() {
            let dat = format!("{at}.function_declarations[{j}]");
            let d = as_object(
                d,
                &dat,
                "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionDeclaration",
            )?;
            check_fields(
                d,
                &[
                    "name",
                    "description",
                    "parameters",
                    "parametersJsonSchema",
                    "response",
                    "responseJsonSchema",
                    "behavior",
                ],
                &dat,
            )?;
            let name = field(d, "name").and_then(Value::as_str).unwrap_or("");
            if !valid_function_name(name) {
                return Err(invalid(format!(
                    "* {req}.{dat}.name: Invalid function name. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with a maximum length of 64.\n"
                )));
            }
            if let Some(p) = field(d, "parameters") {
                as_object(
                    p,
                    &format!("{dat}.parameters"),
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.Schema",
                )?;
            }
        }
    }
    Ok(())
}

const GENERATE_FIELDS: [&str; 9] = [
    "model",
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "labels",
];

struct GenerateReq {
    prompt_tokens: u64,
    last_user: String,
    config: GenConfig,
}

fn validate_generate(m: &Map<String, Value>, req: &str, api: Api) -> Result<GenerateReq, Resp> {
    check_fields(m, &GENERATE_FIELDS, "")?;
    let contents = field(m, "contents").map(as_list).unwrap_or_default();
    if contents.is_empty() {
        return Err(invalid(format!(
            "* {req}.contents: contents is not specified\n"
        )));
    }
    let mut prompt_tokens = 0;
    let mut last_user = String::new();
    for (i, c) in contents.into_iter().enumerate() {
        let info = validate_content(c, &format!("contents[{i}]"), req, api == Api::Vertex)?;
        prompt_tokens += info.words;
        if info.role.as_deref() != Some("model") {
            last_user = info.text;
        }
    }
    if let Some(si) = field(m, "systemInstruction") {
        let info = validate_content(si, "system_instruction", req, false)?;
        prompt_tokens += info.words;
    }
    if let Some(t) = field(m, "tools") {
        validate_tools(t, req)?;
    }
    if let Some(tc) = field(m, "toolConfig") {
        let tc = as_object(
            tc,
            "tool_config",
            "type.googleapis.com/google.ai.generativelanguage.v1beta.ToolConfig",
        )?;
        check_fields(
            tc,
            &["functionCallingConfig", "retrievalConfig"],
            "tool_config",
        )?;
    }
    if let Some(ss) = field(m, "safetySettings") {
        for (i, s) in as_list(ss).into_iter().enumerate() {
            let at = format!("safety_settings[{i}]");
            let s = as_object(
                s,
                &at,
                "type.googleapis.com/google.ai.generativelanguage.v1beta.SafetySetting",
            )?;
            check_fields(s, &["category", "threshold", "method"], &at)?;
        }
    }
    let config = match field(m, "generationConfig") {
        Some(g) => validate_generation_config(g, req)?,
        None => GenConfig {
            max_output_tokens: None,
            stops: Vec::new(),
        },
    };
    Ok(GenerateReq {
        prompt_tokens,
        last_user,
        config,
    })
}

// ---------------------------------------------------------------------------
// generateContent / streamGenerateContent

fn generate(
    ctx: &Ctx<'_>,
    model: &str,
    m: &Map<String, Value>,
    stream: bool,
    api: Api,
) -> Result<Resp, Resp> {
    let req = validate_generate(m, "GenerateContentRequest", api)?;
    let p = plan(
        ctx.knobs,
        PlanInput {
            last_user: &req.last_user,
            prompt_tokens: req.prompt_tokens,
            max_tokens: req.config.max_output_tokens,
            stop_sequences: &req.config.stops,
            reasoning_enabled: true,
            last_tool_result: None,
        },
    );
    let call = match &p.tool {
        Some(t) => match serde_json::from_str::<Value>(&t.args) {
            Ok(args @ Value::Object(_)) => {
                Some(json!({"functionCall": {"name": t.name, "args": args}}))
            }
            _ => {
                return Err(invalid(
                    "mock-provider: x-mock-tool-args must be a JSON object",
                ))
            }
        },
        None => None,
    };
    let finish = match p.finish {
        Finish::MaxTokens => "MAX_TOKENS",
        _ => "STOP",
    };
    let mut usage = json!({
        "promptTokenCount": p.prompt_tokens,
        "candidatesTokenCount": p.output_tokens,
        "totalTokenCount": p.prompt_tokens + p.completion_tokens(),
    });
    if p.reasoning.is_some() {
        usage["thoughtsTokenCount"] = json!(p.reasoning_tokens);
    }
    let response_id = format!("mock-response-{}", ctx.seq);

    let response = |parts: Vec<Value>, last: bool| -> Value {
        let mut cand = json!({"content": {"role": "model", "parts": parts}});
        if last {
            cand["finishReason"] = json!(finish);
        }
        cand["index"] = json!(0);
        let mut r = json!({"candidates": [cand]});
        if last {
            r["usageMetadata"] = usage.clone();
        }
        r["modelVersion"] = json!(model);
        r["responseId"] = json!(response_id);
        r
    };

    if !stream {
        let mut parts = Vec::with_capacity(2);
        if let Some(r) = &p.reasoning {
            parts.push(json!({"text": r, "thought": true}));
        }
        match call {
            Some(c) => parts.push(c),
            None => parts.push(json!({"text": p.text})),
        }
        return Ok(json_resp(200, &response(parts, true)));
    }

    let n = ctx.knobs.chunk_chars;
    let mut chunks: Vec<Value> = Vec::new();
    if let Some(r) = &p.reasoning {
        for piece in char_chunks(r, n) {
            chunks.push(response(
                vec![json!({"text": piece, "thought": true})],
                false,
            ));
        }
    }
    match call {
        Some(c) => chunks.push(response(vec![c], true)),
        None => {
            let pieces = ctx.text_pieces(&p.text);
            if pieces.is_empty() {
                chunks.push(response(vec![json!({"text": ""})], true));
            }
            let last = pieces.len().saturating_sub(1);
            for (i, piece) in pieces.into_iter().enumerate() {
                chunks.push(response(vec![json!({"text": piece})], i == last));
            }
        }
    }

    let sse = ctx.query_param("alt").as_deref() == Some("sse");
    if sse {
        let events = chunks
            .iter()
            .map(|c| Bytes::from(format!("data: {}\r\n\r\n", to_json_line(c))))
            .collect();
        Ok(ctx.stream(Wire::GeminiSse, events))
    } else {
        // Without alt=sse the API streams one JSON array, element by element.
        let elements = chunks
            .iter()
            .map(|c| Bytes::from(to_json_line(c)))
            .collect();
        Ok(ctx.stream(Wire::GeminiArray, elements))
    }
}

// ---------------------------------------------------------------------------
// Embeddings and token counting

const EMBED_FIELDS: [&str; 5] = [
    "model",
    "content",
    "taskType",
    "title",
    "outputDimensionality",
];

fn embed_one(m: &Map<String, Value>, at: &str, req: &str) -> Result<Value, Resp> {
    check_fields(m, &EMBED_FIELDS, at)?;
    let Some(content) = field(m, "content") else {
        let loc = if at.is_empty() {
            String::from("content")
        } else {
            format!("{at}.content")
        };
        return Err(invalid(format!(
            "* {req}.{loc}: content is not specified\n"
        )));
    };
    let loc = if at.is_empty() {
        String::from("content")
    } else {
        format!("{at}.content")
    };
    let info = validate_content(content, &loc, req, false)?;
    if let Some(d) = field(m, "outputDimensionality") {
        check_type(d, &format!("{loc}.output_dimensionality"), "TYPE_INT32")?;
    }
    Ok(json!({"values": embedding(&info.text)}))
}

fn embed(m: &Map<String, Value>) -> Result<Resp, Resp> {
    let e = embed_one(m, "", "EmbedContentRequest")?;
    Ok(json_resp(200, &json!({"embedding": e})))
}

fn batch_embed(m: &Map<String, Value>) -> Result<Resp, Resp> {
    let req = "BatchEmbedContentsRequest";
    check_fields(m, &["requests"], "")?;
    let requests = field(m, "requests").map(as_list).unwrap_or_default();
    if requests.is_empty() {
        return Err(invalid(format!(
            "* {req}.requests: requests is not specified\n"
        )));
    }
    let mut out = Vec::with_capacity(requests.len());
    for (i, r) in requests.into_iter().enumerate() {
        let at = format!("requests[{i}]");
        let r = as_object(
            r,
            &at,
            "type.googleapis.com/google.ai.generativelanguage.v1beta.EmbedContentRequest",
        )?;
        if !field(r, "model")
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with("models/") && s.len() > 7)
        {
            return Err(invalid(format!(
                "* {req}.{at}.model: unexpected model name format\n"
            )));
        }
        out.push(embed_one(r, &at, req)?);
    }
    Ok(json_resp(200, &json!({"embeddings": out})))
}

fn count_tokens(m: &Map<String, Value>, api: Api) -> Result<Resp, Resp> {
    check_fields(m, &["contents", "generateContentRequest"], "")?;
    let total = match field(m, "generateContentRequest") {
        Some(g) => {
            let g = as_object(
                g,
                "generate_content_request",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentRequest",
            )?;
            validate_generate(g, "CountTokensRequest.generate_content_request", api)?.prompt_tokens
        }
        None => {
            let contents = field(m, "contents").map(as_list).unwrap_or_default();
            if contents.is_empty() {
                return Err(invalid(
                    "* CountTokensRequest.contents: contents is not specified\n",
                ));
            }
            let mut total = 0;
            for (i, c) in contents.into_iter().enumerate() {
                let at = format!("contents[{i}]");
                total += validate_content(c, &at, "CountTokensRequest", api == Api::Vertex)?.words;
            }
            total
        }
    };
    Ok(json_resp(200, &json!({"totalTokens": total})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/v1beta/models/gemini-2.0-flash:generateContent"),
            Some(("gemini-2.0-flash", "generateContent"))
        );
        assert_eq!(
            parse_path("/v1/models/m:embedContent"),
            Some(("m", "embedContent"))
        );
        assert_eq!(parse_path("/v1beta/models/m"), None);
        assert_eq!(parse_path("/v1/chat/completions"), None);
    }

    #[test]
    fn case_conversion() {
        assert_eq!(snake("maxOutputTokens"), "max_output_tokens");
        assert_eq!(camel("max_output_tokens"), "maxOutputTokens");
        assert_eq!(camel("text"), "text");
    }

    #[test]
    fn function_names() {
        assert!(valid_function_name("get_weather"));
        assert!(valid_function_name("_a.b:c-d"));
        assert!(!valid_function_name("1abc"));
        assert!(!valid_function_name(""));
        assert!(!valid_function_name("has space"));
    }
}
