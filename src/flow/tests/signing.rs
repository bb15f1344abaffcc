//! Consumers that sign their requests, through the whole flow.

use super::*;
use crate::secrets::signature::{canonical, sign};

const SECRET: &str = "team-signing-secret";
const NOW_S: u64 = 1_800_000_000;

fn gateway() -> Rc<crate::config::Gateway> {
    let digest: String = crate::consumers::sha256(b"client-key")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cfg = format!(
        r#"{{"providers": [{{"name": "mock", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}}],
            "models": [{{"name": "m", "targets": [{{"provider": "mock"}}]}}],
            "consumers": [{{"name": "team", "api_keys": ["sha256:{digest}"], "signing_secret": "env:SIGNING"}}]}}"#
    );
    let cfg = PluginConfig::from_json(cfg.as_bytes()).unwrap();
    Rc::new(compile(&cfg, &|n| (n == "SIGNING").then(|| SECRET.to_string())).unwrap())
}

fn signed_request(body: &str, nonce: &str, ts: u64, secret: &str) -> RecordingHost {
    let mut h = request("POST", "/v1/chat/completions", body);
    h.clock_ns.set(NOW_S * 1_000_000_000);
    let ts = ts.to_string();
    let sig = sign(
        secret.as_bytes(),
        canonical("POST", "/v1/chat/completions", &ts, nonce, body.as_bytes()).as_bytes(),
    );
    for (k, v) in [
        ("x-llmgw-timestamp", ts.as_str()),
        ("x-llmgw-nonce", nonce),
        ("x-llmgw-signature", sig.as_str()),
    ] {
        h.request_headers.insert(k.into(), v.into());
    }
    h
}

#[test]
fn signed_requests_pass_once_and_their_headers_stay_here() {
    let gw = gateway();
    let store = MemStore::default();
    gw.precreate_state(&store, 1).unwrap();
    let body = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
    let mut h = signed_request(body, "nonce-abcdefghijklmnop", NOW_S - 5, SECRET);
    h.store = store;
    let mut f = StreamFlow::new(Rc::clone(&gw), 1);
    assert_eq!(run(&mut f, &mut h), Verdict::Continue);
    assert!(h.sent.is_none());
    assert_eq!(
        h.request_headers.get(CLUSTER_HEADER).map(String::as_str),
        Some("llmgw_mock")
    );
    for name in ["x-llmgw-timestamp", "x-llmgw-nonce", "x-llmgw-signature"] {
        assert!(
            !h.request_headers.contains_key(name),
            "{name} went upstream"
        );
    }
    // The same request again is a replay.
    let mut again = signed_request(body, "nonce-abcdefghijklmnop", NOW_S - 5, SECRET);
    again.store = std::mem::take(&mut h.store);
    let mut f = StreamFlow::new(Rc::clone(&gw), 2);
    run(&mut f, &mut again);
    let (status, v) = sent_error(&again);
    assert_eq!(status, 401);
    assert_eq!(v["error"]["code"], "request_replayed");
}

#[test]
fn unsigned_skewed_and_forged_requests_get_401_in_the_clients_shape() {
    let gw = gateway();
    let body = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
    let cases = [
        (
            signed_request(body, "nonce-abcdefghijklmnop", NOW_S - 400, SECRET),
            "timestamp_out_of_window",
        ),
        (
            signed_request(body, "nonce-abcdefghijklmnop", NOW_S, "another-secret"),
            "invalid_signature",
        ),
        (
            request("POST", "/v1/chat/completions", body),
            "invalid_signature",
        ),
    ];
    for (mut h, code) in cases {
        h.clock_ns.set(NOW_S * 1_000_000_000);
        gw.precreate_state(&h.store, 1).unwrap();
        let mut f = StreamFlow::new(Rc::clone(&gw), 1);
        run(&mut f, &mut h);
        let (status, v) = sent_error(&h);
        assert_eq!((status, v["error"]["code"].as_str()), (401, Some(code)));
        assert!(!h.request_headers.contains_key(CLUSTER_HEADER));
    }
    // Anthropic Messages clients get Anthropic's error shape.
    let msg = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#;
    let mut h = request("POST", "/v1/messages", msg);
    h.clock_ns.set(NOW_S * 1_000_000_000);
    let mut f = StreamFlow::new(Rc::clone(&gw), 1);
    run(&mut f, &mut h);
    let (status, v) = sent_error(&h);
    assert_eq!(status, 401);
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
}
