use super::config::{RateLimitsConfig, Rules};
use super::*;
use crate::consumers::{AuthConfig, ConsumerConfig, Consumers, QuotaConfig};
use crate::testing::MemStore;

fn rules(yaml_json: &str) -> Rules {
    let c: RateLimitsConfig = serde_json::from_str(yaml_json).unwrap();
    Rules::compile(&c).unwrap()
}

fn consumers(quota_day: Option<u64>) -> Consumers {
    let cfg = vec![ConsumerConfig {
        name: "team-a".into(),
        api_keys: vec![format!("sha256:{}", "0".repeat(64))],
        models: None,
        quota: Some(QuotaConfig {
            tokens_per_day: quota_day,
            tokens_per_month: None,
        }),
        signing_secret: None,
        guardrails: vec![],
    }];
    Consumers::compile(&cfg, &AuthConfig::default(), &|_| None, &mut |_| {}).unwrap()
}

fn no_header(_: &str) -> Option<String> {
    None
}

fn facts<'a>(
    consumer: Option<&'a str>,
    ip: Option<&'a str>,
    prompt: u64,
    max: Option<u32>,
) -> Facts<'a> {
    Facts {
        consumer,
        model: "gpt",
        route: "chat",
        client_ip: ip,
        header: &no_header,
        prompt_tokens: prompt,
        max_tokens: max,
    }
}

const T0: u64 = 1_700_000_000_000_000_000;

#[test]
fn request_limit_admits_exactly_n_and_sets_headers() {
    let r = rules(
        r#"{"rules":[{"name":"rpm","by":["consumer"],"requests":{"limit":3,"per":"minute"}}]}"#,
    );
    let c = consumers(None);
    let store = MemStore::default();
    assert_eq!(precreate(&r, &c, &["gpt".into()], &store, T0).unwrap(), 2);
    let f = facts(Some("team-a"), None, 10, None);
    let mut admitted = 0;
    let mut last_refusal = None;
    for _ in 0..5 {
        match admit(&r, &c, &store, &f, T0) {
            Ok(t) => {
                admitted += 1;
                let h = rate_limit_headers(&t);
                assert_eq!(h[0], ("x-ratelimit-limit-requests".into(), "3".into()));
            }
            Err(refusal) => last_refusal = Some(refusal),
        }
    }
    assert_eq!(admitted, 3);
    let refusal = last_refusal.unwrap();
    assert_eq!(refusal.error.status, 429);
    assert_eq!(refusal.error.code.as_deref(), Some("rate_limit_exceeded"));
    // A third of a minute later one request's worth has refilled: 20 s.
    let retry = refusal
        .headers
        .iter()
        .find(|(k, _)| k == "retry-after")
        .unwrap();
    assert_eq!(retry.1, "20");
    // The anonymous caller has its own bucket.
    assert!(admit(&r, &c, &store, &facts(None, None, 10, None), T0).is_ok());
    assert!(admit(&r, &c, &store, &f, T0 + 20_000_000_000).is_ok());
}

#[test]
fn token_reservation_is_reconciled() {
    let r = rules(
        r#"{"default_max_tokens":100,"rules":[{"name":"tpm","tokens":{"limit":1000,"per":"day"}}]}"#,
    );
    let c = consumers(None);
    let store = MemStore::default();
    precreate(&r, &c, &["gpt".into()], &store, T0).unwrap();
    // Reserves 50 prompt + 100 default output = 150.
    let t = admit(&r, &c, &store, &facts(None, None, 50, None), T0).unwrap();
    assert_eq!(t.tokens.unwrap().remaining, 850);
    // Used 20 in + 30 out: 100 come back.
    let usage = Usage {
        prompt_tokens: 20,
        completion_tokens: 30,
        total_tokens: 50,
        ..Usage::default()
    };
    reconcile(&t, &store, Some(&usage), true, T0);
    let t = admit(&r, &c, &store, &facts(None, None, 0, Some(1)), T0).unwrap();
    assert_eq!(t.tokens.unwrap().remaining, 949);
    // A failed request with no usage is refunded in full.
    reconcile(&t, &store, None, false, T0);
    // A request bigger than the whole limit is a 400, not a 429.
    let e = admit(&r, &c, &store, &facts(None, None, 2000, None), T0).unwrap_err();
    assert_eq!(
        (e.error.status, e.error.code.as_deref()),
        (400, Some("request_exceeds_rate_limit"))
    );
    // Going over: usage beyond the reservation leaves a debt.
    let t = admit(&r, &c, &store, &facts(None, None, 0, Some(10)), T0).unwrap();
    let big = Usage {
        prompt_tokens: 900,
        completion_tokens: 100,
        total_tokens: 1000,
        ..Usage::default()
    };
    reconcile(&t, &store, Some(&big), true, T0);
    let e = admit(&r, &c, &store, &facts(None, None, 0, Some(1)), T0).unwrap_err();
    assert_eq!(e.error.code.as_deref(), Some("tokens_rate_limit_exceeded"));
}

#[test]
fn a_later_refusal_gives_back_earlier_reservations() {
    let r = rules(
        r#"{"default_max_tokens":10,"rules":[
        {"name":"tokens","tokens":{"limit":100,"per":"day"}},
        {"name":"requests","requests":{"limit":1,"per":"day"}}]}"#,
    );
    let c = consumers(None);
    let store = MemStore::default();
    precreate(&r, &c, &[], &store, T0).unwrap();
    assert!(admit(&r, &c, &store, &facts(None, None, 0, None), T0).is_ok());
    assert!(admit(&r, &c, &store, &facts(None, None, 0, None), T0).is_err());
    // Only the admitted request's 10 tokens are held.
    let snapshot = bucket::peek(&store, "llmgw/rl/tokens", &r.rules[0].spec, T0).unwrap();
    assert_eq!(snapshot.remaining, 90);
}

#[test]
fn client_ip_rules_use_bounded_slots() {
    let r = rules(
        r#"{"rules":[{"name":"per-ip","by":["client_ip"],"slots":8,"requests":{"limit":1,"per":"hour"}}]}"#,
    );
    let c = consumers(None);
    let store = MemStore::default();
    assert_eq!(precreate(&r, &c, &[], &store, T0).unwrap(), 8);
    for i in 0..500 {
        let ip = format!("10.0.{}.{}", i / 256, i % 256);
        let _ = admit(&r, &c, &store, &facts(None, Some(&ip), 0, None), T0);
    }
    assert_eq!(store.len(), 8);
}

#[test]
fn daily_quota_refuses_and_resets() {
    let r = rules(r#"{"default_max_tokens":100,"rules":[]}"#);
    let c = consumers(Some(250));
    let store = MemStore::default();
    precreate(&r, &c, &[], &store, T0).unwrap();
    let f = facts(Some("team-a"), None, 0, None);
    let t1 = admit(&r, &c, &store, &f, T0).unwrap();
    let _t2 = admit(&r, &c, &store, &f, T0).unwrap();
    let e = admit(&r, &c, &store, &f, T0).unwrap_err();
    assert_eq!(e.error.code.as_deref(), Some("insufficient_quota"));
    // The first used only 10 tokens: 90 come back, so one more fits.
    let usage = Usage {
        prompt_tokens: 5,
        completion_tokens: 5,
        total_tokens: 10,
        ..Usage::default()
    };
    reconcile(&t1, &store, Some(&usage), true, T0);
    assert!(admit(&r, &c, &store, &f, T0).is_ok());
    // Next UTC day: a fresh budget.
    assert!(admit(&r, &c, &store, &f, T0 + 86_400_000_000_000).is_ok());
}

#[test]
fn rule_config_errors() {
    let bad = |json: &str| Rules::compile(&serde_json::from_str(json).unwrap()).unwrap_err();
    assert_eq!(
        bad(r#"{"rules":[{"name":"x","by":["planet"],"requests":{"limit":1,"per":"second"}}]}"#)
            .field,
        "rate_limits.rules[0].by[0]"
    );
    assert_eq!(
        bad(r#"{"rules":[{"name":"x"}]}"#).field,
        "rate_limits.rules[0]"
    );
    assert_eq!(
        bad(r#"{"rules":[{"name":"x","requests":{"limit":0,"per":"second"}}]}"#).field,
        "rate_limits.rules[0].limit"
    );
    assert_eq!(bad(r#"{"rules":[{"name":"x","by":["client_ip"],"slots":0,"requests":{"limit":1,"per":"second"}}]}"#).field, "rate_limits.rules[0].slots");
    assert_eq!(bad(r#"{"rules":[{"name":"a","requests":{"limit":1,"per":"second"}},{"name":"a","requests":{"limit":1,"per":"second"}}]}"#).field, "rate_limits.rules[1].name");
}

#[test]
fn refused_requests_give_back_their_request_units() {
    // A request rule before a token rule the requests are too big for, and
    // a quota: 48 refusals must leave every request unit in place.
    let r = rules(
        r#"{"rules":[
            {"name":"rpm","by":["model"],"requests":{"limit":5,"per":"minute"}},
            {"name":"tpm","by":["model"],"tokens":{"limit":100,"per":"minute","count":"total"}}
        ]}"#,
    );
    let c = consumers(Some(1000));
    let store = MemStore::default();
    precreate(&r, &c, &["gpt".into()], &store, T0).unwrap();
    let too_big = facts(Some("team-a"), None, 10, Some(500));
    for _ in 0..48 {
        let refusal = admit(&r, &c, &store, &too_big, T0).unwrap_err();
        assert_eq!(
            refusal.error.code.as_deref(),
            Some("request_exceeds_rate_limit")
        );
    }
    let fits = facts(Some("team-a"), None, 10, Some(10));
    let reservations: Vec<Reservation> = (0..5)
        .map(|_| admit(&r, &c, &store, &fits, T0).unwrap())
        .collect();
    assert_eq!(reservations[4].requests.unwrap().remaining, 0);
    assert!(admit(&r, &c, &store, &fits, T0).is_err());
    // Released reservations (answered before reaching a provider) give back
    // their request units and tokens too.
    for t in &reservations {
        release(t, &store, T0);
    }
    let t = admit(&r, &c, &store, &fits, T0).unwrap();
    assert_eq!(t.requests.unwrap().remaining, 4);
    assert_eq!(t.tokens.unwrap().remaining, 80);
    // A request that reached the provider keeps its request unit and pays
    // its real usage.
    let used = Usage {
        prompt_tokens: 10,
        completion_tokens: 2,
        total_tokens: 12,
        ..Usage::default()
    };
    reconcile(&t, &store, Some(&used), true, T0);
    let t = admit(&r, &c, &store, &fits, T0).unwrap();
    assert_eq!(t.requests.unwrap().remaining, 3);
    assert_eq!(t.tokens.unwrap().remaining, 68);
}

#[test]
fn cluster_scope_needs_the_service_and_skips_slots() {
    let mut c: RateLimitsConfig = serde_json::from_str(
        r#"{"rules": [{"name": "ip", "scope": "cluster", "by": ["client_ip"], "requests": {"limit": 1, "per": "second"}}]}"#,
    )
    .unwrap();
    let e = Rules::compile(&c).unwrap_err();
    assert_eq!(e.field, "rate_limits.rules[0].scope");
    c.cluster = Some(config::ClusterConfig {
        service: "rls:8081".into(),
        timeout_ms: 100,
        failure_mode: config::FailureMode::Deny,
        quotas: false,
    });
    let rules = Rules::compile(&c).unwrap();
    assert_eq!(rules.rules[0].slots, None);
    assert_eq!(rules.instance().count(), 0);
    assert_eq!(rules.cluster().count(), 1);
    for (service, timeout) in [
        ("rls", 100),
        ("rls:0", 100),
        (":8081", 100),
        ("rls:8081", 0),
    ] {
        let mut bad = c.clone();
        let cl = bad.cluster.as_mut().unwrap();
        cl.service = service.into();
        cl.timeout_ms = timeout;
        let e = Rules::compile(&bad).unwrap_err();
        assert!(
            e.field.starts_with("rate_limits.cluster."),
            "{service}: {}",
            e.field
        );
    }
    let unknown = serde_json::from_str::<RateLimitsConfig>(
        r#"{"cluster": {"service": "a:1", "mode": "deny"}}"#,
    );
    assert!(unknown.is_err());
}
