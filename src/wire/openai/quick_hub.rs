//! A validated Chat Completions body → hub `ChatRequest` in one typed pass,
//! without the JSON tree `to_hub::chat_request` reads.
//!
//! It covers the common shapes — text content, function tools and tool
//! calls, the modelled scalars, other fields kept as `extra` — and answers
//! `None` ("take the tree path") for anything else: images and files, a
//! response format, a duplicate key, a value of a type the tree path would
//! ignore or refuse. So whatever it returns is what `to_hub::chat_request`
//! returns for the same bytes (tested field by field, and fuzzed).
//! It runs only on bytes the quick check or the validator accepted.

use super::to_hub::{hub_message, role, MAPPED};
use crate::wire::hub::{ChatRequest, Message, Part, Role, ToolCall, ToolChoice, ToolDef};
use crate::wire::scan::{first, seed, unsure, Skip};
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// The hub request of a validated body, `None` when the tree path decides.
pub fn chat_request(bytes: &[u8], upstream_model: &str) -> Option<ChatRequest> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut req = de.deserialize_map(Body).ok()?;
    de.end().ok()?;
    req.model = upstream_model.to_string();
    Some(req)
}

struct Body;

impl<'de> Visitor<'de> for Body {
    type Value = ChatRequest;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChatRequest, A::Error> {
        let mut req = ChatRequest::default();
        let (mut seen, mut max_completion_tokens, mut include_usage) = (0u32, None, false);
        // Other keys whose value was null: not in `extra`, but a second one
        // is a duplicate all the same.
        let mut null_extras: Vec<String> = Vec::new();
        while let Some(key) = map.next_key_seed(TopKeys)? {
            let i = match key {
                TopKey::Mapped(i) => i,
                TopKey::Other(key) => {
                    let value: Value = map.next_value()?;
                    if req.extra.contains_key(&key) || null_extras.contains(&key) {
                        return Err(unsure());
                    }
                    if value.is_null() {
                        null_extras.push(key);
                    } else {
                        req.extra.insert(key, value);
                    }
                    continue;
                }
            };
            first(&mut seen, i)?;
            match MAPPED[i] {
                "model" => map.next_value_seed(Skip)?,
                "messages" => req.messages = map.next_value_seed(Messages)?,
                "tools" => {
                    let tools: Option<Vec<Tool>> = map.next_value()?;
                    for t in tools.unwrap_or_default() {
                        req.tools.push(t.into_hub()?);
                    }
                }
                "tool_choice" => req.tool_choice = map.next_value_seed(Choice)?,
                "stop" => req.stop = map.next_value_seed(Stop)?,
                "stream_options" => {
                    let options: Option<StreamOptions> = map.next_value()?;
                    include_usage = options.and_then(|o| o.include_usage).unwrap_or(false);
                }
                "response_format" => map.next_value_seed(NullOnly)?,
                // The scalars, read through one visitor (one copy of the
                // parsing code in the .wasm, not one per type).
                name => {
                    let v = map.next_value_seed(Scalar::Null)?;
                    match name {
                        "parallel_tool_calls" => req.parallel_tool_calls = v.flag()?,
                        "max_tokens" => req.max_tokens = v.uint()?,
                        "max_completion_tokens" => max_completion_tokens = v.uint()?,
                        "temperature" => req.temperature = v.number()?,
                        "top_p" => req.top_p = v.number()?,
                        "n" => req.n = v.uint()?,
                        "seed" => req.seed = v.int()?,
                        "presence_penalty" => req.presence_penalty = v.number()?,
                        "frequency_penalty" => req.frequency_penalty = v.number()?,
                        "stream" => req.stream = v.flag()?.unwrap_or(false),
                        "reasoning_effort" => req.reasoning_effort = v.text()?,
                        "user" => req.user = v.text()?,
                        // Anything added to MAPPED later.
                        _ => v.null()?,
                    }
                }
            }
        }
        req.max_tokens = max_completion_tokens.or(req.max_tokens);
        req.include_usage = req.stream && include_usage;
        Ok(req)
    }
}

/// A top-level key: its index in `MAPPED`, or another key's name.
enum TopKey {
    Mapped(usize),
    Other(String),
}

struct TopKeys;

seed!(TopKeys, deserialize_str);

impl<'de> Visitor<'de> for TopKeys {
    type Value = TopKey;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<TopKey, E> {
        Ok(match MAPPED.iter().position(|k| *k == v) {
            Some(i) => TopKey::Mapped(i),
            None => TopKey::Other(v.to_owned()),
        })
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// A scalar value, converted per field as the tree path's `Value::as_*`
/// would, or given up on where that reads leniently or refuses.
enum Scalar {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
}

seed!(Scalar, deserialize_any);

impl<'de> Visitor<'de> for Scalar {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar")
    }
    fn visit_unit<E: Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E: Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::I64(v))
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
}

impl Scalar {
    fn null<E: Error>(self) -> Result<(), E> {
        match self {
            Self::Null => Ok(()),
            _ => Err(unsure()),
        }
    }
    fn flag<E: Error>(self) -> Result<Option<bool>, E> {
        match self {
            Self::Null => Ok(None),
            Self::Bool(b) => Ok(Some(b)),
            _ => Err(unsure()),
        }
    }
    /// `as_f64`: any number.
    fn number<E: Error>(self) -> Result<Option<f64>, E> {
        match self {
            Self::Null => Ok(None),
            Self::U64(n) => Ok(Some(n as f64)),
            Self::I64(n) => Ok(Some(n as f64)),
            Self::F64(n) => Ok(Some(n)),
            _ => Err(unsure()),
        }
    }
    /// An integer below 2^32 (else the tree path's error).
    fn uint<E: Error>(self) -> Result<Option<u32>, E> {
        match self {
            Self::Null => Ok(None),
            Self::U64(n) => u32::try_from(n).map(Some).map_err(|_| unsure()),
            _ => Err(unsure()),
        }
    }
    /// `as_i64`.
    fn int<E: Error>(self) -> Result<Option<i64>, E> {
        match self {
            Self::Null => Ok(None),
            Self::U64(n) => i64::try_from(n).map(Some).map_err(|_| unsure()),
            Self::I64(n) => Ok(Some(n)),
            _ => Err(unsure()),
        }
    }
    fn text<E: Error>(self) -> Result<Option<String>, E> {
        match self {
            Self::Null => Ok(None),
            Self::Str(s) => Ok(Some(s)),
            _ => Err(unsure()),
        }
    }
}

/// A value this pass accepts only as `null` (absent to the tree path).
struct NullOnly;

seed!(NullOnly, deserialize_any);

impl<'de> Visitor<'de> for NullOnly {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null")
    }
    fn visit_unit<E: Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// `stop`: a string, an array (its strings kept), or null.
struct Stop;

seed!(Stop, deserialize_any);

impl<'de> Visitor<'de> for Stop {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("stop sequences")
    }
    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![v.to_owned()])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element_seed(crate::wire::scan::StrOrNone)? {
            out.extend(s);
        }
        Ok(out)
    }
}

/// `tool_choice`: a mode, `{"function": {"name": …}}`, or null.
struct Choice;

seed!(Choice, deserialize_any);

#[derive(Deserialize)]
struct NamedChoice {
    function: NamedFunction,
}

#[derive(Deserialize)]
struct NamedFunction {
    name: String,
}

impl<'de> Visitor<'de> for Choice {
    type Value = Option<ToolChoice>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tool choice")
    }
    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        match v {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            _ => Err(unsure()),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let named = NamedChoice::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Some(ToolChoice::Function(named.function.name)))
    }
}

#[derive(Deserialize)]
struct Tool {
    #[serde(rename = "type")]
    kind: String,
    function: ToolFunction,
}

#[derive(Deserialize)]
struct ToolFunction {
    name: String,
    description: Option<String>,
    parameters: Option<Value>,
    strict: Option<bool>,
}

impl Tool {
    fn into_hub<E: Error>(self) -> Result<ToolDef, E> {
        let f = self.function;
        if self.kind != "function" || f.name.is_empty() {
            return Err(unsure());
        }
        Ok(ToolDef {
            name: f.name,
            description: f.description,
            parameters: f.parameters,
            strict: f.strict,
        })
    }
}

/// `messages`: an array of messages.
struct Messages;

seed!(Messages, deserialize_seq);

impl<'de> Visitor<'de> for Messages {
    type Value = Vec<Message>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("messages")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(m) = seq.next_element::<WireMessage>()? {
            out.push(m.into_hub());
        }
        Ok(out)
    }
}

#[derive(Deserialize)]
struct WireMessage {
    role: RoleName,
    #[serde(default)]
    content: Content,
    name: Option<String>,
    tool_call_id: Option<String>,
    reasoning_content: Option<String>,
    tool_calls: Option<Vec<WireCall>>,
}

#[derive(Deserialize)]
struct WireCall {
    id: String,
    function: CallFunction,
}

#[derive(Deserialize)]
struct CallFunction {
    name: String,
    #[serde(default)]
    arguments: Arguments,
}

impl WireMessage {
    fn into_hub(self) -> Message {
        let calls = self.tool_calls.unwrap_or_default().into_iter();
        hub_message(
            self.role.0,
            self.content.0,
            self.name,
            self.tool_call_id,
            self.reasoning_content,
            calls
                .map(|c| ToolCall {
                    id: c.id,
                    name: c.function.name,
                    arguments: c.function.arguments.0,
                })
                .collect(),
        )
    }
}

/// A message's role, as the tree path maps it (unknown names are tools').
struct RoleName(Role);

impl<'de> Deserialize<'de> for RoleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(RoleVisitor)
    }
}

struct RoleVisitor;

impl<'de> Visitor<'de> for RoleVisitor {
    type Value = RoleName;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a role")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<RoleName, E> {
        Ok(RoleName(role(v)))
    }
}

/// A message's content: a string, text parts, or null.
#[derive(Default)]
struct Content(Vec<Part>);

#[derive(Deserialize)]
struct TextPart {
    #[serde(rename = "type")]
    kind: String,
    text: String,
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = Content;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("message content")
    }
    fn visit_unit<E: Error>(self) -> Result<Content, E> {
        Ok(Content::default())
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Content, E> {
        Ok(Content(vec![Part::Text(v.to_owned())]))
    }
    fn visit_string<E: Error>(self, v: String) -> Result<Content, E> {
        Ok(Content(vec![Part::Text(v)]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
        let mut parts = Vec::new();
        while let Some(p) = seq.next_element::<TextPart>()? {
            if p.kind != "text" {
                return Err(unsure());
            }
            parts.push(Part::Text(p.text));
        }
        Ok(Content(parts))
    }
}

/// A tool call's `arguments`: a string, or `{}` when absent or null.
struct Arguments(String);

impl Default for Arguments {
    fn default() -> Self {
        Self("{}".into())
    }
}

impl<'de> Deserialize<'de> for Arguments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(d).map(|s| s.map_or_else(Self::default, Self))
    }
}

#[cfg(test)]
mod tests;
