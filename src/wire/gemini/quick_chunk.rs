//! A Gemini response chunk (a stream event's JSON, or a whole
//! `generateContent` answer) read in one typed pass, without the JSON tree
//! [`GeminiStream::translate`](super::GeminiStream) walks.
//!
//! It covers what nearly every chunk holds — candidates with text parts, an
//! index and a finish reason, the running usage, the response id and model
//! version, other members skipped — and answers `None` ("take the tree
//! path") for anything else: function calls, thoughts, errors, prompt
//! feedback, parts without text, a duplicate member, a value of a type the
//! tree path reads leniently or refuses. So what it reads gives the events
//! the tree path gives (tested, and fuzzed by `stream_gemini`). Skipped values
//! are parsed in full (`scan::Skip`), so it accepts no bytes the tree's
//! parser refuses.

use super::response::Counts;
use crate::wire::hub::Usage;
use crate::wire::scan::{next_known, seed, unsure};
use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One chunk's content, borrowing the chunk's text where it has no escapes.
#[derive(Debug, Default)]
pub(super) struct QuickChunk<'a> {
    pub response_id: Option<Cow<'a, str>>,
    pub model_version: Option<Cow<'a, str>>,
    pub usage: Option<Usage>,
    pub candidates: Vec<QuickCandidate<'a>>,
}

#[derive(Debug, Default)]
pub(super) struct QuickCandidate<'a> {
    /// `None`: absent or null (the candidate's position is its index).
    pub index: Option<u32>,
    pub texts: Vec<Cow<'a, str>>,
    pub finish_reason: Option<Cow<'a, str>>,
}

/// The chunk in `data`, `None` when the tree path decides.
pub(super) fn from_str(data: &str) -> Option<QuickChunk<'_>> {
    read(serde_json::Deserializer::from_str(data))
}

/// As [`from_str`], for a body not known to be UTF-8.
pub(super) fn from_slice(data: &[u8]) -> Option<QuickChunk<'_>> {
    read(serde_json::Deserializer::from_slice(data))
}

fn read<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> Option<QuickChunk<'de>> {
    let chunk = de.deserialize_map(Chunk).ok()?;
    de.end().ok()?;
    Some(chunk)
}

/// Members read; the last two always give up.
const CHUNK_KEYS: &[&str] = &[
    "candidates",
    "usageMetadata",
    "responseId",
    "modelVersion",
    "error",
    "promptFeedback",
];

struct Chunk;

impl<'de> Visitor<'de> for Chunk {
    type Value = QuickChunk<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a response chunk")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut chunk, mut seen) = (QuickChunk::default(), 0u32);
        while let Some(i) = next_known(&mut map, CHUNK_KEYS, &mut seen)? {
            match i {
                0 => {
                    chunk.candidates = map
                        .next_value_seed(OrNull(Many(Candidate)))?
                        .unwrap_or_default()
                }
                1 => chunk.usage = map.next_value_seed(OrNull(UsageCounts))?,
                2 => chunk.response_id = map.next_value_seed(OrNull(Text))?,
                3 => chunk.model_version = map.next_value_seed(OrNull(Text))?,
                _ => return Err(unsure()),
            }
        }
        Ok(chunk)
    }
}

/// `null` as `None`, anything else read by the inner seed.
struct OrNull<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for OrNull<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for OrNull<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// A string, borrowed when it has no escapes.
struct Text;

seed!(Text, deserialize_str);

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// An unsigned integer (a float, a negative number or a string gives up:
/// the tree path reads those as absent).
struct Count;

seed!(Count, deserialize_u64);

impl<'de> Visitor<'de> for Count {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a count")
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
}

const USAGE_KEYS: &[&str] = &[
    "promptTokenCount",
    "toolUsePromptTokenCount",
    "thoughtsTokenCount",
    "candidatesTokenCount",
    "totalTokenCount",
    "cachedContentTokenCount",
];

struct UsageCounts;

seed!(UsageCounts, deserialize_map);

impl<'de> Visitor<'de> for UsageCounts {
    type Value = Usage;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("usage metadata")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Usage, A::Error> {
        let (mut c, mut seen) = (Counts::default(), 0u32);
        while let Some(i) = next_known(&mut map, USAGE_KEYS, &mut seen)? {
            let n = map.next_value_seed(OrNull(Count))?;
            match i {
                0 => c.prompt = n,
                1 => c.tool_use_prompt = n,
                2 => c.thoughts = n,
                3 => c.candidates = n,
                4 => c.total = n,
                _ => c.cached = n,
            }
        }
        Ok(c.usage())
    }
}

/// An array, each element read by the seed `S`.
#[derive(Clone, Copy)]
struct Many<S>(S);

impl<'de, S: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for Many<S> {
    type Value = Vec<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for Many<S> {
    type Value = Vec<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(self.0)? {
            out.push(item);
        }
        Ok(out)
    }
}

const CANDIDATE_KEYS: &[&str] = &["index", "content", "finishReason"];

#[derive(Clone, Copy)]
struct Candidate;

seed!(Candidate, deserialize_map);

impl<'de> Visitor<'de> for Candidate {
    type Value = QuickCandidate<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a candidate")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut c, mut seen) = (QuickCandidate::default(), 0u32);
        while let Some(i) = next_known(&mut map, CANDIDATE_KEYS, &mut seen)? {
            match i {
                0 => {
                    c.index = match map.next_value_seed(OrNull(Count))? {
                        None => None,
                        Some(n) => Some(u32::try_from(n).map_err(|_| unsure::<A::Error>())?),
                    }
                }
                1 => c.texts = map.next_value_seed(OrNull(Content))?.unwrap_or_default(),
                _ => c.finish_reason = map.next_value_seed(OrNull(Text))?,
            }
        }
        Ok(c)
    }
}

/// A candidate's `content`: the texts of its `parts`.
struct Content;

seed!(Content, deserialize_map);

impl<'de> Visitor<'de> for Content {
    type Value = Vec<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("content")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = 0u32;
        let mut texts = Vec::new();
        while next_known(&mut map, &["parts"], &mut seen)?.is_some() {
            texts = map
                .next_value_seed(OrNull(Many(TextPart)))?
                .unwrap_or_default();
        }
        Ok(texts)
    }
}

/// A part read: its text. A call or a thought gives up; other members (a
/// thought signature, say) are skipped, as the tree path ignores them
/// beside a text.
const PART_KEYS: &[&str] = &["text", "functionCall", "thought"];

#[derive(Clone, Copy)]
struct TextPart;

seed!(TextPart, deserialize_map);

impl<'de> Visitor<'de> for TextPart {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a part")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut text, mut seen) = (None, 0u32);
        while let Some(i) = next_known(&mut map, PART_KEYS, &mut seen)? {
            match i {
                0 => text = Some(map.next_value_seed(Text)?),
                _ => return Err(unsure()),
            }
        }
        text.ok_or_else(unsure)
    }
}
