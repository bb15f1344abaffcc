mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn openai_stream_body() -> Value {
    json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

fn anthropic_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("x-api-key", "k"), ("anthropic-version", "2023-06-01")];
    h.extend_from_slice(extra);
    h
}

fn anthropic_body(stream: bool) -> Value {
    json!({"model": "claude", "max_tokens": 100, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

fn openai_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[test]
fn content_replaces_the_reply_everywhere() {
    let s = Server::start();
    let h = [("x-mock-content", "custom reply")];
    let v = s
        .post(
            "/v1/chat/completions",
            &h,
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .json();
    assert_eq!(v["choices"][0]["message"]["content"], "custom reply");
    assert_eq!(v["usage"]["completion_tokens"], 2);
    let v = s
        .post(
            "/v1/messages",
            &anthropic_headers(&h),
            &anthropic_body(false),
        )
        .json();
    assert_eq!(v["content"][0]["text"], "custom reply");
    let v = s
        .post(
            "/v1beta/models/g:generateContent",
            &[("x-goog-api-key", "k"), h[0]],
            &json!({"contents": [{"parts": [{"text": "x"}]}]}),
        )
        .json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "custom reply"
    );
}

#[test]
fn status_with_custom_body_and_retry_after() {
    let s = Server::start();
    let body = r#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    let r = s.post(
        "/v1/chat/completions",
        &[
            ("x-mock-status", "429"),
            ("x-mock-error-body", body),
            ("x-mock-retry-after", "2"),
        ],
        &openai_stream_body(),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.text(), body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("retry-after"), Some("2"));

    let r = s.post(
        "/v1/chat/completions",
        &[
            ("x-mock-status", "502"),
            ("x-mock-error-body", "upstream connect error"),
        ],
        &openai_stream_body(),
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.text(), "upstream connect error");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

    // Default OpenAI 429 body; the status wins over validation and auth.
    let r = s.request(
        "POST",
        "/v1/chat/completions",
        &[("x-mock-status", "429")],
        "not json",
    );
    assert_eq!(r.status, 429);
    assert_eq!(
        r.json(),
        json!({"error": {"message": "Rate limit reached for requests. Please try again later.",
                         "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
    );
    assert_eq!(r.header("retry-after"), None);
}

#[test]
fn first_byte_delay() {
    let s = Server::start();
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-first-byte-ms", "300")],
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.headers_after >= Duration::from_millis(300),
        "{:?}",
        r.headers_after
    );
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-first-byte-ms", "200"), ("x-mock-status", "503")],
        &openai_stream_body(),
    );
    assert_eq!(r.status, 503);
    assert!(r.headers_after >= Duration::from_millis(200));
}

#[test]
fn chunk_chars_split_on_code_points() {
    let s = Server::start();
    let content = "héllo wörld 你好吗 🎉!";
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-content", content), ("x-mock-chunk-chars", "3")],
        &openai_stream_body(),
    );
    let events = openai_events(&r.text());
    let pieces: Vec<&str> = events[1..events.len() - 1]
        .iter()
        .map(|e| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .expect("content")
        })
        .collect();
    assert_eq!(pieces, ["hél", "lo ", "wör", "ld ", "你好吗", " 🎉!"]);

    let r = s.post(
        "/v1/messages",
        &anthropic_headers(&[("x-mock-content", content), ("x-mock-chunk-chars", "5")]),
        &anthropic_body(true),
    );
    let pieces: Vec<String> = anthropic_events(&r.text())
        .iter()
        .filter_map(|(_, e)| e["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(pieces, ["héllo", " wörl", "d 你好吗", " 🎉!"]);
}

#[test]
fn chunk_delay_spaces_events_out() {
    let s = Server::start();
    let r = s.post(
        "/v1/chat/completions",
        &[
            ("x-mock-content", "abcdefghijklmnop"),
            ("x-mock-chunk-delay-ms", "60"),
        ],
        &openai_stream_body(),
    );
    let events = openai_events(&r.text());
    // role + 2 content + finish + [DONE] = 5 events, 4 gaps.
    assert_eq!(events.len(), 4);
    assert!(r.total >= Duration::from_millis(240), "{:?}", r.total);
    assert!(
        r.headers_after < Duration::from_millis(200),
        "headers are not delayed: {:?}",
        r.headers_after
    );
    assert!(
        r.body_reads.len() >= 4,
        "events arrive separately: {:?}",
        r.body_reads
    );
}

#[test]
fn split_bytes_frames_are_exact_http_chunks() {
    let s = Server::start();
    let content = "ééééé ééééé ééééé ééééé ééééé ééééé ééééé ééééé";
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-content", content), ("x-mock-split-bytes", "7")],
        &openai_stream_body(),
    );
    assert_eq!(r.status, 200);
    assert!(r.chunked && r.complete);
    let (last, rest) = r.chunks.split_last().expect("chunks");
    assert!(rest.len() > 20);
    for c in rest {
        assert_eq!(c.len(), 7, "every frame but the last is exactly 7 bytes");
    }
    assert!(!last.is_empty() && last.len() <= 7);
    assert!(
        r.chunks.iter().any(|c| std::str::from_utf8(c).is_err()),
        "some frame cuts a UTF-8 code point"
    );
    assert!(
        r.body_reads.len() >= 2,
        "frames are flushed separately: {:?}",
        r.body_reads
    );
    // Reassembled, it is the ordinary stream.
    let events = openai_events(&r.text());
    assert_eq!(openai_text(&events), content);
}

#[test]
fn split_bytes_frames_arrive_as_separate_reads() {
    // With a delay between events, every event's frames are written and read
    // on their own: there are at least as many reads as events.
    let s = Server::start();
    let r = s.post(
        "/v1/messages",
        &anthropic_headers(&[
            ("x-mock-content", "one two three"),
            ("x-mock-split-bytes", "16"),
            ("x-mock-chunk-delay-ms", "30"),
        ]),
        &anthropic_body(true),
    );
    let events = anthropic_events(&r.text());
    assert_eq!(events.len(), 8);
    // Every event is longer than 16 bytes, so each one releases at least one frame.
    assert!(r.body_reads.len() >= 8, "{:?}", r.body_reads);
    assert!(r.chunks[..r.chunks.len() - 1].iter().all(|c| c.len() == 16));

    // Frames of one byte: each is an HTTP chunk of its own.
    let r = s.post(
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        &[
            ("x-goog-api-key", "k"),
            ("x-mock-split-bytes", "1"),
            ("x-mock-content", "Grüße"),
        ],
        &json!({"contents": [{"parts": [{"text": "x"}]}]}),
    );
    assert!(r.complete);
    assert_eq!(r.chunks.len(), r.body.len());
    assert!(r.chunks.iter().all(|c| c.len() == 1));
    let events = gemini_events(&r.text());
    assert_eq!(
        events[0]["candidates"][0]["content"]["parts"][0]["text"],
        "Grüße"
    );
}

#[test]
fn reset_after_aborts_the_connection() {
    let s = Server::start();
    let r = s.post(
        "/v1/chat/completions",
        &[
            ("x-mock-content", "a long enough reply to need many chunks"),
            ("x-mock-reset-after", "2"),
        ],
        &openai_stream_body(),
    );
    assert_eq!(r.status, 200);
    assert!(r.chunked);
    assert!(!r.complete, "no terminating chunk");
    assert!(r.abort.is_some());
    let text = String::from_utf8(r.body.clone()).expect("utf8");
    assert_eq!(text.matches("data: ").count(), 2, "{text}");
    assert!(text.ends_with("\n\n"));
    assert!(!text.contains("[DONE]"));

    // Anthropic, combined with split frames.
    let r = s.post(
        "/v1/messages",
        &anthropic_headers(&[("x-mock-reset-after", "3"), ("x-mock-split-bytes", "10")]),
        &anthropic_body(true),
    );
    assert!(!r.complete);
    let text = String::from_utf8(r.body.clone()).expect("utf8");
    assert_eq!(text.matches("event: ").count(), 3, "{text}");
    assert!(text.ends_with("event: ping\ndata: {\"type\":\"ping\"}\n\n"));

    // Reset after 0 events: headers, then nothing.
    let r = s.post(
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        &[("x-goog-api-key", "k"), ("x-mock-reset-after", "0")],
        &json!({"contents": [{"parts": [{"text": "x"}]}]}),
    );
    assert_eq!(r.status, 200);
    assert!(!r.complete && r.body.is_empty());

    // More than the number of events: everything, then the abort.
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-reset-after", "100")],
        &openai_stream_body(),
    );
    assert!(!r.complete);
    assert!(String::from_utf8(r.body.clone())
        .expect("utf8")
        .ends_with("data: [DONE]\n\n"));

    // The server is fine afterwards, and non-stream requests ignore the knob.
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-reset-after", "1")],
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(r.status, 200);
    assert!(r.complete);
}

#[test]
fn reset_closes_the_connection_mid_body() {
    let s = Server::start();
    let mut conn = s.conn();
    let r = conn.send(
        "POST",
        "/v1/chat/completions",
        &[("x-mock-reset-after", "1"), ("x-mock-chunk-delay-ms", "50")],
        openai_stream_body().to_string().as_bytes(),
    );
    assert!(!r.complete);
    // The connection is closed under the client (not kept alive) right after
    // the first event: end of stream without the terminating chunk.
    assert_eq!(
        r.abort,
        Some(std::io::ErrorKind::UnexpectedEof),
        "{:?}",
        r.abort
    );
    assert!(r.total < Duration::from_millis(1000));
    assert_eq!(
        String::from_utf8(r.body)
            .expect("utf8")
            .matches("data: ")
            .count(),
        1
    );
}

#[test]
fn invalid_knobs_are_reported_in_the_provider_format() {
    let s = Server::start();
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-chunk-chars", "lots")],
        &openai_stream_body(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(r.json()["error"]["message"]
        .as_str()
        .expect("msg")
        .contains("x-mock-chunk-chars"));
    let r = s.post(
        "/v1/messages",
        &anthropic_headers(&[("x-mock-status", "42")]),
        &anthropic_body(false),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["type"], "error");
    let r = s.post(
        "/v1beta/models/g:generateContent",
        &[("x-goog-api-key", "k"), ("x-mock-split-bytes", "0")],
        &json!({"contents": [{"parts": [{"text": "x"}]}]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
}

#[test]
fn status_can_be_scoped_to_one_provider_api() {
    let s = Server::start();
    let h = [
        ("x-mock-status", "503"),
        ("x-mock-status-path-prefix", "/v1/chat/"),
    ];
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    assert_eq!(s.post("/v1/chat/completions", &h, &chat).status, 503);
    let mut ah = anthropic_headers(&h);
    ah.push(("x-mock-content", "fine"));
    let r = s.post("/v1/messages", &ah, &anthropic_body(false));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["content"][0]["text"], "fine");
}

#[test]
fn end_after_stops_a_stream_cleanly_before_its_end() {
    let s = Server::start();
    let h = [("x-mock-end-after", "2"), ("x-mock-chunk-chars", "4")];
    let r = s.post("/v1/chat/completions", &h, &openai_stream_body());
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(!text.contains("[DONE]"), "{text}");
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e["choices"][0]["finish_reason"].is_null()));
    let r = s.post(
        "/v1/messages",
        &anthropic_headers(&h),
        &anthropic_body(true),
    );
    let events = anthropic_events(&r.text());
    assert_eq!(events.len(), 2);
    assert!(!events.iter().any(|(name, _)| name == "message_stop"));
}
