//! `least_in_flight`: the candidate with the fewest requests in flight per
//! unit of weight, `(in_flight + 1) / weight` (with equal weights: the
//! plain minimum); ties go to the larger weight, then to the earlier
//! candidate. Counts are per target in shared data, raised by
//! [`on_start`](super::on_start) and lowered by [`on_finish`](super::on_finish);
//! they never go below zero.
//!
//! # Leak recovery
//!
//! In-flight counts live in a store whose values never expire, so a request
//! whose `on_finish` never runs (a VM restart, a stream the host never
//! completed) would count against its target for ever. As in
//! `ratelimit::adaptive`, a count is presumed leaked when it is non-zero and
//! no request of that target has finished for `stale_in_flight_ms` (default
//! 10 minutes; it must exceed the longest legitimate request, streams
//! included). `pick` then reads it as 0 and the next `on_start` restarts
//! it from 0. A finish that arrives after such a reset is absorbed by the
//! floor at zero, so the count may read one low for the duration of those
//! requests, never negative.

use super::{Candidate, Tuning};
use crate::host::SharedStore;
use crate::state::{cas_update, keys, kind, read_state, Codec, Contention, Reader, Step, Writer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InFlightCount {
    pub(super) count: u32,
    /// Unix ns of the last finish, or of the count leaving 0 (or of a leak
    /// reset): leak detection measures from here.
    pub(super) since_ns: u64,
}

const IN_FLIGHT_VERSION: u8 = 1;
pub(super) const IN_FLIGHT_LEN: usize = 2 + 4 + 8;

impl Codec for InFlightCount {
    fn encode(&self) -> Vec<u8> {
        Writer::new(kind::IN_FLIGHT, IN_FLIGHT_VERSION, IN_FLIGHT_LEN)
            .u32(self.count)
            .u64(self.since_ns)
            .finish()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::open(bytes, kind::IN_FLIGHT, IN_FLIGHT_VERSION)?;
        let s = Self {
            count: r.u32()?,
            since_ns: r.u64()?,
        };
        r.done().then_some(s)
    }
}

impl InFlightCount {
    fn idle(now_ns: u64) -> Self {
        Self {
            count: 0,
            since_ns: now_ns,
        }
    }

    /// The state with a presumed-leaked count reset to 0.
    fn recovered(self, now_ns: u64, stale_ns: u64) -> Self {
        if self.count > 0 && stale_ns > 0 && now_ns.saturating_sub(self.since_ns) >= stale_ns {
            Self::idle(now_ns)
        } else {
            self
        }
    }
}

/// The least loaded candidate per unit of weight.
pub(super) fn pick(
    tuning: &Tuning,
    store: &dyn SharedStore,
    pool_key: &str,
    live: &[Candidate<'_>],
    now_ns: u64,
) -> Option<usize> {
    let stale_ns = tuning.stale_in_flight_ms.saturating_mul(1_000_000);
    let mut best: Option<(u64, u32, usize)> = None; // (count, weight, index)
    for c in live {
        let count = read_state::<_, InFlightCount>(store, &keys::in_flight(pool_key, c.id))
            .map_or(0, |s| s.recovered(now_ns, stale_ns).count);
        let count = u64::from(count);
        let better = match best {
            None => true,
            Some((bc, bw, _)) => {
                // (count+1)/weight < (bc+1)/bw, cross-multiplied (< 2^65).
                let mine = u128::from(count + 1) * u128::from(bw);
                let theirs = u128::from(bc + 1) * u128::from(c.weight);
                mine < theirs || (mine == theirs && c.weight > bw)
            }
        };
        if better {
            best = Some((count, c.weight, c.index));
        }
    }
    best.map(|(_, _, index)| index)
}

/// Counts a request in flight under `key` (restarting a leaked count).
pub(super) fn acquire(
    tuning: &Tuning,
    store: &dyn SharedStore,
    key: &str,
    now_ns: u64,
) -> Result<(), Contention> {
    let stale_ns = tuning.stale_in_flight_ms.saturating_mul(1_000_000);
    cas_update(
        store,
        key,
        tuning.cas_retries,
        || InFlightCount::idle(now_ns),
        |s: InFlightCount| {
            let mut s = s.recovered(now_ns, stale_ns);
            if s.count == 0 {
                s.since_ns = now_ns;
            }
            s.count = s.count.saturating_add(1);
            Step::Write(s, ())
        },
    )
}

/// Lowers the count under `key`, never below zero.
pub(super) fn release(
    tuning: &Tuning,
    store: &dyn SharedStore,
    key: &str,
    now_ns: u64,
) -> Result<(), Contention> {
    cas_update(
        store,
        key,
        tuning.cas_retries,
        || InFlightCount::idle(now_ns),
        |s: InFlightCount| {
            Step::Write(
                InFlightCount {
                    count: s.count.saturating_sub(1),
                    since_ns: s.since_ns.max(now_ns),
                },
                (),
            )
        },
    )
}

/// Requests in flight on target `id` as `pick` sees them (0 when presumed
/// leaked), for a gauge.
pub fn in_flight(store: &dyn SharedStore, pool_key: &str, id: &str, now_ns: u64) -> u32 {
    let stale_ns = Tuning::default()
        .stale_in_flight_ms
        .saturating_mul(1_000_000);
    read_state::<_, InFlightCount>(store, &keys::in_flight(pool_key, id))
        .map_or(0, |s| s.recovered(now_ns, stale_ns).count)
}
