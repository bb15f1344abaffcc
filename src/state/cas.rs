//! The optimistic read → compute → compare-and-set loop every shared-data
//! state goes through, and creation of missing keys.

use super::codec::Codec;
use crate::host::{SharedStore, StoreError};

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
    S: Codec,
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
    S: Codec,
{
    store.get(key).and_then(|(bytes, _)| S::decode(&bytes))
}

/// The optimistic-concurrency loop for every state in shared data
/// (limiters, routing strategies, passive health): read the state
/// (an undecodable value counts as `fresh()`), let `step` decide, CAS-write,
/// and on `CasMismatch` start over from a fresh read, at most
/// `max_retries` times. A missing key is created first (see the key
/// lifecycle in [`crate::state`]); that creation does not use up a retry.
pub(crate) fn cas_update<St, S, T, F, G>(
    store: &St,
    key: &str,
    max_retries: u32,
    fresh: F,
    mut step: G,
) -> Result<T, Contention>
where
    St: SharedStore + ?Sized,
    S: Codec,
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

#[cfg(test)]
mod tests {
    use super::{cas_update, read_state as read, Contention, Step};
    use crate::host::SharedStore;
    use crate::state::{Codec, Reader, Writer};
    use crate::testing::MemStore;

    #[derive(Debug, PartialEq, Default)]
    struct Counter(u32);

    impl Codec for Counter {
        fn encode(&self) -> Vec<u8> {
            Writer::new(0xEE, 1, 6).u32(self.0).finish()
        }
        fn decode(bytes: &[u8]) -> Option<Self> {
            let mut r = Reader::open(bytes, 0xEE, 1)?;
            let v = r.u32()?;
            r.done().then_some(Counter(v))
        }
    }

    fn bump(store: &dyn SharedStore, retries: u32) -> Result<u32, Contention> {
        cas_update(store, "k", retries, Counter::default, |c| {
            Step::Write(Counter(c.0 + 1), c.0 + 1)
        })
    }

    #[test]
    fn creates_then_updates_and_retries_on_mismatch() {
        let s = MemStore::default();
        assert_eq!(bump(&s, 0), Ok(1));
        assert_eq!(bump(&s, 0), Ok(2));
        s.fail_next.set(2);
        assert_eq!(bump(&s, 2), Ok(3));
        s.fail_next.set(3);
        assert_eq!(bump(&s, 2), Err(Contention::RetriesExhausted));
        assert_eq!(read::<_, Counter>(&s, "k"), Some(Counter(3)));
        s.broken.set(true);
        assert_eq!(bump(&s, 2), Err(Contention::StoreFailed));
    }

    #[test]
    fn undecodable_values_read_as_fresh() {
        let s = MemStore::default();
        for junk in [
            &b""[..],
            b"\xEE",
            b"\xEE\x01\x01",
            b"\xEE\x02\0\0\0\0",
            b"\xEE\x01\0\0\0\0\0",
        ] {
            s.set("k", junk, 0).unwrap();
            assert_eq!(read::<_, Counter>(&s, "k"), None, "{junk:?}");
            assert_eq!(bump(&s, 0), Ok(1));
        }
    }

    #[test]
    fn keep_writes_nothing() {
        let s = MemStore::default();
        let r: Result<u8, _> = cas_update(&s, "k", 0, Counter::default, |_| Step::Keep(7));
        assert_eq!(r, Ok(7));
        // Only the creation was written.
        assert_eq!(s.set_calls.get(), 1);
    }
}
