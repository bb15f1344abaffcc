//! `AnthropicWatcher` on Anthropic streams passed through, and
//! `body_usage` on Anthropic message bodies.

use super::anthropic_sse;
use crate::wire::anthropic::ingress::{body_usage, AnthropicWatcher};
use crate::wire::hub::Usage;
use crate::wire::pass_stream::{PassStream, Step, StreamWatcher};
use crate::wire::sse::SseEvent;
use serde_json::Value;

const PROVIDER_RESPONSES: &str =
    include_str!("../../../../../tests/fixtures/anthropic/responses.json");

/// Later counts replace earlier ones, field by field (CRLF line ends).
const OVERRIDE: &str = "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\r\n\r\n\
event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n\
event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"input_tokens\":7,\"cache_read_input_tokens\":3,\"output_tokens\":20}}\r\n\r\n\
event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

/// Feeds `chunks` through a passthrough stream; returns what went on, the
/// usage and whether the stream was complete.
fn pass(chunks: &[&[u8]]) -> (Vec<u8>, Option<Usage>, bool) {
    let mut p = PassStream::new(Box::<AnthropicWatcher>::default());
    let mut out = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let step = if i + 1 == chunks.len() {
            let mut s = vec![p.feed(c)];
            s.push(p.finish());
            s
        } else {
            vec![p.feed(c)]
        };
        for (j, st) in step.into_iter().enumerate() {
            match st {
                Step::Same if j == 0 => out.extend_from_slice(c),
                Step::Same => {}
                Step::Bytes(b) => out.extend(b),
                Step::Broken { good, .. } => out.extend(good),
            }
        }
    }
    (out, p.usage(), p.complete())
}

fn usage(prompt: u64, completion: u64, cached: Option<u64>, created: Option<u64>) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        cached_tokens: cached,
        cache_creation_tokens: created,
        reasoning_tokens: None,
    }
}

#[test]
fn watcher_on_fixture_streams_at_every_split() {
    let cases: &[(&str, Option<Usage>, bool)] = &[
        (
            "text.sse",
            Some(usage(1035, 15, Some(1000), Some(10))),
            true,
        ),
        ("thinking.sse", Some(usage(30, 40, None, None)), true),
        ("tool_use.sse", Some(usage(472, 89, None, None)), true),
        // message_delta's input and cache counts override message_start's.
        ("override", Some(usage(10, 20, Some(3), None)), true),
        // Cut short or failed: what was reported so far, never complete.
        ("cut.sse", Some(usage(8, 1, None, None)), false),
        ("error_midstream.sse", Some(usage(8, 1, None, None)), false),
    ];
    for (name, expected_usage, expected_complete) in cases {
        let body = match *name {
            "override" => OVERRIDE.as_bytes(),
            fixture => anthropic_sse(fixture).as_bytes(),
        };
        for k in 0..=body.len() {
            let (a, b) = body.split_at(k);
            let (out, u, complete) = pass(&[a, b]);
            assert_eq!(out, body, "{name}: split at {k}");
            assert_eq!(u, *expected_usage, "{name}: split at {k}");
            assert_eq!(complete, *expected_complete, "{name}: split at {k}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        let (out, u, complete) = pass(&bytes);
        assert_eq!(
            (out.as_slice(), u, complete),
            (body, *expected_usage, *expected_complete),
            "{name}: byte by byte"
        );
    }
}

#[test]
fn watcher_reads_the_type_when_events_are_unnamed() {
    let mut w = AnthropicWatcher::default();
    for data in [
        r#"{"type":"message_start","message":{"usage":{"input_tokens":4,"cache_creation_input_tokens":2,"output_tokens":1}}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"usage"}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#,
        "not json",
    ] {
        w.on_event(&SseEvent {
            event: None,
            data: data.into(),
            id: None,
        });
    }
    assert!(!w.complete());
    assert_eq!(w.usage(), Some(usage(6, 9, None, Some(2))));
    w.on_event(&SseEvent {
        event: None,
        data: r#"{"type":"message_stop"}"#.into(),
        id: None,
    });
    assert!(w.complete());
    assert_eq!(AnthropicWatcher::default().usage(), None);
}

#[test]
fn body_usage_of_fixture_bodies_and_their_prefixes() {
    let cases: Vec<Value> = serde_json::from_str(PROVIDER_RESPONSES).unwrap();
    let mut checked = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let Some(original) = case.get("anthropic") else {
            if let Some(Value::String(raw)) = case.get("raw") {
                assert_eq!(body_usage(raw.as_bytes()), None, "{name}");
            }
            continue;
        };
        let body = serde_json::to_vec(original).unwrap();
        let expected = original.get("usage").filter(|u| u.is_object()).map(|u| {
            let n = |k: &str| u[k].as_u64();
            let prompt = n("input_tokens").unwrap()
                + n("cache_read_input_tokens").unwrap_or(0)
                + n("cache_creation_input_tokens").unwrap_or(0);
            usage(
                prompt,
                n("output_tokens").unwrap(),
                n("cache_read_input_tokens"),
                n("cache_creation_input_tokens"),
            )
        });
        assert_eq!(body_usage(&body), expected, "{name}");
        // A body cut anywhere is not a body: no usage, no panic.
        for k in 0..body.len() {
            assert_eq!(body_usage(&body[..k]), None, "{name}: prefix {k}");
        }
        checked += 1;
    }
    assert!(checked >= 10);
    assert_eq!(
        body_usage(br#"{"type":"error","error":{"type":"api_error","message":"x"}}"#),
        None
    );
    assert_eq!(body_usage(br#"{"usage":{"output_tokens":3}}"#), None);
}

#[test]
fn finish_reason_from_message_delta_and_body() {
    use crate::wire::anthropic::ingress::body_outcome;
    use crate::wire::hub::FinishReason;
    let mut w = AnthropicWatcher::default();
    let delta = SseEvent {
        event: Some("message_delta".into()),
        data: r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":5}}"#.into(),
        ..Default::default()
    };
    w.on_event(&delta);
    assert_eq!(w.finish(), Some(FinishReason::ToolCalls));
    assert_eq!(
        body_outcome(br#"{"type":"message","stop_reason":"max_tokens","content":[]}"#).1,
        Some(FinishReason::Length)
    );
    assert_eq!(
        body_outcome(br#"{"type":"message","stop_reason":null}"#).1,
        None
    );
}

#[test]
fn a_stop_reason_that_is_not_utf8_leaves_the_usage_counted() {
    use crate::wire::anthropic::ingress::body_outcome;
    // Found by the `pass_stream` fuzz target: the one-parse read gave up on
    // the whole body and the tokens went uncounted.
    let body = b"{\"type\":\"message\",\"content\":[],\"stop_reason\":\"pause_\xd5turn\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}";
    let (usage, finish) = body_outcome(body);
    assert_eq!(usage, body_usage(body));
    assert_eq!(usage.map(|u| u.total_tokens), Some(3));
    assert_eq!(finish, None);
}
