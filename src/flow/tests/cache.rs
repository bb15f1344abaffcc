//! The response cache through the flow: misses stored, hits answered in
//! every client API and mode without a provider or a limit, the client's
//! `cache-control`, scopes, and answers that must not be kept.

use super::*;
use crate::cache::CACHE_HEADER;
use crate::testing::MemStore;

const CFG: &str = r#"{
    "providers": [
        {"name": "oai", "type": "openai", "base_url": "http://127.0.0.1:18080/v1", "api_key": "sk-oai-secret-1"},
        {"name": "claude", "type": "anthropic", "base_url": "http://127.0.0.1:18080/v1", "api_key": "sk-ant-secret-2"}
    ],
    "models": [
        {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}],
         "cache": {"ttl_seconds": 60}},
        {"name": "sonnet", "targets": [{"provider": "claude", "model": "claude-sonnet-4-5"}],
         "cache": {"scope": "shared", "nondeterministic": true}},
        {"name": "plain", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}]}
    ],
    "consumers": [
        {"name": "team-a", "api_keys": ["sha256:f10f781241e2246678b6b45c857069208152a53863e47fac33f607ab405006f4"]},
        {"name": "team-b", "api_keys": ["sha256:a30534a53b23547377ddccbd1ac85a8a84c13db43493c16e55a6abc7b0eba634"]}
    ],
    "cache": {"max_bytes": 65536, "max_entry_bytes": 4096, "max_entries": 64}
}"#;

const REPLY: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the model, a reply long enough to be cut into several stream chunks when replayed."},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":20,"total_tokens":27}}"#;

fn gateway() -> Rc<crate::config::Gateway> {
    gateway_with(|_| {})
}

fn gateway_with(edit: impl FnOnce(&mut Value)) -> Rc<crate::config::Gateway> {
    let mut cfg: Value = serde_json::from_str(CFG).unwrap();
    edit(&mut cfg);
    let cfg: PluginConfig = serde_json::from_value(cfg).unwrap();
    Rc::new(compile(&cfg, &|_| None).unwrap())
}

fn chat(body: Value, key: &str, store: MemStore) -> RecordingHost {
    let mut h = request("POST", "/v1/chat/completions", &body.to_string());
    h.request_headers
        .insert("authorization".into(), format!("Bearer {key}"));
    h.store = store;
    h
}

fn ask(temperature: f64, stream: bool) -> Value {
    json!({"model": "gpt", "temperature": temperature, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

/// One request through a fresh flow; a forwarded one is answered with
/// `reply` (whole, or as the stream `chunks`). Returns the host.
fn exchange(
    gw: &Rc<crate::config::Gateway>,
    mut h: RecordingHost,
    chunks: &[&str],
) -> RecordingHost {
    let mut f = StreamFlow::new(Rc::clone(gw), 7);
    run(&mut f, &mut h);
    if h.sent.is_none() {
        let stream = chunks.len() > 1;
        let ct = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let chunks: Vec<&[u8]> = chunks.iter().map(|c| c.as_bytes()).collect();
        let out = respond_with(&mut f, &mut h, "200", &[("content-type", ct)], &chunks);
        h.response_body = out;
    }
    f.on_log(&mut h);
    h
}

fn store_of(gw: &crate::config::Gateway) -> MemStore {
    let store = MemStore::default();
    gw.precreate_state(&store, 0).unwrap();
    store
}

fn counter(h: &RecordingHost, prefix: &str) -> u64 {
    h.metrics
        .iter()
        .filter_map(|m| match m {
            MetricOp::Counter { name, delta } if name.starts_with(prefix) => Some(*delta),
            _ => None,
        })
        .sum()
}

#[test]
fn a_miss_is_stored_and_the_same_request_is_answered_from_the_cache() {
    let gw = gateway();
    let h = exchange(&gw, chat(ask(0.0, false), "key-a", store_of(&gw)), &[REPLY]);
    assert_eq!(h.response_headers[CACHE_HEADER], "store");
    assert_eq!(h.stream_values["llmgw.cache"], "store");
    // Same request, other key order and spacing, streamed this time: the
    // delivery fields are not part of the key.
    let body = r#"{ "messages":[{"content":"hi","role":"user"}], "stream":true,
        "stream_options":{"include_usage":true}, "model":"gpt", "temperature":0, "user":"u-1"}"#;
    let mut h2 = request("POST", "/v1/chat/completions", body);
    h2.request_headers
        .insert("authorization".into(), "Bearer key-a".into());
    h2.store = h.store;
    let h2 = exchange(&gw, h2, &[]);
    let (status, sent) = h2.sent.clone().expect("answered from the cache");
    assert_eq!(status, 200);
    let text = String::from_utf8(sent).unwrap();
    let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
    assert!(frames.len() >= 5, "{text}");
    assert_eq!(*frames.last().unwrap(), "data: [DONE]");
    let mut content = String::new();
    let mut usage = None;
    for f in &frames[..frames.len() - 1] {
        let v: Value = serde_json::from_str(f.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(t);
        }
        if !v["usage"].is_null() {
            usage = Some(v["usage"].clone());
        }
    }
    assert_eq!(
        content,
        "Hello from the model, a reply long enough to be cut into several stream chunks when replayed."
    );
    assert_eq!(usage.unwrap()["completion_tokens"], 20);
    assert_eq!(h2.stream_values["llmgw.cache"], "hit");
    // No provider, no limit: the rule's two requests are both still there.
    assert!(!h2.request_headers.contains_key(CLUSTER_HEADER));
    assert_eq!(counter(&h2, "llm_gateway_cache_saved_tokens_total"), 27);
    let third = exchange(&gw, chat(ask(0.0, false), "key-a", h2.store), &[]);
    let (_, body) = third.sent.clone().unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], content.as_str());
    assert_eq!(v["model"], "gpt-4o-mini");
}

#[test]
fn hits_take_nothing_from_rate_limits() {
    let gw = gateway_with(|c| {
        c["rate_limits"] = json!({"rules": [{"name": "rpm", "by": ["consumer"], "requests": {"limit": 2, "per": "hour"}}]});
    });
    let mut store = store_of(&gw);
    let h = exchange(&gw, chat(ask(0.0, false), "key-a", store), &[REPLY]);
    store = h.store;
    for _ in 0..5 {
        let h = exchange(&gw, chat(ask(0.0, false), "key-a", store), &[]);
        assert_eq!(h.sent.as_ref().unwrap().0, 200);
        store = h.store;
    }
    // The rule allows 2 a minute: the miss took one, one is left.
    let h = exchange(&gw, chat(ask(0.0, false), "key-a", store), &[]);
    store = h.store;
    let other = json!({"model": "gpt", "temperature": 0, "messages": [{"role": "user", "content": "other"}]});
    let h = exchange(&gw, chat(other.clone(), "key-a", store), &[REPLY]);
    assert_eq!(h.response_headers[CACHE_HEADER], "store");
    let h = exchange(&gw, chat(ask(0.5, false), "key-a", h.store), &[]);
    assert_eq!(h.sent.as_ref().unwrap().0, 429);
}

#[test]
fn consumers_never_see_each_others_answers_unless_shared() {
    let gw = gateway();
    let h = exchange(&gw, chat(ask(0.0, false), "key-a", store_of(&gw)), &[REPLY]);
    let h = exchange(&gw, chat(ask(0.0, false), "key-b", h.store), &[REPLY]);
    assert!(h.sent.is_none(), "team-b got team-a's answer");
    assert_eq!(h.response_headers[CACHE_HEADER], "store");
}

#[test]
fn sampling_requests_bypass_unless_the_model_allows_them() {
    let gw = gateway();
    let h = exchange(&gw, chat(ask(0.7, false), "key-a", store_of(&gw)), &[REPLY]);
    assert_eq!(h.response_headers[CACHE_HEADER], "bypass");
    let mut no_temp = ask(0.0, false);
    no_temp.as_object_mut().unwrap().remove("temperature");
    let h = exchange(&gw, chat(no_temp, "key-a", h.store), &[REPLY]);
    assert_eq!(h.response_headers[CACHE_HEADER], "bypass");
    let h = exchange(&gw, chat(ask(0.0, false), "key-a", h.store), &[]);
    assert!(h.sent.is_none(), "nothing was stored");
    // An uncached model says nothing.
    let mut plain = ask(0.0, false);
    plain["model"] = json!("plain");
    let h = exchange(&gw, chat(plain, "key-a", h.store), &[REPLY]);
    assert!(!h.response_headers.contains_key(CACHE_HEADER));
}

#[test]
fn cache_control_no_cache_skips_the_lookup_and_no_store_skips_both() {
    let gw = gateway();
    let h = exchange(&gw, chat(ask(0.0, false), "key-a", store_of(&gw)), &[REPLY]);
    let mut again = chat(ask(0.0, false), "key-a", h.store);
    again
        .request_headers
        .insert("cache-control".into(), "no-cache".into());
    let h = exchange(&gw, again, &[REPLY]);
    assert!(h.sent.is_none());
    assert_eq!(h.response_headers[CACHE_HEADER], "store");
    let mut none = chat(ask(0.0, false), "key-a", h.store);
    none.request_headers
        .insert("cache-control".into(), "no-store".into());
    let h = exchange(&gw, none, &[REPLY]);
    assert_eq!(h.response_headers[CACHE_HEADER], "bypass");
}

#[test]
fn answers_cut_off_or_filtered_or_failed_are_not_kept() {
    let gw = gateway();
    let filtered = REPLY.replace("\"stop\"", "\"content_filter\"");
    let h = exchange(
        &gw,
        chat(ask(0.0, false), "key-a", store_of(&gw)),
        &[&filtered],
    );
    assert_eq!(h.response_headers[CACHE_HEADER], "miss");
    // A stream that breaks off before its end.
    let broken = [
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
    ];
    let h = exchange(&gw, chat(ask(0.0, true), "key-a", h.store), &broken);
    assert_eq!(h.stream_values["llmgw.cache"], "miss");
    let h = exchange(&gw, chat(ask(0.0, false), "key-a", h.store), &[]);
    assert!(h.sent.is_none(), "an incomplete answer was served");
    // A provider error is passed on, not kept.
    let mut f = StreamFlow::new(Rc::clone(&gw), 7);
    let mut e = chat(ask(0.0, false), "key-a", h.store);
    run(&mut f, &mut e);
    respond(&mut f, &mut e, "500", &[r#"{"error":{"message":"boom"}}"#]);
    f.on_log(&mut e);
    let h = exchange(&gw, chat(ask(0.0, false), "key-a", e.store), &[]);
    assert!(h.sent.is_none());
}

#[test]
fn a_streamed_miss_is_stored_and_served_to_other_apis_modes() {
    let gw = gateway();
    let chunks = [
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\ndata: [DONE]\n\n",
    ];
    let h = exchange(&gw, chat(ask(0.0, true), "key-a", store_of(&gw)), &chunks);
    assert_eq!(h.response_headers[CACHE_HEADER], "miss");
    assert_eq!(h.stream_values["llmgw.cache"], "store");
    let h = exchange(&gw, chat(ask(0.0, false), "key-a", h.store), &[]);
    let (_, body) = h.sent.clone().expect("hit");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello");
    assert_eq!(v["usage"]["total_tokens"], 5);
}

#[test]
fn anthropic_clients_get_hits_as_messages_and_message_streams() {
    let gw = gateway();
    let anthropic_reply = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Bonjour"}],"stop_reason":"end_turn","usage":{"input_tokens":9,"output_tokens":3}}"#;
    let body = |stream: bool| {
        json!({"model": "sonnet", "max_tokens": 50, "stream": stream,
               "messages": [{"role": "user", "content": "hello"}]})
        .to_string()
    };
    let messages = |stream: bool, store: MemStore| {
        let mut h = request("POST", "/v1/messages", &body(stream));
        h.request_headers.remove("authorization");
        h.request_headers.insert("x-api-key".into(), "key-b".into());
        h.request_headers
            .insert("anthropic-version".into(), "2023-06-01".into());
        h.store = store;
        h
    };
    let h = exchange(&gw, messages(false, store_of(&gw)), &[anthropic_reply]);
    // Cached requests are translated (the answer is read in hub form), so
    // the provider still sees its own API.
    assert_eq!(h.response_headers[CACHE_HEADER], "store");
    let h = exchange(&gw, messages(false, h.store), &[]);
    let (_, sent) = h.sent.clone().expect("hit");
    let v: Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Bonjour");
    assert_eq!(v["stop_reason"], "end_turn");
    let h = exchange(&gw, messages(true, h.store), &[]);
    let text = String::from_utf8(h.sent.clone().unwrap().1).unwrap();
    for event in [
        "message_start",
        "content_block_delta",
        "message_delta",
        "message_stop",
    ] {
        assert!(text.contains(&format!("event: {event}")), "{text}");
    }
    assert!(text.contains("Bonjour"));
    // Shared scope: another consumer gets it too.
    let mut other = messages(false, h.store);
    other
        .request_headers
        .insert("x-api-key".into(), "key-a".into());
    let h = exchange(&gw, other, &[]);
    assert!(h.sent.is_some());
}

#[test]
fn configuration_errors_name_the_field() {
    let bad = |cache: Value| {
        let mut cfg: Value = serde_json::from_str(CFG).unwrap();
        cfg["models"][0]["cache"] = cache;
        let cfg: Result<PluginConfig, _> = serde_json::from_value(cfg);
        match cfg {
            Err(e) => e.to_string(),
            Ok(c) => compile(&c, &|_| None).err().unwrap().to_string(),
        }
    };
    assert!(bad(json!({"ttl_seconds": 0})).contains("models[0].cache.ttl_seconds"));
    assert!(bad(json!({"ttl": 5})).contains("unknown field"));
    let mut cfg: Value = serde_json::from_str(CFG).unwrap();
    cfg["cache"]["max_entries"] = json!(1_000_000);
    let c: PluginConfig = serde_json::from_value(cfg).unwrap();
    assert!(compile(&c, &|_| None)
        .err()
        .unwrap()
        .to_string()
        .contains("cache.max_entries"));
}

mod semantic {
    use super::*;

    fn gateway() -> Rc<crate::config::Gateway> {
        gateway_with(|c| {
            c["models"][0]["cache"] = json!({"mode": "semantic", "embeddings_model": "embed",
                                             "similarity": 0.9, "embeddings_timeout_ms": 250});
            c["models"].as_array_mut().unwrap().push(json!(
                {"name": "embed", "targets": [{"provider": "oai", "model": "text-embedding-3-small"}]}));
        })
    }

    fn embedding(v: &[f64]) -> Vec<u8> {
        json!({"object": "list", "model": "text-embedding-3-small",
               "data": [{"object": "embedding", "index": 0, "embedding": v}],
               "usage": {"prompt_tokens": 3, "total_tokens": 3}})
        .to_string()
        .into_bytes()
    }

    fn ask_text(text: &str) -> Value {
        json!({"model": "gpt", "temperature": 0,
               "messages": [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": text}]})
    }

    /// Sends a request that is held for its embedding; answers the
    /// callout with `vector` (or a failure); then, if forwarded, answers
    /// with REPLY. Returns the host and the flow's callout.
    fn semantic_exchange(
        gw: &Rc<crate::config::Gateway>,
        body: Value,
        vector: Option<&[f64]>,
        store: MemStore,
    ) -> RecordingHost {
        let mut f = StreamFlow::new(Rc::clone(gw), 9);
        let mut h = chat(body, "key-a", store);
        assert_eq!(run(&mut f, &mut h), Verdict::Pause);
        assert_eq!(h.callouts.len(), 1, "no embeddings call");
        match vector {
            Some(v) => f.on_callout_response(&mut h, Some(200), &embedding(v)),
            None => f.on_callout_response(&mut h, None, b""),
        }
        if h.sent.is_none() {
            assert_eq!(h.resumed, 1);
            let out = respond_with(
                &mut f,
                &mut h,
                "200",
                &[("content-type", "application/json")],
                &[REPLY.as_bytes()],
            );
            h.response_body = out;
        }
        f.on_log(&mut h);
        h
    }

    #[test]
    fn a_similar_prompt_is_answered_from_the_cache() {
        let gw = gateway();
        let h = semantic_exchange(
            &gw,
            ask_text("How do I reverse a list in Python?"),
            Some(&[1.0, 0.0, 0.2]),
            store_of(&gw),
        );
        let c = &h.callouts[0];
        assert_eq!(c.cluster, "llmgw_oai");
        assert_eq!(c.timeout_ms, 250);
        let header = |n: &str| {
            c.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header(":path"), Some("/v1/embeddings"));
        assert_eq!(header("authorization"), Some("Bearer sk-oai-secret-1"));
        let sent: Value = serde_json::from_slice(&c.body).unwrap();
        assert_eq!(sent["model"], "text-embedding-3-small");
        assert_eq!(
            sent["input"],
            json!(["Be brief.\nHow do I reverse a list in Python?"])
        );
        assert_eq!(h.response_headers[CACHE_HEADER], "store");
        // Another wording, a near vector: a hit, the provider not asked.
        let h = semantic_exchange(
            &gw,
            ask_text("Python: how can I reverse a list?"),
            Some(&[0.98, 0.05, 0.22]),
            h.store,
        );
        let (status, body) = h.sent.clone().expect("a semantic hit");
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Hello from the model"));
        assert!(!h.request_headers.contains_key(CLUSTER_HEADER));
        let similarity: f64 = h.stream_values["llmgw.cache_similarity"].parse().unwrap();
        assert!(similarity > 0.99, "{similarity}");
        assert_eq!(
            counter(
                &h,
                "llm_gateway_cache_semantic_lookups_total;gen_ai_request_model=gpt;outcome=hit"
            ),
            1
        );
        // A far vector: a miss, sent on.
        let h = semantic_exchange(
            &gw,
            ask_text("How do I sort a list in Python?"),
            Some(&[0.0, 1.0, 0.0]),
            h.store,
        );
        assert!(h.sent.is_none());
        assert_eq!(h.response_headers[CACHE_HEADER], "store");
    }

    #[test]
    fn an_exact_repeat_needs_no_embedding() {
        let gw = gateway();
        let h = semantic_exchange(&gw, ask_text("exact"), Some(&[1.0, 0.0]), store_of(&gw));
        let mut f = StreamFlow::new(Rc::clone(&gw), 9);
        let mut h2 = chat(ask_text("exact"), "key-a", h.store);
        run(&mut f, &mut h2);
        assert!(h2.callouts.is_empty());
        assert_eq!(h2.sent.as_ref().unwrap().0, 200);
    }

    #[test]
    fn other_parameters_or_consumers_never_match_by_meaning() {
        let gw = gateway();
        let h = semantic_exchange(
            &gw,
            ask_text("same vector"),
            Some(&[1.0, 0.0]),
            store_of(&gw),
        );
        let mut other = ask_text("same vector, other limit");
        other["max_tokens"] = json!(5);
        let h = semantic_exchange(&gw, other, Some(&[1.0, 0.0]), h.store);
        assert!(h.sent.is_none(), "another max_tokens matched");
        let mut f = StreamFlow::new(Rc::clone(&gw), 9);
        let mut b = chat(ask_text("same vector again"), "key-b", h.store);
        run(&mut f, &mut b);
        f.on_callout_response(&mut b, Some(200), &embedding(&[1.0, 0.0]));
        assert!(b.sent.is_none(), "team-b got team-a's answer");
    }

    #[test]
    fn a_failed_embedding_is_a_miss_never_an_error() {
        let gw = gateway();
        let h = semantic_exchange(&gw, ask_text("no embedder"), None, store_of(&gw));
        assert!(h.sent.is_none());
        assert_eq!(h.response_headers[CACHE_HEADER], "store");
        assert_eq!(
            counter(
                &h,
                "llm_gateway_cache_semantic_lookups_total;gen_ai_request_model=gpt;outcome=failed"
            ),
            1
        );
        // A bad body is a miss too.
        let mut f = StreamFlow::new(Rc::clone(&gw), 9);
        let mut h2 = chat(ask_text("bad body"), "key-a", h.store);
        run(&mut f, &mut h2);
        f.on_callout_response(&mut h2, Some(200), b"{\"data\": []}");
        assert_eq!(h2.resumed, 1);
        assert!(h2.sent.is_none());
    }

    #[test]
    fn semantic_configuration_errors_name_the_field() {
        let bad = |cache: Value| {
            let mut cfg: Value = serde_json::from_str(CFG).unwrap();
            cfg["models"][0]["cache"] = cache;
            let c: PluginConfig = serde_json::from_value(cfg).unwrap();
            compile(&c, &|_| None).err().unwrap().to_string()
        };
        assert!(bad(json!({"mode": "semantic"})).contains("models[0].cache.embeddings_model"));
        assert!(bad(json!({"mode": "semantic", "embeddings_model": "nope"}))
            .contains("unknown model 'nope'"));
        assert!(
            bad(json!({"mode": "semantic", "embeddings_model": "plain", "similarity": 0.2}))
                .contains("models[0].cache.similarity")
        );
        assert!(bad(json!({"embeddings_model": "plain"})).contains("only for mode: semantic"));
    }
}

/// A failover pool: the downstream filter looks up and hands the key on;
/// the attempt that answers translates and stores.
#[test]
fn a_failover_pools_answer_is_stored_by_its_attempt_and_served_downstream() {
    use crate::flow::Placement;
    let gw = gateway_with(|c| {
        c["models"].as_array_mut().unwrap().push(json!(
            {"name": "pooled", "cache": {},
             "targets": [{"provider": "oai", "model": "gpt-4o-mini"},
                         {"provider": "claude", "model": "claude-sonnet-4-5", "priority": 1}]}));
    });
    let mut body = ask(0.0, false);
    body["model"] = json!("pooled");
    let mut d = StreamFlow::new(Rc::clone(&gw), 7);
    let mut hd = chat(body.clone(), "key-a", store_of(&gw));
    assert_eq!(run(&mut d, &mut hd), Verdict::Continue);
    assert!(
        hd.request_headers[CLUSTER_HEADER].starts_with("llmgw_pool"),
        "{:?}",
        hd.request_headers
    );
    assert!(hd.stream_values.contains_key("llmgw.cache_key"));
    // The attempt Envoy sends to the Anthropic target.
    let mut a = StreamFlow::with_placement(Rc::clone(&gw), 8, Placement::Upstream);
    let mut ha = RecordingHost {
        request_headers: hd.request_headers.clone(),
        request_body: hd.request_body.clone(),
        stream_values: hd.stream_values.clone(),
        upstream_provider: Some("claude".into()),
        store: std::mem::take(&mut hd.store),
        ..RecordingHost::default()
    };
    assert_eq!(run(&mut a, &mut ha), Verdict::Continue);
    assert_eq!(ha.request_headers[":path"], "/v1/messages");
    let anthropic_reply = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"From the fallback"}],"stop_reason":"end_turn","usage":{"input_tokens":9,"output_tokens":3}}"#;
    let client_bytes = respond_with(
        &mut a,
        &mut ha,
        "200",
        &[("content-type", "application/json")],
        &[anthropic_reply.as_bytes()],
    );
    a.on_log(&mut ha);
    assert_eq!(ha.response_headers[CACHE_HEADER], "store");
    // Back downstream: the attempt's headers and values came along.
    hd.stream_values = ha.stream_values.clone();
    hd.store = std::mem::take(&mut ha.store);
    hd.response_headers = ha.response_headers.clone();
    respond_with(&mut d, &mut hd, "200", &[], &[&client_bytes]);
    d.on_log(&mut hd);
    assert_eq!(hd.response_headers[CACHE_HEADER], "store");
    assert_eq!(hd.stream_values["llmgw.cache"], "store");
    assert_eq!(
        counter(
            &hd,
            "llm_gateway_cache_stores_total;gen_ai_request_model=pooled;outcome=stored"
        ),
        1
    );
    // The next identical request is answered downstream, no pool.
    let h = exchange(&gw, chat(body, "key-a", hd.store), &[]);
    let (status, sent) = h.sent.clone().expect("a hit");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "From the fallback");
}
