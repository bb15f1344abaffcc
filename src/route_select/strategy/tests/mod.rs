//! The strategies against the in-memory store, one file per strategy.

mod least_in_flight;
mod lowest_latency;
mod round_robin;

use super::least_in_flight::{InFlightCount, IN_FLIGHT_LEN};
use super::lowest_latency::{explores, uniform_low, Latency, LATENCY_LEN};
use super::round_robin::RoundRobin;
use super::*;
use crate::route_select::Rng;
use crate::state::{read_state, Codec};
use crate::testing::MemStore;

const S: u64 = 1_000_000_000;
const POOL: &str = "llmgw/pool/chat";

/// `rand` whose high half never explores and whose low half chooses `k` of
/// `n` uniformly.
fn steady(k: usize, n: usize) -> u64 {
    (u64::from(u32::MAX) << 32) | low_for(k, n)
}

/// `rand` that explores and chooses `k` of `n`.
fn exploring(k: usize, n: usize) -> u64 {
    low_for(k, n)
}

fn low_for(k: usize, n: usize) -> u64 {
    ((k as u64) << 32).div_ceil(n as u64)
}

fn cands<'a>(spec: &[(&'a str, u32)]) -> Vec<Candidate<'a>> {
    spec.iter()
        .enumerate()
        .map(|(i, &(id, w))| Candidate::new(i, w, id))
        .collect()
}

fn names(picks: &[usize], ids: &[&str]) -> String {
    picks.iter().map(|&i| ids[i]).collect::<Vec<_>>().join(" ")
}

#[test]
fn rand_helpers_do_what_tests_assume() {
    for n in 1..10 {
        for k in 0..n {
            assert_eq!(uniform_low(steady(k, n), n), k);
            assert_eq!(uniform_low(exploring(k, n), n), k);
        }
    }
    assert!(!explores(steady(0, 1), 50));
    assert!(explores(exploring(0, 1), 50));
    assert!(!explores(exploring(0, 1), 0));
    // ~5 % of uniform rands explore.
    let mut rng = Rng::new(1);
    let n = (0..100_000)
        .filter(|_| explores(rng.next_u64(), 50))
        .count();
    assert!((4_700..5_300).contains(&n), "{n}");
}

#[test]
fn degenerate_candidate_lists_touch_nothing() {
    let store = MemStore::default();
    for s in [
        Strategy::WeightedRandom,
        Strategy::RoundRobin,
        Strategy::LeastInFlight,
        Strategy::LowestLatency,
    ] {
        assert_eq!(pick(s, &store, POOL, &[], 1, 0), None);
        assert_eq!(pick(s, &store, POOL, &cands(&[("a", 0)]), 1, 0), None);
        let one = [Candidate::new(7, 3, "a"), Candidate::new(8, 0, "b")];
        assert_eq!(pick(s, &store, POOL, &one, 1, 0), Some(7));
    }
    assert_eq!(store.set_calls.get(), 0);
}

#[test]
fn weighted_random_follows_weights_and_skips_zero() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("off", 0), ("b", 3)]);
    let mut rng = Rng::new(5);
    let mut counts = [0u32; 3];
    for _ in 0..40_000 {
        counts[pick(
            Strategy::WeightedRandom,
            &store,
            POOL,
            &c,
            rng.next_u64(),
            0,
        )
        .unwrap()] += 1;
    }
    assert_eq!(counts[1], 0);
    let share = f64::from(counts[2]) / 40_000.0;
    assert!((share - 0.75).abs() < 0.015, "{share}");
    assert!(store.is_empty());
}

#[test]
fn state_codecs_round_trip_and_reject_foreign_values() {
    let f = InFlightCount {
        count: 3,
        since_ns: 99,
    };
    assert_eq!(InFlightCount::decode(&f.encode()), Some(f));
    let l = Latency {
        ewma_us: 1,
        samples: 2,
        probes: 3,
        last_sample_ns: 4,
    };
    assert_eq!(Latency::decode(&l.encode()), Some(l));
    assert_eq!(Latency::decode(&f.encode()), None);
    assert_eq!(InFlightCount::decode(&l.encode()), None);
    assert_eq!(f.encode().len(), IN_FLIGHT_LEN);
    assert_eq!(l.encode().len(), LATENCY_LEN);
}

#[test]
fn state_layouts_are_pinned() {
    let rr = RoundRobin {
        entries: vec![(9, -2)],
    };
    let expected = [
        &[0xD1, 1][..],
        &1u16.to_le_bytes(),
        &9u64.to_le_bytes(),
        &(-2i64).to_le_bytes(),
    ];
    assert_eq!(rr.encode(), expected.concat());
    let f = InFlightCount {
        count: 3,
        since_ns: 99,
    };
    let expected = [&[0xD2, 1][..], &3u32.to_le_bytes(), &99u64.to_le_bytes()];
    assert_eq!(f.encode(), expected.concat());
    let l = Latency {
        ewma_us: 1,
        samples: 2,
        probes: 3,
        last_sample_ns: 4,
    };
    let expected = [
        &[0xD3, 1][..],
        &1u64.to_le_bytes(),
        &2u32.to_le_bytes(),
        &3u32.to_le_bytes(),
        &4u64.to_le_bytes(),
    ];
    assert_eq!(l.encode(), expected.concat());
}
