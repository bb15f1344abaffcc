//! Baidu ERNIE v1 (Qianfan v1, "wenxinworkshop"): the AIP OAuth token
//! endpoint (`/oauth/2.0/token`, client_credentials grant) and the chat
//! endpoint (`/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/{endpoint}`)
//! authenticated by `?access_token=`.
//!
//! The token endpoint answers OAuth JSON errors (`{"error", "error_description"}`,
//! 400/401). The chat endpoint answers its errors the ERNIE way: HTTP 200 with
//! `{"error_code", "error_msg"}` (also for streams, before any event).

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Map, Value};

use crate::common::{
    json_resp, now_secs, plan, query_param, to_json_line, with_key, words, Ctx, Finish, PlanInput,
    Resp,
};
use crate::inject::Wire;
use crate::oauth::{self, mix, TokenState};

/// The OAuth client every mock accepts (API Key, Secret Key).
pub const BUILTIN_CLIENT: (&str, &str) = ("mock-ernie-ak", "mock-ernie-sk");

/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/oauth/2.0/token";
/// Everything under this prefix is the ERNIE chat family.
pub const RPC_PREFIX: &str = "/rpc/2.0/";
const CHAT_PREFIX: &str = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/";

// Error codes of the chat API.
const UNSUPPORTED_METHOD: u64 = 3;
const QPS_LIMIT: u64 = 18;
const TOKEN_INVALID: u64 = 110;
const TOKEN_EXPIRED: u64 = 111;
const INVALID_ARGUMENT: u64 = 336003;
const INTERNAL_ERROR: u64 = 336100;

const MSG_UNSUPPORTED: &str = "Unsupported openapi method";
const MSG_TOKEN_INVALID: &str = "Access token invalid or no longer valid";
const MSG_TOKEN_EXPIRED: &str = "Access token expired";
const MSG_INTERNAL: &str = "internal error";

// ---------------------------------------------------------------------------
// Access tokens

/// The ERNIE access tokens issued (`--ernie-token-ttl` is their lifetime).
pub type Tokens = crate::oauth::Tokens;

/// A new `(access_token, refresh_token)`; earlier tokens stay valid.
fn issue(tokens: &Tokens) -> (String, String) {
    let ttl = tokens.ttl();
    let mut refresh = String::new();
    let access = tokens.issue(|i| {
        refresh = format!(
            "25.{:016x}{:016x}",
            mix(i.nonce ^ 0x5a5a),
            mix(i.nonce.wrapping_sub(i.n))
        );
        format!("24.{}.{ttl}.{}-mock", i.unique, now_secs())
    });
    (access, refresh)
}

// ---------------------------------------------------------------------------
// Token endpoint (Baidu AIP OAuth)

/// A generic token-endpoint error (knob parse errors, 413).
pub fn oauth_generic_error(status: u16, message: &str) -> Resp {
    oauth::generic_error(status, message)
}

/// Default body of `x-mock-status` on the token endpoint; with
/// `x-mock-echo-key`, the client secret is the `error` and ends the description.
pub fn oauth_status_error(status: u16, key: Option<&str>) -> Resp {
    oauth::status_error(status, key)
}

/// A token-endpoint parameter: the query string first, then a form body.
fn oauth_param(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
    name: &str,
) -> Option<String> {
    query_param(query, name).or_else(|| oauth::form_param(content_type, body, name))
}

/// The credential `x-mock-echo-key` echoes on the token endpoint: the client secret.
pub fn oauth_credential(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> String {
    oauth_param(query, content_type, body, "client_secret").unwrap_or_default()
}

/// `GET`/`POST /oauth/2.0/token`.
pub fn handle_token(ctx: &Ctx<'_>) -> Resp {
    if ctx.method != Method::GET && ctx.method != Method::POST {
        return oauth::error(
            405,
            "invalid_request",
            &format!("method {} not allowed", ctx.method),
        );
    }
    let ct = ctx.header("content-type");
    let param = |name: &str| oauth_param(ctx.query, ct, ctx.body, name);
    if param("grant_type").as_deref() != Some("client_credentials") {
        return oauth::error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported",
        );
    }
    let id = param("client_id").unwrap_or_default();
    let Some(secret) = ctx.state.ernie_client_secret(&id) else {
        return oauth::error(401, "invalid_client", "unknown client id");
    };
    if param("client_secret").as_deref() != Some(secret) {
        return oauth::error(401, "invalid_client", "Client authentication failed");
    }
    let tokens = &ctx.state.ernie_tokens;
    let (access, refresh) = issue(tokens);
    json_resp(
        200,
        &json!({
            "refresh_token": refresh,
            "expires_in": tokens.ttl(),
            "session_key": "mock",
            "access_token": access,
            "scope": "public brain_all_scope",
            "session_secret": "mock",
        }),
    )
}

// ---------------------------------------------------------------------------
// Chat errors

/// An ERNIE error body with the given HTTP status (200 for the API's own errors).
fn ernie_error(status: u16, code: u64, message: &str) -> Resp {
    json_resp(status, &json!({"error_code": code, "error_msg": message}))
}

fn invalid(message: impl AsRef<str>) -> Resp {
    ernie_error(200, INVALID_ARGUMENT, message.as_ref())
}

fn status_code(status: u16) -> (u64, &'static str) {
    match status {
        429 => (QPS_LIMIT, "Open api qps request limit reached"),
        401 | 403 => (TOKEN_INVALID, MSG_TOKEN_INVALID),
        404 => (UNSUPPORTED_METHOD, MSG_UNSUPPORTED),
        s if s >= 500 => (INTERNAL_ERROR, MSG_INTERNAL),
        _ => (INVALID_ARGUMENT, "invalid argument"),
    }
}

/// A generic chat error with this status (knob parse errors, 413).
pub fn error(status: u16, message: &str) -> Resp {
    ernie_error(status, status_code(status).0, message)
}

/// Default body of `x-mock-status` on the chat family; with `x-mock-echo-key`,
/// the access token ends `error_msg`.
pub fn status_error(status: u16, key: Option<&str>) -> Resp {
    let (code, message) = status_code(status);
    match key {
        Some(k) => ernie_error(status, code, &with_key(message, k)),
        None => ernie_error(status, code, message),
    }
}

/// The in-band error of a stream (`x-mock-sse-inject: error@N`).
pub fn in_band_error(key: Option<&str>) -> Value {
    let message = match key {
        Some(k) => with_key(MSG_INTERNAL, k),
        None => MSG_INTERNAL.to_string(),
    };
    json!({"error_code": INTERNAL_ERROR, "error_msg": message})
}

// ---------------------------------------------------------------------------
// Chat routing

/// The `{endpoint}` of `/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/{endpoint}`.
fn parse_chat_path(path: &str) -> Option<&str> {
    let ep = path.strip_prefix(CHAT_PREFIX)?;
    let ok = (1..=64).contains(&ep.len())
        && ep.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    ok.then_some(ep)
}

pub fn handle_chat(ctx: &Ctx<'_>) -> Resp {
    let route = (ctx.method == Method::POST)
        .then(|| parse_chat_path(ctx.path))
        .flatten();
    let Some(endpoint) = route else {
        return ernie_error(200, UNSUPPORTED_METHOD, MSG_UNSUPPORTED);
    };
    let token = ctx.query_param("access_token").unwrap_or_default();
    match ctx.state.ernie_tokens.check(&token) {
        TokenState::Valid => {}
        TokenState::Expired => return ernie_error(200, TOKEN_EXPIRED, MSG_TOKEN_EXPIRED),
        TokenState::Invalid => return ernie_error(200, TOKEN_INVALID, MSG_TOKEN_INVALID),
    }
    match parse(ctx.body) {
        Ok(req) => chat(ctx, endpoint, req),
        Err(resp) => resp,
    }
}

// ---------------------------------------------------------------------------
// Validation

const TOP_LEVEL: [&str; 15] = [
    "messages",
    "system",
    "temperature",
    "top_p",
    "penalty_score",
    "stream",
    "stop",
    "max_output_tokens",
    "user_id",
    "functions",
    "tool_choice",
    "response_format",
    "disable_search",
    "enable_citation",
    "enable_trace",
];

#[derive(Debug)]
struct Req {
    prompt_tokens: u64,
    last_user: String,
    /// The content of the last message when it is a `function` result.
    last_tool_result: Option<String>,
    max_tokens: Option<u64>,
    stops: Vec<String>,
    stream: bool,
    functions: Vec<String>,
}

fn get<'v>(o: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn opt_str<'v>(o: &'v Map<String, Value>, key: &str, at: &str) -> Result<Option<&'v str>, Resp> {
    match get(o, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{at}{key} must be a string"))),
    }
}

fn opt_bool(o: &Map<String, Value>, key: &str) -> Result<Option<bool>, Resp> {
    match get(o, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(format!("{key} must be a boolean"))),
    }
}

/// An optional number that must satisfy `ok`, else `range` is the message.
fn opt_number(
    o: &Map<String, Value>,
    key: &str,
    ok: impl Fn(f64) -> bool,
    range: &str,
) -> Result<(), Resp> {
    match get(o, key) {
        None => Ok(()),
        Some(Value::Number(n)) if n.as_f64().is_some_and(&ok) => Ok(()),
        Some(Value::Number(_)) => Err(invalid(format!("{key} range is {range}"))),
        Some(_) => Err(invalid(format!("{key} must be a number"))),
    }
}

struct Messages {
    prompt_tokens: u64,
    last_user: String,
    last_tool_result: Option<String>,
}

fn messages(v: Option<&Value>) -> Result<Messages, Resp> {
    let msgs = match v {
        None => return Err(invalid("messages is required")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(invalid("messages must be an array")),
    };
    if msgs.is_empty() {
        return Err(invalid("messages must not be empty"));
    }
    if msgs.len() % 2 == 0 {
        return Err(invalid("the length of messages must be an odd number"));
    }
    let mut out = Messages {
        prompt_tokens: 0,
        last_user: String::new(),
        last_tool_result: None,
    };
    let mut prev_call = false;
    for (i, m) in msgs.iter().enumerate() {
        let at = format!("messages[{i}].");
        let Value::Object(o) = m else {
            return Err(invalid(format!("messages[{i}] must be an object")));
        };
        let role = match get(o, "role") {
            None => return Err(invalid(format!("{at}role is required"))),
            Some(Value::String(r)) => r.as_str(),
            Some(_) => return Err(invalid(format!("{at}role must be a string"))),
        };
        match (i % 2, role) {
            (0, "user") | (1, "assistant") => {}
            (0, "function") if prev_call => {}
            (0, "function") => {
                return Err(invalid(format!(
                    "messages[{i}]: a function message must follow an assistant message with function_call"
                )))
            }
            (0, _) => {
                return Err(invalid(
                    "the role of message with even index in the messages must be user or function",
                ))
            }
            _ => {
                return Err(invalid(
                    "the role of message with odd index in the messages must be assistant",
                ))
            }
        }
        let call = match get(o, "function_call") {
            None => false,
            Some(_) if role != "assistant" => {
                return Err(invalid(format!(
                    "{at}function_call is only allowed in assistant messages"
                )))
            }
            Some(Value::Object(fc)) => {
                match get(fc, "name") {
                    Some(Value::String(n)) if !n.is_empty() => {}
                    _ => {
                        return Err(invalid(format!(
                            "{at}function_call.name must be a non-empty string"
                        )))
                    }
                }
                opt_str(fc, "arguments", &format!("{at}function_call."))?;
                opt_str(fc, "thoughts", &format!("{at}function_call."))?;
                true
            }
            Some(_) => return Err(invalid(format!("{at}function_call must be an object"))),
        };
        let content = match get(o, "content") {
            Some(Value::String(s)) => s.as_str(),
            None if call => "",
            None => return Err(invalid(format!("{at}content is required"))),
            Some(_) => return Err(invalid(format!("{at}content must be a string"))),
        };
        if content.is_empty() && !call {
            return Err(invalid(format!("{at}content must not be empty")));
        }
        let name = opt_str(o, "name", &at)?;
        if role == "function" && name.is_none_or(str::is_empty) {
            return Err(invalid(format!(
                "{at}name is required for a function message"
            )));
        }
        out.prompt_tokens += words(content);
        match role {
            "user" => out.last_user = content.to_string(),
            "function" if i + 1 == msgs.len() => out.last_tool_result = Some(content.to_string()),
            _ => {}
        }
        prev_call = call;
    }
    Ok(out)
}

fn functions(v: Option<&Value>) -> Result<Vec<String>, Resp> {
    let list = match v {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(invalid("functions must be an array")),
    };
    let mut names = Vec::with_capacity(list.len());
    for (i, f) in list.iter().enumerate() {
        let at = format!("functions[{i}].");
        let Value::Object(o) = f else {
            return Err(invalid(format!("functions[{i}] must be an object")));
        };
        let name = match get(o, "name") {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            Some(Value::String(_)) | None => return Err(invalid(format!("{at}name is required"))),
            Some(_) => return Err(invalid(format!("{at}name must be a string"))),
        };
        opt_str(o, "description", &at)?;
        if get(o, "parameters").is_some_and(|p| !p.is_object()) {
            return Err(invalid(format!("{at}parameters must be an object")));
        }
        names.push(name);
    }
    Ok(names)
}

fn parse(body: &[u8]) -> Result<Req, Resp> {
    let m = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(invalid("the request body must be a JSON object")),
        Err(e) => return Err(invalid(format!("the request body is not valid JSON: {e}"))),
    };
    if let Some(k) = m.keys().find(|k| !TOP_LEVEL.contains(&k.as_str())) {
        return Err(invalid(format!("invalid argument: {k}")));
    }
    let msgs = messages(get(&m, "messages"))?;
    let system = opt_str(&m, "system", "")?;
    opt_number(&m, "temperature", |t| t > 0.0 && t <= 1.0, "(0, 1.0]")?;
    opt_number(&m, "top_p", |p| (0.0..=1.0).contains(&p), "[0, 1.0]")?;
    opt_number(
        &m,
        "penalty_score",
        |p| (1.0..=2.0).contains(&p),
        "[1.0, 2.0]",
    )?;
    let stream = opt_bool(&m, "stream")?.unwrap_or(false);
    let stops = match get(&m, "stop") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.len() <= 4 => {
            let mut out = Vec::with_capacity(a.len());
            for s in a {
                match s {
                    Value::String(s) => out.push(s.clone()),
                    _ => return Err(invalid("stop must be an array of strings")),
                }
            }
            out
        }
        Some(Value::Array(_)) => return Err(invalid("the length of stop must be at most 4")),
        Some(_) => return Err(invalid("stop must be an array of strings")),
    };
    let max_tokens = match get(&m, "max_output_tokens") {
        None => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v >= 2 => Some(v),
            Some(_) => return Err(invalid("max_output_tokens must be at least 2")),
            None if n.as_i64().is_some() => {
                return Err(invalid("max_output_tokens must be at least 2"))
            }
            None => return Err(invalid("max_output_tokens must be an integer")),
        },
        Some(_) => return Err(invalid("max_output_tokens must be an integer")),
    };
    opt_str(&m, "user_id", "")?;
    let functions = functions(get(&m, "functions"))?;
    if let Some(tc) = get(&m, "tool_choice") {
        let Value::Object(tc) = tc else {
            return Err(invalid("tool_choice must be an object"));
        };
        let named = tc
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str);
        if let Some(n) = named {
            if !functions.iter().any(|f| f == n) {
                return Err(invalid(format!(
                    "tool_choice names a function that is not in functions: {n}"
                )));
            }
        }
    }
    match get(&m, "response_format") {
        None => {}
        Some(Value::String(s)) if s == "text" || s == "json_object" => {}
        Some(_) => return Err(invalid("response_format must be one of text, json_object")),
    }
    for k in ["disable_search", "enable_citation", "enable_trace"] {
        opt_bool(&m, k)?;
    }
    Ok(Req {
        prompt_tokens: msgs.prompt_tokens + system.map(words).unwrap_or(0),
        last_user: msgs.last_user,
        last_tool_result: msgs.last_tool_result,
        max_tokens,
        stops,
        stream,
        functions,
    })
}

// ---------------------------------------------------------------------------
// Replies

fn chat(ctx: &Ctx<'_>, endpoint: &str, req: Req) -> Resp {
    let p = plan(
        ctx.knobs,
        PlanInput {
            last_user: &req.last_user,
            prompt_tokens: req.prompt_tokens,
            max_tokens: req.max_tokens,
            stop_sequences: &req.stops,
            // ERNIE v1 has no reasoning output.
            reasoning_enabled: false,
            last_tool_result: req.last_tool_result.as_deref(),
        },
    );
    if let Some(t) = &p.tool {
        if !req.functions.contains(&t.name) {
            return invalid(format!(
                "mock-provider: x-mock-tool-call names a function that is not in functions: {}",
                t.name
            ));
        }
    }
    let finish = match p.finish {
        Finish::Stop => "normal",
        Finish::StopSequence(_) => "stop",
        Finish::MaxTokens => "length",
        Finish::ToolCall => "function_call",
    };
    let id = format!("as-mock-{}", ctx.seq);
    let created = now_secs();
    let completion = p.completion_tokens();
    let usage = json!({
        "prompt_tokens": p.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": p.prompt_tokens + completion,
    });
    let function_call = p
        .tool
        .as_ref()
        .map(|t| json!({"name": t.name, "thoughts": "mock thoughts", "arguments": t.args}));

    if !req.stream {
        let mut body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "result": p.text,
            "is_truncated": false,
            "need_clear_history": false,
        });
        if let (Some(fc), Value::Object(o)) = (function_call, &mut body) {
            o.insert("function_call".into(), fc);
        }
        if let Value::Object(o) = &mut body {
            o.insert("finish_reason".into(), json!(finish));
            o.insert("usage".into(), usage);
        }
        let mut resp = json_resp(200, &body);
        mark_endpoint(&mut resp, endpoint);
        return resp;
    }

    let partial_usage = json!({
        "prompt_tokens": p.prompt_tokens,
        "completion_tokens": 0,
        "total_tokens": p.prompt_tokens,
    });
    let event = |i: usize, piece: &str, last: bool, fc: Option<&Value>| -> Bytes {
        let mut v = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "sentence_id": i,
            "is_end": last,
            "is_truncated": false,
            "result": piece,
            "need_clear_history": false,
        });
        if let Value::Object(o) = &mut v {
            if let Some(fc) = fc {
                o.insert("function_call".into(), fc.clone());
            }
            o.insert(
                "finish_reason".into(),
                json!(if last { finish } else { "normal" }),
            );
            o.insert(
                "usage".into(),
                if last {
                    usage.clone()
                } else {
                    partial_usage.clone()
                },
            );
        }
        Bytes::from(format!("data: {}\n\n", to_json_line(&v)))
    };
    let events: Vec<Bytes> = match &function_call {
        Some(fc) => vec![event(0, "", true, Some(fc))],
        None => {
            let pieces = ctx.text_pieces(&p.text);
            if pieces.is_empty() {
                vec![event(0, "", true, None)]
            } else {
                let last = pieces.len() - 1;
                pieces
                    .iter()
                    .enumerate()
                    .map(|(i, piece)| event(i, piece, i == last, None))
                    .collect()
            }
        }
    };
    let mut resp = ctx.stream(Wire::Ernie, events);
    mark_endpoint(&mut resp, endpoint);
    resp
}

/// `x-mock-model-id: <endpoint>` (a mock-only header: the ERNIE v1 answer
/// has no model field to echo the endpoint in).
fn mark_endpoint(resp: &mut Resp, endpoint: &str) {
    if let Ok(v) = hyper::header::HeaderValue::from_str(endpoint) {
        resp.headers_mut()
            .insert(hyper::header::HeaderName::from_static("x-mock-model-id"), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Body;

    fn is_json(resp: &Resp) -> bool {
        resp.headers()
            .get(hyper::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    }

    fn body_json(resp: Resp) -> Value {
        match resp.into_body() {
            Body::Full(Some(b)) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    fn err(v: Value) -> String {
        match parse(v.to_string().as_bytes()) {
            Ok(_) => String::from("<ok>"),
            Err(resp) => {
                assert!(is_json(&resp));
                let v = body_json(resp);
                assert_eq!(v["error_code"], 336003, "{v}");
                v["error_msg"].as_str().unwrap_or_default().to_string()
            }
        }
    }

    fn user(t: &str) -> Value {
        json!({"role": "user", "content": t})
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_chat_path("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro"),
            Some("completions_pro")
        );
        assert_eq!(
            parse_chat_path("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/ernie-4.0-8k"),
            Some("ernie-4.0-8k")
        );
        assert_eq!(
            parse_chat_path("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"),
            None
        );
        assert_eq!(
            parse_chat_path("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/A"),
            None
        );
        assert_eq!(
            parse_chat_path("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/a/b"),
            None
        );
        let long = format!("{CHAT_PREFIX}{}", "a".repeat(65));
        assert_eq!(parse_chat_path(&long), None);
        assert_eq!(
            parse_chat_path("/rpc/2.0/ai_custom/v1/wenxinworkshop/embeddings/embedding-v1"),
            None
        );
    }

    #[test]
    fn token_format() {
        let t = Tokens::new(3600);
        let (a, r) = issue(&t);
        let (b, r2) = issue(&t);
        assert_ne!(a, b);
        assert_ne!(r, r2);
        assert!(a.starts_with("24.") && a.ends_with("-mock"), "{a}");
        assert!(a.contains(".3600."), "{a}");
        assert!(r.starts_with("25."), "{r}");
        assert_eq!(t.check(&a), TokenState::Valid);
    }

    #[test]
    fn accepts_a_function_conversation() {
        let v = json!({
            "messages": [
                user("weather in Paris?"),
                {"role": "assistant", "content": "", "function_call": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "thoughts": "t"}},
                {"role": "function", "name": "get_weather", "content": "sunny and warm"},
                {"role": "assistant", "content": "It is sunny."},
                user("thanks a lot")
            ],
            "system": "be brief",
            "temperature": 1,
            "top_p": 0,
            "penalty_score": 2.0,
            "stream": false,
            "stop": ["a", "b", "c", "d"],
            "max_output_tokens": 2,
            "user_id": "u",
            "functions": [{"name": "get_weather", "description": "d", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": "json_object",
            "disable_search": true,
            "enable_citation": false,
            "enable_trace": false
        });
        assert_eq!(err(v.clone()), "<ok>");
        let Ok(req) = parse(v.to_string().as_bytes()) else {
            panic!("expected ok")
        };
        // 3 + 0 + 3 + 3 + 3 message words, 2 system words.
        assert_eq!(req.prompt_tokens, 14);
        assert_eq!(req.last_user, "thanks a lot");
        assert_eq!(req.last_tool_result, None);
        assert_eq!(req.max_tokens, Some(2));
        assert_eq!(req.functions, vec!["get_weather".to_string()]);

        let ends_with_result = json!({"messages": [
            user("x"),
            {"role": "assistant", "function_call": {"name": "f"}},
            {"role": "function", "name": "f", "content": "42"}
        ], "functions": [{"name": "f"}]});
        let Ok(req) = parse(ends_with_result.to_string().as_bytes()) else {
            panic!("expected ok")
        };
        assert_eq!(req.last_tool_result.as_deref(), Some("42"));
        assert_eq!(req.last_user, "x");
    }

    #[test]
    fn rejects_bad_requests() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "must be a JSON object"),
            (json!({}), "messages is required"),
            (json!({"messages": []}), "must not be empty"),
            (json!({"messages": "x"}), "must be an array"),
            (
                json!({"messages": [user("a"), {"role": "assistant", "content": "b"}]}),
                "odd number",
            ),
            (
                json!({"messages": [{"role": "assistant", "content": "a"}]}),
                "even index",
            ),
            (
                json!({"messages": [user("a"), user("b"), user("c")]}),
                "odd index",
            ),
            (
                json!({"messages": [user("a"), {"role": "assistant", "content": "b"}, {"role": "function", "name": "f", "content": "c"}]}),
                "must follow an assistant message with function_call",
            ),
            (
                json!({"messages": [{"role": "function", "name": "f", "content": "c"}]}),
                "must follow",
            ),
            (
                json!({"messages": [user("a"), {"role": "assistant", "function_call": {"name": "f"}}, {"role": "function", "content": "c"}]}),
                "name is required",
            ),
            (json!({"messages": [user("")]}), "content must not be empty"),
            (
                json!({"messages": [user("a"), {"role": "assistant", "content": ""}, user("c")]}),
                "content must not be empty",
            ),
            (
                json!({"messages": [{"role": "user", "content": ["a"]}]}),
                "content must be a string",
            ),
            (
                json!({"messages": [{"role": "user", "content": "a", "function_call": {"name": "f"}}]}),
                "only allowed in assistant",
            ),
            (
                json!({"messages": [{"role": "user"}]}),
                "content is required",
            ),
            (
                json!({"messages": [user("a")], "model": "x"}),
                "invalid argument: model",
            ),
            (
                json!({"messages": [user("a")], "temperature": 0}),
                "temperature range",
            ),
            (
                json!({"messages": [user("a")], "temperature": 1.5}),
                "temperature range",
            ),
            (
                json!({"messages": [user("a")], "top_p": 1.1}),
                "top_p range",
            ),
            (
                json!({"messages": [user("a")], "penalty_score": 0.5}),
                "penalty_score range",
            ),
            (
                json!({"messages": [user("a")], "penalty_score": "1"}),
                "must be a number",
            ),
            (
                json!({"messages": [user("a")], "stream": "yes"}),
                "stream must be a boolean",
            ),
            (
                json!({"messages": [user("a")], "stop": ["a", "b", "c", "d", "e"]}),
                "at most 4",
            ),
            (
                json!({"messages": [user("a")], "stop": [1]}),
                "array of strings",
            ),
            (
                json!({"messages": [user("a")], "max_output_tokens": 1}),
                "at least 2",
            ),
            (
                json!({"messages": [user("a")], "max_output_tokens": -3}),
                "at least 2",
            ),
            (
                json!({"messages": [user("a")], "max_output_tokens": 2.5}),
                "must be an integer",
            ),
            (
                json!({"messages": [user("a")], "user_id": 3}),
                "user_id must be a string",
            ),
            (
                json!({"messages": [user("a")], "functions": [{"description": "d"}]}),
                "functions[0].name is required",
            ),
            (
                json!({"messages": [user("a")], "functions": [{"name": "f", "parameters": []}]}),
                "parameters must be an object",
            ),
            (
                json!({"messages": [user("a")], "tool_choice": "auto"}),
                "tool_choice must be an object",
            ),
            (
                json!({"messages": [user("a")], "tool_choice": {"type": "function", "function": {"name": "g"}}}),
                "not in functions",
            ),
            (
                json!({"messages": [user("a")], "response_format": "json_schema"}),
                "response_format",
            ),
            (
                json!({"messages": [user("a")], "enable_trace": 1}),
                "enable_trace must be a boolean",
            ),
        ];
        for (v, want) in cases {
            let got = err(v.clone());
            assert!(got.contains(want), "{v}: got {got:?}, want {want:?}");
        }
        assert!(parse(b"{not json").is_err());
    }

    #[test]
    fn status_mapping() {
        let v = body_json(status_error(429, None));
        assert_eq!(v["error_code"], 18);
        assert_eq!(v["error_msg"], "Open api qps request limit reached");
        assert_eq!(body_json(status_error(503, None))["error_code"], 336100);
        assert_eq!(body_json(status_error(500, None))["error_code"], 336100);
        assert_eq!(body_json(status_error(400, None))["error_code"], 336003);
        assert_eq!(body_json(status_error(401, None))["error_code"], 110);
        assert_eq!(body_json(status_error(403, None))["error_code"], 110);
        let v = body_json(status_error(500, Some("tok")));
        assert_eq!(v["error_msg"], "internal error (api key: tok)");
        let v = body_json(oauth_status_error(401, None));
        assert_eq!(v["error"], "invalid_client");
    }
}
