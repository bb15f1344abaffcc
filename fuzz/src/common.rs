//! Helpers shared by the checks: input headers, chunk plans, and the
//! validation of what the gateway writes to clients.

use llm_gateway::error::ApiError;
use llm_gateway::wire::sse::SseFramer;
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
    let v = json(&e.to_json(), &format!("{what}: ApiError::to_json"));
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
