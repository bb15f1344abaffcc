//! AWS Bedrock Runtime Converse API (`POST /model/{modelId}/converse` and
//! `…/converse-stream`), authenticated with AWS Signature Version 4. Errors
//! are AWS JSON errors (`{"message": …}` plus an `x-amzn-errortype` header);
//! streams are AWS event-stream binary messages.

use std::collections::HashSet;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;
use serde_json::{json, Map, Value};

use crate::common::{
    char_chunks, json_resp, now_secs, plan, to_json_line, with_key, words, Ctx, Finish, PlanInput,
    Resp,
};
use crate::eventstream;
use crate::inject::{InjectKind, Wire};
use crate::sigv4::{self, Credential, Failure};

/// The SigV4 service name Bedrock requests are signed for.
pub const SERVICE: &str = "bedrock";
/// The reasoning signature the mock sends.
const SIGNATURE: &str = "mock-signature";

/// Credentials every mock accepts (see README.md).
pub fn builtin_credentials() -> Vec<Credential> {
    vec![
        Credential {
            key_id: "AKIAMOCKEXAMPLE00001".into(),
            secret: "mock+secret/KEY0000000000000000000001".into(),
            session_token: None,
        },
        Credential {
            key_id: "ASIAMOCKEXAMPLE00002".into(),
            secret: "mock+secret/KEY0000000000000000000002".into(),
            session_token: Some("mock-session-token-2".into()),
        },
    ]
}

// ---------------------------------------------------------------------------
// Errors

fn error_name(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        500 => "InternalServerException",
        503 => "ServiceUnavailableException",
        s if s >= 500 => "InternalServerException",
        _ => "ValidationException",
    }
}

fn status_message(status: u16) -> &'static str {
    match status {
        400 => "Malformed input request, please reformat your input and try again.",
        403 => "You don't have access to the model with the specified model ID.",
        404 => "Could not resolve the foundation model from the provided model identifier.",
        408 => "Model has timed out in processing the request. Try your request again.",
        424 => "The model returned an error. Try your request again.",
        429 => "Too many requests, please wait before trying again.",
        503 => "The service is temporarily unable to handle the request. Try again later.",
        s if s >= 500 => "The server encountered an internal error while processing the request.",
        _ => "The request failed validation.",
    }
}

/// An AWS JSON error: `{"message": …}` with `x-amzn-errortype: <name>`.
pub fn aws_error(status: u16, name: &str, message: &str) -> Resp {
    let mut resp = json_resp(status, &json!({"message": message}));
    if let Ok(v) = HeaderValue::from_str(name) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-amzn-errortype"), v);
    }
    resp
}

/// An error named after its status (knob parse errors, 413, validation).
pub fn error(status: u16, message: &str) -> Resp {
    aws_error(status, error_name(status), message)
}

fn invalid(message: impl AsRef<str>) -> Resp {
    error(400, message.as_ref())
}

/// Default body for `x-mock-status`; with `x-mock-echo-key`, the key is in
/// the message.
pub fn status_error(status: u16, key: Option<&str>) -> Resp {
    let message = status_message(status);
    match key {
        Some(k) => error(status, &with_key(message, k)),
        None => error(status, message),
    }
}

/// `:exception-type`s of `x-mock-sse-inject: error:TYPE@N`; the first is the
/// default of `error@N`.
pub const EXCEPTIONS: [&str; 5] = [
    "modelStreamErrorException",
    "throttlingException",
    "internalServerException",
    "validationException",
    "serviceUnavailableException",
];

fn exception_message(exception: &str) -> &'static str {
    match exception {
        "throttlingException" => "Too many requests, please wait before trying again.",
        "internalServerException" => {
            "The server encountered an internal error while processing the request."
        }
        "validationException" => "Input is too long for requested model.",
        "serviceUnavailableException" => {
            "The service is temporarily unable to handle the request. Try again later."
        }
        _ => "The model stream encountered an error. Try your request again.",
    }
}

/// The event-stream message `x-mock-sse-inject` inserts into a Bedrock stream.
pub fn injected(kind: InjectKind, exception: Option<&str>, key: Option<&str>) -> Bytes {
    match kind {
        InjectKind::Error => {
            let t = exception.unwrap_or(EXCEPTIONS[0]);
            let message = exception_message(t);
            let message = match key {
                Some(k) => with_key(message, k),
                None => message.to_string(),
            };
            eventstream::exception(t, to_json_line(&json!({"message": message})).as_bytes())
        }
        InjectKind::BadJson => eventstream::event(
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"#,
        ),
        InjectKind::BadUtf8 => eventstream::event(
            "contentBlockDelta",
            b"{\"contentBlockIndex\":0,\"delta\":{\"text\":\"bad \xff\xfe bytes\"},\"p\":\"abcd\"}",
        ),
        InjectKind::NoField => eventstream::untyped_event(br#"{"p":"garbage"}"#),
    }
}

// ---------------------------------------------------------------------------
// Routing and auth

/// `(raw model id, stream)` for `/model/{modelId}/converse(-stream)`.
fn parse_path(path: &str) -> Option<(&str, bool)> {
    let (id, op) = path.strip_prefix("/model/")?.split_once('/')?;
    if id.is_empty() {
        return None;
    }
    match op {
        "converse" => Some((id, false)),
        "converse-stream" => Some((id, true)),
        _ => None,
    }
}

/// A foundation-model id, inference-profile id or ARN, once decoded.
fn valid_model_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 2048
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'/'))
        && (!id.contains('/') || id.starts_with("arn:"))
}

pub fn handle(ctx: &Ctx<'_>) -> Resp {
    let route = (ctx.method == Method::POST)
        .then(|| parse_path(ctx.path))
        .flatten();
    let Some((raw_id, stream)) = route else {
        return aws_error(
            404,
            "UnknownOperationException",
            &format!("Unknown operation: {} {}", ctx.method, ctx.path),
        );
    };
    if let Err(resp) = authenticate(ctx) {
        return resp;
    }
    let model = sigv4::percent_decode(raw_id);
    if !valid_model_id(&model) {
        return invalid("The provided model identifier is invalid.");
    }
    match parse(ctx.body) {
        Ok(req) => converse(ctx, &model, req, stream),
        Err(resp) => resp,
    }
}

fn authenticate(ctx: &Ctx<'_>) -> Result<(), Resp> {
    let headers: Vec<(String, String)> = ctx
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let req = sigv4::Request {
        method: ctx.method.as_str(),
        path: ctx.path,
        query: ctx.query.unwrap_or(""),
        headers: &headers,
        body: ctx.body,
    };
    let now = i64::try_from(now_secs()).unwrap_or(i64::MAX);
    let failure = match sigv4::verify(&req, SERVICE, now, |id| ctx.state.aws_credential(id)) {
        Ok(()) => return Ok(()),
        Err(f) => f,
    };
    let denied = |name: &str, message: &str| Err(aws_error(403, name, message));
    match failure {
        Failure::Missing => denied(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        Failure::Incomplete(m) => denied("IncompleteSignatureException", &m),
        Failure::Unrecognized => denied(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        Failure::Expired(m) => denied("InvalidSignatureException", &m),
        Failure::Mismatch(canonical) => {
            // Real AWS does not say what it expected; a local mock can help.
            eprintln!(
                "mock-provider: SigV4 signature mismatch on {} {}; expected canonical request:\n{canonical}",
                ctx.method, ctx.path
            );
            denied(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            )
        }
    }
}

// ---------------------------------------------------------------------------
// Validation

const TOP_LEVEL: [&str; 10] = [
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "guardrailConfig",
    "performanceConfig",
    "promptVariables",
    "requestMetadata",
];

const IMAGE_FORMATS: [&str; 4] = ["png", "jpeg", "gif", "webp"];
const DOCUMENT_FORMATS: [&str; 9] = [
    "pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md",
];

struct Req {
    prompt_tokens: u64,
    last_user: String,
    /// The text of the tool results when the conversation ends with them.
    last_tool_result: Option<String>,
    max_tokens: Option<u64>,
    stops: Vec<String>,
    reasoning: bool,
    /// `additionalModelResponseFieldPaths` asked for `/stop_sequence`.
    want_stop_sequence: bool,
}

fn constraint(loc: &str, what: &str) -> Resp {
    invalid(format!(
        "1 validation error detected: Value at '{loc}' failed to satisfy constraint: {what}"
    ))
}

fn value_constraint(value: &str, loc: &str, what: &str) -> Resp {
    invalid(format!(
        "1 validation error detected: Value '{value}' at '{loc}' failed to satisfy constraint: {what}"
    ))
}

fn null_at(loc: &str) -> Resp {
    invalid(format!(
        "1 validation error detected: Value null at '{loc}' failed to satisfy constraint: Member must not be null"
    ))
}

fn join(loc: &str, key: &str) -> String {
    if loc.is_empty() {
        key.to_string()
    } else {
        format!("{loc}.{key}")
    }
}

/// An object whose keys are all in `allowed`.
fn object<'v>(loc: &str, v: &'v Value, allowed: &[&str]) -> Result<&'v Map<String, Value>, Resp> {
    let Value::Object(o) = v else {
        return Err(constraint(loc, "Member must be an object"));
    };
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!("Unknown field: {}", join(loc, k)))),
        None => Ok(o),
    }
}

/// A union: an object with exactly one (non-null) member among `members`.
fn union<'v>(loc: &str, v: &'v Value, members: &[&str]) -> Result<(&'v str, &'v Value), Resp> {
    let o = object(loc, v, members)?;
    let set: Vec<(&String, &Value)> = o.iter().filter(|(_, v)| !v.is_null()).collect();
    match set[..] {
        [(k, v)] => Ok((k.as_str(), v)),
        _ => Err(constraint(
            loc,
            &format!(
                "Member must have exactly one of [{}] set, got {}",
                members.join(", "),
                set.len()
            ),
        )),
    }
}

fn get<'v>(o: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn req_str<'v>(o: &'v Map<String, Value>, loc: &str, key: &str) -> Result<&'v str, Resp> {
    match get(o, key) {
        None => Err(null_at(&join(loc, key))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(constraint(&join(loc, key), "Member must be a string")),
    }
}

fn opt_str<'v>(o: &'v Map<String, Value>, loc: &str, key: &str) -> Result<Option<&'v str>, Resp> {
    match get(o, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(constraint(&join(loc, key), "Member must be a string")),
    }
}

fn req_list<'v>(o: &'v Map<String, Value>, loc: &str, key: &str) -> Result<&'v [Value], Resp> {
    match get(o, key) {
        None => Err(null_at(&join(loc, key))),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(constraint(&join(loc, key), "Member must be a list")),
    }
}

fn enum_str<'v>(
    o: &'v Map<String, Value>,
    loc: &str,
    key: &str,
    allowed: &[&str],
) -> Result<&'v str, Resp> {
    let s = req_str(o, loc, key)?;
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(value_constraint(
            s,
            &join(loc, key),
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ))
    }
}

fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    !b.is_empty()
        && b.len().is_multiple_of(4)
        && pad <= 2
        && b[..b.len() - pad]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// `source` of an image or document: exactly one of `bytes` (base64),
/// `s3Location` and, for documents, `text`/`content`.
fn source(loc: &str, o: &Map<String, Value>, document: bool) -> Result<(), Resp> {
    let loc = join(loc, "source");
    let Some(src) = get(o, "source") else {
        return Err(null_at(&loc));
    };
    let members: &[&str] = if document {
        &["bytes", "s3Location", "text", "content"]
    } else {
        &["bytes", "s3Location"]
    };
    let (kind, v) = union(&loc, src, members)?;
    match (kind, v) {
        ("bytes", Value::String(s)) if is_base64(s) => Ok(()),
        ("bytes", _) => Err(constraint(
            &join(&loc, "bytes"),
            "Member must be a non-empty base64-encoded string",
        )),
        ("s3Location", v) => {
            let s3 = object(&join(&loc, "s3Location"), v, &["uri", "bucketOwner"])?;
            req_str(s3, &join(&loc, "s3Location"), "uri").map(|_| ())
        }
        _ => Ok(()),
    }
}

fn valid_document_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains("  ")
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || matches!(c, '-' | '(' | ')' | '[' | ']'))
}

fn image(loc: &str, v: &Value) -> Result<(), Resp> {
    let o = object(loc, v, &["format", "source"])?;
    enum_str(o, loc, "format", &IMAGE_FORMATS)?;
    source(loc, o, false)
}

fn document(loc: &str, v: &Value) -> Result<(), Resp> {
    let o = object(
        loc,
        v,
        &["format", "name", "source", "context", "citations"],
    )?;
    enum_str(o, loc, "format", &DOCUMENT_FORMATS)?;
    let name = req_str(o, loc, "name")?;
    if !valid_document_name(name) {
        return Err(invalid(
            "The document file name can only contain alphanumeric characters, whitespace characters, hyphens, parentheses, and square brackets. The name can't contain more than one consecutive whitespace character.",
        ));
    }
    source(loc, o, true)
}

fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What the blocks of one message add up to.
#[derive(Default)]
struct Blocks {
    text: String,
    tool_uses: Vec<String>,
    tool_results: Vec<String>,
    result_text: String,
    words: u64,
}

fn block(i: usize, j: usize, role: &str, v: &Value, out: &mut Blocks) -> Result<(), Resp> {
    let loc = format!("messages.{}.member.content.{}.member", i + 1, j + 1);
    let (kind, inner) = union(
        &loc,
        v,
        &[
            "text",
            "image",
            "document",
            "toolUse",
            "toolResult",
            "reasoningContent",
            "cachePoint",
        ],
    )?;
    let loc = join(&loc, kind);
    let only_in = |wanted: &str| -> Result<(), Resp> {
        if role == wanted {
            Ok(())
        } else {
            Err(invalid(format!(
                "messages.{i}.content.{j}: {kind} blocks are only allowed in {wanted} messages."
            )))
        }
    };
    match kind {
        "text" => {
            let Value::String(s) = inner else {
                return Err(constraint(&loc, "Member must be a string"));
            };
            if s.trim().is_empty() {
                return Err(invalid(format!(
                    "The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."
                )));
            }
            out.words += words(s);
            out.text.push_str(s);
        }
        "image" => image(&loc, inner)?,
        "document" => document(&loc, inner)?,
        "toolUse" => {
            only_in("assistant")?;
            let o = object(&loc, inner, &["toolUseId", "name", "input", "type"])?;
            let id = req_str(o, &loc, "toolUseId")?;
            if !valid_id(id) {
                return Err(value_constraint(
                    id,
                    &join(&loc, "toolUseId"),
                    "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]{1,64}$",
                ));
            }
            req_str(o, &loc, "name")?;
            match get(o, "input") {
                None => return Err(null_at(&join(&loc, "input"))),
                Some(Value::Object(_)) => {}
                Some(_) => {
                    return Err(constraint(
                        &join(&loc, "input"),
                        "Member must be a JSON object",
                    ))
                }
            }
            out.tool_uses.push(id.to_string());
        }
        "toolResult" => {
            only_in("user")?;
            let o = object(&loc, inner, &["toolUseId", "content", "status", "type"])?;
            let id = req_str(o, &loc, "toolUseId")?;
            if let Some(status) = opt_str(o, &loc, "status")? {
                if status != "success" && status != "error" {
                    return Err(value_constraint(
                        status,
                        &join(&loc, "status"),
                        "Member must satisfy enum value set: [success, error]",
                    ));
                }
            }
            for (k, item) in req_list(o, &loc, "content")?.iter().enumerate() {
                let iloc = format!("{loc}.content.{}.member", k + 1);
                let (ikind, ival) = union(&iloc, item, &["text", "json", "image", "document"])?;
                let iloc = join(&iloc, ikind);
                match (ikind, ival) {
                    ("text", Value::String(s)) => {
                        out.words += words(s);
                        out.result_text.push_str(s);
                    }
                    ("text", _) => return Err(constraint(&iloc, "Member must be a string")),
                    ("image", v) => image(&iloc, v)?,
                    ("document", v) => document(&iloc, v)?,
                    _ => {}
                }
            }
            out.tool_results.push(id.to_string());
        }
        "reasoningContent" => {
            only_in("assistant")?;
            let (rkind, rval) = union(&loc, inner, &["reasoningText", "redactedContent"])?;
            let rloc = join(&loc, rkind);
            match (rkind, rval) {
                ("reasoningText", v) => {
                    let o = object(&rloc, v, &["text", "signature"])?;
                    req_str(o, &rloc, "text")?;
                    opt_str(o, &rloc, "signature")?;
                }
                (_, Value::String(s)) if is_base64(s) => {}
                _ => {
                    return Err(constraint(
                        &rloc,
                        "Member must be a non-empty base64-encoded string",
                    ))
                }
            }
        }
        _ => {
            let o = object(&loc, inner, &["type"])?;
            enum_str(o, &loc, "type", &["default"])?;
        }
    }
    Ok(())
}

fn parse(body: &[u8]) -> Result<Req, Resp> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    let m = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(invalid(
                "Malformed input request: the request body must be a JSON object, please reformat your input and try again.",
            ))
        }
        Err(e) => {
            return Err(invalid(format!(
                "Malformed input request: {e}, please reformat your input and try again."
            )))
        }
    };
    let v = Value::Object(m);
    let m = object("", &v, &TOP_LEVEL)?;

    // messages
    let messages = req_list(m, "", "messages")?;
    if messages.is_empty() {
        return Err(value_constraint(
            "[]",
            "messages",
            "Member must have length greater than or equal to 1",
        ));
    }
    let mut prompt_tokens = 0;
    let mut last_user = String::new();
    let mut last_tool_result = None;
    let mut tool_blocks = false;
    let mut pending: Vec<String> = Vec::new();
    let mut prev_role: Option<&str> = None;
    for (i, msg) in messages.iter().enumerate() {
        let loc = format!("messages.{}.member", i + 1);
        let o = object(&loc, msg, &["role", "content"])?;
        let role = enum_str(o, &loc, "role", &["user", "assistant"])?;
        if i == 0 && role != "user" {
            return Err(invalid(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
            ));
        }
        if prev_role == Some(role) {
            return Err(invalid(
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
            ));
        }
        prev_role = Some(role);
        let content = req_list(o, &loc, "content")?;
        if content.is_empty() {
            return Err(value_constraint(
                "[]",
                &join(&loc, "content"),
                "Member must have length greater than or equal to 1",
            ));
        }
        let mut blocks = Blocks::default();
        for (j, b) in content.iter().enumerate() {
            block(i, j, role, b, &mut blocks)?;
        }
        prompt_tokens += blocks.words;
        tool_blocks |= !blocks.tool_uses.is_empty() || !blocks.tool_results.is_empty();
        // Tool pairing: a user message answers every toolUse of the assistant
        // message before it, and only those.
        if role == "user" {
            let expected: HashSet<&String> = pending.iter().collect();
            if blocks.tool_results.len() > pending.len()
                || blocks.tool_results.iter().any(|id| !expected.contains(id))
            {
                return Err(invalid(format!(
                    "The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse blocks of previous turn, or a toolResult's toolUseId does not match a toolUse of the previous turn."
                )));
            }
            let missing: Vec<&str> = pending
                .iter()
                .filter(|id| !blocks.tool_results.contains(id))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(invalid(format!(
                    "Expected toolResult blocks at messages.{i}.content for the following Ids: {}",
                    missing.join(", ")
                )));
            }
            last_tool_result =
                (!blocks.tool_results.is_empty()).then(|| blocks.result_text.clone());
            last_user = blocks.text;
            pending = Vec::new();
        } else {
            last_tool_result = None;
            pending = blocks.tool_uses;
        }
    }

    // system
    if let Some(system) = get(m, "system") {
        let Value::Array(blocks) = system else {
            return Err(constraint("system", "Member must be a list"));
        };
        for (i, b) in blocks.iter().enumerate() {
            let loc = format!("system.{}.member", i + 1);
            match union(&loc, b, &["text", "cachePoint", "guardContent"])? {
                ("text", Value::String(s)) => {
                    if s.trim().is_empty() {
                        return Err(invalid(format!(
                            "The text field in the SystemContentBlock object at system.{i} is blank. Add text to the text field, and try again."
                        )));
                    }
                    prompt_tokens += words(s);
                }
                ("text", _) => {
                    return Err(constraint(&join(&loc, "text"), "Member must be a string"))
                }
                ("cachePoint", v) => {
                    let loc = join(&loc, "cachePoint");
                    enum_str(object(&loc, v, &["type"])?, &loc, "type", &["default"])?;
                }
                _ => {}
            }
        }
    }

    // inferenceConfig
    let mut max_tokens = None;
    let mut stops = Vec::new();
    if let Some(ic) = get(m, "inferenceConfig") {
        let loc = "inferenceConfig";
        let ic = object(
            loc,
            ic,
            &["maxTokens", "temperature", "topP", "stopSequences"],
        )?;
        match get(ic, "maxTokens") {
            None => {}
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => match n.as_u64() {
                Some(x) if x >= 1 => max_tokens = Some(x),
                _ => {
                    return Err(value_constraint(
                        &n.to_string(),
                        "inferenceConfig.maxTokens",
                        "Member must have value greater than or equal to 1",
                    ))
                }
            },
            Some(_) => {
                return Err(constraint(
                    "inferenceConfig.maxTokens",
                    "Member must be an integer",
                ))
            }
        }
        for key in ["temperature", "topP"] {
            match get(ic, key) {
                None => {}
                Some(Value::Number(n)) => {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    if !(0.0..=1.0).contains(&x) {
                        let bound = if x < 0.0 {
                            "greater than or equal to 0"
                        } else {
                            "less than or equal to 1"
                        };
                        return Err(value_constraint(
                            &n.to_string(),
                            &join(loc, key),
                            &format!("Member must have value {bound}"),
                        ));
                    }
                }
                Some(_) => return Err(constraint(&join(loc, key), "Member must be a number")),
            }
        }
        if get(ic, "stopSequences").is_some() {
            let list = req_list(ic, loc, "stopSequences")?;
            if list.len() > 4 {
                return Err(constraint(
                    "inferenceConfig.stopSequences",
                    "Member must have length less than or equal to 4",
                ));
            }
            for (k, s) in list.iter().enumerate() {
                match s {
                    Value::String(s) if !s.is_empty() => stops.push(s.clone()),
                    _ => {
                        return Err(constraint(
                            &format!("inferenceConfig.stopSequences.{}.member", k + 1),
                            "Member must be a string of length greater than or equal to 1",
                        ))
                    }
                }
            }
        }
    }

    // toolConfig
    match get(m, "toolConfig") {
        None if tool_blocks => {
            return Err(invalid(
                "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
            ))
        }
        None => {}
        Some(tc) => tool_config(tc)?,
    }

    // additionalModelRequestFields
    let mut reasoning = false;
    if let Some(extra) = get(m, "additionalModelRequestFields") {
        let Value::Object(extra) = extra else {
            return Err(constraint(
                "additionalModelRequestFields",
                "Member must be a JSON object",
            ));
        };
        reasoning = ["thinking", "reasoning_config"].iter().any(|k| {
            get(extra, k).is_some_and(|v| {
                v.get("type").and_then(Value::as_str) != Some("disabled") && v != &json!(false)
            })
        });
    }
    let mut want_stop_sequence = false;
    if let Some(paths) = get(m, "additionalModelResponseFieldPaths") {
        let Value::Array(paths) = paths else {
            return Err(constraint(
                "additionalModelResponseFieldPaths",
                "Member must be a list",
            ));
        };
        for (k, p) in paths.iter().enumerate() {
            match p.as_str() {
                Some(s) if s.starts_with('/') => want_stop_sequence |= s == "/stop_sequence",
                _ => {
                    return Err(constraint(
                        &format!("additionalModelResponseFieldPaths.{}.member", k + 1),
                        "Member must be a JSON pointer (a string starting with '/')",
                    ))
                }
            }
        }
    }

    Ok(Req {
        prompt_tokens,
        last_user,
        last_tool_result,
        max_tokens,
        stops,
        reasoning,
        want_stop_sequence,
    })
}

fn tool_config(tc: &Value) -> Result<(), Resp> {
    let tc = object("toolConfig", tc, &["tools", "toolChoice"])?;
    let tools = req_list(tc, "toolConfig", "tools")?;
    if tools.is_empty() {
        return Err(value_constraint(
            "[]",
            "toolConfig.tools",
            "Member must have length greater than or equal to 1",
        ));
    }
    let mut names: Vec<&str> = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let loc = format!("toolConfig.tools.{}.member", i + 1);
        match union(&loc, t, &["toolSpec", "cachePoint"])? {
            ("toolSpec", spec) => {
                let loc = join(&loc, "toolSpec");
                let spec = object(&loc, spec, &["name", "description", "inputSchema"])?;
                let name = req_str(spec, &loc, "name")?;
                if !valid_id(name) {
                    return Err(value_constraint(
                        name,
                        &join(&loc, "name"),
                        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]{1,64}$",
                    ));
                }
                if names.contains(&name) {
                    return Err(invalid(format!(
                        "The toolConfig field contains the tool name '{name}' more than once. Tool names must be unique."
                    )));
                }
                names.push(name);
                if opt_str(spec, &loc, "description")?.is_some_and(str::is_empty) {
                    return Err(constraint(
                        &join(&loc, "description"),
                        "Member must have length greater than or equal to 1",
                    ));
                }
                let sloc = join(&loc, "inputSchema");
                let Some(schema) = get(spec, "inputSchema") else {
                    return Err(null_at(&sloc));
                };
                match union(&sloc, schema, &["json"])? {
                    (_, Value::Object(_)) => {}
                    _ => {
                        return Err(constraint(
                            &join(&sloc, "json"),
                            "Member must be a JSON object",
                        ))
                    }
                }
            }
            (_, v) => {
                let loc = join(&loc, "cachePoint");
                enum_str(object(&loc, v, &["type"])?, &loc, "type", &["default"])?;
            }
        }
    }
    if let Some(choice) = get(tc, "toolChoice") {
        let loc = "toolConfig.toolChoice";
        match union(loc, choice, &["auto", "any", "tool"])? {
            ("tool", v) => {
                let tloc = "toolConfig.toolChoice.tool";
                let name = req_str(object(tloc, v, &["name"])?, tloc, "name")?;
                if !names.contains(&name) {
                    return Err(invalid(format!(
                        "The tool '{name}' named in toolConfig.toolChoice is not defined in toolConfig.tools."
                    )));
                }
            }
            (kind, v) => {
                object(&join(loc, kind), v, &[])?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Replies

/// A few letters of padding, as real Bedrock adds to each event (`"p"`).
fn padding(n: usize) -> &'static str {
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    &LETTERS[..4 + n * 7 % 20]
}

/// Append an event whose payload is `fields` plus the `"p"` padding.
fn push_event(events: &mut Vec<Bytes>, name: &str, mut fields: Value) {
    if let Value::Object(o) = &mut fields {
        o.insert("p".into(), Value::String(padding(events.len()).into()));
    }
    events.push(eventstream::event(name, to_json_line(&fields).as_bytes()));
}

fn with_headers(mut resp: Resp, model: &str, seq: u64) -> Resp {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("mock-request-{seq}")) {
        h.insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
    if let Ok(v) = HeaderValue::from_str(model) {
        h.insert(HeaderName::from_static("x-mock-model-id"), v);
    }
    resp
}

fn converse(ctx: &Ctx<'_>, model: &str, req: Req, stream: bool) -> Resp {
    let p = plan(
        ctx.knobs,
        PlanInput {
            last_user: &req.last_user,
            prompt_tokens: req.prompt_tokens,
            max_tokens: req.max_tokens,
            stop_sequences: &req.stops,
            reasoning_enabled: req.reasoning,
            last_tool_result: req.last_tool_result.as_deref(),
        },
    );
    let tool_input = match &p.tool {
        Some(t) => match serde_json::from_str::<Value>(&t.args) {
            Ok(v @ Value::Object(_)) => Some(v),
            _ => return invalid("mock-provider: x-mock-tool-args must be a JSON object"),
        },
        None => None,
    };
    let tool_id = format!("tooluse_mock_{}", ctx.seq);
    let stop_reason = match &p.finish {
        Finish::Stop => "end_turn",
        Finish::MaxTokens => "max_tokens",
        Finish::StopSequence(_) => "stop_sequence",
        Finish::ToolCall => "tool_use",
    };
    let additional = req.want_stop_sequence.then(|| match &p.finish {
        Finish::StopSequence(s) => json!({"stop_sequence": s}),
        _ => json!({"stop_sequence": null}),
    });
    let output_tokens = p.completion_tokens();
    let usage = json!({
        "inputTokens": p.prompt_tokens,
        "outputTokens": output_tokens,
        "totalTokens": p.prompt_tokens + output_tokens,
    });
    let metrics = json!({"latencyMs": 1});

    if !stream {
        let mut content = Vec::with_capacity(2);
        if let Some(r) = &p.reasoning {
            content.push(
                json!({"reasoningContent": {"reasoningText": {"text": r, "signature": SIGNATURE}}}),
            );
        }
        match (&p.tool, tool_input) {
            (Some(t), Some(input)) => content
                .push(json!({"toolUse": {"toolUseId": tool_id, "name": t.name, "input": input}})),
            _ => content.push(json!({"text": p.text})),
        }
        let mut body = json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason,
            "usage": usage,
            "metrics": metrics,
        });
        if let (Some(a), Value::Object(o)) = (additional, &mut body) {
            o.insert("additionalModelResponseFields".into(), a);
        }
        return with_headers(json_resp(200, &body), model, ctx.seq);
    }

    let n = ctx.knobs.chunk_chars;
    let mut events = Vec::with_capacity(16);
    push_event(&mut events, "messageStart", json!({"role": "assistant"}));
    let mut index = 0;
    if let Some(r) = &p.reasoning {
        for piece in char_chunks(r, n) {
            push_event(
                &mut events,
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"text": piece}}}),
            );
        }
        push_event(
            &mut events,
            "contentBlockDelta",
            json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": SIGNATURE}}}),
        );
        push_event(
            &mut events,
            "contentBlockStop",
            json!({"contentBlockIndex": index}),
        );
        index += 1;
    }
    match (&p.tool, tool_input) {
        (Some(t), Some(input)) => {
            push_event(
                &mut events,
                "contentBlockStart",
                json!({"contentBlockIndex": index,
                       "start": {"toolUse": {"toolUseId": tool_id, "name": t.name}}}),
            );
            let text = to_json_line(&input);
            for piece in char_chunks(&text, n) {
                push_event(
                    &mut events,
                    "contentBlockDelta",
                    json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}}),
                );
            }
        }
        _ => {
            for piece in ctx.text_pieces(&p.text) {
                push_event(
                    &mut events,
                    "contentBlockDelta",
                    json!({"contentBlockIndex": index, "delta": {"text": piece}}),
                );
            }
        }
    }
    push_event(
        &mut events,
        "contentBlockStop",
        json!({"contentBlockIndex": index}),
    );
    let mut stop = json!({"stopReason": stop_reason});
    if let (Some(a), Value::Object(o)) = (additional, &mut stop) {
        o.insert("additionalModelResponseFields".into(), a);
    }
    push_event(&mut events, "messageStop", stop);
    push_event(
        &mut events,
        "metadata",
        json!({"usage": usage, "metrics": metrics}),
    );
    with_headers(ctx.stream(Wire::Bedrock, events), model, ctx.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_text(r: Result<Req, Resp>) -> String {
        match r {
            Ok(_) => String::from("<ok>"),
            Err(resp) => {
                let name = resp
                    .headers()
                    .get("x-amzn-errortype")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let body = match resp.into_body() {
                    crate::body::Body::Full(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
                    _ => String::new(),
                };
                format!("{name} {body}")
            }
        }
    }

    fn parse_json(v: Value) -> String {
        err_text(parse(v.to_string().as_bytes()))
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": [{"text": text}]})
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("/model/m%3A0/converse"), Some(("m%3A0", false)));
        assert_eq!(parse_path("/model/m/converse-stream"), Some(("m", true)));
        assert_eq!(parse_path("/model/m/invoke"), None);
        assert_eq!(parse_path("/model//converse"), None);
        assert_eq!(parse_path("/model/a/b/converse"), None);
        assert!(valid_model_id("anthropic.claude-3-5-sonnet-20240620-v1:0"));
        assert!(valid_model_id(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
        ));
        assert!(!valid_model_id("a%3A0"));
        assert!(!valid_model_id("a/b"));
        assert!(!valid_model_id("a b"));
    }

    #[test]
    fn accepts_a_full_conversation() {
        let ok = parse_json(json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "look"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                    {"document": {"format": "pdf", "name": "Report (v2) [final]", "source": {"bytes": "JVBERi0="}}},
                    {"cachePoint": {"type": "default"}}
                ]},
                {"role": "assistant", "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "s"}}},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "sunny"}, {"json": {"t": 20}}], "status": "success"}}
                ]}
            ],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 1, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "description": "d", "inputSchema": {"json": {"type": "object"}}}}],
                "toolChoice": {"tool": {"name": "get_weather"}}
            },
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
            "additionalModelResponseFieldPaths": ["/stop_sequence"],
            "requestMetadata": {"a": "b"},
            "performanceConfig": {"latency": "standard"}
        }));
        assert_eq!(ok, "<ok>");
        let Ok(req) = parse(
            json!({"messages": [user("hello there")], "system": [{"text": "one two"}],
                   "additionalModelRequestFields": {"top_k": 5}})
            .to_string()
            .as_bytes(),
        ) else {
            panic!("should parse")
        };
        assert_eq!(req.prompt_tokens, 4);
        assert_eq!(req.last_user, "hello there");
        assert!(!req.reasoning);
    }

    #[test]
    fn rejects_bad_requests() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "Value null at 'messages'"),
            (
                json!({"messages": []}),
                "Member must have length greater than or equal to 1",
            ),
            (
                json!({"messages": [user("x")], "bogus": 1}),
                "Unknown field: bogus",
            ),
            (
                json!({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}),
                "must start with a user message",
            ),
            (
                json!({"messages": [user("a"), user("b")]}),
                "must alternate",
            ),
            (
                json!({"messages": [{"role": "system", "content": [{"text": "x"}]}]}),
                "enum value set: [user, assistant]",
            ),
            (
                json!({"messages": [{"role": "user", "content": []}]}),
                "messages.1.member.content",
            ),
            (json!({"messages": [user(" ")]}), "is blank"),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]}),
                "exactly one",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"video": {}}]}]}),
                "Unknown field",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"image": {"format": "bmp", "source": {"bytes": "AA=="}}}]}]}),
                "enum value set: [png, jpeg, gif, webp]",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": "not base64!"}}}]}]}),
                "base64",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"document": {"format": "pdf", "name": "a.pdf", "source": {"bytes": "AA=="}}}]}]}),
                "document file name",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"document": {"format": "pdf", "source": {"bytes": "AA=="}}}]}]}),
                "Value null at 'messages.1.member.content.1.member.document.name'",
            ),
            (
                json!({"messages": [user("a"), {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]}, user("b")],
                       "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]}}),
                "Expected toolResult blocks at messages.2.content for the following Ids: t1",
            ),
            (
                json!({"messages": [user("a"), {"role": "assistant", "content": [{"text": "b"}]},
                                    {"role": "user", "content": [{"toolResult": {"toolUseId": "t9", "content": [{"text": "r"}]}}]}],
                       "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]}}),
                "exceeds the number of toolUse blocks",
            ),
            (
                json!({"messages": [user("a"), {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]},
                                    {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "r"}]}}]}]}),
                "toolConfig field must be defined",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]}]}),
                "only allowed in assistant messages",
            ),
            (
                json!({"messages": [user("a")], "inferenceConfig": {"maxTokens": 0}}),
                "greater than or equal to 1",
            ),
            (
                json!({"messages": [user("a")], "inferenceConfig": {"temperature": 1.5}}),
                "less than or equal to 1",
            ),
            (
                json!({"messages": [user("a")], "inferenceConfig": {"topP": -0.1}}),
                "greater than or equal to 0",
            ),
            (
                json!({"messages": [user("a")], "inferenceConfig": {"stopSequences": ["a", "b", "c", "d", "e"]}}),
                "less than or equal to 4",
            ),
            (
                json!({"messages": [user("a")], "inferenceConfig": {"max_tokens": 5}}),
                "Unknown field: inferenceConfig.max_tokens",
            ),
            (
                json!({"messages": [user("a")], "toolConfig": {}}),
                "toolConfig.tools",
            ),
            (
                json!({"messages": [user("a")], "toolConfig": {"tools": []}}),
                "toolConfig.tools",
            ),
            (
                json!({"messages": [user("a")], "toolConfig": {"tools": [{"toolSpec": {"name": "bad name", "inputSchema": {"json": {}}}}]}}),
                "regular expression",
            ),
            (
                json!({"messages": [user("a")], "toolConfig": {"tools": [{"toolSpec": {"name": "f"}}]}}),
                "inputSchema",
            ),
            (
                json!({"messages": [user("a")], "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}],
                                                               "toolChoice": {"tool": {"name": "g"}}}}),
                "not defined",
            ),
            (
                json!({"messages": [user("a")], "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}],
                                                               "toolChoice": {"auto": {}, "any": {}}}}),
                "exactly one",
            ),
            (
                json!({"messages": [user("a")], "additionalModelRequestFields": [1]}),
                "additionalModelRequestFields",
            ),
        ];
        for (body, want) in cases {
            let got = parse_json(body.clone());
            assert!(
                got.starts_with("ValidationException ") && got.contains(want),
                "{body}: expected {want:?}, got {got}"
            );
        }
        assert!(err_text(parse(b"{not json")).contains("Malformed input request"));
    }

    #[test]
    fn reasoning_switch() {
        let on = |extra: Value| {
            parse(
                json!({"messages": [user("a")], "additionalModelRequestFields": extra})
                    .to_string()
                    .as_bytes(),
            )
            .map(|r| r.reasoning)
            .unwrap_or(false)
        };
        assert!(on(
            json!({"thinking": {"type": "enabled", "budget_tokens": 2000}})
        ));
        assert!(on(json!({"reasoning_config": {"type": "enabled"}})));
        assert!(!on(json!({"thinking": {"type": "disabled"}})));
        assert!(!on(json!({"top_k": 5})));
    }

    #[test]
    fn injected_messages_are_framed() {
        let msgs = eventstream::tests::decode_all(&injected(
            InjectKind::Error,
            Some("throttlingException"),
            None,
        ));
        assert_eq!(
            msgs[0].0[0],
            (":exception-type".into(), "throttlingException".into())
        );
        assert_eq!(msgs[0].0[2].1, "exception");
        let msgs = eventstream::tests::decode_all(&injected(InjectKind::NoField, None, None));
        assert!(msgs[0].0.iter().all(|(k, _)| k != ":event-type"));
    }
}
