//! Shadow models: which requests are copied, how they are marked, and how
//! the copy is served on the internal listener.

use super::{request, run};
use crate::config::{compile, PluginConfig};
use crate::flow::{
    StreamFlow, Verdict, CLUSTER_HEADER, POOL_KEY, SHADOW_CLUSTER, SHADOW_CONSUMER_HEADER,
    SHADOW_MODEL_HEADER, SHADOW_OF_HEADER, SHADOW_ROUTE_HEADER,
};
use crate::testing::RecordingHost;
use std::rc::Rc;

fn config(percent: f64) -> String {
    format!(
        r#"{{
        "providers": [
            {{"name": "oai", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k1"}},
            {{"name": "claude", "type": "anthropic", "base_url": "http://127.0.0.1:1/v1", "api_key": "k2"}}
        ],
        "models": [
            {{"name": "gpt", "targets": [{{"provider": "oai", "model": "gpt-4o-mini"}}],
             "shadow": {{"model": "next", "percent": {percent}}}}},
            {{"name": "next", "targets": [{{"provider": "claude", "model": "claude-haiku-4-5", "max_tokens": 64}}]}}
        ],
        "rate_limits": {{"rules": [{{"name": "one", "requests": {{"limit": 1, "per": "hour"}}}}]}}
    }}"#
    )
}

fn flow(percent: f64, seed: u64) -> StreamFlow {
    let cfg = PluginConfig::from_json(config(percent).as_bytes()).unwrap();
    StreamFlow::new(Rc::new(compile(&cfg, &|_| None).unwrap()), seed)
}

const BODY: &str = r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}]}"#;

fn chat() -> RecordingHost {
    request("POST", "/v1/chat/completions", BODY)
}

#[test]
fn a_copied_request_is_marked_and_leaves_in_the_clients_form() {
    let mut f = flow(100.0, 7);
    let mut h = chat();
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert_eq!(h.request_headers[SHADOW_ROUTE_HEADER], SHADOW_CLUSTER);
    assert_eq!(h.request_headers[SHADOW_MODEL_HEADER], "next");
    assert_eq!(h.request_headers[SHADOW_OF_HEADER], "gpt");
    assert_eq!(h.request_headers[CLUSTER_HEADER], "llmgw_oai");
    // Rewritten per attempt upstream: the body is still the client's.
    assert_eq!(h.request_body, BODY.as_bytes());
    assert_eq!(
        h.stream_values.get(POOL_KEY).map(String::as_str),
        Some("openai.chat_completions\ngpt\ngpt-4o-mini")
    );
}

#[test]
fn the_share_copied_follows_the_percentage() {
    let copied = (0..2000u64)
        .filter(|seed| {
            let mut f = flow(25.0, *seed);
            let mut h = chat();
            run(&mut f, &mut h);
            h.request_headers.contains_key(SHADOW_ROUTE_HEADER)
        })
        .count();
    // 500 expected; 4 sigma is 77.
    assert!((423..=577).contains(&copied), "{copied}");
}

fn copy_on(shadow_listener: bool) -> RecordingHost {
    let mut h = chat();
    h.request_headers.remove("authorization");
    for (k, v) in [
        (SHADOW_MODEL_HEADER, "next"),
        (SHADOW_OF_HEADER, "gpt"),
        (SHADOW_ROUTE_HEADER, SHADOW_CLUSTER),
        (SHADOW_CONSUMER_HEADER, "nobody"),
    ] {
        h.request_headers.insert(k.into(), v.into());
    }
    h.shadow_listener = shadow_listener;
    h
}

#[test]
fn the_copy_is_served_as_the_shadow_model_outside_the_limits() {
    // The one request of the hour goes to the primary…
    let mut f = flow(100.0, 1);
    let mut h = chat();
    run(&mut f, &mut h);
    assert!(h.sent.is_none());
    let store = std::mem::take(&mut h.store);
    // The limit is spent: another client request is refused.
    let mut f = flow(100.0, 1);
    let mut again = chat();
    again.store = store;
    run(&mut f, &mut again);
    assert_eq!(again.sent.as_ref().map(|s| s.0), Some(429));
    let store = std::mem::take(&mut again.store);
    // …and its copy is still served: a copy takes nothing from the limits.
    let mut f = flow(100.0, 1);
    let mut h = copy_on(true);
    h.store = store;
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert!(h.sent.is_none(), "{:?}", h.sent);
    assert_eq!(h.request_headers[CLUSTER_HEADER], "llmgw_claude");
    assert_eq!(h.request_headers[":path"], "/v1/messages");
    let body: serde_json::Value = serde_json::from_slice(&h.request_body).unwrap();
    assert_eq!(body["model"], "claude-haiku-4-5");
    // Not copied again, and no marker goes on.
    for name in [SHADOW_ROUTE_HEADER, SHADOW_MODEL_HEADER, SHADOW_OF_HEADER] {
        assert!(!h.request_headers.contains_key(name), "{name}");
    }
}

#[test]
fn markers_from_a_client_are_dropped_and_change_nothing() {
    let mut f = flow(0.01, 3);
    let mut h = copy_on(false);
    h.request_headers
        .insert("authorization".into(), "Bearer client".into());
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    // Served as `gpt` (the body's model), with no marker left.
    assert_eq!(h.request_headers[CLUSTER_HEADER], "llmgw_oai");
    for name in [
        SHADOW_MODEL_HEADER,
        SHADOW_OF_HEADER,
        SHADOW_CONSUMER_HEADER,
    ] {
        assert!(!h.request_headers.contains_key(name), "{name}");
    }
}

#[test]
fn shadow_config_errors_name_the_field() {
    for (shadow, field, why) in [
        (
            r#"{"model": "nope", "percent": 5}"#,
            "models[0].shadow.model",
            "unknown model",
        ),
        (
            r#"{"model": "gpt", "percent": 5}"#,
            "models[0].shadow.model",
            "itself",
        ),
        (
            r#"{"model": "next", "percent": 0}"#,
            "models[0].shadow.percent",
            "between",
        ),
        (
            r#"{"model": "next", "percent": 101}"#,
            "models[0].shadow.percent",
            "between",
        ),
    ] {
        let text = config(1.0).replace(r#"{"model": "next", "percent": 1}"#, shadow);
        let cfg = PluginConfig::from_json(text.as_bytes()).unwrap();
        let err = compile(&cfg, &|_| None).unwrap_err().to_string();
        assert!(err.contains(field) && err.contains(why), "{shadow}: {err}");
    }
}
