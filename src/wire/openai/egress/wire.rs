//! Typed, borrowing views of what OpenAI-compatible providers send back:
//! only the members this edge reads are parsed (strings borrowed from the
//! body where they need no unescaping); every other member is skipped.

use crate::wire::hub::{FinishReason, Usage};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A member read as `T` when it can be, else treated as absent: for
/// bookkeeping (usage) that must never fail an otherwise good answer.
pub(super) fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

/// A count: an integer, or a non-negative float rounded; else absent.
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(|v| {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.round() as u64)
        })
    }))
}

/// `usage` of a completion, a chunk or an embeddings list.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default, deserialize_with = "count")]
    prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    completion_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    total_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    prompt_tokens_details: Option<TokenDetails>,
    #[serde(default, deserialize_with = "lenient")]
    completion_tokens_details: Option<TokenDetails>,
    /// DeepSeek reports cache hits on its own.
    #[serde(default, deserialize_with = "count")]
    prompt_cache_hit_tokens: Option<u64>,
    /// Moonshot reports cache hits at the top of `usage`.
    #[serde(default, deserialize_with = "count")]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct TokenDetails {
    #[serde(default, deserialize_with = "count")]
    cached_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// Hub usage; None when the provider gave no count at all.
    pub(super) fn to_usage(&self) -> Option<Usage> {
        if self.prompt_tokens.is_none()
            && self.completion_tokens.is_none()
            && self.total_tokens.is_none()
        {
            return None;
        }
        let prompt = self.prompt_tokens.unwrap_or(0);
        let completion = self.completion_tokens.unwrap_or(0);
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: self
                .total_tokens
                .unwrap_or_else(|| prompt.saturating_add(completion)),
            cached_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .or(self.prompt_cache_hit_tokens)
                .or(self.cached_tokens),
            cache_creation_tokens: None,
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
        })
    }
}

/// A message (`choices[].message`) or a stream delta (`choices[].delta`):
/// the same members either way.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireMessage<'a> {
    #[serde(borrow, default)]
    pub content: Option<Content<'a>>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// OpenRouter, vLLM, Groq and Ollama name it so.
    #[serde(borrow, default)]
    pub reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub tool_calls: Option<Vec<WireToolCall<'a>>>,
    /// The legacy single function call.
    #[serde(borrow, default)]
    pub function_call: Option<WireFunction<'a>>,
}

impl<'a> WireMessage<'a> {
    /// `reasoning_content`, else `reasoning`; empty counts as absent.
    pub fn reasoning_text(&self) -> Option<&str> {
        non_empty(&self.reasoning_content).or_else(|| non_empty(&self.reasoning))
    }
}

/// A tool call, whole (`message.tool_calls[]`) or in pieces
/// (`delta.tool_calls[]`).
#[derive(Debug, Deserialize)]
pub(super) struct WireToolCall<'a> {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub function: Option<WireFunction<'a>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireFunction<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub arguments: Option<Arguments<'a>>,
}

/// The string's text when it is not empty.
pub(super) fn non_empty<'s>(s: &'s Option<Cow<'_, str>>) -> Option<&'s str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Tool call arguments: JSON text, or (from a few providers) the JSON
/// value itself, kept as its text.
#[derive(Debug)]
pub(super) struct Arguments<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Arguments<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ArgumentsVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ArgumentsVisitor<'a> {
            type Value = Arguments<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("tool call arguments")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Arguments(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Arguments(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Arguments(Cow::Owned(s)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let v = Value::deserialize(MapAccessDeserializer::new(map))?;
                Ok(Arguments(Cow::Owned(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let v = Value::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(Arguments(Cow::Owned(v.to_string())))
            }
        }

        d.deserialize_any(ArgumentsVisitor(PhantomData))
    }
}

/// Message content: a string, or (Mistral's reasoning models) an array of
/// typed parts.
#[derive(Debug)]
pub(super) enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<ContentPart<'a>>),
}

#[derive(Debug, Deserialize)]
pub(super) struct ContentPart<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    /// `thinking` parts hold text parts.
    #[serde(borrow, default)]
    thinking: Option<Vec<ContentPart<'a>>>,
}

/// Which hub channel a piece of content text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Channel {
    Text,
    Reasoning,
}

impl Content<'_> {
    /// Calls `f` for each non-empty piece of text, in order. Err names a
    /// part type the hub cannot carry.
    pub fn for_each_piece(&self, mut f: impl FnMut(Channel, &str)) -> Result<(), String> {
        match self {
            Self::Text(t) => {
                if !t.is_empty() {
                    f(Channel::Text, t);
                }
                Ok(())
            }
            Self::Parts(parts) => parts
                .iter()
                .try_for_each(|p| p.for_each_piece(Channel::Text, &mut f)),
        }
    }
}

impl ContentPart<'_> {
    fn for_each_piece(
        &self,
        channel: Channel,
        f: &mut impl FnMut(Channel, &str),
    ) -> Result<(), String> {
        match self.kind.as_ref() {
            "text" => {
                if let Some(t) = non_empty(&self.text) {
                    f(channel, t);
                }
                Ok(())
            }
            "thinking" => self
                .thinking
                .iter()
                .flatten()
                .try_for_each(|p| p.for_each_piece(Channel::Reasoning, f)),
            // Citation ids into tool results: metadata, not content.
            "reference" => Ok(()),
            other => Err(other.to_string()),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ContentVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ContentVisitor<'a> {
            type Value = Content<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::new();
                while let Some(p) = seq.next_element::<ContentPart<'a>>()? {
                    parts.push(p);
                }
                Ok(Content::Parts(parts))
            }
        }

        d.deserialize_any(ContentVisitor(PhantomData))
    }
}

/// Hub finish reason for a provider's `finish_reason`. `called_tools` and
/// `refused` say what the choice did (see the module docs).
pub(super) fn finish_reason(reason: &str, called_tools: bool, refused: bool) -> FinishReason {
    match reason {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        // stop, and anything new.
        _ => derived_finish(called_tools, refused),
    }
}

/// The finish of a choice that ended with `stop` or without a reason.
pub(super) fn derived_finish(called_tools: bool, refused: bool) -> FinishReason {
    if called_tools {
        FinishReason::ToolCalls
    } else if refused {
        FinishReason::ContentFilter
    } else {
        FinishReason::Stop
    }
}
