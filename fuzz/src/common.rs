//! Helpers shared by the checks: input headers, chunk plans, and the
//! validation of what the gateway writes to clients.

use llm_gateway::error::ApiError;
use llm_gateway::wire::openai::ParsedRequest;
use llm_gateway::wire::sse::SseFramer;
use llm_gateway::wire::Wire;
use serde_json::Value;

/// Inputs up to this size are also fed one byte at a time.
pub const BYTEWISE_MAX: usize = 512;

/// Splits `N` header bytes off `data` (missing ones read as 0).
pub fn header<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut h = [0u8; N];
    let n = data.len().min(N);
    h[..n].copy_from_slice(&data[..n]);
    (h, &data[n..])
}

/// `body` cut in two at a point chosen by `seed` (0 → all in the second
/// part, 255 → all in the first), wherever the body's length.
pub fn two_way(body: &[u8], seed: u8) -> [&[u8]; 2] {
    let at = usize::from(seed) * (body.len() + 1) / 256;
    let (a, b) = body.split_at(at.min(body.len()));
    [a, b]
}

/// `body` in chunks whose sizes (0 included: hosts do hand over empty
/// chunks) come from a small PRNG seeded by `seed`.
pub fn chunks(body: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let max = 1 + usize::from(seed % 61);
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % (max as u64 + 1)) as usize;
        let (a, b) = rest.split_at(len.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

/// The chunkings every streaming check compares against feeding the whole
/// body at once: a two-way split, PRNG-sized chunks and, for short inputs,
/// one byte at a time.
pub fn chunkings(body: &[u8], seed: u8) -> Vec<Vec<&[u8]>> {
    let mut all = vec![two_way(body, seed).to_vec(), chunks(body, seed)];
    if body.len() <= BYTEWISE_MAX {
        all.push(body.chunks(1).collect());
    }
    all
}

/// Parses JSON, panicking with `what` when it is not.
/// A body a one-pass check accepted without a tree (`parsed`): the full
/// validation of the same bytes (`full`) must accept it too, with the same
/// model, stream flag and tree.
pub fn same_as_full_validation(full: Result<ParsedRequest, ApiError>, parsed: &ParsedRequest) {
    let full =
        full.unwrap_or_else(|e| panic!("quick check accepted what validation refuses: {e:?}"));
    assert_eq!(
        (&full.model, full.stream),
        (&parsed.model, parsed.stream),
        "quick check: other facts"
    );
    assert_eq!(full.body(), parsed.body(), "quick check: another tree");
}

pub fn json(bytes: &[u8], what: &str) -> Value {
    match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => panic!(
            "{what} is not valid JSON ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// An `ApiError` renders as OpenAI's error object, with a status in `statuses`.
pub fn check_api_error(e: &ApiError, statuses: std::ops::RangeInclusive<u16>, what: &str) {
    assert!(
        statuses.contains(&e.status),
        "{what}: status {} outside {statuses:?}: {e:?}",
        e.status
    );
    check_openai_error_json(&e.to_json(), &format!("{what}: ApiError::to_json"));
}

/// `bytes` is OpenAI's error object: `{"error": {"message": …, "type": …}}`.
pub fn check_openai_error_json(bytes: &[u8], what: &str) {
    let v = json(bytes, what);
    let err = v
        .get("error")
        .unwrap_or_else(|| panic!("{what}: no 'error' in {v}"));
    assert!(
        err.get("message").is_some_and(Value::is_string),
        "{what}: error without a message: {v}"
    );
    assert!(
        err.get("type").is_some_and(Value::is_string),
        "{what}: error without a type: {v}"
    );
}

/// How an OpenAI chunk stream written by the gateway ended.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    Done,
    Error,
}

/// Checks that `out` is what an OpenAI client expects on a chat stream:
/// only `data: <payload>\n\n` frames, each payload one line of JSON (a
/// `chat.completion.chunk` or an `{"error": …}` object) or `[DONE]`; and
/// the stream ends with exactly one `data: [DONE]\n\n` with nothing after
/// it, or, when the provider's stream failed, with one error frame and no
/// `[DONE]` at all (the gateway's documented contract: OpenAI's SDKs raise
/// on the error frame). Returns how it ended.
pub fn check_openai_stream(out: &[u8]) -> StreamEnd {
    let text = std::str::from_utf8(out)
        .unwrap_or_else(|e| panic!("stream output is not UTF-8 ({e}): {out:?}"));
    assert!(
        text.ends_with("\n\n"),
        "stream output does not end with a complete frame: {text:?}"
    );
    let body = &text[..text.len() - 2];
    let frames: Vec<&str> = body.split("\n\n").collect();
    let mut end = None;
    for (i, frame) in frames.iter().enumerate() {
        let last = i + 1 == frames.len();
        let payload = frame
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("frame {i} is not a 'data: ' frame: {frame:?}\nin {text:?}"));
        assert!(
            !payload.contains(['\n', '\r']),
            "frame {i} spans lines: {payload:?}"
        );
        if payload == "[DONE]" {
            assert!(last, "frame {i} is [DONE] but frames follow it: {text:?}");
            end = Some(StreamEnd::Done);
            continue;
        }
        let v = json(payload.as_bytes(), &format!("frame {i}"));
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("frame {i} is not a JSON object: {payload}"));
        if let Some(err) = obj.get("error") {
            assert!(last, "frame {i} is an error but frames follow it: {text:?}");
            assert!(
                err.get("message").is_some_and(Value::is_string),
                "error frame without a message: {payload}"
            );
            end = Some(StreamEnd::Error);
            continue;
        }
        assert_eq!(
            obj.get("object").and_then(Value::as_str),
            Some("chat.completion.chunk"),
            "frame {i} is not a chunk: {payload}"
        );
        assert!(
            obj.get("id").is_some_and(Value::is_string)
                && obj.get("model").is_some_and(Value::is_string)
                && obj.get("choices").is_some_and(Value::is_array),
            "chunk frame {i} lacks id, model or choices: {payload}"
        );
    }
    let end =
        end.unwrap_or_else(|| panic!("stream ends with neither [DONE] nor an error: {text:?}"));
    // And it frames as SSE into exactly those payloads.
    let mut framer = SseFramer::new(usize::MAX);
    let mut events = Vec::new();
    framer
        .feed(out, &mut events)
        .and_then(|()| framer.finish(&mut events))
        .unwrap_or_else(|e| panic!("stream output does not frame as SSE: {e}"));
    let datas: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    let payloads: Vec<&str> = frames
        .iter()
        .map(|f| f.strip_prefix("data: ").unwrap_or(f))
        .collect();
    assert_eq!(datas, payloads, "SSE framing of the output disagrees");
    assert!(events.iter().all(|e| e.event.is_none() && e.id.is_none()));
    end
}

/// JSON equality where two floats may differ by one unit in the last
/// place: serde_json (without its `float_roundtrip` feature, as the gateway
/// builds it) parses some decimal texts one ULP off, so a value that goes
/// through serialize + parse can move by one ULP while denoting the same
/// number the client wrote. Everything else must match exactly.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x == y {
                return true;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y))
                    if x.is_finite() && y.is_finite() && x.signum() == y.signum() =>
                {
                    x.to_bits().abs_diff(y.to_bits()) <= 1
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Error types Anthropic documents (its `error.type`).
pub const ANTHROPIC_ERROR_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
];

/// `v` is Anthropic's error object: `{"type": "error", "error": {"type":
/// <a documented type>, "message": …}}`.
pub fn check_anthropic_error_value(v: &Value, what: &str) {
    assert_eq!(v["type"], "error", "{what}: not an Anthropic error: {v}");
    let ty = v["error"]["type"].as_str();
    assert!(
        ty.is_some_and(|t| ANTHROPIC_ERROR_TYPES.contains(&t)),
        "{what}: error type is not one of Anthropic's: {v}"
    );
    assert!(
        v["error"]["message"].is_string(),
        "{what}: error without a message: {v}"
    );
}

/// An `ApiError` with a status in `statuses`, rendered for a client of
/// `wire` (`Wire::render_error`) in that wire's error shape.
pub fn check_client_error(
    wire: Wire,
    e: &ApiError,
    statuses: std::ops::RangeInclusive<u16>,
    what: &str,
) {
    assert!(
        statuses.contains(&e.status),
        "{what}: status {} outside {statuses:?}: {e:?}",
        e.status
    );
    let body = wire.render_error(e);
    let what = format!("{what}: {wire:?} render_error");
    match wire {
        Wire::Anthropic => check_anthropic_error_value(&json(&body, &what), &what),
        Wire::OpenAiChat | Wire::OpenAiResponses | Wire::Gemini | Wire::Bedrock | Wire::Ernie => {
            check_openai_error_json(&body, &what)
        }
    }
}

/// One `event: <name>\ndata: <json>\n\n` frame of a stream written for an
/// Anthropic or Responses client.
pub struct NamedFrame {
    pub event: String,
    /// The `data:` line's text.
    pub text: String,
    pub data: Value,
}

/// Splits `out` into `event:`/`data:` frames (each exactly those two
/// lines, the data one line of JSON whose `type` is the event name),
/// checking that it frames as SSE into exactly those events.
pub fn named_frames(out: &[u8], what: &str) -> Vec<NamedFrame> {
    let text = std::str::from_utf8(out)
        .unwrap_or_else(|e| panic!("{what}: stream output is not UTF-8 ({e}): {out:?}"));
    assert!(
        text.ends_with("\n\n"),
        "{what}: stream output does not end with a complete frame: {text:?}"
    );
    let mut frames = Vec::new();
    for (i, frame) in text[..text.len() - 2].split("\n\n").enumerate() {
        let (head, data) = frame
            .split_once('\n')
            .unwrap_or_else(|| panic!("{what}: frame {i} is not two lines: {frame:?}"));
        let event = head
            .strip_prefix("event: ")
            .unwrap_or_else(|| panic!("{what}: frame {i} has no 'event: ' line: {frame:?}"));
        let data = data
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("{what}: frame {i} has no 'data: ' line: {frame:?}"));
        assert!(
            !event.is_empty() && !event.contains(['\n', '\r']) && !data.contains(['\n', '\r']),
            "{what}: frame {i} is malformed: {frame:?}"
        );
        let v = json(data.as_bytes(), &format!("{what}: frame {i}"));
        assert!(v.is_object(), "{what}: frame {i} is not an object: {data}");
        assert_eq!(
            v["type"].as_str(),
            Some(event),
            "{what}: frame {i}'s type is not its event name: {frame:?}"
        );
        frames.push(NamedFrame {
            event: event.to_string(),
            text: data.to_string(),
            data: v,
        });
    }
    let mut framer = SseFramer::new(usize::MAX);
    let mut events = Vec::new();
    framer
        .feed(out, &mut events)
        .and_then(|()| framer.finish(&mut events))
        .unwrap_or_else(|e| panic!("{what}: stream output does not frame as SSE: {e}"));
    assert_eq!(events.len(), frames.len(), "{what}: SSE framing disagrees");
    for (ev, f) in events.iter().zip(&frames) {
        assert_eq!(ev.event.as_deref(), Some(f.event.as_str()), "{what}");
        assert_eq!(ev.data, f.text, "{what}: SSE framing disagrees");
    }
    frames
}

/// Checks that `out` is a well-formed Anthropic Messages stream:
/// `message_start` (then anything), content blocks started with
/// consecutive indexes from 0, each delta for the open block and of its
/// kind, each block stopped before the next starts and before
/// `message_delta`; the end is `message_delta` + `message_stop`, or one
/// `error` event (which may also be the only frame: the provider failed
/// before anything was written). Returns how it ended.
pub fn check_anthropic_stream(out: &[u8]) -> StreamEnd {
    let what = "Anthropic stream";
    let frames = named_frames(out, what);
    let dump = || String::from_utf8_lossy(out).into_owned();
    let n = frames.len();
    assert!(n > 0, "{what}: empty");
    let mut open: Option<(u64, &str)> = None;
    let mut next_index = 0u64;
    let mut delta_seen = false;
    let mut end = None;
    for (i, f) in frames.iter().enumerate() {
        let last = i + 1 == n;
        let d = &f.data;
        assert!(end.is_none(), "{what}: frame {i} after the end: {}", dump());
        if i == 0 && f.event != "error" {
            assert_eq!(f.event, "message_start", "{what}: first frame: {}", dump());
        }
        match f.event.as_str() {
            "message_start" => {
                assert_eq!(i, 0, "{what}: message_start at frame {i}: {}", dump());
                let m = &d["message"];
                assert!(
                    m["id"].is_string()
                        && m["model"].is_string()
                        && m["role"] == "assistant"
                        && m["type"] == "message"
                        && m["content"] == Value::Array(Vec::new())
                        && m["usage"]["input_tokens"].is_u64()
                        && m["usage"]["output_tokens"].is_u64(),
                    "{what}: bad message_start: {d}"
                );
            }
            "ping" => {}
            "content_block_start" => {
                assert!(!delta_seen, "{what}: block after message_delta: {}", dump());
                assert!(
                    open.is_none(),
                    "{what}: block {i} starts while one is open: {}",
                    dump()
                );
                assert_eq!(
                    d["index"].as_u64(),
                    Some(next_index),
                    "{what}: block index: {}",
                    dump()
                );
                let b = &d["content_block"];
                let kind = match b["type"].as_str() {
                    Some("text") => {
                        assert_eq!(b["text"], "", "{what}: {d}");
                        "text"
                    }
                    Some("thinking") => {
                        assert!(
                            b["thinking"].is_string() && b["signature"].is_string(),
                            "{what}: {d}"
                        );
                        "thinking"
                    }
                    Some("tool_use") => {
                        assert!(
                            b["id"].is_string() && b["name"].is_string() && b["input"].is_object(),
                            "{what}: {d}"
                        );
                        "tool_use"
                    }
                    _ => panic!("{what}: unknown block: {d}"),
                };
                open = Some((next_index, kind));
                next_index += 1;
            }
            "content_block_delta" => {
                let (index, kind) = open
                    .unwrap_or_else(|| panic!("{what}: delta without an open block: {}", dump()));
                assert_eq!(
                    d["index"].as_u64(),
                    Some(index),
                    "{what}: delta index: {}",
                    dump()
                );
                let delta = &d["delta"];
                let (ty, key) = match kind {
                    "text" => ("text_delta", "text"),
                    "thinking" => ("thinking_delta", "thinking"),
                    _ => ("input_json_delta", "partial_json"),
                };
                assert!(
                    delta["type"] == ty && delta[key].is_string(),
                    "{what}: a {kind} block's delta is {delta}"
                );
            }
            "content_block_stop" => {
                let (index, _) = open
                    .take()
                    .unwrap_or_else(|| panic!("{what}: stop without an open block: {}", dump()));
                assert_eq!(
                    d["index"].as_u64(),
                    Some(index),
                    "{what}: stop index: {}",
                    dump()
                );
            }
            "message_delta" => {
                assert!(
                    open.is_none(),
                    "{what}: message_delta with a block open: {}",
                    dump()
                );
                assert!(!delta_seen, "{what}: two message_deltas: {}", dump());
                delta_seen = true;
                let reason = d["delta"]["stop_reason"].as_str();
                assert!(
                    matches!(
                        reason,
                        Some("end_turn" | "max_tokens" | "tool_use" | "refusal")
                    ),
                    "{what}: stop_reason: {d}"
                );
                let u = &d["usage"];
                assert!(
                    u["input_tokens"].is_u64() && u["output_tokens"].is_u64(),
                    "{what}: message_delta usage: {d}"
                );
            }
            "message_stop" => {
                assert!(
                    delta_seen,
                    "{what}: message_stop without message_delta: {}",
                    dump()
                );
                assert!(last, "{what}: frames after message_stop: {}", dump());
                end = Some(StreamEnd::Done);
            }
            "error" => {
                check_anthropic_error_value(d, what);
                assert!(last, "{what}: frames after the error: {}", dump());
                end = Some(StreamEnd::Error);
            }
            other => panic!("{what}: unknown event {other:?}: {}", dump()),
        }
    }
    end.unwrap_or_else(|| {
        panic!(
            "{what}: ends with neither message_stop nor an error: {}",
            dump()
        )
    })
}

/// One output item of a Responses stream, as its events told it.
struct StreamItem {
    id: String,
    kind: String,
    /// Text or argument deltas, concatenated.
    text: String,
}

/// Checks that `out` is a well-formed Responses stream: `sequence_number`
/// 0, 1, 2, … in order; `response.created` then `response.in_progress`;
/// output items added with consecutive `output_index`es, each closed
/// (`output_item.done`) before the next is added, deltas and `.done`
/// events naming an added item of their kind, `.done` texts equal to the
/// deltas so far; the end is `response.completed` / `response.incomplete` /
/// `response.failed`, whose response has the same id, one output item per
/// item added with the texts of all their deltas, or one `error` event
/// (carrying a nested `error` object: what makes the SDK raise), which may
/// also be the only frame. Returns how it ended.
pub fn check_responses_stream(out: &[u8]) -> StreamEnd {
    let what = "Responses stream";
    let frames = named_frames(out, what);
    let dump = || String::from_utf8_lossy(out).into_owned();
    let n = frames.len();
    assert!(n > 0, "{what}: empty");
    let mut items: Vec<StreamItem> = Vec::new();
    let mut open = false;
    let mut response_id = None;
    let mut end = None;
    for (i, f) in frames.iter().enumerate() {
        let last = i + 1 == n;
        let d = &f.data;
        assert!(end.is_none(), "{what}: frame {i} after the end: {}", dump());
        assert_eq!(
            d["sequence_number"].as_u64(),
            Some(i as u64),
            "{what}: sequence_number of frame {i}: {}",
            dump()
        );
        match (i, f.event.as_str()) {
            (_, "error") => {}
            (0, e) => assert_eq!(e, "response.created", "{what}: first frame: {}", dump()),
            (1, e) => assert_eq!(
                e,
                "response.in_progress",
                "{what}: second frame: {}",
                dump()
            ),
            _ => {}
        }
        // The item an item event names, checked against its id.
        let item_at = |items: &[StreamItem], kind: &[&str]| -> usize {
            let index = d["output_index"]
                .as_u64()
                .unwrap_or_else(|| panic!("{what}: no output_index: {d}"))
                as usize;
            let item = items
                .get(index)
                .unwrap_or_else(|| panic!("{what}: output_index {index} not added: {}", dump()));
            assert!(
                kind.contains(&item.kind.as_str()),
                "{what}: {d} for a {} item",
                item.kind
            );
            if let Some(id) = d.get("item_id") {
                assert_eq!(id.as_str(), Some(item.id.as_str()), "{what}: item_id: {d}");
            }
            index
        };
        match f.event.as_str() {
            "response.created" | "response.in_progress" => {
                assert!(i < 2, "{what}: {} at frame {i}: {}", f.event, dump());
                let r = &d["response"];
                assert_eq!(r["status"], "in_progress", "{what}: {d}");
                assert!(r["id"].is_string(), "{what}: {d}");
                if let Some(id) = &response_id {
                    assert_eq!(&r["id"], id, "{what}: response id changed: {}", dump());
                }
                response_id = Some(r["id"].clone());
            }
            "response.output_item.added" => {
                assert!(!open, "{what}: item added while one is open: {}", dump());
                assert_eq!(
                    d["output_index"].as_u64(),
                    Some(items.len() as u64),
                    "{what}: output_index of an added item: {}",
                    dump()
                );
                let item = &d["item"];
                let kind = item["type"].as_str().unwrap_or_default();
                assert!(
                    matches!(kind, "message" | "reasoning" | "function_call"),
                    "{what}: item type: {d}"
                );
                if kind == "function_call" {
                    assert!(
                        item["call_id"].is_string() && item["name"].is_string(),
                        "{what}: {d}"
                    );
                }
                items.push(StreamItem {
                    id: item["id"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{what}: item without id: {d}"))
                        .to_string(),
                    kind: kind.to_string(),
                    text: String::new(),
                });
                open = true;
            }
            "response.content_part.added" | "response.content_part.done" => {
                let at = item_at(&items, &["message"]);
                assert!(
                    open && at + 1 == items.len(),
                    "{what}: {d} for a closed item"
                );
                assert_eq!(d["part"]["type"], "output_text", "{what}: {d}");
                if f.event.ends_with("done") {
                    assert_eq!(
                        d["part"]["text"].as_str(),
                        Some(items[at].text.as_str()),
                        "{what}: {d}"
                    );
                }
            }
            "response.reasoning_summary_part.added" | "response.reasoning_summary_part.done" => {
                let at = item_at(&items, &["reasoning"]);
                assert!(
                    open && at + 1 == items.len(),
                    "{what}: {d} for a closed item"
                );
                assert_eq!(d["part"]["type"], "summary_text", "{what}: {d}");
                if f.event.ends_with("done") {
                    assert_eq!(
                        d["part"]["text"].as_str(),
                        Some(items[at].text.as_str()),
                        "{what}: {d}"
                    );
                }
            }
            "response.output_text.delta"
            | "response.reasoning_summary_text.delta"
            | "response.function_call_arguments.delta" => {
                let kind = match f.event.as_str() {
                    "response.output_text.delta" => "message",
                    "response.reasoning_summary_text.delta" => "reasoning",
                    _ => "function_call",
                };
                let at = item_at(&items, &[kind]);
                // Only a function call's arguments may come for an item
                // already closed (see `ResponsesWriter::tool_call_args`).
                assert!(
                    kind == "function_call" || (open && at + 1 == items.len()),
                    "{what}: {d} for a closed item"
                );
                let delta = d["delta"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}: delta not a string: {d}"));
                items[at].text.push_str(delta);
            }
            "response.output_text.done"
            | "response.reasoning_summary_text.done"
            | "response.function_call_arguments.done" => {
                let (kind, key) = match f.event.as_str() {
                    "response.output_text.done" => ("message", "text"),
                    "response.reasoning_summary_text.done" => ("reasoning", "text"),
                    _ => ("function_call", "arguments"),
                };
                let at = item_at(&items, &[kind]);
                assert!(
                    open && at + 1 == items.len(),
                    "{what}: {d} for a closed item"
                );
                assert_eq!(
                    d[key].as_str(),
                    Some(items[at].text.as_str()),
                    "{what}: {} is not its deltas: {}",
                    f.event,
                    dump()
                );
            }
            "response.output_item.done" => {
                let at = item_at(&items, &["message", "reasoning", "function_call"]);
                assert!(
                    open && at + 1 == items.len(),
                    "{what}: {d} for a closed item"
                );
                assert_eq!(
                    d["item"]["id"].as_str(),
                    Some(items[at].id.as_str()),
                    "{what}: {d}"
                );
                open = false;
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                assert!(last, "{what}: frames after {}: {}", f.event, dump());
                assert!(!open, "{what}: {} with an item open: {}", f.event, dump());
                let r = &d["response"];
                let status = &f.event["response.".len()..];
                assert_eq!(r["status"], status, "{what}: {d}");
                assert_eq!(
                    Some(&r["id"]),
                    response_id.as_ref(),
                    "{what}: response id: {d}"
                );
                let output = r["output"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{what}: output not an array: {d}"));
                assert_eq!(
                    output.len(),
                    items.len(),
                    "{what}: output items: {}",
                    dump()
                );
                for (item, o) in items.iter().zip(output) {
                    assert_eq!(o["id"].as_str(), Some(item.id.as_str()), "{what}: {d}");
                    assert_eq!(o["type"].as_str(), Some(item.kind.as_str()), "{what}: {d}");
                    let text = match item.kind.as_str() {
                        "message" => &o["content"][0]["text"],
                        "reasoning" => &o["summary"][0]["text"],
                        _ => &o["arguments"],
                    };
                    assert_eq!(
                        text.as_str(),
                        Some(item.text.as_str()),
                        "{what}: the final {} item is not its deltas: {}",
                        item.kind,
                        dump()
                    );
                }
                assert!(
                    r["usage"].is_null() || r["usage"]["total_tokens"].is_u64(),
                    "{what}: {d}"
                );
                end = Some(StreamEnd::Done);
            }
            "error" => {
                assert!(last, "{what}: frames after the error: {}", dump());
                assert!(
                    d["message"].is_string() && d["error"]["message"].is_string(),
                    "{what}: error event without a message or a nested error: {d}"
                );
                end = Some(StreamEnd::Error);
            }
            other => panic!("{what}: unknown event {other:?}: {}", dump()),
        }
    }
    end.unwrap_or_else(|| {
        panic!(
            "{what}: ends with neither a final response nor an error: {}",
            dump()
        )
    })
}
