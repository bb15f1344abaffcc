//! Providers whose requests carry an access token from the shared cache
//! (Baidu ERNIE v1): used when there, waited for while it is fetched,
//! a 503 naming the provider when it cannot come.

use super::*;
use crate::tokens::cache;

const CFG: &str = r#"{
    "providers": [
        {"name": "ernie", "type": "ernie", "base_url": "http://127.0.0.1:9/rpc/2.0/ai_custom/v1/wenxinworkshop/chat",
         "token": {"client_id": "ak", "client_secret": "sk-secret", "wait_ms": 2000}}
    ],
    "models": [{"name": "ernie-4", "targets": [{"provider": "ernie", "model": "completions_pro"}]}]
}"#;
const S: u64 = 1_000_000_000;
const BODY: &str = r#"{"model":"ernie-4","messages":[{"role":"user","content":"你好"}]}"#;

fn flow() -> (StreamFlow, String) {
    let cfg = PluginConfig::from_json(CFG.as_bytes()).unwrap();
    let gw = Rc::new(compile(&cfg, &|_| None).unwrap());
    let key = gw.providers[0].token.as_ref().unwrap().key.clone();
    (StreamFlow::new(gw, 5), key)
}

const PATH: &str = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro";

#[test]
fn a_cached_token_goes_in_the_query() {
    let (mut f, key) = flow();
    let mut h = request("POST", "/v1/chat/completions", BODY);
    h.clock_ns.set(10 * S);
    cache::fulfil(&h.store, &key, "24.tok", 100 * S, 90 * S).unwrap();
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(
        h.request_headers[":path"],
        format!("{PATH}?access_token=24.tok")
    );
    assert!(!h.request_headers.contains_key("authorization"));
    let body: Value = serde_json::from_slice(&h.request_body).unwrap();
    assert_eq!(body["messages"][0]["content"], "你好");
}

#[test]
fn a_request_waits_for_the_token_being_fetched() {
    let (mut f, key) = flow();
    let mut h = request("POST", "/v1/chat/completions", BODY);
    h.clock_ns.set(10 * S);
    assert!(cache::claim(&h.store, &key, 10 * S, 30 * S).unwrap());
    assert_eq!(run(&mut f, &mut h), Verdict::Pause);
    assert!(f.awaiting_token());
    assert!(h.sent.is_none());
    h.clock_ns.set(11 * S);
    assert!(!f.on_token_tick(&mut h));
    cache::fulfil(&h.store, &key, "24.new", 100 * S, 90 * S).unwrap();
    assert!(f.on_token_tick(&mut h));
    assert_eq!(h.resumed, 1);
    assert_eq!(
        h.request_headers[":path"],
        format!("{PATH}?access_token=24.new")
    );
    assert!(!f.awaiting_token());
}

#[test]
fn no_token_in_time_is_a_503_naming_the_provider() {
    let (mut f, key) = flow();
    let mut h = request(
        "POST",
        "/v1/messages",
        r#"{"model":"ernie-4","max_tokens":9,"messages":[{"role":"user","content":"x"}]}"#,
    );
    h.clock_ns.set(10 * S);
    assert!(cache::claim(&h.store, &key, 10 * S, 30 * S).unwrap());
    assert_eq!(run(&mut f, &mut h), Verdict::Pause);
    h.clock_ns.set(13 * S);
    assert!(f.on_token_tick(&mut h));
    let (status, v) = sent_error(&h);
    assert_eq!(status, 503);
    // In the client's protocol (Anthropic here).
    assert_eq!(v["type"], "error");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("Provider 'ernie' has no access token"), "{m}");
    assert_eq!(h.resumed, 0);
}

#[test]
fn a_failing_token_endpoint_fails_requests_at_once() {
    let (mut f, key) = flow();
    let mut h = request("POST", "/v1/chat/completions", BODY);
    h.clock_ns.set(10 * S);
    assert!(cache::claim(&h.store, &key, 10 * S, 30 * S).unwrap());
    cache::fail(&h.store, &key, 10 * S).unwrap();
    run(&mut f, &mut h);
    let (status, v) = sent_error(&h);
    assert_eq!(status, 503);
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("failed 1 time(s) in a row"), "{m}");
    assert!(!m.contains("sk-secret"));
}

/// A 200 JSON answer in one chunk; the verdict of its body.
fn hold_answer(f: &mut StreamFlow, h: &mut crate::testing::RecordingHost, body: &[u8]) -> Verdict {
    h.response_headers.insert(":status".into(), "200".into());
    h.response_headers
        .insert("content-type".into(), "application/json".into());
    assert_eq!(f.on_response_headers(h, false), Verdict::Pause);
    h.response_body = body.to_vec();
    f.on_response_body(h, body.len(), true)
}

#[test]
fn a_refused_token_is_replaced_and_the_request_sent_once_more() {
    let (mut f, key) = flow();
    let mut h = request("POST", "/v1/chat/completions", BODY);
    h.clock_ns.set(10 * S);
    cache::fulfil(&h.store, &key, "24.old", 100 * S, 90 * S).unwrap();
    run(&mut f, &mut h);
    let sent = h.request_body.clone();
    let refused = br#"{"error_code":111,"error_msg":"Access token expired"}"#;
    // The refusal is held, the token marked stale.
    assert_eq!(hold_answer(&mut f, &mut h, refused), Verdict::Pause);
    assert!(h.sent.is_none());
    assert!(f.awaiting_token());
    assert!(cache::read(&h.store, &key).stale);
    assert!(!f.on_token_tick(&mut h));
    cache::fulfil(&h.store, &key, "24.new", 200 * S, 190 * S).unwrap();
    assert!(f.on_token_tick(&mut h));
    let call = &h.callouts[0];
    assert!(call
        .headers
        .iter()
        .any(|(k, v)| k == ":path" && v == &format!("{PATH}?access_token=24.new")));
    assert_eq!(call.body, sent);
    assert_eq!(f.retry_callout(), Some(1));
    let ok = br#"{"id":"as-1","result":"again","finish_reason":"normal","usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
    f.on_callout_response(&mut h, Some(200), ok);
    let (status, body) = h.sent.clone().unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "again");
}

#[test]
fn a_second_refusal_is_answered_not_retried() {
    let (mut f, key) = flow();
    let mut h = request("POST", "/v1/chat/completions", BODY);
    cache::fulfil(&h.store, &key, "24.old", u64::MAX, u64::MAX).unwrap();
    run(&mut f, &mut h);
    let refused = br#"{"error_code":110,"error_msg":"Access token invalid or no longer valid"}"#;
    assert_eq!(hold_answer(&mut f, &mut h, refused), Verdict::Pause);
    cache::fulfil(&h.store, &key, "24.new", u64::MAX, u64::MAX).unwrap();
    assert!(f.on_token_tick(&mut h));
    f.on_callout_response(&mut h, Some(200), refused);
    let (status, v) = sent_error(&h);
    assert_eq!(status, 503);
    assert_eq!(v["error"]["code"], "provider_token_refused");
}

#[test]
fn a_stream_answered_with_an_error_body_gets_that_error() {
    let (mut f, key) = flow();
    let mut h = request(
        "POST",
        "/v1/chat/completions",
        r#"{"model":"ernie-4","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
    );
    cache::fulfil(&h.store, &key, "24.tok", u64::MAX, u64::MAX).unwrap();
    run(&mut f, &mut h);
    let body =
        br#"{"error_code":336003,"error_msg":"the length of messages must be an odd number"}"#;
    super::respond_with(
        &mut f,
        &mut h,
        "200",
        &[("content-type", "application/json")],
        &[body],
    );
    assert_eq!(h.response_headers[":status"], "400");
    let v: Value = serde_json::from_slice(&h.response_body).unwrap();
    assert_eq!(v["error"]["code"], "ernie_336003");
    assert!(!cache::read(&h.store, &key).stale);
}

const VERTEX: &str = r#"{
    "providers": [
        {"name": "claude-vertex", "type": "vertex-anthropic", "vertex": {"project": "my-project", "region": "us-east5"},
         "token": {"url": "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"}}
    ],
    "models": [{"name": "claude", "targets": [{"provider": "claude-vertex", "model": "claude-sonnet-4-5@20250929"}]}]
}"#;

#[test]
fn vertex_requests_carry_a_bearer_token_and_vertex_bodies() {
    let cfg = PluginConfig::from_json(VERTEX.as_bytes()).unwrap();
    let gw = Rc::new(compile(&cfg, &|_| None).unwrap());
    let p = &gw.providers[0];
    assert_eq!(p.endpoint.authority(), "us-east5-aiplatform.googleapis.com");
    let (cluster, endpoint) = p.token_endpoint.as_ref().unwrap();
    assert_eq!(cluster, "llmgw_claude-vertex_token");
    assert_eq!(endpoint.authority(), "169.254.169.254");
    let key = p.token.as_ref().unwrap().key.clone();
    assert!(p.token.as_ref().unwrap().cluster.ends_with("_token"));
    let mut f = StreamFlow::new(Rc::clone(&gw), 1);
    let mut h = request(
        "POST",
        "/v1/messages",
        r#"{"model":"claude","max_tokens":20,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u"}}"#,
    );
    cache::fulfil(&h.store, &key, "ya29.tok", u64::MAX, u64::MAX).unwrap();
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(
        h.request_headers[":path"],
        "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    );
    assert_eq!(h.request_headers["authorization"], "Bearer ya29.tok");
    let body: Value = serde_json::from_slice(&h.request_body).unwrap();
    assert!(body.get("model").is_none());
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(body["metadata"]["user_id"], "u");
    // Vertex serves no count_tokens at this path.
    let mut f = StreamFlow::new(gw, 2);
    let mut h = request(
        "POST",
        "/v1/messages/count_tokens",
        r#"{"model":"claude","messages":[{"role":"user","content":"hi"}]}"#,
    );
    cache::fulfil(&h.store, &key, "ya29.tok", u64::MAX, u64::MAX).unwrap();
    run(&mut f, &mut h);
    assert_eq!(sent_error(&h).0, 400);
}

#[test]
fn vertex_config_errors_name_the_field() {
    for (provider, field) in [
        (
            r#"{"name":"v","type":"vertex","token":{"url":"http://169.254.169.254/t"}}"#,
            "providers[0].vertex",
        ),
        (
            r#"{"name":"v","type":"vertex","vertex":{"project":"my-project","region":"us-east5"}}"#,
            "providers[0].token",
        ),
        (
            r#"{"name":"v","type":"vertex","vertex":{"project":"my-project","region":"nowhere"},"token":{"url":"http://169.254.169.254/t"}}"#,
            "providers[0].vertex.region",
        ),
        (
            r#"{"name":"v","type":"vertex","vertex":{"project":"my-project","region":"us-east5"},"token":{"service_account":"{}"}}"#,
            "providers[0].token.service_account",
        ),
        (
            r#"{"name":"v","type":"vertex","vertex":{"project":"my-project","region":"us-east5"},"token":{"client_id":"a","url":"http://x/t"}}"#,
            "providers[0].token.client_id",
        ),
        (
            r#"{"name":"v","type":"vertex","api_key":"k","vertex":{"project":"my-project","region":"us-east5"},"token":{"url":"http://x/t"}}"#,
            "providers[0].api_key",
        ),
        (
            r#"{"name":"e","type":"ernie","token":{"client_id":"a"}}"#,
            "providers[0].token.client_secret",
        ),
        (
            r#"{"name":"o","type":"openai","api_key":"k","token":{"url":"http://x/t"}}"#,
            "providers[0].token",
        ),
    ] {
        let text = format!(
            r#"{{"providers":[{provider}],"models":[{{"name":"m","targets":[{{"provider":"{}"}}]}}]}}"#,
            if provider.contains(r#""name":"v""#) {
                "v"
            } else if provider.contains(r#""name":"e""#) {
                "e"
            } else {
                "o"
            }
        );
        let e = compile(&PluginConfig::from_json(text.as_bytes()).unwrap(), &|_| {
            None
        })
        .unwrap_err();
        assert_eq!(e.field, field, "{provider}: {e}");
    }
}
