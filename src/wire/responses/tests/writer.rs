//! The stream writer: event order, fields and the final response.

use super::{ctx, frames};
use crate::error::ApiError;
use crate::wire::hub::{
    ChatResponse, Choice, FinishReason, StreamEvent, StreamWriter, ToolCall, Usage,
};
use crate::wire::responses::{render_response, ResponsesWriter};
use serde_json::{json, Value};

fn run(events: &[StreamEvent]) -> Vec<(String, Value)> {
    let mut w = ResponsesWriter::new(&ctx());
    let mut out = Vec::new();
    for e in events {
        w.write(e, &mut out);
    }
    w.finish(&mut out);
    let f = frames(&out);
    for (i, (_, data)) in f.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "numbered from 0 without gaps");
    }
    f
}

fn names(f: &[(String, Value)]) -> Vec<&str> {
    f.iter().map(|(n, _)| n.as_str()).collect()
}

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

fn call(index: u32, id: &str, name: &str) -> StreamEvent {
    StreamEvent::ToolCallStart {
        choice: 0,
        index,
        id: id.into(),
        name: name.into(),
    }
}

fn args(index: u32, fragment: &str) -> StreamEvent {
    StreamEvent::ToolCallArgs {
        choice: 0,
        index,
        fragment: fragment.into(),
    }
}

fn finish(reason: FinishReason) -> StreamEvent {
    StreamEvent::Finish { choice: 0, reason }
}

fn usage() -> Usage {
    Usage {
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
        cached_tokens: Some(4),
        cache_creation_tokens: None,
        reasoning_tokens: Some(2),
    }
}

fn start() -> StreamEvent {
    StreamEvent::Start {
        id: "msg_up".into(),
        model: "claude-x".into(),
    }
}

#[test]
fn text_stream() {
    let f = run(&[
        start(),
        text("Hel"),
        text(""),
        text("lo"),
        finish(FinishReason::Stop),
        StreamEvent::Usage(usage()),
    ]);
    assert_eq!(
        names(&f),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let created = &f[0].1["response"];
    assert_eq!(created["id"], "resp_req1");
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["model"], "claude-x");
    assert_eq!(created["output"], json!([]));
    assert_eq!(created["usage"], Value::Null);
    assert_eq!(f[1].1["response"], *created);
    assert_eq!(
        f[2].1,
        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
               "item": {"id": "msg_req1_0", "type": "message", "status": "in_progress",
                        "role": "assistant", "content": []}})
    );
    assert_eq!(
        f[3].1,
        json!({"type": "response.content_part.added", "sequence_number": 3,
               "item_id": "msg_req1_0", "output_index": 0, "content_index": 0,
               "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
    );
    assert_eq!(
        f[4].1,
        json!({"type": "response.output_text.delta", "sequence_number": 4,
               "item_id": "msg_req1_0", "output_index": 0, "content_index": 0,
               "delta": "Hel", "logprobs": []})
    );
    assert_eq!(
        f[6].1,
        json!({"type": "response.output_text.done", "sequence_number": 6,
               "item_id": "msg_req1_0", "output_index": 0, "content_index": 0,
               "text": "Hello", "logprobs": []})
    );
    assert_eq!(f[7].1["part"]["text"], "Hello");
    let item = json!({"id": "msg_req1_0", "type": "message", "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}]});
    assert_eq!(f[8].1["item"], item);
    let done = &f[9].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"], json!([item]));
    assert_eq!(done["usage"]["input_tokens_details"]["cached_tokens"], 4);
    assert_eq!(done["usage"]["total_tokens"], 15);
}

#[test]
fn reasoning_then_text() {
    let f = run(&[
        reasoning("Think"),
        reasoning("ing."),
        text("Answer."),
        finish(FinishReason::Stop),
    ]);
    assert_eq!(
        names(&f),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    // The model is the context's when no Start names one.
    assert_eq!(f[0].1["response"]["model"], "up-model");
    assert_eq!(
        f[2].1["item"],
        json!({"id": "rs_req1_0", "type": "reasoning", "summary": []})
    );
    assert_eq!(
        f[3].1,
        json!({"type": "response.reasoning_summary_part.added", "sequence_number": 3,
               "item_id": "rs_req1_0", "output_index": 0, "summary_index": 0,
               "part": {"type": "summary_text", "text": ""}})
    );
    assert_eq!(
        f[4].1,
        json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 4,
               "item_id": "rs_req1_0", "output_index": 0, "summary_index": 0, "delta": "Think"})
    );
    assert_eq!(f[6].1["text"], "Thinking.");
    assert_eq!(
        f[7].1["part"],
        json!({"type": "summary_text", "text": "Thinking."})
    );
    assert_eq!(
        f[8].1["item"],
        json!({"id": "rs_req1_0", "type": "reasoning",
               "summary": [{"type": "summary_text", "text": "Thinking."}]})
    );
    assert_eq!(f[9].1["output_index"], 1);
    assert_eq!(f[11].1["item_id"], "msg_req1_1");
    assert_eq!(
        f[15].1["response"]["output"][1]["content"][0]["text"],
        "Answer."
    );
    assert_eq!(f[15].1["response"]["usage"], Value::Null);
}

#[test]
fn text_and_two_tool_calls_with_fragmented_arguments() {
    let events = [
        start(),
        text("Checking both."),
        call(0, "toolu_a", "get_weather"),
        args(0, "{\"ci"),
        args(0, ""),
        args(0, "ty\":\"Paris\"}"),
        call(1, "toolu_b", "get_weather"),
        args(1, "{\"city\":"),
        args(1, "\"Rome\"}"),
        finish(FinishReason::ToolCalls),
        StreamEvent::Usage(usage()),
    ];
    let f = run(&events);
    assert_eq!(
        names(&f)[7..],
        [
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(
        f[8].1["item"],
        json!({"id": "fc_req1_1", "type": "function_call", "status": "in_progress",
               "arguments": "", "call_id": "toolu_a", "name": "get_weather"})
    );
    assert_eq!(
        f[9].1,
        json!({"type": "response.function_call_arguments.delta", "sequence_number": 9,
               "item_id": "fc_req1_1", "output_index": 1, "delta": "{\"ci"})
    );
    assert_eq!(
        f[11].1,
        json!({"type": "response.function_call_arguments.done", "sequence_number": 11,
               "item_id": "fc_req1_1", "output_index": 1,
               "arguments": "{\"city\":\"Paris\"}", "name": "get_weather"})
    );
    assert_eq!(f[12].1["item"]["status"], "completed");
    assert_eq!(f[12].1["item"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(f[16].1["arguments"], "{\"city\":\"Rome\"}");
    // The final object is what the whole answer renders to.
    let whole = ChatResponse {
        id: String::new(),
        model: "claude-x".into(),
        created: 0,
        choices: vec![Choice {
            index: 0,
            content: Some("Checking both.".into()),
            reasoning: None,
            tool_calls: vec![
                ToolCall {
                    id: "toolu_a".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Paris\"}".into(),
                },
                ToolCall {
                    id: "toolu_b".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Rome\"}".into(),
                },
            ],
            finish_reason: Some(FinishReason::ToolCalls),
        }],
        usage: Some(usage()),
    };
    let rendered: Value = serde_json::from_slice(&render_response(&whole, &ctx())).unwrap();
    assert_eq!(f[18].1["response"], rendered);
}

#[test]
fn text_after_a_tool_call_is_a_new_message() {
    let f = run(&[text("a"), call(0, "c", "f"), args(0, "{}"), text("b")]);
    let output = &f.last().unwrap().1["response"]["output"];
    let kinds: Vec<&str> = output
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message", "function_call", "message"]);
    assert_eq!(output[2]["id"], "msg_req1_2");
    assert_eq!(output[2]["content"][0]["text"], "b");
}

#[test]
fn length_and_content_filter_end_incomplete() {
    for (reason, why) in [
        (FinishReason::Length, "max_output_tokens"),
        (FinishReason::ContentFilter, "content_filter"),
    ] {
        let f = run(&[text("Once"), finish(reason), StreamEvent::Usage(usage())]);
        let (name, last) = f.last().unwrap();
        assert_eq!(name, "response.incomplete");
        assert_eq!(last["response"]["status"], "incomplete");
        assert_eq!(
            last["response"]["incomplete_details"],
            json!({ "reason": why })
        );
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");
        let item_done = &f[f.len() - 2].1;
        assert_eq!(item_done["type"], "response.output_item.done");
        assert_eq!(item_done["item"]["status"], "incomplete");
        assert_eq!(last["response"]["usage"]["output_tokens"], 5);
    }
}

#[test]
fn an_empty_stream_still_completes() {
    let f = run(&[]);
    assert_eq!(
        names(&f),
        [
            "response.created",
            "response.in_progress",
            "response.completed"
        ]
    );
    assert_eq!(f[2].1["response"]["output"], json!([]));
}

#[test]
fn an_error_mid_stream_ends_it() {
    let mut w = ResponsesWriter::new(&ctx());
    let mut out = Vec::new();
    w.write(&text("partial"), &mut out);
    w.write(&StreamEvent::Usage(usage()), &mut out);
    let e = ApiError::new(529, "api_error", "Overloaded").with_code("overloaded_error");
    w.write(&StreamEvent::Error(e), &mut out);
    w.write(&text("late"), &mut out);
    w.finish(&mut out);
    let f = frames(&out);
    assert_eq!(
        names(&f),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "error",
        ]
    );
    assert_eq!(
        f[5].1,
        json!({"type": "error", "sequence_number": 5, "code": "overloaded_error",
               "message": "Overloaded", "param": null,
               "error": {"type": "api_error", "code": "overloaded_error",
                         "message": "Overloaded", "param": null}})
    );
    assert_eq!(w.usage(), Some(usage()));
    // An error frame asked for directly is numbered in the stream too.
    let mut w = ResponsesWriter::new(&ctx());
    let mut out = Vec::new();
    w.write(&text("x"), &mut out);
    let frame = w.error_frame(&ApiError::new(502, "api_error", "cut"));
    let f = frames(&frame);
    assert_eq!(f[0].1["sequence_number"], 5);
    w.finish(&mut out);
    w.write(&text("y"), &mut out);
    assert_eq!(frames(&out).len(), 5, "nothing after the error");
}

#[test]
fn other_choices_are_ignored() {
    let f = run(&[
        text("mine"),
        StreamEvent::Text {
            choice: 1,
            text: "other".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 1,
            index: 0,
            id: "c".into(),
            name: "f".into(),
        },
        StreamEvent::Finish {
            choice: 1,
            reason: FinishReason::Length,
        },
    ]);
    let last = &f.last().unwrap().1["response"];
    assert_eq!(last["status"], "completed");
    assert_eq!(last["output"].as_array().unwrap().len(), 1);
}

#[test]
fn a_late_fragment_for_a_closed_call_still_reaches_the_client() {
    let f = run(&[
        call(0, "a", "f"),
        args(0, "{\"x\":"),
        call(1, "b", "g"),
        args(0, "1}"),
        args(1, "{}"),
    ]);
    let late = f
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .nth(1)
        .unwrap();
    assert_eq!(late.1["item_id"], "fc_req1_0");
    assert_eq!(late.1["delta"], "1}");
    let output = &f.last().unwrap().1["response"]["output"];
    assert_eq!(output[0]["arguments"], "{\"x\":1}");
    assert_eq!(output[1]["arguments"], "{}");
}

#[test]
fn direct_delta_frames_are_valid_json_for_any_text() {
    for t in ["", "quote \" back \\ nl \n tab \t \u{1} é 😀", "</script>"] {
        let f = run(&[text(t), reasoning(t), call(0, "c", "f"), args(0, t)]);
        for (name, data) in &f {
            if name.ends_with(".delta") {
                assert_eq!(data["delta"], t);
            }
        }
    }
}
