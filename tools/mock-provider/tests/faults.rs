//! The fault knobs: connection resets, truncated and stalled bodies, content
//! types and raw bodies, malformed stream events, oversize events, echoed keys
//! and connection closes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const KEY: &str = "sk-secret-123456";

/// One provider API: path, auth headers, non-stream body, stream path and body.
struct Api {
    name: &'static str,
    path: &'static str,
    auth: Vec<(&'static str, &'static str)>,
    body: Value,
    stream_path: &'static str,
    stream_body: Value,
}

fn apis() -> Vec<Api> {
    let chat = |stream: bool| json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    let anthropic = |stream: bool| {
        json!({"model": "claude", "max_tokens": 100, "stream": stream,
               "messages": [{"role": "user", "content": "hi"}]})
    };
    let gemini = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    vec![
        Api {
            name: "openai",
            path: "/v1/chat/completions",
            auth: vec![("authorization", "Bearer sk-secret-123456")],
            body: chat(false),
            stream_path: "/v1/chat/completions",
            stream_body: chat(true),
        },
        Api {
            name: "azure",
            path: "/openai/deployments/d/chat/completions?api-version=2024-10-21",
            auth: vec![("api-key", KEY)],
            body: chat(false),
            stream_path: "/openai/deployments/d/chat/completions?api-version=2024-10-21",
            stream_body: chat(true),
        },
        Api {
            name: "anthropic",
            path: "/v1/messages",
            auth: vec![("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
            body: anthropic(false),
            stream_path: "/v1/messages",
            stream_body: anthropic(true),
        },
        Api {
            name: "gemini",
            path: "/v1beta/models/g:generateContent",
            auth: vec![("x-goog-api-key", KEY)],
            body: gemini.clone(),
            stream_path: "/v1beta/models/g:streamGenerateContent?alt=sse",
            stream_body: gemini,
        },
        Api {
            name: "responses",
            path: "/v1/responses",
            auth: vec![("authorization", "Bearer sk-secret-123456")],
            body: json!({"model": "m", "input": "hi"}),
            stream_path: "/v1/responses",
            stream_body: json!({"model": "m", "input": "hi", "stream": true}),
        },
    ]
}

impl Api {
    fn headers<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut h = self.auth.clone();
        h.extend_from_slice(extra);
        h
    }

    fn post(&self, s: &Server, extra: &[(&str, &str)]) -> Resp {
        s.post(self.path, &self.headers(extra), &self.body)
    }

    fn stream(&self, s: &Server, extra: &[(&str, &str)]) -> Resp {
        s.post(self.stream_path, &self.headers(extra), &self.stream_body)
    }

    /// Bytes of one SSE event separator on this API's wire.
    fn sep(&self) -> &'static str {
        if self.name == "gemini" {
            "\r\n\r\n"
        } else {
            "\n\n"
        }
    }
}

#[test]
fn reset_before_headers_closes_without_an_answer() {
    let s = Server::start();
    for api in apis() {
        let mut conn = s.conn();
        let r = conn.try_send(
            "POST",
            api.path,
            &api.headers(&[("x-mock-reset-before-headers", "1")]),
            api.body.to_string().as_bytes(),
        );
        let err = r
            .err()
            .unwrap_or_else(|| panic!("{}: got an answer", api.name));
        assert!(
            matches!(
                err,
                Some(std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset)
            ),
            "{}: {err:?}",
            api.name
        );
    }
    // The request was read (and recorded) before the close.
    let recorded = s.get("/__mock/requests").json();
    assert_eq!(recorded.as_array().map(Vec::len), Some(5));

    // With a first-byte delay, the close comes after the delay.
    let mut conn = s.conn();
    let start = Instant::now();
    let r = conn.try_send(
        "POST",
        "/v1/chat/completions",
        &[
            ("x-mock-reset-before-headers", "true"),
            ("x-mock-first-byte-ms", "200"),
        ],
        b"{}",
    );
    assert!(r.is_err());
    assert!(start.elapsed() >= Duration::from_millis(200));
    // "0" turns it off.
    let r = apis()[0].post(&s, &[("x-mock-reset-before-headers", "0")]);
    assert_eq!(r.status, 200);
}

#[test]
fn reset_mid_body_sends_part_of_the_body_under_the_full_length() {
    let s = Server::start();
    for api in apis() {
        let full = api.post(&s, &[]);
        let r = api.post(&s, &[("x-mock-reset-mid-body", "10")]);
        assert_eq!(r.status, 200, "{}", api.name);
        let announced: usize = r
            .header("content-length")
            .expect("content-length")
            .parse()
            .expect("number");
        // The ids count up, so compare lengths and the common prefix.
        assert!(
            announced.abs_diff(full.body.len()) <= 2,
            "{}: full length",
            api.name
        );
        assert!(!r.complete, "{}", api.name);
        assert_eq!(r.body.len(), 10, "{}: {:?}", api.name, r.text());
        assert_eq!(r.body[..], full.body[..10], "{}", api.name);
        assert_eq!(r.abort, Some(std::io::ErrorKind::UnexpectedEof));
    }
    // Error answers too; N = 0 sends the headers only.
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-status", "500"), ("x-mock-reset-mid-body", "0")],
        &json!({}),
    );
    assert_eq!(r.status, 500);
    assert!(!r.complete && r.body.is_empty());
    assert!(r.header("content-length").is_some_and(|l| l != "0"));
    // N past the end: the whole body, then the close (announced).
    let mut conn = s.conn();
    let r = conn.send(
        "POST",
        "/v1/chat/completions",
        &[("x-mock-reset-mid-body", "100000")],
        apis()[0].body.to_string().as_bytes(),
    );
    assert!(r.complete);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.closed_by_peer(Duration::from_secs(5)));
    // Streams ignore it.
    let r = apis()[0].stream(&s, &[("x-mock-reset-mid-body", "5")]);
    assert!(r.complete);
}

#[test]
fn truncate_body_sends_a_well_framed_prefix() {
    for (i, api) in apis().into_iter().enumerate() {
        // A fresh server each, so the ids match the untruncated answer's.
        let s = Server::start();
        let r = api.post(&s, &[("x-mock-truncate-body", "25")]);
        let t = Server::start();
        let full = api.post(&t, &[]);
        assert_eq!(r.status, 200, "{}", api.name);
        assert!(r.complete);
        assert_eq!(r.header("content-length"), Some("25"));
        assert_eq!(r.body[..], full.body[..25], "{} ({i})", api.name);
        assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    }
    let s = Server::start();
    // Errors are left alone, as are streams.
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-status", "429"), ("x-mock-truncate-body", "5")],
        &json!({}),
    );
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let r = apis()[2].stream(&s, &[("x-mock-truncate-body", "5")]);
    anthropic_events(&r.text());
    // 0: an empty 200.
    let r = apis()[0].post(&s, &[("x-mock-truncate-body", "0")]);
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.complete && r.body.is_empty());
    // Truncated first, then compressed: the compressed body decodes to the prefix.
    let r = apis()[0].post(
        &s,
        &[("x-mock-truncate-body", "12"), ("x-mock-encoding", "gzip")],
    );
    assert_eq!(r.decoded_text(), "{\"id\":\"chatc");
}

#[test]
fn content_type_overrides_every_answer() {
    let s = Server::start();
    for api in apis() {
        let r = api.post(&s, &[("x-mock-content-type", "text/html")]);
        assert_eq!(r.header("content-type"), Some("text/html"), "{}", api.name);
        assert!(r.json().is_object());
        let r = api.stream(&s, &[("x-mock-content-type", "application/json")]);
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{}",
            api.name
        );
        assert!(r.complete && r.chunked);
    }
    let r = s.post(
        "/v1/messages",
        &[
            ("x-mock-status", "529"),
            ("x-mock-content-type", "text/plain"),
        ],
        &json!({}),
    );
    assert_eq!(r.status, 529);
    assert_eq!(r.header("content-type"), Some("text/plain"));
}

#[test]
fn raw_body_replaces_the_answer() {
    let s = Server::start();
    let html = "<html><body>Please log in to the Wi-Fi</body></html>";
    for api in apis() {
        // No auth at all: the body is sent instead of handling the request.
        let r = s.post(api.path, &[("x-mock-body", html)], &api.body);
        assert_eq!(r.status, 200, "{}", api.name);
        assert_eq!(r.text(), html);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    }
    let r = s.post(
        "/v1/chat/completions",
        &[("x-mock-body", r#"[{"ok":true}]"#)],
        &json!({}),
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), r#"[{"ok":true}]"#);
    // With a status, and a content-type override.
    let r = s.post(
        "/v1/messages",
        &[
            ("x-mock-body", "<h1>502 Bad Gateway</h1>"),
            ("x-mock-status", "502"),
            ("x-mock-content-type", "text/html; charset=iso-8859-1"),
            ("x-mock-error-body", "ignored"),
        ],
        &json!({}),
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.text(), "<h1>502 Bad Gateway</h1>");
    assert_eq!(
        r.header("content-type"),
        Some("text/html; charset=iso-8859-1")
    );
    // Scoped with the status to one API.
    let h = [
        ("x-mock-body", "<p>blocked</p>"),
        ("x-mock-status-path-prefix", "/v1/chat/"),
    ];
    assert_eq!(
        s.post("/v1/chat/completions", &h, &json!({})).text(),
        "<p>blocked</p>"
    );
    let r = apis()[2].post(&s, &h);
    assert_eq!(r.json()["type"], "message");
}

/// Read what arrives within `wait`; the connection must still be open.
fn stalled(s: &Server, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    let mut conn = s.conn();
    conn.set_read_timeout(Duration::from_millis(400));
    let r = conn.send("POST", path, headers, body.to_string().as_bytes());
    assert!(!r.complete, "the answer never completes");
    assert!(
        matches!(
            r.abort,
            Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        ),
        "the connection stays open: {:?}",
        r.abort
    );
    r
}

#[test]
fn stall_after_keeps_the_connection_open_without_data() {
    let s = Server::start();
    for api in apis() {
        let r = stalled(
            &s,
            api.stream_path,
            &api.headers(&[("x-mock-stall-after", "2")]),
            &api.stream_body,
        );
        assert_eq!(r.status, 200);
        let text = String::from_utf8(r.body.clone()).expect("utf-8");
        assert_eq!(
            text.matches(api.sep()).count(),
            2,
            "{}: two events: {text:?}",
            api.name
        );
        // Non-stream with 0: headers (full length), then nothing.
        let r = stalled(
            &s,
            api.path,
            &api.headers(&[("x-mock-stall-after", "0")]),
            &api.body,
        );
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty(), "{}", api.name);
        assert!(r.header("content-length").is_some_and(|l| l != "0"));
    }
    // Past the end of the stream: every event, no terminating chunk.
    let api = &apis()[0];
    let r = stalled(
        &s,
        api.stream_path,
        &api.headers(&[("x-mock-stall-after", "99")]),
        &api.stream_body,
    );
    assert!(String::from_utf8(r.body)
        .expect("utf-8")
        .ends_with("data: [DONE]\n\n"));
    // Non-stream with N > 0: the first N bytes.
    let r = stalled(
        &s,
        api.path,
        &api.headers(&[("x-mock-stall-after", "7")]),
        &api.body,
    );
    assert_eq!(r.body, b"{\"id\":\"");
}

#[cfg(target_os = "linux")]
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn a_stalled_connection_is_released_when_the_client_leaves() {
    let s = Server::start();
    assert_eq!(s.get("/__mock/health").status, 200);
    std::thread::sleep(Duration::from_millis(100));
    let baseline = open_fds(s.pid());
    let api = &apis()[0];
    for _ in 0..5 {
        stalled(
            &s,
            api.stream_path,
            &api.headers(&[("x-mock-stall-after", "1")]),
            &api.stream_body,
        );
    }
    // The five client sockets are closed now; the server lets go of its ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(s.pid()) > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        open_fds(s.pid()) <= baseline,
        "stalled connections were released"
    );
}

/// The events of a stream body on `api`'s wire, as raw strings.
fn raw_events<'a>(api: &Api, text: &'a str) -> Vec<&'a str> {
    text.split(api.sep()).filter(|e| !e.is_empty()).collect()
}

#[test]
fn sse_inject_inserts_malformed_events() {
    let s = Server::start();
    for api in apis() {
        let normal = api.stream(&s, &[]);
        let normal_events = raw_events(&api, &normal.text()).len();
        for (kind, check) in [
            ("badjson", "bad JSON"),
            ("nofield", "no field"),
            ("badutf8", "bad UTF-8"),
        ] {
            let r = api.stream(&s, &[("x-mock-sse-inject", &format!("{kind}@1"))]);
            assert!(r.complete, "{} {kind}", api.name);
            // The body is bytes; badutf8 is not valid UTF-8 on purpose.
            let text = String::from_utf8_lossy(&r.body).into_owned();
            let events = raw_events(&api, &text);
            assert_eq!(
                events.len(),
                normal_events + 1,
                "{} {kind}: {text}",
                api.name
            );
            let injected = events[1];
            match kind {
                "badjson" => {
                    let data = injected
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .expect("data line");
                    assert!(serde_json::from_str::<Value>(data).is_err(), "{check}");
                }
                "nofield" => assert_eq!(injected, "garbage-line", "{check}"),
                _ => {
                    assert!(r.body.windows(2).any(|w| w == b"\xff\xfe"), "{check}");
                    assert!(std::str::from_utf8(&r.body).is_err());
                }
            }
        }
    }
}

#[test]
fn sse_inject_error_ends_the_stream_with_the_provider_error() {
    let s = Server::start();
    let r = apis()[0].stream(&s, &[("x-mock-sse-inject", "error@2")]);
    assert!(r.complete, "ends normally");
    let text = r.text();
    assert!(!text.contains("[DONE]"));
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 3);
    let err: Value =
        serde_json::from_str(events[2].strip_prefix("data: ").expect("data")).expect("json");
    assert_eq!(
        err,
        json!({"error": {"message": "The server had an error while processing your request. Sorry about that!",
                         "type": "server_error", "param": null, "code": null}})
    );

    let r = apis()[2].stream(&s, &[("x-mock-sse-inject", "error@3")]);
    let events = anthropic_events(&r.text());
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[3],
        (
            "error".to_string(),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )
    );

    let r = apis()[3].stream(&s, &[("x-mock-sse-inject", "error@0")]);
    let events = gemini_events(&r.text());
    assert_eq!(
        events,
        vec![
            json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})
        ]
    );

    // Gemini without alt=sse: the error is the array's last element.
    let r = s.post(
        "/v1beta/models/g:streamGenerateContent",
        &[("x-goog-api-key", "k"), ("x-mock-sse-inject", "error@1")],
        &apis()[3].body,
    );
    let v: Value = serde_json::from_str(&r.text()).expect("a JSON array");
    let a = v.as_array().expect("array");
    assert_eq!(a.len(), 2);
    assert_eq!(a[1]["error"]["status"], "UNAVAILABLE");

    let r = apis()[4].stream(&s, &[("x-mock-sse-inject", "error@2")]);
    let events = responses_events(&r.text());
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].0, "error");
    assert_eq!(
        events[2].1,
        json!({"type": "error", "code": "server_error",
               "message": "The server had an error while processing your request. Sorry about that!",
               "param": null, "sequence_number": 2})
    );

    // Past the end: after the last event.
    let r = apis()[0].stream(&s, &[("x-mock-sse-inject", "nofield@1000")]);
    assert!(r.text().ends_with("data: [DONE]\n\ngarbage-line\n\n"));
}

#[test]
fn oversize_event_carries_that_many_bytes() {
    let s = Server::start();
    let n = 200_000;
    for api in apis() {
        let r = api.stream(
            &s,
            &[
                ("x-mock-oversize-event", "200000"),
                ("x-mock-content", "tail"),
            ],
        );
        assert!(r.complete, "{}", api.name);
        let text = r.text();
        let events = raw_events(&api, &text);
        // The Responses API repeats the whole text in its `done` events and
        // the final response; one content event (a delta) carries the filler.
        let big: Vec<&&str> = events
            .iter()
            .filter(|e| e.len() >= n && !e.contains(".done\n") && !e.contains("response.completed"))
            .collect();
        assert_eq!(big.len(), 1, "{}: one oversize event", api.name);
        assert!(big[0].contains(&"x".repeat(n)));
        assert!(!big[0].contains(&"x".repeat(n + 1)));
        assert!(
            big[0].len() < n + 400,
            "{}: one event of about {n} bytes",
            api.name
        );
        // The rest of the reply follows in the next events.
        let after = text.split_once(&"x".repeat(n)).expect("filler").1;
        assert!(after.contains("tail"), "{}", api.name);
    }
    // Non-stream answers ignore it.
    let r = apis()[0].post(&s, &[("x-mock-oversize-event", "1000")]);
    assert!(r.body.len() < 1000);
}

#[test]
fn echo_key_puts_the_credential_in_errors_and_content() {
    let s = Server::start();
    let contains_key = |v: &Value| v.as_str().is_some_and(|t| t.contains(KEY));
    for api in apis() {
        let r = api.post(&s, &[("x-mock-status", "401"), ("x-mock-echo-key", "1")]);
        assert_eq!(r.status, 401);
        let v = r.json();
        let fields: &[&str] = match api.name {
            "openai" | "responses" => &["message", "type", "param", "code"],
            "azure" => &["message", "code"],
            "anthropic" => &["message", "type"],
            _ => &["message", "status"],
        };
        for f in fields {
            assert!(
                contains_key(&v["error"][f]),
                "{}: error.{f} in {v}",
                api.name
            );
        }

        // 200: in the content, stream or not.
        let r = api.post(&s, &[("x-mock-echo-key", "1")]);
        assert_eq!(r.status, 200);
        assert!(
            r.text().contains(&format!("(api key: {KEY})")),
            "{}: {}",
            api.name,
            r.text()
        );
        let r = api.stream(
            &s,
            &[("x-mock-echo-key", "1"), ("x-mock-chunk-chars", "1000")],
        );
        assert!(r.text().contains(KEY), "{}", api.name);

        // In-band stream error.
        let r = api.stream(
            &s,
            &[("x-mock-echo-key", "1"), ("x-mock-sse-inject", "error@1")],
        );
        let text = r.text();
        let last = raw_events(&api, &text).pop().expect("an event");
        assert!(last.contains(KEY), "{}: {last}", api.name);
    }
    let r = apis()[0].post(&s, &[("x-mock-status", "500"), ("x-mock-echo-key", "1")]);
    assert_eq!(
        r.json(),
        json!({"error": {"message": format!("The server had an error while processing your request. Sorry about that! (api key: {KEY})"),
                         "type": KEY, "param": KEY, "code": KEY}})
    );
    // The Gemini key may come from the query.
    let r = s.post(
        "/v1beta/models/g:generateContent?key=from-query",
        &[("x-mock-echo-key", "1"), ("x-mock-content", "hello")],
        &apis()[3].body,
    );
    assert_eq!(
        r.json()["candidates"][0]["content"]["parts"][0]["text"],
        "hello (api key: from-query)"
    );
    // Without the knob, nothing is echoed.
    assert!(!apis()[0]
        .post(&s, &[("x-mock-status", "401")])
        .text()
        .contains(KEY));
}

#[test]
fn connection_close_answers_then_closes() {
    let s = Server::start();
    for api in apis() {
        let mut conn = s.conn();
        let h = api.headers(&[("x-mock-connection-close", "1")]);
        let r = conn.send("POST", api.path, &h, api.body.to_string().as_bytes());
        assert_eq!(r.status, 200);
        assert!(r.complete);
        assert_eq!(r.header("connection"), Some("close"), "{}", api.name);
        assert!(conn.closed_by_peer(Duration::from_secs(5)), "{}", api.name);

        let mut conn = s.conn();
        let r = conn.send(
            "POST",
            api.stream_path,
            &h,
            api.stream_body.to_string().as_bytes(),
        );
        assert!(r.complete && r.chunked);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(conn.closed_by_peer(Duration::from_secs(5)), "{}", api.name);
    }
}

#[test]
fn max_requests_per_connection_closes_idle_connections_silently() {
    let s = Server::start_with(&["--max-requests-per-connection", "2"]);
    let api = &apis()[0];
    let mut conn = s.conn();
    for _ in 0..2 {
        let r = conn.send("POST", api.path, &api.auth, api.body.to_string().as_bytes());
        assert_eq!(r.status, 200);
        assert!(r.complete);
        assert_eq!(r.header("connection"), None, "no connection: close");
    }
    assert!(conn.closed_by_peer(Duration::from_secs(5)));

    // Streams count too; a new connection starts again.
    let mut conn = s.conn();
    let r = conn.send(
        "POST",
        api.stream_path,
        &api.auth,
        api.stream_body.to_string().as_bytes(),
    );
    assert!(r.complete);
    let r = conn.send(
        "POST",
        api.stream_path,
        &api.auth,
        api.stream_body.to_string().as_bytes(),
    );
    assert!(r.complete);
    assert_eq!(r.header("connection"), None);
    openai_events(&r.text());
    assert!(conn.closed_by_peer(Duration::from_secs(5)));

    // With 1, every connection serves one request.
    let s = Server::start_with(&["--max-requests-per-connection=1"]);
    let mut conn = s.conn();
    assert_eq!(conn.send("GET", "/__mock/health", &[], b"").status, 200);
    assert!(conn.closed_by_peer(Duration::from_secs(5)));
}

#[test]
fn invalid_values_are_400s_naming_the_knob() {
    let s = Server::start();
    let bad = [
        ("x-mock-reset-before-headers", "yes"),
        ("x-mock-reset-mid-body", "-1"),
        ("x-mock-truncate-body", "ten"),
        ("x-mock-stall-after", "1.5"),
        ("x-mock-sse-inject", "badjson"),
        ("x-mock-sse-inject", "weird@1"),
        ("x-mock-oversize-event", "x"),
        ("x-mock-oversize-event", "999999999999"),
        ("x-mock-echo-key", "2"),
        ("x-mock-connection-close", "on"),
        ("x-mock-encoding", "compress"),
    ];
    for api in apis() {
        for (knob, value) in bad {
            let r = api.post(&s, &[(knob, value)]);
            assert_eq!(r.status, 400, "{} {knob}: {value}", api.name);
            // Every provider's error format has `error.message`.
            let message = r.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(message.contains(knob), "{} {knob}: {message}", api.name);
        }
    }
}
