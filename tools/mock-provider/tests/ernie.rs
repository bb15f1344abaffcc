mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const CHAT: &str = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro";
const TOKEN_OK: &str =
    "/oauth/2.0/token?grant_type=client_credentials&client_id=mock-ernie-ak&client_secret=mock-ernie-sk";

fn token_of(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

fn token(s: &Server) -> String {
    token_of(&s.request("POST", TOKEN_OK, &[], ""))
}

fn chat_at(s: &Server, path: &str, token: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    let sep = if path.contains('?') { '&' } else { '?' };
    s.post(&format!("{path}{sep}access_token={token}"), headers, body)
}

fn chat(s: &Server, token: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    chat_at(s, CHAT, token, headers, body)
}

fn hello() -> Value {
    json!({"messages": [{"role": "user", "content": "hi there"}]})
}

/// An ERNIE error: HTTP 200 (unless `status` says otherwise), a JSON body
/// with exactly `error_code` and `error_msg`.
fn assert_ernie_error(r: &Resp, status: u16, code: u64) -> String {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{v}");
    assert_eq!(v["error_code"], code, "{v}");
    v["error_msg"].as_str().expect("error_msg").to_string()
}

fn assert_oauth_error(r: &Resp, status: u16, error: &str, description: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"error": error, "error_description": description})
    );
}

/// `data: {…}\n\n` events; the stream has no `[DONE]`.
fn ernie_events(body: &str) -> Vec<Value> {
    assert!(body.ends_with("\n\n"), "{body:?}");
    assert!(!body.contains("[DONE]"));
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("bad event {e:?}"));
            serde_json::from_str(data).expect("event JSON")
        })
        .collect()
}

fn tokens_admin(s: &Server) -> Value {
    let r = s.get("/__mock/ernie/tokens");
    assert_eq!(r.status, 200);
    r.json()
}

#[test]
fn issues_tokens_and_answers_chat() {
    let s = Server::start();
    let r = s.request("POST", TOKEN_OK, &[], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "refresh_token",
            "expires_in",
            "session_key",
            "access_token",
            "scope",
            "session_secret"
        ]
    );
    assert_eq!(v["expires_in"], 2_592_000);
    assert_eq!(v["scope"], "public brain_all_scope");
    assert_eq!(v["session_key"], "mock");
    assert_eq!(v["session_secret"], "mock");
    assert!(v["refresh_token"]
        .as_str()
        .expect("refresh")
        .starts_with("25."));
    // 24.<hex>.<ttl>.<unix>-mock
    let t1 = v["access_token"].as_str().expect("token").to_string();
    let parts: Vec<&str> = t1.split('.').collect();
    assert_eq!(parts.len(), 4, "{t1}");
    assert_eq!(parts[0], "24");
    assert!(parts[1].len() >= 16 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(parts[2], "2592000");
    let unix: u64 = parts[3]
        .strip_suffix("-mock")
        .expect("-mock suffix")
        .parse()
        .expect("unix time");
    assert!(unix > 1_600_000_000);

    // GET works, and a form body instead of the query string; every call
    // issues a new token and the earlier ones stay valid.
    let t2 = token_of(&s.request("GET", TOKEN_OK, &[], ""));
    let t3 = token_of(&s.request(
        "POST",
        "/oauth/2.0/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        "grant_type=client_credentials&client_id=mock-ernie-ak&client_secret=mock-ernie-sk",
    ));
    assert!(t1 != t2 && t2 != t3 && t1 != t3);
    assert_eq!(tokens_admin(&s), json!({"issued": 3, "valid": 3}));

    for t in [&t1, &t2, &t3] {
        let r = chat(&s, t, &[JSON], &hello());
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-mock-model-id"), Some("completions_pro"));
        let mut v = r.json();
        mask_created(&mut v);
        let id = v["id"].as_str().expect("id").to_string();
        assert!(id.starts_with("as-mock-"), "{id}");
        assert_eq!(
            v,
            json!({
                "id": id,
                "object": "chat.completion",
                "created": 0,
                "result": "Hello from mock-provider! You said: hi there",
                "is_truncated": false,
                "need_clear_history": false,
                "finish_reason": "normal",
                "usage": {"prompt_tokens": 2, "completion_tokens": 7, "total_tokens": 9}
            })
        );
    }
    // Other endpoints: any [a-z0-9._-]{1,64}.
    let r = chat_at(
        &s,
        "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/ernie-speed-128k",
        &t1,
        &[],
        &hello(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-mock-model-id"), Some("ernie-speed-128k"));
}

#[test]
fn token_endpoint_errors() {
    let s = Server::start_with(&["--ernie-client", "my-ak:my:sk"]);
    let r = s.request(
        "POST",
        "/oauth/2.0/token?grant_type=client_credentials&client_id=mock-ernie-ak&client_secret=wrong",
        &[],
        "",
    );
    assert_oauth_error(&r, 401, "invalid_client", "Client authentication failed");
    let r = s.request(
        "POST",
        "/oauth/2.0/token?grant_type=client_credentials&client_id=nobody&client_secret=x",
        &[],
        "",
    );
    assert_oauth_error(&r, 401, "invalid_client", "unknown client id");
    let r = s.request(
        "POST",
        "/oauth/2.0/token?client_id=mock-ernie-ak&client_secret=mock-ernie-sk",
        &[],
        "",
    );
    assert_oauth_error(
        &r,
        400,
        "unsupported_grant_type",
        "The authorization grant type is not supported",
    );
    let r = s.request(
        "POST",
        "/oauth/2.0/token?grant_type=password&client_id=mock-ernie-ak&client_secret=mock-ernie-sk",
        &[],
        "",
    );
    assert_eq!(r.status, 400);
    // A JSON body is not read: the parameters are missing.
    let r = s.request(
        "POST",
        "/oauth/2.0/token",
        &[JSON],
        r#"{"grant_type":"client_credentials"}"#,
    );
    assert_eq!(r.status, 400);
    // --ernie-client adds a client (the secret may contain ':').
    let r = s.request(
        "POST",
        "/oauth/2.0/token?grant_type=client_credentials&client_id=my-ak&client_secret=my%3Ask",
        &[],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(tokens_admin(&s), json!({"issued": 1, "valid": 1}));

    // Knobs: x-mock-status answers a Baidu OAuth error; first-byte delay.
    let r = s.request("POST", TOKEN_OK, &[("x-mock-status", "500")], "");
    assert_oauth_error(
        &r,
        500,
        "server_error",
        "The server encountered an unexpected error",
    );
    let r = s.request(
        "POST",
        TOKEN_OK,
        &[("x-mock-status", "401"), ("x-mock-echo-key", "1")],
        "",
    );
    assert_oauth_error(
        &r,
        401,
        "mock-ernie-sk",
        "Client authentication failed (api key: mock-ernie-sk)",
    );
    let r = s.request("POST", TOKEN_OK, &[("x-mock-first-byte-ms", "300")], "");
    assert_eq!(r.status, 200);
    assert!(r.headers_after >= Duration::from_millis(300));
    let r = s.request("POST", TOKEN_OK, &[("x-mock-chunk-chars", "x")], "");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
}

#[test]
fn tokens_expire() {
    let s = Server::start_with(&["--ernie-token-ttl", "1"]);
    let r = s.request("POST", TOKEN_OK, &[], "");
    assert_eq!(r.json()["expires_in"], 1);
    let t = token_of(&r);
    assert!(t.contains(".1."), "{t}");
    assert_eq!(chat(&s, &t, &[], &hello()).status, 200);
    assert_eq!(
        chat(&s, &t, &[], &hello()).json()["finish_reason"],
        "normal"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let msg = assert_ernie_error(&chat(&s, &t, &[], &hello()), 200, 111);
    assert_eq!(msg, "Access token expired");
    assert_eq!(tokens_admin(&s), json!({"issued": 1, "valid": 0}));
    // Expired before the body is looked at.
    let msg = assert_ernie_error(&chat(&s, &t, &[], &json!({"messages": []})), 200, 111);
    assert_eq!(msg, "Access token expired");
    // A fresh token works.
    let t2 = token(&s);
    assert_eq!(chat(&s, &t2, &[], &hello()).status, 200);
}

#[test]
fn revoked_missing_and_unknown_tokens() {
    let s = Server::start();
    let t1 = token(&s);
    let t2 = token(&s);
    assert_eq!(tokens_admin(&s), json!({"issued": 2, "valid": 2}));
    let r = s.request("POST", "/__mock/ernie/revoke", &[], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"revoked": 2}));
    assert_eq!(tokens_admin(&s), json!({"issued": 2, "valid": 0}));
    for t in [&t1, &t2] {
        let msg = assert_ernie_error(&chat(&s, t, &[], &hello()), 200, 110);
        assert_eq!(msg, "Access token invalid or no longer valid");
    }
    let t3 = token(&s);
    assert_eq!(chat(&s, &t3, &[], &hello()).status, 200);
    assert_eq!(tokens_admin(&s), json!({"issued": 3, "valid": 1}));
    assert_eq!(
        s.request("POST", "/__mock/ernie/revoke", &[], "").json(),
        json!({"revoked": 1})
    );
    assert_eq!(s.get("/__mock/ernie/revoke").status, 405);

    // No token at all, an empty one, an unknown one; streams too (JSON answer).
    let r = s.post(CHAT, &[], &hello());
    assert_ernie_error(&r, 200, 110);
    assert_ernie_error(&chat(&s, "", &[], &hello()), 200, 110);
    assert_ernie_error(&chat(&s, "24.bogus.1.2-mock", &[], &hello()), 200, 110);
    let stream = json!({"messages": [{"role": "user", "content": "x"}], "stream": true});
    assert_ernie_error(&chat(&s, "nope", &[], &stream), 200, 110);
}

#[test]
fn validation_errors_are_200_with_336003() {
    let s = Server::start();
    let t = token(&s);
    let even = json!({"messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"}
    ]});
    let msg = assert_ernie_error(&chat(&s, &t, &[], &even), 200, 336003);
    assert_eq!(msg, "the length of messages must be an odd number");
    // Also with stream: true, before any event.
    let mut even_stream = even.clone();
    even_stream["stream"] = json!(true);
    assert_ernie_error(&chat(&s, &t, &[], &even_stream), 200, 336003);
    let msg = assert_ernie_error(
        &chat(
            &s,
            &t,
            &[],
            &json!({"messages": [{"role": "user", "content": "a"}], "model": "x"}),
        ),
        200,
        336003,
    );
    assert_eq!(msg, "invalid argument: model");
    let msg = assert_ernie_error(
        &chat(
            &s,
            &t,
            &[],
            &json!({"messages": [{"role": "user", "content": "a"}], "temperature": 0}),
        ),
        200,
        336003,
    );
    assert!(msg.contains("temperature"), "{msg}");
    let r = s.request(
        "POST",
        &format!("{CHAT}?access_token={t}"),
        &[JSON],
        "{not json",
    );
    assert_ernie_error(&r, 200, 336003);

    // Unsupported methods: other paths under /rpc/2.0/, or not POST.
    let r = chat_at(
        &s,
        "/rpc/2.0/ai_custom/v1/wenxinworkshop/embeddings/embedding-v1",
        &t,
        &[],
        &hello(),
    );
    assert_eq!(assert_ernie_error(&r, 200, 3), "Unsupported openapi method");
    let r = chat_at(
        &s,
        "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/Bad_Name",
        &t,
        &[],
        &hello(),
    );
    assert_ernie_error(&r, 200, 3);
    let r = s.request("GET", &format!("{CHAT}?access_token={t}"), &[], "");
    assert_ernie_error(&r, 200, 3);
}

#[test]
fn finish_reasons_follow_stop_and_max_output_tokens() {
    let s = Server::start();
    let t = token(&s);
    let r = chat(
        &s,
        &t,
        &[],
        &json!({"messages": [{"role": "user", "content": "hi"}], "stop": ["mock"]}),
    );
    let v = r.json();
    assert_eq!(v["result"], "Hello from ");
    assert_eq!(v["finish_reason"], "stop");
    let r = chat(
        &s,
        &t,
        &[],
        &json!({"messages": [{"role": "user", "content": "hi"}], "max_output_tokens": 2, "system": "be brief"}),
    );
    let v = r.json();
    assert_eq!(v["result"], "Hello from");
    assert_eq!(v["finish_reason"], "length");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
    );
    // x-mock-reasoning is ignored (ERNIE v1 has none).
    let r = chat(&s, &t, &[("x-mock-reasoning", "deep thoughts")], &hello());
    assert_eq!(r.json()["usage"]["completion_tokens"], 7);
}

#[test]
fn streams_end_with_is_end_and_usage() {
    let s = Server::start();
    let t = token(&s);
    let body = json!({"messages": [{"role": "user", "content": "hi there"}], "stream": true});
    let r = chat(&s, &t, &[("x-mock-chunk-chars", "10")], &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.chunked && r.complete);
    let events = ernie_events(&r.text());
    let text = "Hello from mock-provider! You said: hi there";
    assert_eq!(events.len(), text.chars().count().div_ceil(10));
    let last = events.len() - 1;
    let mut joined = String::new();
    for (i, e) in events.iter().enumerate() {
        assert!(e["id"].as_str().expect("id").starts_with("as-mock-"));
        assert_eq!(e["id"], events[0]["id"]);
        assert_eq!(e["object"], "chat.completion");
        assert!(e["created"].as_u64().is_some());
        assert_eq!(e["sentence_id"], i);
        assert_eq!(e["is_end"], i == last);
        assert_eq!(e["is_truncated"], false);
        assert_eq!(e["need_clear_history"], false);
        assert_eq!(e["finish_reason"], "normal");
        let usage = if i == last {
            json!({"prompt_tokens": 2, "completion_tokens": 7, "total_tokens": 9})
        } else {
            json!({"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2})
        };
        assert_eq!(e["usage"], usage);
        joined.push_str(e["result"].as_str().expect("result"));
    }
    assert_eq!(joined, text);

    // Cut by max_output_tokens: the last event says so.
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "stream": true, "max_output_tokens": 3});
    let events = ernie_events(&chat(&s, &t, &[], &body).text());
    let end = events.last().expect("events");
    assert_eq!(end["is_end"], true);
    assert_eq!(end["finish_reason"], "length");
    assert_eq!(end["usage"]["completion_tokens"], 3);

    // Knob status on a stream request: a plain JSON error.
    let r = chat(&s, &t, &[("x-mock-status", "429")], &body);
    assert_eq!(
        assert_ernie_error(&r, 429, 18),
        "Open api qps request limit reached"
    );
    let r = chat(&s, &t, &[("x-mock-status", "503")], &body);
    assert_eq!(assert_ernie_error(&r, 503, 336100), "internal error");
    let r = chat(&s, &t, &[("x-mock-status", "401")], &hello());
    assert_ernie_error(&r, 401, 110);
    let r = chat(&s, &t, &[("x-mock-status", "400")], &hello());
    assert_ernie_error(&r, 400, 336003);
    // x-mock-status comes before the token check.
    let r = chat(&s, "bogus", &[("x-mock-status", "500")], &hello());
    assert_ernie_error(&r, 500, 336100);
}

#[test]
fn stream_injection_and_echo_key() {
    let s = Server::start();
    let t = token(&s);
    let body = json!({"messages": [{"role": "user", "content": "hi there"}], "stream": true});
    let r = chat(&s, &t, &[("x-mock-sse-inject", "error@1")], &body);
    assert!(r.complete);
    let events = ernie_events(&r.text());
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["is_end"], false);
    assert_eq!(
        events[1],
        json!({"error_code": 336100, "error_msg": "internal error"})
    );
    let r = chat(&s, &t, &[("x-mock-sse-inject", "nofield@0")], &body);
    assert!(r.text().starts_with("garbage-line\n\n"));
    let r = chat(&s, &t, &[("x-mock-sse-inject", "badjson@0")], &body);
    assert!(r.text().starts_with("data: {\"id\""));
    assert!(serde_json::from_str::<Value>(
        r.text()
            .split("\n\n")
            .next()
            .unwrap_or("")
            .trim_start_matches("data: ")
    )
    .is_err());
    let r = chat(&s, &t, &[("x-mock-sse-inject", "badutf8@0")], &body);
    assert!(r.body.windows(2).any(|w| w == b"\xff\xfe"));

    // The access token is echoed like other families echo their keys.
    let r = chat(&s, &t, &[("x-mock-echo-key", "1")], &hello());
    let result = r.json()["result"].as_str().expect("result").to_string();
    assert!(result.ends_with(&format!("(api key: {t})")), "{result}");
    let r = chat(
        &s,
        &t,
        &[("x-mock-echo-key", "1"), ("x-mock-status", "500")],
        &hello(),
    );
    assert_eq!(
        assert_ernie_error(&r, 500, 336100),
        format!("internal error (api key: {t})")
    );
    let r = chat(
        &s,
        &t,
        &[("x-mock-echo-key", "1"), ("x-mock-sse-inject", "error@0")],
        &body,
    );
    let events = ernie_events(&r.text());
    assert_eq!(
        events[0]["error_msg"],
        format!("internal error (api key: {t})")
    );
}

#[test]
fn tool_calls() {
    let s = Server::start();
    let t = token(&s);
    let body = json!({
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "functions": [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}]
    });
    let knobs = [
        ("x-mock-tool-call", "get_weather"),
        ("x-mock-tool-args", r#"{"city":"Paris"}"#),
    ];
    let mut v = chat(&s, &t, &knobs, &body).json();
    mask_created(&mut v);
    let id = v["id"].clone();
    assert_eq!(
        v,
        json!({
            "id": id,
            "object": "chat.completion",
            "created": 0,
            "result": "",
            "is_truncated": false,
            "need_clear_history": false,
            "function_call": {"name": "get_weather", "thoughts": "mock thoughts", "arguments": "{\"city\":\"Paris\"}"},
            "finish_reason": "function_call",
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        })
    );
    // Default arguments.
    let v = chat(&s, &t, &[("x-mock-tool-call", "get_weather")], &body).json();
    assert_eq!(v["function_call"]["arguments"], "{}");

    // Streamed: one event with function_call and is_end.
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let events = ernie_events(&chat(&s, &t, &knobs, &stream).text());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["is_end"], true);
    assert_eq!(events[0]["sentence_id"], 0);
    assert_eq!(events[0]["result"], "");
    assert_eq!(events[0]["finish_reason"], "function_call");
    assert_eq!(events[0]["function_call"]["name"], "get_weather");
    assert_eq!(events[0]["usage"]["total_tokens"], 5);

    // A function the request does not declare.
    let r = chat(&s, &t, &[("x-mock-tool-call", "other")], &body);
    assert!(assert_ernie_error(&r, 200, 336003).contains("other"));
    let r = chat(&s, &t, &[("x-mock-tool-call", "get_weather")], &hello());
    assert_ernie_error(&r, 200, 336003);

    // The function result continues the conversation (x-mock-tool-call-once).
    let follow = json!({
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": "", "function_call": {"name": "get_weather", "arguments": "{}"}},
            {"role": "function", "name": "get_weather", "content": "sunny"}
        ],
        "functions": [{"name": "get_weather"}]
    });
    let v = chat(&s, &t, &[("x-mock-tool-call-once", "get_weather")], &follow).json();
    assert_eq!(v["result"], "Tool result: sunny");
    assert_eq!(v["finish_reason"], "normal");
}

#[test]
fn admin_endpoints_and_recording() {
    let s = Server::start();
    assert_eq!(tokens_admin(&s), json!({"issued": 0, "valid": 0}));
    assert_eq!(
        s.request("POST", "/__mock/ernie/revoke", &[], "").json(),
        json!({"revoked": 0})
    );
    assert_eq!(
        s.request("DELETE", "/__mock/ernie/tokens", &[], "").status,
        405
    );
    let t = token(&s);
    chat(&s, &t, &[], &hello());
    let rec = s.get("/__mock/requests").json();
    let rec = rec.as_array().expect("array");
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[0]["path"], "/oauth/2.0/token");
    assert_eq!(rec[1]["path"], CHAT);
    assert_eq!(rec[1]["query"], format!("access_token={t}"));
}
