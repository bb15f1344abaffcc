//! Rate limits, the client address they key on, and their shared-data
//! keys.

use super::*;

#[test]
fn client_ip_trusts_only_configured_hops() {
    use crate::flow::guard::client_ip;
    let mut h = RecordingHost::default();
    h.request_headers
        .insert("x-forwarded-for".into(), "203.0.113.9, 198.51.100.2".into());
    // No trusted hops: the header is ignored, the TCP peer counts.
    assert_eq!(client_ip(&h, 0).as_deref(), Some("192.0.2.7"));
    // One proxy appended the client it saw; two: the entry before.
    assert_eq!(client_ip(&h, 1).as_deref(), Some("198.51.100.2"));
    assert_eq!(client_ip(&h, 2).as_deref(), Some("203.0.113.9"));
    // Fewer entries than trusted hops: spoofable, so fall back to the peer.
    assert_eq!(client_ip(&h, 3).as_deref(), Some("192.0.2.7"));
}

#[test]
fn rate_limited_requests_get_429_with_headers_and_never_reach_upstream() {
    let cfg = r#"{
        "providers": [{"name": "mock", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}],
        "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
        "rate_limits": {"rules": [{"name": "per-route", "by": ["route"], "requests": {"limit": 1, "per": "hour"}}]}
    }"#;
    let gw =
        Rc::new(compile(&PluginConfig::from_json(cfg.as_bytes()).unwrap(), &|_| None).unwrap());
    let store = MemStore::default();
    assert_eq!(gw.precreate_state(&store, 1).unwrap(), 2);
    let body = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
    let mut first = request("POST", "/v1/chat/completions", body);
    first.store = store;
    let mut f = StreamFlow::new(Rc::clone(&gw), 1);
    assert_eq!(run(&mut f, &mut first), Verdict::Continue);
    let mut second = request("POST", "/v1/chat/completions", body);
    second.store = std::mem::take(&mut first.store);
    let mut f = StreamFlow::new(Rc::clone(&gw), 2);
    run(&mut f, &mut second);
    let (status, v) = sent_error(&second);
    assert_eq!(status, 429);
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(!second.request_headers.contains_key(CLUSTER_HEADER));
    assert!(second.metrics.iter().any(|m| matches!(m, MetricOp::Counter { name, .. } if name.as_str() == "llm_gateway_rate_limited_total;rate_limit=per-route")));
}

#[test]
fn shared_data_keys_are_pinned() {
    // Shared data outlives a build: the next version must find the same keys.
    let cfg = format!(
        r#"{{
        "providers": [{{"name": "mock", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k",
            "adaptive_concurrency": {{"max": 4}}}}],
        "models": [{{"name": "m", "targets": [{{"provider": "mock", "model": "up"}}]}}],
        "consumers": [{{"name": "team-a", "api_keys": ["sha256:{}"],
            "quota": {{"tokens_per_day": 10, "tokens_per_month": 20}}}}],
        "rate_limits": {{"rules": [
            {{"name": "rpm", "by": ["consumer", "route"], "requests": {{"limit": 1, "per": "hour"}}}},
            {{"name": "tpm", "by": ["model"], "tokens": {{"limit": 9, "per": "minute"}}}},
            {{"name": "ip", "by": ["client_ip"], "slots": 2, "requests": {{"limit": 1, "per": "second"}}}}
        ]}}
    }}"#,
        "0".repeat(64)
    );
    let gw = compile(&PluginConfig::from_json(cfg.as_bytes()).unwrap(), &|_| None).unwrap();
    let store = MemStore::default();
    assert_eq!(gw.precreate_state(&store, 1).unwrap(), 10);
    assert_eq!(
        store.keys(),
        [
            "llmgw/adaptive/mock/up",
            "llmgw/quota/team-a/day",
            "llmgw/quota/team-a/month",
            "llmgw/rl/ip#0",
            "llmgw/rl/ip#1",
            "llmgw/rl/rpm/-/chat",
            "llmgw/rl/rpm/-/embeddings",
            "llmgw/rl/rpm/team-a/chat",
            "llmgw/rl/rpm/team-a/embeddings",
            "llmgw/rl/tpm/m",
        ]
    );
}

#[test]
fn a_new_configuration_keeps_kept_state_and_drops_removed_state() {
    use crate::host::SharedStore;
    // A live reload: the second configuration removes model `old` and the
    // consumer `gone`, lowers rule `rpm` and keeps the rest.
    let first = format!(
        r#"{{
        "providers": [{{"name": "a", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}}],
        "models": [{{"name": "m", "targets": [{{"provider": "a", "model": "up"}}]}},
                   {{"name": "old", "targets": [{{"provider": "a", "model": "x"}}]}}],
        "consumers": [{{"name": "gone", "api_keys": ["sha256:{0}"], "quota": {{"tokens_per_day": 10}}}},
                      {{"name": "stays", "api_keys": ["sha256:{1}"], "quota": {{"tokens_per_day": 10}}}}],
        "rate_limits": {{"rules": [{{"name": "rpm", "by": [], "requests": {{"limit": 100, "per": "hour"}}}},
                                  {{"name": "per-model", "by": ["model"], "requests": {{"limit": 5, "per": "hour"}}}}]}}
    }}"#,
        "0".repeat(64),
        "1".repeat(64)
    );
    let second = first
        .replace(
            r#",
                   {"name": "old", "targets": [{"provider": "a", "model": "x"}]}"#,
            "",
        )
        .replace(&format!(r#"{{"name": "gone", "api_keys": ["sha256:{}"], "quota": {{"tokens_per_day": 10}}}},"#, "0".repeat(64)), "")
        .replace(r#""limit": 100"#, r#""limit": 60"#);
    assert_ne!(first, second);
    let compiled =
        |c: &str| compile(&PluginConfig::from_json(c.as_bytes()).unwrap(), &|_| None).unwrap();
    let (gw1, gw2) = (compiled(&first), compiled(&second));
    assert_eq!(gw2.models.len(), 1);
    assert_eq!(gw2.consumers.all().len(), 1);

    let store = MemStore::default();
    gw1.precreate_state(&store, 1).unwrap();
    assert_eq!(gw1.forget_removed_state(&store).unwrap(), 0);
    // Half of `rpm` used; state for both models' targets written.
    let spec = |capacity: u64| crate::ratelimit::BucketSpec {
        capacity,
        refill_per_sec: capacity as f64 / 3600.0,
    };
    for _ in 0..50 {
        crate::ratelimit::bucket::take(&store, "llmgw/rl/rpm", &spec(100), 1, 2, 4).unwrap();
    }
    for key in [
        "llmgw/health/a/up",
        "llmgw/health/a/x",
        "llmgw/pool/old/rr",
        "llmgw/pool/m/rr",
    ] {
        store.put_raw(key, b"\x01state");
    }
    let before = |k: &str| store.get(k).unwrap().0;
    let (rpm, per_model_m, quota_stays) = (
        before("llmgw/rl/rpm"),
        before("llmgw/rl/per-model/m"),
        before("llmgw/quota/stays/day"),
    );

    let dropped = gw2.forget_removed_state(&store).unwrap();
    gw2.precreate_state(&store, 3).unwrap();
    // Removed: `old`'s limiter, health and pool state, `gone`'s quota.
    assert_eq!(dropped, 4, "{:?}", store.keys());
    for key in [
        "llmgw/rl/per-model/old",
        "llmgw/health/a/x",
        "llmgw/pool/old/rr",
        "llmgw/quota/gone/day",
    ] {
        assert_eq!(store.get(key).unwrap().0, b"", "{key}");
    }
    // Kept, byte for byte.
    assert_eq!(before("llmgw/rl/rpm"), rpm);
    assert_eq!(before("llmgw/rl/per-model/m"), per_model_m);
    assert_eq!(before("llmgw/quota/stays/day"), quota_stays);
    assert_eq!(before("llmgw/health/a/up"), b"\x01state");
    assert_eq!(before("llmgw/pool/m/rr"), b"\x01state");
    // The lowered limit keeps what was used: 50 left of 100 is at most 50
    // of 60, never a fresh 60.
    let left = crate::ratelimit::bucket::take(&store, "llmgw/rl/rpm", &spec(60), 1, 4, 4).unwrap();
    assert!(left.admitted);
    assert_eq!(left.remaining, 49);
}

#[test]
fn a_rotated_pool_key_starts_with_fresh_health() {
    use crate::state::keys;
    let gw = |pool: &str| {
        let cfg = format!(
            r#"{{"providers": [{{"name": "p", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_keys": [{pool}]}}],
                "models": [{{"name": "m", "targets": [{{"provider": "p"}}]}}]}}"#
        );
        compile(&PluginConfig::from_json(cfg.as_bytes()).unwrap(), &|_| None).unwrap()
    };
    let before = gw(r#""sk-revoked-key-0001", "sk-other-key-0002""#);
    let after = gw(r#""sk-rotated-key-0003", "sk-other-key-0002""#);
    let health = |g: &crate::config::Gateway, i: usize| {
        keys::provider_key_health("p", &g.providers[0].keys[i].id)
    };
    // The revoked key was disabled (its provider answered 401).
    let store = MemStore::default();
    let spec = crate::health::HealthSpec::default();
    crate::health::record(
        &store,
        &health(&before, 0),
        &spec,
        crate::health::Observation::Disabled,
        1,
    );
    assert!(crate::health::is_ejected(&store, &health(&before, 0), 2));
    // Its replacement, in the same position, is not; the kept key keeps its state.
    assert_ne!(health(&before, 0), health(&after, 0));
    assert!(!crate::health::is_ejected(&store, &health(&after, 0), 2));
    assert_eq!(health(&before, 1), health(&after, 1));
    // The id is a short digest, never the key.
    assert_eq!(after.providers[0].keys[0].id.len(), 12);
    assert!(!health(&after, 0).contains("sk-rotated"));
}

const CLUSTER_CFG: &str = r#"{
    "providers": [{"name": "mock", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}],
    "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
    "rate_limits": {"cluster": {"service": "127.0.0.1:8081"}, "rules": [
        {"name": "local", "requests": {"limit": 1, "per": "hour"}},
        {"name": "shared", "scope": "cluster", "by": ["model"], "requests": {"limit": 5, "per": "minute"}},
        {"name": "tpm", "scope": "cluster", "tokens": {"limit": 100, "per": "minute", "count": "output"}}
    ]}
}"#;

fn cluster_gateway() -> (Rc<crate::config::Gateway>, MemStore) {
    let gw = Rc::new(
        compile(
            &PluginConfig::from_json(CLUSTER_CFG.as_bytes()).unwrap(),
            &|_| None,
        )
        .unwrap(),
    );
    let store = MemStore::default();
    // Only the instance rule has shared-data keys.
    assert_eq!(gw.precreate_state(&store, 1).unwrap(), 1);
    (gw, store)
}

#[test]
fn cluster_rules_hand_their_keys_and_amounts_to_envoys_rate_limit_filter() {
    let (gw, store) = cluster_gateway();
    let body = r#"{"model":"m","max_tokens":7,"messages":[{"role":"user","content":"x"}]}"#;
    let mut h = request("POST", "/v1/chat/completions", body);
    h.store = store;
    let mut f = StreamFlow::new(Rc::clone(&gw), 1);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    let v = &h.stream_values;
    assert_eq!(v["llmgw.rl.shared"], "m");
    assert_eq!(v["llmgw.rl.tpm"], "-");
    // An output-token rule reserves max_tokens; nothing is used yet.
    assert_eq!(v["llmgw.rl.hits.output"], "7");
    assert_eq!(v["llmgw.rl.used.output"], "0");
    assert!(!v.contains_key("llmgw.rl.local"));
    // The answer's usage settles the reservation when the response ends.
    let usage = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#;
    h.response_headers.insert(
        crate::admission::cluster::TOKENS_HEADER.into(),
        "100,93,60000".into(),
    );
    h.response_headers.insert(
        crate::admission::cluster::REQUESTS_HEADER.into(),
        "5,4,60000".into(),
    );
    respond(&mut f, &mut h, "200", &[usage]);
    f.on_log(&mut h);
    assert_eq!(h.stream_values["llmgw.rl.used.output"], "5");
    // The tightest limits of either scope; the service's headers removed.
    assert_eq!(h.response_headers["x-ratelimit-remaining-requests"], "0");
    assert_eq!(h.response_headers["x-ratelimit-limit-requests"], "1");
    assert_eq!(h.response_headers["x-ratelimit-remaining-tokens"], "93");
    assert!(!h
        .response_headers
        .keys()
        .any(|k| k.starts_with("x-llm-gateway-cluster")));
}

#[test]
fn a_cluster_refusal_returns_the_instance_units_and_blames_no_provider() {
    let (gw, store) = cluster_gateway();
    let body = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
    let mut h = request("POST", "/v1/chat/completions", body);
    h.store = store;
    let mut f = StreamFlow::new(Rc::clone(&gw), 1);
    run(&mut f, &mut h);
    // Envoy's rate-limit filter refuses with the service's OpenAI error.
    h.response_details = Some("request_rate_limited".into());
    let refusal = r#"{"error":{"message":"Cluster rate limit 'shared' reached","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#;
    let client = respond_with(
        &mut f,
        &mut h,
        "429",
        &[(crate::admission::cluster::RULE_HEADER, "shared")],
        &[refusal.as_bytes()],
    );
    let v: Value = serde_json::from_slice(&client).unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(h.metrics.iter().any(|m| matches!(m, MetricOp::Counter { name, .. } if name.as_str() == "llm_gateway_rate_limited_total;rate_limit=shared")));
    f.on_log(&mut h);
    // Nothing was used; the instance rule's unit is back: a second request
    // is admitted (its limit is 1 per hour).
    assert_eq!(h.stream_values["llmgw.rl.used.output"], "0");
    let mut second = request("POST", "/v1/chat/completions", body);
    second.store = std::mem::take(&mut h.store);
    let mut f = StreamFlow::new(Rc::clone(&gw), 2);
    assert_eq!(run(&mut f, &mut second), Verdict::Continue);
    // And the target was not marked throttled by a 429 it never sent.
    assert!(!second
        .store
        .keys()
        .iter()
        .any(|k| k.starts_with("llmgw/health/")));
}

#[test]
fn cluster_quotas_charge_the_consumers_utc_window_instead_of_shared_data() {
    let cfg = format!(
        r#"{{
        "providers": [{{"name": "mock", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}}],
        "models": [{{"name": "m", "targets": [{{"provider": "mock"}}]}}],
        "consumers": [{{"name": "team-a", "api_keys": ["sha256:{}"],
            "quota": {{"tokens_per_day": 10, "tokens_per_month": 20}}}}],
        "rate_limits": {{"cluster": {{"service": "127.0.0.1:8081", "quotas": true}}}}
    }}"#,
        // sha256("k-a")
        "a1f8d3c4ac1b1b4ebeb6b82f37a5d81b22bca4ee56153b5edd7e5ed0b6ba9d0d"
    );
    let gw =
        Rc::new(compile(&PluginConfig::from_json(cfg.as_bytes()).unwrap(), &|_| None).unwrap());
    let store = MemStore::default();
    // No quota key in shared data: the service keeps them.
    assert_eq!(gw.precreate_state(&store, 1).unwrap(), 0);
    let consumers = &gw.consumers;
    let rules = &gw.rules;
    let header = |_: &str| None;
    let facts = crate::admission::Facts {
        consumer: Some("team-a"),
        model: "m",
        route: "chat",
        client_ip: None,
        header: &header,
        prompt_tokens: 3,
        max_tokens: Some(5),
    };
    // 2026-12-04T10:00Z: day 20,791 since the epoch; month 2026 × 12 + 11.
    let now = 20_791 * 86_400 * 1_000_000_000 + 10 * 3_600 * 1_000_000_000;
    let (values, hold) = crate::admission::cluster::plan(rules, consumers, &facts, now).unwrap();
    let v: std::collections::BTreeMap<_, _> = values.into_iter().collect();
    assert_eq!(v["llmgw.rl.quota.consumer"], "team-a");
    assert_eq!(v["llmgw.rl.quota.day"], "20791");
    assert_eq!(v["llmgw.rl.quota.month"], (2026 * 12 + 11).to_string());
    assert_eq!(v["llmgw.rl.hits.total"], "8");
    assert_eq!(
        hold.reserved,
        [(crate::admission::config::TokenCount::Total, 8)]
    );
    // Instance admission leaves the quota alone.
    let reservation = crate::admission::admit(rules, consumers, &store, &facts, now).unwrap();
    assert!(reservation.requests.is_none() && reservation.tokens.is_none());
    assert!(store.keys().is_empty());
    // A consumer without a quota sends nothing.
    let anonymous = crate::admission::Facts {
        consumer: None,
        ..facts
    };
    assert!(crate::admission::cluster::plan(rules, consumers, &anonymous, now).is_none());
}
