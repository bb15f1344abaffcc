//! The cache key: SHA-256 of what decides the answer — the client API, the
//! target (provider and upstream model), the scope, and the request body in
//! canonical form (keys sorted, no whitespace) without the fields that do
//! not change the answer.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Request fields left out of the key: how the answer is delivered or who
/// asked, not what it says. The model is left out too: the target stands
/// for it (two aliases of one target share answers).
const IGNORED: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "safety_identifier",
    "prompt_cache_key",
    "service_tier",
];

/// What a key is computed from besides the body.
pub struct KeyParts<'a> {
    /// The client API's name (answers are stored per API: each has its own
    /// defaults and fields).
    pub api: &'a str,
    pub provider: &'a str,
    pub upstream_model: &'a str,
    /// The consumer's name, or empty for a shared scope.
    pub scope: &'a str,
}

/// 32-byte digest.
pub type Digest32 = [u8; 32];

pub fn digest(parts: &KeyParts, body: &Map<String, Value>) -> Digest32 {
    let mut canon = Vec::with_capacity(256);
    for part in [parts.api, parts.provider, parts.upstream_model, parts.scope] {
        // A length prefix: no two part lists hash the same text.
        canon.extend_from_slice(&(part.len() as u64).to_le_bytes());
        canon.extend_from_slice(part.as_bytes());
    }
    write_object(body, Some(IGNORED), &mut canon);
    Sha256::digest(&canon).into()
}

/// Request fields a semantic lookup compares by meaning (the prompt), not
/// exactly.
const PROMPT_FIELDS: &[&str] = &["messages", "system", "input", "instructions"];

/// The group of a semantic lookup: what must be exactly equal for two
/// prompts to be compared at all — the parts of `digest` but the prompt,
/// and the number of turns (`turns`).
pub fn group_digest(parts: &KeyParts, body: &Map<String, Value>, turns: usize) -> u64 {
    let mut canon = Vec::with_capacity(128);
    for part in [parts.api, parts.provider, parts.upstream_model, parts.scope] {
        canon.extend_from_slice(&(part.len() as u64).to_le_bytes());
        canon.extend_from_slice(part.as_bytes());
    }
    canon.extend_from_slice(&(turns as u64).to_le_bytes());
    let mut skip: Vec<&str> = IGNORED.to_vec();
    skip.extend_from_slice(PROMPT_FIELDS);
    write_object(body, Some(&skip), &mut canon);
    let d = Sha256::digest(&canon);
    let mut head = [0u8; 8];
    head.copy_from_slice(&d[..8]);
    u64::from_le_bytes(head)
}

/// Whether the request asks for the same answer every time: `temperature`
/// given and 0 (every API here samples when it is absent).
pub fn deterministic(body: &Map<String, Value>) -> bool {
    body.get("temperature")
        .and_then(Value::as_f64)
        .is_some_and(|t| t == 0.0)
}

fn write_object(map: &Map<String, Value>, skip: Option<&[&str]>, out: &mut Vec<u8>) {
    let mut keys: Vec<&String> = map
        .keys()
        .filter(|k| skip.is_none_or(|s| !s.contains(&k.as_str())))
        .collect();
    heap_sort(&mut keys);
    out.push(b'{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(k, out);
        out.push(b':');
        if let Some(v) = map.get(k) {
            write_value(v, out);
        }
    }
    out.push(b'}');
}

fn write_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => write_object(m, None, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_str(s, out),
        Value::Number(n) => match n.as_f64() {
            // 0 and 0.0 are one value: whole floats print as integers.
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                out.extend_from_slice((f as i64).to_string().as_bytes());
            }
            _ => out.extend_from_slice(n.to_string().as_bytes()),
        },
        // Booleans and null print one way.
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Sorts in place, in O(n log n) and a few hundred bytes of Wasm (the
/// standard sorts are generic and large; this is the only sort a request
/// runs).
fn heap_sort(v: &mut [&String]) {
    fn sift_down(v: &mut [&String], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && v[child] < v[child + 1] {
                child += 1;
            }
            if v[root] >= v[child] {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    let n = v.len();
    for start in (0..n / 2).rev() {
        sift_down(v, start, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn heap_sort_sorts() {
        let words: Vec<String> = "delta alpha echo bravo charlie alpha zulu"
            .split(' ')
            .map(String::from)
            .collect();
        for n in 0..=words.len() {
            let mut v: Vec<&String> = words[..n].iter().collect();
            super::heap_sort(&mut v);
            let mut want: Vec<&String> = words[..n].iter().collect();
            want.sort();
            assert_eq!(v, want);
        }
    }
}
