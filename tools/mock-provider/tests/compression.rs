mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn chat(stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

fn anthropic_body(stream: bool) -> Value {
    json!({"model": "claude", "max_tokens": 100, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

fn gemini_body() -> Value {
    json!({"contents": [{"parts": [{"text": "hi"}]}]})
}

type Headers = Vec<(&'static str, &'static str)>;

/// (path, auth headers, body) for every provider API.
fn apis() -> Vec<(&'static str, Headers, Value)> {
    vec![
        ("/v1/chat/completions", vec![], chat(false)),
        (
            "/openai/deployments/d/chat/completions?api-version=2024-10-21",
            vec![("api-key", "k")],
            chat(false),
        ),
        (
            "/v1/messages",
            vec![("x-api-key", "k"), ("anthropic-version", "2023-06-01")],
            anthropic_body(false),
        ),
        (
            "/v1beta/models/g:generateContent",
            vec![("x-goog-api-key", "k")],
            gemini_body(),
        ),
        (
            "/v1/responses",
            vec![],
            json!({"model": "m", "input": "hi"}),
        ),
    ]
}

fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = base.to_vec();
    h.extend_from_slice(extra);
    h
}

#[test]
fn off_unless_asked_even_when_the_client_accepts_it() {
    let s = Server::start();
    let r = s.post(
        "/v1/chat/completions",
        &[("accept-encoding", "gzip, deflate, br")],
        &chat(false),
    );
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.json()["object"], "chat.completion");
    let r = s.post(
        "/v1/chat/completions",
        &[("accept-encoding", "gzip"), ("x-mock-encoding", "identity")],
        &chat(true),
    );
    assert_eq!(r.header("content-encoding"), None);
    openai_events(&r.text());
}

#[test]
fn auto_follows_accept_encoding_on_every_api() {
    let s = Server::start();
    let cases = [
        ("gzip, deflate", Some("gzip")),
        ("br, gzip", Some("gzip")),
        ("deflate, br", Some("br")),
        ("deflate", Some("deflate")),
        ("gzip;q=0.2, br;q=0.8", Some("br")),
        ("identity", None),
        ("zstd", None),
    ];
    for (path, auth, body) in apis() {
        let plain = s.post(path, &auth, &body);
        assert_eq!(plain.status, 200, "{path}");
        for (accept, expected) in cases {
            let h = with(
                &auth,
                &[("accept-encoding", accept), ("x-mock-encoding", "auto")],
            );
            let r = s.post(path, &h, &body);
            assert_eq!(r.status, 200, "{path} {accept}");
            assert_eq!(r.header("content-encoding"), expected, "{path} {accept}");
            assert_eq!(
                r.header("content-length"),
                Some(r.body.len().to_string().as_str()),
                "content-length is the compressed length"
            );
            let v = r.decoded_json();
            assert_eq!(
                v.as_object().map(|o| o.len()),
                plain.json().as_object().map(|o| o.len())
            );
        }
        // No accept-encoding at all: identity.
        let r = s.post(path, &with(&auth, &[("x-mock-encoding", "auto")]), &body);
        assert_eq!(r.header("content-encoding"), None);
    }
}

#[test]
fn forced_encodings_ignore_accept_encoding() {
    let s = Server::start();
    for (path, auth, body) in apis() {
        for enc in ["gzip", "deflate", "br"] {
            let h = with(
                &auth,
                &[("accept-encoding", "identity"), ("x-mock-encoding", enc)],
            );
            let r = s.post(path, &h, &body);
            assert_eq!(r.header("content-encoding"), Some(enc), "{path}");
            assert!(r.decoded_json().is_object());
        }
    }
    // HTTP "deflate" is zlib-wrapped: a zlib header (CMF 0x78).
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-encoding", "deflate")],
        &chat(false),
    );
    assert_eq!(r.body[0], 0x78);
    // gzip magic.
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-encoding", "gzip")],
        &chat(false),
    );
    assert_eq!(&r.body[..2], &[0x1f, 0x8b]);
}

/// Feed a compressed stream to a decoder one HTTP chunk at a time: every
/// chunk must decode, on its own arrival, to whole events (`sep`-terminated).
fn feed<W: Write>(
    mut d: W,
    chunks: &[Vec<u8>],
    sep: &str,
    take: impl Fn(&mut W) -> Vec<u8>,
) -> String {
    let mut decoded = Vec::new();
    for c in chunks {
        d.write_all(c).expect("decode");
        d.flush().expect("flush");
        decoded.extend(take(&mut d));
        let text = String::from_utf8(decoded.clone()).expect("utf-8");
        assert!(
            text.ends_with(sep),
            "chunk decodes to whole events: {text:?}"
        );
    }
    String::from_utf8(decoded).expect("utf-8")
}

fn assert_incremental(r: &Resp, sep: &str) -> String {
    assert!(r.chunked && r.complete);
    let text = match r.header("content-encoding").expect("compressed") {
        "gzip" => feed(
            flate2::write::GzDecoder::new(Vec::new()),
            &r.chunks,
            sep,
            |d| std::mem::take(d.get_mut()),
        ),
        "deflate" => feed(
            flate2::write::ZlibDecoder::new(Vec::new()),
            &r.chunks,
            sep,
            |d| std::mem::take(d.get_mut()),
        ),
        "br" => feed(
            brotli::DecompressorWriter::new(Vec::new(), 4096),
            &r.chunks,
            sep,
            |d| std::mem::take(d.get_mut()),
        ),
        other => panic!("unexpected encoding {other}"),
    };
    assert_eq!(
        text,
        r.decoded_text(),
        "the whole stream decodes to the same bytes"
    );
    text
}

#[test]
fn streams_are_compressed_event_by_event() {
    let s = Server::start();
    for enc in ["gzip", "deflate", "br"] {
        let r = s.post(
            "/v1/chat/completions",
            &[("x-mock-encoding", enc), ("x-mock-chunk-delay-ms", "20")],
            &chat(true),
        );
        assert_eq!(r.header("content-encoding"), Some(enc));
        assert_eq!(r.header("content-length"), None);
        let text = assert_incremental(&r, "\n\n");
        let events = openai_events(&text);
        assert!(events.len() >= 4);
        assert!(
            r.body_reads.len() >= 4,
            "events arrive as they are made: {:?}",
            r.body_reads
        );
    }

    let r = s.post(
        "/v1/messages",
        &[
            ("x-api-key", "k"),
            ("anthropic-version", "2023-06-01"),
            ("accept-encoding", "gzip"),
            ("x-mock-encoding", "auto"),
        ],
        &anthropic_body(true),
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    // message_start, block start, ping, 5 deltas, block stop, message_delta, message_stop.
    assert_eq!(anthropic_events(&assert_incremental(&r, "\n\n")).len(), 11);

    let r = s.post(
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        &[("x-goog-api-key", "k"), ("x-mock-encoding", "br")],
        &gemini_body(),
    );
    gemini_events(&assert_incremental(&r, "\r\n\r\n"));

    let r = s.post(
        "/v1/responses",
        &[("x-mock-encoding", "gzip")],
        &json!({"model": "m", "input": "hi", "stream": true}),
    );
    let events = responses_events(&assert_incremental(&r, "\n\n"));
    assert_eq!(
        events.last().map(|(n, _)| n.as_str()),
        Some("response.completed")
    );
}

#[test]
fn compressed_streams_keep_split_and_reset_semantics_on_the_wire() {
    let s = Server::start();
    // Frames of 5 compressed bytes.
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-encoding", "gzip"), ("x-mock-split-bytes", "5")],
        &chat(true),
    );
    assert!(r.complete);
    assert!(r.chunks[..r.chunks.len() - 1].iter().all(|c| c.len() == 5));
    openai_events(&r.decoded_text());

    // Reset after 2 events: what arrived decodes (sync-flushed) to 2 events.
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-encoding", "gzip"), ("x-mock-reset-after", "2")],
        &chat(true),
    );
    assert!(!r.complete);
    let mut d = flate2::write::GzDecoder::new(Vec::new());
    d.write_all(&r.body).expect("gzip");
    d.flush().expect("flush");
    let text = String::from_utf8(d.get_ref().clone()).expect("utf-8");
    assert_eq!(text.matches("data: ").count(), 2, "{text}");
}

#[test]
fn error_bodies_are_compressed_too() {
    let s = Server::start();
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-status", "429"), ("x-mock-encoding", "gzip")],
        &chat(false),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.decoded_json()["error"]["code"], "rate_limit_exceeded");

    let r = s.post(
        "/v1/messages",
        &[
            ("x-mock-encoding", "br"),
            ("x-mock-error-body", "upstream connect error"),
            ("x-mock-status", "503"),
        ],
        &anthropic_body(false),
    );
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.decoded_text(), "upstream connect error");

    // A validation error of the provider itself.
    let r = s.request(
        "POST",
        "/v1beta/models/g:generateContent",
        &[("x-goog-api-key", "k"), ("x-mock-encoding", "deflate")],
        "{}",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-encoding"), Some("deflate"));
    assert_eq!(r.decoded_json()["error"]["status"], "INVALID_ARGUMENT");
}

#[test]
fn compress_flag_makes_auto_the_default() {
    let s = Server::start_with(&["--compress"]);
    let r = s.post(
        "/v1/chat/completions",
        &[("accept-encoding", "gzip, deflate")],
        &chat(false),
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.decoded_json()["object"], "chat.completion");
    // Nothing accepted: identity.
    let r = s.post("/v1/chat/completions", &[], &chat(false));
    assert_eq!(r.header("content-encoding"), None);
    // The knob still wins.
    let r = s.post(
        "/v1/chat/completions",
        &[("accept-encoding", "gzip"), ("x-mock-encoding", "identity")],
        &chat(false),
    );
    assert_eq!(r.header("content-encoding"), None);
    // Even a knob error is compressed when the client accepts it.
    let r = s.post(
        "/v1/chat/completions",
        &[("accept-encoding", "br"), ("x-mock-encoding", "zstd")],
        &chat(false),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-encoding"), Some("br"));
    // The admin API never is.
    let r = s.request("GET", "/__mock/health", &[("accept-encoding", "gzip")], "");
    assert_eq!(r.text(), "ok");
}

#[test]
fn invalid_encoding_is_a_400_naming_the_knob() {
    let s = Server::start();
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-encoding", "zstd")],
        &chat(false),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .expect("message")
        .contains("x-mock-encoding"));
    assert!(r.total < Duration::from_secs(5));
}
