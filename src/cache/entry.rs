//! Where answers live: `entries` shared-data keys, all created at configure
//! time, and the answer for a digest in the one slot the digest picks
//! (direct-mapped, like a CPU cache). The number of keys is fixed by the
//! configuration whatever clients send; an answer whose slot holds another
//! live answer replaces it (an eviction).
//!
//! The bytes all entries hold are counted in one more key, updated by
//! compare-and-set. A store that would pass `max_bytes` first frees room
//! by sampling a few other slots and emptying the expired or, failing
//! that, the oldest of them (Redis's sampled eviction); if that is not
//! enough the answer is not stored. Lookups read one key.

use super::config::Store;
use super::key::Digest32;
use crate::host::{SharedStore, StoreError};
use crate::state::{cas_update, keys, kind, Codec, Contention, Reader, Step, Writer, CREATE_CAS};

const VERSION: u8 = 1;
/// Kind, version, digest, stored at, expires.
const HEADER_BYTES: usize = 2 + 32 + 8 + 8;
/// Slots looked at to make room.
const SAMPLES: u32 = 8;
const MAX_RETRIES: u32 = 16;

/// One stored answer (its body is an OpenAI chat completion).
#[derive(Debug, PartialEq)]
struct Entry<'a> {
    digest: Digest32,
    stored_at: u64,
    expires: u64,
    body: &'a [u8],
}

fn encode(e: &Entry) -> Vec<u8> {
    Writer::new(kind::CACHE_ENTRY, VERSION, HEADER_BYTES + e.body.len())
        .bytes(&e.digest)
        .u64(e.stored_at)
        .u64(e.expires)
        .bytes(e.body)
        .finish()
}

fn decode(bytes: &[u8]) -> Option<Entry<'_>> {
    let mut r = Reader::open(bytes, kind::CACHE_ENTRY, VERSION)?;
    let digest = r.array::<32>()?;
    let stored_at = r.u64()?;
    let expires = r.u64()?;
    Some(Entry {
        digest,
        stored_at,
        expires,
        body: r.rest(),
    })
}

/// The bytes in use.
#[derive(Debug, Default, PartialEq)]
struct Bytes(u64);

impl Codec for Bytes {
    fn encode(&self) -> Vec<u8> {
        Writer::new(kind::CACHE_BYTES, VERSION, 10)
            .u64(self.0)
            .finish()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes, kind::CACHE_BYTES, VERSION, 10)?;
        r.u64().map(Bytes)
    }
}

/// The slot of `digest` among `entries` (multiply-shift on its first 8
/// bytes, which SHA-256 spreads evenly).
fn slot(digest: &Digest32, entries: u32) -> u32 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let wide = u128::from(u64::from_le_bytes(head)) * u128::from(entries.max(1));
    u32::try_from(wide >> 64).unwrap_or(0)
}

/// Creates every entry key (empty) and the byte count, so request-time
/// writes always compare-and-set an existing key; returns how many keys.
pub fn precreate(store: &dyn SharedStore, cfg: &Store) -> Result<usize, Contention> {
    for key in keys::cache_entries(cfg.entries) {
        if store.get(&key).is_none() {
            match store.set(&key, &[], CREATE_CAS) {
                Ok(()) | Err(StoreError::CasMismatch) => {}
                Err(StoreError::Failed) => return Err(Contention::StoreFailed),
            }
        }
    }
    // Recounted: a configuration with fewer entries dropped the rest.
    let held: u64 = keys::cache_entries(cfg.entries)
        .filter_map(|k| store.get(&k))
        .map(|(v, _)| v.len() as u64)
        .sum();
    cas_update(
        store,
        keys::CACHE_BYTES,
        MAX_RETRIES,
        Bytes::default,
        |_| Step::Write(Bytes(held), ()),
    )?;
    Ok(cfg.entries as usize + 1)
}

/// Every key the store can use (for the registry).
pub fn state_keys(cfg: &Store) -> impl Iterator<Item = String> {
    keys::cache_entries(cfg.entries).chain(std::iter::once(keys::CACHE_BYTES.to_string()))
}

/// A cached answer for `digest`, unless absent or expired at `now_s`.
pub fn lookup(
    store: &dyn SharedStore,
    cfg: &Store,
    digest: &Digest32,
    now_s: u64,
) -> Option<Vec<u8>> {
    let (value, _) = store.get(&keys::cache_entry(slot(digest, cfg.entries)))?;
    let e = decode(&value)?;
    (e.digest == *digest && now_s < e.expires).then(|| e.body.to_vec())
}

/// What became of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored; `evicted` live answers were removed to make room, and the
    /// entries now hold `bytes_in_use`.
    Yes { evicted: u32, bytes_in_use: u64 },
    /// Larger than `max_entry_bytes`.
    TooLarge,
    /// No room could be made within `max_bytes`.
    Full,
    /// Another worker wrote the slot meanwhile (its answer stays).
    Raced,
}

/// Stores `body` for `digest` until `now_s + ttl_s`.
pub fn insert(
    store: &dyn SharedStore,
    cfg: &Store,
    digest: &Digest32,
    body: &[u8],
    now_s: u64,
    ttl_s: u64,
) -> Stored {
    if body.len() > cfg.max_entry_bytes {
        return Stored::TooLarge;
    }
    let value = encode(&Entry {
        digest: *digest,
        stored_at: now_s,
        expires: now_s.saturating_add(ttl_s),
        body,
    });
    let home = slot(digest, cfg.entries);
    let key = keys::cache_entry(home);
    let (old, cas) = store.get(&key).unwrap_or((Vec::new(), CREATE_CAS));
    let mut evicted =
        u32::from(decode(&old).is_some_and(|e| e.digest != *digest && now_s < e.expires));
    let grow = value.len() as u64;
    let shrink = old.len() as u64;
    let in_use = read_bytes(store);
    let mut freed = 0u64;
    if in_use.saturating_add(grow).saturating_sub(shrink) > cfg.max_bytes {
        let need = in_use.saturating_add(grow).saturating_sub(shrink) - cfg.max_bytes;
        let (f, n) = make_room(store, cfg, digest, home, need, now_s);
        freed = f;
        evicted += n;
        if freed < need {
            add_bytes(store, 0, freed);
            return Stored::Full;
        }
    }
    match store.set(&key, &value, cas) {
        Ok(()) => {}
        Err(_) => {
            add_bytes(store, 0, freed);
            return Stored::Raced;
        }
    }
    let bytes_in_use = add_bytes(store, grow, shrink.saturating_add(freed));
    Stored::Yes {
        evicted,
        bytes_in_use,
    }
}

fn read_bytes(store: &dyn SharedStore) -> u64 {
    store
        .get(keys::CACHE_BYTES)
        .and_then(|(v, _)| Bytes::decode(&v))
        .map_or(0, |b| b.0)
}

/// Adds `grow` and takes `shrink` from the count; returns the new count
/// (0 when the count could not be updated).
fn add_bytes(store: &dyn SharedStore, grow: u64, shrink: u64) -> u64 {
    if grow == 0 && shrink == 0 {
        return read_bytes(store);
    }
    cas_update(store, keys::CACHE_BYTES, MAX_RETRIES, Bytes::default, |b| {
        let n = b.0.saturating_add(grow).saturating_sub(shrink);
        Step::Write(Bytes(n), n)
    })
    .unwrap_or(0)
}

/// Empties sampled slots other than `home` — expired ones first, then the
/// oldest — until `need` bytes are freed or the samples run out. Returns
/// the bytes freed and how many live answers went.
fn make_room(
    store: &dyn SharedStore,
    cfg: &Store,
    digest: &Digest32,
    home: u32,
    need: u64,
    now_s: u64,
) -> (u64, u32) {
    let mut candidates: Vec<(bool, u64, String)> = Vec::new();
    // Probe positions from the digest's other bytes: spread, and the same
    // on every worker.
    for i in 0..SAMPLES {
        let at = 8 + 2 * i as usize;
        let probe = u32::from(u16::from_le_bytes([digest[at], digest[at + 1]]));
        let n = (home + 1 + probe) % cfg.entries.max(1);
        if n == home {
            continue;
        }
        let key = keys::cache_entry(n);
        if let Some((v, _)) = store.get(&key) {
            if let Some(e) = decode(&v) {
                candidates.push((now_s < e.expires, e.stored_at, key));
            }
        }
    }
    let (mut freed, mut evicted) = (0u64, 0u32);
    // Expired (live = false) before live, then oldest first: at most
    // SAMPLES candidates, picked by a linear scan each time.
    while freed < need {
        let Some(at) = (0..candidates.len()).min_by_key(|&i| (candidates[i].0, candidates[i].1))
        else {
            break;
        };
        let (live, _, key) = candidates.swap_remove(at);
        let Some((v, cas)) = store.get(&key) else {
            continue;
        };
        if v.is_empty() || store.set(&key, &[], cas).is_err() {
            continue;
        }
        freed += v.len() as u64;
        evicted += u32::from(live);
    }
    (freed, evicted)
}
