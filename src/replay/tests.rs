use super::*;
use crate::consumers::{AuthConfig, ConsumerConfig, Consumers};
use crate::secrets::signature::{canonical, sign};
use crate::testing::MemStore;

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "signing-secret-of-team-a";

fn consumers() -> Consumers {
    let c = ConsumerConfig {
        name: "team-a".into(),
        api_keys: vec![format!("sha256:{}", "0".repeat(64))],
        models: None,
        quota: None,
        signing_secret: Some("env:TEAM_A_SIGNING".into()),
        guardrails: vec![],
    };
    Consumers::compile(
        &[c],
        &AuthConfig::default(),
        &|n| (n == "TEAM_A_SIGNING").then(|| SECRET.to_string()),
        &mut |_| {},
    )
    .unwrap()
}

fn signed<'a>(ts: &'a str, nonce: &'a str, sig: &'a str, body: &'a [u8]) -> Signed<'a> {
    Signed {
        method: "POST",
        path: "/v1/chat/completions",
        timestamp: Some(ts),
        nonce: Some(nonce),
        signature: Some(sig),
        body,
    }
}

fn signature_of(ts: &str, nonce: &str, body: &[u8]) -> String {
    sign(
        SECRET.as_bytes(),
        canonical("POST", "/v1/chat/completions", ts, nonce, body).as_bytes(),
    )
}

fn code(r: Result<(), ApiError>) -> (u16, String) {
    let e = r.unwrap_err();
    (e.status, e.code.unwrap_or_default().to_string())
}

#[test]
fn a_signed_request_is_admitted_once() {
    let cs = consumers();
    let c = cs.get(0).unwrap();
    let store = MemStore::default();
    let ts = NOW.to_string();
    let nonce = "nonce-0123456789abcdef";
    let body = br#"{"model":"m"}"#;
    let sig = signature_of(&ts, nonce, body);
    let req = signed(&ts, nonce, &sig, body);
    assert!(admit(&store, c, &req, 300, 64, NOW).is_ok());
    assert_eq!(
        code(admit(&store, c, &req, 300, 64, NOW + 10)),
        (401, "request_replayed".into())
    );
    // Another nonce is another request.
    let sig2 = signature_of(&ts, "nonce-0123456789abcdeg", body);
    assert!(admit(
        &store,
        c,
        &signed(&ts, "nonce-0123456789abcdeg", &sig2, body),
        300,
        64,
        NOW
    )
    .is_ok());
}

#[test]
fn every_refusal_has_its_code() {
    let cs = consumers();
    let c = cs.get(0).unwrap();
    let store = MemStore::default();
    let nonce = "nonce-0123456789abcdef";
    let body = b"{}";
    let ts = NOW.to_string();
    let sig = signature_of(&ts, nonce, body);
    // Skewed either way.
    let old = (NOW - 301).to_string();
    let old_sig = signature_of(&old, nonce, body);
    assert_eq!(
        code(admit(
            &store,
            c,
            &signed(&old, nonce, &old_sig, body),
            300,
            64,
            NOW
        )),
        (401, "timestamp_out_of_window".into())
    );
    let future = (NOW + 301).to_string();
    let future_sig = signature_of(&future, nonce, body);
    assert_eq!(
        code(admit(
            &store,
            c,
            &signed(&future, nonce, &future_sig, body),
            300,
            64,
            NOW
        )),
        (401, "timestamp_out_of_window".into())
    );
    // Another body, path or method than the one signed.
    assert_eq!(
        code(admit(
            &store,
            c,
            &signed(&ts, nonce, &sig, b"{ }"),
            300,
            64,
            NOW
        )),
        (401, "invalid_signature".into())
    );
    let mut other_path = signed(&ts, nonce, &sig, body);
    other_path.path = "/v1/embeddings";
    assert_eq!(
        code(admit(&store, c, &other_path, 300, 64, NOW)),
        (401, "invalid_signature".into())
    );
    let mut missing = signed(&ts, nonce, &sig, body);
    missing.signature = None;
    assert_eq!(
        code(admit(&store, c, &missing, 300, 64, NOW)),
        (401, "invalid_signature".into())
    );
    assert_eq!(
        code(admit(
            &store,
            c,
            &signed("soon", nonce, &sig, body),
            300,
            64,
            NOW
        )),
        (401, "invalid_signature".into())
    );
    let short_sig = signature_of(&ts, "short", body);
    assert_eq!(
        code(admit(
            &store,
            c,
            &signed(&ts, "short", &short_sig, body),
            300,
            64,
            NOW
        )),
        (401, "invalid_signature".into())
    );
    // None of the refusals used up the nonce.
    assert!(admit(&store, c, &signed(&ts, nonce, &sig, body), 300, 64, NOW).is_ok());
}

#[test]
fn a_full_bucket_refuses_new_nonces_and_frees_expired_ones() {
    let cs = consumers();
    let c = cs.get(0).unwrap();
    let store = MemStore::default();
    let body = b"{}";
    let ts = NOW.to_string();
    // One bucket: every nonce lands in it.
    let nonces: Vec<String> = (0..=PER_SLOT).map(|i| format!("nonce-{i:016}")).collect();
    for n in &nonces[..PER_SLOT] {
        let sig = signature_of(&ts, n, body);
        assert!(admit(&store, c, &signed(&ts, n, &sig, body), 300, 1, NOW).is_ok());
    }
    let last = &nonces[PER_SLOT];
    let sig = signature_of(&ts, last, body);
    assert_eq!(
        code(admit(
            &store,
            c,
            &signed(&ts, last, &sig, body),
            300,
            1,
            NOW
        )),
        (429, "nonce_capacity_exceeded".into())
    );
    // Still no replay of a remembered one.
    let first_sig = signature_of(&ts, &nonces[0], body);
    assert_eq!(
        code(admit(
            &store,
            c,
            &signed(&ts, &nonces[0], &first_sig, body),
            300,
            1,
            NOW
        )),
        (401, "request_replayed".into())
    );
    // Once the window has passed the entries go, and the bucket takes new ones.
    let later = (NOW + 301).to_string();
    let sig = signature_of(&later, last, body);
    assert!(admit(
        &store,
        c,
        &signed(&later, last, &sig, body),
        300,
        1,
        NOW + 301
    )
    .is_ok());
    let (bytes, _) = store.get(&keys::nonce_slot("team-a", last, 1)).unwrap();
    assert_eq!(Bucket::decode(&bytes).unwrap().0.len(), 1);
}

#[test]
fn concurrent_requests_with_one_nonce_admit_one() {
    let cs = consumers();
    let c = cs.get(0).unwrap();
    let store = MemStore::default();
    let ts = NOW.to_string();
    let nonce = "nonce-concurrent-000001";
    let body = b"{}";
    let sig = signature_of(&ts, nonce, body);
    let key = keys::nonce_slot("team-a", nonce, 8);
    crate::state::ensure_state(&store, &key, Bucket::default()).unwrap();
    // Another worker admits the same request between our read and write.
    let (ts2, sig2) = (ts.clone(), sig.clone());
    store.interfere(move |s| {
        let cs = consumers();
        let r = admit(
            s,
            cs.get(0).unwrap(),
            &signed(&ts2, nonce, &sig2, b"{}"),
            300,
            8,
            NOW,
        );
        assert!(r.is_ok());
    });
    assert_eq!(
        code(admit(
            &store,
            c,
            &signed(&ts, nonce, &sig, body),
            300,
            8,
            NOW
        )),
        (401, "request_replayed".into())
    );
}

#[test]
fn a_missing_secret_refuses_and_a_plain_one_is_not_configured() {
    let c = ConsumerConfig {
        name: "b".into(),
        api_keys: vec![format!("sha256:{}", "1".repeat(64))],
        models: None,
        quota: None,
        signing_secret: Some("env:UNSET".into()),
        guardrails: vec![],
    };
    let mut warnings = Vec::new();
    let cs = Consumers::compile(
        std::slice::from_ref(&c),
        &AuthConfig::default(),
        &|_| None,
        &mut |w| warnings.push(w),
    )
    .unwrap();
    assert!(warnings[0].contains("UNSET is not set"), "{warnings:?}");
    let store = MemStore::default();
    let req = signed("1", "nonce-0123456789abcdef", "00", b"{}");
    assert_eq!(
        code(admit(&store, cs.get(0).unwrap(), &req, 300, 8, NOW)),
        (401, "invalid_signature".into())
    );
    let plain = ConsumerConfig {
        signing_secret: Some("hunter2".into()),
        ..c
    };
    let e =
        Consumers::compile(&[plain], &AuthConfig::default(), &|_| None, &mut |_| {}).unwrap_err();
    assert_eq!(e.field, "consumers[0].signing_secret");
    assert!(!e.to_string().contains("hunter2"));
}

#[test]
fn the_bucket_layout_is_pinned() {
    let b = Bucket(vec![(1, 2)]);
    assert_eq!(
        b.encode(),
        [&[0xF1, 1][..], &1u64.to_le_bytes(), &2u64.to_le_bytes()].concat()
    );
    assert_eq!(Bucket::decode(&b.encode()), Some(b));
    assert_eq!(keys::nonce_slots(2), ["llmgw/nonce#0", "llmgw/nonce#1"]);
}
