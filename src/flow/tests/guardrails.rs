//! Guardrails through the flow: requests refused or masked in every
//! client API, responses masked or stopped (whole and streamed), the
//! moderation callout allowed, flagged, failed open and closed.

use super::*;

const CFG: &str = r#"{
    "providers": [
        {"name": "oai", "type": "openai", "base_url": "http://127.0.0.1:18080/v1", "api_key": "sk-oai-secret-1"},
        {"name": "claude", "type": "anthropic", "base_url": "http://127.0.0.1:18080/v1", "api_key": "sk-ant-secret-2"},
        {"name": "mod", "type": "openai", "base_url": "http://127.0.0.1:18081/v1", "api_key": "sk-mod-3"}
    ],
    "guardrails": [
        {"name": "secrets", "words": ["机密", "Project X"], "action": "block"},
        {"name": "brands", "words": ["ACME"], "action": "mask"},
        {"name": "watch", "words": ["refund"], "action": "log", "apply_to": ["request"]},
        {"name": "pii", "pii": ["cn_mobile", "email"], "action": "mask"},
        {"name": "moderated", "moderation": {"provider": "mod", "model": "omni-moderation-latest", "timeout_ms": 300}},
        {"name": "moderated-open", "moderation": {"provider": "mod", "failure_mode": "open"}}
    ],
    "consumers": [
        {"name": "team", "api_keys": ["sha256:0a1b0d1b2ee4c7c5e80d34e6ac0f9eb5f5fd0b41d6d1cba0e2d1a7e4b0e5d20f"], "guardrails": ["pii"]}
    ],
    "auth": {"required": false},
    "models": [
        {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}], "guardrails": ["secrets", "brands", "watch"]},
        {"name": "sonnet", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}], "guardrails": ["secrets", "brands"]},
        {"name": "checked", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}], "guardrails": ["moderated"]},
        {"name": "checked-open", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}], "guardrails": ["moderated-open"]},
        {"name": "plain", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]}
    ]
}"#;

fn flow() -> StreamFlow {
    let cfg = PluginConfig::from_json(CFG.as_bytes()).unwrap();
    let gw = compile(&cfg, &|_| None).unwrap();
    StreamFlow::new(Rc::new(gw), 5)
}

fn chat(model: &str, text: &str, stream: bool) -> RecordingHost {
    let body =
        json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]});
    request("POST", "/v1/chat/completions", &body.to_string())
}

fn sent(h: &RecordingHost) -> Value {
    serde_json::from_slice(&h.request_body).unwrap()
}

fn counter(h: &RecordingHost, name: &str) -> u64 {
    h.metrics
        .iter()
        .filter_map(|m| match m {
            MetricOp::Counter { name: n, delta } if n.as_str() == name => Some(*delta),
            _ => None,
        })
        .sum()
}

#[test]
fn a_blocked_term_refuses_the_request_naming_the_rule_not_the_term() {
    let mut f = flow();
    let mut h = chat("gpt", "请总结这份機密文件", false);
    run(&mut f, &mut h);
    let (status, body) = sent_error(&h);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "content_policy_violation");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("guardrail 'secrets'"), "{msg}");
    assert!(!msg.contains("機密") && !msg.contains("机密"));
    f.on_log(&mut h);
    assert_eq!(
        counter(
            &h,
            "llm_gateway_guardrail_hits_total;list=secrets;action=block;direction=request"
        ),
        1
    );
    assert_eq!(
        h.stream_values["llmgw.guardrails"],
        "secrets:block:request:1"
    );
    assert!(h.logs.borrow().iter().all(|l| !l.contains("機密")));
}

#[test]
fn messages_clients_are_refused_in_anthropics_error_shape() {
    let mut f = flow();
    let body = json!({"model": "sonnet", "max_tokens": 10, "system": "about project x",
        "messages": [{"role": "user", "content": "hi"}]});
    let mut h = request("POST", "/v1/messages", &body.to_string());
    run(&mut f, &mut h);
    let (status, body) = sent_error(&h);
    assert_eq!(status, 400);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'secrets'"));
}

#[test]
fn masked_request_text_is_what_the_provider_gets() {
    let mut f = flow();
    let mut h = chat("gpt", "ACME wants a refund", false);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    let body = sent(&h);
    assert_eq!(body["messages"][0]["content"], "**** wants a refund");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        h.request_headers["content-length"],
        h.request_body.len().to_string()
    );
}

#[test]
fn a_consumers_rules_apply_on_top_of_the_models() {
    let mut h = chat("plain", "call 13812345678", false);
    h.request_headers
        .insert("authorization".into(), "Bearer team-key".into());
    let cfg = PluginConfig::from_json(
        CFG.replace(
            "sha256:0a1b0d1b2ee4c7c5e80d34e6ac0f9eb5f5fd0b41d6d1cba0e2d1a7e4b0e5d20f",
            &format!(
                "sha256:{}",
                sha2_256(b"team-key")
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
        )
        .as_bytes(),
    )
    .unwrap();
    let mut f = StreamFlow::new(Rc::new(compile(&cfg, &|_| None).unwrap()), 5);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(sent(&h)["messages"][0]["content"], "call ***********");
    // Without the consumer's key, nothing is masked.
    let mut f2 = StreamFlow::new(Rc::new(compile(&cfg, &|_| None).unwrap()), 5);
    let mut h2 = chat("plain", "call 13812345678", false);
    h2.request_headers.remove("authorization");
    run(&mut f2, &mut h2);
    assert_eq!(sent(&h2)["messages"][0]["content"], "call 13812345678");
}

fn sha2_256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

const REPLY: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Ask ACME about it"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":4,"total_tokens":11}}"#;

#[test]
fn a_whole_response_is_masked_or_stopped() {
    let mut f = flow();
    let mut h = chat("gpt", "hello", false);
    run(&mut f, &mut h);
    let out = respond(&mut f, &mut h, "200", &[REPLY]);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Ask **** about it");
    assert_eq!(v["usage"]["total_tokens"], 11);

    let mut f = flow();
    let mut h = chat("gpt", "hello", false);
    run(&mut f, &mut h);
    let out = respond(&mut f, &mut h, "200", &[&REPLY.replace("ACME", "机密")]);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    f.on_log(&mut h);
    assert_eq!(
        counter(
            &h,
            "llm_gateway_guardrail_hits_total;list=secrets;action=block;direction=response"
        ),
        1
    );
}

fn chunk(text: &str) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
        serde_json::to_string(text).unwrap()
    )
}

const STOP: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

/// The text of an OpenAI stream and its finish reasons and errors.
fn read_stream(out: &[u8]) -> (String, Vec<String>, Vec<Value>) {
    let (mut text, mut finish, mut errors) = (String::new(), Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(out).lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if v.get("error").is_some() {
            errors.push(v);
            continue;
        }
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
        if let Some(r) = v["choices"][0]["finish_reason"].as_str() {
            finish.push(r.to_string());
        }
    }
    (text, finish, errors)
}

#[test]
fn a_stream_is_masked_across_events_and_chunk_splits() {
    let body = [
        chunk("Our partner AC"),
        chunk("ME says hi"),
        STOP.to_string(),
    ]
    .concat();
    let bytes = body.as_bytes();
    for split in [1, 7, 50, 120, bytes.len() / 2, bytes.len() - 3] {
        let mut f = flow();
        let mut h = chat("gpt", "hello", true);
        run(&mut f, &mut h);
        let out = respond_with(
            &mut f,
            &mut h,
            "200",
            &[("content-type", "text/event-stream")],
            &[&bytes[..split], &bytes[split..]],
        );
        let (text, finish, errors) = read_stream(&out);
        assert_eq!(text, "Our partner **** says hi", "split {split}");
        assert_eq!(finish, ["stop"]);
        assert!(errors.is_empty());
        assert!(String::from_utf8_lossy(&out).ends_with("data: [DONE]\n\n"));
    }
}

#[test]
fn a_blocked_stream_ends_with_content_filter_and_an_error_event() {
    let mut f = flow();
    let mut h = chat("gpt", "hello", true);
    run(&mut f, &mut h);
    let body = [
        chunk("The plan: Proj"),
        chunk("ect X is"),
        chunk(" secret"),
        STOP.to_string(),
    ]
    .concat();
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "text/event-stream")],
        &[body.as_bytes()],
    );
    let (text, finish, errors) = read_stream(&out);
    assert_eq!(text, "The plan: ");
    assert_eq!(finish, ["content_filter"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["error"]["code"], "content_policy_violation");
    assert!(!String::from_utf8_lossy(&out).contains("ect X"));
}

#[test]
fn an_anthropic_stream_is_stopped_with_refusal() {
    let mut f = flow();
    let body = json!({"model": "sonnet", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let mut h = request("POST", "/v1/messages", &body.to_string());
    run(&mut f, &mut h);
    // Response rules: translated even to an Anthropic provider.
    assert_eq!(h.request_headers[":path"], "/v1/messages");
    let events = [
        r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":0}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"It is 机"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"密 stuff"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#,
        r#"{"type":"message_stop"}"#,
    ];
    let sse: String = events
        .iter()
        .map(|e| {
            let t: Value = serde_json::from_str(e).unwrap();
            format!("event: {}\ndata: {e}\n\n", t["type"].as_str().unwrap())
        })
        .collect();
    let out = respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "text/event-stream")],
        &[sse.as_bytes()],
    );
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("\"stop_reason\":\"refusal\""), "{out}");
    assert!(out.contains("event: error"), "{out}");
    assert!(out.contains("It is "));
    assert!(!out.contains("stuff") && !out.contains('机'));
}

#[test]
fn models_without_response_rules_still_pass_through() {
    let mut f = flow();
    let mut h = chat("plain", "hello", false);
    run(&mut f, &mut h);
    let out = respond(&mut f, &mut h, "200", &[REPLY]);
    assert_eq!(out, REPLY.as_bytes());
}

fn moderation_reply(flagged: bool) -> Vec<u8> {
    json!({"id": "modr", "model": "omni-moderation-latest", "results": [{"flagged": flagged,
        "categories": {"violence": flagged, "hate": false}}]})
    .to_string()
    .into_bytes()
}

#[test]
fn moderation_holds_the_request_then_lets_it_go() {
    let mut f = flow();
    let mut h = chat("checked", "how do I bake bread", false);
    assert_eq!(run(&mut f, &mut h), Verdict::Pause);
    assert_eq!(h.callouts.len(), 1);
    let c = &h.callouts[0];
    assert_eq!(c.cluster, "llmgw_mod");
    assert_eq!(c.timeout_ms, 300);
    let header = |n: &str| {
        c.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header(":path"), Some("/v1/moderations"));
    assert_eq!(header(":authority"), Some("127.0.0.1:18081"));
    assert_eq!(header("authorization"), Some("Bearer sk-mod-3"));
    let body: Value = serde_json::from_slice(&c.body).unwrap();
    assert_eq!(
        body,
        json!({"model": "omni-moderation-latest", "input": "how do I bake bread"})
    );
    // Nothing was routed yet; trailers arriving meanwhile change nothing.
    assert!(!h.request_headers.contains_key(CLUSTER_HEADER));
    let len = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, len, true), Verdict::Pause);
    assert_eq!(h.callouts.len(), 1);
    f.on_callout_response(&mut h, Some(200), &moderation_reply(false));
    assert_eq!(h.resumed, 1);
    assert_eq!(h.request_headers[CLUSTER_HEADER], "llmgw_oai");
    assert_eq!(sent(&h)["model"], "gpt-4o-mini");
    f.on_log(&mut h);
    assert_eq!(
        counter(
            &h,
            "llm_gateway_guardrail_moderation_total;list=moderated;outcome=allowed"
        ),
        1
    );
}

#[test]
fn a_flagged_request_is_refused() {
    let mut f = flow();
    let mut h = chat("checked", "something violent", false);
    run(&mut f, &mut h);
    f.on_callout_response(&mut h, Some(200), &moderation_reply(true));
    assert_eq!(h.resumed, 0);
    let (status, body) = sent_error(&h);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "content_policy_violation");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("violence"));
}

#[test]
fn no_verdict_fails_closed_or_open_as_configured() {
    for (status, body) in [
        (None, Vec::new()),
        (Some(500), b"oops".to_vec()),
        (Some(200), b"<html>".to_vec()),
        (Some(200), b"{\"results\":[{}]}".to_vec()),
    ] {
        let mut f = flow();
        let mut h = chat("checked", "hi", false);
        run(&mut f, &mut h);
        f.on_callout_response(&mut h, status, &body);
        let (code, err) = sent_error(&h);
        assert_eq!(code, 503, "{status:?}");
        assert_eq!(err["error"]["code"], "moderation_unavailable");
        assert_eq!(h.resumed, 0);

        let mut f = flow();
        let mut h = chat("checked-open", "hi", false);
        run(&mut f, &mut h);
        f.on_callout_response(&mut h, status, &body);
        assert!(h.sent.is_none());
        assert_eq!(h.resumed, 1);
        f.on_log(&mut h);
        assert_eq!(
            counter(
                &h,
                "llm_gateway_guardrail_moderation_total;list=moderated-open;outcome=failed_open"
            ),
            1
        );
    }
}

#[test]
fn a_callout_that_cannot_be_sent_follows_the_failure_mode() {
    let mut f = flow();
    let mut h = chat("checked", "hi", false);
    h.callout_error = Some("BadArgument".into());
    run(&mut f, &mut h);
    assert_eq!(sent_error(&h).0, 503);
    let mut f = flow();
    let mut h = chat("checked-open", "hi", false);
    h.callout_error = Some("BadArgument".into());
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(h.request_headers[CLUSTER_HEADER], "llmgw_oai");
}

#[test]
fn unknown_rule_names_and_moderation_providers_are_config_errors() {
    let bad = CFG.replace("\"guardrails\": [\"pii\"]", "\"guardrails\": [\"nope\"]");
    let e = compile(&PluginConfig::from_json(bad.as_bytes()).unwrap(), &|_| None).unwrap_err();
    assert_eq!(e.field, "consumers[0].guardrails[0]");
    let bad = CFG.replace(
        "{\"provider\": \"mod\", \"failure_mode\"",
        "{\"provider\": \"claude\", \"failure_mode\"",
    );
    let e = compile(&PluginConfig::from_json(bad.as_bytes()).unwrap(), &|_| None).unwrap_err();
    assert_eq!(e.field, "guardrails[5].moderation.provider");
    assert!(e.to_string().contains("OpenAI-compatible"), "{e}");
}
