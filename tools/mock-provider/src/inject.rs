//! `x-mock-sse-inject`: malformed or in-band error events slipped into a
//! stream, framed the way each provider's stream is framed.

use bytes::Bytes;
use serde_json::Value;

use crate::common::to_json_line;
use crate::{anthropic, bedrock, ernie, gemini, openai, responses};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InjectKind {
    /// A `data:` line whose JSON is cut off.
    BadJson,
    /// An event whose JSON string holds the bytes 0xff 0xfe (invalid UTF-8).
    BadUtf8,
    /// A line with no field name and no colon.
    NoField,
    /// The provider's in-band error event; the stream ends after it.
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inject {
    pub kind: InjectKind,
    /// Inserted before the event with this 0-based index (at the end if past it).
    pub at: usize,
    /// `error:TYPE@N`: the Bedrock exception type (`:exception-type`) of the
    /// error; the other families ignore it.
    pub exception: Option<&'static str>,
}

impl Inject {
    /// `KIND@N`, or `error:TYPE@N` with TYPE one of `bedrock::EXCEPTIONS`.
    pub fn parse(s: &str) -> Option<Inject> {
        let (kind, at) = s.trim().split_once('@')?;
        let (kind, exception) = match kind.trim().split_once(':') {
            Some(("error", t)) => (
                "error",
                Some(*bedrock::EXCEPTIONS.iter().find(|e| **e == t.trim())?),
            ),
            Some(_) => return None,
            None => (kind.trim(), None),
        };
        let kind = match kind {
            "badjson" => InjectKind::BadJson,
            "badutf8" => InjectKind::BadUtf8,
            "nofield" => InjectKind::NoField,
            "error" => InjectKind::Error,
            _ => return None,
        };
        Some(Inject {
            kind,
            at: at.trim().parse().ok()?,
            exception,
        })
    }
}

/// How a stream is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wire {
    /// `data: {…}\n\n` (OpenAI-compatible and Azure chat completions).
    OpenAi,
    /// `event: X\ndata: {…}\n\n`.
    Anthropic,
    /// `event: X\ndata: {…}\n\n` with OpenAI Responses payloads.
    Responses,
    /// `data: {…}\r\n\r\n`.
    GeminiSse,
    /// One JSON array, element by element (`streamGenerateContent` without
    /// `alt=sse`); the events handed to `Ctx::stream` are the bare elements.
    GeminiArray,
    /// AWS event-stream binary messages (Bedrock `converse-stream`).
    Bedrock,
    /// `data: {…}\n\n` with ERNIE v1 chunks (no `[DONE]`).
    Ernie,
}

impl Wire {
    pub fn content_type(self) -> &'static str {
        match self {
            Wire::OpenAi | Wire::Anthropic | Wire::Responses => "text/event-stream; charset=utf-8",
            Wire::GeminiSse | Wire::Ernie => "text/event-stream",
            Wire::GeminiArray => "application/json; charset=UTF-8",
            Wire::Bedrock => crate::eventstream::CONTENT_TYPE,
        }
    }
}

/// Insert the injected event into `events`; `key` is the echoed credential.
pub fn apply(events: &mut Vec<Bytes>, wire: Wire, inject: Inject, key: Option<&str>) {
    let at = inject.at.min(events.len());
    if inject.kind == InjectKind::Error {
        events.truncate(at);
    }
    let event = match wire {
        Wire::Bedrock => bedrock::injected(inject.kind, inject.exception, key),
        _ => render(wire, inject.kind, at, key),
    };
    events.insert(at, event);
}

/// Bytes 0xff 0xfe inside a JSON string.
fn bad_utf8(before: &str, after: &str) -> Vec<u8> {
    [before.as_bytes(), b"bad \xff\xfe bytes", after.as_bytes()].concat()
}

fn render(wire: Wire, kind: InjectKind, at: usize, key: Option<&str>) -> Bytes {
    let (start, end, event_name): (&str, &str, Option<&str>) = match wire {
        Wire::OpenAi | Wire::Ernie => ("data: ", "\n\n", None),
        Wire::Anthropic => ("data: ", "\n\n", Some("content_block_delta")),
        Wire::Responses => ("data: ", "\n\n", Some("response.output_text.delta")),
        Wire::GeminiSse => ("data: ", "\r\n\r\n", None),
        Wire::GeminiArray | Wire::Bedrock => ("", "", None),
    };
    let (payload, event_name): (Vec<u8>, Option<&str>) = match kind {
        InjectKind::NoField => return Bytes::from(format!("garbage-line{end}")),
        InjectKind::BadJson => {
            let cut = match wire {
                Wire::OpenAi => r#"{"choices":[{"index":0,"delta":{"content":"#,
                Wire::Anthropic => r#"{"type":"content_block_delta","index":0,"delta":"#,
                Wire::Responses => r#"{"type":"response.output_text.delta","delta":"#,
                Wire::Ernie => r#"{"id":"as-mock","object":"chat.completion","result":"#,
                Wire::GeminiSse | Wire::GeminiArray | Wire::Bedrock => {
                    r#"{"candidates":[{"content":"#
                }
            };
            (cut.as_bytes().to_vec(), event_name)
        }
        InjectKind::BadUtf8 => {
            let bytes = match wire {
                Wire::OpenAi => bad_utf8(
                    r#"{"choices":[{"index":0,"delta":{"content":""#,
                    r#""},"finish_reason":null}]}"#,
                ),
                Wire::Anthropic => bad_utf8(
                    r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""#,
                    r#""}}"#,
                ),
                Wire::Responses => bad_utf8(
                    r#"{"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":""#,
                    r#""}"#,
                ),
                Wire::Ernie => bad_utf8(
                    r#"{"id":"as-mock","object":"chat.completion","is_end":false,"result":""#,
                    r#""}"#,
                ),
                Wire::GeminiSse | Wire::GeminiArray | Wire::Bedrock => bad_utf8(
                    r#"{"candidates":[{"content":{"role":"model","parts":[{"text":""#,
                    r#""}]},"index":0}]}"#,
                ),
            };
            (bytes, event_name)
        }
        InjectKind::Error => {
            let v: Value = match wire {
                Wire::OpenAi => openai::in_band_error(key),
                Wire::Anthropic => anthropic::in_band_error(key),
                Wire::Responses => responses::in_band_error(key, at),
                Wire::Ernie => ernie::in_band_error(key),
                Wire::GeminiSse | Wire::GeminiArray | Wire::Bedrock => gemini::in_band_error(key),
            };
            let name = matches!(wire, Wire::Anthropic | Wire::Responses).then_some("error");
            (to_json_line(&v).into_bytes(), name)
        }
    };
    let mut out = Vec::with_capacity(payload.len() + 64);
    if let Some(name) = event_name {
        out.extend_from_slice(format!("event: {name}\n").as_bytes());
    }
    out.extend_from_slice(start.as_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(end.as_bytes());
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_at_index() {
        assert_eq!(
            Inject::parse("badjson@2"),
            Some(Inject {
                kind: InjectKind::BadJson,
                at: 2,
                exception: None,
            })
        );
        assert_eq!(
            Inject::parse("error:throttlingException@3").and_then(|i| i.exception),
            Some("throttlingException")
        );
        assert_eq!(Inject::parse("error:bogusException@3"), None);
        assert_eq!(Inject::parse("badjson:throttlingException@3"), None);
        assert_eq!(
            Inject::parse("error@0").map(|i| i.kind),
            Some(InjectKind::Error)
        );
        assert_eq!(Inject::parse("error"), None);
        assert_eq!(Inject::parse("bogus@1"), None);
        assert_eq!(Inject::parse("nofield@x"), None);
    }

    #[test]
    fn error_ends_the_stream() {
        let mut events: Vec<Bytes> = (0..4)
            .map(|i| Bytes::from(format!("data: {i}\n\n")))
            .collect();
        apply(
            &mut events,
            Wire::OpenAi,
            Inject {
                kind: InjectKind::Error,
                at: 2,
                exception: None,
            },
            None,
        );
        assert_eq!(events.len(), 3);
        assert!(events[2].starts_with(b"data: {\"error\":"));
        let mut events = vec![Bytes::from_static(b"a")];
        apply(
            &mut events,
            Wire::GeminiArray,
            Inject {
                kind: InjectKind::NoField,
                at: 9,
                exception: None,
            },
            None,
        );
        assert_eq!(
            events,
            vec![
                Bytes::from_static(b"a"),
                Bytes::from_static(b"garbage-line")
            ]
        );
    }
}
