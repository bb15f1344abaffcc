use super::*;
use crate::testing::MemStore;
use crate::wire::hub::{ChatResponse, Choice, FinishReason, StreamEvent, ToolCall, Usage};
use serde_json::{json, Map, Value};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn parts<'a>(scope: &'a str) -> KeyParts<'a> {
    KeyParts {
        api: "openai.chat_completions",
        provider: "oai",
        upstream_model: "gpt-4o-mini",
        scope,
    }
}

#[test]
fn the_key_ignores_order_spacing_and_delivery_fields_only() {
    let a = obj(
        json!({"model": "a", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}),
    );
    let b: Map<String, Value> = serde_json::from_str(
        r#"{ "temperature":0,"stream":true,"stream_options":{"include_usage":true},
             "user":"u","messages":[ {"content":"hi", "role":"user"} ],"model":"alias" }"#,
    )
    .unwrap();
    assert_eq!(digest(&parts(""), &a), digest(&parts(""), &b));
    let mut zero = a.clone();
    zero.insert("temperature".into(), json!(0.0));
    assert_eq!(digest(&parts(""), &a), digest(&parts(""), &zero));
    let mut c = a.clone();
    c.insert("temperature".into(), json!(0.5));
    assert_ne!(digest(&parts(""), &a), digest(&parts(""), &c));
    let mut d = a.clone();
    d.insert(
        "tools".into(),
        json!([{"type": "function", "function": {"name": "f"}}]),
    );
    assert_ne!(digest(&parts(""), &a), digest(&parts(""), &d));
    assert_ne!(digest(&parts(""), &a), digest(&parts("team-a"), &a));
    let other_target = KeyParts {
        upstream_model: "gpt-4o",
        ..parts("")
    };
    assert_ne!(digest(&parts(""), &a), digest(&other_target, &a));
    // Parts cannot run into each other.
    let shifted = KeyParts {
        provider: "oaigpt-4o-mini",
        upstream_model: "",
        ..parts("")
    };
    assert_ne!(digest(&parts(""), &a), digest(&shifted, &a));
}

#[test]
fn only_temperature_zero_is_deterministic() {
    assert!(deterministic(&obj(json!({"temperature": 0}))));
    assert!(deterministic(&obj(json!({"temperature": 0.0}))));
    assert!(!deterministic(&obj(json!({"temperature": 0.2}))));
    assert!(!deterministic(&obj(json!({}))));
    assert!(!deterministic(&obj(json!({"temperature": "0"}))));
}

#[test]
fn cache_control_directives() {
    assert_eq!(Directives::parse(None), Directives::default());
    let d = Directives::parse(Some("max-age=0, No-Cache"));
    assert!(d.skip_lookup && !d.no_store);
    let d = Directives::parse(Some("no-store"));
    assert!(d.skip_lookup && d.no_store);
}

fn store_cfg(max_bytes: u64, entries: u32) -> Store {
    StoreConfig {
        max_bytes,
        max_entry_bytes: 1024,
        max_entries: entries,
    }
    .compile("cache")
    .unwrap()
}

fn key(n: u8) -> Digest32 {
    let mut d = [0u8; 32];
    for (i, b) in d.iter_mut().enumerate() {
        *b = n.wrapping_mul(31).wrapping_add(i as u8 * 7);
    }
    d
}

#[test]
fn entries_are_found_until_they_expire_and_never_for_another_digest() {
    let s = MemStore::default();
    let cfg = store_cfg(1 << 20, 16);
    precreate(&s, &cfg).unwrap();
    assert_eq!(
        insert(&s, &cfg, &key(1), b"answer", 100, 10),
        Stored::Yes {
            evicted: 0,
            bytes_in_use: 56
        }
    );
    assert_eq!(
        lookup(&s, &cfg, &key(1), 109).as_deref(),
        Some(&b"answer"[..])
    );
    assert_eq!(lookup(&s, &cfg, &key(1), 110), None);
    assert_eq!(lookup(&s, &cfg, &key(2), 100), None);
    assert_eq!(
        insert(&s, &cfg, &key(3), &[b'x'; 1025], 100, 10),
        Stored::TooLarge
    );
}

#[test]
fn keys_stay_bounded_and_a_colliding_answer_evicts() {
    let s = MemStore::default();
    let cfg = store_cfg(1 << 20, 4);
    precreate(&s, &cfg).unwrap();
    let before = s.len();
    let mut evicted = 0;
    for n in 0..200u8 {
        if let Stored::Yes { evicted: e, .. } = insert(&s, &cfg, &key(n), b"a", 0, 1000) {
            evicted += e;
        }
    }
    assert_eq!(s.len(), before, "a store created keys");
    assert!(evicted >= 196, "{evicted}");
}

#[test]
fn the_byte_budget_is_kept_by_emptying_sampled_slots() {
    let s = MemStore::default();
    // Room for three 350-byte entries in 64 slots.
    let cfg = store_cfg(1100, 64);
    precreate(&s, &cfg).unwrap();
    let body = [b'z'; 300];
    let mut in_use = 0;
    for n in 0..100u8 {
        match insert(&s, &cfg, &key(n), &body, u64::from(n), 1000) {
            Stored::Yes { bytes_in_use, .. } => in_use = bytes_in_use,
            Stored::Full | Stored::Raced => {}
            Stored::TooLarge => panic!("not too large"),
        }
        let held: usize = keys_held(&s, &cfg);
        assert!(held <= 1100, "{held} bytes held");
    }
    assert_eq!(in_use as usize, keys_held(&s, &cfg));
}

fn keys_held(s: &MemStore, cfg: &Store) -> usize {
    crate::state::keys::cache_entries(cfg.entries)
        .map(|k| s.raw(&k).map_or(0, |v| v.len()))
        .sum()
}

#[test]
fn a_slot_written_meanwhile_keeps_the_other_answer() {
    let s = MemStore::default();
    let cfg = store_cfg(1 << 20, 1);
    precreate(&s, &cfg).unwrap();
    s.fail_next.set(1);
    assert_eq!(insert(&s, &cfg, &key(1), b"mine", 0, 10), Stored::Raced);
}

fn answer() -> ChatResponse {
    ChatResponse {
        id: "c1".into(),
        model: "m".into(),
        created: 1,
        choices: vec![Choice {
            index: 0,
            content: Some("é".repeat(150)),
            reasoning: Some("think".into()),
            tool_calls: vec![ToolCall {
                id: "t1".into(),
                name: "f".into(),
                arguments: "{\"a\":1}".into(),
            }],
            finish_reason: Some(FinishReason::ToolCalls),
        }],
        usage: Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
            ..Usage::default()
        }),
    }
}

#[test]
fn an_answer_replayed_as_events_is_captured_back_whole() {
    let r = ChatResponse {
        // Not part of a stream.
        created: 0,
        ..answer()
    };
    let events = replay(&r);
    let texts = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Text { .. }))
        .count();
    assert_eq!(texts, 3, "150 characters in runs of 64");
    let mut c = Capture::new(10_000);
    for e in &events {
        c.on_event(e);
    }
    assert_eq!(c.take(), Some(r));
}

#[test]
fn a_capture_over_its_cap_or_with_an_error_keeps_nothing() {
    let mut c = Capture::new(10);
    for e in replay(&answer()) {
        c.on_event(&e);
    }
    assert_eq!(c.take(), None);
    let mut c = Capture::new(10_000);
    for e in replay(&answer()) {
        c.on_event(&e);
    }
    c.on_event(&StreamEvent::Error(crate::error::ApiError::new(
        502,
        "api_error",
        "x",
    )));
    assert_eq!(c.take(), None);
    let mut unfinished = answer();
    unfinished.choices[0].finish_reason = None;
    assert!(!complete(&unfinished));
}

mod semantic_index {
    use super::*;
    use crate::cache::semantic::{quantize, Index, PAGE_VECTORS};

    fn unit(i: usize, dims: usize) -> Vec<f64> {
        (0..dims)
            .map(|d| if d == i % dims { 1.0 } else { 0.01 * d as f64 })
            .collect()
    }

    #[test]
    fn quantized_vectors_keep_their_direction() {
        let (q, n) = quantize(&[0.5, -0.25, 0.0]).unwrap();
        assert_eq!(q, vec![127, -64, 0]);
        assert!((n - (127f32 * 127.0 + 64.0 * 64.0).sqrt()).abs() < 0.01);
        assert_eq!(quantize(&[]), None);
        assert_eq!(quantize(&[0.0, 0.0]), None);
        assert_eq!(quantize(&[f64::NAN]), None);
    }

    #[test]
    fn the_nearest_live_vector_of_the_group_is_found_across_pages() {
        let s = MemStore::default();
        let index = Index {
            prefix: "idx".into(),
            pages: 4,
        };
        index.precreate(&s).unwrap();
        for n in 0..40u8 {
            let v = quantize(&unit(n as usize, 64)).unwrap();
            index.insert(&s, 7, &key(n), v, 100, 50).unwrap();
        }
        let q = quantize(&unit(13, 64)).unwrap();
        let (d, sim) = index.nearest(&s, 7, &q, 0.95, 120).unwrap();
        assert_eq!(d, key(13));
        assert!(sim > 0.99);
        // Another group, or after expiry: nothing.
        assert_eq!(index.nearest(&s, 8, &q, 0.95, 120), None);
        assert_eq!(index.nearest(&s, 7, &q, 0.95, 150), None);
    }

    #[test]
    fn a_full_page_drops_its_oldest_vector() {
        let s = MemStore::default();
        let index = Index {
            prefix: "idx".into(),
            pages: 1,
        };
        index.precreate(&s).unwrap();
        for n in 0..(PAGE_VECTORS as u8 + 5) {
            let v = quantize(&unit(n as usize, 64)).unwrap();
            index.insert(&s, 1, &key(n), v, u64::from(n), 1000).unwrap();
        }
        let first = quantize(&unit(0, 64)).unwrap();
        assert_eq!(index.nearest(&s, 1, &first, 0.99, 50), None);
        let last = quantize(&unit(PAGE_VECTORS + 4, 64)).unwrap();
        assert!(index.nearest(&s, 1, &last, 0.99, 50).is_some());
        assert_eq!(s.keys().len(), 1, "the index made keys");
    }
}

/// Shared data is written only by this filter, but a value of another
/// build or a torn configuration must read as absent, never panic.
#[test]
fn garbage_in_shared_data_reads_as_nothing() {
    let s = MemStore::default();
    let cfg = store_cfg(1 << 20, 4);
    let index = semantic::Index {
        prefix: "idx".into(),
        pages: 2,
    };
    let mut x: u64 = 0x1234_5678;
    for len in 0..300usize {
        let bytes: Vec<u8> = (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Valid headers now and then, so the bodies get read.
                match (i, len % 3) {
                    (0, 0) => crate::state::kind::CACHE_ENTRY,
                    (0, 1) => crate::state::kind::CACHE_INDEX,
                    (1, _) => 1,
                    _ => x as u8,
                }
            })
            .collect();
        for n in 0..4 {
            s.put_raw(&crate::state::keys::cache_entry(n), &bytes);
        }
        s.put_raw("idx#0", &bytes);
        s.put_raw("idx#1", &bytes);
        assert_eq!(lookup(&s, &cfg, &key(1), 0), None);
        let q = semantic::quantize(&[1.0, 0.5]).unwrap();
        assert_eq!(index.nearest(&s, 0, &q, 0.5, 0), None);
        // Writing over garbage works.
        assert!(index.insert(&s, 0, &key(2), q, 0, 10).is_ok());
        assert!(matches!(
            insert(&s, &cfg, &key(3), b"ok", 0, 10),
            Stored::Yes { .. }
        ));
    }
}
