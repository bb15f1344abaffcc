//! Passthrough Responses streams and bodies: usage and completeness.

use super::ctx;
use crate::wire::hub::{StreamWriter, Usage};
use crate::wire::pass_stream::{PassStream, Step, StreamWatcher};
use crate::wire::responses::{body_usage, ResponsesWatcher, ResponsesWriter};
use crate::wire::sse::SseEvent;

/// A stream as OpenAI sends it (shortened), with a response.completed.
const OPENAI_STREAM: &[u8] = b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"error\":null,\"output\":[],\"usage\":null}}\n\n\
event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"say \\\"response.completed\\\" and \\\"error\\\"\",\"logprobs\":[]}\n\n\
event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"error\":null,\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"hi\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":36,\"input_tokens_details\":{\"cached_tokens\":10},\"output_tokens\":87,\"output_tokens_details\":{\"reasoning_tokens\":64},\"total_tokens\":123}}}\n\n";

fn expected_usage() -> Usage {
    Usage {
        prompt_tokens: 36,
        completion_tokens: 87,
        total_tokens: 123,
        cached_tokens: Some(10),
        cache_creation_tokens: None,
        reasoning_tokens: Some(64),
    }
}

fn pass(chunks: &[&[u8]]) -> (Vec<u8>, PassStream) {
    let mut p = PassStream::new(Box::<ResponsesWatcher>::default());
    let mut out = Vec::new();
    for c in chunks {
        match p.feed(c) {
            Step::Same => out.extend_from_slice(c),
            Step::Bytes(b) => out.extend(b),
            Step::Broken { .. } => panic!("a good stream broke"),
        }
    }
    match p.finish() {
        Step::Same => {}
        Step::Bytes(b) => out.extend(b),
        Step::Broken { .. } => panic!("a good stream broke"),
    }
    (out, p)
}

#[test]
fn usage_and_end_of_a_passthrough_stream_at_every_split() {
    for k in 0..=OPENAI_STREAM.len() {
        let (a, b) = OPENAI_STREAM.split_at(k);
        let (out, p) = pass(&[a, b]);
        assert_eq!(out, OPENAI_STREAM, "split at {k}");
        assert!(p.complete(), "split at {k}");
        assert_eq!(p.usage(), Some(expected_usage()), "split at {k}");
    }
}

#[test]
fn a_stream_cut_before_its_end_is_incomplete() {
    let cut = OPENAI_STREAM
        .windows(25)
        .position(|w| w == b"event: response.completed")
        .unwrap();
    let (_, p) = pass(&[&OPENAI_STREAM[..cut]]);
    assert!(!p.complete());
    assert_eq!(p.usage(), None);
}

fn event(data: &str) -> SseEvent {
    SseEvent {
        event: None,
        data: data.into(),
        id: None,
    }
}

#[test]
fn failed_incomplete_and_error_events_end_the_stream() {
    for data in [
        r#"{"type":"response.failed","sequence_number":3,"response":{"status":"failed","error":{"code":"server_error","message":"x"},"usage":null}}"#,
        r#"{"type":"response.incomplete","response":{"status":"incomplete","usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}}}"#,
        r#"{"type":"error","sequence_number":1,"code":"server_error","message":"boom","param":null}"#,
    ] {
        let mut w = ResponsesWatcher::default();
        w.on_event(&event(
            r#"{"type":"response.in_progress","response":{"error":null,"usage":null}}"#,
        ));
        assert!(!w.complete());
        w.on_event(&event(data));
        assert!(w.complete(), "{data}");
    }
    let mut w = ResponsesWatcher::default();
    w.on_event(&event(
        r#"{"type":"response.incomplete","response":{"usage":{"input_tokens":1,"output_tokens":2}}}"#,
    ));
    let u = w.usage().unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (1, 2, 3)
    );
    // The event name serves when the data has no type.
    let mut w = ResponsesWatcher::default();
    w.on_event(&SseEvent {
        event: Some("error".into()),
        data: r#"{"error":{"message":"x"}}"#.into(),
        id: None,
    });
    assert!(w.complete());
}

#[test]
fn the_gateways_own_responses_streams_are_watched_too() {
    use crate::wire::hub::{FinishReason, StreamEvent};
    let mut w = ResponsesWriter::new(&ctx());
    let mut out = Vec::new();
    w.write(
        &StreamEvent::Text {
            choice: 0,
            text: "hi".into(),
        },
        &mut out,
    );
    w.write(
        &StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Stop,
        },
        &mut out,
    );
    let usage = Usage {
        cache_creation_tokens: Some(5),
        ..expected_usage()
    };
    w.write(&StreamEvent::Usage(usage), &mut out);
    w.finish(&mut out);
    let (_, p) = pass(&[&out]);
    assert!(p.complete());
    assert_eq!(p.usage(), Some(usage));
}

#[test]
fn usage_of_a_whole_response() {
    let body = br#"{"id":"resp_1","object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"{\"usage\":1}"}]}],
        "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":10},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":123}}"#;
    assert_eq!(body_usage(body), Some(expected_usage()));
    assert_eq!(body_usage(br#"{"usage":null}"#), None);
    assert_eq!(body_usage(br#"{"usage":{"output_tokens":3}}"#), None);
    assert_eq!(body_usage(br#"{"error":{"message":"x"}}"#), None);
    assert_eq!(body_usage(b"not json"), None);
    let u = body_usage(
        br#"{"usage":{"input_tokens":4,"output_tokens":1,"input_tokens_details":null}}"#,
    )
    .unwrap();
    assert_eq!((u.total_tokens, u.cached_tokens), (5, None));
}

#[test]
fn finish_reason_from_the_final_event_and_body() {
    use crate::wire::hub::FinishReason;
    use crate::wire::responses::body_outcome;
    let mut w = ResponsesWatcher::default();
    assert_eq!(w.finish(), None);
    w.on_event(&event(
        r#"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"content_filter"}}}"#,
    ));
    assert_eq!(w.finish(), Some(FinishReason::ContentFilter));
    assert_eq!(
        body_outcome(br#"{"status":"completed","output":[]}"#).1,
        Some(FinishReason::Stop)
    );
    assert_eq!(
        body_outcome(
            br#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}"#,
        )
        .1,
        Some(FinishReason::Length)
    );
    assert_eq!(body_outcome(br#"{"status":"in_progress"}"#).1, None);
}
