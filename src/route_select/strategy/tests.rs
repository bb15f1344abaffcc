use super::*;
use crate::route_select::Rng;
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

// ---------------------------------------------------------------------------
// round_robin
// ---------------------------------------------------------------------------

fn rr(store: &dyn SharedStore, c: &[Candidate<'_>], rand: u64) -> usize {
    pick(Strategy::RoundRobin, store, POOL, c, rand, 0).unwrap()
}

#[test]
fn smooth_weighted_round_robin_sequence() {
    let store = MemStore::default();
    let ids = ["a", "b", "c"];
    let c = cands(&[("a", 5), ("b", 1), ("c", 1)]);
    let picks: Vec<usize> = (0..14).map(|i| rr(&store, &c, i)).collect();
    assert_eq!(names(&picks, &ids), "a a b a c a a a a b a c a a");
    // One shared value for the whole pool.
    let keys = store.keys();
    assert_eq!(keys, vec![format!("{POOL}/rr")]);

    let store = MemStore::default();
    let c = cands(&[("x", 1), ("y", 1), ("z", 1)]);
    let picks: Vec<usize> = (0..6).map(|_| rr(&store, &c, 0)).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn workers_share_one_sequence() {
    // Two "workers" (different rands, same store) interleave: together
    // they walk the single sequence.
    let store = MemStore::default();
    let ids = ["a", "b", "c"];
    let c = cands(&[("a", 5), ("b", 1), ("c", 1)]);
    let mut w1 = Rng::new(1);
    let mut w2 = Rng::new(2);
    let picks: Vec<usize> = (0..7)
        .map(|i| {
            let r = if i % 2 == 0 {
                w1.next_u64()
            } else {
                w2.next_u64()
            };
            rr(&store, &c, r)
        })
        .collect();
    assert_eq!(names(&picks, &ids), "a a b a c a a");
    // A different pool has its own sequence.
    let other = pick(Strategy::RoundRobin, &store, "llmgw/pool/other", &c, 0, 0);
    assert_eq!(other, Some(0));
}

#[test]
fn ejected_target_rejoins_the_sequence() {
    let store = MemStore::default();
    let ids = ["a", "b", "c"];
    let all = cands(&[("a", 1), ("b", 1), ("c", 1)]);
    let without_b: Vec<Candidate> = all.iter().copied().filter(|c| c.id != "b").collect();
    let mut picks = vec![rr(&store, &all, 0)];
    picks.extend((0..4).map(|_| rr(&store, &without_b, 0)));
    picks.extend((0..6).map(|_| rr(&store, &all, 0)));
    // nginx's rule, current weights (a, b, c) after each pick:
    // a(-2,1,1) | b out: c(-1,1,0) c(0,1,-1) a(-1,1,0) c(0,1,-1) |
    // b back: b(1,-1,0) a(-1,0,1) c(0,1,-1) b(1,-1,0) a(-1,0,1) c(0,1,-1)
    assert_eq!(names(&picks, &ids), "a c c a c b a c b a c");
    // Positions do not matter, ids do: the same targets listed in another
    // order (as after a config edit) continue the same state.
    let reordered = [
        Candidate::new(2, 1, "c"),
        Candidate::new(0, 1, "a"),
        Candidate::new(1, 1, "b"),
    ];
    let next: Vec<usize> = (0..3).map(|_| rr(&store, &reordered, 0)).collect();
    let mut sorted = next.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2], "{next:?}");
}

#[test]
fn round_robin_long_run_matches_weights_exactly() {
    let store = MemStore::default();
    let c = cands(&[("a", 3), ("b", 2), ("c", 0), ("d", 5)]);
    let mut counts = [0u32; 4];
    for _ in 0..1000 {
        counts[rr(&store, &c, 0)] += 1;
    }
    assert_eq!(counts, [300, 200, 0, 500]);
}

#[test]
fn round_robin_falls_back_to_weighted_random_on_contention() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("b", 1)]);
    assert_eq!(rr(&store, &c, u64::MAX), 0, "first pick of the sequence");
    store.always_mismatch.set(true);
    // Weighted random: rand 0 → a, rand MAX → b.
    assert_eq!(rr(&store, &c, 0), 0);
    assert_eq!(rr(&store, &c, u64::MAX), 1);
    // Bounded: 1 + cas_retries attempts per pick.
    let before = store.set_calls.get();
    rr(&store, &c, 0);
    assert_eq!(
        store.set_calls.get() - before,
        u64::from(1 + Tuning::default().cas_retries)
    );
    store.always_mismatch.set(false);
    store.broken.set(true);
    assert_eq!(rr(&store, &c, u64::MAX), 1);
    store.broken.set(false);
    // Recovers where it was: b is next.
    assert_eq!(rr(&store, &c, 0), 1);
    // A couple of lost races are retried, not fallen back from.
    store.fail_next.set(2);
    assert_eq!(rr(&store, &c, u64::MAX), 0);
}

#[test]
fn round_robin_state_stays_bounded_and_corrupt_state_resets() {
    let store = MemStore::default();
    let ids: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
    for pair in ids.chunks(2) {
        let c = [
            Candidate::new(0, 1, &pair[0]),
            Candidate::new(1, 1, &pair[1]),
        ];
        rr(&store, &c, 0);
    }
    let key = format!("{POOL}/rr");
    let state: RoundRobin = read_state(&store, &key).unwrap();
    assert!(
        state.entries.len() <= RR_KEEP + 2,
        "{}",
        state.entries.len()
    );
    store.set(&key, b"\xD1\x01\xFF\xFF", 0).unwrap();
    let c = cands(&[("a", 2), ("b", 1)]);
    let picks: Vec<usize> = (0..3).map(|_| rr(&store, &c, 0)).collect();
    assert_eq!(picks, [0, 1, 0]);
}

#[test]
fn round_robin_codec_round_trips() {
    let s = RoundRobin {
        entries: vec![(1, -5), (u64::MAX, i64::MAX), (7, i64::MIN)],
    };
    assert_eq!(RoundRobin::decode(&s.encode()), Some(s.clone()));
    let bytes = s.encode();
    assert_eq!(RoundRobin::decode(&bytes[..bytes.len() - 1]), None);
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(RoundRobin::decode(&longer), None);
    assert_eq!(
        RoundRobin::decode(&RoundRobin::default().encode()),
        Some(RoundRobin::default())
    );
}

// ---------------------------------------------------------------------------
// least_in_flight
// ---------------------------------------------------------------------------

fn lif(store: &dyn SharedStore, c: &[Candidate<'_>], now: u64) -> usize {
    pick(Strategy::LeastInFlight, store, POOL, c, 0, now).unwrap()
}

fn start(store: &dyn SharedStore, id: &str, now: u64) -> InFlight {
    on_start(Strategy::LeastInFlight, store, POOL, id, now)
}

#[test]
fn least_in_flight_picks_the_least_loaded() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("b", 1), ("c", 1)]);
    // All idle: the first.
    assert_eq!(lif(&store, &c, 0), 0);
    let ta = start(&store, "a", 0);
    assert!(ta.is_counted());
    assert_eq!(lif(&store, &c, 0), 1);
    let tb = start(&store, "b", 0);
    assert_eq!(lif(&store, &c, 0), 2);
    let tc = start(&store, "c", 0);
    let tc2 = start(&store, "c", 0);
    assert_eq!(in_flight(&store, POOL, "c", 0), 2);
    assert_eq!(lif(&store, &c, 0), 0);
    on_finish(&store, tb, None, S).unwrap();
    assert_eq!(in_flight(&store, POOL, "b", S), 0);
    assert_eq!(lif(&store, &c, S), 1);
    for t in [ta, tc, tc2] {
        on_finish(&store, t, None, S).unwrap();
    }
    for id in ["a", "b", "c"] {
        assert_eq!(in_flight(&store, POOL, id, S), 0);
    }
}

#[test]
fn least_in_flight_ties_and_weights() {
    let store = MemStore::default();
    // Equal load: the larger weight, then the earlier candidate.
    let c = cands(&[("a", 1), ("b", 3), ("c", 3)]);
    assert_eq!(lif(&store, &c, 0), 1);
    // Load per weight: b (w3) with 2 in flight, (2+1)/3 = 1 ties a's
    // (0+1)/1 = 1 → the larger weight, b; with 3 in flight, a.
    let ab = cands(&[("a", 1), ("b", 3)]);
    let _t: Vec<InFlight> = (0..2).map(|_| start(&store, "b", 0)).collect();
    assert_eq!(lif(&store, &ab, 0), 1);
    let _t3 = start(&store, "b", 0);
    assert_eq!(lif(&store, &ab, 0), 0);
    // Sustained: picks follow the weights 1:3:3 (each pick stays in flight).
    let store = MemStore::default();
    let mut started = Vec::new();
    let mut counts = [0u32; 3];
    for _ in 0..70 {
        let i = lif(&store, &c, 0);
        counts[i] += 1;
        started.push(start(&store, c[i].id, 0));
    }
    assert_eq!(counts, [10, 30, 30]);
}

#[test]
fn in_flight_never_goes_negative() {
    let store = MemStore::default();
    let t1 = start(&store, "a", 0);
    let t2 = start(&store, "a", 0);
    // Someone reset the count (e.g. leak recovery) while both ran.
    store
        .set(
            &format!("{POOL}/inflight/a"),
            &InFlightCount {
                count: 0,
                since_ns: 0,
            }
            .encode(),
            0,
        )
        .unwrap();
    on_finish(&store, t1, None, S).unwrap();
    on_finish(&store, t2, None, S).unwrap();
    assert_eq!(in_flight(&store, POOL, "a", S), 0);
    let s: InFlightCount = read_state(&store, &format!("{POOL}/inflight/a")).unwrap();
    assert_eq!(s.count, 0);
}

#[test]
fn leaked_counts_are_recovered_after_the_stale_period() {
    let store = MemStore::default();
    let stale = Tuning::default().stale_in_flight_ms * 1_000_000;
    let c = cands(&[("a", 1), ("b", 1)]);
    // Two requests on a leak and never finish.
    let _leak1 = start(&store, "a", 0);
    let _leak2 = start(&store, "a", 0);
    let tb = start(&store, "b", 0);
    assert_eq!(lif(&store, &c, stale - 1), 1);
    // b finishes: its activity is fresh, a's is not.
    on_finish(&store, tb, None, 10 * S).unwrap();
    assert_eq!(in_flight(&store, POOL, "a", stale - 1), 2);
    assert_eq!(in_flight(&store, POOL, "a", stale), 0);
    // Read as 0 at the stale point: a ties b and wins by order.
    assert_eq!(lif(&store, &c, stale), 0);
    // The next start restarts the count from 0.
    let t = start(&store, "a", stale);
    assert_eq!(in_flight(&store, POOL, "a", stale), 1);
    on_finish(&store, t, None, stale + S).unwrap();
    assert_eq!(in_flight(&store, POOL, "a", stale + S), 0);
    // A target with steady finishes is never presumed leaked.
    let store = MemStore::default();
    let _long = start(&store, "a", 0);
    for k in 1..5 {
        let t = start(&store, "a", k * stale / 2);
        on_finish(&store, t, None, k * stale / 2 + S).unwrap();
    }
    assert_eq!(in_flight(&store, POOL, "a", 5 * stale / 2), 1);
    // Recovery disabled: counts stay.
    let tuning = Tuning {
        stale_in_flight_ms: 0,
        ..Tuning::default()
    };
    let store = MemStore::default();
    let _t = start(&store, "a", 0);
    let c = cands(&[("a", 1), ("b", 1)]);
    let chosen = pick_with(
        &tuning,
        Strategy::LeastInFlight,
        &store,
        POOL,
        &c,
        0,
        u64::MAX,
    );
    assert_eq!(chosen, Some(1));
}

#[test]
fn contention_on_start_means_not_counted() {
    let store = MemStore::default();
    let t = start(&store, "a", 0);
    assert!(t.is_counted());
    store.always_mismatch.set(true);
    let lost = start(&store, "a", 0);
    assert!(!lost.is_counted());
    let writes = store.set_calls.get();
    assert_eq!(on_finish(&store, lost, None, S), Ok(()));
    assert_eq!(store.set_calls.get(), writes, "nothing to release");
    assert_eq!(
        on_finish(&store, t, None, S),
        Err(Contention::RetriesExhausted)
    );
    store.always_mismatch.set(false);
    assert_eq!(in_flight(&store, POOL, "a", S), 1, "the lost release leaks");
    // Other strategies track nothing.
    for s in [Strategy::WeightedRandom, Strategy::RoundRobin] {
        let t = on_start(s, &store, POOL, "a", 0);
        assert_eq!(t, InFlight::default());
    }
}

// ---------------------------------------------------------------------------
// lowest_latency
// ---------------------------------------------------------------------------

fn ll(store: &dyn SharedStore, c: &[Candidate<'_>], rand: u64) -> usize {
    pick(Strategy::LowestLatency, store, POOL, c, rand, 0).unwrap()
}

fn sample(store: &dyn SharedStore, id: &str, ms: u64) {
    let t = on_start(Strategy::LowestLatency, store, POOL, id, 0);
    assert!(!t.is_counted());
    on_finish(store, t, Some(ms), 0).unwrap();
}

#[test]
fn ewma_of_time_to_first_byte() {
    let store = MemStore::default();
    assert_eq!(latency(&store, POOL, "a"), None);
    sample(&store, "a", 100);
    assert_eq!(
        latency(&store, POOL, "a"),
        Some(LatencyStatus {
            ewma_ms: 100,
            samples: 1,
            last_sample_ns: 0,
        })
    );
    sample(&store, "a", 200);
    assert_eq!(latency(&store, POOL, "a").unwrap().ewma_ms, 120);
    observe(&store, POOL, "a", 20, 7 * S).unwrap();
    let l = latency(&store, POOL, "a").unwrap();
    assert_eq!((l.ewma_ms, l.last_sample_ns), (100, 7 * S));
    // Converges to a new level.
    for _ in 0..60 {
        observe(&store, POOL, "a", 1000, 0).unwrap();
    }
    assert_eq!(latency(&store, POOL, "a").unwrap().ewma_ms, 999);
    // A failure (no ttfb) records nothing.
    let t = on_start(Strategy::LowestLatency, &store, POOL, "a", 0);
    on_finish(&store, t, None, 0).unwrap();
    assert_eq!(latency(&store, POOL, "a").unwrap().samples, 63);
}

#[test]
fn warm_up_explores_every_new_target_first() {
    let store = MemStore::default();
    let ids = ["a", "b", "c"];
    let c = cands(&[("a", 1), ("b", 1), ("c", 1)]);
    // No data: unexplored targets by fewest warm-up picks; among ties, the
    // rand's choice (here always the first of the tied ones).
    let picks: Vec<usize> = (0..6).map(|_| ll(&store, &c, steady(0, 3))).collect();
    assert_eq!(names(&picks, &ids), "a b c a b c");
    // The tie is broken by rand, so concurrent workers spread out.
    let store = MemStore::default();
    assert_eq!(ll(&store, &c, steady(2, 3)), 2);
    assert_eq!(ll(&store, &c, steady(1, 2)), 1);
    // Measured targets are no longer preferred; the unmeasured one is.
    let store = MemStore::default();
    for _ in 0..3 {
        sample(&store, "a", 500);
        sample(&store, "b", 50);
    }
    for _ in 0..5 {
        assert_eq!(ll(&store, &c, steady(0, 1)), 2);
    }
    sample(&store, "c", 900);
    sample(&store, "c", 900);
    assert_eq!(ll(&store, &c, steady(0, 1)), 2, "still under warm-up");
    sample(&store, "c", 900);
    assert_eq!(ll(&store, &c, steady(0, 1)), 1, "all measured: fastest");
}

#[test]
fn lowest_average_wins_with_epsilon_exploration() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("b", 1), ("c", 2)]);
    for _ in 0..3 {
        sample(&store, "a", 300);
        sample(&store, "b", 100);
        sample(&store, "c", 200);
    }
    assert_eq!(ll(&store, &c, steady(0, 1)), 1);
    // Exploring picks are uniform among all candidates.
    for k in 0..3 {
        assert_eq!(ll(&store, &c, exploring(k, 3)), k);
    }
    // Ties: the larger weight, then the earlier.
    let store = MemStore::default();
    for id in ["a", "b", "c"] {
        for _ in 0..3 {
            sample(&store, id, 100);
        }
    }
    assert_eq!(ll(&store, &c, steady(0, 1)), 2);
    let c2 = cands(&[("a", 1), ("b", 1)]);
    assert_eq!(ll(&store, &c2, steady(0, 1)), 0);
    // Over many random picks: ~95 % + 5 %/3 to the fastest.
    let store = MemStore::default();
    for _ in 0..3 {
        sample(&store, "a", 300);
        sample(&store, "b", 100);
        sample(&store, "c", 200);
    }
    let mut rng = Rng::new(11);
    let fastest = (0..30_000)
        .filter(|_| ll(&store, &c, rng.next_u64()) == 1)
        .count();
    let share = fastest as f64 / 30_000.0;
    assert!((share - (0.95 + 0.05 / 3.0)).abs() < 0.01, "{share}");
}

#[test]
fn a_target_without_samples_stops_being_preferred() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("broken", 1)]);
    for _ in 0..3 {
        sample(&store, "a", 400);
    }
    // "broken" gets its warm-up picks, never answers, then is only explored.
    let max = Tuning::default().warmup_max_probes;
    for _ in 0..max {
        assert_eq!(ll(&store, &c, steady(0, 1)), 1);
    }
    for _ in 0..10 {
        assert_eq!(ll(&store, &c, steady(0, 1)), 0);
    }
    assert_eq!(ll(&store, &c, exploring(1, 2)), 1);
    // Nobody measured and warm-up spent: weighted random.
    let store = MemStore::default();
    let c = cands(&[("x", 1), ("y", 3)]);
    for _ in 0..2 * max {
        ll(&store, &c, steady(0, 1));
    }
    // No exploration (roll 99 ‰) and weighted point 0.4 of 4 → x.
    let rand = 0x1999_9999_9999_9999;
    assert!(!explores(rand, 50));
    assert_eq!(ll(&store, &c, rand), 0);
    assert_eq!(ll(&store, &c, u64::MAX), 1);
}

#[test]
fn latency_store_trouble_degrades_gracefully() {
    let store = MemStore::default();
    let c = cands(&[("a", 1), ("b", 1)]);
    store.broken.set(true);
    // Warm-up pick still made although its probe count cannot be written.
    assert_eq!(ll(&store, &c, steady(0, 2)), 0);
    let t = on_start(Strategy::LowestLatency, &store, POOL, "a", 0);
    assert_eq!(
        on_finish(&store, t, Some(5), 0),
        Err(Contention::StoreFailed)
    );
    // Corrupt values read as no data.
    store.broken.set(false);
    store.set(&format!("{POOL}/latency/a"), b"junk", 0).unwrap();
    assert_eq!(latency(&store, POOL, "a"), None);
    assert_eq!(ll(&store, &c, steady(0, 2)), 0);
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
    let mut expected = vec![0xD1, 1];
    expected.extend_from_slice(&1u16.to_le_bytes());
    expected.extend_from_slice(&9u64.to_le_bytes());
    expected.extend_from_slice(&(-2i64).to_le_bytes());
    assert_eq!(rr.encode(), expected);
    let f = InFlightCount {
        count: 3,
        since_ns: 99,
    };
    let mut expected = vec![0xD2, 1];
    expected.extend_from_slice(&3u32.to_le_bytes());
    expected.extend_from_slice(&99u64.to_le_bytes());
    assert_eq!(f.encode(), expected);
    let l = Latency {
        ewma_us: 1,
        samples: 2,
        probes: 3,
        last_sample_ns: 4,
    };
    let mut expected = vec![0xD3, 1];
    expected.extend_from_slice(&1u64.to_le_bytes());
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(&3u32.to_le_bytes());
    expected.extend_from_slice(&4u64.to_le_bytes());
    assert_eq!(l.encode(), expected);
}
