//! OpenAI Responses API (`POST …/responses`), stateless: `previous_response_id`
//! is always "not found", and nothing is stored whatever `store` says.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::common::{
    char_chunks, json_resp, now_secs, plan, to_json_line, with_key, words, Ctx, Finish, Plan,
    PlanInput, Resp,
};
use crate::inject::Wire;
use crate::openai::{invalid, missing, number_range, parse_body, type_error};

/// Top-level request parameters the real API knows; any other is rejected.
const PARAMS: [&str; 28] = [
    "background",
    "conversation",
    "include",
    "input",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "model",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
];

/// Input item types accepted (only the first three are checked in depth).
const ITEM_TYPES: [&str; 19] = [
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "item_reference",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "web_search_call",
    "image_generation_call",
    "code_interpreter_call",
    "local_shell_call",
    "local_shell_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "custom_tool_call",
    "custom_tool_call_output",
];

/// The API's lower bound for `max_output_tokens`.
const MIN_OUTPUT_TOKENS: u64 = 16;

// ---------------------------------------------------------------------------
// Errors

fn invalid_value(param: &str, got: &str, supported: &str) -> Resp {
    invalid(
        &format!("Invalid value: '{got}'. Supported values are: {supported}."),
        Some(param),
        Some("invalid_value"),
    )
}

/// The in-band `error` event (`x-mock-sse-inject: error@N`); `seq` is its
/// sequence number.
pub fn in_band_error(key: Option<&str>, seq: usize) -> Value {
    let message = "The server had an error while processing your request. Sorry about that!";
    match key {
        Some(k) => json!({"type": "error", "code": k, "message": with_key(message, k),
                          "param": k, "sequence_number": seq}),
        None => json!({"type": "error", "code": "server_error", "message": message,
                       "param": null, "sequence_number": seq}),
    }
}

// ---------------------------------------------------------------------------
// Validation

struct Req {
    model: String,
    stream: bool,
    prompt_tokens: u64,
    last_user: String,
    max_output_tokens: Option<u64>,
}

fn opt_bool(m: &Map<String, Value>, name: &str) -> Result<Option<bool>, Resp> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(type_error(name, "a boolean", v)),
    }
}

fn opt_str<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Resp> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(type_error(name, "a string", v)),
    }
}

/// A string field of an input item, required.
fn item_str<'a>(item: &'a Map<String, Value>, at: &str, field: &str) -> Result<&'a str, Resp> {
    match item.get(field) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(missing(&format!("{at}.{field}"))),
        Some(v) => Err(type_error(&format!("{at}.{field}"), "a string", v)),
    }
}

/// One of `allowed`, or null/absent.
fn opt_enum(
    m: &Map<String, Value>,
    name: &str,
    param: &str,
    allowed: &[&str],
    supported: &str,
) -> Result<(), Resp> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(Value::String(s)) => Err(invalid_value(param, s, supported)),
        Some(v) => Err(type_error(param, "a string", v)),
    }
}

/// Words and text (for the reply) of one message's `content`.
fn message_content(at: &str, role: &str, content: Option<&Value>) -> Result<(u64, String), Resp> {
    let parts = match content {
        None | Some(Value::Null) => return Err(missing(&format!("{at}.content"))),
        Some(Value::String(s)) => return Ok((words(s), s.clone())),
        Some(Value::Array(parts)) => parts,
        Some(v) => {
            return Err(type_error(
                &format!("{at}.content"),
                "one of a string or array of input items",
                v,
            ))
        }
    };
    let (allowed, supported): (&[&str], &str) = if role == "assistant" {
        (
            &["output_text", "refusal", "input_text"],
            "'output_text', 'refusal', and 'input_text'",
        )
    } else {
        (
            &["input_text", "input_image", "input_file"],
            "'input_text', 'input_image', and 'input_file'",
        )
    };
    let mut n = 0;
    let mut text = String::new();
    for (j, part) in parts.iter().enumerate() {
        let pat = format!("{at}.content[{j}]");
        let Value::Object(part) = part else {
            return Err(type_error(&pat, "an object", part));
        };
        let kind = item_str(part, &pat, "type")?;
        if !allowed.contains(&kind) {
            return Err(invalid_value(&format!("{pat}.type"), kind, supported));
        }
        match kind {
            "input_text" | "output_text" => {
                let t = item_str(part, &pat, "text")?;
                n += words(t);
                text.push_str(t);
            }
            "refusal" => {
                item_str(part, &pat, "refusal")?;
            }
            "input_image" => {
                let has_source = ["image_url", "file_id"]
                    .iter()
                    .any(|f| part.get(*f).is_some_and(Value::is_string));
                if !has_source {
                    return Err(missing(&format!("{pat}.image_url")));
                }
            }
            _ => {}
        }
    }
    Ok((n, text))
}

/// Words of a `function_call_output`'s `output` (a string or content parts).
fn output_words(at: &str, output: Option<&Value>) -> Result<u64, Resp> {
    match output {
        Some(Value::String(s)) => Ok(words(s)),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(words)
            .sum()),
        None | Some(Value::Null) => Err(missing(&format!("{at}.output"))),
        Some(v) => Err(type_error(&format!("{at}.output"), "a string", v)),
    }
}

/// (prompt words, last user text) of `input`.
fn parse_input(input: Option<&Value>) -> Result<(u64, String), Resp> {
    let items = match input {
        None | Some(Value::Null) => return Err(missing("input")),
        Some(Value::String(s)) => return Ok((words(s), s.clone())),
        Some(Value::Array(items)) => items,
        Some(v) => {
            return Err(type_error(
                "input",
                "one of a string or array of input items",
                v,
            ))
        }
    };
    let mut n = 0;
    let mut last_user = String::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let Value::Object(item) = item else {
            return Err(type_error(&at, "an object", item));
        };
        let kind = match item.get("type") {
            None | Some(Value::Null) if item.contains_key("role") => "message",
            None | Some(Value::Null) => return Err(missing(&format!("{at}.type"))),
            Some(Value::String(t)) => t.as_str(),
            Some(v) => return Err(type_error(&format!("{at}.type"), "a string", v)),
        };
        match kind {
            "message" => {
                let role = item_str(item, &at, "role")?;
                if !["user", "system", "developer", "assistant"].contains(&role) {
                    return Err(invalid_value(
                        &format!("{at}.role"),
                        role,
                        "'user', 'system', 'developer', and 'assistant'",
                    ));
                }
                let (w, text) = message_content(&at, role, item.get("content"))?;
                n += w;
                if role == "user" {
                    last_user = text;
                }
            }
            "function_call" => {
                for field in ["call_id", "name", "arguments"] {
                    item_str(item, &at, field)?;
                }
            }
            "function_call_output" => {
                item_str(item, &at, "call_id")?;
                n += output_words(&at, item.get("output"))?;
            }
            k if ITEM_TYPES.contains(&k) => {}
            k => {
                return Err(invalid_value(
                    &format!("{at}.type"),
                    k,
                    "'message', 'function_call', 'function_call_output', 'reasoning', and other documented item types",
                ))
            }
        }
    }
    Ok((n, last_user))
}

fn validate_tools(m: &Map<String, Value>) -> Result<(), Resp> {
    match m.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tools)) => {
            for (i, t) in tools.iter().enumerate() {
                let at = format!("tools[{i}]");
                let Value::Object(t) = t else {
                    return Err(type_error(&at, "an object", t));
                };
                if item_str(t, &at, "type")? != "function" {
                    continue;
                }
                if item_str(t, &at, "name")?.is_empty() {
                    return Err(invalid(
                        &format!("Invalid '{at}.name': empty string. Expected a string with minimum length 1, but got an empty string instead."),
                        Some(&format!("{at}.name")),
                        Some("empty_string"),
                    ));
                }
                match t.get("parameters") {
                    None | Some(Value::Null) | Some(Value::Object(_)) => {}
                    Some(v) => return Err(type_error(&format!("{at}.parameters"), "an object", v)),
                }
                match t.get("strict") {
                    None | Some(Value::Null) | Some(Value::Bool(_)) => {}
                    Some(v) => return Err(type_error(&format!("{at}.strict"), "a boolean", v)),
                }
            }
        }
        Some(v) => return Err(type_error("tools", "an array", v)),
    }
    match m.get("tool_choice") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if ["none", "auto", "required"].contains(&s.as_str()) => Ok(()),
        Some(Value::String(s)) => Err(invalid_value(
            "tool_choice",
            s,
            "'none', 'auto', and 'required'",
        )),
        Some(Value::Object(tc)) => {
            if item_str(tc, "tool_choice", "type")? == "function" {
                item_str(tc, "tool_choice", "name")?;
            }
            Ok(())
        }
        Some(v) => Err(type_error("tool_choice", "a string or an object", v)),
    }
}

fn validate_options(m: &Map<String, Value>, stream: bool) -> Result<(), Resp> {
    number_range(m, "temperature", 0.0, 2.0)?;
    number_range(m, "top_p", 0.0, 1.0)?;
    for name in ["store", "parallel_tool_calls", "background"] {
        opt_bool(m, name)?;
    }
    for name in [
        "instructions",
        "user",
        "prompt_cache_key",
        "safety_identifier",
    ] {
        opt_str(m, name)?;
    }
    opt_enum(
        m,
        "truncation",
        "truncation",
        &["auto", "disabled"],
        "'auto' and 'disabled'",
    )?;
    match m.get("stream_options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(_)) if stream => {}
        Some(Value::Object(_)) => {
            return Err(invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                Some("stream_options"),
                None,
            ))
        }
        Some(v) => return Err(type_error("stream_options", "an object", v)),
    }
    match m.get("include") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            if let Some((i, v)) = a.iter().enumerate().find(|(_, v)| !v.is_string()) {
                return Err(type_error(&format!("include[{i}]"), "a string", v));
            }
        }
        Some(v) => return Err(type_error("include", "an array", v)),
    }
    match m.get("reasoning") {
        None | Some(Value::Null) => {}
        Some(Value::Object(r)) => {
            opt_enum(
                r,
                "effort",
                "reasoning.effort",
                &["none", "minimal", "low", "medium", "high", "xhigh"],
                "'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'",
            )?;
            opt_enum(
                r,
                "summary",
                "reasoning.summary",
                &["auto", "concise", "detailed"],
                "'auto', 'concise', and 'detailed'",
            )?;
        }
        Some(v) => return Err(type_error("reasoning", "an object", v)),
    }
    match m.get("text") {
        None | Some(Value::Null) => {}
        Some(Value::Object(t)) => {
            match t.get("format") {
                None | Some(Value::Null) => {}
                Some(Value::Object(f)) => match item_str(f, "text.format", "type")? {
                    "text" | "json_object" => {}
                    "json_schema" => {
                        item_str(f, "text.format", "name")?;
                        if !f.get("schema").is_some_and(Value::is_object) {
                            return Err(missing("text.format.schema"));
                        }
                    }
                    other => {
                        return Err(invalid_value(
                            "text.format.type",
                            other,
                            "'text', 'json_object', and 'json_schema'",
                        ))
                    }
                },
                Some(v) => return Err(type_error("text.format", "an object", v)),
            }
            opt_enum(
                t,
                "verbosity",
                "text.verbosity",
                &["low", "medium", "high"],
                "'low', 'medium', and 'high'",
            )?;
        }
        Some(v) => return Err(type_error("text", "an object", v)),
    }
    match m.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(md)) => {
            if md.len() > 16 {
                return Err(invalid(
                    &format!("Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an object with {} properties instead.", md.len()),
                    Some("metadata"),
                    Some("object_above_max_properties"),
                ));
            }
            if let Some((k, v)) = md.iter().find(|(_, v)| !v.is_string()) {
                return Err(type_error(&format!("metadata.{k}"), "a string", v));
            }
        }
        Some(v) => return Err(type_error("metadata", "an object", v)),
    }
    Ok(())
}

fn parse(m: &Map<String, Value>) -> Result<Req, Resp> {
    if let Some(unknown) = m.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(invalid(
            &format!("Unknown parameter: '{unknown}'."),
            Some(unknown),
            Some("unknown_parameter"),
        ));
    }
    let model = match m.get("model") {
        None | Some(Value::Null) => return Err(missing("model")),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(invalid(
                "Invalid 'model': empty string. Expected a string with minimum length 1, but got an empty string instead.",
                Some("model"),
                Some("empty_string"),
            ))
        }
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(type_error("model", "a string", v)),
    };
    let (input_words, last_user) = parse_input(m.get("input"))?;
    let stream = opt_bool(m, "stream")?.unwrap_or(false);
    let max_output_tokens = match m.get("max_output_tokens") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Number(n)) if n.is_i64() || n.is_u64() => match n.as_u64() {
            Some(x) if x >= MIN_OUTPUT_TOKENS => Some(x),
            _ => {
                return Err(invalid(
                    &format!("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS}, but got {v} instead."),
                    Some("max_output_tokens"),
                    Some("integer_below_min_value"),
                ))
            }
        },
        Some(v) => return Err(type_error("max_output_tokens", "an integer", v)),
    };
    validate_tools(m)?;
    validate_options(m, stream)?;
    let instructions_words = opt_str(m, "instructions")?.map(words).unwrap_or(0);
    // Stateless: there is never a previous response to continue.
    if let Some(prev) = opt_str(m, "previous_response_id")? {
        return Err(invalid(
            &format!("Previous response with id '{prev}' not found."),
            Some("previous_response_id"),
            Some("previous_response_not_found"),
        ));
    }
    Ok(Req {
        model,
        stream,
        prompt_tokens: input_words + instructions_words,
        last_user,
        max_output_tokens,
    })
}

// ---------------------------------------------------------------------------
// Answers

struct Ids {
    response: String,
    message: String,
    reasoning: String,
    function_call: String,
    call: String,
}

fn usage(p: &Plan) -> Value {
    json!({
        "input_tokens": p.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": p.completion_tokens(),
        "output_tokens_details": {"reasoning_tokens": p.reasoning_tokens},
        "total_tokens": p.prompt_tokens + p.completion_tokens(),
    })
}

fn reasoning_item(ids: &Ids, summary: Option<&str>) -> Value {
    let summary = match summary {
        Some(s) => json!([{"type": "summary_text", "text": s}]),
        None => json!([]),
    };
    json!({"id": ids.reasoning, "type": "reasoning", "summary": summary})
}

fn message_item(ids: &Ids, status: &str, text: Option<&str>) -> Value {
    let content = match text {
        Some(t) => json!([{"type": "output_text", "text": t, "annotations": []}]),
        None => json!([]),
    };
    json!({"id": ids.message, "type": "message", "role": "assistant", "status": status,
           "content": content})
}

fn function_call_item(ids: &Ids, status: &str, name: &str, arguments: &str) -> Value {
    json!({"id": ids.function_call, "type": "function_call", "status": status,
           "arguments": arguments, "call_id": ids.call, "name": name})
}

/// The final `output`: reasoning first, then the message or the function call.
fn output(p: &Plan, ids: &Ids, text: &str) -> Vec<Value> {
    let mut out = Vec::with_capacity(2);
    if let Some(r) = &p.reasoning {
        out.push(reasoning_item(ids, Some(r)));
    }
    match &p.tool {
        Some(t) => out.push(function_call_item(ids, "completed", &t.name, &t.args)),
        None => {
            let status = if p.finish == Finish::MaxTokens {
                "incomplete"
            } else {
                "completed"
            };
            out.push(message_item(ids, status, Some(text)));
        }
    }
    out
}

/// The `response` object, echoing the request's settings as the API does.
fn response_object(
    m: &Map<String, Value>,
    model: &str,
    id: &str,
    created_at: u64,
    p: Option<&Plan>,
    output: Vec<Value>,
) -> Value {
    let given = |name: &str, default: Value| match m.get(name) {
        None | Some(Value::Null) => default,
        Some(v) => v.clone(),
    };
    let incomplete = p.is_some_and(|p| p.finish == Finish::MaxTokens);
    let status = match p {
        None => "in_progress",
        Some(_) if incomplete => "incomplete",
        Some(_) => "completed",
    };
    let reasoning = m.get("reasoning").and_then(Value::as_object);
    let reasoning_field = |f: &str| reasoning.and_then(|r| r.get(f)).cloned();
    let mut text = given("text", json!({}));
    if let Some(t) = text.as_object_mut() {
        t.entry("format").or_insert(json!({"type": "text"}));
    }
    json!({
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": given("background", json!(false)),
        "error": null,
        "incomplete_details": if incomplete { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "instructions": given("instructions", Value::Null),
        "max_output_tokens": given("max_output_tokens", Value::Null),
        "max_tool_calls": given("max_tool_calls", Value::Null),
        "model": model,
        "output": output,
        "parallel_tool_calls": given("parallel_tool_calls", json!(true)),
        "previous_response_id": null,
        "reasoning": {
            "effort": reasoning_field("effort").unwrap_or(Value::Null),
            "summary": reasoning_field("summary").unwrap_or(Value::Null),
        },
        "service_tier": "default",
        "store": given("store", json!(true)),
        "temperature": given("temperature", json!(1.0)),
        "text": text,
        "tool_choice": given("tool_choice", json!("auto")),
        "tools": given("tools", json!([])),
        "top_logprobs": given("top_logprobs", json!(0)),
        "top_p": given("top_p", json!(1.0)),
        "truncation": given("truncation", json!("disabled")),
        "usage": p.map(usage),
        "user": given("user", Value::Null),
        "metadata": given("metadata", json!({})),
    })
}

/// `base`'s fields followed by `extra`'s.
fn merged(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// Stream events, numbered in order.
struct Events(Vec<Bytes>);

impl Events {
    /// `event: KIND\ndata: {"type":KIND, …fields, "sequence_number":n}\n\n`.
    fn push(&mut self, kind: &str, fields: Value) {
        let mut data = Map::with_capacity(8);
        data.insert("type".into(), json!(kind));
        if let Value::Object(f) = fields {
            data.extend(f);
        }
        data.insert("sequence_number".into(), json!(self.0.len()));
        self.0.push(Bytes::from(format!(
            "event: {kind}\ndata: {}\n\n",
            to_json_line(&Value::Object(data))
        )));
    }
}

pub fn create(ctx: &Ctx<'_>) -> Resp {
    let m = match parse_body(ctx.body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let req = match parse(&m) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let p = plan(
        ctx.knobs,
        PlanInput {
            last_user: &req.last_user,
            prompt_tokens: req.prompt_tokens,
            max_tokens: req.max_output_tokens,
            stop_sequences: &[],
            reasoning_enabled: true,
            last_tool_result: None,
        },
    );
    let seq = ctx.seq;
    let ids = Ids {
        response: format!("resp_mock_{seq}"),
        message: format!("msg_mock_{seq}"),
        reasoning: format!("rs_mock_{seq}"),
        function_call: format!("fc_mock_{seq}"),
        call: format!("call_mock_{seq}"),
    };
    let created_at = now_secs();
    if !req.stream {
        let out = output(&p, &ids, &p.text);
        return json_resp(
            200,
            &response_object(&m, &req.model, &ids.response, created_at, Some(&p), out),
        );
    }

    let n = ctx.knobs.chunk_chars;
    let mut ev = Events(Vec::new());
    let started = response_object(&m, &req.model, &ids.response, created_at, None, Vec::new());
    ev.push("response.created", json!({"response": started}));
    ev.push("response.in_progress", json!({"response": started}));
    let mut index = 0;

    if let Some(r) = &p.reasoning {
        let id = &ids.reasoning;
        let at = json!({"item_id": id, "output_index": index, "summary_index": 0});
        let with = |extra: Value| merged(&at, extra);
        ev.push(
            "response.output_item.added",
            json!({"output_index": index, "item": reasoning_item(&ids, None)}),
        );
        ev.push(
            "response.reasoning_summary_part.added",
            with(json!({"part": {"type": "summary_text", "text": ""}})),
        );
        for piece in char_chunks(r, n) {
            ev.push(
                "response.reasoning_summary_text.delta",
                with(json!({"delta": piece})),
            );
        }
        ev.push(
            "response.reasoning_summary_text.done",
            with(json!({"text": r})),
        );
        ev.push(
            "response.reasoning_summary_part.done",
            with(json!({"part": {"type": "summary_text", "text": r}})),
        );
        ev.push(
            "response.output_item.done",
            json!({"output_index": index, "item": reasoning_item(&ids, Some(r))}),
        );
        index += 1;
    }

    // What the deltas add up to (with any oversize filler), used in the done events.
    let mut streamed_text = String::new();
    match &p.tool {
        Some(t) => {
            let id = &ids.function_call;
            ev.push(
                "response.output_item.added",
                json!({"output_index": index,
                       "item": function_call_item(&ids, "in_progress", &t.name, "")}),
            );
            for piece in char_chunks(&t.args, n) {
                ev.push(
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": index, "delta": piece}),
                );
            }
            ev.push(
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": index, "arguments": t.args}),
            );
            ev.push(
                "response.output_item.done",
                json!({"output_index": index,
                       "item": function_call_item(&ids, "completed", &t.name, &t.args)}),
            );
        }
        None => {
            let id = &ids.message;
            let at = json!({"item_id": id, "output_index": index, "content_index": 0});
            let with = |extra: Value| merged(&at, extra);
            ev.push(
                "response.output_item.added",
                json!({"output_index": index, "item": message_item(&ids, "in_progress", None)}),
            );
            ev.push(
                "response.content_part.added",
                with(json!({"part": {"type": "output_text", "text": "", "annotations": []}})),
            );
            for piece in ctx.text_pieces(&p.text) {
                streamed_text.push_str(&piece);
                ev.push("response.output_text.delta", with(json!({"delta": piece})));
            }
            ev.push(
                "response.output_text.done",
                with(json!({"text": streamed_text})),
            );
            ev.push(
                "response.content_part.done",
                with(
                    json!({"part": {"type": "output_text", "text": streamed_text, "annotations": []}}),
                ),
            );
            let status = if p.finish == Finish::MaxTokens {
                "incomplete"
            } else {
                "completed"
            };
            ev.push(
                "response.output_item.done",
                json!({"output_index": index,
                       "item": message_item(&ids, status, Some(&streamed_text))}),
            );
        }
    }

    let done = response_object(
        &m,
        &req.model,
        &ids.response,
        created_at,
        Some(&p),
        output(&p, &ids, &streamed_text),
    );
    let last = if p.finish == Finish::MaxTokens {
        "response.incomplete"
    } else {
        "response.completed"
    };
    ev.push(last, json!({"response": done}));
    ctx.stream(Wire::Responses, ev.0)
}
