//! A one-pass check of a `POST /v1/messages` body that builds no JSON tree.
//!
//! It accepts only bodies the full validator (`parse::parse` over a parsed
//! `Value`) accepts, and answers "cannot tell" (`None`) for anything else:
//! an error, a known field given twice, a number written as a float where
//! an integer is due, a shape it does not follow. Those take the full path,
//! which gives Anthropic's exact error. A passthrough request (Claude Code
//! to Anthropic, say) then builds no tree unless a policy asks for one.
//!
//! Values are parsed in full even where only their kind matters (see
//! `wire::scan`), so whatever this accepts a full parse accepts too.

use super::parse::{valid_tool_name, IMAGE_MEDIA_TYPES, MESSAGES_FIELDS};
use crate::wire::openai::quick::Checked;
use crate::wire::scan::{first, next_known, seed, unsure, Key, Skip};
use serde::de::{Deserializer, Error, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The body's facts if it is a valid Messages request; `None` when the
/// full validator must decide.
pub fn messages(bytes: &[u8]) -> Option<Checked> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let found = de.deserialize_map(Body).ok()?;
    de.end().ok()?;
    Some(found)
}

/// What kind of JSON value was read (its contents skipped).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Null,
    Bool,
    /// A number: as an unsigned integer when it is one, and as a float.
    Num(Option<u64>, f64),
    Str,
    List,
    Dict,
}

impl Kind {
    fn null_or(self, kind: Kind) -> bool {
        self == Kind::Null || self == kind
    }

    /// A number within `min..=max` (any number, as `Value::as_f64`).
    fn within(self, min: f64, max: f64) -> bool {
        matches!(self, Kind::Num(_, x) if (min..=max).contains(&x))
    }

    /// An integer of at least `min`, written without a fraction (a float
    /// with a zero fraction, which the validator also takes, is left to it).
    fn int_at_least(self, min: u64) -> bool {
        matches!(self, Kind::Num(Some(n), _) if n >= min && n <= i64::MAX as u64)
    }
}

seed!(Kind, deserialize_any);

/// Reads any value as its kind; `Kind` is only the seed's name here.
impl<'de> Visitor<'de> for Kind {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_unit<E: Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Bool)
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Num(Some(v), v as f64))
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Num(None, v as f64))
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Num(None, v))
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::Str)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Kind, A::Error> {
        Skip.visit_seq(seq).map(|()| Kind::List)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
        Skip.visit_map(map).map(|()| Kind::Dict)
    }
}

/// The seed that reads a value's kind.
const ANY: Kind = Kind::Null;

/// A `type` tag: its index in a table of names, `Other` for another
/// string, `Null` for null (any other value gives up).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Tag {
    Name(usize),
    Other,
    Null,
}

/// Reads a tag against its table of names.
#[derive(Clone, Copy)]
struct Tags(&'static [&'static str]);

seed!(Tags, deserialize_any);

impl<'de> Visitor<'de> for Tags {
    type Value = Tag;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tag")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Tag, E> {
        Ok(self
            .0
            .iter()
            .position(|t| *t == v)
            .map_or(Tag::Other, Tag::Name))
    }
    fn visit_unit<E: Error>(self) -> Result<Tag, E> {
        Ok(Tag::Null)
    }
}

/// The top-level fields, in `MESSAGES_FIELDS` order.
mod top {
    pub const MODEL: usize = 0;
    pub const MESSAGES: usize = 1;
    pub const MAX_TOKENS: usize = 2;
    pub const SYSTEM: usize = 3;
    pub const METADATA: usize = 4;
    pub const STOP_SEQUENCES: usize = 5;
    pub const STREAM: usize = 6;
    pub const TEMPERATURE: usize = 7;
    pub const TOP_P: usize = 8;
    pub const TOP_K: usize = 9;
    pub const TOOLS: usize = 10;
    pub const TOOL_CHOICE: usize = 11;
    pub const THINKING: usize = 12;
    pub const SERVICE_TIER: usize = 13;
    pub const CONTAINER: usize = 14;
    pub const CONTEXT_MANAGEMENT: usize = 15;
    pub const MCP_SERVERS: usize = 16;
    pub const OUTPUT_CONFIG: usize = 17;
    pub const OUTPUT_FORMAT: usize = 18;
}

/// The request body (an object); any field but Anthropic's gives up.
struct Body;

impl<'de> Visitor<'de> for Body {
    type Value = Checked;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let (mut seen, mut model, mut stream) = (0u32, None, false);
        let (mut has_messages, mut has_max_tokens) = (false, false);
        while let Some(key) = map.next_key_seed(Key(MESSAGES_FIELDS))? {
            let i = key.ok_or_else(unsure)?;
            first(&mut seen, i)?;
            let ok = match i {
                top::MODEL => {
                    model = map.next_value_seed(Model)?;
                    true
                }
                top::MESSAGES => {
                    has_messages = true;
                    map.next_value_seed(Messages)?
                }
                top::MAX_TOKENS => {
                    has_max_tokens = true;
                    map.next_value_seed(ANY)?.int_at_least(1)
                }
                top::SYSTEM => map.next_value_seed(System)?,
                top::METADATA => map
                    .next_value_seed(METADATA)?
                    .is_none_or(|f| f.kinds[0].is_none_or(|k| k.null_or(Kind::Str))),
                top::STOP_SEQUENCES => map.next_value_seed(Strings)?,
                top::STREAM => {
                    stream = map.next_value_seed(Flag)? == Some(true);
                    true
                }
                top::TEMPERATURE | top::TOP_P => {
                    let k = map.next_value_seed(ANY)?;
                    k == Kind::Null || k.within(0.0, 1.0)
                }
                top::TOP_K => {
                    let k = map.next_value_seed(ANY)?;
                    k == Kind::Null || k.int_at_least(0)
                }
                top::TOOLS => map.next_value_seed(Tools)?,
                top::TOOL_CHOICE => map.next_value_seed(TOOL_CHOICE)?.is_none_or(tool_choice_ok),
                top::THINKING => map.next_value_seed(THINKING)?.is_none_or(thinking_ok),
                top::SERVICE_TIER => map.next_value_seed(ANY)?.null_or(Kind::Str),
                top::CONTAINER => {
                    let k = map.next_value_seed(ANY)?;
                    matches!(k, Kind::Null | Kind::Str | Kind::Dict)
                }
                top::CONTEXT_MANAGEMENT | top::OUTPUT_FORMAT => {
                    map.next_value_seed(ANY)?.null_or(Kind::Dict)
                }
                top::MCP_SERVERS => map.next_value_seed(ANY)?.null_or(Kind::List),
                top::OUTPUT_CONFIG => map.next_value_seed(OUTPUT_CONFIG)?.is_none_or(|f| {
                    f.kinds[0].is_none_or(|k| k.null_or(Kind::Str))
                        && f.kinds[1].is_none_or(|k| k.null_or(Kind::Dict))
                }),
                _ => false,
            };
            if !ok {
                return Err(unsure());
            }
        }
        match model {
            Some(model) if has_messages && has_max_tokens => Ok(Checked { model, stream }),
            _ => Err(unsure()),
        }
    }
}

/// `model`: a non-empty string.
struct Model;

seed!(Model, deserialize_any);

impl<'de> Visitor<'de> for Model {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a model name")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        match v.is_empty() {
            true => Err(unsure()),
            false => Ok(Some(v.to_owned())),
        }
    }
}

/// `stream`: `Some(flag)` for a boolean, `None` for null; else gives up.
struct Flag;

seed!(Flag, deserialize_any);

impl<'de> Visitor<'de> for Flag {
    type Value = Option<bool>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean")
    }
    fn visit_bool<E: Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// `messages`: a non-empty list of messages.
struct Messages;

seed!(Messages, deserialize_any);

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

/// One message: `role` user or assistant, `content` a string or blocks.
struct Message;

seed!(Message, deserialize_map);

impl<'de> Visitor<'de> for Message {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut seen, mut role, mut content) = (0u32, None, None);
        while let Some(i) = next_known(&mut map, &["role", "content"], &mut seen)? {
            match i {
                0 => role = Some(map.next_value_seed(Tags(&["user", "assistant"]))?),
                _ => content = Some(map.next_value_seed(Content)?),
            }
        }
        match (role, content) {
            (Some(Tag::Name(_)), Some(Kind::Str | Kind::List)) => Ok(()),
            _ => Err(unsure()),
        }
    }
}

/// Content: its kind, a list checked block by block (a block the check
/// does not pass gives up, whatever holds the list).
struct Content;

seed!(Content, deserialize_any);

impl<'de> Visitor<'de> for Content {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("content")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element_seed(Block)?.is_some() {}
        Ok(Kind::List)
    }
    fn visit_unit<E: Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::Str)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
        Skip.visit_map(map).map(|()| Kind::Dict)
    }
}

const BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
];

const BLOCK_KEYS: &[&str] = &[
    "type",
    "text",
    "source",
    "title",
    "id",
    "name",
    "input",
    "tool_use_id",
    "content",
    "is_error",
    "thinking",
    "signature",
    "data",
];

/// One content block, checked as its `type` asks once the whole object is
/// read (the tag may come last).
#[derive(Clone, Copy)]
struct Block;

seed!(Block, deserialize_map);

impl<'de> Visitor<'de> for Block {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content block")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0u32;
        let mut tag = None;
        let mut source = None;
        let mut kinds = [None::<Kind>; BLOCK_KEYS.len()];
        while let Some(i) = next_known(&mut map, BLOCK_KEYS, &mut seen)? {
            match i {
                0 => tag = Some(map.next_value_seed(Tags(BLOCK_TYPES))?),
                2 => source = Some(map.next_value_seed(Source::default())?),
                8 => kinds[i] = Some(map.next_value_seed(Content)?),
                _ => kinds[i] = Some(map.next_value_seed(ANY)?),
            }
        }
        let is = |key: usize, kind: Kind| kinds[key] == Some(kind);
        // Absent or null.
        let absent_or = |key: usize, kind: Kind| kinds[key].is_none_or(|k| k.null_or(kind));
        let ok = match tag {
            Some(Tag::Name(0)) => is(1, Kind::Str),
            Some(Tag::Name(1)) => source.is_some_and(Source::image_ok),
            Some(Tag::Name(2)) => {
                source.is_some_and(Source::document_ok) && absent_or(3, Kind::Str)
            }
            Some(Tag::Name(3)) => is(4, Kind::Str) && is(5, Kind::Str) && is(6, Kind::Dict),
            Some(Tag::Name(4)) => {
                let content =
                    kinds[8].is_none_or(|k| matches!(k, Kind::Null | Kind::Str | Kind::List));
                is(7, Kind::Str) && content && absent_or(9, Kind::Bool)
            }
            Some(Tag::Name(5)) => is(10, Kind::Str) && is(11, Kind::Str),
            Some(Tag::Name(6)) => is(12, Kind::Str),
            Some(Tag::Name(_) | Tag::Other) => true,
            Some(Tag::Null) | None => false,
        };
        match ok {
            true => Ok(()),
            false => Err(unsure()),
        }
    }
}

const SOURCE_TYPES: &[&str] = &["base64", "url", "file", "text", "content"];

/// `media_type` values the validator names.
const MEDIA_TYPES: &[&str] = &["application/pdf", "text/plain"];

/// What an image's or a document's `source` holds (which one it belongs
/// to is known only once its block is read).
#[derive(Clone, Copy, Default)]
struct Source {
    object: bool,
    tag: Option<Tag>,
    /// `media_type`: an image type, a document type (index in
    /// `MEDIA_TYPES`), another string, or not a string.
    image_media: bool,
    media: Option<Tag>,
    data: Option<Kind>,
    url: Option<Kind>,
    file_id: Option<Kind>,
    content: Option<Kind>,
}

seed!(Source, deserialize_any);

impl Source {
    fn image_ok(self) -> bool {
        let str = |k: Option<Kind>| k == Some(Kind::Str);
        self.object
            && match self.tag {
                Some(Tag::Name(0)) => self.image_media && str(self.data),
                Some(Tag::Name(1)) => str(self.url),
                Some(Tag::Name(2)) => str(self.file_id),
                _ => false,
            }
    }

    fn document_ok(self) -> bool {
        let str = |k: Option<Kind>| k == Some(Kind::Str);
        self.object
            && match self.tag {
                Some(Tag::Name(0)) => self.media == Some(Tag::Name(0)) && str(self.data),
                Some(Tag::Name(3)) => self.media == Some(Tag::Name(1)) && str(self.data),
                Some(Tag::Name(1)) => str(self.url),
                Some(Tag::Name(2)) => str(self.file_id),
                Some(Tag::Name(4)) => matches!(self.content, Some(Kind::Str | Kind::List)),
                _ => false,
            }
    }
}

/// Reads a `media_type`, noting whether it is an image type.
struct Media;

seed!(Media, deserialize_any);

impl<'de> Visitor<'de> for Media {
    type Value = (bool, Tag);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a media type")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((
            IMAGE_MEDIA_TYPES.contains(&v),
            Tags(MEDIA_TYPES).visit_str(v)?,
        ))
    }
}

impl<'de> Visitor<'de> for Source {
    type Value = Source;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a source")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Source, A::Error> {
        const KEYS: &[&str] = &["type", "media_type", "data", "url", "file_id", "content"];
        let (mut seen, mut s) = (
            0u32,
            Source {
                object: true,
                ..Source::default()
            },
        );
        while let Some(i) = next_known(&mut map, KEYS, &mut seen)? {
            match i {
                0 => s.tag = Some(map.next_value_seed(Tags(SOURCE_TYPES))?),
                1 => {
                    let (image, media) = map.next_value_seed(Media)?;
                    (s.image_media, s.media) = (image, Some(media));
                }
                2 => s.data = Some(map.next_value_seed(ANY)?),
                3 => s.url = Some(map.next_value_seed(ANY)?),
                4 => s.file_id = Some(map.next_value_seed(ANY)?),
                _ => s.content = Some(map.next_value_seed(Content)?),
            }
        }
        Ok(s)
    }
}

/// `system`: null, a string, or a list of text blocks.
struct System;

seed!(System, deserialize_any);

impl<'de> Visitor<'de> for System {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a system prompt")
    }
    fn visit_unit<E: Error>(self) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(block) = seq.next_element_seed(TEXT_BLOCK)? {
            if !matches!(block, Some(f) if f.tag == Some(Tag::Name(0)) && f.kinds[1] == Some(Kind::Str))
            {
                return Err(unsure());
            }
        }
        Ok(true)
    }
}

/// `stop_sequences`: null or a list of strings.
struct Strings;

seed!(Strings, deserialize_any);

impl<'de> Visitor<'de> for Strings {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("strings")
    }
    fn visit_unit<E: Error>(self) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(k) = seq.next_element_seed(ANY)? {
            if k != Kind::Str {
                return Err(unsure());
            }
        }
        Ok(true)
    }
}

/// `tools`: null or a list of tools; a client tool (no `type`, or
/// `custom`) needs a valid name, a string description if any, and an
/// `input_schema` object; a server tool is Anthropic's to check.
struct Tools;

seed!(Tools, deserialize_any);

impl<'de> Visitor<'de> for Tools {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("tools")
    }
    fn visit_unit<E: Error>(self) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element_seed(Tool)?.is_some() {}
        Ok(true)
    }
}

struct Tool;

seed!(Tool, deserialize_map);

impl<'de> Visitor<'de> for Tool {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tool")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const KEYS: &[&str] = &["type", "name", "description", "input_schema"];
        let mut seen = 0u32;
        let (mut tag, mut name, mut description, mut schema) = (None, false, None, None);
        while let Some(i) = next_known(&mut map, KEYS, &mut seen)? {
            match i {
                0 => tag = Some(map.next_value_seed(Tags(&["custom"]))?),
                1 => name = map.next_value_seed(ToolName)?,
                2 => description = Some(map.next_value_seed(ANY)?),
                _ => schema = Some(map.next_value_seed(ANY)?),
            }
        }
        let ok = match tag {
            Some(Tag::Other) => true,
            None | Some(Tag::Name(_) | Tag::Null) => {
                name && description.is_none_or(|k| k.null_or(Kind::Str))
                    && schema == Some(Kind::Dict)
            }
        };
        match ok {
            true => Ok(()),
            false => Err(unsure()),
        }
    }
}

/// A tool's `name`: true for a string Anthropic's pattern allows.
struct ToolName;

seed!(ToolName, deserialize_any);

impl<'de> Visitor<'de> for ToolName {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tool name")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<bool, E> {
        Ok(valid_tool_name(v))
    }
}

/// A small object's known members: each one's kind, and its `type` tag
/// read against `tags` when the first key is `type`. Null reads as `None`.
#[derive(Clone, Copy)]
struct Object {
    keys: &'static [&'static str],
    tags: &'static [&'static str],
}

/// What an `Object` read: `kinds[i]` for `keys[i]` (the tag's slot stays
/// empty), `None` for a member not given.
#[derive(Clone, Copy)]
struct Fields {
    tag: Option<Tag>,
    kinds: [Option<Kind>; 4],
}

seed!(Object, deserialize_any);

impl<'de> Visitor<'de> for Object {
    type Value = Option<Fields>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut seen, mut f) = (
            0u32,
            Fields {
                tag: None,
                kinds: [None; 4],
            },
        );
        while let Some(i) = next_known(&mut map, self.keys, &mut seen)? {
            if i == 0 && self.keys[0] == "type" {
                f.tag = Some(map.next_value_seed(Tags(self.tags))?);
            } else {
                *f.kinds.get_mut(i).ok_or_else(unsure)? = Some(map.next_value_seed(ANY)?);
            }
        }
        Ok(Some(f))
    }
}

/// A `system` block: `type` text and a string `text`.
const TEXT_BLOCK: Object = Object {
    keys: &["type", "text"],
    tags: &["text"],
};

/// `metadata`: its `user_id` is null or a string.
const METADATA: Object = Object {
    keys: &["user_id"],
    tags: &[],
};

/// `output_config`: `effort` null or a string, `format` null or an object.
const OUTPUT_CONFIG: Object = Object {
    keys: &["effort", "format"],
    tags: &[],
};

const TOOL_CHOICE: Object = Object {
    keys: &["type", "name", "disable_parallel_tool_use"],
    tags: &["auto", "any", "none", "tool"],
};

/// `{type: auto|any|none}` or `{type: tool, name}`, with
/// `disable_parallel_tool_use` null or a boolean.
fn tool_choice_ok(f: Fields) -> bool {
    f.kinds[2].is_none_or(|k| k.null_or(Kind::Bool))
        && match f.tag {
            Some(Tag::Name(3)) => f.kinds[1] == Some(Kind::Str),
            Some(Tag::Name(_)) => true,
            _ => false,
        }
}

const THINKING: Object = Object {
    keys: &["type", "budget_tokens"],
    tags: &["enabled", "disabled", "adaptive"],
};

/// `{type: enabled, budget_tokens ≥ 1024}` or `{type: disabled|adaptive}`.
fn thinking_ok(f: Fields) -> bool {
    match f.tag {
        Some(Tag::Name(0)) => f.kinds[1].is_some_and(|k| k.int_at_least(1024)),
        Some(Tag::Name(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
