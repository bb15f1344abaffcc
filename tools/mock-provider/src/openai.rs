//! OpenAI-compatible API (chat completions, embeddings, models) and Azure OpenAI.

use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::common::{
    as_uint, base64, char_chunks, check_key, embedding, json_resp, json_type, now_secs, plan,
    to_json_line, with_key, words, Auth, Ctx, Finish, Plan, PlanInput, Resp,
};
use crate::inject::Wire;
use crate::responses;

const SYSTEM_FINGERPRINT: &str = "fp_mock";
const ROLES: [&str; 6] = [
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

// ---------------------------------------------------------------------------
// Errors

pub fn error(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Resp {
    json_resp(
        status,
        &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}),
    )
}

pub(crate) fn invalid(message: &str, param: Option<&str>, code: Option<&str>) -> Resp {
    error(400, message, "invalid_request_error", param, code)
}

/// Default body for `x-mock-status` on OpenAI-compatible paths; with
/// `x-mock-echo-key`, the key is put in every field.
pub fn status_error(status: u16, key: Option<&str>) -> Resp {
    let (message, kind, code) = status_parts(status);
    match key {
        Some(k) => error(status, &with_key(message, k), k, Some(k), Some(k)),
        None => error(status, message, kind, None, code),
    }
}

/// The in-band error event of a chat completion stream (`x-mock-sse-inject: error@N`).
pub fn in_band_error(key: Option<&str>) -> Value {
    let (message, kind, code) = status_parts(500);
    match key {
        Some(k) => {
            json!({"error": {"message": with_key(message, k), "type": k, "param": k, "code": k}})
        }
        None => json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    }
}

/// (message, type, code) of OpenAI's error for an HTTP status.
fn status_parts(status: u16) -> (&'static str, &'static str, Option<&'static str>) {
    match status {
        400 => ("Invalid request.", "invalid_request_error", None),
        401 => (
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        403 => (
            "You are not allowed to access this resource.",
            "invalid_request_error",
            Some("permission_denied"),
        ),
        404 => (
            "The model does not exist or you do not have access to it.",
            "invalid_request_error",
            Some("model_not_found"),
        ),
        413 => ("Request too large.", "invalid_request_error", None),
        429 => (
            "Rate limit reached for requests. Please try again later.",
            "requests",
            Some("rate_limit_exceeded"),
        ),
        500 => (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        502 => ("Bad gateway.", "server_error", None),
        503 => (
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
        ),
        504 => ("Gateway timeout.", "server_error", None),
        s if s >= 500 => ("The server had an error while processing your request.", "server_error", None),
        _ => ("The request failed.", "invalid_request_error", None),
    }
}

fn azure_error(status: u16, message: &str) -> Resp {
    json_resp(
        status,
        &json!({"error": {"code": status.to_string(), "message": message}}),
    )
}

/// Default body for `x-mock-status` on Azure paths (Azure's own error shape);
/// with `x-mock-echo-key`, the key is in `code` and `message`.
pub fn azure_status_error(status: u16, key: Option<&str>) -> Resp {
    let message = match status {
        400 => "Bad request.",
        401 => AZURE_ACCESS_DENIED,
        403 => "Access denied.",
        404 => "Resource not found",
        429 => "Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
        500 => "The server had an error while processing your request. Sorry about that!",
        503 => "The service is temporarily unable to process your request. Please try again later.",
        s if s >= 500 => "The server had an error while processing your request.",
        _ => "The request failed.",
    };
    match key {
        Some(k) => json_resp(
            status,
            &json!({"error": {"code": k, "message": with_key(message, k)}}),
        ),
        None => azure_error(status, message),
    }
}

const AZURE_ACCESS_DENIED: &str = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.";

fn mask_key(k: &str) -> String {
    let chars: Vec<char> = k.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

// ---------------------------------------------------------------------------
// Routing

fn invalid_url(ctx: &Ctx<'_>) -> Resp {
    error(
        404,
        &format!("Invalid URL ({} {})", ctx.method, ctx.path),
        "invalid_request_error",
        None,
        None,
    )
}

pub fn handle(ctx: &Ctx<'_>) -> Resp {
    enum Endpoint {
        Chat,
        Responses,
        Embeddings,
        Models,
        Moderations,
    }
    let endpoint = if ctx.path.ends_with("/chat/completions") && ctx.method == Method::POST {
        Endpoint::Chat
    } else if ctx.path.ends_with("/responses") && ctx.method == Method::POST {
        Endpoint::Responses
    } else if ctx.path.ends_with("/embeddings") && ctx.method == Method::POST {
        Endpoint::Embeddings
    } else if ctx.path.ends_with("/models") && ctx.method == Method::GET {
        Endpoint::Models
    } else if ctx.path.ends_with("/moderations") && ctx.method == Method::POST {
        Endpoint::Moderations
    } else {
        return invalid_url(ctx);
    };

    let provided = ctx.header("authorization").and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(rest)
    });
    match check_key(ctx.state.api_key.as_deref(), provided) {
        Auth::Ok => {}
        Auth::Missing if ctx.state.api_key.is_none() => {}
        Auth::Missing => {
            return error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                None,
            )
        }
        Auth::Invalid(k) => {
            return error(
                401,
                &format!(
                    "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                    mask_key(&k)
                ),
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            )
        }
    }

    match endpoint {
        Endpoint::Chat => chat(ctx, None),
        Endpoint::Responses => responses::create(ctx),
        Endpoint::Embeddings => embeddings(ctx, None),
        Endpoint::Models => models(),
        Endpoint::Moderations => crate::moderation::handle(ctx.body),
    }
}

pub fn handle_azure(ctx: &Ctx<'_>) -> Resp {
    let rest = ctx.path.trim_start_matches("/openai/deployments/");
    let Some((deployment, op)) = rest.split_once('/') else {
        return azure_error(404, "Resource not found");
    };
    let is_chat = op == "chat/completions";
    if deployment.is_empty() || !(is_chat || op == "embeddings") || ctx.method != Method::POST {
        return azure_error(404, "Resource not found");
    }
    match check_key(ctx.state.api_key.as_deref(), ctx.header("api-key")) {
        Auth::Ok => {}
        Auth::Missing | Auth::Invalid(_) => return azure_error(401, AZURE_ACCESS_DENIED),
    }
    match ctx.query_param("api-version") {
        Some(v) if !v.trim().is_empty() => {}
        _ => {
            return json_resp(
                400,
                &json!({"error": {"code": "BadRequest", "message": "API version not supported"}}),
            )
        }
    }
    if is_chat {
        chat(ctx, Some(deployment))
    } else {
        embeddings(ctx, Some(deployment))
    }
}

fn models() -> Resp {
    json_resp(
        200,
        &json!({
            "object": "list",
            "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
                {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
                {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"}
            ]
        }),
    )
}

// ---------------------------------------------------------------------------
// Request validation

pub(crate) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Resp> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(invalid(
            &format!(
                "Invalid type for request body: expected an object, but got {} instead.",
                json_type(&other)
            ),
            None,
            Some("invalid_type"),
        )),
        Err(_) => Err(invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please visit https://platform.openai.com/docs/api-reference.)",
            None,
            None,
        )),
    }
}

pub(crate) fn type_error(param: &str, expected: &str, got: &Value) -> Resp {
    invalid(
        &format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            json_type(got)
        ),
        Some(param),
        Some("invalid_type"),
    )
}

pub(crate) fn missing(param: &str) -> Resp {
    invalid(
        &format!("Missing required parameter: '{param}'."),
        Some(param),
        Some("missing_required_parameter"),
    )
}

/// `model`: required (non-empty string) unless `optional` (Azure).
fn parse_model(m: &Map<String, Value>, optional: bool) -> Result<String, Resp> {
    match m.get("model") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        None | Some(Value::Null) | Some(Value::String(_)) if optional => Ok(String::new()),
        Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_))) => {
            Err(type_error("model", "a string", v))
        }
        _ => Err(invalid("you must provide a model parameter", None, None)),
    }
}

pub(crate) fn number_range(
    m: &Map<String, Value>,
    name: &str,
    min: f64,
    max: f64,
) -> Result<(), Resp> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(()),
        Some(v @ Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(0.0);
            if x < min {
                Err(invalid(
                    &format!("Invalid '{name}': decimal below minimum value. Expected a value >= {min}, but got {v} instead."),
                    Some(name),
                    Some("decimal_below_min_value"),
                ))
            } else if x > max {
                Err(invalid(
                    &format!("Invalid '{name}': decimal above maximum value. Expected a value <= {max}, but got {v} instead."),
                    Some(name),
                    Some("decimal_above_max_value"),
                ))
            } else {
                Ok(())
            }
        }
        Some(v) => Err(type_error(name, "a decimal", v)),
    }
}

fn positive_int(m: &Map<String, Value>, name: &str) -> Result<Option<u64>, Resp> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(n)) if n.is_i64() || n.is_u64() => match n.as_u64() {
            Some(x) if x >= 1 => Ok(Some(x)),
            _ => Err(invalid(
                &format!("Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {v} instead."),
                Some(name),
                Some("integer_below_min_value"),
            )),
        },
        Some(v) => Err(type_error(name, "an integer", v)),
    }
}

/// Text of a message `content`: a string, or the concatenated `text` parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn content_words(content: &Value) -> u64 {
    match content {
        Value::String(s) => words(s),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(words)
            .sum(),
        _ => 0,
    }
}

const PART_TYPES: [&str; 6] = [
    "text",
    "image_url",
    "input_audio",
    "refusal",
    "audio",
    "file",
];

fn validate_content(i: usize, role: &str, msg: &Map<String, Value>) -> Result<(), Resp> {
    let param = format!("messages[{i}].content");
    match msg.get("content") {
        None | Some(Value::Null) => {
            if role == "assistant" || role == "function" {
                Ok(())
            } else if msg.contains_key("content") {
                Err(invalid(
                    "Invalid value for 'content': expected a string, got null.",
                    Some(&format!("messages.[{i}].content")),
                    None,
                ))
            } else {
                Err(missing(&param))
            }
        }
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let pp = format!("{param}[{j}]");
                let Value::Object(p) = part else {
                    return Err(type_error(&pp, "an object", part));
                };
                let kind = match p.get("type") {
                    Some(Value::String(t)) => t.as_str(),
                    None => return Err(missing(&format!("{pp}.type"))),
                    Some(v) => return Err(type_error(&format!("{pp}.type"), "a string", v)),
                };
                if !PART_TYPES.contains(&kind) {
                    return Err(invalid(
                        &format!("Invalid value: '{kind}'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'."),
                        Some(&format!("{pp}.type")),
                        Some("invalid_value"),
                    ));
                }
                if kind == "text" {
                    match p.get("text") {
                        Some(Value::String(_)) => {}
                        None => return Err(missing(&format!("{pp}.text"))),
                        Some(v) => return Err(type_error(&format!("{pp}.text"), "a string", v)),
                    }
                }
                if kind == "image_url" && !p.get("image_url").is_some_and(Value::is_object) {
                    return Err(missing(&format!("{pp}.image_url")));
                }
            }
            Ok(())
        }
        Some(v) => Err(type_error(&param, "one of a string or array of objects", v)),
    }
}

struct ChatReq {
    model: String,
    stream: bool,
    include_usage: bool,
    prompt_tokens: u64,
    last_user: String,
    last_tool_result: Option<String>,
    max_tokens: Option<u64>,
    stops: Vec<String>,
}

fn parse_chat(body: &[u8], model_optional: bool) -> Result<ChatReq, Resp> {
    let m = parse_body(body)?;
    let model = parse_model(&m, model_optional)?;

    let messages = match m.get("messages") {
        None => return Err(missing("messages")),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(invalid(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                Some("messages"),
                Some("empty_array"),
            ))
        }
        Some(Value::Array(a)) => a,
        Some(v) => return Err(type_error("messages", "an array of objects", v)),
    };

    let mut prompt_tokens = 0;
    let mut last_user = String::new();
    // The conversation's last message, when it is a tool result.
    let mut last_tool_result: Option<String> = None;
    // Role of the last non-tool message and whether it carried tool_calls.
    let mut prev_tool_calls = false;
    for (i, msg) in messages.iter().enumerate() {
        let Value::Object(msg) = msg else {
            return Err(type_error(&format!("messages[{i}]"), "an object", msg));
        };
        let role = match msg.get("role") {
            Some(Value::String(r)) => r.as_str(),
            None => return Err(missing(&format!("messages[{i}].role"))),
            Some(v) => return Err(type_error(&format!("messages[{i}].role"), "a string", v)),
        };
        if !ROLES.contains(&role) {
            return Err(invalid(
                &format!("Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."),
                Some(&format!("messages[{i}].role")),
                Some("invalid_value"),
            ));
        }
        validate_content(i, role, msg)?;
        if role == "tool" {
            if !msg.get("tool_call_id").is_some_and(Value::is_string) {
                return Err(invalid(
                    "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
                    Some(&format!("messages.[{i}].tool_call_id")),
                    None,
                ));
            }
            if !prev_tool_calls {
                return Err(invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    Some(&format!("messages.[{i}].role")),
                    None,
                ));
            }
        } else {
            prev_tool_calls = role == "assistant"
                && msg
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
        }
        if let Some(c) = msg.get("content") {
            prompt_tokens += content_words(c);
            if role == "user" {
                last_user = content_text(c);
            }
        }
        last_tool_result =
            (role == "tool").then(|| msg.get("content").map(content_text).unwrap_or_default());
    }

    let stream = match m.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(type_error("stream", "a boolean", v)),
    };
    let include_usage = match m.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => {
            if !stream {
                return Err(invalid(
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                    Some("stream_options"),
                    None,
                ));
            }
            match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => return Err(type_error("stream_options.include_usage", "a boolean", v)),
            }
        }
        Some(v) => return Err(type_error("stream_options", "an object", v)),
    };

    number_range(&m, "temperature", 0.0, 2.0)?;
    number_range(&m, "top_p", 0.0, 1.0)?;
    let max_tokens = match positive_int(&m, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => positive_int(&m, "max_tokens")?,
    };
    let stops = match m.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, s) in a.iter().enumerate() {
                match s {
                    Value::String(s) => out.push(s.clone()),
                    v => return Err(type_error(&format!("stop[{i}]"), "a string", v)),
                }
            }
            out
        }
        Some(v) => return Err(type_error("stop", "a string or an array of strings", v)),
    };
    match m.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tools)) => {
            for (i, t) in tools.iter().enumerate() {
                let Value::Object(t) = t else {
                    return Err(type_error(&format!("tools[{i}]"), "an object", t));
                };
                match t.get("type").and_then(Value::as_str) {
                    Some("function") => {
                        let name = t
                            .get("function")
                            .and_then(|f| f.get("name"))
                            .and_then(Value::as_str);
                        if name.is_none_or(str::is_empty) {
                            return Err(missing(&format!("tools[{i}].function.name")));
                        }
                    }
                    Some(_) => {}
                    None => return Err(missing(&format!("tools[{i}].type"))),
                }
            }
        }
        Some(v) => return Err(type_error("tools", "an array", v)),
    }

    Ok(ChatReq {
        model,
        stream,
        include_usage,
        prompt_tokens,
        last_user,
        last_tool_result,
        max_tokens,
        stops,
    })
}

// ---------------------------------------------------------------------------
// Chat completions

fn finish_reason(f: &Finish) -> &'static str {
    match f {
        Finish::Stop | Finish::StopSequence(_) => "stop",
        Finish::MaxTokens => "length",
        Finish::ToolCall => "tool_calls",
    }
}

fn usage(p: &Plan) -> Value {
    let mut u = json!({
        "prompt_tokens": p.prompt_tokens,
        "completion_tokens": p.completion_tokens(),
        "total_tokens": p.prompt_tokens + p.completion_tokens(),
    });
    if p.reasoning.is_some() {
        u["completion_tokens_details"] = json!({"reasoning_tokens": p.reasoning_tokens});
    }
    u
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut<'a>; 1],
    usage: UsageOut,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    /// `null` for tool calls.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    refusal: Option<()>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<ReasoningDetails>,
}

#[derive(Serialize)]
struct ReasoningDetails {
    reasoning_tokens: u64,
}

fn chat(ctx: &Ctx<'_>, deployment: Option<&str>) -> Resp {
    let req = match parse_chat(ctx.body, deployment.is_some()) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let model = deployment.map(str::to_string).unwrap_or(req.model);
    let p = plan(
        ctx.knobs,
        PlanInput {
            last_user: &req.last_user,
            prompt_tokens: req.prompt_tokens,
            max_tokens: req.max_tokens,
            stop_sequences: &req.stops,
            reasoning_enabled: true,
            last_tool_result: req.last_tool_result.as_deref(),
        },
    );
    let id = format!("chatcmpl-mock-{}", ctx.seq);
    let call_id = format!("call_mock_{}", ctx.seq);
    let created = now_secs();

    if !req.stream {
        // Hot path of the benchmarks: serialised from typed structs (no Value tree).
        let tool_calls = p.tool.as_ref().map(|t| {
            [ToolCallOut {
                id: &call_id,
                kind: "function",
                function: FunctionOut {
                    name: &t.name,
                    arguments: &t.args,
                },
            }]
        });
        let completion = Completion {
            id: &id,
            object: "chat.completion",
            created,
            model: &model,
            choices: [ChoiceOut {
                index: 0,
                message: MessageOut {
                    role: "assistant",
                    content: p.tool.is_none().then_some(p.text.as_str()),
                    tool_calls,
                    reasoning_content: p.reasoning.as_deref(),
                    refusal: None,
                },
                logprobs: None,
                finish_reason: finish_reason(&p.finish),
            }],
            usage: UsageOut {
                prompt_tokens: p.prompt_tokens,
                completion_tokens: p.completion_tokens(),
                total_tokens: p.prompt_tokens + p.completion_tokens(),
                completion_tokens_details: p.reasoning.as_ref().map(|_| ReasoningDetails {
                    reasoning_tokens: p.reasoning_tokens,
                }),
            },
            system_fingerprint: SYSTEM_FINGERPRINT,
        };
        return match serde_json::to_vec(&completion) {
            Ok(b) => crate::common::bytes_resp(200, "application/json", b),
            Err(_) => status_error(500, None),
        };
    }

    let n = ctx.knobs.chunk_chars;
    let chunk = |delta: Value, finish: Option<&str>| -> Bytes {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if req.include_usage {
            c["usage"] = Value::Null;
        }
        Bytes::from(format!("data: {}\n\n", to_json_line(&c)))
    };

    let tool_header = |t: &crate::common::ToolCall| {
        json!([{"index": 0, "id": call_id, "type": "function",
                "function": {"name": t.name, "arguments": ""}}])
    };
    let mut events = Vec::new();
    // First delta: the role. A tool call without reasoning announces the call in
    // it (as OpenAI does); with reasoning, the call is announced after it.
    match (&p.tool, &p.reasoning) {
        (Some(t), None) => events.push(chunk(
            json!({"role": "assistant", "content": null, "tool_calls": tool_header(t), "refusal": null}),
            None,
        )),
        (Some(_), Some(_)) => events.push(chunk(
            json!({"role": "assistant", "content": null, "refusal": null}),
            None,
        )),
        (None, _) => events.push(chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            None,
        )),
    }
    if let Some(r) = &p.reasoning {
        for piece in char_chunks(r, n) {
            events.push(chunk(
                json!({"content": null, "reasoning_content": piece}),
                None,
            ));
        }
        if let Some(t) = &p.tool {
            events.push(chunk(json!({"tool_calls": tool_header(t)}), None));
        }
    }
    match &p.tool {
        Some(t) => {
            for piece in char_chunks(&t.args, n) {
                events.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    None,
                ));
            }
        }
        None => {
            for piece in ctx.text_pieces(&p.text) {
                events.push(chunk(json!({"content": piece}), None));
            }
        }
    }
    events.push(chunk(json!({}), Some(finish_reason(&p.finish))));
    if req.include_usage {
        let c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [],
            "usage": usage(&p),
        });
        events.push(Bytes::from(format!("data: {}\n\n", to_json_line(&c))));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    ctx.stream(Wire::OpenAi, events)
}

// ---------------------------------------------------------------------------
// Embeddings

enum Input {
    Text(String),
    Tokens(Vec<i64>),
}

fn parse_inputs(v: &Value) -> Option<Vec<Input>> {
    let tokens = |a: &Vec<Value>| -> Option<Vec<i64>> { a.iter().map(Value::as_i64).collect() };
    match v {
        Value::String(s) if !s.is_empty() => Some(vec![Input::Text(s.clone())]),
        Value::Array(a) if a.is_empty() => None,
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .filter(|s| !s.is_empty())
                    .map(|s| Input::Text(s.to_string()))
            })
            .collect(),
        Value::Array(a) if a.iter().all(Value::is_number) => {
            tokens(a).map(|t| vec![Input::Tokens(t)])
        }
        Value::Array(a) if a.iter().all(Value::is_array) => a
            .iter()
            .map(|t| {
                t.as_array()
                    .filter(|t| !t.is_empty())
                    .and_then(tokens)
                    .map(Input::Tokens)
            })
            .collect(),
        _ => None,
    }
}

fn embeddings(ctx: &Ctx<'_>, deployment: Option<&str>) -> Resp {
    let m = match parse_body(ctx.body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let model = match parse_model(&m, deployment.is_some()) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let model = deployment.map(str::to_string).unwrap_or(model);
    let inputs = match m.get("input") {
        None | Some(Value::Null) => return missing("input"),
        Some(v) => match parse_inputs(v) {
            Some(i) => i,
            None => {
                return invalid(
                    "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                    None,
                    None,
                )
            }
        },
    };
    let base64_format = match m.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "float" => false,
        Some(Value::String(s)) if s == "base64" => true,
        Some(v) => {
            return invalid(
                &format!("Invalid value: {v}. Supported values are: 'float' and 'base64'."),
                Some("encoding_format"),
                Some("invalid_value"),
            )
        }
    };
    if let Some(v) = m.get("dimensions") {
        if !v.is_null() && as_uint(v, false).is_none_or(|d| d == 0) {
            return type_error("dimensions", "an integer", v);
        }
    }

    let mut prompt_tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let key = match input {
                Input::Text(s) => {
                    prompt_tokens += words(s);
                    s.clone()
                }
                Input::Tokens(t) => {
                    prompt_tokens += t.len() as u64;
                    t.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
                }
            };
            let vector = embedding(&key);
            let embedding = if base64_format {
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|f| (*f as f32).to_le_bytes())
                    .collect();
                json!(base64(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json_resp(
        200,
        &json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked() {
        assert_eq!(mask_key("short"), "*****");
        assert_eq!(mask_key("sk-abcdefghijkl"), "sk-********ijkl");
    }
}
