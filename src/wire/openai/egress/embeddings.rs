//! Embeddings: hub `EmbeddingsRequest` → OpenAI embeddings request, and
//! its `list` response back.

use super::error::{bad_upstream, clash, in_body_error, parse_object};
use super::wire::{lenient, non_empty, WireUsage};
use crate::error::ApiError;
use crate::wire::hub::{EmbeddingsRequest, EmbeddingsResponse, ResponseContext};
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(flatten)]
    extra: ExtraFields<'a>,
}

struct ExtraFields<'a>(Vec<(&'a str, &'a Value)>);

impl Serialize for ExtraFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (*k, *v)))
    }
}

pub(super) fn encode(req: &EmbeddingsRequest) -> Result<Vec<u8>, ApiError> {
    let mut extra = Vec::with_capacity(req.extra.len());
    for (key, value) in &req.extra {
        if value.is_null() {
            continue;
        }
        let written = match key.as_str() {
            "model" | "input" => true,
            "dimensions" => req.dimensions.is_some(),
            _ => false,
        };
        if written {
            return Err(clash(key));
        }
        extra.push((key.as_str(), value));
    }
    let body = Body {
        model: &req.model,
        input: &req.inputs,
        dimensions: req.dimensions,
        extra: ExtraFields(extra),
    };
    serde_json::to_vec(&body).map_err(|e| {
        ApiError::new(
            500,
            "api_error",
            format!("Could not serialize the provider request: {e}."),
        )
    })
}

#[derive(Deserialize)]
struct EmbeddingList<'a> {
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Vec<Embedding<'a>>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Embedding<'a> {
    #[serde(default)]
    index: Option<usize>,
    #[serde(borrow, default)]
    embedding: Option<Vector<'a>>,
}

/// A vector as floats, or (`encoding_format: base64`) as base64 of
/// little-endian f32s.
enum Vector<'a> {
    Floats(Vec<f64>),
    Base64(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Vector<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct VectorVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for VectorVisitor<'a> {
            type Value = Vector<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of numbers or a base64 string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Vector::Base64(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Vector::Base64(Cow::Owned(s.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut floats = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(x) = seq.next_element::<f64>()? {
                    floats.push(x);
                }
                Ok(Vector::Floats(floats))
            }
        }

        d.deserialize_any(VectorVisitor(PhantomData))
    }
}

/// Standard base64 (padding optional) → bytes; None if it is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        if group.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (k, c) in group.iter().enumerate() {
            n |= sextet(*c)? << (18 - 6 * k);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(bytes.get(1..group.len()).unwrap_or_default());
    }
    Some(out)
}

fn floats_from_base64(text: &str) -> Option<Vec<f64>> {
    let bytes = base64_decode(text)?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
    )
}

pub(super) fn decode(body: &[u8], ctx: &ResponseContext) -> Result<EmbeddingsResponse, ApiError> {
    let list: EmbeddingList = parse_object(body, "an embeddings response", "an embeddings list")?;
    if let Some(err) = list.error.as_ref().filter(|e| !e.is_null()) {
        return Err(in_body_error(err, body));
    }
    let Some(data) = list.data else {
        return Err(bad_upstream(match list.object.as_deref() {
            Some(object) => format!(
                "The provider returned a '{object}' object without a 'data' array where an embeddings list was expected."
            ),
            None => "The provider returned an embeddings response without a 'data' array."
                .to_string(),
        }));
    };
    let count = data.len();
    let mut vectors: Vec<Option<Vec<f64>>> = vec![None; count];
    for (pos, item) in data.into_iter().enumerate() {
        let index = item.index.unwrap_or(pos);
        let vector = match item.embedding {
            Some(Vector::Floats(v)) => v,
            Some(Vector::Base64(text)) => floats_from_base64(&text).ok_or_else(|| {
                bad_upstream(format!(
                    "The provider returned data[{pos}].embedding as a string that is not base64 of 32-bit floats."
                ))
            })?,
            None => {
                return Err(bad_upstream(format!(
                    "The provider returned data[{pos}] without an 'embedding'."
                )))
            }
        };
        match vectors.get_mut(index) {
            Some(slot @ None) => *slot = Some(vector),
            _ => {
                return Err(bad_upstream(format!(
                    "The provider returned data[{pos}] with index {index}, which is repeated or not below the {count} embeddings returned."
                )))
            }
        }
    }
    let usage = list.usage.as_ref().and_then(WireUsage::to_usage);
    Ok(EmbeddingsResponse {
        model: non_empty(&list.model).unwrap_or(&ctx.model).to_string(),
        // Every slot was filled: `count` items, each in a distinct slot.
        vectors: vectors.into_iter().flatten().collect(),
        prompt_tokens: usage.map_or(0, |u| {
            if u.prompt_tokens > 0 {
                u.prompt_tokens
            } else {
                u.total_tokens
            }
        }),
    })
}

#[cfg(test)]
mod base64_tests {
    use super::*;

    #[test]
    fn decodes_what_the_gateway_encodes() {
        assert_eq!(base64_decode(""), Some(vec![]));
        assert_eq!(base64_decode("Zg=="), Some(b"f".to_vec()));
        assert_eq!(base64_decode("Zm8="), Some(b"fo".to_vec()));
        assert_eq!(base64_decode("Zm9v"), Some(b"foo".to_vec()));
        assert_eq!(base64_decode("Zm9vYmFy"), Some(b"foobar".to_vec()));
        assert_eq!(base64_decode("Zm9vYg"), Some(b"foob".to_vec()));
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Zm9*"), None);
        // 1.0f32 = 00 00 80 3f, -2.5f32 = 00 00 20 c0
        assert_eq!(floats_from_base64("AACAPwAAIMA="), Some(vec![1.0, -2.5]));
        assert_eq!(floats_from_base64("Zm9v"), None, "3 bytes are no f32");
    }
}
