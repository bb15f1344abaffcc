//! `lowest_latency`: the candidate with the lowest moving average of time
//! to first byte (EWMA, weight [`EWMA_NUM`]/[`EWMA_DEN`] per sample), fed
//! by [`on_finish`](super::on_finish). Warm-up: a candidate with fewer than
//! `warmup_samples` samples is *unexplored* and preferred (the one with
//! the fewest warm-up picks, ties at random) until it has them, or until
//! it has been given `warmup_max_probes` warm-up picks (a target that
//! never produces a sample — failing, hanging — is not preferred for
//! ever). Exploration: `explore_permille` ‰ of the other picks go to a
//! uniformly random candidate, so a target that was slow once gets new
//! samples. Candidates without any sample rank after every measured one.

use super::{Candidate, Tuning};
use crate::host::SharedStore;
use crate::state::{cas_update, keys, kind, read_state, Codec, Contention, Reader, Step, Writer};

/// Weight of a new latency sample in the moving average: 1/5.
pub const EWMA_NUM: u64 = 1;
pub const EWMA_DEN: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Latency {
    /// Moving average of time to first byte, µs.
    pub(super) ewma_us: u64,
    pub(super) samples: u32,
    /// Warm-up picks given to this target.
    pub(super) probes: u32,
    pub(super) last_sample_ns: u64,
}

const LATENCY_VERSION: u8 = 1;
pub(super) const LATENCY_LEN: usize = 2 + 8 + 4 + 4 + 8;

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
pub(super) fn uniform_low(rand: u64, n: usize) -> usize {
    let lo = u128::from(rand & 0xFFFF_FFFF);
    usize::try_from((lo * n as u128) >> 32).unwrap_or(0)
}

/// Whether this pick explores, from the high 32 bits of `rand`.
pub(super) fn explores(rand: u64, permille: u32) -> bool {
    ((rand >> 32) * 1000) >> 32 < u64::from(permille)
}

/// A warm-up pick, an exploring one, or the lowest average; `None` when
/// nothing is measured yet (weighted random decides).
pub(super) fn pick(
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

/// Feeds one time-to-first-byte sample of target `id` into its average
/// (what [`on_finish`](super::on_finish) does for `lowest_latency` pools).
pub fn observe(
    store: &dyn SharedStore,
    pool_key: &str,
    id: &str,
    latency_ms: u64,
    now_ns: u64,
) -> Result<(), Contention> {
    let key = keys::latency(pool_key, id);
    record(&Tuning::default(), store, &key, latency_ms, now_ns)
}

/// Feeds one sample into the average under `key`.
pub(super) fn record(
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
