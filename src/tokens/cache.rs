//! The access token of one provider in shared data, shared by every worker:
//! whether a request can use it, who refreshes it (one claim wins, by
//! compare-and-set), and what a refresh leaves behind.

use crate::host::SharedStore;
use crate::state::{cas_update, kind, read_state, Codec, Contention, Reader, Step, Writer};

const VERSION: u8 = 1;
/// kind, version, expires, refresh, lease, retry_at, generation, failures, stale.
const FIXED: usize = 2 + 8 + 8 + 8 + 8 + 8 + 4 + 1;
const MAX_CAS_RETRIES: u32 = 16;
/// Longest token kept (Google's access tokens run to ~2 KB).
pub const MAX_TOKEN_BYTES: usize = 8192;

/// What shared data holds for a provider's token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub token: String,
    /// Unix ns after which the token is not used.
    pub expires_ns: u64,
    /// Unix ns from which it is refreshed (ahead of its expiry).
    pub refresh_ns: u64,
    /// A refresh is in flight until then (its owner may have died: the
    /// lease runs out and another worker claims).
    pub lease_until_ns: u64,
    /// After a failed refresh, no new one before then.
    pub retry_at_ns: u64,
    /// Counts tokens stored; names which token a request used.
    pub generation: u64,
    /// Refreshes failed in a row.
    pub failures: u32,
    /// The provider refused this token (revoked early).
    pub stale: bool,
}

impl Codec for Record {
    fn encode(&self) -> Vec<u8> {
        Writer::new(kind::ACCESS_TOKEN, VERSION, FIXED + self.token.len())
            .u64(self.expires_ns)
            .u64(self.refresh_ns)
            .u64(self.lease_until_ns)
            .u64(self.retry_at_ns)
            .u64(self.generation)
            .u32(self.failures)
            .bytes(&[u8::from(self.stale)])
            .bytes(self.token.as_bytes())
            .finish()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::open(bytes, kind::ACCESS_TOKEN, VERSION)?;
        let expires_ns = r.u64()?;
        let refresh_ns = r.u64()?;
        let lease_until_ns = r.u64()?;
        let retry_at_ns = r.u64()?;
        let generation = r.u64()?;
        let failures = r.u32()?;
        let stale = r.array::<1>()?[0] != 0;
        let token = std::str::from_utf8(r.rest()).ok()?.to_string();
        Some(Self {
            token,
            expires_ns,
            refresh_ns,
            lease_until_ns,
            retry_at_ns,
            generation,
            failures,
            stale,
        })
    }
}

impl Record {
    /// The token, if a request may use it now.
    pub fn usable(&self, now_ns: u64) -> Option<&str> {
        (!self.token.is_empty() && !self.stale && now_ns < self.expires_ns)
            .then_some(self.token.as_str())
    }

    /// Whether a refresh is due at `now` (no usable token, or one past its
    /// refresh time) and nobody is doing it or backing off.
    pub fn due(&self, now_ns: u64) -> bool {
        let fresh_enough = self.usable(now_ns).is_some() && now_ns < self.refresh_ns;
        !fresh_enough && now_ns >= self.lease_until_ns && now_ns >= self.retry_at_ns
    }

    /// A refresh is running or may start now (a request without a token
    /// waits for it rather than failing).
    pub fn refresh_coming(&self, now_ns: u64) -> bool {
        now_ns < self.lease_until_ns || now_ns >= self.retry_at_ns
    }
}

/// The record under `key` (fresh when absent or unreadable).
pub fn read(store: &dyn SharedStore, key: &str) -> Record {
    read_state(store, key).unwrap_or_default()
}

/// Creates the key (configure time).
pub fn ensure(store: &dyn SharedStore, key: &str) -> Result<(), Contention> {
    crate::state::ensure_state(store, key, Record::default())
}

/// Claims the refresh if one is due: exactly one caller wins per due
/// refresh, whatever the number of workers asking.
pub fn claim(
    store: &dyn SharedStore,
    key: &str,
    now_ns: u64,
    lease_ns: u64,
) -> Result<bool, Contention> {
    cas_update(
        store,
        key,
        MAX_CAS_RETRIES,
        Record::default,
        |mut r: Record| {
            if !r.due(now_ns) {
                return Step::Keep(false);
            }
            r.lease_until_ns = now_ns.saturating_add(lease_ns);
            Step::Write(r, true)
        },
    )
}

/// Stores a new token (the claimed refresh succeeded), to be refreshed
/// from `refresh_ns`.
pub fn fulfil(
    store: &dyn SharedStore,
    key: &str,
    token: &str,
    expires_ns: u64,
    refresh_ns: u64,
) -> Result<(), Contention> {
    cas_update(store, key, MAX_CAS_RETRIES, Record::default, |r: Record| {
        let new = Record {
            token: token.to_string(),
            expires_ns,
            refresh_ns,
            lease_until_ns: 0,
            retry_at_ns: 0,
            generation: r.generation.wrapping_add(1),
            failures: 0,
            stale: false,
        };
        Step::Write(new, ())
    })
}

/// Backoff after `failures` failed refreshes in a row: 1 s doubling to 60 s.
pub fn backoff_ns(failures: u32) -> u64 {
    let secs = 1u64 << failures.saturating_sub(1).min(6);
    secs.min(60) * 1_000_000_000
}

/// The claimed refresh failed: release the lease and back off.
pub fn fail(store: &dyn SharedStore, key: &str, now_ns: u64) -> Result<u32, Contention> {
    cas_update(
        store,
        key,
        MAX_CAS_RETRIES,
        Record::default,
        |mut r: Record| {
            r.failures = r.failures.saturating_add(1);
            r.lease_until_ns = 0;
            r.retry_at_ns = now_ns.saturating_add(backoff_ns(r.failures));
            let failures = r.failures;
            Step::Write(r, failures)
        },
    )
}

/// The provider refused `token`: mark it stale so the next tick refreshes,
/// unless a newer token already replaced it. Returns whether it did.
pub fn invalidate(store: &dyn SharedStore, key: &str, token: &str) -> Result<bool, Contention> {
    cas_update(
        store,
        key,
        MAX_CAS_RETRIES,
        Record::default,
        |mut r: Record| {
            if r.token != token || r.stale {
                return Step::Keep(false);
            }
            r.stale = true;
            // A refused token is not a failed refresh: refresh at once.
            r.retry_at_ns = 0;
            Step::Write(r, true)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemStore;

    const S: u64 = 1_000_000_000;
    const KEY: &str = "llmgw/token/p";

    #[test]
    fn records_round_trip_and_reject_other_bytes() {
        let r = Record {
            token: "24.abc".into(),
            expires_ns: 9,
            refresh_ns: 8,
            lease_until_ns: 7,
            retry_at_ns: 6,
            generation: 5,
            failures: 4,
            stale: true,
        };
        assert_eq!(Record::decode(&r.encode()), Some(r.clone()));
        let mut bytes = r.encode();
        bytes[0] = 0;
        assert_eq!(Record::decode(&bytes), None);
        assert_eq!(Record::decode(&r.encode()[..10]), None);
    }

    #[test]
    fn one_claim_wins_until_the_token_arrives() {
        let store = MemStore::default();
        ensure(&store, KEY).unwrap();
        assert!(read(&store, KEY).usable(0).is_none());
        assert!(claim(&store, KEY, 10 * S, 5 * S).unwrap());
        // Everyone else, on any worker, is told no while the lease runs.
        for _ in 0..8 {
            assert!(!claim(&store, KEY, 11 * S, 5 * S).unwrap());
        }
        assert!(read(&store, KEY).refresh_coming(11 * S));
        fulfil(&store, KEY, "t1", 100 * S, 80 * S).unwrap();
        let r = read(&store, KEY);
        assert_eq!((r.usable(12 * S), r.generation), (Some("t1"), 1));
        assert!(!claim(&store, KEY, 79 * S, 5 * S).unwrap());
        // Ahead of expiry: refreshed while still usable.
        assert!(claim(&store, KEY, 80 * S, 5 * S).unwrap());
        assert_eq!(read(&store, KEY).usable(81 * S), Some("t1"));
        assert!(!claim(&store, KEY, 81 * S, 5 * S).unwrap());
        // A lease whose owner died runs out.
        assert!(claim(&store, KEY, 86 * S, 5 * S).unwrap());
        assert!(read(&store, KEY).usable(100 * S).is_none());
    }

    #[test]
    fn failures_back_off_and_refused_tokens_refresh_at_once() {
        let store = MemStore::default();
        assert!(claim(&store, KEY, 10 * S, 5 * S).unwrap());
        assert_eq!(fail(&store, KEY, 10 * S).unwrap(), 1);
        let r = read(&store, KEY);
        assert!(!r.refresh_coming(10 * S));
        assert!(!claim(&store, KEY, 10 * S + S / 2, 5 * S).unwrap());
        assert!(claim(&store, KEY, 11 * S, 5 * S).unwrap());
        assert_eq!(fail(&store, KEY, 11 * S).unwrap(), 2);
        assert_eq!(read(&store, KEY).retry_at_ns, 13 * S);
        assert_eq!(backoff_ns(30), 60 * S);
        assert!(claim(&store, KEY, 13 * S, 5 * S).unwrap());
        fulfil(&store, KEY, "t2", 100 * S, 80 * S).unwrap();
        assert_eq!(read(&store, KEY).failures, 0);
        // An old token's refusal does not touch the new one.
        assert!(!invalidate(&store, KEY, "t1").unwrap());
        assert!(invalidate(&store, KEY, "t2").unwrap());
        assert!(!invalidate(&store, KEY, "t2").unwrap());
        let r = read(&store, KEY);
        assert!(r.usable(14 * S).is_none() && r.due(14 * S));
        assert!(claim(&store, KEY, 14 * S, 5 * S).unwrap());
    }
}
