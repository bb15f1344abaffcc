//! An Anthropic message read in one pass, without a JSON tree. It gives
//! what the tree reader (`response::from_tree`) would, or `None` (an error
//! answer, a body that is not a message, a duplicate field): the tree reader
//! then decides, with its exact errors.

use super::response::{Block, Parts, USAGE_KEYS};
use crate::wire::scan::{next_known, otherwise_none, seed, unsure, StrOrNone, U64OrNone};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

pub(super) fn scan(body: &[u8]) -> Option<Parts> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parts = de.deserialize_map(Message).ok()?;
    de.end().ok()?;
    Some(parts)
}

const TOP: &[&str] = &["type", "id", "model", "stop_reason", "content", "usage"];

struct Message;

impl<'de> Visitor<'de> for Message {
    type Value = Parts;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts, A::Error> {
        let mut seen = 0u32;
        let mut parts = Parts {
            id: None,
            model: None,
            stop_reason: None,
            blocks: Vec::new(),
            usage: None,
        };
        let mut content = false;
        while let Some(i) = next_known(&mut map, TOP, &mut seen)? {
            match i {
                0 => {
                    // An error answer is the tree reader's.
                    if map.next_value_seed(StrOrNone)?.as_deref() == Some("error") {
                        return Err(unsure());
                    }
                }
                1 => parts.id = map.next_value_seed(StrOrNone)?,
                2 => parts.model = map.next_value_seed(StrOrNone)?,
                3 => parts.stop_reason = map.next_value_seed(StrOrNone)?,
                4 => {
                    parts.blocks = map.next_value_seed(Blocks)?;
                    content = true;
                }
                _ => parts.usage = map.next_value_seed(UsageSeed)?,
            }
        }
        match content {
            true => Ok(parts),
            false => Err(unsure()),
        }
    }
}

/// `content`: an array (anything else is the tree reader's error).
struct Blocks;

seed!(Blocks, deserialize_seq);

impl<'de> Visitor<'de> for Blocks {
    type Value = Vec<Block>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("content blocks")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut blocks = Vec::new();
        while let Some(b) = seq.next_element_seed(BlockSeed)? {
            blocks.push(b.unwrap_or_default());
        }
        Ok(blocks)
    }
}

const BLOCK: &[&str] = &["type", "text", "thinking", "id", "name", "input"];

/// One block: an object's fields, or `None` (no fields) for any other value.
struct BlockSeed;

seed!(BlockSeed, deserialize_any);

impl<'de> Visitor<'de> for BlockSeed {
    type Value = Option<Block>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content block")
    }
    otherwise_none!(only_map);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut seen, mut b) = (0u32, Block::default());
        while let Some(i) = next_known(&mut map, BLOCK, &mut seen)? {
            match i {
                0 => b.kind = map.next_value_seed(StrOrNone)?,
                1 => b.text = map.next_value_seed(StrOrNone)?,
                2 => b.thinking = map.next_value_seed(StrOrNone)?,
                3 => b.id = map.next_value_seed(StrOrNone)?,
                4 => b.name = map.next_value_seed(StrOrNone)?,
                // Tool input is re-serialized from its tree, as the tree
                // reader does.
                _ => b.input = Some(map.next_value::<Value>()?),
            }
        }
        Ok(Some(b))
    }
}

/// `usage`: its counts when it is an object, else none.
struct UsageSeed;

seed!(UsageSeed, deserialize_any);

impl<'de> Visitor<'de> for UsageSeed {
    type Value = Option<[Option<u64>; 4]>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("usage")
    }
    otherwise_none!(only_map);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut seen, mut counts) = (0u32, [None; 4]);
        while let Some(i) = next_known(&mut map, &USAGE_KEYS, &mut seen)? {
            counts[i] = map.next_value_seed(U64OrNone)?;
        }
        Ok(Some(counts))
    }
}

#[cfg(test)]
mod tests;
