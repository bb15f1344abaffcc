//! A one-pass check of a Chat Completions body that builds no JSON tree.
//!
//! It accepts only bodies the full validator (`validate_chat` over a parsed
//! `Value`) accepts, and answers "cannot tell" (`None`) for anything else:
//! an error, a duplicate known field, an unusual shape. Those take the full
//! path, which gives the exact error. A passthrough request then never
//! builds a tree, unless a policy asks for one.
//!
//! Values the check does not look into are still parsed in full (strings
//! unescaped, numbers converted), so a body it accepts is one the full parse
//! accepts too: `IgnoredAny` would skip invalid escapes and out-of-range
//! numbers that `Value` refuses.

use super::ROLES;
use crate::wire::scan::{next_known, seed, unsure, Key, Skip};
use serde::de::{Deserializer, Error, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// What the check found in a body it accepts.
#[derive(Debug, PartialEq)]
pub struct Checked {
    pub model: String,
    pub stream: bool,
}

/// The body's facts if it is a valid Chat Completions request; `None` when
/// the full validator must decide.
pub fn chat(bytes: &[u8]) -> Option<Checked> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let found = de.deserialize_map(Body).ok()?;
    de.end().ok()?;
    found
}

/// The shapes a checked value may take; any other fails the check. `null`
/// is accepted wherever the validator treats it as absent.
#[derive(Clone, Copy)]
enum Shape {
    /// A string (never null).
    Str,
    /// A boolean or null.
    Flag,
    /// An integer ≥ 1 or null.
    PositiveInt,
    /// A number within the range or null.
    Number(f64, f64),
    /// An array (of anything) or null.
    Array,
    /// A string, an array of strings, or null (`stop`).
    StrOrStrs,
    /// A string, an object, or null (`tool_choice`).
    StrOrObject,
}

/// What a checked value was, as far as the callers care.
#[derive(Clone, Copy, PartialEq)]
enum Seen {
    Null,
    True,
    Other,
}

seed!(Shape, deserialize_any);

impl<'de> Visitor<'de> for Shape {
    type Value = Seen;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a checked value")
    }
    fn visit_unit<E: Error>(self) -> Result<Seen, E> {
        match self {
            Shape::Str => Err(unsure()),
            _ => Ok(Seen::Null),
        }
    }
    fn visit_bool<E: Error>(self, v: bool) -> Result<Seen, E> {
        match self {
            Shape::Flag if v => Ok(Seen::True),
            Shape::Flag => Ok(Seen::Other),
            _ => Err(unsure()),
        }
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Seen, E> {
        match self {
            Shape::PositiveInt if v >= 1 => Ok(Seen::Other),
            Shape::Number(..) => self.visit_f64(v as f64),
            _ => Err(unsure()),
        }
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Seen, E> {
        match self {
            Shape::Number(..) => self.visit_f64(v as f64),
            _ => Err(unsure()),
        }
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<Seen, E> {
        match self {
            Shape::Number(min, max) if (min..=max).contains(&v) => Ok(Seen::Other),
            _ => Err(unsure()),
        }
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<Seen, E> {
        match self {
            Shape::Str | Shape::StrOrStrs | Shape::StrOrObject => Ok(Seen::Other),
            _ => Err(unsure()),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seen, A::Error> {
        match self {
            Shape::Array => while seq.next_element_seed(Skip)?.is_some() {},
            Shape::StrOrStrs => while seq.next_element_seed(Shape::Str)?.is_some() {},
            _ => return Err(unsure()),
        }
        Ok(Seen::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Seen, A::Error> {
        match self {
            Shape::StrOrObject => Skip.visit_map(map).map(|()| Seen::Other),
            _ => Err(unsure()),
        }
    }
}

const TOP: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "tools",
    "stop",
    "tool_choice",
];

/// The shape each of `TOP[4..]` must have.
const TOP_SHAPES: &[Shape] = &[
    Shape::PositiveInt,
    Shape::PositiveInt,
    Shape::PositiveInt,
    Shape::Number(0.0, 2.0),
    Shape::Number(0.0, 1.0),
    Shape::Number(-2.0, 2.0),
    Shape::Number(-2.0, 2.0),
    Shape::Array,
    Shape::StrOrStrs,
    Shape::StrOrObject,
];

/// The request body (an object).
struct Body;

impl<'de> Visitor<'de> for Body {
    type Value = Option<Checked>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut seen, mut model, mut stream) = (0u32, None, false);
        let mut options = Seen::Null;
        let mut messages = false;
        while let Some(i) = next_known(&mut map, TOP, &mut seen)? {
            match i {
                0 => model = Some(map.next_value_seed(Model)?),
                1 => messages = map.next_value_seed(Messages)?,
                2 => stream = map.next_value_seed(Shape::Flag)? == Seen::True,
                3 => options = map.next_value_seed(StreamOptions)?,
                _ => {
                    map.next_value_seed(TOP_SHAPES[i - 4])?;
                }
            }
        }
        // `stream_options` only with `stream: true`.
        let options_ok = options == Seen::Null || stream;
        Ok(match model {
            Some(model) if messages && options_ok && !model.is_empty() => {
                Some(Checked { model, stream })
            }
            _ => None,
        })
    }
}

/// `model`: a string.
struct Model;

seed!(Model, deserialize_str);

impl<'de> Visitor<'de> for Model {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a model name")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
}

/// `stream_options`: null, or an object whose `include_usage` is a boolean
/// or null.
struct StreamOptions;

seed!(StreamOptions, deserialize_any);

impl<'de> Visitor<'de> for StreamOptions {
    type Value = Seen;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("stream options")
    }
    fn visit_unit<E: Error>(self) -> Result<Seen, E> {
        Ok(Seen::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        let mut seen = 0u32;
        while next_known(&mut map, &["include_usage"], &mut seen)?.is_some() {
            map.next_value_seed(Shape::Flag)?;
        }
        Ok(Seen::Other)
    }
}

/// `messages`: a non-empty array of messages (true when accepted).
struct Messages;

seed!(Messages, deserialize_seq);

impl<'de> Visitor<'de> for Messages {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("messages")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut count = 0usize;
        while seq.next_element_seed(Message)?.is_some() {
            count += 1;
        }
        Ok(count > 0)
    }
}

/// `ROLES[TOOL]`.
const TOOL: usize = 4;

/// One message: a known role, content as the validator allows it, and a
/// string `tool_call_id` for a tool's message.
struct Message;

seed!(Message, deserialize_map);

impl<'de> Visitor<'de> for Message {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut seen, mut role, mut call_id) = (0u32, None, false);
        while let Some(i) = next_known(&mut map, &["role", "content", "tool_call_id"], &mut seen)? {
            match i {
                0 => role = map.next_value_seed(Key(ROLES))?,
                1 => map.next_value_seed(Content)?,
                _ => call_id = map.next_value_seed(IsString)?,
            }
        }
        match role {
            // A tool's message needs its call's id (a string).
            Some(TOOL) if !call_id => Err(unsure()),
            Some(_) => Ok(()),
            None => Err(unsure()),
        }
    }
}

/// Any value; true when it is a string.
struct IsString;

seed!(IsString, deserialize_any);

impl<'de> Visitor<'de> for IsString {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        Skip.visit_seq(seq).map(|()| false)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        Skip.visit_map(map).map(|()| false)
    }
}

/// `content`: null, a string, or an array of parts, each an object with a
/// string `type`.
struct Content;

seed!(Content, deserialize_any);

impl<'de> Visitor<'de> for Content {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("message content")
    }
    fn visit_unit<E: Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Part)?.is_some() {}
        Ok(())
    }
}

/// A content part: an object with a string `type`.
struct Part;

seed!(Part, deserialize_map);

impl<'de> Visitor<'de> for Part {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content part")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0u32;
        while next_known(&mut map, &["type"], &mut seen)?.is_some() {
            map.next_value_seed(Shape::Str)?;
        }
        match seen {
            0 => Err(unsure()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
