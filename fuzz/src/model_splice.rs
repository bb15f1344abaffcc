//! `model_splice`: `openai::splice::replace_member`, which rewrites the
//! top-level `model` of a passthrough request in the client's bytes.
//!
//! Input: the JSON body (any bytes).
//!
//! Checks: no panic on any bytes. When the input is a valid JSON object:
//! a `Some` output parses and equals the input with `model` replaced
//! (compared as `serde_json::Value`s), and only the value's bytes changed;
//! and the splice declines (`None`) exactly in the cases it documents: no
//! top-level `model`, a repeated one, or a top-level key spelled with
//! escapes.

use crate::common::json;
use llm_gateway::wire::openai::splice::replace_member;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Replacement values, already JSON-encoded (the flow passes a string).
const VALUES: [&str; 3] = [
    "\"upstream-model\"",
    "\"a\\\"b\\\\c\\u0000\u{e9}\"",
    "{\"x\":[1,\"]\"]}",
];

pub fn model_splice(data: &[u8]) {
    let parsed: Option<Value> = serde_json::from_slice(data).ok();
    let keys = parsed
        .as_ref()
        .filter(|v| v.is_object())
        .map(|_| top_level_keys(data));
    for value in VALUES {
        let out = replace_member(data, "model", value);
        let (Some(parsed), Some(keys)) = (&parsed, &keys) else {
            continue; // not a JSON object: only "no panic"
        };
        let models = keys.iter().filter(|(k, _)| k == "model").count();
        let escaped = keys.iter().any(|(_, escaped)| *escaped);
        let should_splice = models == 1 && !escaped;
        let Some(out) = out else {
            assert!(
                !should_splice,
                "declined a plain object with one 'model': {:?}",
                String::from_utf8_lossy(data)
            );
            continue;
        };
        assert!(
            should_splice,
            "spliced although model appears {models} times (escaped keys: {escaped}): {:?}",
            String::from_utf8_lossy(data)
        );
        let got = json(&out, "spliced body");
        let mut want = parsed.clone();
        want["model"] = json(value.as_bytes(), "replacement");
        assert_eq!(
            got,
            want,
            "splice changed more than 'model' in {:?}",
            String::from_utf8_lossy(data)
        );
        only_value_changed(data, &out, value.as_bytes());
    }
}

/// `out` is `data` with one span replaced by `value`.
fn only_value_changed(data: &[u8], out: &[u8], value: &[u8]) {
    let prefix = data.iter().zip(out).take_while(|(a, b)| a == b).count();
    let suffix = data
        .iter()
        .rev()
        .zip(out.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let ok = (0..=prefix.min(out.len())).any(|p| {
        out.len() >= p + value.len()
            && &out[p..p + value.len()] == value
            && out.len() - (p + value.len()) <= suffix
            && data.len() >= p + (out.len() - p - value.len())
    });
    assert!(
        ok,
        "splice touched bytes outside the value: {:?} -> {:?}",
        String::from_utf8_lossy(data),
        String::from_utf8_lossy(out)
    );
}

/// The top-level keys of a JSON object in order, each with whether its
/// spelling used escapes (serde_json hands out a borrowed `&str` only for
/// a key without any).
fn top_level_keys(data: &[u8]) -> Vec<(String, bool)> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<(String, bool)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut keys = Vec::new();
            while let Some(k) = map.next_key::<Key<'de>>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push((k.0.to_string(), matches!(k.0, Cow::Owned(_))));
            }
            Ok(keys)
        }
    }
    struct Key<'a>(Cow<'a, str>);
    impl<'de> serde::Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a key")
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                    Ok(Key(Cow::Borrowed(s)))
                }
                fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                    Ok(Key(Cow::Owned(s.to_string())))
                }
            }
            d.deserialize_str(V)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    match de.deserialize_map(Keys) {
        Ok(keys) => keys,
        Err(e) => panic!("a JSON object whose keys cannot be listed: {e}"),
    }
}
