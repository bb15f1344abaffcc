//! Per-pool strategies choosing among the usable targets of one priority
//! tier, with their state in proxy-wasm shared data so that every Envoy
//! worker contributes to and sees the same numbers.
//!
//! * `weighted_random`: random, proportional to weight; no state.
//! * `round_robin`: smooth weighted round-robin, one sequence shared by
//!   every worker.
//! * `least_in_flight`: the candidate with the fewest requests in flight
//!   per unit of weight, counted by [`on_start`] and [`on_finish`].
//! * `lowest_latency`: the candidate with the lowest moving average of
//!   time to first byte, fed by [`on_finish`], with warm-up and exploration.
//!
//! Whatever fails in shared data, a pick degrades to weighted random.
//!
//! # Randomness
//!
//! `rand` is one uniformly random `u64` per pick (e.g. `Rng::next_u64`), so
//! tests can drive every branch: weighted random uses all 64 bits;
//! `lowest_latency` decides exploration from the high 32 bits
//! (`(hi × 1000) >> 32 < explore_permille`) and chooses a uniform candidate
//! (exploration, warm-up ties) from the low 32 bits (`(lo × n) >> 32`).
//!
//! # Keys
//!
//! Under the caller's `pool_key` ([`keys::pool`]): `{pool_key}/rr` (one per
//! pool), `{pool_key}/inflight/{id}`, `{pool_key}/latency/{id}` (one per
//! target). The `id` must come from the configuration (see
//! [`keys::target_id`]),
//! never from the client (e.g. not a `model_map` upstream override), so the
//! key space stays bounded; ids must be unique within a pool.

mod least_in_flight;
mod lowest_latency;
mod round_robin;
#[cfg(test)]
mod tests;

pub use least_in_flight::in_flight;
pub use lowest_latency::{latency, observe, LatencyStatus, EWMA_DEN, EWMA_NUM};

use super::config::Strategy;
use super::weighted_random;
use crate::host::SharedStore;
use crate::state::{keys, Contention};

/// A usable target of the tier being chosen from, as the flow passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The target's index in the model's `targets` (what `pick` returns).
    pub index: usize,
    /// Weight 0 is never chosen.
    pub weight: u32,
    /// Stable identity for shared-data keys and sticky hashing, from the
    /// configuration (see [`keys::target_id`]).
    pub id: &'a str,
}

impl<'a> Candidate<'a> {
    pub fn new(index: usize, weight: u32, id: &'a str) -> Self {
        Self { index, weight, id }
    }
}

/// Numbers of the strategies; [`Tuning::default`] is what [`pick`],
/// [`on_start`] and [`on_finish`] use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// CAS retries of one shared-data update.
    pub cas_retries: u32,
    /// `least_in_flight`: a non-zero count with no finish for this long is
    /// presumed leaked (0 disables recovery).
    pub stale_in_flight_ms: u64,
    /// `lowest_latency`: samples before a target counts as measured.
    pub warmup_samples: u32,
    /// `lowest_latency`: warm-up picks after which a target without enough
    /// samples is no longer preferred.
    pub warmup_max_probes: u32,
    /// `lowest_latency`: share of exploring picks, in ‰.
    pub explore_permille: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            cas_retries: 8,
            stale_in_flight_ms: 600_000,
            warmup_samples: 3,
            warmup_max_probes: 12,
            explore_permille: 50,
        }
    }
}

/// Chooses among `candidates` (already filtered for health and
/// availability): the chosen one's `index`, or `None` when no candidate has
/// a positive weight. Never fails for store trouble: each strategy degrades
/// to weighted random.
pub fn pick(
    strategy: Strategy,
    store: &dyn SharedStore,
    pool_key: &str,
    candidates: &[Candidate<'_>],
    rand: u64,
    now_ns: u64,
) -> Option<usize> {
    pick_with(
        &Tuning::default(),
        strategy,
        store,
        pool_key,
        candidates,
        rand,
        now_ns,
    )
}

/// [`pick`] with explicit [`Tuning`].
pub fn pick_with(
    tuning: &Tuning,
    strategy: Strategy,
    store: &dyn SharedStore,
    pool_key: &str,
    candidates: &[Candidate<'_>],
    rand: u64,
    now_ns: u64,
) -> Option<usize> {
    let live: Vec<Candidate<'_>> = candidates
        .iter()
        .copied()
        .filter(|c| c.weight > 0)
        .collect();
    match live.as_slice() {
        [] => return None,
        [only] => return Some(only.index),
        _ => {}
    }
    let chosen = match strategy {
        Strategy::WeightedRandom => None,
        Strategy::RoundRobin => round_robin::pick(tuning, store, pool_key, &live),
        Strategy::LeastInFlight => least_in_flight::pick(tuning, store, pool_key, &live, now_ns),
        Strategy::LowestLatency => lowest_latency::pick(tuning, store, pool_key, &live, rand),
    };
    chosen.or_else(|| weighted_random(&live, rand))
}

/// A request in flight on its target, as the pool's strategy tracks it:
/// what [`on_finish`] must undo or record. Hand it back exactly once.
#[derive(Debug, PartialEq, Eq, Default)]
#[must_use = "pass it to on_finish when the request ends"]
pub struct InFlight {
    /// In-flight count this request incremented.
    count_key: Option<String>,
    /// Latency average to feed the time to first byte into.
    latency_key: Option<String>,
}

impl InFlight {
    /// The request holds an in-flight count that [`on_finish`] will release.
    pub fn is_counted(&self) -> bool {
        self.count_key.is_some()
    }
}

/// Call when the request is sent to the chosen target (`id` as in its
/// [`Candidate`]). `least_in_flight` counts it in flight (if the update
/// fails for contention, the request is simply not counted and the
/// returned [`InFlight`] says so); `lowest_latency` remembers where to record its latency.
pub fn on_start(
    strategy: Strategy,
    store: &dyn SharedStore,
    pool_key: &str,
    id: &str,
    now_ns: u64,
) -> InFlight {
    on_start_with(&Tuning::default(), strategy, store, pool_key, id, now_ns)
}

/// [`on_start`] with explicit [`Tuning`].
pub fn on_start_with(
    tuning: &Tuning,
    strategy: Strategy,
    store: &dyn SharedStore,
    pool_key: &str,
    id: &str,
    now_ns: u64,
) -> InFlight {
    match strategy {
        Strategy::WeightedRandom | Strategy::RoundRobin => InFlight::default(),
        Strategy::LeastInFlight => {
            let key = keys::in_flight(pool_key, id);
            let acquired = least_in_flight::acquire(tuning, store, &key, now_ns);
            InFlight {
                count_key: acquired.ok().map(|()| key),
                latency_key: None,
            }
        }
        Strategy::LowestLatency => InFlight {
            count_key: None,
            latency_key: Some(keys::latency(pool_key, id)),
        },
    }
}

/// Call once when the request ends, however it ended. `ttfb_ms`: time to
/// the first byte of a successful response (2xx), used by
/// `lowest_latency`; pass `None` for failures (health ejects failing
/// targets), except that a first-byte *timeout* may pass the time waited:
/// it is a lower bound of the real latency and pushes the average up.
pub fn on_finish(
    store: &dyn SharedStore,
    in_flight: InFlight,
    ttfb_ms: Option<u64>,
    now_ns: u64,
) -> Result<(), Contention> {
    on_finish_with(&Tuning::default(), store, in_flight, ttfb_ms, now_ns)
}

/// [`on_finish`] with explicit [`Tuning`]. Both halves are attempted; the
/// first error is returned.
pub fn on_finish_with(
    tuning: &Tuning,
    store: &dyn SharedStore,
    in_flight: InFlight,
    ttfb_ms: Option<u64>,
    now_ns: u64,
) -> Result<(), Contention> {
    let released = match &in_flight.count_key {
        None => Ok(()),
        Some(key) => least_in_flight::release(tuning, store, key, now_ns),
    };
    let observed = match (&in_flight.latency_key, ttfb_ms) {
        (Some(key), Some(ms)) => lowest_latency::record(tuning, store, key, ms, now_ns),
        _ => Ok(()),
    };
    released.and(observed)
}
