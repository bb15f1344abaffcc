//! Samples of this edge's output for the openai SDK to parse
//! (`tests/fixtures/responses/sdk_check.py`). The committed file must match
//! what the code renders now; `UPDATE_SDK_SAMPLES=1` rewrites it.

use super::ctx;
use crate::error::ApiError;
use crate::wire::anthropic::Anthropic;
use crate::wire::hub::{
    ChatResponse, Choice, FinishReason, StreamEvent, StreamWriter, ToolCall, Translator, Usage,
};
use crate::wire::responses::{render_response, stream_error, ResponsesWriter};
use crate::wire::stream::StreamTranslation;
use serde_json::{json, Value};

const SAMPLES_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/responses/sdk_samples.json"
);

fn usage() -> Usage {
    Usage {
        prompt_tokens: 100,
        completion_tokens: 40,
        total_tokens: 140,
        cached_tokens: Some(60),
        cache_creation_tokens: Some(10),
        reasoning_tokens: Some(12),
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

fn whole(choice: Choice, usage: Option<Usage>) -> Value {
    let r = ChatResponse {
        id: "up".into(),
        model: "claude-x".into(),
        created: 1,
        choices: vec![choice],
        usage,
    };
    serde_json::from_slice(&render_response(&r, &ctx())).unwrap()
}

fn stream(events: &[StreamEvent]) -> String {
    let mut w = ResponsesWriter::new(&ctx());
    let mut out = Vec::new();
    for e in events {
        w.write(e, &mut out);
    }
    w.finish(&mut out);
    String::from_utf8(out).unwrap()
}

fn text(t: &str) -> StreamEvent {
    StreamEvent::Text {
        choice: 0,
        text: t.into(),
    }
}

fn finish(reason: FinishReason) -> StreamEvent {
    StreamEvent::Finish { choice: 0, reason }
}

fn samples() -> Value {
    let responses = json!([
        {"name": "reasoning, text and two calls", "output_text": "Checking.",
         "response": whole(Choice {
            content: Some("Checking.".into()),
            reasoning: Some("Two lookups.".into()),
            tool_calls: vec![call("toolu_1", "get_weather", "{\"city\":\"Paris\"}"),
                             call("toolu_2", "get_time", "{}")],
            finish_reason: Some(FinishReason::ToolCalls),
            ..Choice::default()
         }, Some(usage()))},
        {"name": "cut at max_output_tokens", "output_text": "Once upon a",
         "response": whole(Choice {
            content: Some("Once upon a".into()),
            finish_reason: Some(FinishReason::Length),
            ..Choice::default()
         }, Some(usage()))},
        {"name": "blocked, no usage", "output_text": "",
         "response": whole(Choice {
            finish_reason: Some(FinishReason::ContentFilter),
            ..Choice::default()
         }, None)},
    ]);
    let tool_calls = [
        text("Checking both."),
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "toolu_a".into(),
            name: "get_weather".into(),
        },
        StreamEvent::ToolCallArgs {
            choice: 0,
            index: 0,
            fragment: "{\"city\":".into(),
        },
        StreamEvent::ToolCallArgs {
            choice: 0,
            index: 0,
            fragment: "\"Paris\"}".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 1,
            id: "toolu_b".into(),
            name: "get_time".into(),
        },
        StreamEvent::ToolCallArgs {
            choice: 0,
            index: 1,
            fragment: "{}".into(),
        },
        finish(FinishReason::ToolCalls),
        StreamEvent::Usage(usage()),
    ];
    let thinking = {
        let sse = include_bytes!("../../../../tests/fixtures/anthropic/thinking.sse");
        let mut t = StreamTranslation::new(
            Anthropic::default().stream_decoder(&ctx()),
            Box::new(ResponsesWriter::new(&ctx())),
        );
        let mut out = t.feed(sse);
        out.extend(t.finish());
        String::from_utf8(out).unwrap()
    };
    let overloaded = ApiError::new(529, "api_error", "Overloaded").with_code("overloaded_error");
    let streams = json!([
        {"name": "text", "output_text": "Hello, world", "sse": stream(&[
            StreamEvent::Start { id: "x".into(), model: "claude-x".into() },
            text("Hello"), text(", world"), finish(FinishReason::Stop), StreamEvent::Usage(usage())])},
        {"name": "reasoning then text", "output_text": "4", "sse": stream(&[
            StreamEvent::Reasoning { choice: 0, text: "2+2".into() },
            StreamEvent::Reasoning { choice: 0, text: " is 4".into() },
            text("4"), finish(FinishReason::Stop)])},
        {"name": "text and two tool calls", "output_text": "Checking both.", "sse": stream(&tool_calls)},
        {"name": "incomplete", "output_text": "Once", "sse": stream(&[
            text("Once"), finish(FinishReason::Length), StreamEvent::Usage(usage())])},
        {"name": "anthropic thinking fixture", "output_text": "12,231", "sse": thinking},
        {"name": "error mid-stream", "error": "Overloaded", "sse": stream(&[
            text("Partial"), StreamEvent::Error(overloaded.clone())])},
        {"name": "error before anything", "error": "Overloaded",
         "sse": String::from_utf8(stream_error(&overloaded)).unwrap()},
    ]);
    json!({"responses": responses, "streams": streams})
}

#[test]
fn sdk_samples_are_current() {
    let mut now = serde_json::to_string_pretty(&samples()).unwrap();
    now.push('\n');
    if std::env::var_os("UPDATE_SDK_SAMPLES").is_some() {
        std::fs::write(SAMPLES_PATH, &now).unwrap();
    }
    let committed = std::fs::read_to_string(SAMPLES_PATH).unwrap_or_default();
    assert!(
        committed == now,
        "{SAMPLES_PATH} is stale: rerun with UPDATE_SDK_SAMPLES=1, then the SDK check"
    );
}
