//! `MessagesWriter`: hub event sequences → Anthropic stream events, and
//! Anthropic provider streams decoded to hub events and written back.

use super::{anthropic_sse, ctx, sse_frames};
use crate::error::ApiError;
use crate::wire::anthropic::ingress::MessagesWriter;
use crate::wire::anthropic::Anthropic;
use crate::wire::hub::{FinishReason, StreamDecoder, StreamEvent, StreamWriter, Translator, Usage};
use crate::wire::sse::{SseEvent, SseFramer};
use serde_json::{json, Value};

fn text(t: &str) -> StreamEvent {
    StreamEvent::Text {
        choice: 0,
        text: t.into(),
    }
}

fn reasoning(t: &str) -> StreamEvent {
    StreamEvent::Reasoning {
        choice: 0,
        text: t.into(),
    }
}

fn tool_start(index: u32, id: &str, name: &str) -> StreamEvent {
    StreamEvent::ToolCallStart {
        choice: 0,
        index,
        id: id.into(),
        name: name.into(),
    }
}

fn tool_args(index: u32, fragment: &str) -> StreamEvent {
    StreamEvent::ToolCallArgs {
        choice: 0,
        index,
        fragment: fragment.into(),
    }
}

fn finish(reason: FinishReason) -> StreamEvent {
    StreamEvent::Finish { choice: 0, reason }
}

fn usage(prompt: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        ..Usage::default()
    }
}

/// Writes `events`, then (when `end`) `finish()`; returns the frames.
fn write(events: &[StreamEvent], end: bool) -> (Vec<(String, Value)>, MessagesWriter) {
    let mut w = MessagesWriter::new(&ctx());
    let mut out = Vec::new();
    for e in events {
        w.write(e, &mut out);
    }
    if end {
        w.finish(&mut out);
    }
    (sse_frames(&out), w)
}

/// Event names, with the block index for block events: `cbs0`, `cbd0`, …
fn shape(frames: &[(String, Value)]) -> Vec<String> {
    frames
        .iter()
        .map(|(name, v)| {
            let short = match name.as_str() {
                "content_block_start" => "cbs",
                "content_block_delta" => "cbd",
                "content_block_stop" => "cbx",
                other => return other.to_string(),
            };
            format!("{short}{}", v["index"])
        })
        .collect()
}

#[test]
fn text_only() {
    let (f, w) = write(
        &[
            StreamEvent::Start {
                id: "msg_01abc".into(),
                model: "gpt-4o".into(),
            },
            text("Hel"),
            text(""),
            text("lo \"world\" é😀\n"),
            finish(FinishReason::Stop),
            StreamEvent::Usage(usage(12, 3)),
        ],
        true,
    );
    assert_eq!(
        shape(&f),
        [
            "message_start",
            "ping",
            "cbs0",
            "cbd0",
            "cbd0",
            "cbx0",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        f[0].1,
        json!({"type": "message_start", "message": {"id": "msg_01abc", "type": "message", "role": "assistant",
            "model": "gpt-4o", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 42, "output_tokens": 1}}})
    );
    assert_eq!(f[1].1, json!({"type": "ping"}));
    assert_eq!(
        f[2].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        f[4].1,
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo \"world\" é😀\n"}})
    );
    assert_eq!(f[5].1, json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(
        f[6].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"input_tokens": 12, "output_tokens": 3}})
    );
    assert_eq!(f[7].1, json!({"type": "message_stop"}));
    assert_eq!(w.usage(), Some(usage(12, 3)));
}

#[test]
fn thinking_then_text() {
    let (f, _) = write(
        &[
            reasoning("Let me "),
            reasoning("think."),
            text("42"),
            finish(FinishReason::Stop),
        ],
        true,
    );
    assert_eq!(
        shape(&f),
        [
            "message_start",
            "ping",
            "cbs0",
            "cbd0",
            "cbd0",
            "cbx0",
            "cbs1",
            "cbd1",
            "cbx1",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        f[2].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        f[3].1["delta"],
        json!({"type": "thinking_delta", "thinking": "Let me "})
    );
    assert_eq!(f[7].1["delta"], json!({"type": "text_delta", "text": "42"}));
    // No Start: the id comes from the request id, the model from the context.
    assert_eq!(f[0].1["message"]["id"], "msg_req-1");
    assert_eq!(f[0].1["message"]["model"], "target-model");
    // No usage from the provider: the estimate stands in.
    assert_eq!(
        f[9].1["usage"],
        json!({"input_tokens": 42, "output_tokens": 0})
    );
}

#[test]
fn text_then_two_tool_calls_with_split_arguments() {
    let (f, _) = write(
        &[
            StreamEvent::Start {
                id: "chatcmpl-9".into(),
                model: String::new(),
            },
            text("Checking."),
            tool_start(0, "call_a", "get_weather"),
            tool_args(0, "{\"ci"),
            tool_args(0, ""),
            tool_args(0, "ty\":\"Paris\"}"),
            tool_start(1, "call_b", "get_time"),
            tool_args(1, "{}"),
            StreamEvent::Usage(Usage {
                prompt_tokens: 100,
                completion_tokens: 20,
                total_tokens: 120,
                cached_tokens: Some(60),
                cache_creation_tokens: Some(30),
                reasoning_tokens: Some(5),
            }),
            finish(FinishReason::ToolCalls),
        ],
        true,
    );
    assert_eq!(
        shape(&f),
        [
            "message_start",
            "ping",
            "cbs0",
            "cbd0",
            "cbx0",
            "cbs1",
            "cbd1",
            "cbd1",
            "cbx1",
            "cbs2",
            "cbd2",
            "cbx2",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(f[0].1["message"]["id"], "msg_chatcmpl-9");
    assert_eq!(f[0].1["message"]["model"], "target-model");
    assert_eq!(
        f[5].1["content_block"],
        json!({"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {}})
    );
    let args: String = [&f[6].1, &f[7].1]
        .iter()
        .map(|v| {
            assert_eq!(v["delta"]["type"], "input_json_delta");
            v["delta"]["partial_json"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
    assert_eq!(f[9].1["content_block"]["id"], "call_b");
    assert_eq!(
        f[12].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 60, "output_tokens": 20}})
    );
}

#[test]
fn message_delta_waits_for_both_finish_and_usage() {
    // Usage first: the end goes out at Finish.
    let mut w = MessagesWriter::new(&ctx());
    let mut out = Vec::new();
    w.write(&text("a"), &mut out);
    w.write(&StreamEvent::Usage(usage(5, 1)), &mut out);
    assert!(!String::from_utf8_lossy(&out).contains("message_delta"));
    w.write(&finish(FinishReason::Length), &mut out);
    let f = sse_frames(&out);
    assert_eq!(f[f.len() - 2].1["delta"]["stop_reason"], "max_tokens");
    assert_eq!(f.last().unwrap().0, "message_stop");
    // Nothing after message_stop, whatever comes; usage is still tracked.
    let len = out.len();
    w.write(&text("late"), &mut out);
    w.write(&StreamEvent::Usage(usage(5, 9)), &mut out);
    w.finish(&mut out);
    assert_eq!(out.len(), len);
    assert_eq!(w.usage(), Some(usage(5, 9)));

    // Finish first: the block closes at once, the end waits for usage.
    let mut w = MessagesWriter::new(&ctx());
    let mut out = Vec::new();
    w.write(&text("a"), &mut out);
    w.write(&finish(FinishReason::ContentFilter), &mut out);
    assert_eq!(
        shape(&sse_frames(&out)),
        ["message_start", "ping", "cbs0", "cbd0", "cbx0"]
    );
    w.write(&StreamEvent::Usage(usage(7, 2)), &mut out);
    let f = sse_frames(&out);
    assert_eq!(
        shape(&f)[5..],
        ["message_delta".to_string(), "message_stop".to_string()]
    );
    assert_eq!(f[5].1["delta"]["stop_reason"], "refusal");
    assert_eq!(f[5].1["usage"]["output_tokens"], 2);
}

#[test]
fn error_mid_stream_ends_it() {
    let e = ApiError::new(529, "api_error", "Overloaded").with_code("overloaded_error");
    let (f, _) = write(&[text("Part"), StreamEvent::Error(e), text("more")], true);
    assert_eq!(
        shape(&f),
        ["message_start", "ping", "cbs0", "cbd0", "error"]
    );
    assert_eq!(
        f[4].1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    // An error before anything else is the only frame.
    let (f, _) = write(
        &[StreamEvent::Error(ApiError::new(502, "api_error", "bad"))],
        true,
    );
    assert_eq!(shape(&f), ["error"]);
}

#[test]
fn no_finish_still_ends_the_message() {
    let (f, _) = write(&[text("cut")], true);
    assert_eq!(
        shape(&f),
        [
            "message_start",
            "ping",
            "cbs0",
            "cbd0",
            "cbx0",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(f[5].1["delta"]["stop_reason"], "end_turn");
    // After a tool call the message ends as tool use.
    let (f, _) = write(&[tool_start(0, "c", "f"), tool_args(0, "{}")], true);
    assert_eq!(f[f.len() - 2].1["delta"]["stop_reason"], "tool_use");
    // A provider that sent nothing at all.
    let (f, _) = write(&[], true);
    assert_eq!(
        shape(&f),
        ["message_start", "ping", "message_delta", "message_stop"]
    );
}

#[test]
fn only_choice_zero_is_written() {
    let (f, _) = write(
        &[
            StreamEvent::Text {
                choice: 1,
                text: "other".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 1,
                index: 0,
                id: "x".into(),
                name: "f".into(),
            },
            StreamEvent::Finish {
                choice: 1,
                reason: FinishReason::Length,
            },
            text("mine"),
            finish(FinishReason::Stop),
        ],
        true,
    );
    let deltas: Vec<&Value> = f
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| &v["delta"]["text"])
        .collect();
    assert_eq!(deltas, [&json!("mine")]);
    assert_eq!(f[f.len() - 2].1["delta"]["stop_reason"], "end_turn");
}

#[test]
fn arguments_for_a_closed_tool_block_end_the_stream() {
    let (f, _) = write(
        &[
            tool_start(0, "a", "f"),
            tool_start(1, "b", "g"),
            tool_args(0, "{\"late\":1}"),
            tool_args(1, "{}"),
        ],
        true,
    );
    assert_eq!(
        shape(&f),
        ["message_start", "ping", "cbs0", "cbx0", "cbs1", "error"]
    );
    assert_eq!(f[5].1["error"]["type"], "api_error");
}

/// Framer → Anthropic provider decoder → `MessagesWriter`, chunk by chunk.
fn reencode<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut framer = SseFramer::new(1 << 16);
    let mut decoder = Anthropic::default().stream_decoder(&ctx());
    let mut writer = MessagesWriter::new(&ctx());
    let mut out = Vec::new();
    let mut events: Vec<SseEvent> = Vec::new();
    let mut hub = Vec::new();
    let mut deliver = |events: &mut Vec<SseEvent>,
                       decoder: &mut Box<dyn StreamDecoder>,
                       writer: &mut MessagesWriter,
                       out: &mut Vec<u8>| {
        for ev in events.drain(..) {
            decoder.on_event(&ev, &mut hub);
            for h in hub.drain(..) {
                writer.write(&h, out);
            }
        }
    };
    for chunk in chunks {
        framer.feed(chunk, &mut events).unwrap();
        deliver(&mut events, &mut decoder, &mut writer, &mut out);
    }
    framer.finish(&mut events).unwrap();
    deliver(&mut events, &mut decoder, &mut writer, &mut out);
    decoder.finish(&mut hub);
    for h in hub.drain(..) {
        writer.write(&h, &mut out);
    }
    writer.finish(&mut out);
    out
}

#[test]
fn provider_streams_reencoded_identically_at_every_split() {
    let cases: &[(&str, &[&str])] = &[
        (
            "text.sse",
            &[
                "message_start",
                "ping",
                "cbs0",
                "cbd0",
                "cbd0",
                "cbd0",
                "cbx0",
                "message_delta",
                "message_stop",
            ],
        ),
        (
            "thinking.sse",
            &[
                "message_start",
                "ping",
                "cbs0",
                "cbd0",
                "cbd0",
                "cbx0",
                "cbs1",
                "cbd1",
                "cbx1",
                "message_delta",
                "message_stop",
            ],
        ),
        (
            "tool_use.sse",
            &[
                "message_start",
                "ping",
                "cbs0",
                "cbd0",
                "cbx0",
                "cbs1",
                "cbd1",
                "cbd1",
                "cbx1",
                "cbs2",
                "cbd2",
                "cbx2",
                "cbs3",
                "cbd3",
                "cbx3",
                "cbs4",
                "cbd4",
                "cbx4",
                "message_delta",
                "message_stop",
            ],
        ),
        (
            "misc.sse",
            &[
                "message_start",
                "ping",
                "cbs0",
                "cbd0",
                "cbd0",
                "cbx0",
                "message_delta",
                "message_stop",
            ],
        ),
        (
            "error_midstream.sse",
            &["message_start", "ping", "cbs0", "cbd0", "error"],
        ),
        (
            "cut.sse",
            &["message_start", "ping", "cbs0", "cbd0", "error"],
        ),
        (
            "cut_mid_event.sse",
            &["message_start", "ping", "cbs0", "cbd0", "error"],
        ),
        ("malformed.sse", &["message_start", "ping", "error"]),
        ("orphan_json_delta.sse", &["message_start", "ping", "error"]),
    ];
    for (name, expected) in cases {
        let body = anthropic_sse(name).as_bytes();
        let whole = reencode([body]);
        assert_eq!(shape(&sse_frames(&whole)), *expected, "{name}");
        for k in 0..=body.len() {
            let (a, b) = body.split_at(k);
            assert_eq!(reencode([a, b]), whole, "{name}: split at byte {k}");
        }
        assert_eq!(reencode(body.chunks(1)), whole, "{name}: byte by byte");
    }
}

#[test]
fn provider_stream_content_survives_the_round_trip() {
    let f = sse_frames(&reencode([anthropic_sse("text.sse").as_bytes()]));
    assert_eq!(f[0].1["message"]["id"], "msg_text01");
    assert_eq!(f[0].1["message"]["model"], "claude-sonnet-4-5-20250929");
    let text: String = f
        .iter()
        .filter_map(|(_, v)| v["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello! Grüße 👋 How can I help?");
    // Input, cache writes and cache reads come back apart, as sent.
    assert_eq!(
        f[7].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"input_tokens": 25, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 1000, "output_tokens": 15}})
    );

    let f = sse_frames(&reencode([anthropic_sse("tool_use.sse").as_bytes()]));
    let tools: Vec<(Value, String)> = f
        .iter()
        .filter(|(_, v)| v["content_block"]["type"] == "tool_use")
        .map(|(_, v)| {
            let index = &v["index"];
            let args: String = f
                .iter()
                .filter(|(_, d)| &d["index"] == index && d["delta"]["type"] == "input_json_delta")
                .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
                .collect();
            (v["content_block"]["id"].clone(), args)
        })
        .collect();
    assert_eq!(
        tools,
        [
            (json!("toolu_01A"), "{\"city\": \"Paris\"}".to_string()),
            (json!("toolu_01B"), "{\"tz\":\"CET\"}".to_string()),
            (json!("toolu_01C"), "{}".to_string()),
        ]
    );
    assert_eq!(f[f.len() - 2].1["delta"]["stop_reason"], "tool_use");

    let f = sse_frames(&reencode([anthropic_sse("misc.sse").as_bytes()]));
    assert_eq!(f[f.len() - 2].1["delta"]["stop_reason"], "max_tokens");
    assert_eq!(
        f[f.len() - 2].1["usage"],
        json!({"input_tokens": 7, "cache_read_input_tokens": 3, "output_tokens": 20})
    );

    let f = sse_frames(&reencode([anthropic_sse("error_midstream.sse").as_bytes()]));
    assert_eq!(
        f.last().unwrap().1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
}
