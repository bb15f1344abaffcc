//! Route selection beyond "one exact model name, weighted random": pure
//! logic, compiled once per configuration (regexes included), tested
//! natively. The request flow calls it; nothing here touches the host
//! except through [`SharedStore`](crate::host::SharedStore).
//!
//! * [`mapping`]: `model_map`, client model name → configured model (pool)
//!   plus an optional upstream-model override (exact alias, prefix, regex
//!   with captures).
//! * [`rules`]: `routing_rules`, the first rule whose conditions (model,
//!   consumer, header, prompt size, message count, keywords) all hold
//!   chooses the pool.
//! * [`split`]: sticky weighted choice (canary / A-B) by a stable hash of
//!   the consumer or a header, via weighted rendezvous hashing.
//! * [`strategy`]: per-pool choice among a tier's usable targets:
//!   weighted random, smooth weighted round-robin, least in flight, lowest
//!   latency, with their state in proxy-wasm shared data.
//! * [`pool`]: a model's `strategy` and `split` compiled together.
//! * [`tier`]: priority tiers, the lowest with a usable target first.
//! * [`rng`]: the per-stream random source of every random choice.
//! * [`config`]: the serde shapes of all of the above.
//!
//! # Order of resolution (recommended to the flow)
//!
//! 1. `routing_rules` ([`rules::RuleSet::choose`]) on the model name the
//!    client sent: a matching rule names the pool.
//! 2. Otherwise the exact configured model of that name, when one exists.
//!    Exact names never need a `model_map` entry, and an alias that equals a
//!    configured model name is refused at compile time (it could never apply).
//! 3. Otherwise `model_map` ([`mapping::ModelMap::resolve`]), first match in
//!    config order.
//! 4. Otherwise 404 `model_not_found`.
//!
//! Within the pool, the flow keeps choosing the lowest usable priority tier;
//! the tier's usable targets (health, availability, weight > 0) go to
//! [`pool::PoolPolicy::pick`] as [`Candidate`]s.
//!
//! # Shared data
//!
//! Strategy state lives under the caller's `pool_key` (see
//! [`crate::state::keys::pool`]): one value per pool for round-robin, one per
//! target for in-flight counts and latency averages. Targets are named in
//! those keys by a caller-chosen stable id (see
//! [`crate::state::keys::target_id`]),
//! never by a position that a reconfiguration could give to another target.
//! The key space is bounded by the configuration.

pub mod config;
pub mod mapping;
pub mod pool;
pub mod rng;
pub mod rules;
pub mod split;
pub mod strategy;
pub mod tier;

pub use config::{
    HeaderMatchConfig, MapEntry, PoolOptions, RuleConfig, SplitConfig, Strategy, WhenConfig,
};
pub use mapping::{ModelMap, Resolved};
pub use pool::PoolPolicy;
pub use rng::Rng;
pub use rules::{RuleFacts, RuleSet};
pub use split::{sticky_pick, Split, StickyBy};
pub use strategy::{on_finish, on_start, pick, Candidate, InFlight, Tuning};
pub use tier::lowest_usable_tier;

/// Longest client model name, pool name or upstream model name handled
/// (the configuration's own model names are limited to the same).
pub const MAX_NAME_LEN: usize = 256;

/// SplitMix64's finalizer: a bijective mix of every input bit into every
/// output bit.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of `value` under `salt`: the same in every worker,
/// process and build (std's `RandomState` is seeded per process). Reuses
/// the rate-limit slots' keyless FNV-1a + MurmurHash3-finalizer hash.
pub(crate) fn stable_hash(salt: &str, value: &str) -> u64 {
    crate::state::slots::slot_hash(salt, value)
}

/// Uniform in `0..n` from 64 random bits (multiply-shift; `n` 0 gives 0).
pub(crate) fn below(rand: u64, n: u64) -> u64 {
    // < n, so it fits.
    u64::try_from((u128::from(rand) * u128::from(n)) >> 64).unwrap_or(0)
}

/// Weighted random choice among `candidates` (weight 0 never chosen):
/// returns the chosen candidate's `index`.
pub(crate) fn weighted_random(candidates: &[Candidate<'_>], rand: u64) -> Option<usize> {
    let total: u64 = candidates.iter().map(|c| u64::from(c.weight)).sum();
    let mut point = below(rand, total);
    for c in candidates.iter().filter(|c| c.weight > 0) {
        let w = u64::from(c.weight);
        if point < w {
            return Some(c.index);
        }
        point -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_weighted_random_follows_weights() {
        for n in [1u64, 2, 7, 1000] {
            for r in [0, 1, u64::MAX / 2, u64::MAX] {
                assert!(below(r, n) < n);
            }
        }
        assert_eq!(below(u64::MAX, 0), 0);
        let c = [
            Candidate::new(4, 1, "a"),
            Candidate::new(7, 0, "off"),
            Candidate::new(9, 3, "b"),
        ];
        let mut counts = [0u32; 10];
        let mut rng = Rng::new(3);
        for _ in 0..40_000 {
            let i = weighted_random(&c, rng.next_u64()).unwrap();
            counts[i] += 1;
        }
        assert_eq!(counts[7], 0);
        let share = f64::from(counts[9]) / 40_000.0;
        assert!((share - 0.75).abs() < 0.015, "{share}");
        assert_eq!(weighted_random(&[], 5), None);
        assert_eq!(weighted_random(&[Candidate::new(0, 0, "z")], 5), None);
    }

    #[test]
    fn hashes_are_stable() {
        // Pinned: the hash must never change between builds, or sticky
        // callers would move on upgrade.
        assert_eq!(stable_hash("s", "v"), 13_316_735_967_361_971_794);
        assert_ne!(stable_hash("s", "v"), stable_hash("s", "w"));
        assert_ne!(stable_hash("ab", "c"), stable_hash("a", "bc"));
        assert_eq!(mix64(0), 0);
        assert_ne!(mix64(1), 1);
    }
}
