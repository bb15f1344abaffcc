//! Per-pool strategies choosing among the usable targets of one priority
//! tier, with their state in proxy-wasm shared data so that every Envoy
//! worker contributes to and sees the same numbers.
//!
//! * `weighted_random`: random, proportional to weight; no state.
//! * `round_robin`: smooth weighted round-robin (nginx's algorithm: every
//!   pick adds each candidate's weight to its current weight, takes the
//!   largest, and subtracts the candidates' total from the winner). Weights
//!   5, 1, 1 give `a a b a c a a`, spread instead of `a a a a a b c`. The
//!   current weights of a pool live in ONE shared value, updated by CAS, so
//!   all workers advance one sequence; when the CAS keeps losing (more than
//!   `cas_retries` times) or the store fails, that pick falls back to
//!   weighted random. A candidate that is temporarily not passed in
//!   (ejected) keeps its current weight and rejoins the sequence where it
//!   left it, as nginx does with a down peer.
//! * `least_in_flight`: the candidate with the fewest requests in flight
//!   per unit of weight, `(in_flight + 1) / weight` (with equal weights: the
//!   plain minimum); ties go to the larger weight, then to the earlier
//!   candidate. Counts are per target in shared data, raised by
//!   [`on_start`] and lowered by [`on_finish`]; they never go below zero.
//! * `lowest_latency`: the candidate with the lowest moving average of time
//!   to first byte (EWMA, weight [`EWMA_NUM`]/[`EWMA_DEN`] per sample), fed
//!   by [`on_finish`]. Warm-up: a candidate with fewer than
//!   `warmup_samples` samples is *unexplored* and preferred (the one with
//!   the fewest warm-up picks, ties at random) until it has them, or until
//!   it has been given `warmup_max_probes` warm-up picks (a target that
//!   never produces a sample — failing, hanging — is not preferred for
//!   ever). Exploration: `explore_permille` ‰ of the other picks go to a
//!   uniformly random candidate, so a target that was slow once gets new
//!   samples. Candidates without any sample rank after every measured one.
//!
//! # Leak recovery (`least_in_flight`)
//!
//! In-flight counts live in a store whose values never expire, so a request
//! whose [`on_finish`] never runs (a VM restart, a stream the host never
//! completed) would count against its target for ever. As in
//! `ratelimit::adaptive`, a count is presumed leaked when it is non-zero and
//! no request of that target has finished for `stale_in_flight_ms` (default
//! 10 minutes; it must exceed the longest legitimate request, streams
//! included). [`pick`] then reads it as 0 and the next [`on_start`] restarts
//! it from 0. A finish that arrives after such a reset is absorbed by the
//! floor at zero, so the count may read one low for the duration of those
//! requests, never negative.
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

use super::config::Strategy;
use super::weighted_random;
use crate::host::SharedStore;
use crate::state::{cas_update, keys, kind, read_state, Codec, Contention, Reader, Step, Writer};

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

/// Weight of a new latency sample in the moving average: 1/5.
pub const EWMA_NUM: u64 = 1;
pub const EWMA_DEN: u64 = 5;

/// Most current weights one round-robin value keeps; beyond this, entries
/// of targets not among the candidates are dropped.
const RR_KEEP: usize = 64;
/// More candidates than this: round-robin falls back to weighted random
/// (the value would be too large to rewrite on every pick).
const RR_MAX_CANDIDATES: usize = 1024;

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
        Strategy::RoundRobin => round_robin(tuning, store, pool_key, &live),
        Strategy::LeastInFlight => least_in_flight(tuning, store, pool_key, &live, now_ns),
        Strategy::LowestLatency => lowest_latency(tuning, store, pool_key, &live, rand),
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
            let stale_ns = tuning.stale_in_flight_ms.saturating_mul(1_000_000);
            let acquired = cas_update(
                store,
                &key,
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
            );
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
        Some(key) => cas_update(
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
        ),
    };
    let observed = match (&in_flight.latency_key, ttfb_ms) {
        (Some(key), Some(ms)) => record_latency(tuning, store, key, ms, now_ns),
        _ => Ok(()),
    };
    released.and(observed)
}

/// Feeds one time-to-first-byte sample of target `id` into its average
/// (what [`on_finish`] does for `lowest_latency` pools).
pub fn observe(
    store: &dyn SharedStore,
    pool_key: &str,
    id: &str,
    latency_ms: u64,
    now_ns: u64,
) -> Result<(), Contention> {
    let key = keys::latency(pool_key, id);
    record_latency(&Tuning::default(), store, &key, latency_ms, now_ns)
}

fn record_latency(
    tuning: &Tuning,
    store: &dyn SharedStore,
    key: &str,
    latency_ms: u64,
    now_ns: u64,
) -> Result<(), Contention> {
    let sample_us = latency_ms.saturating_mul(1_000);
    cas_update(
        store,
        key,
        tuning.cas_retries,
        Latency::default,
        |s: Latency| {
            let ewma_us = if s.samples == 0 {
                sample_us
            } else {
                // old + (sample − old) × NUM/DEN, in i128 (no overflow).
                let old = i128::from(s.ewma_us);
                let new = old
                    + (i128::from(sample_us) - old) * i128::from(EWMA_NUM) / i128::from(EWMA_DEN);
                u64::try_from(new.max(0)).unwrap_or(u64::MAX)
            };
            Step::Write(
                Latency {
                    ewma_us,
                    samples: s.samples.saturating_add(1),
                    last_sample_ns: now_ns,
                    ..s
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

/// A target's latency average, for a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyStatus {
    pub ewma_ms: u64,
    pub samples: u32,
    /// Unix ns of the latest sample (how fresh the average is).
    pub last_sample_ns: u64,
}

/// The latency average of target `id`, when it has samples.
pub fn latency(store: &dyn SharedStore, pool_key: &str, id: &str) -> Option<LatencyStatus> {
    read_state::<_, Latency>(store, &keys::latency(pool_key, id))
        .filter(|s| s.samples > 0)
        .map(|s| LatencyStatus {
            ewma_ms: s.ewma_us / 1_000,
            samples: s.samples,
            last_sample_ns: s.last_sample_ns,
        })
}

// ---------------------------------------------------------------------------
// round_robin
// ---------------------------------------------------------------------------

/// Current weights of a pool's targets, by id hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RoundRobin {
    entries: Vec<(u64, i64)>,
}

const RR_VERSION: u8 = 1;

impl Codec for RoundRobin {
    fn encode(&self) -> Vec<u8> {
        let n = u16::try_from(self.entries.len()).unwrap_or(u16::MAX);
        let mut w = Writer::new(kind::ROUND_ROBIN, RR_VERSION, 4 + 16 * usize::from(n)).u16(n);
        for &(id, current) in self.entries.iter().take(usize::from(n)) {
            w = w.u64(id).i64(current);
        }
        w.finish()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::open(bytes, kind::ROUND_ROBIN, RR_VERSION)?;
        let n = r.u16()?;
        let mut entries = Vec::with_capacity(usize::from(n).min(RR_MAX_CANDIDATES));
        for _ in 0..n {
            entries.push((r.u64()?, r.i64()?));
        }
        r.done().then_some(Self { entries })
    }
}

impl RoundRobin {
    /// Position of `id`'s entry, created at current weight 0 if missing.
    fn slot(&mut self, id: u64) -> usize {
        match self.entries.iter().position(|&(h, _)| h == id) {
            Some(p) => p,
            None => {
                self.entries.push((id, 0));
                self.entries.len() - 1
            }
        }
    }

    /// One step of smooth weighted round-robin; `None` if nothing is
    /// choosable.
    fn step(&mut self, live: &[Candidate<'_>], ids: &[u64]) -> Option<usize> {
        let total: i64 = live.iter().map(|c| i64::from(c.weight)).sum();
        // (slot, current weight, candidate index) of the largest current
        // weight; the earlier candidate wins ties.
        let mut best: Option<(usize, i64, usize)> = None;
        for (c, &id) in live.iter().zip(ids) {
            let slot = self.slot(id);
            let entry = self.entries.get_mut(slot)?;
            entry.1 = entry.1.saturating_add(i64::from(c.weight));
            let current = entry.1;
            if best.is_none_or(|(_, b, _)| current > b) {
                best = Some((slot, current, c.index));
            }
        }
        let (slot, _, index) = best?;
        let entry = self.entries.get_mut(slot)?;
        entry.1 = entry.1.saturating_sub(total);
        if self.entries.len() > RR_KEEP {
            self.entries.retain(|(h, _)| ids.contains(h));
        }
        Some(index)
    }
}

fn round_robin(
    tuning: &Tuning,
    store: &dyn SharedStore,
    pool_key: &str,
    live: &[Candidate<'_>],
) -> Option<usize> {
    if live.len() > RR_MAX_CANDIDATES {
        return None;
    }
    let ids: Vec<u64> = live.iter().map(|c| super::stable_hash("", c.id)).collect();
    cas_update(
        store,
        &keys::round_robin(pool_key),
        tuning.cas_retries,
        RoundRobin::default,
        |mut s: RoundRobin| match s.step(live, &ids) {
            Some(index) => Step::Write(s, Some(index)),
            None => Step::Keep(None),
        },
    )
    .ok()
    .flatten()
}

// ---------------------------------------------------------------------------
// least_in_flight
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlightCount {
    count: u32,
    /// Unix ns of the last finish, or of the count leaving 0 (or of a leak
    /// reset): leak detection measures from here.
    since_ns: u64,
}

const IN_FLIGHT_VERSION: u8 = 1;
const IN_FLIGHT_LEN: usize = 2 + 4 + 8;

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

fn least_in_flight(
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

// ---------------------------------------------------------------------------
// lowest_latency
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Latency {
    /// Moving average of time to first byte, µs.
    ewma_us: u64,
    samples: u32,
    /// Warm-up picks given to this target.
    probes: u32,
    last_sample_ns: u64,
}

const LATENCY_VERSION: u8 = 1;
const LATENCY_LEN: usize = 2 + 8 + 4 + 4 + 8;

impl Codec for Latency {
    fn encode(&self) -> Vec<u8> {
        Writer::new(kind::LATENCY, LATENCY_VERSION, LATENCY_LEN)
            .u64(self.ewma_us)
            .u32(self.samples)
            .u32(self.probes)
            .u64(self.last_sample_ns)
            .finish()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::open(bytes, kind::LATENCY, LATENCY_VERSION)?;
        let s = Self {
            ewma_us: r.u64()?,
            samples: r.u32()?,
            probes: r.u32()?,
            last_sample_ns: r.u64()?,
        };
        r.done().then_some(s)
    }
}

/// Uniform in `0..n` from the low 32 bits of `rand`.
fn uniform_low(rand: u64, n: usize) -> usize {
    let lo = u128::from(rand & 0xFFFF_FFFF);
    usize::try_from((lo * n as u128) >> 32).unwrap_or(0)
}

/// Whether this pick explores, from the high 32 bits of `rand`.
fn explores(rand: u64, permille: u32) -> bool {
    ((rand >> 32) * 1000) >> 32 < u64::from(permille)
}

fn lowest_latency(
    tuning: &Tuning,
    store: &dyn SharedStore,
    pool_key: &str,
    live: &[Candidate<'_>],
    rand: u64,
) -> Option<usize> {
    let states: Vec<Latency> = live
        .iter()
        .map(|c| read_state(store, &keys::latency(pool_key, c.id)).unwrap_or_default())
        .collect();

    // Warm-up: the unexplored candidates with the fewest probes, one of
    // them at random (so concurrent workers spread out).
    let unexplored =
        |s: &Latency| s.samples < tuning.warmup_samples && s.probes < tuning.warmup_max_probes;
    let fewest = states
        .iter()
        .filter(|s| unexplored(s))
        .map(|s| s.probes)
        .min();
    if let Some(fewest) = fewest {
        let tied: Vec<&Candidate<'_>> = live
            .iter()
            .zip(&states)
            .filter(|(_, s)| unexplored(s) && s.probes == fewest)
            .map(|(c, _)| c)
            .collect();
        let chosen = tied.get(uniform_low(rand, tied.len()))?;
        // Best effort: a lost race only means one more warm-up pick.
        let _ = cas_update(
            store,
            &keys::latency(pool_key, chosen.id),
            tuning.cas_retries,
            Latency::default,
            |s: Latency| {
                Step::Write(
                    Latency {
                        probes: s.probes.saturating_add(1),
                        ..s
                    },
                    (),
                )
            },
        );
        return Some(chosen.index);
    }

    if explores(rand, tuning.explore_permille) {
        return live.get(uniform_low(rand, live.len())).map(|c| c.index);
    }

    // Lowest average among measured candidates; ties: larger weight, then
    // earlier. None measured: the caller falls back to weighted random.
    let mut best: Option<(u64, u32, usize)> = None;
    for (c, s) in live.iter().zip(&states) {
        if s.samples == 0 {
            continue;
        }
        let better =
            best.is_none_or(|(bl, bw, _)| s.ewma_us < bl || (s.ewma_us == bl && c.weight > bw));
        if better {
            best = Some((s.ewma_us, c.weight, c.index));
        }
    }
    best.map(|(_, _, index)| index)
}

#[cfg(test)]
mod tests;
