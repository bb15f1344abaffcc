//! Responses the filter must not pass on as they came.

use super::*;
use std::io::Write;

pub(super) fn stream_error_counted(h: &RecordingHost) -> bool {
    h.metrics.iter().any(|m| {
        matches!(m, MetricOp::Counter { name, .. }
                if name.starts_with(crate::metrics::STREAM_ERRORS))
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn chat(stream: bool) -> (StreamFlow, RecordingHost) {
    let mut f = flow();
    let body = format!(
        r#"{{"model":"gpt-4o-mini","stream":{stream},"messages":[{{"role":"user","content":"x"}}]}}"#
    );
    let mut h = request("POST", "/v1/chat/completions", &body);
    h.request_headers
        .insert("accept-encoding".into(), "gzip, deflate".into());
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    // Providers are asked for plain bodies.
    assert!(!h.request_headers.contains_key("accept-encoding"));
    (f, h)
}

const COMPLETION: &[u8] = br#"{"id":"c","object":"chat.completion","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

#[test]
fn gzip_bodies_are_decoded_at_any_split() {
    let packed = gzip(COMPLETION);
    for cut in 0..=packed.len() {
        let (mut f, mut h) = chat(false);
        let out = respond_with(
            &mut f,
            &mut h,
            "200",
            &[
                ("content-encoding", "gzip"),
                ("content-type", "application/json"),
            ],
            &[&packed[..cut], &packed[cut..]],
        );
        assert_eq!(out, COMPLETION, "cut {cut}");
        assert!(!h.response_headers.contains_key("content-encoding"));
        assert_eq!(
            h.response_headers["content-length"],
            COMPLETION.len().to_string()
        );
        f.on_log(&mut h);
        assert_eq!(h.stream_values["llmgw.tokens_in"], "3");
    }
}

#[test]
fn gzip_errors_are_openai_errors_with_keys_redacted() {
    let (mut f, mut h) = chat(false);
    let body = gzip(br#"{"error":{"message":"bad key sk-upstream-secret","type":"x","param":"sk-upstream-secret","code":"invalid_api_key"}}"#);
    let out = respond_with(
        &mut f,
        &mut h,
        "401",
        &[("content-encoding", "gzip")],
        &[&body],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["message"], "bad key [redacted]");
    assert_eq!(v["error"]["param"], "[redacted]");
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(!h.response_headers.contains_key("content-encoding"));
}

#[test]
fn gzip_streams_are_decoded_and_a_corrupt_one_ends_in_an_error_event() {
    let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let packed = gzip(stream);
    let (mut f, mut h) = chat(true);
    let halves: Vec<&[u8]> = packed.chunks(packed.len() / 2 + 1).collect();
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[
            ("content-encoding", "gzip"),
            ("content-type", "text/event-stream"),
        ],
        &halves,
    );
    assert_eq!(out, stream);
    let (mut f, mut h) = chat(true);
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[
            ("content-encoding", "gzip"),
            ("content-type", "text/event-stream"),
        ],
        &[&packed[..packed.len() / 2], b"not gzip at all"],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("could not be decoded"), "{text}");
    f.on_log(&mut h);
    assert!(stream_error_counted(&h));
}

#[test]
fn undecodable_encodings_and_wrong_content_types_are_502s() {
    let (mut f, mut h) = chat(false);
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-encoding", "zstd")],
        &[b"\x28\xb5"],
    );
    assert_eq!(h.response_headers[":status"], "502");
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("'zstd'"));
    let (mut f, mut h) = chat(true);
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "text/html")],
        &[b"<html>", b"down</html>"],
    );
    assert_eq!(h.response_headers[":status"], "502");
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["code"], "upstream_invalid_response");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("<html>down</html>"));
}

#[test]
fn passthrough_bodies_that_are_not_json_are_502s() {
    for (body, needle) in [
        (&b"<html>portal</html>"[..], "not valid JSON"),
        (&b"{\"id\":\"x\",\"choices\":["[..], "ended before"),
    ] {
        let (mut f, mut h) = chat(false);
        let out = respond_with(&mut f, &mut h, "200", &[], &[body]);
        assert_eq!(h.response_headers[":status"], "502");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains(needle));
        assert_eq!(h.response_headers["content-length"], out.len().to_string());
    }
}

#[test]
fn an_invalid_answer_echoing_the_key_is_logged_redacted() {
    // A provider's 2xx that is not JSON goes to the log (and the client) as
    // an excerpt: the key it echoes must not.
    let (mut f, mut h) = chat(false);
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[],
        &[b"<html>your key sk-upstream-secret is bad</html>"],
    );
    assert_eq!(h.response_headers[":status"], "502");
    assert!(!String::from_utf8_lossy(&out).contains("sk-upstream-secret"));
    let logs = h.logs.borrow();
    assert!(logs.iter().any(|l| l.contains("[redacted]")), "{logs:?}");
    assert!(
        logs.iter().all(|l| !l.contains("sk-upstream-secret")),
        "{logs:?}"
    );
}

#[test]
fn a_passthrough_stream_cut_short_ends_with_an_error_frame() {
    let (mut f, mut h) = chat(true);
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "text/event-stream")],
        &[b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n"],
    );
    let text = String::from_utf8(out).unwrap();
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let v: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "upstream_stream_error");
    f.on_log(&mut h);
    assert!(stream_error_counted(&h));
}

#[test]
fn trailers_end_a_held_body() {
    let (mut f, mut h) = chat(false);
    h.response_headers.insert(":status".into(), "200".into());
    assert_eq!(f.on_response_headers(&mut h, false), Verdict::Pause);
    h.response_body = b"<html>".to_vec();
    assert_eq!(f.on_response_body(&mut h, 6, false), Verdict::Pause);
    assert_eq!(f.on_response_trailers(&mut h, 6), Verdict::Continue);
    assert_eq!(h.response_headers[":status"], "502");
    // A stream already went on: trailers only finish its accounting.
    let (mut f, mut h) = chat(true);
    h.response_headers.insert(":status".into(), "200".into());
    h.response_headers
        .insert("content-type".into(), "text/event-stream".into());
    assert_eq!(f.on_response_headers(&mut h, false), Verdict::Continue);
    h.response_body = br#"data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1}}

"#
    .to_vec();
    let n = h.response_body.len();
    f.on_response_body(&mut h, n, false);
    let sent = h.response_body.clone();
    f.on_response_trailers(&mut h, n);
    assert_eq!(h.response_body, sent, "nothing written at the trailers");
    assert_eq!(h.stream_values["llmgw.tokens_in"], "4");
}

#[test]
fn keys_are_masked_in_passthrough_bytes() {
    let (mut f, mut h) = chat(true);
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "text/event-stream")],
        &[
            b"data: {\"error\":{\"message\":\"key sk-upst",
            b"ream-secret is bad\"}}\n\ndata: [DONE]\n\n",
        ],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("sk-upstream-secret"), "{text}");
    assert!(text.contains("key ****************** is bad"), "{text}");
}
