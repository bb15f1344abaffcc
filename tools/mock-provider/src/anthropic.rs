//! Anthropic Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`).

use std::collections::HashSet;

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Map, Value};

use crate::common::{
    char_chunks, check_key, json_resp, plan, to_json_line, with_key, words, Auth, Ctx, Finish,
    PlanInput, Resp,
};
use crate::inject::Wire;

// ---------------------------------------------------------------------------
// Errors

fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

pub fn error(status: u16, message: &str) -> Resp {
    json_resp(
        status,
        &json!({"type": "error", "error": {"type": error_type(status), "message": message}}),
    )
}

fn invalid(message: impl AsRef<str>) -> Resp {
    error(400, message.as_ref())
}

/// Default body for `x-mock-status`; with `x-mock-echo-key`, the key is in
/// `error.type` and `error.message`.
pub fn status_error(status: u16, key: Option<&str>) -> Resp {
    let message = status_message(status);
    match key {
        Some(k) => json_resp(
            status,
            &json!({"type": "error", "error": {"type": k, "message": with_key(message, k)}}),
        ),
        None => error(status, message),
    }
}

/// The in-band `error` event of a stream (`x-mock-sse-inject: error@N`).
pub fn in_band_error(key: Option<&str>) -> Value {
    let message = status_message(529);
    match key {
        Some(k) => json!({"type": "error", "error": {"type": k, "message": with_key(message, k)}}),
        None => json!({"type": "error", "error": {"type": error_type(529), "message": message}}),
    }
}

fn status_message(status: u16) -> &'static str {
    match status {
        400 => "Invalid request.",
        401 => "invalid x-api-key",
        402 => "Your credit balance is too low to access the Anthropic API.",
        403 => "Your API key does not have permission to use the specified resource.",
        404 => "The requested resource could not be found.",
        413 => "Request exceeds the maximum allowed number of bytes.",
        429 => "This request would exceed the rate limit for your organization. Please try again later.",
        500 => "Internal server error",
        504 => "Request timed out.",
        529 => "Overloaded",
        s if s >= 500 => "Internal server error",
        _ => "The request failed.",
    }
}

// ---------------------------------------------------------------------------
// Routing

pub fn handle(ctx: &Ctx<'_>) -> Resp {
    let count_only = match (ctx.method, ctx.path) {
        (&Method::POST, "/v1/messages") => false,
        (&Method::POST, "/v1/messages/count_tokens") => true,
        _ => return error(404, "Not Found"),
    };
    match check_key(ctx.state.api_key.as_deref(), ctx.header("x-api-key")) {
        Auth::Ok => {}
        Auth::Missing => return error(401, "x-api-key header is required"),
        Auth::Invalid(_) => return error(401, "invalid x-api-key"),
    }
    if ctx
        .header("anthropic-version")
        .is_none_or(|v| v.trim().is_empty())
    {
        return error(400, "anthropic-version: header is required");
    }
    let req = match parse(ctx.body, count_only) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if count_only {
        return json_resp(200, &json!({"input_tokens": req.prompt_tokens}));
    }
    messages(ctx, req)
}

/// The `anthropic_version` Claude on Vertex AI takes in the body.
pub const VERTEX_VERSION: &str = "vertex-2023-10-16";

/// Claude on Vertex AI (`…/publishers/anthropic/models/{model}:rawPredict` or
/// `:streamRawPredict`), once the caller is authenticated: a Messages body
/// without `model` (the path names it) and with `anthropic_version`.
/// `stream_method`: `streamRawPredict`, which wants `"stream": true`.
pub fn handle_vertex(ctx: &Ctx<'_>, model: &str, stream_method: bool) -> Resp {
    let mut m = match decode(ctx.body) {
        Ok(m) => m,
        Err(resp) => return resp,
    };
    if m.contains_key("model") {
        return invalid("model: Extra inputs are not permitted");
    }
    match m.remove("anthropic_version") {
        Some(Value::String(v)) if v == VERTEX_VERSION => {}
        None => return invalid("anthropic_version: Field required"),
        Some(_) => {
            return invalid(format!(
                "anthropic_version: Input should be '{VERTEX_VERSION}'"
            ))
        }
    }
    m.insert("model".into(), Value::String(model.to_string()));
    let req = match parse_map(&m, false) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if stream_method && !req.stream {
        return crate::gemini::error(
            400,
            "streamRawPredict needs a streaming request: set \"stream\": true in the body.",
        );
    }
    messages(ctx, req)
}

// ---------------------------------------------------------------------------
// Validation

const TOP_LEVEL: [&str; 19] = [
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
    "mcp_servers",
    "context_management",
    "output_format",
    "output_config",
];

const BLOCK_TYPES: [&str; 8] = [
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
];

struct Req {
    model: String,
    max_tokens: u64,
    stream: bool,
    thinking: bool,
    prompt_tokens: u64,
    last_user: String,
    stops: Vec<String>,
}

fn block_text_words(blocks: &[Value]) -> u64 {
    blocks
        .iter()
        .map(|b| match b.get("type").and_then(Value::as_str) {
            Some("text") => b
                .get("text")
                .and_then(Value::as_str)
                .map(words)
                .unwrap_or(0),
            Some("tool_result") => match b.get("content") {
                Some(Value::String(s)) => words(s),
                Some(Value::Array(inner)) => block_text_words(inner),
                _ => 0,
            },
            _ => 0,
        })
        .sum()
}

fn number_in(m: &Map<String, Value>, name: &str, min: f64, max: f64) -> Result<Option<f64>, Resp> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(0.0);
            if x < min {
                Err(invalid(format!(
                    "{name}: Input should be greater than or equal to {min}"
                )))
            } else if x > max {
                Err(invalid(format!(
                    "{name}: Input should be less than or equal to {max}"
                )))
            } else {
                Ok(Some(x))
            }
        }
        Some(_) => Err(invalid(format!("{name}: Input should be a valid number"))),
    }
}

fn validate_block(
    loc: &str,
    role: &str,
    block: &Value,
    tool_use_ids: &mut Vec<String>,
    tool_result_ids: &mut Vec<String>,
) -> Result<(), Resp> {
    let Value::Object(b) = block else {
        return Err(invalid(format!(
            "{loc}: Input should be a valid dictionary"
        )));
    };
    let kind = match b.get("type") {
        Some(Value::String(t)) => t.as_str(),
        None => return Err(invalid(format!("{loc}.type: Field required"))),
        Some(_) => {
            return Err(invalid(format!(
                "{loc}.type: Input should be a valid string"
            )))
        }
    };
    if !BLOCK_TYPES.contains(&kind) {
        return Err(invalid(format!(
            "{loc}: Input tag '{kind}' found using 'type' does not match any of the expected tags: 'text', 'image', 'document', 'search_result', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'"
        )));
    }
    let string_field = |field: &str| -> Result<&str, Resp> {
        match b.get(field) {
            Some(Value::String(s)) => Ok(s.as_str()),
            None => Err(invalid(format!("{loc}.{field}: Field required"))),
            Some(_) => Err(invalid(format!(
                "{loc}.{field}: Input should be a valid string"
            ))),
        }
    };
    match kind {
        "text" if string_field("text")?.is_empty() => {
            return Err(invalid("messages: text content blocks must be non-empty"));
        }
        "image" | "document" => match b.get("source") {
            Some(Value::Object(src)) => {
                if !src.get("type").is_some_and(Value::is_string) {
                    return Err(invalid(format!("{loc}.source.type: Field required")));
                }
            }
            None => return Err(invalid(format!("{loc}.source: Field required"))),
            Some(_) => {
                return Err(invalid(format!(
                    "{loc}.source: Input should be a valid dictionary"
                )))
            }
        },
        "tool_use" => {
            let id = string_field("id")?.to_string();
            string_field("name")?;
            match b.get("input") {
                Some(Value::Object(_)) => {}
                None => return Err(invalid(format!("{loc}.input: Field required"))),
                Some(_) => {
                    return Err(invalid(format!(
                        "{loc}.input: Input should be a valid dictionary"
                    )))
                }
            }
            if role != "assistant" {
                return Err(invalid(format!(
                    "{loc}: `tool_use` blocks can only be in `assistant` messages"
                )));
            }
            tool_use_ids.push(id);
        }
        "tool_result" => {
            let id = string_field("tool_use_id")?.to_string();
            match b.get("content") {
                None | Some(Value::Null) | Some(Value::String(_)) | Some(Value::Array(_)) => {}
                Some(_) => {
                    return Err(invalid(format!(
                        "{loc}.content: Input should be a valid list"
                    )))
                }
            }
            if role != "user" {
                return Err(invalid(format!(
                    "{loc}: `tool_result` blocks can only be in `user` messages"
                )));
            }
            tool_result_ids.push(id);
        }
        "thinking" => {
            string_field("thinking")?;
            string_field("signature")?;
        }
        "redacted_thinking" => {
            string_field("data")?;
        }
        _ => {}
    }
    Ok(())
}

fn decode(body: &[u8]) -> Result<Map<String, Value>, Resp> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(invalid("Input should be a valid dictionary")),
        Err(e) => Err(invalid(format!(
            "There was an error parsing the body of your request: {e}"
        ))),
    }
}

fn parse(body: &[u8], count_only: bool) -> Result<Req, Resp> {
    parse_map(&decode(body)?, count_only)
}

fn parse_map(m: &Map<String, Value>, count_only: bool) -> Result<Req, Resp> {
    if let Some(extra) = m.keys().find(|k| !TOP_LEVEL.contains(&k.as_str())) {
        if !(count_only && extra == "max_tokens") {
            return Err(invalid(format!("{extra}: Extra inputs are not permitted")));
        }
    }

    let model = match m.get("model") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => {
            return Err(invalid("model: String should have at least 1 character"))
        }
        None => return Err(invalid("model: Field required")),
        Some(_) => return Err(invalid("model: Input should be a valid string")),
    };

    let max_tokens = match m.get("max_tokens") {
        None if count_only => 0,
        None => return Err(invalid("max_tokens: Field required")),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => match n.as_u64() {
            Some(x) if x >= 1 => x,
            _ => {
                return Err(invalid(
                    "max_tokens: Input should be greater than or equal to 1",
                ))
            }
        },
        Some(_) => return Err(invalid("max_tokens: Input should be a valid integer")),
    };

    let messages = match m.get("messages") {
        None => return Err(invalid("messages: Field required")),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(invalid("messages: at least one message is required"))
        }
        Some(Value::Array(a)) => a,
        Some(_) => return Err(invalid("messages: Input should be a valid list")),
    };

    let mut prompt_tokens = 0;
    let mut last_user = String::new();
    let mut pending_tool_uses: Vec<String> = Vec::new();
    let last = messages.len() - 1;
    for (i, msg) in messages.iter().enumerate() {
        let loc = format!("messages.{i}");
        let Value::Object(msg) = msg else {
            return Err(invalid(format!(
                "{loc}: Input should be a valid dictionary"
            )));
        };
        let role = match msg.get("role") {
            Some(Value::String(r)) if r == "user" || r == "assistant" => r.as_str(),
            Some(Value::String(r)) if r == "system" => {
                return Err(invalid(
                    "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.",
                ))
            }
            None => return Err(invalid(format!("{loc}.role: Field required"))),
            Some(_) => return Err(invalid(format!("{loc}.role: Input should be 'user' or 'assistant'"))),
        };
        if i == 0 && role != "user" {
            return Err(invalid(
                "messages: first message must use the \"user\" role",
            ));
        }
        let mut tool_uses = Vec::new();
        let mut tool_results = Vec::new();
        let (text, non_empty) = match msg.get("content") {
            None => return Err(invalid(format!("{loc}.content: Field required"))),
            Some(Value::String(s)) => {
                prompt_tokens += words(s);
                (s.clone(), !s.is_empty())
            }
            Some(Value::Array(blocks)) => {
                for (j, b) in blocks.iter().enumerate() {
                    validate_block(
                        &format!("{loc}.content.{j}"),
                        role,
                        b,
                        &mut tool_uses,
                        &mut tool_results,
                    )?;
                }
                prompt_tokens += block_text_words(blocks);
                let text: String = blocks
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect();
                (text, !blocks.is_empty())
            }
            Some(_) => {
                return Err(invalid(format!(
                    "{loc}.content: Input should be a valid list"
                )))
            }
        };
        if !(non_empty || (i == last && role == "assistant")) {
            return Err(invalid(format!(
                "{loc}: all messages must have non-empty content except for the optional final assistant message"
            )));
        }
        // tool_use / tool_result pairing, as the real API enforces it.
        if !pending_tool_uses.is_empty() {
            let missing: Vec<&str> = pending_tool_uses
                .iter()
                .filter(|id| !tool_results.contains(id))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(invalid(format!(
                    "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                    missing.join(", ")
                )));
            }
        }
        let expected: HashSet<&String> = pending_tool_uses.iter().collect();
        if let Some(bad) = tool_results.iter().find(|id| !expected.contains(id)) {
            return Err(invalid(format!(
                "messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {bad}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            )));
        }
        pending_tool_uses = tool_uses;
        if role == "user" {
            last_user = text;
        }
    }

    match m.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => prompt_tokens += words(s),
        Some(Value::Array(blocks)) => {
            for (j, b) in blocks.iter().enumerate() {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => match b.get("text") {
                        Some(Value::String(s)) => prompt_tokens += words(s),
                        _ => return Err(invalid(format!("system.{j}.text: Field required"))),
                    },
                    _ => return Err(invalid(format!("system.{j}.type: Input should be 'text'"))),
                }
            }
        }
        Some(_) => return Err(invalid("system: Input should be a valid list")),
    }

    let stream = match m.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("stream: Input should be a valid boolean")),
    };
    let temperature = number_in(m, "temperature", 0.0, 1.0)?;
    number_in(m, "top_p", 0.0, 1.0)?;
    match m.get("top_k") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.is_u64() => {}
        Some(Value::Number(n)) if n.is_i64() => {
            return Err(invalid("top_k: Input should be greater than or equal to 0"))
        }
        Some(_) => return Err(invalid("top_k: Input should be a valid integer")),
    }
    let stops = match m.get("stop_sequences") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, s) in a.iter().enumerate() {
                match s {
                    Value::String(s) => out.push(s.clone()),
                    _ => {
                        return Err(invalid(format!(
                            "stop_sequences.{i}: Input should be a valid string"
                        )))
                    }
                }
            }
            out
        }
        Some(_) => return Err(invalid("stop_sequences: Input should be a valid list")),
    };
    match m.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(md)) => match md.get("user_id") {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => return Err(invalid("metadata.user_id: Input should be a valid string")),
        },
        Some(_) => return Err(invalid("metadata: Input should be a valid dictionary")),
    }
    match m.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tools)) => {
            for (i, t) in tools.iter().enumerate() {
                let Value::Object(t) = t else {
                    return Err(invalid(format!(
                        "tools.{i}: Input should be a valid dictionary"
                    )));
                };
                let custom = matches!(t.get("type").and_then(Value::as_str), None | Some("custom"));
                match t.get("name") {
                    Some(Value::String(n)) if !n.is_empty() => {}
                    None => return Err(invalid(format!("tools.{i}.name: Field required"))),
                    Some(_) => {
                        return Err(invalid(format!(
                            "tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                        )))
                    }
                }
                if custom {
                    match t.get("input_schema") {
                        Some(Value::Object(_)) => {}
                        None => {
                            return Err(invalid(format!(
                                "tools.{i}.custom.input_schema: Field required"
                            )))
                        }
                        Some(_) => {
                            return Err(invalid(format!(
                                "tools.{i}.custom.input_schema: Input should be a valid dictionary"
                            )))
                        }
                    }
                }
            }
        }
        Some(_) => return Err(invalid("tools: Input should be a valid list")),
    }
    match m.get("tool_choice") {
        None | Some(Value::Null) => {}
        Some(Value::Object(tc)) => match tc.get("type").and_then(Value::as_str) {
            Some("auto" | "any" | "none") => {}
            Some("tool") => {
                if !tc.get("name").is_some_and(Value::is_string) {
                    return Err(invalid("tool_choice.tool.name: Field required"));
                }
            }
            Some(other) => {
                return Err(invalid(format!(
                    "tool_choice: Input tag '{other}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
                )))
            }
            None => return Err(invalid("tool_choice.type: Field required")),
        },
        Some(_) => return Err(invalid("tool_choice: Input should be a valid dictionary")),
    }
    let thinking = match m.get("thinking") {
        None | Some(Value::Null) => false,
        Some(Value::Object(th)) => match th.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let budget = match th.get("budget_tokens") {
                    None => return Err(invalid("thinking.enabled.budget_tokens: Field required")),
                    Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_i64().unwrap_or(i64::MAX),
                    Some(_) => {
                        return Err(invalid("thinking.enabled.budget_tokens: Input should be a valid integer"))
                    }
                };
                if budget < 1024 {
                    return Err(invalid(
                        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                    ));
                }
                if !count_only && max_tokens <= budget as u64 {
                    return Err(invalid(
                        "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
                    ));
                }
                if temperature.is_some_and(|t| t != 1.0) {
                    return Err(invalid(
                        "`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
                    ));
                }
                true
            }
            Some("disabled") => false,
            Some("adaptive") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "thinking: Input tag '{other}' found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"
                )))
            }
            None => return Err(invalid("thinking.type: Field required")),
        },
        Some(_) => return Err(invalid("thinking: Input should be a valid dictionary")),
    };

    Ok(Req {
        model,
        max_tokens,
        stream,
        thinking,
        prompt_tokens,
        last_user,
        stops,
    })
}

// ---------------------------------------------------------------------------
// Responses

fn signature(thinking: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in thinking.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("mock_signature_{h:016x}")
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {}\n\n", to_json_line(data)))
}

fn messages(ctx: &Ctx<'_>, req: Req) -> Resp {
    let p = plan(
        ctx.knobs,
        PlanInput {
            last_user: &req.last_user,
            prompt_tokens: req.prompt_tokens,
            max_tokens: Some(req.max_tokens),
            stop_sequences: &req.stops,
            reasoning_enabled: req.thinking,
            last_tool_result: None,
        },
    );
    let tool_input = match &p.tool {
        Some(t) => match serde_json::from_str::<Value>(&t.args) {
            Ok(v @ Value::Object(_)) => Some(v),
            _ => return invalid("mock-provider: x-mock-tool-args must be a JSON object"),
        },
        None => None,
    };
    let id = format!("msg_mock_{}", ctx.seq);
    let tool_id = format!("toolu_mock_{}", ctx.seq);
    let (stop_reason, stop_sequence) = match &p.finish {
        Finish::Stop => ("end_turn", Value::Null),
        Finish::MaxTokens => ("max_tokens", Value::Null),
        Finish::StopSequence(s) => ("stop_sequence", json!(s)),
        Finish::ToolCall => ("tool_use", Value::Null),
    };
    let output_tokens = p.completion_tokens();

    if !req.stream {
        let mut content = Vec::with_capacity(2);
        if let Some(r) = &p.reasoning {
            content.push(json!({"type": "thinking", "thinking": r, "signature": signature(r)}));
        }
        match (&p.tool, tool_input) {
            (Some(t), Some(input)) => content
                .push(json!({"type": "tool_use", "id": tool_id, "name": t.name, "input": input})),
            _ => content.push(json!({"type": "text", "text": p.text})),
        }
        return json_resp(
            200,
            &json!({
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": req.model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "usage": {
                    "input_tokens": p.prompt_tokens,
                    "output_tokens": output_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            }),
        );
    }

    let n = ctx.knobs.chunk_chars;
    let mut events = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {
                "input_tokens": p.prompt_tokens,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }}),
    )];
    let ping = || event("ping", &json!({"type": "ping"}));
    let mut index = 0;

    if let Some(r) = &p.reasoning {
        events.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ));
        events.push(ping());
        for piece in char_chunks(r, n) {
            events.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "thinking_delta", "thinking": piece}}),
            ));
        }
        events.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "signature_delta", "signature": signature(r)}}),
        ));
        events.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }

    match (&p.tool, tool_input) {
        (Some(t), Some(input)) => {
            events.push(event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "tool_use", "id": tool_id, "name": t.name, "input": {}}}),
            ));
            if index == 0 {
                events.push(ping());
            }
            let json_text = to_json_line(&input);
            for piece in char_chunks(&json_text, n) {
                events.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": piece}}),
                ));
            }
        }
        _ => {
            events.push(event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "text", "text": ""}}),
            ));
            if index == 0 {
                events.push(ping());
            }
            for piece in ctx.text_pieces(&p.text) {
                events.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": piece}}),
                ));
            }
        }
    }
    events.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    ));
    events.push(event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": output_tokens}}),
    ));
    events.push(event("message_stop", &json!({"type": "message_stop"})));
    ctx.stream(Wire::Anthropic, events)
}
