//! Pieces for reading JSON in one serde pass without building a tree:
//! known keys by index, duplicates refused, and values skipped but still
//! parsed in full (strings unescaped, numbers converted), so whatever such a
//! pass accepts, a full parse into `serde_json::Value` accepts too.
//! (`serde::de::IgnoredAny` skips invalid escapes and out-of-range numbers
//! that `Value` refuses.)

use serde::de::{Error, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// `DeserializeSeed` for a visitor type: the value is read with
/// `Deserializer::$method` and visited by the type itself.
macro_rules! seed {
    ($t:ty, $method:ident) => {
        impl<'de> serde::de::DeserializeSeed<'de> for $t {
            type Value = <$t as serde::de::Visitor<'de>>::Value;
            fn deserialize<D: serde::de::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                d.$method(self)
            }
        }
    };
}
pub(crate) use seed;

/// Gives up the one-pass read: the caller falls back to the full path.
pub(crate) fn unsure<E: Error>() -> E {
    E::custom("")
}

/// The index of a map key in a table of known names (`None`: another key).
pub(crate) struct Key(pub &'static [&'static str]);

seed!(Key, deserialize_str);

impl<'de> Visitor<'de> for Key {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|k| *k == v))
    }
}

/// Marks known key `i` seen; a second one is left to the full validator
/// (where the last one wins).
pub(crate) fn first<E: Error>(seen: &mut u32, i: usize) -> Result<(), E> {
    let bit = 1u32 << i;
    if *seen & bit != 0 {
        return Err(unsure());
    }
    *seen |= bit;
    Ok(())
}

/// The next known key of an object (its index in `keys`), values of other
/// keys skipped; a known key seen twice gives up (see [`first`]).
pub(crate) fn next_known<'de, A: MapAccess<'de>>(
    map: &mut A,
    keys: &'static [&'static str],
    seen: &mut u32,
) -> Result<Option<usize>, A::Error> {
    while let Some(key) = map.next_key_seed(Key(keys))? {
        match key {
            Some(i) => {
                first(seen, i)?;
                return Ok(Some(i));
            }
            None => map.next_value_seed(Skip)?,
        }
    }
    Ok(None)
}

/// Any JSON value, parsed in full and dropped.
pub(crate) struct Skip;

seed!(Skip, deserialize_any);

impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// The visits of a lenient reader that give `None`: every kind of value but
/// strings and unsigned integers (each reader decides those), containers
/// skipped; `(except_map)` leaves objects to the reader, `(only_map)`
/// also gives `None` for strings and unsigned integers.
macro_rules! otherwise_none {
    () => {
        otherwise_none!(except_map);
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            serde::de::Visitor::visit_map($crate::wire::scan::Skip, map).map(|()| None)
        }
    };
    (only_map) => {
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        otherwise_none!(except_map);
    };
    (except_map) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            serde::de::Visitor::visit_seq($crate::wire::scan::Skip, seq).map(|()| None)
        }
    };
}
pub(crate) use otherwise_none;

/// A string, or `None` for any other value (what `Value::as_str` gives).
pub(crate) struct StrOrNone;

seed!(StrOrNone, deserialize_any);

impl<'de> Visitor<'de> for StrOrNone {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_u64<E: Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    otherwise_none!();
}

/// An unsigned integer, or `None` for any other value (what
/// `Value::as_u64` gives).
pub(crate) struct U64OrNone;

seed!(U64OrNone, deserialize_any);

impl<'de> Visitor<'de> for U64OrNone {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    otherwise_none!();
}
