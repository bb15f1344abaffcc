//! Helpers shared by the provider emulations: token counting, reply planning,
//! chunking, embeddings and response construction.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{HeaderMap, Method, Response, StatusCode};
use serde_json::Value;

use crate::body::{Body, EventStream};
use crate::inject::{self, Wire};
use crate::knobs::Knobs;
use crate::server::{Family, State};

pub type Resp = Response<Body>;

/// Everything a provider handler needs to answer one request.
pub struct Ctx<'a> {
    pub state: &'a State,
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub knobs: &'a Knobs,
    /// Per-server request sequence number, used in ids (`chatcmpl-mock-<n>` …).
    pub seq: u64,
}

impl Ctx<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query, name)
    }

    /// A streamed answer made of `events` (already framed for `wire`, except
    /// the bare elements of `Wire::GeminiArray`, which are framed here).
    pub fn stream(&self, wire: Wire, mut events: Vec<Bytes>) -> Resp {
        if let Some(inj) = self.knobs.sse_inject {
            inject::apply(&mut events, wire, inj, self.knobs.credential.as_deref());
        }
        if wire == Wire::GeminiArray {
            events = json_array_pieces(events);
        }
        let stream = EventStream::new(events, self.knobs.stream_opts());
        let mut resp = Response::new(Body::Stream(Box::new(stream)));
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(wire.content_type()));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }

    /// The pieces of reply text for content events: `chunk_chars` characters
    /// each, after a first piece of `x-mock-oversize-event` filler bytes.
    pub fn text_pieces<'t>(&self, text: &'t str) -> Vec<Cow<'t, str>> {
        let chunks = char_chunks(text, self.knobs.chunk_chars);
        let mut out = Vec::with_capacity(chunks.len() + 1);
        if let Some(n) = self.knobs.oversize_event {
            out.push(Cow::Owned("x".repeat(n)));
        }
        out.extend(chunks.into_iter().map(Cow::Borrowed));
        out
    }
}

/// Elements of a streamed JSON array, framed as Gemini sends them:
/// `[` before the first, `,\r\n` between, `]` after the last.
fn json_array_pieces(elements: Vec<Bytes>) -> Vec<Bytes> {
    let last = elements.len().saturating_sub(1);
    elements
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let sep: &[u8] = if i == 0 { b"[" } else { b",\r\n" };
            let end: &[u8] = if i == last { b"]" } else { b"" };
            Bytes::from([sep, &e[..], end].concat())
        })
        .collect()
}

/// The credential a request carried, as `x-mock-echo-key` echoes it: the
/// one the family authenticates with (bearer token, `api-key`, `x-api-key`,
/// `x-goog-api-key` or `?key=`, ERNIE's `?access_token=`, the token
/// endpoint's `client_secret`, Vertex's bearer token), else the first of
/// those present, else "".
pub fn credential(family: Family, headers: &HeaderMap, query: Option<&str>) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
    };
    let bearer = || {
        header("authorization").map(|auth| match auth.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                token.trim().to_string()
            }
            _ => auth,
        })
    };
    let own = match family {
        Family::OpenAi => bearer(),
        Family::Azure => header("api-key"),
        Family::Anthropic => header("x-api-key"),
        Family::Gemini => header("x-goog-api-key").or_else(|| query_param(query, "key")),
        // SigV4 never sends the secret: the access key id is what can leak.
        Family::Bedrock => header("authorization").and_then(|a| {
            let (_, rest) = a.split_once("Credential=")?;
            rest.split(['/', ',']).next().map(str::to_string)
        }),
        Family::Ernie => query_param(query, "access_token"),
        // The form body is consulted by the server (it needs the body).
        Family::ErnieOAuth => query_param(query, "client_secret"),
        Family::Vertex => bearer(),
        // The token endpoint's assertion (a form parameter) is found by the
        // server; the metadata server takes no credential.
        Family::GoogleOAuth | Family::GoogleMetadata => None,
    };
    own.or_else(bearer)
        .or_else(|| {
            ["api-key", "x-api-key", "x-goog-api-key"]
                .iter()
                .find_map(|n| header(n))
        })
        .or_else(|| query_param(query, "key"))
        .unwrap_or_default()
}

/// A provider message with the echoed credential appended.
pub fn with_key(message: &str, key: &str) -> String {
    format!("{message} (api key: {key})")
}

// ---------------------------------------------------------------------------
// Responses

pub fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub fn bytes_resp(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Body::full(body));
    *resp.status_mut() = status_code(status);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn json_resp(status: u16, v: &Value) -> Resp {
    match serde_json::to_vec(v) {
        Ok(b) => bytes_resp(status, "application/json", b),
        Err(_) => bytes_resp(500, "text/plain", "mock-provider: serialization failed"),
    }
}

/// Body given with `x-mock-error-body`: JSON content type when it looks like JSON.
pub fn raw_error_resp(status: u16, body: &Bytes) -> Resp {
    let trimmed = body.iter().find(|b| !b.is_ascii_whitespace());
    let ct = match trimmed {
        Some(b'{') | Some(b'[') => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    bytes_resp(status, ct, body.clone())
}

pub fn to_json_line(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| String::from("{}"))
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Auth

pub enum Auth {
    Ok,
    Missing,
    Invalid(String),
}

/// `provided` is the key the client sent (if any); `expected` the `--api-key`.
pub fn check_key(expected: Option<&str>, provided: Option<&str>) -> Auth {
    match provided.map(str::trim).filter(|k| !k.is_empty()) {
        None => Auth::Missing,
        Some(k) => match expected {
            Some(e) if e != k => Auth::Invalid(k.to_string()),
            _ => Auth::Ok,
        },
    }
}

// ---------------------------------------------------------------------------
// Query strings

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

// ---------------------------------------------------------------------------
// Text utilities

/// "Tokens" are whitespace-separated words.
pub fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// If `s` has more than `max` words, the byte index just past the `max`-th word.
pub fn cut_after_words(s: &str, max: u64) -> Option<usize> {
    let mut count = 0u64;
    let mut in_word = false;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if in_word {
                in_word = false;
                if count == max {
                    // More words may follow; check below.
                    let rest = &s[i..];
                    return (words(rest) > 0).then_some(i);
                }
            }
        } else if !in_word {
            in_word = true;
            count += 1;
            if count > max {
                // max == 0: cut before the first word.
                return Some(0);
            }
        }
    }
    None
}

/// Split `s` into pieces of at most `n` characters (never inside a code point).
pub fn char_chunks(s: &str, n: usize) -> Vec<&str> {
    let n = n.max(1);
    let mut out = Vec::with_capacity(s.len() / n + 1);
    let mut start = 0;
    let mut count = 0;
    for (i, _) in s.char_indices() {
        if count == n {
            out.push(&s[start..i]);
            start = i;
            count = 0;
        }
        count += 1;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// "a string", "an integer", … as used in OpenAI's type errors.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A non-negative integer, also accepting integral floats (`100.0`) and, when
/// `allow_string`, decimal strings (proto3 JSON allows `"100"`).
pub fn as_uint(v: &Value, allow_string: bool) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) if allow_string => s.trim().parse().ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Reply planning

#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    Stop,
    MaxTokens,
    StopSequence(String),
    ToolCall,
}

#[derive(Debug, Clone)]
pub struct ToolCall {
    pub name: String,
    /// Arguments exactly as given in `x-mock-tool-args` (default `{}`).
    pub args: String,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub text: String,
    pub finish: Finish,
    pub reasoning: Option<String>,
    pub tool: Option<ToolCall>,
    pub prompt_tokens: u64,
    /// Words of the reply text (or of the tool call's name and arguments).
    pub output_tokens: u64,
    /// Words of the reasoning text (0 when no reasoning is emitted).
    pub reasoning_tokens: u64,
}

impl Plan {
    pub fn completion_tokens(&self) -> u64 {
        self.output_tokens + self.reasoning_tokens
    }
}

pub struct PlanInput<'a> {
    pub last_user: &'a str,
    pub prompt_tokens: u64,
    pub max_tokens: Option<u64>,
    pub stop_sequences: &'a [String],
    pub reasoning_enabled: bool,
    /// The conversation ends with this tool result (OpenAI-compatible chat).
    pub last_tool_result: Option<&'a str>,
}

pub fn default_reply(last_user: &str) -> String {
    format!("Hello from mock-provider! You said: {last_user}")
}

pub fn plan(knobs: &Knobs, input: PlanInput<'_>) -> Plan {
    let reasoning = if input.reasoning_enabled {
        knobs.reasoning.clone()
    } else {
        None
    };
    let reasoning_tokens = reasoning.as_deref().map(words).unwrap_or(0);
    // A tool loop of one turn: call the tool, then answer with its result.
    let once = knobs
        .tool_call_once
        .as_ref()
        .filter(|_| input.last_tool_result.is_none());
    if let (Some(_), Some(result)) = (&knobs.tool_call_once, input.last_tool_result) {
        let text = format!("Tool result: {result}");
        return Plan {
            output_tokens: words(&text),
            text,
            finish: Finish::Stop,
            tool: None,
            reasoning,
            prompt_tokens: input.prompt_tokens,
            reasoning_tokens,
        };
    }
    if let Some(name) = knobs.tool_call.as_ref().or(once) {
        let args = knobs.tool_args.clone().unwrap_or_else(|| "{}".to_string());
        return Plan {
            text: String::new(),
            finish: Finish::ToolCall,
            output_tokens: words(name) + words(&args),
            tool: Some(ToolCall {
                name: name.clone(),
                args,
            }),
            reasoning,
            prompt_tokens: input.prompt_tokens,
            reasoning_tokens,
        };
    }
    let mut text = match &knobs.content {
        Some(c) => c.clone(),
        None => default_reply(input.last_user),
    };
    let mut finish = Finish::Stop;
    let earliest = input
        .stop_sequences
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|i| (i, s)))
        .min_by_key(|(i, _)| *i);
    if let Some((i, seq)) = earliest {
        let seq = seq.clone();
        text.truncate(i);
        finish = Finish::StopSequence(seq);
    }
    if let Some(max) = input.max_tokens {
        if let Some(end) = cut_after_words(&text, max) {
            text.truncate(end);
            finish = Finish::MaxTokens;
        }
    }
    if let Some(key) = &knobs.credential {
        // After the cuts, so the key is always there to be found.
        text.push_str(" (api key: ");
        text.push_str(key);
        text.push(')');
    }
    Plan {
        output_tokens: words(&text),
        text,
        finish,
        reasoning,
        tool: None,
        prompt_tokens: input.prompt_tokens,
        reasoning_tokens,
    }
}

// ---------------------------------------------------------------------------
// Embeddings

pub const EMBEDDING_DIMS: usize = 8;

/// A deterministic, L2-normalised 8-dimensional vector derived from the input.
pub fn embedding(input: &str) -> Vec<f64> {
    let mut v = [0f64; EMBEDDING_DIMS];
    for (d, slot) in v.iter_mut().enumerate() {
        // FNV-1a over (dimension, input), then mapped to [-1, 1).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (d as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in input.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        *slot = (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter()
        .map(|x| {
            let x = if norm > 0.0 { x / norm } else { 0.0 };
            // Round to 6 decimals so the JSON stays short and stable.
            (x * 1e6).round() / 1e6
        })
        .collect()
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_cutting() {
        assert_eq!(cut_after_words("a b c", 3), None);
        assert_eq!(cut_after_words("a b c", 2), Some(3));
        assert_eq!(cut_after_words("a b c ", 3), None);
        assert_eq!(cut_after_words("  héllo   wörld", 1), Some(8));
        assert_eq!(cut_after_words("a", 0), Some(0));
        assert_eq!(cut_after_words("", 0), None);
    }

    #[test]
    fn chunking_respects_code_points() {
        assert_eq!(char_chunks("héllo wörld", 4), vec!["héll", "o wö", "rld"]);
        assert_eq!(char_chunks("", 4), Vec::<&str>::new());
        assert_eq!(char_chunks("ab", 8), vec!["ab"]);
    }

    #[test]
    fn queries() {
        let q = Some("alt=sse&key=a%20b+c&x");
        assert_eq!(query_param(q, "alt").as_deref(), Some("sse"));
        assert_eq!(query_param(q, "key").as_deref(), Some("a b c"));
        assert_eq!(query_param(q, "x").as_deref(), Some(""));
        assert_eq!(query_param(q, "y"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn embeddings_are_deterministic_and_normalised() {
        let a = embedding("hello");
        assert_eq!(a, embedding("hello"));
        assert_ne!(a, embedding("hello!"));
        assert_eq!(a.len(), EMBEDDING_DIMS);
        let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
