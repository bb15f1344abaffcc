//! Anthropic Messages and OpenAI Responses clients: passed through to a
//! provider of their own wire, translated for any other, and answered in
//! their own shapes (bodies, streams, errors) either way.

use super::*;

const CFG: &str = r#"{
    "providers": [
        {"name": "oai", "type": "openai", "base_url": "http://127.0.0.1:18080/v1", "api_key": "sk-oai-secret-1"},
        {"name": "claude", "type": "anthropic", "base_url": "http://127.0.0.1:18080/v1", "api_key": "sk-ant-secret-2"},
        {"name": "ds", "type": "deepseek", "api_key": "sk-ds-secret-3"},
        {"name": "gem", "type": "gemini", "api_key": "gem-secret-4"}
    ],
    "models": [
        {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]},
        {"name": "sonnet", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}]},
        {"name": "deepseek", "targets": [{"provider": "ds", "model": "deepseek-chat"}]},
        {"name": "flash", "targets": [{"provider": "gem", "model": "gemini-2.5-flash"}]}
    ]
}"#;

fn flow() -> StreamFlow {
    let cfg = PluginConfig::from_json(CFG.as_bytes()).unwrap();
    let gw = compile(&cfg, &|_| None).unwrap();
    StreamFlow::new(Rc::new(gw), 3)
}

fn messages(model: &str, stream: bool) -> RecordingHost {
    let body = json!({
        "model": model, "max_tokens": 100, "stream": stream,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hi"}]
    });
    let mut h = request("POST", "/v1/messages", &body.to_string());
    h.request_headers.remove("authorization");
    h.request_headers
        .insert("x-api-key".into(), "client-key".into());
    h.request_headers
        .insert("anthropic-version".into(), "2023-06-01".into());
    h.request_headers.insert(
        "anthropic-beta".into(),
        "context-management-2025-06-27".into(),
    );
    h
}

fn sent_body(h: &RecordingHost) -> Value {
    serde_json::from_slice(&h.request_body).unwrap()
}

const OPENAI_REPLY: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}"#;

#[test]
fn messages_to_an_openai_provider_are_translated_both_ways() {
    let mut f = flow();
    let mut h = messages("gpt", false);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(h.request_headers[":path"], "/v1/chat/completions");
    assert_eq!(h.request_headers["authorization"], "Bearer sk-oai-secret-1");
    // Anthropic's headers and the client's key never reach another vendor.
    for name in ["anthropic-version", "anthropic-beta", "x-api-key"] {
        assert!(!h.request_headers.contains_key(name), "{name} leaked");
    }
    let sent = sent_body(&h);
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(sent["messages"][1]["role"], "user");

    let out = respond(&mut f, &mut h, "200", &[OPENAI_REPLY]);
    let msg: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["model"], "gpt-4o-mini");
    assert_eq!(
        msg["content"][0],
        json!({"type": "text", "text": "Hi there"})
    );
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["usage"]["input_tokens"], 7);
    assert_eq!(msg["usage"]["output_tokens"], 2);
    assert_eq!(h.response_headers["content-length"], out.len().to_string());
    f.on_log(&mut h);
    assert_eq!(h.stream_values["llmgw.api"], "anthropic.messages");
    assert_eq!(h.stream_values["llmgw.tokens_in"], "7");
}

#[test]
fn messages_to_anthropic_pass_through_with_the_clients_headers() {
    let mut f = flow();
    let mut h = messages("sonnet", false);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(h.request_headers[":path"], "/v1/messages");
    assert_eq!(h.request_headers["x-api-key"], "sk-ant-secret-2");
    assert_eq!(h.request_headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        h.request_headers["anthropic-beta"],
        "context-management-2025-06-27"
    );
    assert!(!h.request_headers.contains_key("authorization"));
    let sent = sent_body(&h);
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["system"], "Be brief.");

    let reply = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":11,"output_tokens":3}}"#;
    let out = respond(&mut f, &mut h, "200", &[reply]);
    assert_eq!(out, reply.as_bytes());
    f.on_log(&mut h);
    assert_eq!(h.stream_values["llmgw.tokens_in"], "11");
    assert_eq!(h.stream_values["llmgw.tokens_out"], "3");
}

#[test]
fn a_client_without_anthropic_version_gets_the_configured_one() {
    let mut f = flow();
    let mut h = messages("sonnet", false);
    h.request_headers.remove("anthropic-version");
    run(&mut f, &mut h);
    assert_eq!(h.request_headers["anthropic-version"], "2023-06-01");
    assert!(!h.request_headers.contains_key("anthropic-beta"));
}

#[test]
fn messages_errors_are_anthropic_shaped() {
    // Unknown model: answered by the filter.
    let mut f = flow();
    let mut h = messages("nope", false);
    run(&mut f, &mut h);
    let (status, body) = sent_error(&h);
    assert_eq!(status, 404);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));

    // Invalid request: Anthropic's wording, Anthropic's shape.
    let mut f = flow();
    let mut h = request("POST", "/v1/messages", r#"{"model":"gpt","messages":[]}"#);
    run(&mut f, &mut h);
    let (status, body) = sent_error(&h);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));

    // An OpenAI provider's error quoting the key: Anthropic's shape, masked.
    let mut f = flow();
    let mut h = messages("gpt", false);
    run(&mut f, &mut h);
    let upstream = r#"{"error":{"message":"Incorrect API key provided: sk-oai-secret-1","type":"invalid_request_error","code":"invalid_api_key"}}"#;
    let out = respond(&mut f, &mut h, "401", &[upstream]);
    let body: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("sk-oai-secret-1"), "{text}");
}

#[test]
fn anthropic_errors_pass_through_normalized() {
    let mut f = flow();
    let mut h = messages("sonnet", false);
    run(&mut f, &mut h);
    let upstream = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let out = respond(&mut f, &mut h, "529", &[upstream]);
    let body: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(body["error"]["type"], "overloaded_error");
    assert_eq!(body["error"]["message"], "Overloaded");
}

#[test]
fn messages_streams_from_an_openai_provider_become_anthropic_events() {
    let mut f = flow();
    let mut h = messages("deepseek", true);
    run(&mut f, &mut h);
    assert_eq!(h.request_headers[":path"], "/v1/chat/completions");
    let sent = sent_body(&h);
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
    let chunks = [
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"He\"}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\ndata: [DONE]\n\n",
    ];
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "text/event-stream")],
        &chunks.map(str::as_bytes),
    );
    let text = String::from_utf8(out).unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    assert!(events.contains(&"content_block_delta"));
    assert!(text.contains("\"text\":\"He\"") && text.contains("\"text\":\"llo\""));
    assert!(text.contains("\"output_tokens\":2"));
    assert_eq!(h.response_headers["content-type"], "text/event-stream");
}

#[test]
fn a_broken_anthropic_passthrough_stream_ends_with_an_anthropic_error_event() {
    let mut f = flow();
    let mut h = messages("sonnet", true);
    run(&mut f, &mut h);
    let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":4,\"output_tokens\":1}}}\n\n";
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "text/event-stream")],
        &[
            start.as_bytes(),
            b"event: content_block_start\ndata: {not json}\n\n",
        ],
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with(start), "{text}");
    assert!(
        text.ends_with("\n\n") && text.contains("event: error\ndata: {\"type\":\"error\""),
        "{text}"
    );
    f.on_log(&mut h);
    assert!(super::hostile_responses::stream_error_counted(&h));
}

#[test]
fn count_tokens_is_answered_locally_unless_anthropic_serves_the_model() {
    let body = r#"{"model":"gpt","messages":[{"role":"user","content":"one two three four"}]}"#;
    let mut f = flow();
    let mut h = request("POST", "/v1/messages/count_tokens", body);
    run(&mut f, &mut h);
    let (status, answer) = sent_error(&h);
    assert_eq!(status, 200);
    assert!(answer["input_tokens"].as_u64().unwrap() > 0, "{answer}");

    let body = body.replace("\"gpt\"", "\"sonnet\"");
    let mut f = flow();
    let mut h = request("POST", "/v1/messages/count_tokens", &body);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert!(h.sent.is_none());
    assert_eq!(h.request_headers[":path"], "/v1/messages/count_tokens");
    assert_eq!(sent_body(&h)["model"], "claude-sonnet-4-5");
}

#[test]
fn responses_to_anthropic_are_translated_both_ways() {
    let mut f = flow();
    let body = json!({"model": "sonnet", "instructions": "Be brief.", "input": "Say hi",
                      "max_output_tokens": 50});
    let mut h = request("POST", "/v1/responses", &body.to_string());
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(h.request_headers[":path"], "/v1/messages");
    let sent = sent_body(&h);
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["max_tokens"], 50);
    let reply = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":6,"output_tokens":1}}"#;
    let out = respond(&mut f, &mut h, "200", &[reply]);
    let r: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"][0]["content"][0]["text"], "Hi");
    assert_eq!(r["usage"]["input_tokens"], 6);

    // An Anthropic error reaches a Responses client in OpenAI's shape.
    let mut f = flow();
    let mut h = request("POST", "/v1/responses", &body.to_string());
    run(&mut f, &mut h);
    let upstream = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}"#;
    let out = respond(&mut f, &mut h, "429", &[upstream]);
    let e: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(e["error"]["type"], "rate_limit_error");
    assert_eq!(e["error"]["message"], "Slow down");
}

#[test]
fn responses_to_openai_pass_through_to_its_responses_endpoint() {
    let mut f = flow();
    let body = json!({"model": "gpt", "input": "Say hi"});
    let mut h = request("POST", "/v1/responses", &body.to_string());
    run(&mut f, &mut h);
    assert_eq!(h.request_headers[":path"], "/v1/responses");
    assert_eq!(sent_body(&h)["model"], "gpt-4o-mini");
    // DeepSeek has no Responses API: translated to Chat Completions.
    let mut f = flow();
    let body = json!({"model": "deepseek", "input": "Say hi"});
    let mut h = request("POST", "/v1/responses", &body.to_string());
    run(&mut f, &mut h);
    assert_eq!(h.request_headers[":path"], "/v1/chat/completions");
    assert_eq!(sent_body(&h)["messages"][0]["content"], "Say hi");
}

#[test]
fn anthropic_clients_list_models_in_anthropics_shape() {
    let mut f = flow();
    let mut h = request("GET", "/v1/models", "");
    h.request_headers
        .insert("anthropic-version".into(), "2023-06-01".into());
    run(&mut f, &mut h);
    let (status, list) = sent_error(&h);
    assert_eq!(status, 200);
    assert_eq!(list["data"][0]["type"], "model");
    assert_eq!(list["has_more"], false);
    // Unknown URLs too answer in the client's shape.
    let mut f = flow();
    let mut h = request("POST", "/v1/complete", "{}");
    h.request_headers
        .insert("anthropic-version".into(), "2023-06-01".into());
    run(&mut f, &mut h);
    let (status, e) = sent_error(&h);
    assert_eq!(status, 404);
    assert_eq!(e["type"], "error");
}

#[test]
fn envoys_own_replies_reach_anthropic_clients_in_anthropics_shape() {
    // No provider answered: Envoy's 503, which its local-reply mappers
    // wrote in OpenAI's shape, is rewritten for the Anthropic client.
    let mut f = flow();
    let mut h = messages("flash", false);
    run(&mut f, &mut h);
    h.response_details = Some("upstream_reset_before_response_started{connection_failure}".into());
    let envoy = r#"{"error":{"message":"The provider could not be reached: upstream connect error (upstream_reset_before_response_started{connection_failure}).","type":"api_error","param":null,"code":"service_unavailable"}}"#;
    let out = respond(&mut f, &mut h, "503", &[envoy]);
    let body: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("The provider could not be reached"));

    // A provider's own error is read by the provider's edge.
    let mut f = flow();
    let mut h = messages("flash", false);
    run(&mut f, &mut h);
    h.response_details = Some("via_upstream".into());
    let gemini =
        r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#;
    let out = respond(&mut f, &mut h, "429", &[gemini]);
    let body: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["message"], "Quota exceeded");
}
