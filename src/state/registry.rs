//! The keys the configuration in force uses, kept in shared data so that a
//! new configuration (a live reload, possibly by a new build of the filter)
//! drops the state of what it no longer has — a removed model's health and
//! routing state, a removed rule's buckets, a removed consumer's quota —
//! and keeps everything else as it was.
//!
//! Proxy-wasm cannot delete a key: a dropped key's value is emptied, which
//! every state reads as fresh (see the codec), so a key that comes back
//! later starts afresh and the memory its value held is released.

use super::{kind, Contention};
use crate::host::{SharedStore, StoreError};
use std::collections::BTreeSet;

const KEY: &str = "llmgw/registry";
const VERSION: u8 = 1;
const ATTEMPTS: u32 = 16;

fn encode(keys: &BTreeSet<String>) -> Vec<u8> {
    let mut out = vec![kind::REGISTRY, VERSION];
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(k.as_bytes());
    }
    out
}

/// The registered keys; an absent or unreadable registry is empty (nothing
/// is dropped: a first configuration, or one after a build that had none).
fn decode(bytes: &[u8]) -> BTreeSet<String> {
    match bytes {
        [kind::REGISTRY, VERSION, rest @ ..] if !rest.is_empty() => String::from_utf8_lossy(rest)
            .split('\n')
            .map(String::from)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Registers `keys` as the configuration's and empties every key the
/// previous one registered that is not among them. Returns how many keys
/// were dropped. Every worker configures with the same keys, so whichever
/// comes first drops and the others find nothing left to do.
pub fn replace(store: &dyn SharedStore, keys: &BTreeSet<String>) -> Result<usize, Contention> {
    let new = encode(keys);
    for _ in 0..ATTEMPTS {
        let (old, cas) = match store.get(KEY) {
            Some((bytes, cas)) => (decode(&bytes), cas),
            None => (BTreeSet::new(), 0),
        };
        match store.set(KEY, &new, cas) {
            Ok(()) => {}
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Failed) => return Err(Contention::StoreFailed),
        }
        let mut dropped = 0;
        for key in old.difference(keys) {
            // Only keys that hold something: setting a missing key would
            // create it.
            if matches!(store.get(key), Some((v, _)) if !v.is_empty()) {
                // Unconditional: whatever was written last goes.
                match store.set(key, &[], 0) {
                    Ok(()) => dropped += 1,
                    Err(StoreError::CasMismatch) => {}
                    Err(StoreError::Failed) => return Err(Contention::StoreFailed),
                }
            }
        }
        return Ok(dropped);
    }
    Err(Contention::RetriesExhausted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemStore;

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn drops_what_the_new_configuration_lacks_and_keeps_the_rest() {
        let store = MemStore::default();
        assert_eq!(replace(&store, &set(&["a", "b", "c"])).unwrap(), 0);
        for k in ["a", "b", "c"] {
            store.put_raw(k, b"state");
        }
        assert_eq!(replace(&store, &set(&["a", "c", "d"])).unwrap(), 1);
        assert_eq!(store.get("a").unwrap().0, b"state");
        assert_eq!(store.get("b").unwrap().0, b"");
        assert_eq!(store.get("c").unwrap().0, b"state");
        // A registered key never written is not created.
        assert!(store.get("d").is_none());
        assert_eq!(replace(&store, &set(&["c"])).unwrap(), 1);
        assert!(store.get("d").is_none());
        assert_eq!(store.get("a").unwrap().0, b"");
        // The same configuration again drops nothing.
        assert_eq!(replace(&store, &set(&["c"])).unwrap(), 0);
        assert_eq!(store.get("c").unwrap().0, b"state");
    }

    #[test]
    fn an_unreadable_registry_drops_nothing() {
        let store = MemStore::default();
        store.put_raw(KEY, b"\x00garbage");
        store.put_raw("a", b"state");
        assert_eq!(replace(&store, &set(&["b"])).unwrap(), 0);
        assert_eq!(store.get("a").unwrap().0, b"state");
        assert_eq!(decode(&store.get(KEY).unwrap().0), set(&["b"]));
    }

    #[test]
    fn a_concurrent_registration_is_read_again() {
        let store = MemStore::default();
        replace(&store, &set(&["a", "b"])).unwrap();
        store.put_raw("a", b"state");
        store.put_raw("b", b"state");
        // Another worker registers the same new configuration between our
        // read and our write: we read again and find nothing to drop.
        store.interfere(|s| {
            replace(s, &set(&["b"])).unwrap();
        });
        assert_eq!(replace(&store, &set(&["b"])).unwrap(), 0);
        assert_eq!(store.get("a").unwrap().0, b"");
        assert_eq!(store.get("b").unwrap().0, b"state");
    }

    #[test]
    fn the_layout_is_pinned() {
        assert_eq!(encode(&set(&["x/1", "y"])), b"\xE1\x01x/1\ny");
        assert_eq!(decode(b"\xE1\x01x/1\ny"), set(&["x/1", "y"]));
        assert!(decode(b"\xE1\x01").is_empty());
    }
}
