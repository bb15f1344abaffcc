//! Response-cache costs inside the filter's core (native; Wasm runs the
//! same code a few times slower): the key of a chat request, an exact
//! lookup and store, and a semantic lookup over 1,000 and 10,000 indexed
//! prompts of 384 dimensions (all-MiniLM-L6-v2's size). `make bench` runs
//! it.

mod common;

use common::time;
use llm_gateway::cache::semantic::{quantize, Index};
use llm_gateway::cache::{digest, insert, lookup, precreate, KeyParts, StoreConfig};
use llm_gateway::testing::MemStore;
use serde_json::{json, Map, Value};
use std::hint::black_box;

const DIMS: usize = 384;

/// A pseudo-random unit-ish vector, the same for the same seed.
fn vector(seed: u64) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..DIMS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

fn request() -> Map<String, Value> {
    let text = "Summarise the following meeting notes in three bullet points. ".repeat(30);
    json!({"model": "gpt", "temperature": 0, "max_tokens": 300,
           "messages": [{"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": text}]})
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn main() {
    let body = request();
    let parts = KeyParts {
        api: "openai.chat_completions",
        provider: "oai",
        upstream_model: "gpt-4o-mini",
        scope: "team-a",
    };
    println!("| response cache path | per call |");
    println!("|---|---:|");
    let ns = time(2000, 9, || {
        black_box(digest(&parts, black_box(&body)));
    });
    println!(
        "| key of a 2 KB chat request (canonical JSON + SHA-256) | {:.1} µs |",
        ns / 1000.0
    );
    let store = MemStore::default();
    let cfg = StoreConfig::default()
        .compile("cache")
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = precreate(&store, &cfg);
    let answer = vec![b'x'; 2048];
    let d = digest(&parts, &body);
    let _ = insert(&store, &cfg, &d, &answer, 0, 3600);
    let ns = time(20_000, 9, || {
        black_box(lookup(&store, &cfg, black_box(&d), 10));
    });
    println!(
        "| exact lookup of a 2 KB answer (one shared-data read) | {:.2} µs |",
        ns / 1000.0
    );
    let mut n = 0u8;
    let ns = time(5000, 9, || {
        n = n.wrapping_add(1);
        let mut k = d;
        k[0] = n;
        black_box(insert(&store, &cfg, &k, &answer, 0, 3600));
    });
    println!(
        "| store of a 2 KB answer (slot write + byte count) | {:.2} µs |",
        ns / 1000.0
    );
    for count in [1_000u32, 10_000] {
        let store = MemStore::default();
        let index = Index {
            prefix: "bench".into(),
            pages: count.div_ceil(32),
        };
        let _ = index.precreate(&store);
        for i in 0..u64::from(count) {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&i.to_le_bytes());
            key[8..16].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            if let Some(q) = quantize(&vector(i)) {
                let _ = index.insert(&store, 1, &key, q, 0, 3600);
            }
        }
        let Some(q) = quantize(&vector(u64::MAX)) else {
            return;
        };
        let iters = if count > 5000 { 20 } else { 200 };
        let ns = time(iters, 9, || {
            black_box(index.nearest(&store, 1, &q, 0.9, 10));
        });
        println!(
            "| semantic lookup, {count} prompts × {DIMS} dims (int8, one group) | {:.1} µs |",
            ns / 1000.0
        );
    }
}
