//! The request side: rewriting for the provider, local answers and
//! OpenAI-shaped errors.

use super::*;

#[test]
fn chat_is_rewritten_for_the_provider() {
    let mut f = flow();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"logprobs":true}"#;
    let mut h = request("POST", "/v1/chat/completions", body);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert!(h.sent.is_none());
    assert_eq!(h.request_headers[":path"], "/v1/chat/completions");
    assert_eq!(h.request_headers[":authority"], "127.0.0.1:18080");
    assert_eq!(h.request_headers[CLUSTER_HEADER], "llmgw_mock");
    // The route is looked up again with the routing header set.
    assert!(h.route_cleared);
    assert!(!h
        .request_headers
        .contains_key("x-envoy-upstream-rq-timeout-ms"));
    assert_eq!(
        h.request_headers["authorization"],
        "Bearer sk-upstream-secret"
    );
    let sent: Value = serde_json::from_slice(&h.request_body).unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(sent["logprobs"], true);
    assert_eq!(
        h.request_headers["content-length"],
        h.request_body.len().to_string()
    );

    h.response_headers.insert(":status".into(), "200".into());
    assert_eq!(f.on_response_headers(&mut h, false), Verdict::Continue);
    assert_eq!(
        h.response_headers[TARGET_HEADER],
        "mock/gpt-4o-mini-2024-07-18"
    );
    assert_eq!(f.on_response_body(&mut h, 10, false), Verdict::Continue);
}

#[test]
fn keyless_provider_gets_no_credentials() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/embeddings?x=1",
        r#"{"model":"llama","input":"hello"}"#,
    );
    h.request_headers
        .insert("x-api-key".into(), "client".into());
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(h.request_headers[":path"], "/v1/embeddings");
    assert_eq!(h.request_headers[":authority"], "127.0.0.1:11434");
    assert!(!h.request_headers.contains_key("authorization"));
    assert!(!h.request_headers.contains_key("x-api-key"));
}

#[test]
fn models_are_listed_from_config() {
    let mut f = flow();
    let mut h = request("GET", "/v1/models", "");
    assert_eq!(run(&mut f, &mut h), Verdict::Pause);
    let (status, v) = sent_error(&h);
    assert_eq!(status, 200);
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    // qwen-plus is hidden: its provider has no key.
    assert_eq!(ids, ["gpt-4o-mini", "llama"]);
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["owned_by"], "mock");
    assert!(!h.request_headers.contains_key(CLUSTER_HEADER));

    let mut f = flow();
    let mut h = request("GET", "/v1/models/llama", "");
    run(&mut f, &mut h);
    assert_eq!(sent_error(&h).1["id"], "llama");
    let mut f = flow();
    let mut h = request("GET", "/v1/models/nope", "");
    run(&mut f, &mut h);
    assert_eq!(sent_error(&h).0, 404);
}

#[test]
fn errors_are_openai_shaped() {
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        ("POST", "/v1/chat/completions", "{", 400, "could not parse"),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"x","messages":[{"role":"user","content":"a"}]}"#,
            404,
            "Available models: gpt-4o-mini, llama.",
        ),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"qwen-plus","messages":[{"role":"user","content":"a"}]}"#,
            503,
            "DASHSCOPE_API_KEY is not set",
        ),
        ("POST", "/v1/chat/completions", "", 400, "body is empty"),
        ("GET", "/v1/chat/completions", "", 405, "use POST"),
        ("POST", "/v1/models", "{}", 405, "use GET"),
        (
            "POST",
            "/v2/other",
            "{}",
            404,
            "Unknown request URL: POST /v2/other",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let mut f = flow();
        let mut h = request(method, path, body);
        run(&mut f, &mut h);
        let (got, v) = sent_error(&h);
        assert_eq!(got, *status, "{method} {path} {body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
        assert!(v["error"]["type"].is_string());
        assert!(!h.request_headers.contains_key(CLUSTER_HEADER));
        // The local reply passes back through the filter untouched.
        h.response_headers.insert(":status".into(), got.to_string());
        f.on_response_headers(&mut h, false);
        assert!(!h.response_headers.contains_key(TARGET_HEADER));
    }
}

#[test]
fn oversized_bodies_get_413() {
    // Declared too large: refused before any byte is buffered.
    let big = format!(
        r#"{{"model":"llama","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4000)
    );
    let mut f = flow();
    let mut h = request("POST", "/v1/chat/completions", &big);
    assert_eq!(f.on_request_headers(&mut h, false), Verdict::Pause);
    assert_eq!(sent_error(&h).0, 413);

    // Chunked (no content-length): refused once the buffer passes the limit.
    let mut f = flow();
    let mut h = request("POST", "/v1/chat/completions", &big);
    h.request_headers.remove("content-length");
    assert_eq!(f.on_request_headers(&mut h, false), Verdict::Pause);
    assert!(h.sent.is_none());
    assert_eq!(f.on_request_body(&mut h, 1000, false), Verdict::Pause);
    assert_eq!(f.on_request_body(&mut h, 3000, false), Verdict::Pause);
    let (status, v) = sent_error(&h);
    assert_eq!(status, 413);
    assert_eq!(v["error"]["code"], "request_too_large");
    // Later body callbacks are swallowed.
    assert_eq!(f.on_request_body(&mut h, 4000, true), Verdict::Pause);
}

#[test]
fn upstream_errors_are_normalized_and_scrubbed() {
    let mut f = flow();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let mut h = request("POST", "/v1/chat/completions", body);
    run(&mut f, &mut h);
    h.response_headers.insert(":status".into(), "401".into());
    h.response_headers
        .insert("content-type".into(), "text/plain".into());
    h.response_headers
        .insert("content-length".into(), "99".into());
    f.on_response_headers(&mut h, false);
    assert_eq!(h.response_headers["content-type"], "application/json");
    assert!(!h.response_headers.contains_key("content-length"));
    h.response_body = b"bad key sk-upstream-secret".to_vec();
    assert_eq!(f.on_response_body(&mut h, 5, false), Verdict::Pause);
    assert_eq!(f.on_response_body(&mut h, 26, true), Verdict::Continue);
    let v: Value = serde_json::from_slice(&h.response_body).unwrap();
    assert_eq!(
        v,
        json!({"error":{"message":"Upstream returned HTTP 401: bad key [redacted]","type":"authentication_error","param":null,"code":null}})
    );
}

#[test]
fn routing_to_one_target_with_one_key_reads_no_clock() {
    // Each clock read is a hostcall in Envoy; with nothing to choose
    // between, key health (the only use of the time here) is not read.
    let mut f = flow();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#;
    let mut h = request("POST", "/v1/chat/completions", body);
    assert_eq!(f.on_request_headers(&mut h, false), Verdict::Pause);
    let before = h.clock_reads.get();
    assert_eq!(
        f.on_request_body(&mut h, body.len(), true),
        Verdict::Continue
    );
    assert_eq!(h.request_headers[CLUSTER_HEADER], "llmgw_mock");
    assert_eq!(h.clock_reads.get(), before);
}

#[test]
fn passthrough_keeps_the_clients_bytes_but_the_model() {
    let mut f = flow();
    let body = "{ \"messages\" : [{\"role\":\"user\",\"content\":\"x\",\"model\":\"inner\"}],\n \"temperature\": 1.0,\"model\":\"gpt-4o-mini\",\"zz_vendor\":{\"b\":1,\"a\":2} }";
    let mut h = request("POST", "/v1/chat/completions", body);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    let sent = String::from_utf8(h.request_body.clone()).unwrap();
    let upstream = "gpt-4o-mini-2024-07-18";
    assert_eq!(
        sent,
        body.replace(
            "\"model\":\"gpt-4o-mini\"",
            &format!("\"model\":\"{upstream}\"")
        )
    );
    assert_eq!(h.request_headers["content-length"], sent.len().to_string());
}

#[test]
fn client_control_headers_are_removed() {
    let mut f = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#,
    );
    for (k, v) in [
        ("x-envoy-original-path", "/forged"),
        ("x-envoy-retriable-status-codes", "200"),
        ("x-envoy-internal", "true"),
        ("x-llm-gateway-pool", "chat\ngpt-4o-mini"),
    ] {
        h.request_headers.insert(k.into(), v.into());
    }
    run(&mut f, &mut h);
    let left: Vec<&String> = h
        .request_headers
        .keys()
        .filter(|k| k.starts_with("x-envoy") || k.starts_with("x-llm-gateway-p"))
        .collect();
    // Envoy sets x-envoy-internal itself (and strips it from external
    // clients); it stays.
    assert_eq!(left, ["x-envoy-internal"]);
    // The access log gets the path the client asked for.
    respond(&mut f, &mut h, "200", &["{}"]);
    assert_eq!(h.stream_values["llmgw.path"], "/v1/chat/completions");
}
