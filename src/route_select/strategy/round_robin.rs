//! `round_robin`: smooth weighted round-robin (nginx's algorithm: every
//! pick adds each candidate's weight to its current weight, takes the
//! largest, and subtracts the candidates' total from the winner). Weights
//! 5, 1, 1 give `a a b a c a a`, spread instead of `a a a a a b c`. The
//! current weights of a pool live in ONE shared value, updated by CAS, so
//! all workers advance one sequence; when the CAS keeps losing (more than
//! `cas_retries` times) or the store fails, that pick falls back to
//! weighted random. A candidate that is temporarily not passed in
//! (ejected) keeps its current weight and rejoins the sequence where it
//! left it, as nginx does with a down peer.

use super::{Candidate, Tuning};
use crate::host::SharedStore;
use crate::route_select::stable_hash;
use crate::state::{cas_update, keys, kind, Codec, Reader, Step, Writer};

/// Most current weights one round-robin value keeps; beyond this, entries
/// of targets not among the candidates are dropped.
pub(super) const RR_KEEP: usize = 64;
/// More candidates than this: round-robin falls back to weighted random
/// (the value would be too large to rewrite on every pick).
const RR_MAX_CANDIDATES: usize = 1024;

/// Current weights of a pool's targets, by id hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RoundRobin {
    pub(super) entries: Vec<(u64, i64)>,
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

/// The pool's next target in the shared sequence; `None` to fall back to
/// weighted random.
pub(super) fn pick(
    tuning: &Tuning,
    store: &dyn SharedStore,
    pool_key: &str,
    live: &[Candidate<'_>],
) -> Option<usize> {
    if live.len() > RR_MAX_CANDIDATES {
        return None;
    }
    let ids: Vec<u64> = live.iter().map(|c| stable_hash("", c.id)).collect();
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
