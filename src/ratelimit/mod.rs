//! Rate-limit algorithms over proxy-wasm shared data.
//!
//! Envoy runs one Wasm VM per worker thread; the only state the workers share
//! is the process-wide key/value store behind [`SharedStore`]. Every limiter
//! here keeps its whole state in one small fixed-size value under one key and
//! changes it with an optimistic read → compute → compare-and-set loop, so
//! concurrent workers never lose each other's updates: a write based on a
//! stale read fails with `CasMismatch` and is recomputed from a fresh read.
//!
//! * [`bucket`]: token buckets (requests or LLM tokens per unit of time),
//!   with reconciliation debts.
//! * [`quota`]: per-consumer budgets over UTC calendar days or months.
//! * [`slots`]: a bounded key space for limits keyed by client-controlled
//!   values (IP, header), because shared-data keys never expire.
//! * [`adaptive`]: an AIMD concurrency limit per upstream target.
//!
//! # Key lifecycle
//!
//! Proxy-wasm inserts a missing key whatever CAS token the writer passes, so
//! "create if absent" cannot be made atomic by the token alone. The callers
//! therefore pre-create every key at configure time with the modules'
//! `ensure` (no traffic flows yet), and request-time updates always CAS an
//! existing key. If a key is nevertheless missing at request time it is first
//! created (with [`CREATE_CAS`], see there for the tiny race this leaves) and
//! then updated by an ordinary CAS as a second step.
//!
//! Everything takes the current time as `now_ns` (Unix nanoseconds) instead
//! of reading a clock, so results are deterministic and testable.

use crate::host::{SharedStore, StoreError};

pub mod adaptive;
pub mod bucket;
mod codec;
/// The encoding every shared-data state implements (limiters, routing
/// strategies, passive health), so all of them go through [`cas_update`].
pub(crate) use codec::{Codec, Reader, Writer};
pub mod quota;
pub mod slots;

#[cfg(test)]
mod tests;

pub use adaptive::{AdaptiveSpec, AdaptiveStatus, Outcome};
pub use bucket::{Admission, BucketSpec};
pub use quota::{Period, QuotaOutcome};
pub use slots::{all_slot_keys, slot_key};

/// Why a shared-data update could not be applied. Callers choose per rule
/// whether to fail open (admit) or closed (refuse) on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contention {
    /// Every attempt lost a CAS race (`max_retries + 1` attempts): other
    /// workers kept updating the key between our read and our write.
    RetriesExhausted,
    /// The host refused a write outright (`StoreError::Failed`), or a key we
    /// had just created could not be read back.
    StoreFailed,
}

/// CAS token used to create a key that was read as absent.
///
/// Proxy-wasm inserts a missing key whatever token is passed, but rejects a
/// non-zero token that differs from an existing key's. Tokens come from one
/// process-wide counter starting at 1, so if another worker created the key
/// between our read and our write, our create fails with `CasMismatch`
/// (instead of overwriting its already-updated value, as token 0 would) —
/// unless that key's current token happens to be exactly this value, which
/// needs the counter to have wrapped to it at that write: a ~1 in 2³² chance
/// per creation race, itself only possible when a key was not pre-created.
pub const CREATE_CAS: u32 = u32::MAX;

/// What an update step decided after looking at the current state.
pub(crate) enum Step<S, T> {
    /// Write the new state (CAS against the value read), then return the
    /// result.
    Write(S, T),
    /// Nothing to store (refusal, no-op): return the result without writing,
    /// so refused requests add no write contention.
    Keep(T),
}

/// Creates `key` holding `fresh` if it is absent, and repairs a value that
/// does not decode as `S`. An existing valid state is left alone, so
/// reconfiguring never resets counters.
pub(crate) fn ensure_state<St, S>(store: &St, key: &str, fresh: S) -> Result<(), Contention>
where
    St: SharedStore + ?Sized,
    S: codec::Codec,
{
    let result = match store.get(key) {
        None => store.set(key, &fresh.encode(), CREATE_CAS),
        Some((bytes, cas)) => {
            if S::decode(&bytes).is_some() {
                return Ok(());
            }
            store.set(key, &fresh.encode(), cas)
        }
    };
    match result {
        // A mismatch means another worker created or repaired it first.
        Ok(()) | Err(StoreError::CasMismatch) => Ok(()),
        Err(StoreError::Failed) => Err(Contention::StoreFailed),
    }
}

/// Reads the state under `key` (`None` when absent or undecodable).
pub(crate) fn read_state<St, S>(store: &St, key: &str) -> Option<S>
where
    St: SharedStore + ?Sized,
    S: codec::Codec,
{
    store.get(key).and_then(|(bytes, _)| S::decode(&bytes))
}

/// The optimistic-concurrency loop for every state in shared data
/// (limiters, routing strategies, passive health): read the state
/// (an undecodable value counts as `fresh()`), let `step` decide, CAS-write,
/// and on `CasMismatch` start over from a fresh read, at most
/// `max_retries` times. A missing key is created first (see the module
/// docs); that creation does not use up a retry.
pub(crate) fn cas_update<St, S, T, F, G>(
    store: &St,
    key: &str,
    max_retries: u32,
    fresh: F,
    mut step: G,
) -> Result<T, Contention>
where
    St: SharedStore + ?Sized,
    S: codec::Codec,
    F: Fn() -> S,
    G: FnMut(S) -> Step<S, T>,
{
    let mut mismatches: u32 = 0;
    let mut created = false;
    loop {
        let Some((bytes, cas)) = store.get(key) else {
            if created {
                // Created it a moment ago and it is gone: the store is not
                // behaving like shared data; do not loop.
                return Err(Contention::StoreFailed);
            }
            created = true;
            match store.set(key, &fresh().encode(), CREATE_CAS) {
                // Mismatch: another worker created it in between; use theirs.
                Ok(()) | Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Failed) => return Err(Contention::StoreFailed),
            }
        };
        let state = S::decode(&bytes).unwrap_or_else(&fresh);
        let (new, out) = match step(state) {
            Step::Keep(out) => return Ok(out),
            Step::Write(new, out) => (new, out),
        };
        match store.set(key, &new.encode(), cas) {
            Ok(()) => return Ok(out),
            Err(StoreError::CasMismatch) => {
                if mismatches >= max_retries {
                    return Err(Contention::RetriesExhausted);
                }
                mismatches = mismatches.saturating_add(1);
            }
            Err(StoreError::Failed) => return Err(Contention::StoreFailed),
        }
    }
}

/// Nanoseconds → milliseconds, rounded up so a caller told to wait that long
/// never retries too early.
pub(crate) fn ns_to_ms_ceil(ns: u128) -> u64 {
    let ms = ns.div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}
